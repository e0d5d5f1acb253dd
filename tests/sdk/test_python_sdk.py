#!/usr/bin/python3
"""Cross-language check of the kopt.v1 contracts with a generated Python SDK.

Generates Python modules and gRPC stubs from proto/ with grpc_tools.protoc into
a temp dir, then:
  1. MetricBatch bytes made in Python are decoded by protoc-c code
     (tests/sdk/proto_roundtrip.c) to the same values, and re-packed by C to a
     message Python reads back equal; bytes made in C read right in Python.
  2. The generated stubs talk to an in-process Python gRPC server for
     kopt.v1.Ingest/Push (bidirectional stream, cumulative acks, a poison
     batch rejected) and kopt.v1.Advisor/ListRecommendations (filters,
     paging, API key). The real servers are C; this pins the wire contract
     (method paths, streaming shape) that they must serve.
  3. The google.api.http annotations match the table in docs/api.md.

Run by meson (suite unit); needs /usr/bin/python3 with grpcio and grpc_tools
(python3-grpcio, python3-grpc-tools). Exit 0 pass, 1 fail, 77 skip.

usage: test_python_sdk.py --roundtrip EXE --docs docs/api.md -I DIR [-I DIR ...]
"""
import argparse
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from concurrent import futures

API_KEY = "test-key-0123"
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def generate(out, includes):
    """Python modules for kopt/v1 (and google/api unless installed) into out."""
    protos = ["kopt/v1/metrics.proto", "kopt/v1/ingest.proto", "kopt/v1/advisor.proto"]
    if importlib.util.find_spec("google.api") is None:
        protos += ["google/api/annotations.proto", "google/api/http.proto"]
    cmd = [sys.executable, "-m", "grpc_tools.protoc"]
    cmd += ["-I" + d for d in includes]
    cmd += ["--python_out=" + out, "--grpc_python_out=" + out] + protos
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("grpc_tools.protoc failed (%d): %s" % (res.returncode, res.stderr))
    # Regular packages for kopt/ so nothing else named kopt can shadow them.
    for d in ("kopt", "kopt/v1"):
        open(os.path.join(out, d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    importlib.invalidate_caches()


def python_batch(m):
    """A MetricBatch with every field set, made with the generated SDK."""
    b = m.MetricBatch(cluster="prod-eu", node="ip-10-0-1-17", agent_id="agent-17",
                      epoch=1700000000123456789, seq=42, agent_version="0.1.0")
    b.created.seconds, b.created.nanos = 1700000123, 456000000
    n = b.node_facts
    n.cpu_capacity_cores, n.cpu_allocatable_cores = 16, 15.89
    n.memory_capacity_bytes, n.memory_allocatable_bytes = 64 << 30, 62 << 30
    n.kernel_version, n.kubelet_version = "6.1.0-18-amd64", "v1.29.2"
    n.container_runtime_version, n.architecture = "containerd://1.7.13", "amd64"
    n.instance_type, n.zone, n.region = "m6i.4xlarge", "eu-west-1a", "eu-west-1"
    n.metric_source = m.METRIC_SOURCE_CGROUP_V2
    n.labels["karpenter.sh/capacity-type"] = "spot"
    n.labels["team"] = "payments \u00e9\u00e8 \"quoted\""
    for i in range(3):
        w = b.windows.add(namespace="shop", workload_kind=m.WORKLOAD_KIND_DEPLOYMENT,
                          workload_name="checkout", pod="checkout-%d" % i, container="app",
                          container_id="containerd://%04x" % i, pod_uid="uid-%d" % i)
        w.window_start.seconds = 1700000000 + 60 * i
        w.window_end.seconds = 1700000060 + 60 * i
        w.window_end.nanos = 999999999
        w.cpu_usage_mean_cores = 0.1 + i / 3
        w.cpu_usage_peak_cores = 1.75
        w.cpu_throttled_seconds = 0.5
        w.cpu_throttled_periods, w.cpu_periods = 12, 600
        w.memory_working_set_peak_bytes = (3 << 30) + 1
        w.memory_working_set_last_bytes = 2 << 30
        w.memory_rss_peak_bytes = 2 ** 64 - 1
        w.oom_kills, w.restarts = i, 2 ** 32 - 1
        w.cpu_request_cores, w.cpu_limit_cores = 0.5, 0
        w.memory_request_bytes, w.memory_limit_bytes = 1 << 30, 4 << 30
        w.sample_count = 60
    wl = b.workloads.add(namespace="shop", kind=m.WORKLOAD_KIND_DEPLOYMENT, name="checkout",
                         replicas=3, ready_replicas=2, qos_class=m.QOS_CLASS_BURSTABLE)
    wl.hpa.name, wl.hpa.min_replicas, wl.hpa.max_replicas = "checkout", 2, 10
    wl.hpa.target_cpu_utilization_percent = 70
    wl.hpa.metric_names.extend(["cpu", "requests_per_second"])
    return b


def run_c(exe, mode, data=b""):
    res = subprocess.run([exe, mode], input=data, capture_output=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError("%s %s exited %d: %s" % (exe, mode, res.returncode,
                                                    res.stderr.decode(errors="replace")))
    return res.stdout


def ts_dict(ts):
    return {"seconds": ts.seconds, "nanos": ts.nanos}


def test_roundtrip(m, exe):
    b = python_batch(m)
    wire = b.SerializeToString()

    # Python -> C: every value C decodes equals what Python set.
    got = json.loads(run_c(exe, "decode", wire))
    for f in ("cluster", "node", "agent_id", "epoch", "seq", "agent_version"):
        check(got[f] == getattr(b, f), "C decoded %s = %r, want %r" % (f, got[f], getattr(b, f)))
    check(got["created"] == ts_dict(b.created), "C decoded created")
    nf = got["node_facts"]
    for f in ("cpu_capacity_cores", "cpu_allocatable_cores", "memory_capacity_bytes",
              "memory_allocatable_bytes", "kernel_version", "kubelet_version",
              "container_runtime_version", "architecture", "instance_type", "zone", "region",
              "metric_source"):
        check(nf[f] == getattr(b.node_facts, f), "C decoded node_facts.%s" % f)
    check(nf["labels"] == dict(b.node_facts.labels), "C decoded node_facts.labels")
    check(len(got["windows"]) == len(b.windows), "C decoded windows count")
    for cw, pw in zip(got["windows"], b.windows):
        for f, v in cw.items():
            want = ts_dict(getattr(pw, f)) if f.startswith("window_") else getattr(pw, f)
            check(v == want, "C decoded windows[].%s = %r, want %r" % (f, v, want))
    cwl, pwl = got["workloads"][0], b.workloads[0]
    for f in ("namespace", "kind", "name", "replicas", "ready_replicas", "qos_class"):
        check(cwl[f] == getattr(pwl, f), "C decoded workloads[0].%s" % f)
    for f, v in cwl["hpa"].items():
        want = list(pwl.hpa.metric_names) if f == "metric_names" else getattr(pwl.hpa, f)
        check(v == want, "C decoded workloads[0].hpa.%s" % f)

    # Python -> C -> Python: C re-packs to a message equal to the original.
    back = m.MetricBatch.FromString(run_c(exe, "repack", wire))
    check(back == b, "C repack of a Python batch differs:\n%s\nvs\n%s" % (back, b))

    # C -> Python.
    c = m.MetricBatch.FromString(run_c(exe, "encode"))
    check((c.cluster, c.node, c.agent_id, c.seq, c.agent_version)
          == ("lab", "node-a", "agent-a", 1, "0.1.0-test"), "C batch identity in Python")
    check(c.epoch == 2 ** 64 - 1, "C batch epoch %d" % c.epoch)
    check((c.created.seconds, c.created.nanos) == (1700000000, 5), "C batch created")
    check(c.node_facts.cpu_allocatable_cores == 7.91 and c.node_facts.architecture == "arm64"
          and c.node_facts.memory_capacity_bytes == 32 << 30
          and c.node_facts.metric_source == m.METRIC_SOURCE_CGROUP_V1
          and dict(c.node_facts.labels) == {"team": 'search "core"'}, "C batch node_facts")
    w = c.windows[0]
    check(w.workload_kind == m.WORKLOAD_KIND_STATEFUL_SET and w.pod == "index-0"
          and w.window_start.seconds == 1699999940 and w.window_end.seconds == 1700000000,
          "C batch window identity")
    check(w.cpu_usage_peak_cores == 3.9999999999999996 and w.cpu_throttled_seconds == 1e-6,
          "C batch doubles exact")
    check(w.memory_working_set_peak_bytes == 2 ** 53 + 1 and w.restarts == 2 ** 32 - 1
          and w.memory_limit_bytes == 0 and w.memory_request_bytes == 6 << 30,
          "C batch integers exact")
    wl = c.workloads[0]
    check(wl.qos_class == m.QOS_CLASS_GUARANTEED and wl.hpa.max_replicas == 5
          and wl.hpa.target_memory_utilization_percent == 80
          and list(wl.hpa.metric_names) == ["cpu", "memory"], "C batch workload facts")

    # Garbage is refused by C with a non-zero exit, not a crash.
    res = subprocess.run([exe, "decode"], input=wire[: len(wire) - 3], capture_output=True)
    check(res.returncode == 1, "C decode of a truncated batch exited %d" % res.returncode)


def test_grpc(m, ingest, ingest_grpc, advisor, advisor_grpc):
    import grpc

    class Ingest(ingest_grpc.IngestServicer):
        """Acks every 4 batches and at the end, rejects batches without a cluster."""

        def Push(self, request_iterator, context):
            rejections, last = [], None
            for batch in request_iterator:
                if not batch.cluster:
                    rejections.append(ingest.BatchRejection(
                        epoch=batch.epoch, seq=batch.seq,
                        reason=ingest.REJECT_REASON_INVALID, message="cluster is empty"))
                last = batch
                if batch.seq % 4 == 0:
                    yield ingest.PushAck(epoch=batch.epoch, acked_through_seq=batch.seq,
                                         rejections=rejections)
                    rejections = []
            if last is not None and (last.seq % 4 != 0 or rejections):
                yield ingest.PushAck(epoch=last.epoch, acked_through_seq=last.seq,
                                     rejections=rejections)

    recs = []
    for i in range(25):
        r = advisor.Recommendation(idle=(i % 5 == 0), analysis_id="a-1", data_points=1440)
        r.workload.cluster = "prod" if i % 2 else "dev"
        r.workload.namespace, r.workload.name = "ns%d" % (i % 3), "w%02d" % i
        r.workload.kind = m.WORKLOAD_KIND_DEPLOYMENT
        r.savings.monthly_cost, r.savings.currency = float(i), "USD"
        c = r.containers.add(container="app", confidence=0.5)
        c.current.cpu_request_cores, c.recommended.cpu_request_cores = 1.0, 0.25
        c.reasons.append(advisor.RECOMMENDATION_REASON_OVER_PROVISIONED)
        recs.append(r)

    class Advisor(advisor_grpc.AdvisorServicer):
        def ListRecommendations(self, req, context):
            if dict(context.invocation_metadata()).get("authorization") != "Bearer " + API_KEY:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key")
            sel = [r for r in recs
                   if (not req.cluster or r.workload.cluster == req.cluster)
                   and (not req.namespace or r.workload.namespace == req.namespace)
                   and (not req.min_monthly_savings
                        or r.savings.monthly_cost >= req.min_monthly_savings)
                   and (not req.idle_only or r.idle)]
            sel.sort(key=lambda r: -r.savings.monthly_cost)
            start = int(req.page_token or 0)
            size = req.page_size or 100
            page = sel[start:start + size]
            nxt = str(start + size) if start + size < len(sel) else ""
            return advisor.ListRecommendationsResponse(recommendations=page,
                                                       next_page_token=nxt,
                                                       total_size=len(sel))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ingest_grpc.add_IngestServicer_to_server(Ingest(), server)
    advisor_grpc.add_AdvisorServicer_to_server(Advisor(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    check(port > 0, "bind a loopback port")
    server.start()
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    try:
        # Ingest.Push: 10 batches of epoch 7, batch 6 is poison.
        def batches():
            for seq in range(1, 11):
                b = m.MetricBatch(cluster="" if seq == 6 else "prod", node="n1",
                                  agent_id="a1", epoch=7, seq=seq)
                b.windows.add(namespace="ns", pod="p", container="c")
                yield b

        acks = list(ingest_grpc.IngestStub(channel).Push(batches(), timeout=20))
        check([a.acked_through_seq for a in acks] == [4, 8, 10],
              "cumulative acks %r" % [a.acked_through_seq for a in acks])
        check(all(a.epoch == 7 for a in acks), "acks carry the epoch")
        rej = [r for a in acks for r in a.rejections]
        check(len(rej) == 1 and rej[0].seq == 6 and rej[0].reason == ingest.REJECT_REASON_INVALID
              and rej[0].epoch == 7, "poison batch rejected once: %r" % rej)

        # The method path the C servers register must be this one.
        raw = channel.stream_stream("/kopt.v1.Ingest/Push",
                                    request_serializer=m.MetricBatch.SerializeToString,
                                    response_deserializer=ingest.PushAck.FromString)
        acks = list(raw(iter([m.MetricBatch(cluster="c", epoch=1, seq=1)]), timeout=20))
        check(len(acks) == 1 and acks[0].acked_through_seq == 1, "raw /kopt.v1.Ingest/Push")

        # Advisor.ListRecommendations: filters, paging, API key.
        stub = advisor_grpc.AdvisorStub(channel)
        md = (("authorization", "Bearer " + API_KEY),)
        got, token, pages = [], "", 0
        while True:
            resp = stub.ListRecommendations(advisor.ListRecommendationsRequest(
                cluster="prod", page_size=5, page_token=token), metadata=md, timeout=20)
            got += resp.recommendations
            pages += 1
            token = resp.next_page_token
            check(resp.total_size == 12, "total_size %d" % resp.total_size)
            if not token:
                break
        check(pages == 3 and len(got) == 12, "paging: %d pages, %d items" % (pages, len(got)))
        check(all(r.workload.cluster == "prod" for r in got), "cluster filter")
        check([r.savings.monthly_cost for r in got]
              == sorted((r.savings.monthly_cost for r in got), reverse=True), "order")
        check(got[0].containers[0].recommended.cpu_request_cores == 0.25
              and got[0].workload.kind == m.WORKLOAD_KIND_DEPLOYMENT, "nested fields")
        resp = stub.ListRecommendations(advisor.ListRecommendationsRequest(
            idle_only=True, min_monthly_savings=10), metadata=md, timeout=20)
        check(sorted(r.workload.name for r in resp.recommendations) == ["w10", "w15", "w20"],
              "idle_only + min_monthly_savings")
        try:
            stub.ListRecommendations(advisor.ListRecommendationsRequest(), timeout=20)
            check(False, "a call without an API key succeeded")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAUTHENTICATED, "no key: %s" % e.code())
    finally:
        channel.close()
        server.stop(grace=None)


def test_http_table(advisor, docs):
    """docs/api.md's HTTP table and the annotations say the same."""
    from google.api import annotations_pb2

    want = {}
    for method in advisor.DESCRIPTOR.services_by_name["Advisor"].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        want[method.name] = (verb.upper(), getattr(rule, verb), rule.body)
    check(len(want) == 6 and all(v[1] for v in want.values()),
          "every Advisor method has google.api.http: %r" % want)
    with open(docs, encoding="utf-8") as f:
        rows = re.findall(r"^\|\s*`(GET|POST)`\s*\|\s*`([^`]+)`\s*\|\s*`(\w+)`", f.read(), re.M)
    documented = {name: (verb, path) for verb, path, name in rows}
    check(documented == {k: v[:2] for k, v in want.items()},
          "docs/api.md HTTP table %r != annotations %r" % (documented, want))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roundtrip", required=True, help="tests/sdk/proto_roundtrip binary")
    ap.add_argument("--docs", required=True, help="docs/api.md")
    ap.add_argument("-I", dest="includes", action="append", required=True)
    args = ap.parse_args()
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("SKIP: %s lacks %s (install python3-grpcio python3-grpc-tools)"
              % (sys.executable, e.name), file=sys.stderr)
        return 77

    tmp = tempfile.mkdtemp(prefix="kopt-sdk-")
    try:
        generate(tmp, args.includes)
        m = importlib.import_module("kopt.v1.metrics_pb2")
        ingest = importlib.import_module("kopt.v1.ingest_pb2")
        ingest_grpc = importlib.import_module("kopt.v1.ingest_pb2_grpc")
        advisor = importlib.import_module("kopt.v1.advisor_pb2")
        advisor_grpc = importlib.import_module("kopt.v1.advisor_pb2_grpc")
        for name, fn, fargs in (
                ("roundtrip", test_roundtrip, (m, args.roundtrip)),
                ("grpc", test_grpc, (m, ingest, ingest_grpc, advisor, advisor_grpc)),
                ("http_table", test_http_table, (advisor, args.docs))):
            before = len(FAILURES)
            try:
                fn(*fargs)
            except Exception:
                traceback.print_exc()
                FAILURES.append(name + ": exception")
            print("%s %s" % ("ok  " if len(FAILURES) == before else "FAIL", name))
    except Exception:
        traceback.print_exc()
        FAILURES.append("setup")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("test_python_sdk: %d check(s) failed" % len(FAILURES), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
