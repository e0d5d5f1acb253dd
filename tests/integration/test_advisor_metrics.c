/* kopt-advisor's /metrics against its own API, the real binary on real
 * nats-server and clickhouse-server: hourly history of a few workloads is
 * analysed (`analyze --once`), the server (TLS from scripts/certs) serves it,
 * and each container's kopt_recommendation_* / kopt_workload_* series must
 * hold exactly the values ListRecommendations returns. The gRPC call metrics
 * (grpc_server_handled_total, grpc_server_handling_seconds) move by one per
 * call with the call's code, NOT_FOUND and UNAUTHENTICATED included; the
 * certificates' notAfter is exported (gRPC, and a separate HTTPS gateway
 * certificate); another advisor with a small
 * --metrics-max-recommendation-series keeps whole workloads and counts the
 * rest as dropped.
 *
 * usage: test_advisor_metrics SRCDIR KOPT_ADVISOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <grpc/grpc.h>
#include <math.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"

#define KEY "metrics-itest-key-0123456789"

static const char *src_dir, *advisor_exe;

/* The advisor under test (TLS, no NATS) and its servers. */
static kopt_test_advisor_t w;

/* Two more advisors on the same servers: a small series cap, and an HTTPS
 * gateway with a certificate of its own. */
static struct {
    kopt_test_proc_t capped, gw;
    char capped_log[600], gw_log[600];
} more;

/* ---- helpers ------------------------------------------------------------- */

/* One unary call over TLS; the answer when the code (in *code) is OK. */
static ProtobufCMessage *call(const char *method, const char *key, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *desc, int *code)
{
    return kopt_test_grpc_unary_bearer(w.target, w.ca, key, method, req, desc, code, NULL, 0);
}

/* The code of a GetRecommendation call. */
static int get_code(const char *key, const Kopt__V1__GetRecommendationRequest *req)
{
    int code;
    ProtobufCMessage *m = call("/kopt.v1.Advisor/GetRecommendation", key, &req->base,
                               &kopt__v1__get_recommendation_response__descriptor, &code);

    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return code;
}

static char *scrape(int admin_port)
{
    char url[128], *out = NULL;
    long st = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", admin_port);
    assert_int_equal(kopt_test_http(url, NULL, 10000, &st, &out), 0);
    assert_int_equal(st, 200);
    return out;
}

