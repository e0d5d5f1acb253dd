/* Replicas of kopt-advisor (issue 18): real advisors against one real
 * nats-server (with the per-component users of tests/harness/nats_auth.c,
 * so the lease's permissions are the ones documented) and one real
 * clickhouse-server. Two advisors with a short --analysis-interval run
 * exactly one scheduled analysis per interval between them (counted on the
 * AnalysisCompleted markers in KOPT_RECOMMENDATIONS), the other skips and
 * counts; both serve the same newest results; RunAnalysis works on either;
 * after kill -9 of the lease holder the other takes over once the lease
 * expired; a third advisor started cold serves the newest results within
 * seconds; a holder stopped cleanly deletes its lease on the way out. The
 * times are printed.
 *
 * usage: test_replicas SRCDIR KOPT_ADVISOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
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
#include "schema.h"

#define KEY "replicas-key-0123456789"
#define INTERVAL_S 4
#define TTL_S 3
#define N_ADV 3

static const char *src_dir, *advisor_exe;

typedef struct {
    kopt_test_proc_t proc;
    char log[512], pw[600], base[64], admin[64], name[8];
    int http_port, admin_port;
} adv_t;

static struct {
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    char *dir, *certs, keys[512];
    adv_t adv[N_ADV];
    int holder; /* index of the replica holding the lease */
} w;

/* ---- helpers ------------------------------------------------------------ */

/* 48 hours of two containers, ending the hour before now. */
static void write_history(void)
{
    int64_t now = (int64_t)time(NULL) / 3600 * 3600;
    char *sql = NULL, *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    static const struct {
        const char *name;
        double cpu, mem;
    } wl[] = {{"web", 0.2, 200.0 * 1048576}, {"api", 0.6, 400.0 * 1048576}};
    int rows = 0;

    fputs("INSERT INTO kopt.container_hourly (cluster, namespace, workload_kind, workload_name, "
          "container, hour, window_count, pod_count, sample_count, cpu_usage_mean_cores, "
          "cpu_usage_peak_cores, cpu_usage_core_seconds, cpu_throttled_seconds, "
          "cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "
          "memory_working_set_peak_bytes, memory_rss_peak_bytes, mem_hist_index, mem_hist_count, "
          "oom_kills, restarts, cpu_request_cores, cpu_limit_cores, memory_request_bytes, "
          "memory_limit_bytes, rolled_at) VALUES ",
          f);
    for (size_t i = 0; i < 2; i++)
        for (int h = 48; h >= 1; h--)
            fprintf(f,
                    "%s('local','shop','Deployment','%s','app',%lld,60,1,360,%.6f,%.6f,%.3f,0,0,"
                    "0,[%d],[60],%.0f,%.0f,[%d],[60],0,0,1,0,%.0f,0,%lld)",
                    rows++ ? "," : "", wl[i].name, (long long)(now - (int64_t)h * 3600), wl[i].cpu,
                    wl[i].cpu * 1.5, wl[i].cpu * 3600, kopt_cpu_bucket(wl[i].cpu), wl[i].mem,
                    wl[i].mem, kopt_memory_bucket(wl[i].mem), 1024.0 * 1048576, (long long)now);
    fclose(f);
    if (kopt_test_clickhouse_query(w.ch, sql, &out) != 0)
        fail_msg("insert failed: %s", out);
    free(out);
    free(sql);
}

