// A TypeScript client of kopt-advisor made from the protos with protoc-gen-es (see
// proto/buf.gen.yaml), checked with tsc --strict and run with Node. It calls the
// advisor over gRPC (HTTP/2 without TLS: the test's advisor runs --insecure on
// loopback) through @connectrpc/connect-node, and prints what it got as JSON, the
// same shape as the Go and Python clients.
//
// usage: node client.js HOST:PORT API_KEY CLUSTER
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Advisor,
  RecommendationOrder,
} from "./kopt/v1/advisor_pb.js";
import { WorkloadKind } from "./kopt/v1/metrics_pb.js";

async function codeOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
  } catch (e) {
    return ConnectError.from(e).code;
  }
  return 0; // the call succeeded
}

async function main(): Promise<number> {
  const [target, key, cluster] = process.argv.slice(2);
  if (target === undefined || key === undefined || cluster === undefined) {
    console.error("usage: node client.js HOST:PORT API_KEY CLUSTER");
    return 2;
  }
  const transport = createGrpcTransport({ baseUrl: `http://${target}` });
  const client = createClient(Advisor, transport);
  const authed = { headers: { authorization: `Bearer ${key}` }, timeoutMs: 20000 };

  const resp = await client.listRecommendations(
    { cluster, order: RecommendationOrder.NAME_ASC },
    authed,
  );
  const out = {
    recommendations: resp.recommendations.map((r) => ({
      namespace: r.workload?.namespace ?? "",
      kind: r.workload?.kind ?? 0,
      name: r.workload?.name ?? "",
      idle: r.idle,
      analysis_id: r.analysisId,
      containers: r.containers.map((c) => ({
        container: c.container,
        current_cpu: c.current?.cpuRequestCores ?? 0,
        current_memory: (c.current?.memoryRequestBytes ?? 0n).toString(),
        recommended_cpu: c.recommended?.cpuRequestCores ?? 0,
        recommended_memory: (c.recommended?.memoryRequestBytes ?? 0n).toString(),
      })),
    })),
    total_size: resp.totalSize,
    not_found_code: await codeOf(() =>
      client.getRecommendation(
        { cluster, namespace: "nowhere", kind: WorkloadKind.DEPLOYMENT, name: "missing" },
        authed,
      ),
    ),
    no_key_code: await codeOf(() =>
      client.listRecommendations({ cluster }, { timeoutMs: 20000 }),
    ),
  };
  console.log(JSON.stringify(out));
  return 0;
}

main().then(
  (rc) => process.exit(rc),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
