/* advisor/page.c: a ListRecommendations page spliced from a snapshot's
 * cached encodings is byte for byte the proto3 JSON (kopt_pbjson_encode) and
 * the protobuf (protobuf_c_message_pack) of the same response message, in
 * both views, on the first, a middle, the last and an empty page; the BASIC
 * view leaves out exactly the evidence (bounds and backtest too). advisor/evidence.c:
 * an engine result's bounds, replayed risk and backtest as messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "advisor.h"
#include "evidence.h"

#define N_RECS 5

/* An engine result with history, bounds, replayed risk and a valid
 * backtest: 48 hours from 1800000000, split after 32. */
static void engine_result(kopt_engine_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->recommended = (kopt_resources_t){0.25, 0.5, 300ULL << 20, 600ULL << 20};
    r->cpu_lower = 0.125;
    r->cpu_upper = 0.375;
    r->memory_lower = 200ULL << 20;
    r->memory_upper = 400ULL << 20;
    r->history.windows = 5760;
    r->history.first_hour = 1800000000;
    r->history.last_hour = 1800000000 + 47 * 3600;
    r->risk = (kopt_engine_risk_t){.windows = 5760,
                                   .cpu_windows_over_request = 576,
                                   .cpu_over_request_share = 0.1,
                                   .cpu_windows_throttled = 6,
                                   .cpu_throttled_share = 6 / 5760.0,
                                   .cpu_hours_peak_over_limit = 3,
                                   .memory_windows_over_request = 1440,
                                   .memory_windows_oom = 2,
                                   .memory_hours_oom = 1};
    r->backtest = (kopt_engine_backtest_t){.valid = true,
                                           .split = 1800000000 + 32 * 3600,
                                           .recommended = {0.2, 0.4, 256ULL << 20, 512ULL << 20},
                                           .windows = 1920,
                                           .scored_hours = 16,
                                           .cpu_over_request_share = 0.125,
                                           .memory_over_request_share = 0.25,
                                           .cpu_over_limit_share = 0.0625,
                                           .memory_over_limit_share = 1 / 1920.0,
                                           .reserved_core_hours = 3.2,
                                           .reserved_gib_hours = 4,
                                           .used_core_hours = 2.5,
                                           .used_gib_hours = 3};
}

/* An owned Recommendation with every kind of field set, some of them to
 * values that JSON escapes or writes specially. */
static Kopt__V1__Recommendation *make_rec(int i)
{
    kopt_engine_result_t er;
    adv_evidence_t ev[2];
    Kopt__V1__Recommendation rec = KOPT__V1__RECOMMENDATION__INIT;
    Kopt__V1__WorkloadRef ref = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__WorkloadSavings sav = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    Kopt__V1__ContainerRecommendation c[2], *cp[2] = {&c[0], &c[1]};
    Kopt__V1__ResourceValues cur = KOPT__V1__RESOURCE_VALUES__INIT,
                             nr = KOPT__V1__RESOURCE_VALUES__INIT;
    Kopt__V1__CpuUsageStats cpu = KOPT__V1__CPU_USAGE_STATS__INIT;
    Kopt__V1__MemoryUsageStats mem = KOPT__V1__MEMORY_USAGE_STATS__INIT;
    Kopt__V1__RecommendationReason reasons[2] = {
        KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_OVER_PROVISIONED,
        KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_OOM_KILLED};
    Google__Protobuf__Timestamp gen = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char name[32];
    uint8_t buf[4096];
    size_t len;

    snprintf(name, sizeof(name), "app-\"%d\"\\", i);
    ref.cluster = "prod";
    ref.namespace_ = i % 2 ? "shop" : "batch";
    ref.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    ref.name = name;
    cur.cpu_request_cores = 1;
    cur.memory_request_bytes = 1ULL << 30;
    nr.cpu_request_cores = 0.1 * (i + 1) + 1e-17;
    nr.memory_request_bytes = 123456789ULL * (uint64_t)(i + 1);
    cpu.p50_cores = 0.05;
    cpu.max_cores = 1.0 / 3;
    mem.p99_bytes = 18446744073709551615ULL;
    engine_result(&er);
    for (int k = 0; k < 2; k++) {
        kopt__v1__container_recommendation__init(&c[k]);
        adv_evidence_fill(&ev[k], &c[k], &er);
        c[k].container = k ? "sidecar" : "main";
        c[k].current = &cur;
        c[k].recommended = &nr;
        c[k].confidence = 0.5;
        c[k].reasons = reasons;
        c[k].n_reasons = k ? 2 : 1;
        c[k].explanation = "CPU p90 was 0.07 cores;\n\"quoted\" \xc3\xa9";
        c[k].cpu_request_percentile = 0.9;
        c[k].memory_request_percentile = 0.95;
        c[k].cpu_usage = &cpu;
        c[k].memory_usage = k ? &mem : NULL;
        c[k].oom_kills = (uint32_t)k;
        c[k].cpu_throttled_seconds = 2.5;
    }
    sav.monthly_cost = 100.0 - 30.0 * i; /* some negative */
    sav.memory_bytes = -5;
    sav.currency = "USD";
    gen.seconds = 1800000000 + i;
    rec.workload = &ref;
    rec.containers = cp;
    rec.n_containers = 2;
    rec.savings = &sav;
    rec.idle = i == 3;
    rec.replicas = 2;
    rec.generated_at = &gen;
    rec.data_points = 40320;
    rec.analysis_id = "an-1";
    len = kopt__v1__recommendation__get_packed_size(&rec);
    assert_true(len <= sizeof(buf));
    kopt__v1__recommendation__pack(&rec, buf);
    return kopt__v1__recommendation__unpack(NULL, len, buf);
}

