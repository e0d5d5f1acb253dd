#!/usr/bin/python3
"""A Python agent made from kopt's protos, pushing to the real kopt-ingest.

Generates Python modules and gRPC stubs for kopt/v1/metrics.proto and
ingest.proto with grpc_tools.protoc into a temp dir, then, over mutual TLS
with the agent-local certificate (spiffe://kopt/cluster/local/agent/dev-agent):
  1. pushes N good batches of epoch E (seq 1..N) on one stream: the acks are
     cumulative, never go back, cover every batch, carry no rejection, and the
     stream ends OK after the client half-closes;
  2. pushes epoch E+1: seq 1 good, seq 2 for cluster "other": the stream ends
     PERMISSION_DENIED, an ack covers seq 2 and lists its rejection;
  3. connects without a client certificate: UNAVAILABLE (the handshake fails);
  4. pushes epoch E+3: seq 1 with 2 of its 5 windows 15 days old (older than
     ingest's default --max-batch-age, 14 days), seq 2 good: the stream ends
     OK, nothing is rejected, and an ack covering seq 1 carries a
     WindowRefusal (REJECT_REASON_TOO_OLD, 2 refused, 3 stored).
test_ingest.c starts nats-server and kopt-ingest, runs this script, and then
checks that KOPT_METRICS holds batches 1..N of epoch E, seq 1 of E+1 and
seqs 1 and 2 of E+3 (seq 1 with its 3 young windows).

Needs only Debian's python3-grpcio and python3-grpc-tools (/usr/bin/python3).
Exit 0 pass, 1 fail, 77 skip.

usage: test_ingest_python.py --target HOST:PORT --certs DIR --epoch E
                             [--batches N] -I DIR [-I DIR ...]
"""
import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

FAILURES = []
CLUSTER, AGENT, NODE = "local", "dev-agent", "node-1.example"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what, file=sys.stderr)
    else:
        print("ok: " + what, file=sys.stderr)
    return cond


def generate(out, includes):
    protos = ["kopt/v1/metrics.proto", "kopt/v1/ingest.proto"]
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


def batch(m, epoch, seq, cluster=CLUSTER, windows=5, old=0):
    """old: how many of the windows (the last ones) start 15 days ago."""
    now = int(time.time())
    b = m.MetricBatch(cluster=cluster, node=NODE, agent_id=AGENT, epoch=epoch, seq=seq,
                      agent_version="itest-python")
    b.created.seconds = now
    b.node_facts.cpu_capacity_cores = 4
    b.node_facts.cpu_allocatable_cores = 3.5
    for i in range(windows):
        w = b.windows.add(namespace="shop", workload_kind=m.WORKLOAD_KIND_DEPLOYMENT,
                          workload_name="web", pod="web-py-%d-%d" % (seq, i), container="app")
        age = 15 * 86400 if i >= windows - old else 0
        w.window_start.seconds = now - age - 120 - 60 * i
        w.window_end.seconds = now - age - 60 - 60 * i
        w.cpu_usage_mean_cores = 0.25
        w.cpu_usage_peak_cores = 0.75
        w.memory_working_set_peak_bytes = 200 << 20
        w.memory_working_set_last_bytes = 150 << 20
        w.sample_count = 60
    return b


def push(grpc, stub, batches):
    """Sends the batches, half-closes; returns (acks, status code, details)."""
    acks = []
    call = stub.Push(iter(batches), timeout=20)
    try:
        for ack in call:
            acks.append(ack)
        return acks, call.code(), call.details()
    except grpc.RpcError as e:
        return acks, e.code(), e.details()


def acks_monotonic(acks, epoch):
    last = 0
    for a in acks:
        if a.epoch != epoch or a.acked_through_seq < last:
            return False
        last = a.acked_through_seq
    return True


