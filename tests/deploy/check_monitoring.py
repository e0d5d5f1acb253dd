#!/usr/bin/env python3
"""Checks deploy/kustomize/components/monitoring against promtool and the real binaries.

    tests/deploy/check_monitoring.py --build-dir BUILD [--repo ROOT]

1. Renders overlays/production (which includes the component) with
   `kubectl kustomize` and finds the PrometheusRule and the dashboards'
   ConfigMap.
2. Writes the PrometheusRule's spec (the rule groups) to a file and runs
   `promtool check rules` on it, then `promtool test rules` with
   tests/deploy/monitoring_rules_test.yaml.
3. Starts kopt-ingest, kopt-aggregator, kopt-advisor and kopt-agent from
   BUILD on free loopback ports (TLS from scripts/certs; NATS and ClickHouse
   pointed at a port nobody listens on: the families are registered at start
   and /metrics lists every family, with or without samples), scrapes each
   /metrics and checks that every metric name used by an alert rule or a
   dashboard query is one of them. The only names allowed from elsewhere are
   the kubelet's cAdvisor ones in EXTERNAL, which the usage panels graph.

Exit 0 all good, 1 on any violation, 77 (meson's "skipped") when kubectl or
promtool is missing.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import yaml
except ImportError:  # pragma: no cover
    print("check_monitoring: PyYAML missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(1)

# Metrics the dashboards read from outside kopt: the kubelet's cAdvisor.
EXTERNAL = {
    "container_cpu_usage_seconds_total": "kubelet cAdvisor, CPU usage per container",
    "container_memory_working_set_bytes": "kubelet cAdvisor, memory working set per container",
}

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "le",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_names(expr):
    """Metric names a PromQL expression reads (a lexical pass that is enough
    for our rules: strings, label matchers, ranges and grouping clauses are
    dropped; an identifier followed by '(' is a function)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def dashboard_queries(dash):
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"panel '{p.get('title')}'", t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            m = re.match(r"label_values\((.*),\s*\w+\)\s*$", q)
            yield f"variable '{v.get('name')}'", m.group(1) if m else q