static adv_results_t *snapshot(void)
{
    Kopt__V1__Recommendation **recs = calloc(N_RECS, sizeof(*recs));
    kopt_engine_prices_t prices = {0};
    adv_results_t *r;

    assert_non_null(recs);
    for (int i = 0; i < N_RECS; i++)
        recs[i] = make_rec(i);
    r = adv_results_new(recs, N_RECS, NULL, 0, &prices);
    assert_non_null(r);
    assert_int_equal(r->n, N_RECS);
    return r;
}

/* The page both ways: spliced, and as a message through the generic
 * encoders; they must be the same bytes. */
static void check_page(const adv_results_t *res, size_t offset, size_t n, bool full,
                       const char *token)
{
    const adv_entry_t *items[N_RECS];
    Kopt__V1__ListRecommendationsResponse resp = KOPT__V1__LIST_RECOMMENDATIONS_RESPONSE__INIT;
    Kopt__V1__Recommendation basic[N_RECS], *rp[N_RECS];
    Kopt__V1__ContainerRecommendation cs[N_RECS][2], *ps[N_RECS][2];
    adv_page_t page = {.items = items,
                       .n = n,
                       .full = full,
                       .next_page_token = token,
                       .total_size = (uint32_t)res->n};
    char *json = NULL, *want_json = NULL;
    uint8_t *pb = NULL, want_pb[1 << 16];
    size_t len = 0, want_len;

    for (size_t i = 0; i < n; i++) {
        items[i] = &res->e[offset + i];
        if (full) {
            rp[i] = items[i]->rec;
        } else {
            adv_recommendation_basic(items[i]->rec, &basic[i], cs[i], ps[i]);
            rp[i] = &basic[i];
        }
    }
    resp.recommendations = rp;
    resp.n_recommendations = n;
    resp.next_page_token = (char *)token;
    resp.total_size = (uint32_t)res->n;

    assert_int_equal(adv_page_json(&page, &json, &len), 0);
    assert_int_equal(kopt_pbjson_encode(&resp.base, &want_json, NULL), 0);
    assert_string_equal(json, want_json);
    assert_int_equal(len, strlen(want_json));

    assert_int_equal(adv_page_pb(&page, &pb, &len), 0);
    want_len = kopt__v1__list_recommendations_response__get_packed_size(&resp);
    assert_true(want_len <= sizeof(want_pb));
    kopt__v1__list_recommendations_response__pack(&resp, want_pb);
    assert_int_equal(len, want_len);
    assert_memory_equal(pb, want_pb, len);
    free(json);
    free(want_json);
    free(pb);
}