def run(args, grpc, m, ingest, ingest_grpc):
    def pem(name):
        with open(os.path.join(args.certs, name), "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(root_certificates=pem("ca.pem"),
                                         private_key=pem("agent-local-key.pem"),
                                         certificate_chain=pem("agent-local.pem"))
    e, n = args.epoch, args.batches

    with grpc.secure_channel(args.target, creds) as ch:
        stub = ingest_grpc.IngestStub(ch)

        # 1. Good batches: every one acked, cumulatively.
        acks, code, details = push(grpc, stub, [batch(m, e, s) for s in range(1, n + 1)])
        check(code == grpc.StatusCode.OK, "good stream ends OK (got %s %r)" % (code, details))
        check(len(acks) >= 1, "good stream got acks (%d for %d batches)" % (len(acks), n))
        check(acks_monotonic(acks, e), "acks are for epoch %d and never go back" % e)
        check(acks and acks[-1].acked_through_seq == n,
              "last ack covers seq %d (got %s)" % (n, acks[-1].acked_through_seq if acks else None))
        check(all(len(a.rejections) == 0 for a in acks), "good batches are not rejected")

        # 2. A batch for another cluster is refused with a rejection.
        acks, code, details = push(grpc, stub, [batch(m, e + 1, 1), batch(m, e + 1, 2, "other")])
        check(code == grpc.StatusCode.PERMISSION_DENIED,
              "cluster mismatch ends PERMISSION_DENIED (got %s %r)" % (code, details))
        check(details is not None and "other" in details, "status names the cluster: %r" % details)
        check(acks_monotonic(acks, e + 1) and acks and acks[-1].acked_through_seq == 2,
              "the refused batch is settled: acked through 2 (%s)"
              % [a.acked_through_seq for a in acks])
        rej = [r for a in acks for r in a.rejections]
        check(len(rej) == 1 and rej[0].epoch == e + 1 and rej[0].seq == 2 and
              rej[0].reason == ingest.REJECT_REASON_PERMISSION_DENIED,
              "one rejection for seq 2, reason PERMISSION_DENIED (%s)" % rej)

    # 3. No client certificate: the handshake fails.
    with grpc.secure_channel(args.target,
                             grpc.ssl_channel_credentials(root_certificates=pem("ca.pem"))) as ch:
        acks, code, details = push(grpc, ingest_grpc.IngestStub(ch), [batch(m, e + 2, 1)])
        check(code == grpc.StatusCode.UNAVAILABLE and not acks,
              "no client certificate: UNAVAILABLE (got %s %r)" % (code, details))

    # 4. Windows too old are left out and reported; the stream goes on.
    with grpc.secure_channel(args.target, creds) as ch:
        e4 = e + 3
        acks, code, details = push(grpc, ingest_grpc.IngestStub(ch),
                                   [batch(m, e4, 1, old=2), batch(m, e4, 2)])
        check(code == grpc.StatusCode.OK,
              "old windows do not end the stream: OK (got %s %r)" % (code, details))
        check(acks_monotonic(acks, e4) and acks and acks[-1].acked_through_seq == 2,
              "both batches acked (%s)" % [a.acked_through_seq for a in acks])
        check(all(len(a.rejections) == 0 for a in acks), "old windows are not a rejection")
        refs = [(r, a) for a in acks for r in a.window_refusals]
        check(len(refs) == 1, "one window refusal (%s)" % [r for r, _ in refs])
        if refs:
            r, a = refs[0]
            check(r.epoch == e4 and r.seq == 1 and r.reason == ingest.REJECT_REASON_TOO_OLD and
                  r.windows_refused == 2 and r.windows_stored == 3 and
                  a.acked_through_seq >= 1 and r.message,
                  "seq 1: TOO_OLD, 2 refused, 3 stored, in an ack covering it (%s)" % r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("-I", dest="includes", action="append", default=[])
    args = ap.parse_args()
    try:
        import grpc
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("SKIP: %s (apt-get install python3-grpcio python3-grpc-tools)" % e, file=sys.stderr)
        return 77
    out = tempfile.mkdtemp(prefix="kopt-itest-py-")
    try:
        generate(out, args.includes)
        m = importlib.import_module("kopt.v1.metrics_pb2")
        ingest = importlib.import_module("kopt.v1.ingest_pb2")
        ingest_grpc = importlib.import_module("kopt.v1.ingest_pb2_grpc")
        run(args, grpc, m, ingest, ingest_grpc)
    except Exception:
        traceback.print_exc()
        FAILURES.append("exception")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
