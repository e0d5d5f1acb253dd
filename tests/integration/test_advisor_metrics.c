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
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <math.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kopt/clickhouse.h>
#include <kopt/usage_buckets.h>

#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"
#include "schema.h"

#define KEY "metrics-itest-key-0123456789"

static const char *src_dir, *advisor_exe;

static struct {
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    kopt_test_proc_t adv, capped, gw; /* gw: a second one with --http-tls */
    char *dir, *certs, keys[512], log[512], capped_log[512], gw_log[512];
    char ca[600], cert[600], key[600];
    char *ca_pem;
    int grpc_port, admin_port, capped_admin_port;
    char target[64];
} w;

/* ---- helpers ------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* One unary call over TLS; returns the status, *resp (malloc'd) when OK. */
static int grpc_unary(const char *method, const char *key, const ProtobufCMessage *req,
                      uint8_t **resp, size_t *len)
{
    grpc_channel_credentials *cr = grpc_ssl_credentials_create(w.ca_pem, NULL, NULL, NULL);
    grpc_channel *ch = grpc_channel_create(w.target, cr, NULL);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(60, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    size_t rlen = protobuf_c_message_get_packed_size(req);
    uint8_t *rb = malloc(rlen + 1);
    grpc_metadata md;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *send, *recv = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice sl, det = grpc_empty_slice();
    grpc_op ops[6];
    char auth[256];
    grpc_event ev;

    grpc_channel_credentials_release(cr);
    protobuf_c_message_pack(req, rb);
    sl = grpc_slice_from_copied_buffer((const char *)rb, rlen);
    send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    free(rb);
    snprintf(auth, sizeof(auth), "Bearer %s", key);
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_copied_string(auth);
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &det;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, (void *)1, NULL), GRPC_CALL_OK);
    ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    *resp = NULL;
    *len = 0;
    if (recv) {
        grpc_byte_buffer_reader rd;
        grpc_slice all;

        grpc_byte_buffer_reader_init(&rd, recv);
        all = grpc_byte_buffer_reader_readall(&rd);
        *len = GRPC_SLICE_LENGTH(all);
        *resp = malloc(*len + 1);
        memcpy(*resp, GRPC_SLICE_START_PTR(all), *len);
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&rd);
        grpc_byte_buffer_destroy(recv);
    }
    grpc_slice_unref(det);
    grpc_slice_unref(md.value);
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return (int)status;
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
    uint8_t *b;
    size_t n;

    req.page_size = 100;
    req.view = KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL;
    assert_int_equal(grpc_unary("/kopt.v1.Advisor/ListRecommendations", KEY,
                                (const ProtobufCMessage *)&req, &b, &n),
                     GRPC_STATUS_OK);
    resp = kopt__v1__list_recommendations_response__unpack(NULL, n, b);
    free(b);
    assert_non_null(resp);
    return resp;
}

/* ---- data ---------------------------------------------------------------- */

static int n_rows;

/* 48 hours of one container with a constant shape, ending the hour before now. */
static void add_hours(FILE *f, const char *ns, const char *kind, const char *name,
                      const char *container, double cpu, double mem, double cpu_req, double mem_req,
                      uint32_t pods)
{
    int64_t now = (int64_t)time(NULL) / 3600 * 3600;

    for (int h = 48; h >= 1; h--) {
        int64_t hour = now - (int64_t)h * 3600;
        uint32_t n = 60 * pods;

        fprintf(f,
                "%s('local','%s','%s','%s','%s',%lld,%u,%u,%u,%.6f,%.6f,%.3f,0,0,0,[%d],[%u],%.0f,"
                "%.0f,[%d],[%u],0,0,%.3f,0,%.0f,0,%lld)",
                n_rows++ ? "," : "", ns, kind, name, container, (long long)hour, n, pods, n * 6,
                cpu, cpu * 1.5, cpu * 60 * n, kopt_cpu_bucket(cpu), n, mem, mem,
                kopt_memory_bucket(mem), n, cpu_req, mem_req, (long long)now);
    }
}

