#!/usr/bin/python3
"""A Python client made from kopt's protos, calling the real kopt-advisor.

Generates Python modules and gRPC stubs for kopt/v1/advisor.proto (and what it
imports) with grpc_tools.protoc into a temp dir, then over plaintext gRPC:
  1. ListRecommendations for cluster "local" with the API key: three
     workloads, each with containers, savings and an analysis id (the basic
     view without bounds or backtest), and from GetRecommendation web's
     bounds around its requests, its backtest and replayed risk; paging with
     page_size=1 walks the same three;
  2. GetRecommendation of an unknown workload: NOT_FOUND;
  3. a wrong key: UNAUTHENTICATED.
test_advisor.c starts the servers, writes the history, runs the analysis and
this script. Needs /usr/bin/python3 with python3-grpcio and python3-grpc-tools.
Exit 0 pass, 1 fail, 77 skip.

usage: test_advisor_python.py --target HOST:PORT --key KEY -I DIR [-I DIR ...]
"""
import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

FAILURES = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, file=sys.stderr)
    if not cond:
        FAILURES.append(what)
    return cond


def generate(out, includes):
    protos = ["kopt/v1/metrics.proto", "kopt/v1/advisor.proto"]
    if importlib.util.find_spec("google.api") is None:
        protos += ["google/api/annotations.proto", "google/api/http.proto"]
    cmd = [sys.executable, "-m", "grpc_tools.protoc"]
    cmd += ["-I" + d for d in includes]
    cmd += ["--python_out=" + out, "--grpc_python_out=" + out] + protos
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError("grpc_tools.protoc failed (%d): %s" % (res.returncode, res.stderr))
    for d in ("kopt", "kopt/v1"):
        open(os.path.join(out, d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    importlib.invalidate_caches()


def run(args, grpc, pb, pb_grpc, metrics_pb):
    key = [("authorization", "Bearer " + args.key)]
    with grpc.insecure_channel(args.target) as ch:
        stub = pb_grpc.AdvisorStub(ch)
        resp = stub.ListRecommendations(pb.ListRecommendationsRequest(cluster="local"),
                                        metadata=key, timeout=20)
        names = sorted(r.workload.name for r in resp.recommendations)
        check(names == ["db", "sleepy", "web"], "lists the three workloads (got %s)" % names)
        check(resp.total_size == 3, "total_size is 3 (got %d)" % resp.total_size)
        check(all(r.containers and r.analysis_id and r.savings.currency == "USD"
                  for r in resp.recommendations), "each has containers, savings, an analysis id")
        web = [r for r in resp.recommendations if r.workload.name == "web"]
        check(web and web[0].containers[0].recommended.cpu_request_cores < 1.0,
              "web's CPU request is lowered")
        c = web[0].containers[0] if web else None
        check(c is not None and not c.HasField("bounds") and not c.HasField("backtest")
              and not c.HasField("replayed_risk"),
              "the list's basic view leaves out the bounds, replayed risk and backtest")
        full = stub.GetRecommendation(pb.GetRecommendationRequest(
            cluster="local", namespace="shop", kind=metrics_pb.WORKLOAD_KIND_DEPLOYMENT,
            name="web"), metadata=key, timeout=20).recommendation.containers[0]
        check(full.bounds.cpu_lower_cores <= full.recommended.cpu_request_cores
              <= full.bounds.cpu_upper_cores
              and full.bounds.memory_lower_bytes <= full.recommended.memory_request_bytes
              <= full.bounds.memory_upper_bytes,
              "web's bounds bracket its recommended requests")
        bt = full.backtest
        check(bt.valid and bt.windows == 1920 and bt.scored_hours == 16
              and bt.split_time.seconds - bt.fit_start_time.seconds == 32 * 3600
              and 0 <= bt.cpu_over_request_share <= 1 and 0 <= bt.memory_over_request_share <= 1,
              "web's backtest: fitted on 32 hours, scored on 16 (got %s)" % str(bt).replace(
                  "\n", " "))
        check(full.replayed_risk.windows == 5760
              and 0 <= full.replayed_risk.cpu_over_request_share <= 1,
              "web's replayed risk covers its 48 hours")

        seen, token = [], ""
        for _ in range(5):
            page = stub.ListRecommendations(
                pb.ListRecommendationsRequest(cluster="local", page_size=1, page_token=token),
                metadata=key, timeout=20)
            seen += [r.workload.name for r in page.recommendations]
            token = page.next_page_token
            if not token:
                break
        check(sorted(seen) == names, "paging walks the same workloads (got %s)" % seen)

        try:
            stub.GetRecommendation(pb.GetRecommendationRequest(
                cluster="local", namespace="shop", kind=metrics_pb.WORKLOAD_KIND_DEPLOYMENT,
                name="nope"), metadata=key, timeout=20)
            check(False, "unknown workload is NOT_FOUND")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, "unknown workload is NOT_FOUND (%s)" %
                  e.code())
        try:
            stub.ListRecommendations(pb.ListRecommendationsRequest(),
                                     metadata=[("authorization", "Bearer wrong")], timeout=20)
            check(False, "a wrong key is UNAUTHENTICATED")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAUTHENTICATED,
                  "a wrong key is UNAUTHENTICATED (%s)" % e.code())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("-I", dest="includes", action="append", default=[])
    args = ap.parse_args()
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("skip: %s" % e, file=sys.stderr)
        return 77
    out = tempfile.mkdtemp(prefix="kopt-advisor-py-")
    try:
        generate(out, args.includes)
        pb = importlib.import_module("kopt.v1.advisor_pb2")
        pb_grpc = importlib.import_module("kopt.v1.advisor_pb2_grpc")
        metrics_pb = importlib.import_module("kopt.v1.metrics_pb2")
        run(args, grpc, pb, pb_grpc, metrics_pb)
    except Exception:
        traceback.print_exc()
        FAILURES.append("exception")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