/* The value of the line `sample value` in an exposition; NAN if absent. */
static double sample_of(const char *text, const char *sample)
{
    size_t n = strlen(sample);

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* Samples (lines) of a family in an exposition. */
static int count_lines(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    int k = 0;

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            k++;
    return k;
}

static void expect_sample(const char *text, const char *sample, double want)
{
    double got = sample_of(text, sample);

    if (!(got == want))
        fail_msg("%s: /metrics has %.17g, the API %.17g", sample, got, want);
}

static Kopt__V1__ListRecommendationsResponse *list_all(void)
{
    Kopt__V1__ListRecommendationsRequest req = KOPT__V1__LIST_RECOMMENDATIONS_REQUEST__INIT;
    Kopt__V1__ListRecommendationsResponse *resp;
    int code;

    req.page_size = 100;
    req.view = KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL;
    resp = (Kopt__V1__ListRecommendationsResponse *)call(
        "/kopt.v1.Advisor/ListRecommendations", KEY, &req.base,
        &kopt__v1__list_recommendations_response__descriptor, &code);
    assert_int_equal(code, GRPC_STATUS_OK);
    assert_non_null(resp);
    return resp;
}

/* ---- data ---------------------------------------------------------------- */

#define MIB 1048576.0

/* 48 hours of each. web: two containers, over-provisioned; db:
 * under-provisioned; cron: one. */
static const kopt_test_seed_t seed[] = {
    {"local", "shop", "Deployment", "web", "app", 0.2, 200 * MIB, 1.0, 1024 * MIB, 0, 0, 2, 0},
    {"local", "shop", "Deployment", "web", "sidecar", 0.01, 30 * MIB, 0.1, 64 * MIB, 0, 0, 2, 0},
    {"local", "shop", "StatefulSet", "db", "pg", 0.5, 600 * MIB, 0.25, 512 * MIB, 0, 0, 1, 0},
    {"local", "batch", "CronJob", "report", "main", 0.05, 50 * MIB, 0.5, 256 * MIB, 0, 0, 1, 0},
};

/* ---- set-up -------------------------------------------------------------- */

/* Another advisor on the fixture's servers with a series cap and `extra`
 * flags (up to 6), or NULL. */
static void start_advisor(kopt_test_proc_t *p, const char *log, int admin_port,
                          const char *max_series, char *const *extra)
{
    const char *argv[10] = {"--metrics-max-recommendation-series", max_series};
    size_t n = 2;

    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    assert_int_equal(kopt_test_advisor_spawn(&w, p, log, kopt_test_free_port(),
                                             kopt_test_free_port(), admin_port, argv),
                     0);
}

static int group_setup(void **state)
{
    kopt_test_advisor_opts_t o = {.src_dir = src_dir,
                                  .advisor_exe = advisor_exe,
                                  .name = "advmetrics",
                                  .seed = seed,
                                  .n_seed = sizeof(seed) / sizeof(seed[0]),
                                  .keys = KEY "\n",
                                  .tls = true,
                                  .no_nats = true};
    const char *const cap[] = {"--metrics-max-recommendation-series", "10000", NULL};
    int rc = kopt_test_advisor_up(&w, &o, cap);

    (void)state;
    if (rc == -ENOENT)
        return -1;
    assert_int_equal(rc, 0);
    snprintf(more.capped_log, sizeof(more.capped_log), "%s/capped.log", w.dir);
    return 0;
}

static int group_teardown(void **state)
{
    int r = 0;

    (void)state;
    if (kopt_test_advisor_stop_checked(&more.capped, more.capped_log) != 0)
        r = -1;
    if (kopt_test_advisor_stop_checked(&more.gw, more.gw_log) != 0)
        r = -1;
    if (kopt_test_advisor_teardown(&w) != 0)
        r = -1;
    return r;
}

/* ---- tests --------------------------------------------------------------- */

static const char *kind_name(int kind)
{
    switch (kind) {
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT:
        return "Deployment";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET:
        return "StatefulSet";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_CRON_JOB:
        return "CronJob";
    default:
        fail_msg("unexpected kind %d", kind);
        return "";
    }
}

static void recommendation_series_match_the_api(void **state)
{
    Kopt__V1__ListRecommendationsResponse *resp = list_all();
    char *text = scrape(w.admin_port);
    int containers = 0;

    (void)state;
    assert_int_equal(resp->n_recommendations, 3);
    for (size_t i = 0; i < resp->n_recommendations; i++) {
        const Kopt__V1__Recommendation *r = resp->recommendations[i];
        const Kopt__V1__WorkloadRef *wl = r->workload;
        char base[512], s[700];

        snprintf(base, sizeof(base), "cluster=\"%s\",namespace=\"%s\",kind=\"%s\",workload=\"%s\"",
                 wl->cluster, wl->namespace_, kind_name(wl->kind), wl->name);
        snprintf(s, sizeof(s), "kopt_recommendation_savings_monthly{%s,currency=\"%s\"}", base,
                 r->savings->currency);
        expect_sample(text, s, r->savings->monthly_cost);
        for (size_t k = 0; k < r->n_containers; k++) {
            const Kopt__V1__ContainerRecommendation *c = r->containers[k];

            containers++;
            assert_non_null(c->bounds);
            assert_true(c->recommended->cpu_request_cores > 0);
#define EXPECT(fmt, v)                                                                             \
    do {                                                                                           \
        snprintf(s, sizeof(s), fmt, base, c->container);                                           \
        expect_sample(text, s, (double)(v));                                                       \
    } while (0)
            EXPECT("kopt_recommendation_cpu_request_cores{%s,container=\"%s\",bound=\"target\"}",
                   c->recommended->cpu_request_cores);
            EXPECT("kopt_recommendation_cpu_request_cores{%s,container=\"%s\",bound=\"lower\"}",
                   c->bounds->cpu_lower_cores);
            EXPECT("kopt_recommendation_cpu_request_cores{%s,container=\"%s\",bound=\"upper\"}",
                   c->bounds->cpu_upper_cores);
            EXPECT("kopt_recommendation_memory_request_bytes{%s,container=\"%s\",bound=\"target\"}",
                   c->recommended->memory_request_bytes);
            EXPECT("kopt_recommendation_memory_request_bytes{%s,container=\"%s\",bound=\"lower\"}",
                   c->bounds->memory_lower_bytes);
            EXPECT("kopt_recommendation_memory_request_bytes{%s,container=\"%s\",bound=\"upper\"}",
                   c->bounds->memory_upper_bytes);
            EXPECT("kopt_workload_cpu_request_cores{%s,container=\"%s\"}",
                   c->current->cpu_request_cores);
            EXPECT("kopt_workload_memory_request_bytes{%s,container=\"%s\"}",
                   c->current->memory_request_bytes);
            EXPECT("kopt_recommendation_confidence{%s,container=\"%s\"}", c->confidence);
#undef EXPECT
        }
    }
    /* Nothing more than the API has: 3 + 3 bounds, 2 current, 1 confidence. */
    assert_int_equal(containers, 4);
    assert_int_equal(count_lines(text, "kopt_recommendation_cpu_request_cores{"), 3 * containers);
    assert_int_equal(count_lines(text, "kopt_recommendation_memory_request_bytes{"),
                     3 * containers);
    assert_int_equal(count_lines(text, "kopt_workload_cpu_request_cores{"), containers);
    assert_int_equal(count_lines(text, "kopt_recommendation_confidence{"), containers);
    assert_int_equal(count_lines(text, "kopt_recommendation_savings_monthly{"), 3);
    expect_sample(text, "kopt_recommendation_series", 3 + 9 * containers);
    expect_sample(text, "kopt_recommendation_series_dropped_total", 0);
    fprintf(stderr, "%d containers of 3 workloads: every series equals the API's value\n",
            containers);
    kopt__v1__list_recommendations_response__free_unpacked(resp, NULL);
    free(text);
}

#define L_LIST                                                                                     \
    "grpc_type=\"unary\",grpc_service=\"kopt.v1.Advisor\",grpc_method=\"ListRecommendations\""
#define L_GET                                                                                      \
    "grpc_type=\"unary\",grpc_service=\"kopt.v1.Advisor\",grpc_method=\"GetRecommendation\""

static void grpc_calls_are_counted_by_method_and_code(void **state)
{
    Kopt__V1__GetRecommendationRequest get = KOPT__V1__GET_RECOMMENDATION_REQUEST__INIT;
    Kopt__V1__ListRecommendationsResponse *resp;
    char *before, *after;

    (void)state;
    before = scrape(w.admin_port);
    resp = list_all();
    kopt__v1__list_recommendations_response__free_unpacked(resp, NULL);
    get.cluster = "local";
    get.namespace_ = "shop";
    get.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    get.name = "no-such-workload";
    assert_int_equal(get_code(KEY, &get), GRPC_STATUS_NOT_FOUND);
    get.name = "web";
    assert_int_equal(get_code("wrong-key-0123456789", &get), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(get_code(KEY, &get), GRPC_STATUS_OK);
    after = scrape(w.admin_port);
#define MOVED(sample, by)                                                                          \
    do {                                                                                           \
        double b0 = sample_of(before, sample), a0 = sample_of(after, sample);                      \
        if (isnan(b0))                                                                             \
            b0 = 0;                                                                                \
        if (!(a0 - b0 == (by)))                                                                    \
            fail_msg("%s: %g -> %g, expected +%d", sample, b0, a0, by);                            \
    } while (0)
    MOVED("grpc_server_handled_total{" L_LIST ",grpc_code=\"OK\"}", 1);
    MOVED("grpc_server_started_total{" L_LIST "}", 1);
    MOVED("grpc_server_handling_seconds_count{" L_LIST "}", 1);
    MOVED("grpc_server_handled_total{" L_GET ",grpc_code=\"NotFound\"}", 1);
    MOVED("grpc_server_handled_total{" L_GET ",grpc_code=\"Unauthenticated\"}", 1);
    MOVED("grpc_server_handled_total{" L_GET ",grpc_code=\"OK\"}", 1);
    MOVED("grpc_server_handling_seconds_count{" L_GET "}", 3);
    MOVED("grpc_server_handling_seconds_bucket{" L_GET ",le=\"+Inf\"}", 3);
#undef MOVED
    assert_true(sample_of(after, "grpc_server_handling_seconds_sum{" L_GET "}") > 0);
    free(before);
    free(after);
}

/* A certificate's notAfter as openssl reads it, unix seconds. */
static double not_after(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;
    struct tm tm;

    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    X509_free(x);
    return (double)timegm(&tm);
}

/* The gRPC server certificate; and with --http-tls and a gateway certificate
 * of its own (another advisor), that one too. */
static void certificate_expiry_is_exported(void **state)
{
    char *text, s[800], gw_cert[600], gw_key[600];
    int gw_admin = kopt_test_free_port();
    char *extra[] = {"--http-tls", "on", "--http-tls-cert", gw_cert, "--http-tls-key",
                     gw_key,       NULL};

    (void)state;
    text = scrape(w.admin_port);
    snprintf(s, sizeof(s), "kopt_tls_certificate_not_after_seconds{file=\"%s\"}", w.cert);
    expect_sample(text, s, not_after(w.cert));
    assert_true(not_after(w.cert) > (double)time(NULL));
    free(text);

    assert_int_equal(kopt_test_make_client_cert(w.certs, "gateway", "DNS:localhost"), 0);
    snprintf(gw_cert, sizeof(gw_cert), "%s/gateway.pem", w.certs);
    snprintf(gw_key, sizeof(gw_key), "%s/gateway-key.pem", w.certs);
    snprintf(more.gw_log, sizeof(more.gw_log), "%s/gateway.log", w.dir);
    start_advisor(&more.gw, more.gw_log, gw_admin, "10000", extra);
    text = scrape(gw_admin);
    expect_sample(text, s, not_after(w.cert));
    snprintf(s, sizeof(s), "kopt_tls_certificate_not_after_seconds{file=\"%s\"}", gw_cert);
    expect_sample(text, s, not_after(gw_cert));
    free(text);
    assert_int_equal(kopt_test_advisor_stop_checked(&more.gw, more.gw_log), 0);
}

/* 10 series a container (+1 a workload): with a cap of 25 only whole
 * workloads fit, largest savings first, and the rest count as dropped at
 * every scrape. */
static void the_series_cap_keeps_whole_workloads_and_counts_the_rest(void **state)
{
    Kopt__V1__ListRecommendationsResponse *resp = list_all();
    uint64_t total = 0;
    char *t1, *t2;
    double exported, dropped;
    int cap_admin = kopt_test_free_port();

    (void)state;
    for (size_t i = 0; i < resp->n_recommendations; i++)
        total += 1 + 9 * resp->recommendations[i]->n_containers;
    kopt__v1__list_recommendations_response__free_unpacked(resp, NULL);
    start_advisor(&more.capped, more.capped_log, cap_admin, "25", NULL);
    t1 = scrape(cap_admin);
    t2 = scrape(cap_admin);
    exported = sample_of(t1, "kopt_recommendation_series");
    dropped = sample_of(t1, "kopt_recommendation_series_dropped_total");
    fprintf(stderr, "cap 25 of %llu series: %g exported, %g dropped per scrape\n",
            (unsigned long long)total, exported, dropped);
    assert_true(exported <= 25 && exported > 0);
    assert_true(exported + dropped == (double)total);
    assert_true(sample_of(t2, "kopt_recommendation_series_dropped_total") == 2 * dropped);
    /* Whole workloads: every exported container has all its series. */
    assert_int_equal(count_lines(t1, "kopt_recommendation_cpu_request_cores{") % 3, 0);
    assert_int_equal(count_lines(t1, "kopt_recommendation_cpu_request_cores{") / 3,
                     count_lines(t1, "kopt_recommendation_confidence{"));
    assert_int_equal(count_lines(t1, "kopt_recommendation_savings_monthly{") +
                         9 * count_lines(t1, "kopt_recommendation_confidence{"),
                     (int)exported);
    free(t1);
    free(t2);
    assert_int_equal(kopt_test_advisor_stop_checked(&more.capped, more.capped_log), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recommendation_series_match_the_api),
        cmocka_unit_test(grpc_calls_are_counted_by_method_and_code),
        cmocka_unit_test(certificate_expiry_is_exported),
        cmocka_unit_test(the_series_cap_keeps_whole_workloads_and_counts_the_rest),
    };
    int r;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_ADVISOR\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    advisor_exe = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    grpc_init();
    r = cmocka_run_group_tests(tests, group_setup, group_teardown);
    grpc_shutdown();
    return r;
}