static void write_history(void)
{
    char *sql = NULL, *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);

    fputs("INSERT INTO kopt.container_hourly (cluster, namespace, workload_kind, workload_name, "
          "container, hour, window_count, pod_count, sample_count, cpu_usage_mean_cores, "
          "cpu_usage_peak_cores, cpu_usage_core_seconds, cpu_throttled_seconds, "
          "cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "
          "memory_working_set_peak_bytes, memory_rss_peak_bytes, mem_hist_index, mem_hist_count, "
          "oom_kills, restarts, cpu_request_cores, cpu_limit_cores, memory_request_bytes, "
          "memory_limit_bytes, rolled_at) VALUES ",
          f);
    /* web: two containers, over-provisioned; db: under-provisioned; cron: one. */
    add_hours(f, "shop", "Deployment", "web", "app", 0.2, 200.0 * 1048576, 1.0, 1024.0 * 1048576,
              2);
    add_hours(f, "shop", "Deployment", "web", "sidecar", 0.01, 30.0 * 1048576, 0.1, 64.0 * 1048576,
              2);
    add_hours(f, "shop", "StatefulSet", "db", "pg", 0.5, 600.0 * 1048576, 0.25, 512.0 * 1048576, 1);
    add_hours(f, "batch", "CronJob", "report", "main", 0.05, 50.0 * 1048576, 0.5, 256.0 * 1048576,
              1);
    fclose(f);
    if (kopt_test_clickhouse_query(w.ch, sql, &out) != 0)
        fail_msg("insert failed: %s", out);
    free(out);
    free(sql);
}

/* ---- set-up -------------------------------------------------------------- */