static void start_advisor(int i)
{
    adv_t *a = &w.adv[i];
    char grpc_l[64], http_l[64], admin_l[64], interval[16], ttl[16];
    const char *argv[40];
    int n = 0;

    snprintf(a->name, sizeof(a->name), "%c", 'A' + i);
    a->http_port = kopt_test_free_port();
    a->admin_port = kopt_test_free_port();
    snprintf(grpc_l, sizeof(grpc_l), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(http_l, sizeof(http_l), "127.0.0.1:%d", a->http_port);
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", a->admin_port);
    snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->http_port);
    snprintf(a->admin, sizeof(a->admin), "http://127.0.0.1:%d", a->admin_port);
    snprintf(a->log, sizeof(a->log), "%s/advisor-%c.log", w.dir, 'A' + i);
    snprintf(interval, sizeof(interval), "%ds", INTERVAL_S);
    snprintf(ttl, sizeof(ttl), "%ds", TTL_S);
    argv[n++] = advisor_exe;
    argv[n++] = "--insecure";
    argv[n++] = "--api-keys-file";
    argv[n++] = w.keys;
    argv[n++] = "--listen";
    argv[n++] = grpc_l;
    argv[n++] = "--http-listen";
    argv[n++] = http_l;
    argv[n++] = "--admin-listen";
    argv[n++] = admin_l;
    argv[n++] = "--clickhouse-url";
    argv[n++] = w.ch->url;
    argv[n++] = "--nats-url";
    argv[n++] = w.nats->url;
    argv[n++] = "--analysis-interval";
    argv[n++] = interval;
    argv[n++] = "--lease-ttl";
    argv[n++] = ttl;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    assert_int_equal(
        kopt_test_nats_auth_args(w.nats, "kopt-advisor", argv, &n, a->pw, sizeof(a->pw)), 0);
    argv[n] = NULL;
    assert_int_equal(kopt_test_proc_spawn(&a->proc, (char *const *)argv, NULL, a->log), 0);
}

/* Seconds until the replica's /readyz answers 200, or -1 after 30 s. */
static double wait_ready(const adv_t *a)
{
    char url[128];
    double t0 = kopt_test_now();
    long st = 0;

    snprintf(url, sizeof(url), "%s/readyz", a->admin);
    for (int i = 0; i < 600; i++) {
        kopt_test_http(url, NULL, 1000, &st, NULL);
        if (st == 200)
            return kopt_test_now() - t0;
        usleep(50 * 1000);
    }
    kopt_test_log_tail(a->log, 40);
    return -1;
}

static double metric(const adv_t *a, const char *sample)
{
    double v = kopt_test_metric(a->admin, sample);

    return v < 0 ? 0 : v;
}

static double runs_ok(const adv_t *a)
{
    return metric(a, "kopt_advisor_analysis_runs_total{result=\"ok\"}");
}

/* A request with the API key (POST when body); the status, the body in *out. */
static long api(const adv_t *a, const char *path, const char *body, char **out)
{
    char url[256];
    kopt_test_http_req_t q = {.url = url, .bearer = KEY, .body = body};
    kopt_test_http_resp_t r;
    long status;

    snprintf(url, sizeof(url), "%s%s", a->base, path);
    status = kopt_test_http_call(&q, &r);
    *out = r.body;
    r.body = NULL;
    kopt_test_http_resp_free(&r);
    return status;
}

/* The analysis id a replica serves for shop/web ("" when none). */
static void served_id(const adv_t *a, char *out, size_t len)
{
    char *body = NULL;
    json_t *j = NULL;
    const char *id;

    out[0] = '\0';
    if (api(a, "/v1/recommendations/local/shop/Deployment/web", NULL, &body) == 200)
        j = json_loads(body, 0, NULL);
    free(body);
    id = json_string_value(json_object_get(json_object_get(j, "recommendation"), "analysisId"));
    if (!id)
        id = json_string_value(json_object_get(j, "analysisId"));
    if (id)
        snprintf(out, len, "%s", id);
    json_decref(j);
}

/* Waits until replicas a and b serve the same analysis: its id in out, and
 * the seconds it took, or -1 after `limit_s`. */
static double wait_same(const adv_t *a, const adv_t *b, char *out, size_t len, double limit_s)
{
    double t0 = kopt_test_now();
    char ia[64], ib[64];

    do {
        served_id(a, ia, sizeof(ia));
        served_id(b, ib, sizeof(ib));
        if (ia[0] && strcmp(ia, ib) == 0) {
            snprintf(out, len, "%s", ia);
            return kopt_test_now() - t0;
        }
        usleep(100 * 1000);
    } while (kopt_test_now() - t0 < limit_s);
    fprintf(stderr, "%s serves %s, %s serves %s\n", a->name, ia, b->name, ib);
    return -1;
}

