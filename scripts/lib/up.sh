# Shell helpers shared by scripts/up and scripts/down (POSIX sh, sourced).
# A run's state dir holds `pids`: one "NAME PID" a line in start order; each
# PID leads its own process group (started with setsid), so stopping it stops
# its children too.

# say MESSAGE...: a progress line on stdout.
say() {
  printf 'up: %s\n' "$*"
}

# alive PID: 0 if the process exists (and is not a zombie).
alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != "Z" ]
}

# stop_one NAME PID [TIMEOUT_S]: SIGTERM to the process group, wait, then
# SIGKILL. Children of this shell are reaped with wait.
stop_one() {
  name="$1"; pid="$2"; limit="${3:-20}"
  if ! alive "$pid"; then
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  n=0
  while alive "$pid" && [ "$n" -lt $((limit * 10)) ]; do
    sleep 0.1
    n=$((n + 1))
  done
  if alive "$pid"; then
    printf 'up: %s (pid %s) did not stop in %ss, killing it\n' "$name" "$pid" "$limit"
    kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Whatever else is left in the group (a workload's stress-ng children).
  kill -KILL "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# stop_all PIDS_FILE: stops every entry, last started first, then removes the file.
stop_all() {
  [ -f "$1" ] || return 0
  # Reverse order without tac's GNU-only dependency.
  awk '{ l[NR] = $0 } END { for (i = NR; i > 0; i--) print l[i] }' "$1" >"$1.rev"
  while read -r name pid; do
    [ -n "$pid" ] || continue
    case "$name" in
      devservers) t=40 ;; # ClickHouse may take a while to flush
      *) t=35 ;;          # above every daemon's 30 s drain deadline
    esac
    stop_one "$name" "$pid" "$t"
    printf 'up: stopped %s\n' "$name"
  done <"$1.rev"
  rm -f "$1" "$1.rev"
}

# port_busy PORT: 0 if something listens on it or it cannot be bound on
# 127.0.0.1 (the daemons bind loopback).
port_busy() {
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

# wait_http URL SECONDS [PID]: 0 once URL answers 200; 1 on timeout or when
# PID (if given) has exited.
wait_http() {
  url="$1"; limit="$2"; wpid="${3:-}"
  n=0
  while [ "$n" -lt $((limit * 5)) ]; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null) || code=000
    [ "$code" = 200 ] && return 0
    if [ -n "$wpid" ] && ! alive "$wpid"; then
      return 1
    fi
    sleep 0.2
    n=$((n + 1))
  done
  return 1
}

# rec_table [--check] JSON_FILE [NAME...]: prints a ListRecommendations answer
# (proto3 JSON from /v1/recommendations) as a table; with --check, prints
# nothing and returns 0 only if every NAME has a recommendation.
rec_table() {
  /usr/bin/python3 - "$@" <<'EOF'
import json, sys

args = sys.argv[1:]
check = args and args[0] == "--check"
if check:
    args = args[1:]
try:
    with open(args[0]) as f:
        recs = json.load(f).get("recommendations", [])
except (OSError, ValueError):
    sys.exit(1)
if check:
    # At least three windows each, so the first table is not a single reading.
    names = {r.get("workload", {}).get("name") for r in recs
             if int(r.get("dataPoints", 0) or 0) >= 3}
    sys.exit(0 if all(n in names for n in args[1:]) else 1)

def cores(v):
    return "%.3f" % float(v or 0)

def mib(v):
    return "%dMi" % round(int(v or 0) / 1048576)

rows = [("WORKLOAD", "CPU REQ now -> rec", "MEM REQ now -> rec", "CONF", "POINTS",
         "SAVINGS/MONTH")]
recs.sort(key=lambda r: (r.get("workload", {}).get("namespace", ""),
                         r.get("workload", {}).get("name", "")))
for r in recs:
    w = r.get("workload", {})
    s = r.get("savings", {})
    for c in r.get("containers", []) or [{}]:
        cur, rec = c.get("current", {}), c.get("recommended", {})
        rows.append((
            "%s/%s" % (w.get("namespace", ""), w.get("name", "")),
            "%s -> %s" % (cores(cur.get("cpuRequestCores")), cores(rec.get("cpuRequestCores"))),
            "%s -> %s" % (mib(cur.get("memoryRequestBytes")), mib(rec.get("memoryRequestBytes"))),
            "%.2f" % float(c.get("confidence", 0) or 0),
            str(r.get("dataPoints", 0)),
            "%.2f %s%s" % (float(s.get("monthlyCost", 0) or 0), s.get("currency", ""),
                           "  (idle)" if r.get("idle") else ""),
        ))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  " + "  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())
print("  (plain processes have no requests now, so the savings are negative: the cost of"
      " reserving what they use)")
EOF
}
