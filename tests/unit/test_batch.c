/* MetricBatch assembly (agent/batch.c): one message with the windows, the
 * node's facts and the workloads' facts. Earlier agents sent the workload
 * facts as a second message appended to the bytes; the batch on the wire
 * must decode exactly as that concatenation did. And the size bound: how
 * many windows fit in a batch NATS will take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "kopt/v1/metrics.pb-c.h"

static agent_window_t wins[3];
static agent_container_meta_t metas[3];
static agent_kube_workload_t workloads[2];
static agent_batch_header_t header;

static int setup(void **state)
{
    (void)state;
    memset(wins, 0, sizeof(wins));
    for (size_t i = 0; i < 3; i++) {
        wins[i].start_ms = 1800000000000LL + 60000 * (int64_t)i;
        wins[i].end_ms = wins[i].start_ms + 60000;
        wins[i].cpu_mean_cores = 0.25 * (double)(i + 1);
        wins[i].cpu_peak_cores = 1.5;
        wins[i].memory_working_set_peak = 100u << 20;
        wins[i].samples = 6;
    }
    metas[0] = (agent_container_meta_t){.namespace_ = "shop",
                                        .workload_name = "web",
                                        .pod = "web-1",
                                        .container = "app",
                                        .container_id = "containerd://aa",
                                        .pod_uid = "u1",
                                        .workload_kind = AGENT_KUBE_KIND_DEPLOYMENT,
                                        .cpu_request_cores = 0.5,
                                        .memory_request_bytes = 256u << 20};
    metas[1] = metas[0];
    metas[1].pod = "web-2";
    metas[2] = (agent_container_meta_t){.namespace_ = "shop",
                                        .workload_name = "db",
                                        .pod = "db-0",
                                        .container = "pg",
                                        .workload_kind = AGENT_KUBE_KIND_STATEFUL_SET};
    memset(workloads, 0, sizeof(workloads));
    strcpy(workloads[0].namespace_, "shop");
    strcpy(workloads[0].name, "web");
    workloads[0].kind = AGENT_KUBE_KIND_DEPLOYMENT;
    workloads[0].replicas = 3;
    workloads[0].ready_replicas = 2;
    workloads[0].qos = AGENT_KUBE_QOS_BURSTABLE;
    workloads[0].has_hpa = true;
    strcpy(workloads[0].hpa.name, "web-hpa");
    workloads[0].hpa.min_replicas = 2;
    workloads[0].hpa.max_replicas = 10;
    workloads[0].hpa.target_cpu_utilization_percent = 70;
    workloads[0].hpa.n_metrics = 2;
    strcpy(workloads[0].hpa.metric_names[0], "cpu");
    strcpy(workloads[0].hpa.metric_names[1], "requests_per_second");
    strcpy(workloads[1].namespace_, "shop");
    strcpy(workloads[1].name, "db");
    workloads[1].kind = AGENT_KUBE_KIND_STATEFUL_SET;
    workloads[1].replicas = 1;
    workloads[1].qos = AGENT_KUBE_QOS_GUARANTEED;
    header = (agent_batch_header_t){.cluster = "prod",
                                    .node = "n1",
                                    .agent_id = "a.n1",
                                    .agent_version = "0.1.0",
                                    .epoch = 7,
                                    .seq = 42,
                                    .created_ms = 1800000185123LL,
                                    .metric_source = 1,
                                    .cpu_capacity_cores = 8,
                                    .memory_capacity_bytes = 32ull << 30,
                                    .kernel_version = "6.1.0",
                                    .zone = "eu-1a",
                                    .workloads = workloads,
                                    .n_workloads = 2};
    return 0;
}

/* The old second message: a MetricBatch holding only `workloads`. */
static void pack_facts_alone(uint8_t **out, size_t *len)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Kopt__V1__WorkloadFacts wf[2], *ptrs[2] = {&wf[0], &wf[1]};
    Kopt__V1__HpaFacts hpa = KOPT__V1__HPA_FACTS__INIT;
    char *names[2] = {workloads[0].hpa.metric_names[0], workloads[0].hpa.metric_names[1]};

    for (size_t i = 0; i < 2; i++) {
        kopt__v1__workload_facts__init(&wf[i]);
        wf[i].namespace_ = workloads[i].namespace_;
        wf[i].kind = (Kopt__V1__WorkloadKind)workloads[i].kind;
        wf[i].name = workloads[i].name;
        wf[i].replicas = workloads[i].replicas;
        wf[i].ready_replicas = workloads[i].ready_replicas;
        wf[i].qos_class = (Kopt__V1__QosClass)workloads[i].qos;
    }
    hpa.name = workloads[0].hpa.name;
    hpa.min_replicas = 2;
    hpa.max_replicas = 10;
    hpa.target_cpu_utilization_percent = 70;
    hpa.n_metric_names = 2;
    hpa.metric_names = names;
    wf[0].hpa = &hpa;
    b.n_workloads = 2;
    b.workloads = ptrs;
    *len = kopt__v1__metric_batch__get_packed_size(&b);
    *out = malloc(*len);
    assert_non_null(*out);
    kopt__v1__metric_batch__pack(&b, *out);
}

