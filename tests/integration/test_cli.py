#!/usr/bin/python3
"""Drives the real `kopt` binary against the real kopt-advisor (TLS, API key).

test_cli.c starts the servers and passes their addresses. The API's own
answer comes from a Python gRPC client generated from the protos with
grpc_tools.protoc; each `kopt` output format is parsed back and compared with
it. `kopt patch` output is rendered with `kubectl kustomize` over
tests/fixtures/kustomize/base and compared, object by object, with the base
plus the recommended resources. Error cases check messages and exit codes.
Prints "ok: ..." / "FAIL: ..." lines. Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import csv
import importlib
import importlib.util
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback

FAILURES = []
A = None  # the parsed arguments
MIB = 1024 * 1024


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, file=sys.stderr)
    if not cond:
        FAILURES.append(what)
    return cond


def kopt(*args, env_extra=None, conn=True):
    """Runs kopt; returns (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPT_")}
    env["HOME"] = A.work  # no ~/.config/kopt of the machine's user
    env.pop("NO_COLOR", None)
    if env_extra:
        env.update(env_extra)
    cmd = [A.kopt] + list(args)
    if conn:
        cmd += ["--address", A.address, "--ca-file", A.ca, "--api-key-file", A.key_file]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    return res.returncode, res.stdout, res.stderr


# ---- the rounding rule of docs/cli.md, written again independently ----------------

def cpu_q(cores):
    m = math.ceil(round(cores * 1000, 6)) if cores > 0 else 0
    return str(m // 1000) if m % 1000 == 0 else "%dm" % m


def mem_q(b):
    mib = -(-b // MIB)
    if mib == 0:
        return "0"
    return "%dGi" % (mib // 1024) if mib % 1024 == 0 else "%dMi" % mib


# ---- the API's answer -------------------------------------------------------------

class Api:
    def __init__(self, grpc, pb, mpb, json_format):
        self.grpc, self.pb, self.mpb, self.jf = grpc, pb, mpb, json_format
        with open(A.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.ch = grpc.secure_channel(A.address, creds)
        stub_mod = importlib.import_module("kopt.v1.advisor_pb2_grpc")
        self.stub = stub_mod.AdvisorStub(self.ch)
        key = [l.strip() for l in open(A.key_file) if l.strip() and not l.startswith("#")][0]
        self.md = [("authorization", "Bearer " + key)]

    def list(self, **kw):
        out, token = [], ""
        while True:
            resp = self.stub.ListRecommendations(self.pb.ListRecommendationsRequest(
                view=self.pb.RECOMMENDATION_VIEW_FULL, page_token=token, page_size=2, **kw),
                metadata=self.md, timeout=30)
            out += list(resp.recommendations)
            token = resp.next_page_token
            if not token:
                return out

    def d(self, msg):
        return self.jf.MessageToDict(msg)


def key_of(rec_dict):
    w = rec_dict["workload"]
    return (w["cluster"], w["namespace"], w["kind"], w["name"])


def same(a, b, path="$"):
    """Deep equality with a relative tolerance for floats; returns a diff text or ""."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return "%s: keys %s vs %s" % (path, sorted(set(a) ^ set(b)), "")
        for k in a:
            d = same(a[k], b[k], path + "." + k)
            if d:
                return d
        return ""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d items vs %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return ""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        return "" if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) else \
            "%s: %r vs %r" % (path, a, b)
    if a != b:
        return "%s: %r vs %r" % (path, a, b)
    return ""


def compare_lists(got, api_recs, what):
    """got: parsed {"recommendations": [...]} from kopt; api_recs: messages."""
    want = {key_of(r): r for r in (API.d(m) for m in api_recs)}
    have = {key_of(r): r for r in got.get("recommendations", [])}
    check(set(have) == set(want), "%s lists the API's workloads (%s)" % (what, sorted(have)))
    diffs = [same(have[k], want[k]) for k in want if k in have]
    diffs = [d for d in diffs if d]
    check(not diffs, "%s: every recommendation equals the API's%s" %
          (what, (" (" + diffs[0] + ")") if diffs else ""))
    check(got.get("totalSize") == len(want), "%s: totalSize is %d" % (what, len(want)))


# ---- output formats ---------------------------------------------------------------

def test_formats():
    import yaml
    api_recs = API.list(cluster="local")
    check(len(api_recs) == 4, "the API has the four base workloads (got %d)" % len(api_recs))

    rc, out, err = kopt("recommendations", "-c", "local", "-o", "json")
    check(rc == 0, "recommendations -o json exits 0 (%d: %s)" % (rc, err.strip()))
    compare_lists(json.loads(out) if rc == 0 else {}, api_recs, "-o json")

    rc, out, err = kopt("recommendations", "-c", "local", "-o", "json", "--page-size", "1")
    compare_lists(json.loads(out) if rc == 0 else {}, api_recs, "--page-size 1 (four pages)")

    rc, out, err = kopt("recommendations", "-c", "local", "-o", "yaml")
    check(rc == 0, "recommendations -o yaml exits 0 (%d: %s)" % (rc, err.strip()))
    compare_lists(yaml.safe_load(out) if rc == 0 else {}, api_recs, "-o yaml")

    rc, out, err = kopt("recommendations", "-c", "local", "-o", "csv")
    check(rc == 0, "recommendations -o csv exits 0")
    rows = list(csv.DictReader(io.StringIO(out)))
    want_rows = []
    for r in api_recs:
        for c in r.containers:
            want_rows.append((r.workload.namespace, r.workload.name, c.container,
                              c.current.cpu_request_cores, c.recommended.cpu_request_cores,
                              c.current.cpu_limit_cores, c.recommended.cpu_limit_cores,
                              c.current.memory_request_bytes, c.recommended.memory_request_bytes,
                              c.current.memory_limit_bytes, c.recommended.memory_limit_bytes,
                              c.confidence, r.savings.monthly_cost))
    got_rows = [(x["namespace"], x["name"], x["container"],
                 float(x["cpu_request_current_cores"]), float(x["cpu_request_recommended_cores"]),
                 float(x["cpu_limit_current_cores"]), float(x["cpu_limit_recommended_cores"]),
                 int(x["memory_request_current_bytes"]),
                 int(x["memory_request_recommended_bytes"]),
                 int(x["memory_limit_current_bytes"]), int(x["memory_limit_recommended_bytes"]),
                 float(x["confidence"]), float(x["monthly_savings"])) for x in rows]
    check(sorted(got_rows) == sorted(want_rows),
          "-o csv: one row per container, values exactly the API's (%d rows)" % len(rows))

    rc, out, err = kopt("recommendations", "-c", "local")
    check(rc == 0 and "\033" not in out, "the table has no colour codes off a terminal")
    lines = out.rstrip("\n").split("\n")
    head = re.split(r"\s{2,}", lines[0].strip())
    check(head == ["WORKLOAD", "CONTAINER", "CPU REQ", "CPU LIM", "MEM REQ", "MEM LIM", "CONF",
                   "RISK", "SAVINGS/MONTH"], "table header (%s)" % head)
    # Default order: largest savings first.
    by_savings = sorted(api_recs, key=lambda r: -r.savings.monthly_cost)
    expect = []
    for r in by_savings:
        kind = {1: "Deployment", 2: "StatefulSet", 3: "DaemonSet", 5: "CronJob"}[r.workload.kind]
        for i, c in enumerate(r.containers):
            def cell(now, rec, f):
                return "%s -> %s" % (f(now) if now else "-", f(rec) if rec else "-")
            expect.append([
                "%s/%s/%s" % (r.workload.namespace, kind, r.workload.name) if i == 0 else "",
                c.container,
                cell(c.current.cpu_request_cores, c.recommended.cpu_request_cores, cpu_q),
                cell(c.current.cpu_limit_cores, c.recommended.cpu_limit_cores, cpu_q),
                cell(c.current.memory_request_bytes, c.recommended.memory_request_bytes, mem_q),
                cell(c.current.memory_limit_bytes, c.recommended.memory_limit_bytes, mem_q),
                "%.2f" % c.confidence,
                "%.1f%%" % (100 * max(c.replayed_risk.cpu_over_request_share,
                                      c.replayed_risk.memory_over_request_share)),
                "%.2f %s" % (r.savings.monthly_cost, r.savings.currency) if i == 0 else ""])
    got = []
    for ln in lines[1:-1]:
        # Column starts from the header, since empty cells leave gaps.
        starts = [lines[0].index(h) for h in head]
        cells = [ln[s:(starts[j + 1] if j + 1 < len(starts) else None)].strip()
                 for j, s in enumerate(starts)]
        got.append(cells)
    check(got == expect, "table rows: quantities, confidence, risk and savings as the API's, "
          "largest savings first%s" % ("" if got == expect else " (got %s, want %s)" %
                                       (got, expect)))
    total = sum(r.savings.monthly_cost for r in api_recs)
    check(lines[-1].startswith("TOTAL  4 workloads, 5 containers;") and
          ("savings %.2f USD/month" % total) in lines[-1], "totals line (%s)" % lines[-1])

    # On a terminal (script(1) gives kopt a pty): colours, unless NO_COLOR is set.
    if shutil.which("script"):
        cmd = shlex.join([A.kopt, "recommendations", "-c", "local", "--address", A.address,
                          "--ca-file", A.ca, "--api-key-file", A.key_file])
        for no_color, want in (("", True), ("1", False)):
            env = dict(os.environ, NO_COLOR=no_color)
            res = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                                 text=True, timeout=60, env=env)
            check(res.returncode == 0 and ("\033[1mWORKLOAD" in res.stdout) == want,
                  "on a terminal colours are %s with NO_COLOR=%r" %
                  ("on" if want else "off", no_color))

    rc, out, _ = kopt("recommendations", "-c", "local", "-o", "wide")
    check(rc == 0 and "REASONS" in out.split("\n")[0] and "CLUSTER" in out.split("\n")[0],
          "-o wide adds columns")

    # Filters: several namespaces (one call each), kind, name, min savings; sorting.
    rc, out, _ = kopt("recommendations", "-c", "local", "-n", "shop", "-n", "infra", "-o", "json")
    names = sorted(r["workload"]["name"] for r in json.loads(out)["recommendations"])
    check(names == ["db", "node-agent", "web"], "-n shop -n infra (got %s)" % names)
    rc, out, _ = kopt("recommendations", "-c", "local", "--kind", "statefulset", "-o", "json")
    names = [r["workload"]["name"] for r in json.loads(out)["recommendations"]]
    check(names == ["db"], "--kind statefulset (got %s)" % names)
    rc, out, _ = kopt("recommendations", "-c", "local", "--name", "report", "-o", "json")
    names = [r["workload"]["name"] for r in json.loads(out)["recommendations"]]
    check(names == ["report"], "--name report (got %s)" % names)
    floor = sorted(r.savings.monthly_cost for r in api_recs)[2]
    rc, out, _ = kopt("recommendations", "-c", "local", "--min-savings", repr(floor), "-o", "json")
    want = sorted(r.workload.name for r in api_recs if r.savings.monthly_cost >= floor)
    names = sorted(r["workload"]["name"] for r in json.loads(out)["recommendations"])
    check(names == want, "--min-savings %.2f (got %s, want %s)" % (floor, names, want))
    rc, out, _ = kopt("recommendations", "-c", "local", "--sort", "name", "-o", "json")
    names = [(r["workload"]["namespace"], r["workload"]["kind"], r["workload"]["name"])
             for r in json.loads(out)["recommendations"]]
    order = [("batch", "WORKLOAD_KIND_CRON_JOB", "report"),
             ("infra", "WORKLOAD_KIND_DAEMON_SET", "node-agent"),
             ("shop", "WORKLOAD_KIND_DEPLOYMENT", "web"),
             ("shop", "WORKLOAD_KIND_STATEFUL_SET", "db")]
    check(names == order, "--sort name: namespace, kind, name (got %s)" % names)
    rc, out, _ = kopt("recommendations", "-c", "local", "--sort", "cpu", "-o", "json")
    freed = [r.get("savings", {}).get("cpuCores", 0) for r in json.loads(out)["recommendations"]]
    check(freed == sorted(freed, reverse=True), "--sort cpu: most CPU freed first")
    return api_recs


def test_summary_explain_analyze(api_recs):
    rc, out, err = kopt("summary", "-c", "local", "-o", "json")
    want = API.d(API.stub.GetClusterSummary(API.pb.GetClusterSummaryRequest(cluster="local"),
                                            metadata=API.md, timeout=30))
    d = same(json.loads(out) if rc == 0 else {}, want)
    check(rc == 0 and not d, "summary -o json equals GetClusterSummary (%s)" % d)
    rc, out, _ = kopt("summary", "-c", "local")
    check(rc == 0 and "cluster local:" in out and "4 workloads" in out, "summary text")

    web = API.stub.GetRecommendation(API.pb.GetRecommendationRequest(
        cluster="local", namespace="shop", kind=1, name="web"), metadata=API.md, timeout=30)
    rc, out, err = kopt("explain", "-c", "local", "shop/deployment/web", "-o", "json")
    d = same(json.loads(out) if rc == 0 else {}, API.d(web))
    check(rc == 0 and not d, "explain -o json equals GetRecommendation (%s)" % d)
    rc, out, _ = kopt("explain", "-c", "local", "shop/Deployment/web")
    c = web.recommendation.containers[0]
    check(rc == 0 and c.explanation in out and "bounds" in out and "backtest" in out and
          "container sidecar" in out, "explain text shows explanation, bounds and backtest")
    rc, _, err = kopt("explain", "-c", "local", "shop/deployment/nope")
    check(rc == 1 and "not found" in err, "explain of an unknown workload: exit 1, not found")
    rc, _, err = kopt("explain", "-c", "local", "shop/web")
    check(rc == 2 and "NAMESPACE/KIND/NAME" in err, "explain with a bad reference: exit 2")

    rc, out, err = kopt("analyze", "-c", "local", "--dry-run", "-o", "json")
    res = json.loads(out) if rc == 0 else {}
    check(rc == 0 and res.get("workloadsAnalyzed") == 4 and "recommendationsWritten" not in res,
          "analyze --dry-run: 4 analysed, none written (%s %s)" % (res, err.strip()))
    rc, out, err = kopt("analyze", "-c", "local")
    check(rc == 0 and "4 workloads analysed, 4 recommendations written" in out,
          "analyze waits and reports (%s)" % out.strip())
    check("analysing" in err, "analyze says it is waiting")


# ---- kopt patch + kubectl kustomize ----------------------------------------------

def resources_of(rec_container):
    c = rec_container
    req, lim = {}, {}
    if c.recommended.cpu_request_cores > 0:
        req["cpu"] = cpu_q(c.recommended.cpu_request_cores)
    if c.recommended.memory_request_bytes > 0:
        req["memory"] = mem_q(c.recommended.memory_request_bytes)
    if c.recommended.cpu_limit_cores > 0:
        lim["cpu"] = cpu_q(c.recommended.cpu_limit_cores)
    if c.recommended.memory_limit_bytes > 0:
        lim["memory"] = mem_q(c.recommended.memory_limit_bytes)
    out = {}
    if req:
        out["requests"] = req
    if lim:
        out["limits"] = lim
    return out


def render(path):
    res = subprocess.run([A.kubectl, "kustomize", path], capture_output=True, text=True,
                         timeout=60)
    if not check(res.returncode == 0, "kubectl kustomize %s (%s)" % (
            os.path.basename(path), res.stderr.strip()[:300])):
        return {}
    import yaml
    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in yaml.safe_load_all(res.stdout) if o}


def test_patch(api_recs):
    import copy
    tmp = os.path.join(A.work, "kustomize")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(A.fixtures, tmp)
    base = render(os.path.join(tmp, "base"))
    check(len(base) == 4, "the sample base renders four objects")
    kinds = {1: "Deployment", 2: "StatefulSet", 3: "DaemonSet", 5: "CronJob"}
    for fmt, extra in (("strategic", []), ("json6902", ["--containers-only"])):
        out = os.path.join(tmp, "out-" + fmt)
        rc, _, err = kopt("patch", "-c", "local", "--out", out, "--base", "../base",
                          "--format", fmt, *extra)
        check(rc == 0 and "wrote 4 patches" in err, "patch --format %s (%s)" % (fmt, err.strip()))
        files = sorted(os.listdir(out)) if os.path.isdir(out) else []
        check(files == ["cronjob-batch-report.yaml", "daemonset-infra-node-agent.yaml",
                        "deployment-shop-web.yaml", "kustomization.yaml",
                        "statefulset-shop-db.yaml"], "patch files (%s)" % files)
        for f in files:
            if f != "kustomization.yaml":
                head = open(os.path.join(out, f)).read().split("\n")[0]
                check(head.startswith("# Written by kopt patch: sets the resources"),
                      "%s starts with its header comment" % f)
        got = render(out)
        want = copy.deepcopy(base)
        for r in api_recs:
            k = (kinds[r.workload.kind], r.workload.namespace, r.workload.name)
            obj = want[k]
            if fmt == "strategic":
                obj["metadata"].setdefault("annotations", {})["kopt.io/analysis"] = r.analysis_id
            spec = obj["spec"]["jobTemplate"]["spec"] if k[0] == "CronJob" else obj["spec"]
            for c in r.containers:
                for pc in spec["template"]["spec"]["containers"]:
                    if pc["name"] == c.container:
                        pc["resources"] = resources_of(c)
        diffs = [same(got.get(k), want[k], "%s/%s/%s" % k) for k in want]
        diffs = [d for d in diffs if d]
        check(not diffs and set(got) == set(want),
              "kustomize with the %s patches: exactly the recommended resources, nothing else "
              "changed%s" % (fmt, (" (" + diffs[0] + ")") if diffs else ""))
    rc, _, err = kopt("patch", "-c", "local")
    check(rc == 2 and "--out" in err, "patch without --out: exit 2 naming --out")


# ---- connection, credentials and errors -----------------------------------------

def test_errors():
    wrong = os.path.join(A.work, "wrong-key")
    with open(wrong, "w") as f:
        f.write("not-the-key-0123456789\n")
    rc, out, err = kopt("recommendations", "--address", A.address, "--ca-file", A.ca,
                        "--api-key-file", wrong, conn=False)
    check(rc == 3 and "refused the API key in " + wrong in err and "not-the-key" not in err,
          "wrong key: exit 3, names the file, never the key (%d: %s)" % (rc, err.strip()))
    rc, out, err = kopt("recommendations", "--address", A.address, "--ca-file", A.ca, conn=False)
    check(rc == 3 and "none was given" in err, "no key: exit 3 (%d: %s)" % (rc, err.strip()))
    rc, out, err = kopt("recommendations", "--address", A.address, "--ca-file", A.rogue_ca,
                        "--api-key-file", A.key_file, conn=False)
    check(rc == 4 and "does not trust" in err and A.rogue_ca in err,
          "wrong CA: exit 4, says the CA does not trust the certificate (%d: %s)" %
          (rc, err.strip()))
    rc, out, err = kopt("recommendations", "--address", A.down_address, "--ca-file", A.ca,
                        "--api-key-file", A.key_file, conn=False)
    check(rc == 4 and "cannot reach the advisor at " + A.down_address in err,
          "advisor down: exit 4, cannot reach (%d: %s)" % (rc, err.strip()))
    check(len(err.strip().split("\n")) == 1, "one line of error, no gRPC log noise")
    rc, out, err = kopt("recommendations", "--address", A.address, "--ca-file", A.key_file,
                        "--api-key-file", A.key_file, conn=False)
    check(rc == 2 and "holds no PEM certificate" in err, "a CA file without a certificate: "
          "exit 2 (%d: %s)" % (rc, err.strip()))
    rc, out, err = kopt("recommendations", "--sortt", "name")
    check(rc == 2 and "'--sortt'" in err, "unknown flag: exit 2 naming it (%s)" % err.strip())
    rc, out, err = kopt("recommendations", "--sort", "size")
    check(rc == 2 and "--sort" in err and "'size'" in err, "bad value: exit 2 naming flag and "
          "value (%s)" % err.strip())
    rc, out, err = kopt("recommendations", "--min-savings", "lots")
    check(rc == 2 and "--min-savings" in err, "bad number: exit 2 (%s)" % err.strip())
    rc, out, err = kopt("frobnicate", conn=False)
    check(rc == 2 and "frobnicate" in err, "unknown command: exit 2")
    rc, out, err = kopt("recommendations", conn=False)
    check(rc == 2 and "no advisor address" in err, "no address: exit 2")

    # The key and a token from the environment travel the same way.
    key = [l.strip() for l in open(A.key_file) if l.strip() and not l.startswith("#")][0]
    for var in ("KOPT_API_KEY", "KOPT_TOKEN"):
        rc, out, err = kopt("recommendations", "-c", "local", "-o", "json", conn=False,
                            env_extra={var: key, "KOPT_ADDRESS": A.address,
                                       "KOPT_CA_FILE": A.ca})
        check(rc == 0 and len(json.loads(out)["recommendations"]) == 4,
              "%s and KOPT_ADDRESS/KOPT_CA_FILE work (%s)" % (var, err.strip()))
    tok = os.path.join(A.work, "token")
    with open(tok, "w") as f:
        f.write(key + "\n")
    rc, out, err = kopt("summary", "-c", "local", "--address", A.address, "--ca-file", A.ca,
                        "--token-file", tok, conn=False)
    check(rc == 0, "--token-file works (%s)" % err.strip())
    rc, out, err = kopt("summary", "--address", A.address, "--ca-file", A.ca, "--token-file",
                        tok, "--api-key-file", A.key_file, conn=False)
    check(rc == 2 and "not both" in err, "a key and a token at once: exit 2")

    # A config file with a context; flags win over it.
    cfgdir = os.path.join(A.work, "cfg")
    os.makedirs(cfgdir, exist_ok=True)
    shutil.copy(A.ca, os.path.join(cfgdir, "ca.pem"))
    shutil.copy(A.key_file, os.path.join(cfgdir, "api-keys"))
    cfg = os.path.join(cfgdir, "config.yaml")
    with open(cfg, "w") as f:
        f.write("current-context: test\ncontexts:\n"
                "  - name: down\n    address: %s\n    ca-file: ca.pem\n    api-key-file: api-keys\n"
                "  - name: test\n    address: %s\n    ca-file: ca.pem\n    api-key-file: api-keys\n"
                "    cluster: local\n" % (A.down_address, A.address))
    rc, out, err = kopt("--config", cfg, "recommendations", "-o", "json", conn=False)
    check(rc == 0 and len(json.loads(out)["recommendations"]) == 4,
          "config file context: address, CA and key relative to the file, cluster (%s)" %
          err.strip())
    rc, out, err = kopt("recommendations", "-c", "local", conn=False,
                        env_extra={"KOPT_CONFIG": cfg, "KOPT_CONTEXT": "down"})
    check(rc == 4, "KOPT_CONTEXT picks another context (%d)" % rc)
    rc, out, err = kopt("recommendations", "--config", cfg, "--context", "down", "--address",
                        A.address, conn=False)
    check(rc == 0, "a flag wins over the context (%s)" % err.strip())
    rc, out, err = kopt("recommendations", "--config", cfg, "--context", "nope", conn=False)
    check(rc == 2 and "'nope'" in err, "unknown context: exit 2")
    with open(cfg, "w") as f:
        f.write("contexts:\n  - name: x\n    adress: 1.2.3.4:5\n")
    rc, out, err = kopt("recommendations", "--config", cfg, conn=False)
    check(rc == 2 and "adress" in err and "line 3" in err, "config typo: exit 2 naming key and "
          "line (%s)" % err.strip())


def test_help_version_completion():
    for cmd in ("recommendations", "summary", "explain", "analyze", "patch", "completion",
                "version"):
        rc, out, _ = kopt(cmd, "--help", conn=False)
        check(rc == 0 and "Usage: kopt " + cmd in out and
              ("Example" in out or cmd == "version"), "kopt %s --help" % cmd)
    rc, out, _ = kopt("version", conn=False)
    check(rc == 0 and re.match(r"^kopt \d+\.\d+\.\d+\n$", out), "kopt version (%s)" % out)
    rc, out, _ = kopt("completion", "bash", conn=False)
    res = subprocess.run(["bash", "-n"], input=out, capture_output=True, text=True)
    check(rc == 0 and res.returncode == 0 and "complete -F _kopt kopt" in out,
          "completion bash is valid bash")
    rc, out, _ = kopt("completion", "zsh", conn=False)
    check(rc == 0 and out.startswith("#compdef kopt"), "completion zsh")
    rc, out, err = kopt("completion", "fish", conn=False)
    check(rc == 2 and "'fish'" in err, "completion fish: exit 2")


def main():
    global A, API
    ap = argparse.ArgumentParser()
    for a in ("--kopt", "--address", "--down-address", "--ca", "--rogue-ca", "--key-file",
              "--fixtures", "--work"):
        ap.add_argument(a, required=True)
    ap.add_argument("--kubectl", default=shutil.which("kubectl"))
    ap.add_argument("-I", dest="includes", action="append", default=[])
    A = ap.parse_args()
    try:
        import grpc
        import grpc_tools  # noqa: F401
        import yaml  # noqa: F401
        from google.protobuf import json_format
    except ImportError as e:
        print("skip: %s" % e, file=sys.stderr)
        return 77
    if not A.kubectl:
        print("skip: kubectl missing", file=sys.stderr)
        return 77
    out = tempfile.mkdtemp(prefix="kopt-cli-py-")
    try:
        protos = ["kopt/v1/metrics.proto", "kopt/v1/advisor.proto"]
        if importlib.util.find_spec("google.api") is None:
            protos += ["google/api/annotations.proto", "google/api/http.proto"]
        res = subprocess.run([sys.executable, "-m", "grpc_tools.protoc"] +
                             ["-I" + d for d in A.includes] +
                             ["--python_out=" + out, "--grpc_python_out=" + out] + protos,
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("grpc_tools.protoc: " + res.stderr)
        for d in ("kopt", "kopt/v1"):
            open(os.path.join(out, d, "__init__.py"), "a").close()
        sys.path.insert(0, out)
        importlib.invalidate_caches()
        API = Api(grpc, importlib.import_module("kopt.v1.advisor_pb2"),
                  importlib.import_module("kopt.v1.metrics_pb2"), json_format)
        api_recs = test_formats()
        test_patch(api_recs)
        test_summary_explain_analyze(api_recs)
        test_errors()
        test_help_version_completion()
    except Exception:
        traceback.print_exc()
        FAILURES.append("exception")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print("%d failed" % len(FAILURES), file=sys.stderr)
    return 1 if FAILURES else 0


API = None
if __name__ == "__main__":
    sys.exit(main())
