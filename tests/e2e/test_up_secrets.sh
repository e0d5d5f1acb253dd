#!/bin/sh
# scripts/up keeps its secrets to its owner (issue 15): the state dir is 0700,
# the API keys file and the env file (which repeats the key) are 0600, even
# under a umask of 022. Starts scripts/up on free ports in a temp state dir,
# looks once the env file is written, then stops it (SIGTERM, scripts/down).
#   test_up_secrets.sh SRCDIR BUILDDIR
set -u
src=$1 build=$2
state=$(mktemp -d "${TMPDIR:-/tmp}/kopt-up-secrets-XXXXXX")
rmdir "$state" # scripts/up makes it
fail=0

up_pid=""
cleanup() {
  [ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  "$src/scripts/down" --state "$state" >/dev/null 2>&1
  rm -f "$state.log"
  rm -rf "$state"
}
trap cleanup EXIT INT TERM

umask 022
"$src/scripts/up" --free-ports --no-deps --build-dir "$build" --state "$state" \
  >"$state.log" 2>&1 &
up_pid=$!
# The env file is written once every component is ready (before the wait
# for the first recommendations): 120 s at most.
i=0
until grep -q '^KOPT_WEB=' "$state/env" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 240 ] || ! kill -0 "$up_pid" 2>/dev/null; then
    echo "scripts/up did not write $state/env:"
    tail -n 30 "$state.log"
    exit 1
  fi
  sleep 0.5
done

check() { # path want
  got=$(stat -c %a "$1" 2>/dev/null || echo missing)
  if [ "$got" = "$2" ]; then
    echo "ok   $got $1"
  else
    echo "FAIL $got $1 (want $2)"
    fail=1
  fi
}
check "$state" 700
check "$state/api-keys" 600
check "$state/env" 600
# NATS: one password file per component, 0600; the server wants them (TLS +
# per-component users), so the running system proves they work.
for u in ingest aggregator advisor admin; do
  check "$state/nats-kopt-$u.password" 600
done
grep -q '^KOPT_API_KEY=.\{16,\}' "$state/env" || { echo "FAIL no 16+ character key in env"; fail=1; }
exit $fail
