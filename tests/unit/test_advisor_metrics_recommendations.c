/* advisor/metrics_recommendations.c: the kopt_recommendation_* series of a
 * snapshot, exactly as text: label values escaped (a cluster name with a
 * quote, a backslash and a newline), current requests in their own
 * families, nothing but HELP/TYPE before the first analysis, and the cap:
 * whole workloads, largest savings first, the rest added to the dropped
 * counter at every scrape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"

/* A recommendation of `n_containers` containers made the way the API's are
 * (unpacked, so protobuf_c_message_free_unpacked can free it). */
static Kopt__V1__Recommendation *make_rec(const char *cluster, const char *name, double savings,
                                          size_t n_containers)
{
    Kopt__V1__Recommendation r = KOPT__V1__RECOMMENDATION__INIT;
    Kopt__V1__WorkloadRef w = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__WorkloadSavings s = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    Kopt__V1__ContainerRecommendation c[2] = {KOPT__V1__CONTAINER_RECOMMENDATION__INIT,
                                              KOPT__V1__CONTAINER_RECOMMENDATION__INIT};
    Kopt__V1__ContainerRecommendation *cp[2] = {&c[0], &c[1]};
    Kopt__V1__ResourceValues now = KOPT__V1__RESOURCE_VALUES__INIT;
    Kopt__V1__ResourceValues want = KOPT__V1__RESOURCE_VALUES__INIT;
    Kopt__V1__ResourceBounds b = KOPT__V1__RESOURCE_BOUNDS__INIT;
    Kopt__V1__Recommendation *out;
    uint8_t *buf;
    size_t len;

    now.cpu_request_cores = 1;
    now.memory_request_bytes = 1073741824;
    want.cpu_request_cores = 0.25;
    want.memory_request_bytes = 314572800;
    b.cpu_lower_cores = 0.125;
    b.cpu_upper_cores = 0.5;
    b.memory_lower_bytes = 209715200;
    b.memory_upper_bytes = 419430400;
    w.cluster = (char *)cluster;
    w.namespace_ = "shop";
    w.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    w.name = (char *)name;
    s.monthly_cost = savings;
    s.currency = "EUR";
    c[0].container = "app";
    c[1].container = "sidecar";
    for (size_t i = 0; i < 2; i++) {
        c[i].current = &now;
        c[i].recommended = &want;
        c[i].bounds = &b;
        c[i].confidence = 0.75;
    }
    r.workload = &w;
    r.savings = &s;
    r.n_containers = n_containers;
    r.containers = cp;
    len = protobuf_c_message_get_packed_size(&r.base);
    buf = malloc(len + 1);
    assert_non_null(buf);
    protobuf_c_message_pack(&r.base, buf);
    out = kopt__v1__recommendation__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static char *expose(kopt_metrics_t *m)
{
    char *text = NULL;

    assert_int_equal(kopt_metrics_expose(m, &text, NULL), 0);
    return text;
}

static int count(const char *text, const char *prefix)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, prefix)); p++)
        n++;
    return n;
}

static void setup(adv_snapshot_t **st, kopt_metrics_t **m, adv_rec_metrics_t **rm, uint64_t cap)
{
    assert_int_equal(adv_snapshot_new(st), 0);
    assert_int_equal(kopt_metrics_new(m), 0);
    assert_int_equal(adv_rec_metrics_register(*m, *st, cap, rm), 0);
}

static void teardown(adv_snapshot_t *st, kopt_metrics_t *m, adv_rec_metrics_t *rm)
{
    kopt_metrics_free(m);
    adv_rec_metrics_free(rm);
    adv_snapshot_free(st);
}

static void swap_in(adv_snapshot_t *st, Kopt__V1__Recommendation **recs, size_t n)
{
    kopt_engine_prices_t prices = {.cpu_core_hour = 0.03, .memory_gib_hour = 0.004};
    Kopt__V1__Recommendation **owned = malloc(n * sizeof(*owned));
    adv_results_t *r;

    assert_non_null(owned);
    memcpy(owned, recs, n * sizeof(*owned));
    r = adv_results_new(owned, n, NULL, 0, &prices);
    assert_non_null(r);
    adv_snapshot_swap(st, r);
}