static void pages_equal_the_generic_encoders(void **state)
{
    adv_results_t *res = snapshot();

    (void)state;
    for (int full = 0; full < 2; full++) {
        check_page(res, 0, 2, full, "2.0123456789abcdef");
        check_page(res, 2, 2, full, "4.0123456789abcdef");
        check_page(res, 4, 1, full, "");
        check_page(res, 0, N_RECS, full, "");
        check_page(res, 0, 0, full, ""); /* past the end: only totalSize */
    }
    adv_results_release(res);
}

static void an_empty_snapshot_lists_as_an_empty_object(void **state)
{
    adv_page_t page = {.next_page_token = ""};
    char *json = NULL;
    uint8_t *pb = NULL;
    size_t len = 1;

    (void)state;
    assert_int_equal(adv_page_json(&page, &json, &len), 0);
    assert_string_equal(json, "{}");
    assert_int_equal(adv_page_pb(&page, &pb, &len), 0);
    assert_int_equal(len, 0);
    free(json);
    free(pb);
}

static void the_basic_view_leaves_out_the_evidence_only(void **state)
{
    adv_results_t *res = snapshot();
    const adv_entry_t *e = &res->e[0];
    Kopt__V1__Recommendation *b;

    (void)state;
    assert_null(strstr(e->basic_json.data, "explanation"));
    assert_null(strstr(e->basic_json.data, "cpuUsage"));
    assert_null(strstr(e->basic_json.data, "memoryUsage"));
    assert_null(strstr(e->basic_json.data, "Percentile"));
    assert_null(strstr(e->basic_json.data, "oomKills"));
    assert_null(strstr(e->basic_json.data, "cpuThrottledSeconds"));
    assert_null(strstr(e->basic_json.data, "replayedRisk"));
    assert_null(strstr(e->basic_json.data, "backtest"));
    assert_null(strstr(e->basic_json.data, "bounds"));
    /* The snapshot's own message keeps them. */
    assert_non_null(e->rec->containers[0]->bounds);
    assert_int_equal(e->rec->containers[0]->bounds->memory_upper_bytes, 400ULL << 20);
    b = kopt__v1__recommendation__unpack(NULL, e->basic_pb.len, (const uint8_t *)e->basic_pb.data);
    assert_non_null(b);
    assert_int_equal(b->n_containers, 2);
    assert_string_equal(b->containers[0]->container, e->rec->containers[0]->container);
    assert_float_equal(b->containers[1]->recommended->cpu_request_cores,
                       e->rec->containers[1]->recommended->cpu_request_cores, 0);
    assert_int_equal(b->containers[1]->n_reasons, 2);
    assert_float_equal(b->containers[0]->confidence, 0.5, 0);
    assert_string_equal(b->containers[0]->explanation, "");
    assert_null(b->containers[0]->cpu_usage);
    assert_null(b->containers[0]->replayed_risk);
    assert_null(b->containers[0]->backtest);
    assert_null(b->containers[0]->bounds);
    assert_string_equal(b->workload->name, e->rec->workload->name);
    assert_float_equal(b->savings->monthly_cost, e->rec->savings->monthly_cost, 0);
    assert_int_equal(b->generated_at->seconds, e->rec->generated_at->seconds);
    /* The snapshot's own message keeps everything. */
    assert_non_null(e->rec->containers[0]->cpu_usage);
    kopt__v1__recommendation__free_unpacked(b, NULL);
    adv_results_release(res);
}

/* Every number lands in its field; the replay's memory share is the count
 * over the windows (1440 / 5760); times come from the history and split. */
