#!/usr/bin/python3
"""Generate, compile and run kopt's clients in Python, Go and TypeScript.

Run by test_sdk_clients.c once a live kopt-advisor serves seeded data. In a temp
dir:
  1. `buf generate -o TMP/proto` in proto/ (proto/buf.gen.yaml, offline);
  2. TMP/docs/openapi/kopt.swagger.json must equal docs/openapi/kopt.swagger.json;
  3. Python: tests/sdk/python/client.py with the generated modules;
     Go: tests/sdk/go/client.go built in GOPATH mode against Debian's Go packages
     (/usr/share/gocode, GOPROXY=off, GO111MODULE=off);
     TypeScript: tests/sdk/ts/client.ts with the generated files, `tsc --strict`
     (tests/sdk/ts/tsconfig.json), run with node;
  4. each client's answer (JSON, one shape) matches the seeded workloads, and
     the three answers are the same.
Tools come from scripts/deps: .tools/node_modules/.bin/buf, .tools/sdk/ (npm ci of
tests/sdk/ts/package-lock.json), .tools/bin/protoc-gen-swagger, Debian's go,
protoc-gen-go, protoc-gen-go-grpc, grpc_python_plugin. Exit 0 pass, 1 fail,
77 skip (a tool missing).

usage: sdk_clients.py --src ROOT --target HOST:PORT --key KEY --cluster C --gocache DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FAILURES = []
GO_IMPORT = "github.com/kopt/kopt/gen/go/kopt/v1"  # proto go_package


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, file=sys.stderr)
    if not cond:
        FAILURES.append(what)
    return cond


def run(cmd, **kw):
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    took = time.monotonic() - t0
    if res.returncode != 0:
        raise RuntimeError("%s exited %d after %.1f s:\n%s%s" % (
            " ".join(cmd), res.returncode, took, res.stdout, res.stderr))
    return res.stdout, took


def missing_tools(src):
    need = {
        "buf": os.path.join(src, ".tools/node_modules/.bin/buf"),
        "protoc-gen-es": os.path.join(src, ".tools/sdk/node_modules/.bin/protoc-gen-es"),
        "tsc": os.path.join(src, ".tools/sdk/node_modules/.bin/tsc"),
        "protoc-gen-swagger": os.path.join(src, ".tools/bin/protoc-gen-swagger"),
    }
    gone = [n for n, p in need.items() if not os.access(p, os.X_OK)]
    for exe in ("go", "node", "protoc", "protoc-gen-go", "protoc-gen-go-grpc",
                "grpc_python_plugin"):
        if shutil.which(exe) is None:
            gone.append(exe)
    return gone


def generate(src, tmp):
    _, took = run([os.path.join(src, ".tools/node_modules/.bin/buf"), "generate",
                   "-o", os.path.join(tmp, "proto")], cwd=os.path.join(src, "proto"))
    print("timing: buf generate %.1f s" % took, file=sys.stderr)
    gen = os.path.join(tmp, "proto/gen")
    for f in ("go/kopt/v1/advisor.pb.go", "go/kopt/v1/advisor_grpc.pb.go",
              "python/kopt/v1/advisor_pb2_grpc.py", "ts/kopt/v1/advisor_pb.ts"):
        check(os.path.isfile(os.path.join(gen, f)), "buf generate wrote gen/" + f)
    return gen


def check_openapi(src, tmp):
    fresh = os.path.join(tmp, "docs/openapi/kopt.swagger.json")
    committed = os.path.join(src, "docs/openapi/kopt.swagger.json")
    with open(fresh, encoding="utf-8") as f:
        a = f.read()
    with open(committed, encoding="utf-8") as f:
        b = f.read()
    check(a == b, "docs/openapi/kopt.swagger.json is what buf generate makes today "
          "(if not: cd proto && buf generate, and commit it)")
    doc = json.loads(a)
    check(sorted(doc["paths"]) == [
        "/v1/analyses", "/v1/clusters", "/v1/clusters/{cluster}/summary",
        "/v1/recommendations", "/v1/recommendations/{cluster}/{namespace}/{kind}/{name}",
        "/v1/workloads/{cluster}/{namespace}/{kind}/{name}/usage"],
        "OpenAPI paths are the six google.api.http routes")


def python_client(src, gen, args):
    env = dict(os.environ, PYTHONPATH=os.path.join(gen, "python"))
    out, took = run([sys.executable, os.path.join(src, "tests/sdk/python/client.py"),
                     args.target, args.key, args.cluster], env=env)
    print("timing: python client %.1f s" % took, file=sys.stderr)
    return json.loads(out)


def go_client(src, gen, tmp, args):
    gopath = os.path.join(tmp, "gopath")
    pkg = os.path.join(gopath, "src", GO_IMPORT)
    shutil.copytree(os.path.join(gen, "go/kopt/v1"), pkg)
    main = os.path.join(gopath, "src/koptclient")
    os.makedirs(main)
    shutil.copy(os.path.join(src, "tests/sdk/go/client.go"), main)
    # Offline: GOPATH mode, Debian's Go sources, no module proxy.
    env = dict(os.environ, GO111MODULE="off", GOPROXY="off", GOFLAGS="",
               GOPATH=gopath + ":/usr/share/gocode", GOCACHE=args.gocache)
    exe = os.path.join(tmp, "go-client")
    _, took = run(["go", "vet", "."], cwd=main, env=env)
    _, took2 = run(["go", "build", "-o", exe, "."], cwd=main, env=env)
    print("timing: go vet %.1f s, go build %.1f s" % (took, took2), file=sys.stderr)
    out, took = run([exe, args.target, args.key, args.cluster])
    print("timing: go client %.1f s" % took, file=sys.stderr)
    return json.loads(out)


def ts_client(src, gen, tmp, args):
    d = os.path.join(tmp, "ts")
    shutil.copytree(os.path.join(gen, "ts"), d)
    for f in ("client.ts", "tsconfig.json", "package.json"):
        shutil.copy(os.path.join(src, "tests/sdk/ts", f), d)
    os.symlink(os.path.join(src, ".tools/sdk/node_modules"), os.path.join(d, "node_modules"))
    _, took = run([os.path.join(d, "node_modules/.bin/tsc"), "-p", d], cwd=d)
    print("timing: tsc --strict %.1f s" % took, file=sys.stderr)
    out, took = run(["node", os.path.join(d, "js/client.js"), args.target, args.key,
                     args.cluster], cwd=d)
    print("timing: ts client %.1f s" % took, file=sys.stderr)
    return json.loads(out)


def check_answer(lang, got):
    """What test_sdk_clients.c seeded: web over-, db under-provisioned, sleepy idle."""
    recs = {r["name"]: r for r in got["recommendations"]}
    check(sorted(recs) == ["db", "sleepy", "web"] and got["total_size"] == 3,
          "%s: three workloads of the cluster, got %r (total %r)"
          % (lang, sorted(recs), got["total_size"]))
    # By cluster, namespace, kind and name: batch/sleepy, shop/Deployment/web, shop/StatefulSet/db.
    check([r["name"] for r in got["recommendations"]] == ["sleepy", "web", "db"],
          "%s: RECOMMENDATION_ORDER_NAME_ASC orders by namespace, kind, name" % lang)
    if sorted(recs) != ["db", "sleepy", "web"]:
        return
    web, db, sleepy = recs["web"], recs["db"], recs["sleepy"]
    check((web["namespace"], web["kind"], db["kind"], sleepy["namespace"])
          == ("shop", 1, 2, "batch"), "%s: namespaces and kinds (1 Deployment, 2 StatefulSet)"
          % lang)
    check(all(r["analysis_id"] for r in recs.values())
          and len({r["analysis_id"] for r in recs.values()}) == 1,
          "%s: one analysis id on every recommendation" % lang)
    wc, dc = web["containers"][0], db["containers"][0]
    check(wc["container"] == "app" and wc["current_cpu"] == 1.0
          and wc["current_memory"] == str(1024 * 1048576),
          "%s: web's current requests are the seeded 1 core and 1 GiB: %r" % (lang, wc))
    check(0.2 < wc["recommended_cpu"] < 1.0,
          "%s: web (0.2 cores used of 1) gets less CPU: %r" % (lang, wc["recommended_cpu"]))
    check(dc["container"] == "pg" and dc["current_cpu"] == 0.25 and dc["recommended_cpu"] > 0.5,
          "%s: db (0.5 cores used of 0.25) gets more CPU: %r" % (lang, dc))
    check(sleepy["idle"] and not web["idle"] and not db["idle"], "%s: only sleepy is idle"
          % lang)
    check(got["not_found_code"] == 5, "%s: unknown workload is NOT_FOUND (5), got %r"
          % (lang, got["not_found_code"]))
    check(got["no_key_code"] == 16, "%s: no API key is UNAUTHENTICATED (16), got %r"
          % (lang, got["no_key_code"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for a in ("--src", "--target", "--key", "--cluster", "--gocache"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    src = os.path.abspath(args.src)
    gone = missing_tools(src)
    if gone:
        print("SKIP: missing %s (run scripts/deps)" % ", ".join(gone), file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix="kopt-sdk-clients-")
    answers = {}
    try:
        gen = generate(src, tmp)
        check_openapi(src, tmp)
        for lang, fn in (("python", lambda: python_client(src, gen, args)),
                         ("go", lambda: go_client(src, gen, tmp, args)),
                         ("typescript", lambda: ts_client(src, gen, tmp, args))):
            try:
                answers[lang] = fn()
                check_answer(lang, answers[lang])
            except Exception as e:  # one language failing must not hide the others
                check(False, "%s client: %s" % (lang, e))
        if len(answers) == 3:
            check(answers["python"] == answers["go"] == answers["typescript"],
                  "Python, Go and TypeScript got the same answer")
            print(json.dumps(answers["go"], indent=1), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("sdk_clients: %d check(s) failed" % len(FAILURES), file=sys.stderr)
        return 1
    print("sdk_clients: Python, Go and TypeScript clients called the advisor", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