def scrape(port, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def families(text):
    """Names in an exposition: every family's TYPE, with a histogram's series."""
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            out.add(parts[2])
            if parts[3] == "histogram":
                out.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
    return out


def run_binaries(build, repo, tmp):
    """Starts the four daemons, scrapes each, stops them. Returns {binary: names}."""
    certs = os.path.join(tmp, "certs")
    subprocess.run([os.path.join(repo, "scripts", "certs"), certs], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: NATS and ClickHouse are away
    tls = lambda cert: ["--tls-ca", f"{certs}/ca.pem", "--tls-cert", f"{certs}/{cert}.pem",
                        "--tls-key", f"{certs}/{cert}-key.pem"]
    ingest_grpc = free_port()
    admin = {b: free_port() for b in ("ingest", "aggregator", "advisor", "agent")}
    cmds = {
        "ingest": [f"{build}/ingest/kopt-ingest", "--listen", f"127.0.0.1:{ingest_grpc}",
                   "--nats-url", f"nats://{dead}"] + tls("server"),
        "aggregator": [f"{build}/aggregator/kopt-aggregator", "--nats-url", f"nats://{dead}",
                       "--clickhouse-url", f"http://{dead}"],
        "advisor": [f"{build}/advisor/kopt-advisor", "--listen", f"127.0.0.1:{free_port()}",
                    "--http-listen", f"127.0.0.1:{free_port()}", "--nats-url", f"nats://{dead}",
                    "--clickhouse-url", f"http://{dead}"] + tls("server"),
        "agent": [f"{build}/agent/kopt-agent", "--ingest", f"127.0.0.1:{ingest_grpc}",
                  "--source", "proc", "--cluster", "local", "--spool-dir",
                  os.path.join(tmp, "spool")] + tls("agent-local"),
    }
    procs, names = {}, {}
    try:
        for b, cmd in cmds.items():
            log = open(os.path.join(tmp, b + ".log"), "w")
            procs[b] = subprocess.Popen(cmd + ["--admin-listen", f"127.0.0.1:{admin[b]}"],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            log.close()
        for b in cmds:
            try:
                names[b] = families(scrape(admin[b]))
            except OSError as e:
                with open(os.path.join(tmp, b + ".log")) as f:
                    tail = f.read()[-2000:]
                raise RuntimeError(f"kopt-{b}: /metrics did not answer ({e}); log:\n{tail}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    args = ap.parse_args()
    repo, build = os.path.abspath(args.repo), os.path.abspath(args.build_dir)
    kubectl, promtool = shutil.which("kubectl"), shutil.which("promtool")
    if not kubectl or not promtool:
        print("check_monitoring: kubectl or promtool missing (scripts/deps installs them): skipped")
        return 77
    failures = []
    print("check_monitoring: deploy/kustomize/components/monitoring")

    out = subprocess.run([kubectl, "kustomize", os.path.join(repo, "deploy/kustomize/overlays/production")],
                         check=True, capture_output=True, text=True).stdout
    objs = [o for o in yaml.safe_load_all(out) if o]
    rules = [o for o in objs if o.get("kind") == "PrometheusRule"]
    cms = [o for o in objs if o.get("kind") == "ConfigMap"
           and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if len(rules) != 1 or len(cms) != 1:
        print(f"FAIL: overlays/production renders {len(rules)} PrometheusRule(s) and "
              f"{len(cms)} dashboard ConfigMap(s), expected one each")
        return 1
    dashboards = {k: json.loads(v) for k, v in cms[0]["data"].items()}
    print(f"  rendered: PrometheusRule {rules[0]['metadata']['name']}, "
          f"ConfigMap {cms[0]['metadata']['name']} with {', '.join(sorted(dashboards))}")

    tmp = tempfile.mkdtemp(prefix="kopt-monitoring-")
    try:
        rules_file = os.path.join(tmp, "kopt-rules.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump(rules[0]["spec"], f)
        with open(os.path.join(repo, "tests/deploy/monitoring_rules_test.yaml")) as f:
            test = yaml.safe_load(f)
        test["rule_files"] = [rules_file]
        test_file = os.path.join(tmp, "rules_test.yaml")
        with open(test_file, "w") as f:
            yaml.safe_dump(test, f)
        for what, cmd in (("promtool check rules", [promtool, "check", "rules", rules_file]),
                          ("promtool test rules", [promtool, "test", "rules", test_file])):
            r = subprocess.run(cmd, capture_output=True, text=True)
            print(f"  {what}: {'ok' if r.returncode == 0 else 'FAILED'}")
            if r.returncode != 0:
                failures.append(f"{what}:\n{r.stdout}{r.stderr}")

        tested = {t["alertname"] for case in test["tests"] for t in case.get("alert_rule_test", [])}
        alerts = [r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r]
        for a in alerts:
            if a not in tested:
                failures.append(f"alert {a} has no case in monitoring_rules_test.yaml")

        used = []  # (where, name)
        for g in rules[0]["spec"]["groups"]:
            for r in g["rules"]:
                used += [(f"alert {r.get('alert', r.get('record'))}", n) for n in metric_names(r["expr"])]
        for file, d in dashboards.items():
            for where, q in dashboard_queries(d):
                used += [(f"{file} {where}", n) for n in metric_names(q)]

        scraped = run_binaries(build, repo, tmp)
        real = set().union(*scraped.values())
        for b, n in sorted(scraped.items()):
            print(f"  kopt-{b}: {len(n)} names on /metrics")
        for where, name in used:
            if name not in real and name not in EXTERNAL:
                failures.append(f"{where}: {name} is not on the /metrics of any kopt binary")
        print(f"  {len(used)} metric references in {len(alerts)} alerts and "
              f"{len(dashboards)} dashboards, {len({n for _, n in used})} distinct names checked")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print(f"FAIL: {len(failures)} violation(s):")
        for f in failures:
            print("  - " + f)
        return 1
    print("check_monitoring: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