static void evidence_maps_every_engine_field(void **state)
{
    Kopt__V1__ContainerRecommendation c = KOPT__V1__CONTAINER_RECOMMENDATION__INIT;
    kopt_engine_result_t r;
    adv_evidence_t ev;
    char *json = NULL;

    (void)state;
    engine_result(&r);
    adv_evidence_fill(&ev, &c, &r);
    assert_float_equal(c.bounds->cpu_lower_cores, 0.125, 0);
    assert_float_equal(c.bounds->cpu_upper_cores, 0.375, 0);
    assert_int_equal(c.bounds->memory_lower_bytes, 200ULL << 20);
    assert_int_equal(c.replayed_risk->windows, 5760);
    assert_int_equal(c.replayed_risk->cpu_windows_over_request, 576);
    assert_float_equal(c.replayed_risk->cpu_over_request_share, 0.1, 0);
    assert_int_equal(c.replayed_risk->cpu_windows_over_limit, 6);
    assert_int_equal(c.replayed_risk->cpu_hours_peak_over_limit, 3);
    assert_float_equal(c.replayed_risk->memory_over_request_share, 0.25, 0);
    assert_int_equal(c.replayed_risk->memory_windows_over_limit, 2);
    assert_int_equal(c.replayed_risk->memory_hours_over_limit, 1);
    assert_true(c.backtest->valid);
    assert_int_equal(c.backtest->fit_start_time->seconds, 1800000000);
    assert_int_equal(c.backtest->split_time->seconds, 1800000000 + 32 * 3600);
    assert_int_equal(c.backtest->end_time->seconds, 1800000000 + 48 * 3600);
    assert_float_equal(c.backtest->recommended->cpu_limit_cores, 0.4, 0);
    assert_int_equal(c.backtest->windows, 1920);
    assert_float_equal(c.backtest->memory_over_limit_share, 1 / 1920.0, 0);
    assert_float_equal(c.backtest->used_gib_hours, 3, 0);
    /* proto3 JSON names, as the gateway writes them. */
    assert_int_equal(kopt_pbjson_encode(&c.base, &json, NULL), 0);
    assert_non_null(strstr(json, "\"replayedRisk\":{\"windows\":\"5760\","));
    assert_non_null(strstr(json, "\"backtest\":{\"valid\":true,\"fitStartTime\":"));
    assert_non_null(strstr(json, "\"splitTime\":\"2027-01-16T16:00:00Z\""));
    assert_non_null(strstr(json, "\"cpuOverRequestShare\":0.125"));
    free(json);

    /* Too little history on one side: {valid: false} and nothing else. */
    r.backtest.valid = false;
    adv_evidence_fill(&ev, &c, &r);
    assert_false(c.backtest->valid);
    assert_null(c.backtest->split_time);
    assert_null(c.backtest->recommended);
    assert_int_equal(c.backtest->windows, 0);
    /* No history at all: no evidence. */
    r.history.windows = 0;
    adv_evidence_fill(&ev, &c, &r);
    assert_null(c.bounds);
    assert_null(c.replayed_risk);
    assert_null(c.backtest);
}

/* Issue 15: strtoull let "-1.", "+2.", "0x2.", " 2." and upper case through.
 * A token is exactly what adv_page_token writes, or nothing. */
static void page_tokens_parse_strictly(void **state)
{
    const uint64_t h = 0x0123456789abcdefULL;
    static const char *const bad[] = {
        "-1.0123456789abcdef",
        "+2.0123456789abcdef",
        "0x2.0123456789abcdef",
        " 2.0123456789abcdef",
        "2 .0123456789abcdef",
        "A.0123456789abcdef",
        "02.0123456789abcdef",
        ".0123456789abcdef",
        "2.0123456789ABCDEF",
        "2.+123456789abcdef",
        "2.-123456789abcdef",
        "2. 123456789abcdef",
        "2.0123456789abcdef ",
        "2.0123456789abcde",
        "2.0123456789abcdef0",
        "2.0123456789abcdee",
        "11111111111111111.0123456789abcdef",
        "2..0123456789abcdef",
        "2",
        "2.",
    };
    char tok[64];
    size_t off = 99;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        off = 99;
        if (adv_page_token_parse(bad[i], h, &off) != -EINVAL)
            fail_msg("page token \"%s\" accepted (offset %zu)", bad[i], off);
    }
    assert_int_equal(adv_page_token_parse("", h, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(adv_page_token_parse(NULL, h, &off), 0);
    for (size_t want = 0; want < 70000; want = want * 3 + 1) {
        adv_page_token(h, want, tok, sizeof(tok));
        assert_int_equal(adv_page_token_parse(tok, h, &off), 0);
        assert_int_equal(off, want);
    }
    adv_page_token(h, SIZE_MAX, tok, sizeof(tok));
    assert_int_equal(adv_page_token_parse(tok, h, &off), 0);
    assert_true(off == SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pages_equal_the_generic_encoders),
        cmocka_unit_test(an_empty_snapshot_lists_as_an_empty_object),
        cmocka_unit_test(the_basic_view_leaves_out_the_evidence_only),
        cmocka_unit_test(evidence_maps_every_engine_field),
        cmocka_unit_test(page_tokens_parse_strictly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