/* `extra`: more flags (up to 6), or NULL. */
static void start_advisor(kopt_test_proc_t *p, const char *log, int grpc_port, int admin_port,
                          const char *max_series, char *const *extra)
{
    char grpc_l[64], http_l[64], admin_l[64], url[128];
    long st = 0;
    size_t n = 0;
    char *argv[40] = {(char *)advisor_exe,
                      "--api-keys-file",
                      w.keys,
                      "--tls-ca",
                      w.ca,
                      "--tls-cert",
                      w.cert,
                      "--tls-key",
                      w.key,
                      "--listen",
                      grpc_l,
                      "--http-listen",
                      http_l,
                      "--admin-listen",
                      admin_l,
                      "--clickhouse-url",
                      w.ch->url,
                      "--nats-url",
                      "",
                      "--analysis-interval",
                      "0",
                      "--metrics-max-recommendation-series",
                      (char *)max_series,
                      NULL};

    while (argv[n])
        n++;
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = extra[i];

    snprintf(grpc_l, sizeof(grpc_l), "127.0.0.1:%d", grpc_port);
    snprintf(http_l, sizeof(http_l), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", admin_port);
    assert_int_equal(kopt_test_proc_spawn(p, argv, NULL, log), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", admin_port);
    for (int i = 0; i < 300 && st != 200; i++) {
        usleep(100 * 1000);
        kopt_test_http(url, NULL, 1000, &st, NULL);
    }
    if (st != 200)
        kopt_test_log_tail(log, 40);
    assert_int_equal(st, 200);
}

static int group_setup(void **state)
{
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    char cmdlog[600];
    FILE *f;

    (void)state;
    if (kopt_test_nats_start(&w.nats, NULL) == -ENOENT ||
        kopt_test_clickhouse_start(&w.ch) == -ENOENT) {
        fprintf(stderr, "nats-server or clickhouse-server missing: skipping\n");
        return -1;
    }
    assert_non_null(w.nats);
    assert_non_null(w.ch);
    w.certs = kopt_test_tmpdir("kopt-advmetrics-certs");
    assert_non_null(w.certs);
    assert_int_equal(kopt_test_make_certs(src_dir, w.certs), 0);
    snprintf(w.ca, sizeof(w.ca), "%s/ca.pem", w.certs);
    snprintf(w.cert, sizeof(w.cert), "%s/server.pem", w.certs);
    snprintf(w.key, sizeof(w.key), "%s/server-key.pem", w.certs);
    w.ca_pem = read_file(w.ca);
    o.url = w.ch->url;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    kopt_ch_client_free(c);
    write_history();
    w.dir = kopt_test_tmpdir("kopt-advmetrics-test");
    assert_non_null(w.dir);
    snprintf(w.keys, sizeof(w.keys), "%s/keys", w.dir);
    snprintf(w.log, sizeof(w.log), "%s/advisor.log", w.dir);
    snprintf(w.capped_log, sizeof(w.capped_log), "%s/capped.log", w.dir);
    snprintf(cmdlog, sizeof(cmdlog), "%s/analyze.log", w.dir);
    f = fopen(w.keys, "w");
    assert_non_null(f);
    fputs(KEY "\n", f);
    fclose(f);
    {
        char *once[] = {(char *)advisor_exe, "analyze",    "--once", "--clickhouse-url",
                        w.ch->url,           "--nats-url", "",       NULL};
        int rc = kopt_test_proc_run(once, cmdlog, 120000);

        if (rc != 0) {
            kopt_test_log_tail(cmdlog, 40);
            fail_msg("analyze --once exited %d", rc);
        }
    }
    w.grpc_port = kopt_test_free_port();
    w.admin_port = kopt_test_free_port();
    snprintf(w.target, sizeof(w.target), "127.0.0.1:%d", w.grpc_port);
    start_advisor(&w.adv, w.log, w.grpc_port, w.admin_port, "10000", NULL);
    return 0;
}

static int stop_checked(kopt_test_proc_t *p, const char *log)
{
    int r = 0;

    if (!p->pid)
        return 0;
    r = kopt_test_proc_stop(p, 10000);
    if (r != 0 || kopt_test_log_contains(log, "ERROR: AddressSanitizer") ||
        kopt_test_log_contains(log, "LeakSanitizer") ||
        kopt_test_log_contains(log, "runtime error")) {
        kopt_test_log_tail(log, 60);
        r = -1;
    }
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        fprintf(stderr, "kopt-advisor exit status %d\n", p->status);
        r = -1;
    }
    kopt_test_proc_release(p);
    return r;
}

static int group_teardown(void **state)
{
    int r = stop_checked(&w.adv, w.log);

    (void)state;
    if (stop_checked(&w.capped, w.capped_log) != 0)
        r = -1;
    if (stop_checked(&w.gw, w.gw_log) != 0)
        r = -1;
    kopt_test_cleanup_all();
    if (w.dir)
        kopt_test_rmtree(w.dir);
    if (w.certs)
        kopt_test_rmtree(w.certs);
    free(w.dir);
    free(w.certs);
    free(w.ca_pem);
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
    uint8_t *b;
    size_t n;

    (void)state;
    before = scrape(w.admin_port);
    resp = list_all();
    kopt__v1__list_recommendations_response__free_unpacked(resp, NULL);
    get.cluster = "local";
    get.namespace_ = "shop";
    get.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    get.name = "no-such-workload";
    assert_int_equal(grpc_unary("/kopt.v1.Advisor/GetRecommendation", KEY,
                                (const ProtobufCMessage *)&get, &b, &n),
                     GRPC_STATUS_NOT_FOUND);
    free(b);
    get.name = "web";
    assert_int_equal(grpc_unary("/kopt.v1.Advisor/GetRecommendation", "wrong-key-0123456789",
                                (const ProtobufCMessage *)&get, &b, &n),
                     GRPC_STATUS_UNAUTHENTICATED);
    free(b);
    assert_int_equal(grpc_unary("/kopt.v1.Advisor/GetRecommendation", KEY,
                                (const ProtobufCMessage *)&get, &b, &n),
                     GRPC_STATUS_OK);
    free(b);
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
    snprintf(w.gw_log, sizeof(w.gw_log), "%s/gateway.log", w.dir);
    start_advisor(&w.gw, w.gw_log, kopt_test_free_port(), gw_admin, "10000", extra);
    text = scrape(gw_admin);
    expect_sample(text, s, not_after(w.cert));
    snprintf(s, sizeof(s), "kopt_tls_certificate_not_after_seconds{file=\"%s\"}", gw_cert);
    expect_sample(text, s, not_after(gw_cert));
    free(text);
    assert_int_equal(stop_checked(&w.gw, w.gw_log), 0);
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
    w.capped_admin_port = cap_admin;
    start_advisor(&w.capped, w.capped_log, kopt_test_free_port(), cap_admin, "25", NULL);
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
    assert_int_equal(stop_checked(&w.capped, w.capped_log), 0);
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