static void series_of_one_workload_exactly(void **state)
{
    adv_snapshot_t *st;
    kopt_metrics_t *m;
    adv_rec_metrics_t *rm;
    Kopt__V1__Recommendation *rec;
    char *text;

    (void)state;
    setup(&st, &m, &rm, 10000);
    /* Before any analysis: the families are named, with no sample. */
    text = expose(m);
    assert_non_null(strstr(text, "# TYPE kopt_recommendation_cpu_request_cores gauge\n"
                                 "# HELP kopt_recommendation_memory_request_bytes"));
    assert_int_equal(count(text, "kopt_recommendation_cpu_request_cores{"), 0);
    assert_non_null(strstr(text, "\nkopt_recommendation_series 0\n"));
    free(text);

    rec = make_rec("eu \"1\"\\x\ny", "web", 12.5, 1);
    swap_in(st, &rec, 1);
    text = expose(m);
#define L                                                                                          \
    "cluster=\"eu \\\"1\\\"\\\\x\\ny\",namespace=\"shop\",kind=\"Deployment\",workload=\"web\""
    assert_non_null(strstr(text, "kopt_recommendation_confidence{" L ",container=\"app\"} 0.75\n"));
    assert_non_null(strstr(
        text,
        "kopt_recommendation_cpu_request_cores{" L ",container=\"app\",bound=\"target\"} 0.25\n"
        "kopt_recommendation_cpu_request_cores{" L ",container=\"app\",bound=\"lower\"} 0.125\n"
        "kopt_recommendation_cpu_request_cores{" L ",container=\"app\",bound=\"upper\"} 0.5\n"));
    assert_non_null(strstr(text, "kopt_recommendation_memory_request_bytes{" L
                                 ",container=\"app\",bound=\"target\"} 314572800\n"
                                 "kopt_recommendation_memory_request_bytes{" L
                                 ",container=\"app\",bound=\"lower\"} 209715200\n"
                                 "kopt_recommendation_memory_request_bytes{" L
                                 ",container=\"app\",bound=\"upper\"} 419430400\n"));
    assert_non_null(
        strstr(text, "kopt_recommendation_savings_monthly{" L ",currency=\"EUR\"} 12.5\n"));
    assert_non_null(strstr(text, "kopt_workload_cpu_request_cores{" L ",container=\"app\"} 1\n"));
    assert_non_null(
        strstr(text, "kopt_workload_memory_request_bytes{" L ",container=\"app\"} 1073741824\n"));
#undef L
    assert_non_null(strstr(text, "\nkopt_recommendation_series 10\n"));
    assert_non_null(strstr(text, "\nkopt_recommendation_series_dropped_total 0\n"));
    free(text);
    teardown(st, m, rm);
}

/* Workloads of 19, 10 and 19 series with savings 1, 3, 2: a cap of 30 takes
 * the 3 (10 series) and the 2 (19), then stops at the 1. */
static void cap_takes_whole_workloads_largest_savings_first(void **state)
{
    adv_snapshot_t *st;
    kopt_metrics_t *m;
    adv_rec_metrics_t *rm;
    Kopt__V1__Recommendation *recs[3];
    char *text;

    (void)state;
    setup(&st, &m, &rm, 30);
    recs[0] = make_rec("c", "a-small-saver", 1, 2);
    recs[1] = make_rec("c", "b-big-saver", 3, 1);
    recs[2] = make_rec("c", "c-middle", 2, 2);
    swap_in(st, recs, 3);
    text = expose(m);
    assert_int_equal(count(text, "workload=\"b-big-saver\",currency"), 1);
    assert_int_equal(count(text, "workload=\"c-middle\",currency"), 1);
    assert_int_equal(count(text, "a-small-saver"), 0);
    assert_non_null(strstr(text, "\nkopt_recommendation_series 29\n"));
    assert_non_null(strstr(text, "\nkopt_recommendation_series_dropped_total 19\n"));
    free(text);
    text = expose(m); /* counted again at the next scrape */
    assert_non_null(strstr(text, "\nkopt_recommendation_series_dropped_total 38\n"));
    free(text);
    teardown(st, m, rm);

    /* A cap of 0 exports none. */
    setup(&st, &m, &rm, 0);
    recs[0] = make_rec("c", "w", 1, 1);
    swap_in(st, recs, 1);
    text = expose(m);
    assert_int_equal(count(text, "kopt_recommendation_cpu_request_cores{"), 0);
    assert_non_null(strstr(text, "\nkopt_recommendation_series_dropped_total 10\n"));
    free(text);
    teardown(st, m, rm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(series_of_one_workload_exactly),
        cmocka_unit_test(cap_takes_whole_workloads_largest_savings_first),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