/* Every AnalysisCompleted of cluster local: analysis ids and publish times. */
static size_t read_markers(char ids[][64], double *at, size_t max)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    size_t n = 0;

    assert_int_equal(kopt_test_nats_connect(w.nats, &nc), 0);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions_Init(&so);
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Ordered = true;
    /* The advisors create KOPT_RECOMMENDATIONS on a worker after they are
     * ready: under ASan on a loaded machine it may not exist yet. */
    for (double until = kopt_test_now() + 20;; usleep(200 * 1000)) {
        natsStatus s =
            js_SubscribeSync(&sub, js, "kopt.recommendations.local._completed", NULL, &so, &jerr);

        if (s == NATS_OK)
            break;
        if (kopt_test_now() > until)
            fail_msg("no subscription to the markers: %s (JetStream error %d)",
                     natsStatus_GetText(s), (int)jerr);
    }
    for (;;) {
        natsMsg *m = NULL;
        jsMsgMetaData *md = NULL;
        const char *id = NULL;

        if (natsSubscription_NextMsg(&m, sub, 1500) != NATS_OK)
            break;
        if (n < max && natsMsgHeader_Get(m, "Kopt-Analysis-Id", &id) == NATS_OK &&
            natsMsg_GetMetaData(&md, m) == NATS_OK) {
            snprintf(ids[n], 64, "%s", id);
            at[n] = (double)md->Timestamp / 1e9;
            n++;
        }
        jsMsgMetaData_Destroy(md);
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

/* ---- set-up ------------------------------------------------------------- */

static int group_setup(void **state)
{
    kopt_test_nats_opts_t no = {0};
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    FILE *f;

    (void)state;
    w.certs = kopt_test_tmpdir("kopt-replicas-certs");
    assert_non_null(w.certs);
    assert_int_equal(kopt_test_make_certs(src_dir, w.certs), 0);
    no.auth_certs_dir = w.certs;
    if (kopt_test_nats_start(&w.nats, &no) == -ENOENT ||
        kopt_test_clickhouse_start(&w.ch) == -ENOENT) {
        fprintf(stderr, "nats-server or clickhouse-server missing: skipping\n");
        return -1;
    }
    assert_non_null(w.nats);
    assert_non_null(w.ch);
    o.url = w.ch->url;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    kopt_ch_client_free(c);
    write_history();
    w.dir = kopt_test_tmpdir("kopt-replicas-test");
    assert_non_null(w.dir);
    snprintf(w.keys, sizeof(w.keys), "%s/keys", w.dir);
    f = fopen(w.keys, "w");
    assert_non_null(f);
    fputs(KEY "\n", f);
    fclose(f);
    w.holder = -1;
    return 0;
}

static int group_teardown(void **state)
{
    int r = 0;

    (void)state;
    for (int i = 0; i < N_ADV; i++) {
        adv_t *a = &w.adv[i];

        if (!a->proc.pid)
            continue;
        if (kopt_test_proc_alive(&a->proc) && kopt_test_proc_stop(&a->proc, 10000) != 0)
            r = -1;
        if (kopt_test_log_contains(a->log, "ERROR: AddressSanitizer") ||
            kopt_test_log_contains(a->log, "LeakSanitizer")) {
            kopt_test_log_tail(a->log, 60);
            r = -1;
        }
        kopt_test_proc_release(&a->proc);
    }
    kopt_test_cleanup_all();
    if (w.dir)
        kopt_test_rmtree(w.dir);
    free(w.dir);
    if (w.certs)
        kopt_test_rmtree(w.certs);
    free(w.certs);
    return r;
}

/* ---- tests -------------------------------------------------------------- */

/* A and B share the schedule: one holds the lease and analyses every
 * interval, the other skips and counts; the markers on the stream show one
 * analysis per interval. */
static void one_scheduled_analysis_per_interval(void **state)
{
    static char ids[64][64];
    double at[64], ready_a, ready_b, t0, runs[2], skipped[2];
    size_t n, n_before;
    int follower;

    (void)state;
    start_advisor(0);
    start_advisor(1);
    ready_a = wait_ready(&w.adv[0]);
    ready_b = wait_ready(&w.adv[1]);
    assert_true(ready_a >= 0 && ready_b >= 0);
    fprintf(stderr, "ready: A after %.1f s, B %.1f s later\n", ready_a, ready_b);
    n_before = read_markers(ids, at, 64);
    t0 = kopt_test_now();
    sleep(5 * INTERVAL_S);
    n = read_markers(ids, at, 64);
    for (int i = 0; i < 2; i++) {
        runs[i] = runs_ok(&w.adv[i]);
        skipped[i] =
            metric(&w.adv[i], "kopt_advisor_analysis_skipped_total{reason=\"lease_held\"}");
        fprintf(stderr, "%s: lease held %.0f, analyses %.0f, skipped %.0f\n", w.adv[i].name,
                metric(&w.adv[i], "kopt_advisor_analysis_lease_held"), runs[i], skipped[i]);
        if (metric(&w.adv[i], "kopt_advisor_analysis_lease_held") == 1)
            w.holder = w.holder < 0 ? i : -2;
    }
    if (w.holder < 0)
        kopt_test_log_tail(w.adv[0].log, 30);
    assert_true(w.holder >= 0); /* exactly one holder */
    follower = 1 - w.holder;
    assert_true(runs[w.holder] >= 4);
    assert_true(runs[follower] == 0);
    assert_true(skipped[follower] >= 4);
    /* Every analysis left one marker; none of them came twice per interval. */
    assert_int_equal((double)n, runs[0] + runs[1]);
    fprintf(stderr, "%zu analyses in %.1f s (%zu in the last %d s), interval %d s:", n,
            kopt_test_now() - t0 + ready_a, n - n_before, 5 * INTERVAL_S, INTERVAL_S);
    for (size_t i = 1; i < n; i++) {
        fprintf(stderr, " +%.2f", at[i] - at[i - 1]);
        assert_true(at[i] - at[i - 1] >= INTERVAL_S - 0.5);
    }
    fprintf(stderr, "\n");
    assert_true(n - n_before >= 4 && n - n_before <= 6);
}

static void both_serve_the_newest_results(void **state)
{
    char id[64];
    double took;

    (void)state;
    assert_true(w.holder >= 0);
    took = wait_same(&w.adv[0], &w.adv[1], id, sizeof(id), 10);
    fprintf(stderr, "A and B serve analysis %s (%.2f s)\n", id, took);
    assert_true(took >= 0);
}

/* POST /v1/analyses on a replica: its id, retried while that replica is
 * busy (its own schedule, or a reload of another's results: 409). */
static void run_on(const adv_t *a, char *id, size_t len)
{
    long st = 0;

    for (int i = 0; i < 100; i++) {
        char *body = NULL;
        json_t *j;

        st = api(a, "/v1/analyses", "{}", &body);
        if (st == 200) {
            j = json_loads(body, 0, NULL);
            snprintf(id, len, "%s", json_string_value(json_object_get(j, "analysisId")));
            json_decref(j);
            free(body);
            return;
        }
        free(body);
        usleep(100 * 1000);
    }
    fail_msg("RunAnalysis on %s: HTTP %ld", a->name, st);
}

static void run_analysis_works_on_either(void **state)
{
    (void)state;
    assert_true(w.holder >= 0);
    for (int k = 0; k < 2; k++) {
        const adv_t *on = &w.adv[k ? w.holder : 1 - w.holder],
                    *other = &w.adv[k ? 1 - w.holder : w.holder];
        char id[64], seen[64] = "";
        double t0 = kopt_test_now(), took = -1;

        run_on(on, id, sizeof(id));
        assert_true(id[0] != '\0');
        /* The other replica serves it within seconds, unless its own
         * schedule made a newer one first (then both serve that). */
        while (kopt_test_now() - t0 < 10) {
            served_id(other, seen, sizeof(seen));
            if (strcmp(seen, id) == 0) {
                took = kopt_test_now() - t0;
                break;
            }
            usleep(50 * 1000);
        }
        if (took < 0) {
            took = wait_same(&w.adv[0], &w.adv[1], seen, sizeof(seen), 10);
            fprintf(stderr, "RunAnalysis on %s: %s; a newer scheduled %s on both\n", on->name, id,
                    seen);
        } else {
            fprintf(stderr, "RunAnalysis on %s (%s): %s serves it after %.2f s\n",
                    k ? "the holder" : "the follower", id, other->name, took);
        }
        assert_true(took >= 0);
    }
}

static void the_other_takes_over_when_the_holder_dies(void **state)
{
    adv_t *dead, *alive;
    double t0, taken = -1, ran = -1, before;

    (void)state;
    assert_true(w.holder >= 0);
    dead = &w.adv[w.holder];
    alive = &w.adv[1 - w.holder];
    before = runs_ok(alive);
    t0 = kopt_test_now();
    assert_int_equal(kopt_test_proc_kill9(&dead->proc), 0);
    while (kopt_test_now() - t0 < TTL_S + INTERVAL_S + 10) {
        if (taken < 0 && metric(alive, "kopt_advisor_analysis_lease_held") == 1)
            taken = kopt_test_now() - t0;
        if (taken >= 0 && runs_ok(alive) > before) {
            ran = kopt_test_now() - t0;
            break;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr,
            "kill -9 %s (holder): %s took the lease after %.2f s (TTL %d s), first "
            "scheduled analysis after %.2f s\n",
            dead->name, alive->name, taken, TTL_S, ran);
    assert_true(taken >= 0 && taken <= TTL_S + 3);
    assert_true(ran >= 0);
    assert_true(kopt_test_log_contains(alive->log, "analysis lease taken"));
    w.holder = 1 - w.holder;
}

static void a_cold_replica_serves_the_newest_results_in_seconds(void **state)
{
    char id[64];
    double t0, ready, same;

    (void)state;
    assert_true(w.holder >= 0);
    t0 = kopt_test_now();
    start_advisor(2);
    ready = wait_ready(&w.adv[2]);
    assert_true(ready >= 0);
    same = wait_same(&w.adv[2], &w.adv[w.holder], id, sizeof(id), 10);
    fprintf(stderr,
            "cold replica C: ready after %.2f s, serves the holder's analysis %s %.2f s "
            "after start\n",
            ready, id, kopt_test_now() - t0);
    assert_true(same >= 0);
    assert_true(ready < 10);
    /* C did not take the lease from the holder, and skipped its ticks. */
    assert_true(metric(&w.adv[2], "kopt_advisor_analysis_lease_held") == 0);
}

/* The lease's value now ("" when absent, deleted or expired). */
static void lease_value(char *out, size_t len)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;

    assert_int_equal(kopt_test_nats_jetstream(w.nats, &nc, &js), 0);
    assert_int_not_equal(kopt_test_kv_get(js, "kopt_leases", "analysis.all", out, len), -EIO);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* SIGTERM to the holder: it deletes its lease on the way out, so the key
 * no longer names it the moment it has exited (expiry alone would take up
 * to the TTL), and the other replica takes it within a keeper period. */
static void a_clean_stop_hands_the_lease_over(void **state)
{
    adv_t *holder, *other = &w.adv[2];
    char before[128], after[128];
    double t0, taken = -1;

    (void)state;
    assert_true(w.holder >= 0);
    holder = &w.adv[w.holder];
    lease_value(before, sizeof(before));
    assert_true(before[0] != '\0');
    assert_int_equal(kopt_test_proc_stop(&holder->proc, 10000), 0);
    t0 = kopt_test_now();
    lease_value(after, sizeof(after));
    fprintf(stderr, "clean stop of %s: lease was %s, right after its exit %s\n", holder->name,
            before, after[0] ? after : "(deleted)");
    assert_string_not_equal(after, before);
    while (kopt_test_now() - t0 < 5) {
        if (metric(other, "kopt_advisor_analysis_lease_held") == 1) {
            taken = kopt_test_now() - t0;
            break;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "C took the lease %.2f s after the holder's exit (TTL %d s)\n", taken, TTL_S);
    assert_true(taken >= 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_scheduled_analysis_per_interval),
        cmocka_unit_test(both_serve_the_newest_results),
        cmocka_unit_test(run_analysis_works_on_either),
        cmocka_unit_test(the_other_takes_over_when_the_holder_dies),
        cmocka_unit_test(a_cold_replica_serves_the_newest_results_in_seconds),
        cmocka_unit_test(a_clean_stop_hands_the_lease_over),
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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return r;
}
