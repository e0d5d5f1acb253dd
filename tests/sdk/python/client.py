#!/usr/bin/python3
"""A Python client of kopt-advisor made from the protos by `buf generate`.

tests/sdk/sdk_clients.py runs it with the generated modules on PYTHONPATH against
a live advisor. It prints what it got as JSON, the same shape as the Go and
TypeScript clients, so the test can check all three against the seeded data.

usage: client.py HOST:PORT API_KEY CLUSTER
"""
import json
import sys

import grpc
from kopt.v1 import advisor_pb2, advisor_pb2_grpc, metrics_pb2


def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code().value[0]
    return 0


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    target, key, cluster = sys.argv[1:]
    authed = (("authorization", "Bearer " + key),)
    # Plaintext: the test's advisor runs with --insecure on loopback.
    with grpc.insecure_channel(target) as channel:
        stub = advisor_pb2_grpc.AdvisorStub(channel)
        resp = stub.ListRecommendations(advisor_pb2.ListRecommendationsRequest(
            cluster=cluster, order=advisor_pb2.RECOMMENDATION_ORDER_NAME_ASC),
            metadata=authed, timeout=20)
        out = {"recommendations": [], "total_size": resp.total_size}
        for r in resp.recommendations:
            out["recommendations"].append({
                "namespace": r.workload.namespace,
                "kind": r.workload.kind,
                "name": r.workload.name,
                "idle": r.idle,
                "analysis_id": r.analysis_id,
                "containers": [{
                    "container": c.container,
                    "current_cpu": c.current.cpu_request_cores,
                    "current_memory": str(c.current.memory_request_bytes),
                    "recommended_cpu": c.recommended.cpu_request_cores,
                    "recommended_memory": str(c.recommended.memory_request_bytes),
                } for c in r.containers],
            })
        out["not_found_code"] = code_of(lambda: stub.GetRecommendation(
            advisor_pb2.GetRecommendationRequest(
                cluster=cluster, namespace="nowhere",
                kind=metrics_pb2.WORKLOAD_KIND_DEPLOYMENT, name="missing"),
            metadata=authed, timeout=20))
        out["no_key_code"] = code_of(lambda: stub.ListRecommendations(
            advisor_pb2.ListRecommendationsRequest(cluster=cluster), timeout=20))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
