/* See bench_recs.h. */
#include "bench_recs.h"

#include <stdio.h>
#include <stdlib.h>

Kopt__V1__Recommendation *bench_rec(size_t i)
{
    Kopt__V1__Recommendation r = KOPT__V1__RECOMMENDATION__INIT;
    Kopt__V1__WorkloadRef w = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__WorkloadSavings s = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    Kopt__V1__ContainerRecommendation c[2] = {KOPT__V1__CONTAINER_RECOMMENDATION__INIT,
                                              KOPT__V1__CONTAINER_RECOMMENDATION__INIT};
    Kopt__V1__ContainerRecommendation *cp[2] = {&c[0], &c[1]};
    Kopt__V1__ResourceValues now = KOPT__V1__RESOURCE_VALUES__INIT;
    Kopt__V1__ResourceValues want[2] = {KOPT__V1__RESOURCE_VALUES__INIT,
                                        KOPT__V1__RESOURCE_VALUES__INIT};
    Kopt__V1__ResourceBounds b[2] = {KOPT__V1__RESOURCE_BOUNDS__INIT,
                                     KOPT__V1__RESOURCE_BOUNDS__INIT};
    Kopt__V1__CpuUsageStats cu = KOPT__V1__CPU_USAGE_STATS__INIT;
    Kopt__V1__MemoryUsageStats mu = KOPT__V1__MEMORY_USAGE_STATS__INIT;
    Google__Protobuf__Timestamp gen = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp ws = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Kopt__V1__Recommendation *out;
    static const char *const containers[2] = {"main", "sidecar"};
    static const int kinds[3] = {KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT,
                                 KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET,
                                 KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DAEMON_SET};
    char cluster[32], ns[32], name[32];
    double f = (double)(i % 97) / 97.0; /* 0..1, not round */
    uint8_t *buf;
    size_t len;

    snprintf(cluster, sizeof(cluster), "cluster-%zu", i % 4);
    snprintf(ns, sizeof(ns), "ns-%zu", i / 4 % 50);
    snprintf(name, sizeof(name), "app-%zu", i);
    w.cluster = cluster;
    w.namespace_ = ns;
    w.kind = kinds[i % 3];
    w.name = name;
    s.cpu_cores = 0.7 * f + 0.0131;
    s.memory_bytes = (int64_t)(600e6 * f);
    s.monthly_cost = -20 + 500 * (double)((i * 7919) % 1000) / 1000.0 + 0.0137;
    s.currency = "EUR";
    now.cpu_request_cores = 1;
    now.memory_request_bytes = 1073741824;
    cu.p50_cores = 0.1 + 0.3 * f;
    cu.p90_cores = 0.2 + 0.3 * f;
    cu.p95_cores = 0.2143 + 0.3 * f;
    cu.p99_cores = 0.2861 + 0.3 * f;
    cu.max_cores = 0.5127 + 0.3 * f;
    mu.p50_bytes = 200000000 + (uint64_t)(1e8 * f);
    mu.p90_bytes = 250000000 + (uint64_t)(1e8 * f);
    mu.p95_bytes = 260000000 + (uint64_t)(1e8 * f);
    mu.p99_bytes = 280000000 + (uint64_t)(1e8 * f);
    mu.max_bytes = 300000000 + (uint64_t)(1e8 * f);
    for (size_t k = 0; k < 2; k++) {
        want[k].cpu_request_cores = (0.2863 + 0.3 * f) / (double)(k + 1);
        want[k].memory_request_bytes = 314572800 + (int64_t)(k * 1e7 + 1e8 * f);
        b[k].cpu_lower_cores = want[k].cpu_request_cores * 0.8;
        b[k].cpu_upper_cores = want[k].cpu_request_cores * 1.3;
        b[k].memory_lower_bytes = want[k].memory_request_bytes * 8 / 10;
        b[k].memory_upper_bytes = want[k].memory_request_bytes * 13 / 10;
        c[k].container = (char *)containers[k];
        c[k].current = &now;
        c[k].recommended = &want[k];
        c[k].bounds = &b[k];
        c[k].confidence = 0.5 + 0.4 * f;
        c[k].cpu_request_percentile = 95;
        c[k].memory_request_percentile = 99;
        c[k].cpu_usage = &cu;
        c[k].memory_usage = &mu;
        c[k].explanation = "CPU request from the p95 of 14 days of 5-minute windows plus a "
                           "15 % margin; memory from the peak working set plus 20 %.";
    }
    gen.seconds = 1796601600;
    ws.seconds = gen.seconds - 14 * 86400;
    r.workload = &w;
    r.savings = &s;
    r.n_containers = 2;
    r.containers = cp;
    r.replicas = 1 + (double)(i % 3);
    r.generated_at = &gen;
    r.window_start = &ws;
    r.window_end = &gen;
    r.data_points = 4032;
    r.analysis_id = "a-20261207-0100";
    len = protobuf_c_message_get_packed_size(&r.base);
    buf = malloc(len + 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(&r.base, buf);
    out = kopt__v1__recommendation__unpack(NULL, len, buf);
    free(buf);
    return out;
}

adv_results_t *bench_results(size_t n)
{
    kopt_engine_prices_t prices = {.cpu_core_hour = 0.03, .memory_gib_hour = 0.004};
    Kopt__V1__Recommendation **recs = calloc(n ? n : 1, sizeof(*recs));

    if (!recs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        recs[i] = bench_rec(i);
        if (!recs[i]) {
            for (size_t k = 0; k < i; k++)
                protobuf_c_message_free_unpacked(&recs[k]->base, NULL);
            free(recs);
            return NULL;
        }
    }
    return adv_results_new(recs, n, NULL, 0, &prices); /* takes recs */
}