/* Decodes and packs again: protobuf-c writes fields in number order, so
 * equal messages give equal bytes. */
static uint8_t *canonical(const uint8_t *bytes, size_t len, size_t *out_len)
{
    Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, len, bytes);
    uint8_t *out;

    assert_non_null(b);
    *out_len = kopt__v1__metric_batch__get_packed_size(b);
    out = malloc(*out_len);
    assert_non_null(out);
    kopt__v1__metric_batch__pack(b, out);
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    return out;
}

static void decodes_as_the_appended_facts_did(void **state)
{
    agent_batch_header_t alone = header;
    uint8_t *whole, *head, *facts, *old, *a, *b;
    size_t whole_len, head_len, facts_len, a_len, b_len;

    (void)state;
    assert_int_equal(agent_batch_pack(&header, wins, metas, 3, &whole, &whole_len), 0);
    /* The old way: the batch without workloads, then the facts appended. */
    alone.workloads = NULL;
    alone.n_workloads = 0;
    assert_int_equal(agent_batch_pack(&alone, wins, metas, 3, &head, &head_len), 0);
    pack_facts_alone(&facts, &facts_len);
    old = malloc(head_len + facts_len);
    assert_non_null(old);
    memcpy(old, head, head_len);
    memcpy(old + head_len, facts, facts_len);
    /* workloads (9) come before agent_version (10) in one message, so the
     * bytes differ, but they decode to the same batch. */
    assert_int_equal(whole_len, head_len + facts_len);
    a = canonical(whole, whole_len, &a_len);
    b = canonical(old, head_len + facts_len, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(whole);
    free(head);
    free(facts);
    free(old);
    free(a);
    free(b);
}

static void every_part_is_in_the_one_message(void **state)
{
    Kopt__V1__MetricBatch *b;
    uint8_t *bytes;
    size_t len;

    (void)state;
    assert_int_equal(agent_batch_pack(&header, wins, metas, 3, &bytes, &len), 0);
    b = kopt__v1__metric_batch__unpack(NULL, len, bytes);
    assert_non_null(b);
    assert_string_equal(b->cluster, "prod");
    assert_int_equal(b->epoch, 7);
    assert_int_equal(b->seq, 42);
    assert_int_equal(b->created->seconds, 1800000185);
    assert_int_equal(b->created->nanos, 123000000);
    assert_int_equal(b->n_windows, 3);
    assert_string_equal(b->windows[1]->pod, "web-2");
    assert_string_equal(b->windows[2]->container_id, ""); /* not known */
    assert_int_equal(b->windows[2]->window_start->seconds, 1800000120);
    /* The node facts and the workload facts side by side. */
    assert_non_null(b->node_facts);
    assert_int_equal(b->node_facts->cpu_capacity_cores, 8);
    assert_string_equal(b->node_facts->zone, "eu-1a");
    assert_string_equal(b->node_facts->region, "");
    assert_int_equal(b->n_workloads, 2);
    assert_string_equal(b->workloads[0]->name, "web");
    assert_int_equal(b->workloads[0]->qos_class, KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE);
    assert_non_null(b->workloads[0]->hpa);
    assert_int_equal(b->workloads[0]->hpa->n_metric_names, 2);
    assert_string_equal(b->workloads[0]->hpa->metric_names[1], "requests_per_second");
    assert_null(b->workloads[1]->hpa);
    assert_int_equal(b->workloads[1]->kind, KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET);
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    free(bytes);
}

static void no_workloads_without_the_api_server(void **state)
{
    agent_batch_header_t h = header;
    Kopt__V1__MetricBatch *b;
    uint8_t *bytes;
    size_t len;

    (void)state;
    h.workloads = NULL;
    h.n_workloads = 0;
    assert_int_equal(agent_batch_pack(&h, wins, metas, 3, &bytes, &len), 0);
    b = kopt__v1__metric_batch__unpack(NULL, len, bytes);
    assert_non_null(b);
    assert_int_equal(b->n_workloads, 0);
    assert_int_equal(b->n_windows, 3);
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    free(bytes);
}

/* agent_batch_fit on 1,000 windows (the three above, repeated) against a
 * bound met exactly by the first 400: it answers 400, and the split that
 * follows from it keeps every part under the bound with the largest id. */
static void fit_splits_windows_under_the_size_bound(void **state)
{
    enum { N = 1000 };
    agent_window_t *w = calloc(N, sizeof(*w));
    agent_container_meta_t *m = calloc(N, sizeof(*m));
    agent_batch_header_t h = header;
    size_t len, bound, fit, from = 0, parts = 0;

    (void)state;
    assert_non_null(w);
    assert_non_null(m);
    for (size_t i = 0; i < N; i++) {
        w[i] = wins[i % 3];
        m[i] = metas[i % 3];
    }
    h.epoch = h.seq = UINT64_MAX;
    assert_int_equal(agent_batch_size(&h, w, m, 400, &bound), 0);
    assert_int_equal(agent_batch_fit(&h, w, m, N, bound, &fit), 0);
    assert_int_equal(fit, 400);
    assert_int_equal(agent_batch_fit(&h, w, m, N, bound - 1, &fit), 0);
    assert_int_equal(fit, 399);
    /* Everything fits: one batch. */
    assert_int_equal(agent_batch_size(&h, w, m, N, &len), 0);
    assert_int_equal(agent_batch_fit(&h, w, m, N, len, &fit), 0);
    assert_int_equal(fit, N);
    /* Split as the collector does: parts in order, each under the bound. */
    while (from < N) {
        assert_int_equal(agent_batch_fit(&h, w + from, m + from, N - from, bound, &fit), 0);
        assert_int_equal(agent_batch_size(&h, w + from, m + from, fit, &len), 0);
        assert_true(len <= bound);
        from += fit;
        parts++;
    }
    assert_int_equal(parts, 3); /* 400 + 400 + 200 */
    /* The size is what agent_batch_pack makes. */
    {
        uint8_t *bytes;
        size_t packed;

        h.seq = 7;
        assert_int_equal(agent_batch_pack(&h, w, m, 10, &bytes, &packed), 0);
        assert_int_equal(agent_batch_size(&h, w, m, 10, &len), 0);
        assert_int_equal(len, packed);
        free(bytes);
    }
    free(w);
    free(m);
}

/* A window that is over the bound on its own: -EFBIG, and fit 1 so the
 * caller still moves on (ingest refuses that batch as TOO_LARGE). */
static void fit_one_window_too_large(void **state)
{
    size_t fit = 0;

    (void)state;
    assert_int_equal(agent_batch_fit(&header, wins, metas, 3, 10, &fit), -EFBIG);
    assert_int_equal(fit, 1);
    assert_int_equal(agent_batch_fit(&header, wins, metas, 0, 10, &fit), 0);
    assert_int_equal(fit, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(decodes_as_the_appended_facts_did, setup),
        cmocka_unit_test_setup(every_part_is_in_the_one_message, setup),
        cmocka_unit_test_setup(no_workloads_without_the_api_server, setup),
        cmocka_unit_test_setup(fit_splits_windows_under_the_size_bound, setup),
        cmocka_unit_test_setup(fit_one_window_too_large, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
