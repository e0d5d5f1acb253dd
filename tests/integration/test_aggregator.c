/* kopt-aggregator, the real binary, between a real nats-server (JetStream)
 * and a real clickhouse-server: batches published to KOPT_METRICS as ingest
 * does land as exactly one row per window (counted with FINAL), whatever is
 * re-delivered, killed or stopped on the way; poison (undecodable, batches
 * ingest would refuse or on another cluster's subject, rows ClickHouse
 * refuses, past max-deliver) goes to the dead-letter subject with
 * its reason while the rest flows; two replicas share the work; the hourly
 * rollup matches the windows; ClickHouse over https with the dev CA. Each
 * test uses its own database and a fresh stream. The outage_* tests (a
 * minute without ClickHouse) run as their own, parallel meson test.
 *
 * usage: test_aggregator SRCDIR KOPT_AGGREGATOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kopt/usage_buckets.h"
#include "kopt/v1/metrics.pb-c.h"

#define STREAM "KOPT_METRICS"
#define CONSUMER "kopt-aggregator"
#define CLUSTER "itest"

static const char *agg_exe;
static const char *src_dir;
static char *certs_dir; /* scripts/certs: ca.pem, server.pem, rogue-ca.pem */
static char ca_pem[512], rogue_ca_pem[512];
static kopt_test_nats_t *nats;
static kopt_test_clickhouse_t *ch;
static natsConnection *nc;
static jsCtx *js;
static int64_t hour0; /* the hour the test windows fall in: the previous one */

/* --- JetStream side --------------------------------------------------------- */

static void fresh_stream(void)
{
    jsErrCode jerr = 0;

    js_DeleteStream(js, STREAM, NULL, &jerr);
    assert_int_equal(kopt_test_js_add_stream(js, STREAM, "kopt.metrics.>", 1), 0);
}

/* Batch `seq` of W windows: one pod per window (<pods>-<seq>-<i>), all in
 * hour0, container key shop/Deployment/web/app, so the rollup of hour0 is
 * one row. Returns the stream sequence. */
static uint64_t publish_pods(uint64_t epoch, uint64_t seq, size_t w_count, const char *pods_prefix)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Google__Protobuf__Timestamp created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Kopt__V1__ContainerWindow *w = calloc(w_count, sizeof(*w)), **wp = calloc(w_count, sizeof(*wp));
    Google__Protobuf__Timestamp *ts = calloc(2 * w_count, sizeof(*ts));
    char(*pods)[48] = calloc(w_count, sizeof(*pods));
    char id[96];
    uint8_t *buf;
    size_t len;
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    uint64_t stream_seq;

    assert_true(w && wp && ts && pods);
    created.seconds = (int64_t)time(NULL);
    b.created = &created;
    b.cluster = (char *)CLUSTER;
    b.node = (char *)"node-1";
    b.agent_id = (char *)"agent-1";
    b.epoch = epoch;
    b.seq = seq;
    for (size_t i = 0; i < w_count; i++) {
        kopt__v1__container_window__init(&w[i]);
        google__protobuf__timestamp__init(&ts[2 * i]);
        google__protobuf__timestamp__init(&ts[2 * i + 1]);
        ts[2 * i].seconds = hour0 + 60 * (int64_t)((seq + i) % 60);
        ts[2 * i + 1].seconds = ts[2 * i].seconds + 60;
        snprintf(pods[i], sizeof(pods[i]), "%s-%" PRIu64 "-%zu", pods_prefix, seq, i);
        w[i].namespace_ = (char *)"shop";
        w[i].workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
        w[i].workload_name = (char *)"web";
        w[i].pod = pods[i];
        w[i].container = (char *)"app";
        w[i].window_start = &ts[2 * i];
        w[i].window_end = &ts[2 * i + 1];
        w[i].cpu_usage_mean_cores = 0.0123 + 0.0371 * (double)((seq * 7 + i) % 41);
        w[i].cpu_usage_peak_cores = 1.5 * w[i].cpu_usage_mean_cores;
        w[i].memory_working_set_peak_bytes = (3ULL << 20) + 777777ULL * ((seq * 3 + i) % 97);
        w[i].memory_rss_peak_bytes = 1ULL << 20;
        w[i].cpu_request_cores = 0.5;
        w[i].memory_request_bytes = 256ULL << 20;
        w[i].sample_count = 6;
        w[i].oom_kills = (seq + i) % 13 == 0;
        wp[i] = &w[i];
    }
    b.n_windows = w_count;
    b.windows = wp;
    len = kopt__v1__metric_batch__get_packed_size(&b);
    buf = malloc(len);
    assert_non_null(buf);
    kopt__v1__metric_batch__pack(&b, buf);
    snprintf(id, sizeof(id), "agent-1/%" PRIu64 "/%" PRIu64, epoch, seq);
    assert_int_equal(
        natsMsg_Create(&m, "kopt.metrics." CLUSTER ".node-1", NULL, (char *)buf, (int)len),
        NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    assert_int_equal(js_PublishMsg(&pa, js, m, NULL, &jerr), NATS_OK);
    stream_seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(buf);
    free(w);
    free(wp);
    free(ts);
    free(pods);
    return stream_seq;
}

static void publish_batch(uint64_t epoch, uint64_t seq, size_t w_count)
{
    publish_pods(epoch, seq, w_count, "web");
}

static void publish_range(uint64_t epoch, uint64_t from, uint64_t n, size_t w_count)
{
    for (uint64_t s = from; s < from + n; s++)
        publish_batch(epoch, s, w_count);
}

/* The durable has nothing left: none pending, none awaiting an ack. */
static int consumer_idle(void)
{
    jsConsumerInfo *ci = NULL;
    int idle = 0;

    if (js_GetConsumerInfo(&ci, js, STREAM, CONSUMER, NULL, NULL) == NATS_OK)
        idle = ci->NumPending == 0 && ci->NumAckPending == 0;
    jsConsumerInfo_Destroy(ci);
    return idle;
}

/* --- ClickHouse side ---------------------------------------------------------- */

static uint64_t ch_u64(const char *fmt, ...)
{
    char sql[1024], *out = NULL;
    uint64_t v = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (kopt_test_clickhouse_query(ch, sql, &out) == 0 && out)
        v = strtoull(out, NULL, 10);
    free(out);
    return v;
}

static uint64_t rows(const char *db)
{
    return ch_u64("SELECT count() FROM %s.container_windows FINAL", db);
}

/* Waits until the rows are exactly `want` and the consumer is idle. */
static void wait_rows(const char *db, uint64_t want, double timeout_s)
{
    double until = kopt_test_now() + timeout_s;
    uint64_t n = 0;

    while (kopt_test_now() < until) {
        n = rows(db);
        if (n == want && consumer_idle())
            return;
        assert_true(n <= want);
        usleep(100000);
    }
    fail_msg("%s.container_windows has %" PRIu64 " rows, want %" PRIu64, db, n, want);
}

/* --- the aggregator ------------------------------------------------------------- */

typedef struct {
    kopt_test_proc_t proc;
    char *dir;
    char log_path[600];
    char admin_url[96];
} agg_proc_t;

static void agg_release(void *arg)
{
    agg_proc_t *a = arg;

    kopt_test_proc_release(&a->proc);
    if (a->dir) {
        kopt_test_rmtree(a->dir);
        free(a->dir);
    }
    free(a);
}

static agg_proc_t *live[4]; /* aggregators of the running test, for its teardown */

static void agg_cleanup(void *arg)
{
    kopt_test_log_tail(((agg_proc_t *)arg)->log_path, 40);
    for (int i = 0; i < 4; i++)
        if (live[i] == arg)
            live[i] = NULL;
    agg_release(arg);
}

/* Per-test teardown: a test that failed leaves no aggregator running. */
static int test_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (live[i]) {
            kopt_test_cleanup_forget(live[i]);
            agg_cleanup(live[i]);
        }
    return 0;
}

/* /readyz: the status, and its body (the reasons) in *body if not NULL. */
static int ready_body(const agg_proc_t *a, char **body)
{
    char url[160];
    long status = 0;

    snprintf(url, sizeof(url), "%s/readyz", a->admin_url);
    kopt_test_http(url, NULL, 1000, &status, body);
    return (int)status;
}

static int ready_status(const agg_proc_t *a)
{
    return ready_body(a, NULL);
}

/* Extra command-line arguments, NULL-terminated. */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Starts kopt-aggregator on database db with the test's timings plus
 * `extra` (may be NULL; later flags win), without waiting for it. */
static agg_proc_t *agg_proc_spawn(const char *db, const char *const *extra)
{
    agg_proc_t *a = calloc(1, sizeof(*a));
    char admin[64];
    const char *argv[48];
    size_t n = 0;
    int port = kopt_test_free_port();

    assert_non_null(a);
    a->dir = kopt_test_tmpdir("kopt-itest-agg");
    assert_non_null(a->dir);
    assert_int_equal(kopt_test_cleanup_push(agg_cleanup, a), 0);
    for (int i = 0; i < 4; i++)
        if (!live[i]) {
            live[i] = a;
            break;
        }
    snprintf(a->log_path, sizeof(a->log_path), "%s/aggregator.log", a->dir);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", port);
    snprintf(a->admin_url, sizeof(a->admin_url), "http://%s", admin);
    {
        const char *base[] = {agg_exe,   "--nats-url",
                              nats->url, "--clickhouse-url",
                              ch->url,   "--clickhouse-database",
                              db,        "--admin-listen",
                              admin,     "--log-format",
                              "text",    "--ack-wait",
                              "4s",      "--fetch-batch",
                              "64",      "--fetch-timeout",
                              "200ms",   "--insert-max-delay",
                              "200ms",   "--rollup-interval",
                              "1s",      "--drain-timeout",
                              "20s"};

        for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
            argv[n++] = base[i];
        for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
    }
    assert_int_equal(kopt_test_proc_spawn(&a->proc, (char *const *)argv, NULL, a->log_path), 0);
    return a;
}

/* agg_proc_spawn, then waits up to 30 s for /readyz 200. */
static agg_proc_t *agg_proc_start(const char *db, const char *const *extra)
{
    double t0 = kopt_test_now();
    agg_proc_t *a = agg_proc_spawn(db, extra);

    while (kopt_test_proc_alive(&a->proc) && kopt_test_now() - t0 < 30.0) {
        if (ready_status(a) == 200)
            return a;
        usleep(50000);
    }
    fail_msg("kopt-aggregator not ready (log %s)", a->log_path);
    return NULL;
}

static void assert_clean_log(const agg_proc_t *a)
{
    static const char *const bad[] = {"ERROR: AddressSanitizer",
                                      "runtime error:", "ERROR: LeakSanitizer"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kopt_test_log_contains(a->log_path, bad[i])) {
            kopt_test_log_tail(a->log_path, 80);
            fail_msg("aggregator log has \"%s\"", bad[i]);
        }
}

/* SIGTERM: must drain and exit 0. */
static void agg_proc_stop(agg_proc_t *a)
{
    assert_int_equal(kopt_test_proc_stop(&a->proc, 25000), 0);
    if (!WIFEXITED(a->proc.status) || WEXITSTATUS(a->proc.status) != 0) {
        kopt_test_log_tail(a->log_path, 40);
        fail_msg("aggregator exit status %d", a->proc.status);
    }
    assert_clean_log(a);
    kopt_test_cleanup_forget(a);
    for (int i = 0; i < 4; i++)
        if (live[i] == a)
            live[i] = NULL;
    agg_release(a);
}

static double metric(const agg_proc_t *a, const char *sample)
{
    return kopt_test_metric(a->admin_url, sample);
}

static uint64_t epoch_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* --- tests ------------------------------------------------------------------------ */

/* N batches -> N*W rows; the same windows again under new ids -> unchanged;
 * then the hourly rollup of hour0 equals the windows recomputed. */
static void exact_redelivery_and_rollup(void **state)
{
    const char *db = "kopt_t1";
    const uint64_t n = 60, w = 20;
    uint64_t e1 = epoch_now(), e2 = e1 + 1;
    agg_proc_t *a;
    char *out = NULL;

    (void)state;
    fresh_stream();
    a = agg_proc_start(db, NULL);
    publish_range(e1, 1, n, w);
    wait_rows(db, n * w, 30);
    publish_range(e2, 1, n, w); /* new Nats-Msg-Id, same windows */
    wait_rows(db, n * w, 30);
    assert_int_equal(metric(a, "kopt_aggregator_consumed_total"), 2 * n);
    assert_true(metric(a, "kopt_aggregator_inserted_rows_total") >= 2 * n * w);

    /* The rollup of hour0 (the lateness window covers it) converges to: */
    double until = kopt_test_now() + 20;
    uint64_t cnt = 0;
    while (kopt_test_now() < until) {
        cnt = ch_u64("SELECT window_count FROM %s.container_hourly FINAL WHERE hour = "
                     "toDateTime(%lld) AND rolled_at > 0",
                     db, (long long)hour0);
        if (cnt == n * w)
            break;
        usleep(200000);
    }
    assert_int_equal(cnt, n * w);
    assert_int_equal(ch_u64("SELECT count() FROM %s.container_hourly FINAL", db), 1);
    assert_int_equal(ch_u64("SELECT arraySum(cpu_hist_count) FROM %s.container_hourly FINAL", db),
                     n * w);
    assert_int_equal(ch_u64("SELECT arraySum(mem_hist_count) FROM %s.container_hourly FINAL", db),
                     n * w);
    assert_int_equal(ch_u64("SELECT pod_count FROM %s.container_hourly FINAL", db), n * w);
    assert_int_equal(
        ch_u64("SELECT memory_working_set_peak_bytes FROM %s.container_hourly FINAL", db),
        ch_u64("SELECT max(memory_working_set_peak_bytes) FROM "
               "%s.container_windows FINAL",
               db));
    assert_int_equal(ch_u64("SELECT oom_kills FROM %s.container_hourly FINAL", db),
                     ch_u64("SELECT sum(oom_kills) FROM %s.container_windows FINAL", db));
    assert_int_equal(ch_u64("SELECT toUInt64(round(cpu_usage_peak_cores * 1e6)) FROM "
                            "%s.container_hourly FINAL",
                            db),
                     ch_u64("SELECT toUInt64(round(max(cpu_usage_peak_cores) * 1e6)) FROM "
                            "%s.container_windows FINAL",
                            db));

    /* The histograms, bucket by bucket, against kopt_cpu_bucket/kopt_memory_bucket in C. */
    static uint32_t cpu_want[KOPT_CPU_BUCKETS], mem_want[KOPT_MEMORY_BUCKETS];
    char sql[512];
    memset(cpu_want, 0, sizeof(cpu_want));
    memset(mem_want, 0, sizeof(mem_want));
    snprintf(sql, sizeof(sql),
             "SELECT cpu_usage_mean_cores, memory_working_set_peak_bytes FROM "
             "%s.container_windows FINAL FORMAT TabSeparated",
             db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, &out), 0);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');

        assert_non_null(tab);
        cpu_want[kopt_cpu_bucket(strtod(line, NULL))]++;
        mem_want[kopt_memory_bucket(strtod(tab + 1, NULL))]++;
    }
    free(out);
    for (int which = 0; which < 2; which++) {
        uint32_t *want = which ? mem_want : cpu_want;
        int nb = which ? KOPT_MEMORY_BUCKETS : KOPT_CPU_BUCKETS;

        for (int i = 0; i < nb; i++) {
            uint64_t got = ch_u64("SELECT sum(c) FROM (SELECT %s_hist_count[indexOf(%s_hist_index, "
                                  "toUInt16(%d))] AS c FROM %s.container_hourly FINAL)",
                                  which ? "mem" : "cpu", which ? "mem" : "cpu", i, db);

            if (want[i] != got)
                fail_msg("%s bucket %d: rollup %" PRIu64 ", windows %u", which ? "mem" : "cpu", i,
                         got, want[i]);
        }
    }
    agg_proc_stop(a);
}

/* kill -9 mid-stream, restart: nothing lost, nothing doubled. */
/* One batch of `n` windows of `len_s` seconds from `start`, pod `pod`,
 * container key shop/Deployment/web/app. */
static void publish_windows(uint64_t epoch, uint64_t seq, const char *pod, int64_t start,
                            int64_t len_s, size_t n)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Google__Protobuf__Timestamp created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Kopt__V1__ContainerWindow w[64], *wp[64];
    Google__Protobuf__Timestamp ts[128];
    char id[96];
    uint8_t *buf;
    size_t len;
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;

    assert_true(n <= 64);
    created.seconds = (int64_t)time(NULL);
    b.created = &created;
    b.cluster = (char *)CLUSTER;
    b.node = (char *)"node-1";
    b.agent_id = (char *)"agent-1";
    b.epoch = epoch;
    b.seq = seq;
    for (size_t i = 0; i < n; i++) {
        kopt__v1__container_window__init(&w[i]);
        google__protobuf__timestamp__init(&ts[2 * i]);
        google__protobuf__timestamp__init(&ts[2 * i + 1]);
        ts[2 * i].seconds = start + (int64_t)i * len_s;
        ts[2 * i + 1].seconds = ts[2 * i].seconds + len_s;
        w[i].namespace_ = (char *)"shop";
        w[i].workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
        w[i].workload_name = (char *)"web";
        w[i].pod = (char *)pod;
        w[i].container = (char *)"app";
        w[i].window_start = &ts[2 * i];
        w[i].window_end = &ts[2 * i + 1];
        w[i].cpu_usage_mean_cores = 0.25;
        w[i].cpu_usage_peak_cores = 0.5;
        w[i].memory_working_set_peak_bytes = 64ULL << 20;
        w[i].sample_count = 2;
        wp[i] = &w[i];
    }
    b.n_windows = n;
    b.windows = wp;
    len = kopt__v1__metric_batch__get_packed_size(&b);
    buf = malloc(len);
    assert_non_null(buf);
    kopt__v1__metric_batch__pack(&b, buf);
    snprintf(id, sizeof(id), "agent-1/%" PRIu64 "/%" PRIu64, epoch, seq);
    assert_int_equal(
        natsMsg_Create(&m, "kopt.metrics." CLUSTER ".node-1", NULL, (char *)buf, (int)len),
        NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    assert_int_equal(js_PublishMsg(&pa, js, m, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(buf);
}

/* Waits up to timeout_s for `sql` (one value) to answer `want`. */
static void wait_answer(const char *sql, const char *want, double timeout_s)
{
    double until = kopt_test_now() + timeout_s;
    char *out = NULL;

    while (kopt_test_now() < until) {
        free(out);
        out = NULL;
        if (kopt_test_clickhouse_query(ch, sql, &out) == 0 && out && strcmp(out, want) == 0) {
            free(out);
            return;
        }
        usleep(100000);
    }
    fail_msg("%s\nanswered \"%s\", want \"%s\"", sql, out ? out : "(error)", want);
}

/* Windows of 10 s (the demo) in hour0 and of 5 min (a replay) two days
 * back: covered_seconds holds their real lengths. Then a backfill whose
 * hour cannot be rolled up (container_hourly renamed away): rollup_state
 * keeps the watermark and lists the hour as pending, the lag metric
 * grows; once the table is back the hour is rolled, pending empties and
 * the watermark passes the backfill. */
static void covered_seconds_and_rollup_state(void **state)
{
    const char *db = "kopt_cov";
    int64_t old = hour0 - 48 * 3600, older = hour0 - 72 * 3600;
    uint64_t e = epoch_now();
    char sql[512], want[128], *out = NULL;
    int64_t t_backfill;
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    a = agg_proc_start(db, NULL);
    publish_windows(e, 1, "demo-0", hour0, 10, 6);
    publish_windows(e, 2, "replay-0", old, 300, 3);
    publish_windows(e, 3, "replay-1", old + 900, 300, 3);
    wait_rows(db, 12, 30);
    snprintf(sql, sizeof(sql),
             "SELECT toUInt32(hour), window_count, pod_count, covered_seconds FROM "
             "%s.container_hourly FINAL ORDER BY hour FORMAT TSV",
             db);
    snprintf(want, sizeof(want), "%lld\t6\t2\t1800\n%lld\t6\t1\t60\n", (long long)old,
             (long long)hour0);
    wait_answer(sql, want, 20);
    snprintf(
        sql, sizeof(sql),
        "SELECT count(), min(length(pending)) FROM %s.rollup_state FINAL WHERE cluster = '" CLUSTER
        "' AND watermark > 0 FORMAT TSV",
        db);
    wait_answer(sql, "1\t0\n", 20);

    /* A backfill that cannot be rolled up yet. */
    snprintf(sql, sizeof(sql), "RENAME TABLE %s.container_hourly TO %s.container_hourly_away", db,
             db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, NULL), 0);
    sleep(2); /* a pass with nothing new: the watermark is now */
    t_backfill = (int64_t)time(NULL);
    publish_windows(e, 4, "replay-2", older, 300, 12);
    wait_rows(db, 24, 30);
    snprintf(sql, sizeof(sql),
             "SELECT has(pending, toDateTime(%lld)), watermark < toDateTime(%lld) FROM "
             "%s.rollup_state FINAL WHERE cluster = '" CLUSTER "' FORMAT TSV",
             (long long)older, (long long)t_backfill + 1, db);
    wait_answer(sql, "1\t1\n", 20);
    sleep(3);
    assert_true(metric(a, "kopt_aggregator_rollup_lag_seconds") >= 3);
    assert_true(metric(a, "kopt_aggregator_rollup_pending_hours") >= 1);
    assert_true(metric(a, "kopt_aggregator_rollup_errors_total") >= 1);

    /* Back: rolled up, nothing pending, the watermark past the backfill. */
    snprintf(sql, sizeof(sql), "RENAME TABLE %s.container_hourly_away TO %s.container_hourly", db,
             db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, NULL), 0);
    snprintf(sql, sizeof(sql),
             "SELECT length(pending), watermark > toDateTime(%lld) FROM %s.rollup_state FINAL "
             "WHERE cluster = '" CLUSTER "' FORMAT TSV",
             (long long)t_backfill, db);
    wait_answer(sql, "0\t1\n", 20);
    snprintf(sql, sizeof(sql),
             "SELECT window_count, covered_seconds FROM %s.container_hourly FINAL WHERE hour = "
             "toDateTime(%lld) FORMAT TSV",
             db, (long long)older);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, &out), 0);
    assert_string_equal(out, "12\t3600\n");
    free(out);
    assert_true(metric(a, "kopt_aggregator_rollup_lag_seconds") < 10);
    agg_proc_stop(a);
}

static void kill9_mid_stream(void **state)
{
    const char *db = "kopt_t2";
    const uint64_t n = 400, w = 10;
    agg_proc_t *a;
    double until;

    (void)state;
    fresh_stream();
    publish_range(epoch_now(), 1, n, w);
    a = agg_proc_start(db, ARGS("--workers", "1"));
    until = kopt_test_now() + 30;
    while (rows(db) == 0 && kopt_test_now() < until)
        usleep(5000);
    assert_int_equal(kopt_test_proc_kill9(&a->proc), 0);
    fprintf(stderr, "killed with %" PRIu64 " of %" PRIu64 " rows in\n", rows(db), n * w);
    assert_int_equal(kopt_test_proc_respawn(&a->proc), 0);
    wait_rows(db, n * w, 60);
    agg_proc_stop(a);
}

/* Polls /readyz until its status is `want` (and, if `needle` is not NULL,
 * its body contains it) or timeout_s passes; returns the seconds it took. */
static double wait_ready_state(const agg_proc_t *a, int want, const char *needle, double timeout_s)
{
    double t0 = kopt_test_now();
    char *body = NULL;
    int status = 0;

    while (kopt_test_now() - t0 < timeout_s) {
        free(body);
        body = NULL;
        status = ready_body(a, &body);
        if (status == want && (!needle || (body && strstr(body, needle)))) {
            free(body);
            return kopt_test_now() - t0;
        }
        usleep(100000);
    }
    fail_msg("/readyz still %d after %.0f s (want %d%s%s): %s", status, timeout_s, want,
             needle ? " with " : "", needle ? needle : "", body ? body : "");
    return -1;
}

/* ClickHouse kill -9 for at least a minute while the aggregator is idle,
 * then batches arrive: /readyz is 503 within 3 s and stays 503 at every
 * poll until ClickHouse is back, then 200 within 15 s; the backlog drains
 * with no loss and nothing inserted twice. */
static void outage_clickhouse_a_minute(void **state)
{
    const char *db = "kopt_t3";
    const uint64_t n = 100, w = 10, first = 10;
    const double outage_s = 62;
    double t_kill, detect_s, recover_s, t_restart;
    uint64_t next = first + 1, polls = 0;
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    a = agg_proc_start(db, NULL);
    publish_range(epoch_now(), 1, first, w);
    wait_rows(db, first * w, 30);
    assert_int_equal(ready_status(a), 200);
    assert_int_equal(kopt_test_clickhouse_kill9(ch), 0);
    t_kill = kopt_test_now();
    /* Idle: nothing is being inserted, so only the probe can notice. */
    detect_s = wait_ready_state(a, 503, "refused", 3.0);
    fprintf(stderr, "/readyz 503 %.2f s after the kill\n", detect_s);
    while (kopt_test_now() - t_kill < outage_s) {
        double t = kopt_test_now() - t_kill;
        uint64_t burst = (next - first - 1) / 30;
        char *body = NULL;
        int status = ready_body(a, &body);

        if (status != 503)
            fail_msg("/readyz %d at %.1f s into the outage: %s", status, t, body ? body : "");
        free(body);
        polls++;
        /* The backlog arrives in three bursts (5, 20, 35 s) during the outage. */
        if (next <= n && t > 5.0 + 15.0 * (double)burst) {
            publish_range(epoch_now(), next, 30, w);
            next += 30;
        }
        usleep(200000);
    }
    assert_int_equal(next, n + 1);
    assert_true(metric(a, "kopt_aggregator_insert_errors_total{class=\"retryable\",code=\"0\"}") >
                0);
    assert_true(metric(a, "kopt_aggregator_clickhouse_probe_failures_total{error=\"refused\"}") >
                0);
    assert_int_equal(metric(a, "kopt_aggregator_clickhouse_up"), 0);
    assert_int_equal(rows(db), 0); /* nothing answers; the harness holds the port */
    assert_int_equal(kopt_test_clickhouse_restart(ch), 0);
    t_restart = kopt_test_now();
    fprintf(stderr, "ClickHouse away %.1f s; /readyz 503 at all %" PRIu64 " polls\n",
            t_restart - t_kill, polls);
    recover_s = wait_ready_state(a, 200, NULL, 15.0);
    fprintf(stderr, "/readyz 200 %.2f s after the restart\n", recover_s);
    wait_rows(db, n * w, 60);
    fprintf(stderr, "backlog drained %.2f s after the restart\n", kopt_test_now() - t_restart);
    /* Exactly once: the held rows were inserted once, not re-delivered. */
    assert_int_equal(ch_u64("SELECT count() FROM %s.container_windows", db), n * w);
    assert_int_equal(metric(a, "kopt_aggregator_redeliveries_total"), 0);
    assert_int_equal(metric(a, "kopt_aggregator_consumed_total"), n);
    assert_int_equal(metric(a, "kopt_aggregator_clickhouse_up"), 1);
    agg_proc_stop(a);
}

/* A dead letter on kopt.deadletter.<reason>, checked against what was sent. */
static void expect_dead_letter(natsSubscription *sub, const char *reason, const char *msg_id,
                               uint64_t stream_seq, const char *error_part)
{
    char subject[96], seq[24];
    natsMsg *dl = NULL, *orig = NULL;
    const char *v = NULL;

    snprintf(subject, sizeof(subject), "kopt.deadletter.%s", reason);
    snprintf(seq, sizeof(seq), "%" PRIu64, stream_seq);
    assert_int_equal(natsSubscription_NextMsg(&dl, sub, 30000), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(dl), subject);
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Reason", &v), NATS_OK);
    assert_string_equal(v, reason);
    assert_int_equal(natsMsgHeader_Get(dl, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, msg_id);
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Stream-Seq", &v), NATS_OK);
    assert_string_equal(v, seq);
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Error", &v), NATS_OK);
    fprintf(stderr, "dead letter %s: %s\n", subject, v);
    if (!strstr(v, error_part))
        fail_msg("Kopt-Error \"%s\" does not mention \"%s\"", v, error_part);
    /* The payload is the original message's. */
    assert_int_equal(js_GetMsg(&orig, js, STREAM, stream_seq, NULL, NULL), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(dl), natsMsg_GetDataLength(orig));
    assert_memory_equal(natsMsg_GetData(dl), natsMsg_GetData(orig),
                        (size_t)natsMsg_GetDataLength(orig));
    natsMsg_Destroy(orig);
    natsMsg_Destroy(dl);
}

static natsSubscription *watch_dead_letters(void)
{
    natsSubscription *sub = NULL;

    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, "kopt.deadletter.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    return sub;
}

static void run_migrate(const char *db)
{
    const char *argv[] = {agg_exe,
                          "migrate",
                          "--clickhouse-url",
                          ch->url,
                          "--clickhouse-database",
                          db,
                          "--log-format",
                          "text",
                          NULL};
    char *dir = kopt_test_tmpdir("kopt-itest-aggm"), log_path[600];

    assert_non_null(dir);
    snprintf(log_path, sizeof(log_path), "%s/migrate.log", dir);
    assert_int_equal(kopt_test_proc_run((char *const *)argv, log_path, 60000), 0);
    kopt_test_rmtree(dir);
    free(dir);
}

/* Rows ClickHouse refuses for good, in the middle of one fetch: the table
 * carries a check (18.16 has no CHECK constraints; a DEFAULT throwIf()
 * column is its equivalent and fails the insert with code 395), so the
 * 41-message insert fails, is halved down to the bad message, which goes to
 * kopt.deadletter.clickhouse; the 40 others are stored exactly once. */
static void permanent_rows_are_halved_out(void **state)
{
    const char *db = "kopt_t7";
    const uint64_t w = 5;
    uint64_t e = epoch_now(), bad_seq, inserts;
    natsSubscription *sub;
    char sql[512], id[96];
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    run_migrate(db);
    snprintf(sql, sizeof(sql),
             "ALTER TABLE %s.container_windows ADD COLUMN test_guard UInt8 "
             "DEFAULT throwIf(pod LIKE 'refused-%%')",
             db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, NULL), 0);
    sub = watch_dead_letters();
    /* All published before the aggregator starts: one fetch takes them all. */
    publish_range(e, 1, 20, w);
    bad_seq = publish_pods(e, 21, w, "refused");
    publish_range(e, 22, 20, w);
    a = agg_proc_start(db, NULL);
    wait_rows(db, 40 * w, 30);
    snprintf(id, sizeof(id), "agent-1/%" PRIu64 "/21", e);
    expect_dead_letter(sub, "clickhouse", id, bad_seq, "395");
    assert_int_equal(ch_u64("SELECT count() FROM %s.container_windows", db), 40 * w);
    assert_int_equal(
        ch_u64("SELECT count() FROM %s.container_windows WHERE pod LIKE 'refused-%%'", db), 0);
    assert_int_equal(metric(a, "kopt_aggregator_dead_letters_total{reason=\"clickhouse\"}"), 1);
    assert_int_equal(metric(a, "kopt_aggregator_consumed_total"), 41);
    assert_true(
        metric(a, "kopt_aggregator_insert_errors_total{class=\"permanent\",code=\"395\"}") >= 2);
    inserts = (uint64_t)metric(a, "kopt_aggregator_inserts_total");
    fprintf(stderr, "41 messages: %" PRIu64 " successful inserts, %.0f refused\n", inserts,
            metric(a, "kopt_aggregator_insert_errors_total{class=\"permanent\",code=\"395\"}"));
    assert_int_equal(ready_status(a), 200);
    natsSubscription_Destroy(sub);
    agg_proc_stop(a);
}

/* A statement ClickHouse can never run (the table is gone) blames no
 * message: nothing is dead-lettered, /readyz says why, and once the table
 * is back the held rows go in. */
static void missing_table_is_retried_not_dead_lettered(void **state)
{
    const char *db = "kopt_t10";
    const uint64_t w = 5;
    natsSubscription *sub;
    natsMsg *dl = NULL;
    char sql[256];
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    sub = watch_dead_letters();
    a = agg_proc_start(db, NULL);
    snprintf(sql, sizeof(sql), "RENAME TABLE %s.container_windows TO %s.away", db, db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, NULL), 0);
    publish_range(epoch_now(), 1, 10, w);
    wait_ready_state(a, 503, "code 60", 10);
    assert_int_equal(natsSubscription_NextMsg(&dl, sub, 1000), NATS_TIMEOUT);
    snprintf(sql, sizeof(sql), "RENAME TABLE %s.away TO %s.container_windows", db, db);
    assert_int_equal(kopt_test_clickhouse_query(ch, sql, NULL), 0);
    wait_rows(db, 10 * w, 30);
    wait_ready_state(a, 200, NULL, 10);
    assert_true(metric(a, "kopt_aggregator_insert_errors_total{class=\"permanent\",code=\"60\"}") >
                0);
    /* -1: no dead letter of any reason was ever counted. */
    assert_true(metric(a, "kopt_aggregator_dead_letters_total{reason=\"clickhouse\"}") <= 0);
    assert_int_equal(natsSubscription_NextMsg(&dl, sub, 200), NATS_TIMEOUT);
    natsSubscription_Destroy(sub);
    agg_proc_stop(a);
}

/* Fetches the next message of the durable as a replica that dies before
 * acking would; returns its delivery count. */
static uint64_t fetch_without_ack(natsSubscription *pull, uint64_t want_stream_seq)
{
    natsMsgList list = {0};
    jsMsgMetaData *meta = NULL;
    uint64_t delivered;

    assert_int_equal(natsSubscription_Fetch(&list, pull, 1, 5000, NULL), NATS_OK);
    assert_int_equal(list.Count, 1);
    assert_int_equal(natsMsg_GetMetaData(&meta, list.Msgs[0]), NATS_OK);
    assert_int_equal(meta->Sequence.Stream, want_stream_seq);
    delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
    natsMsgList_Destroy(&list);
    return delivered;
}

/* A message delivered --max-deliver times and never acked (here a replica
 * that takes it and dies, twice) is no longer delivered; JetStream's
 * advisory makes the aggregator dead-letter it as max_deliver, and the
 * batches after it flow. */
static void max_deliver_goes_to_dead_letter(void **state)
{
    const char *db = "kopt_t8";
    const uint64_t w = 5;
    const char *const opts[] = {"--max-deliver", "2", "--ack-wait", "1s", NULL};
    uint64_t e = epoch_now(), stuck_seq;
    natsSubscription *sub, *pull = NULL;
    jsSubOptions so;
    jsConsumerInfo *ci = NULL;
    char id[96];
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    a = agg_proc_start(db, opts);
    publish_range(e, 1, 5, w);
    wait_rows(db, 5 * w, 30);
    agg_proc_stop(a);

    stuck_seq = publish_pods(e, 6, w, "stuck");
    jsSubOptions_Init(&so);
    so.Stream = STREAM;
    so.Consumer = CONSUMER;
    so.ManualAck = true;
    assert_int_equal(js_PullSubscribe(&pull, js, NULL, CONSUMER, NULL, &so, NULL), NATS_OK);
    assert_int_equal(fetch_without_ack(pull, stuck_seq), 1);
    assert_int_equal(fetch_without_ack(pull, stuck_seq), 2); /* after AckWait */
    natsSubscription_Destroy(pull);                          /* keeps the durable */

    sub = watch_dead_letters();
    publish_range(e, 7, 5, w);
    a = agg_proc_start(db, opts);
    snprintf(id, sizeof(id), "agent-1/%" PRIu64 "/6", e);
    expect_dead_letter(sub, "max_deliver", id, stuck_seq, "maximum number of times");
    wait_rows(db, 10 * w, 30);
    assert_int_equal(
        ch_u64("SELECT count() FROM %s.container_windows WHERE pod LIKE 'stuck-%%'", db), 0);
    assert_int_equal(metric(a, "kopt_aggregator_dead_letters_total{reason=\"max_deliver\"}"), 1);
    assert_int_equal(js_GetConsumerInfo(&ci, js, STREAM, CONSUMER, NULL, NULL), NATS_OK);
    fprintf(stderr,
            "consumer after: pending %" PRIu64 ", ack pending %" PRId64 ", redelivered %" PRId64
            "\n",
            ci->NumPending, ci->NumAckPending, ci->NumRedelivered);
    assert_int_equal(ci->NumPending, 0);
    assert_int_equal(ci->NumAckPending, 0);
    jsConsumerInfo_Destroy(ci);
    natsSubscription_Destroy(sub);
    agg_proc_stop(a);
}

/* --- NATS as a side door ------------------------------------------------------- */

/* A one-window batch as a publisher with NATS access (not ingest) could
 * send it: cluster CLUSTER, node-1, pod `pod`, 0.25 of 0.5 cores, window
 * and `created` `age_s` seconds ago. The caller spoils what it wants. */
typedef struct {
    Kopt__V1__MetricBatch b;
    Kopt__V1__ContainerWindow w, *wp[1];
    Google__Protobuf__Timestamp created, start, end;
} side_batch_t;

static void side_batch(side_batch_t *sb, uint64_t epoch, uint64_t seq, const char *pod,
                       int64_t age_s)
{
    int64_t now = (int64_t)time(NULL);

    kopt__v1__metric_batch__init(&sb->b);
    kopt__v1__container_window__init(&sb->w);
    google__protobuf__timestamp__init(&sb->created);
    google__protobuf__timestamp__init(&sb->start);
    google__protobuf__timestamp__init(&sb->end);
    sb->created.seconds = now - age_s;
    sb->start.seconds = now - age_s - 120;
    sb->end.seconds = now - age_s - 60;
    sb->b.cluster = (char *)CLUSTER;
    sb->b.node = (char *)"node-1";
    sb->b.agent_id = (char *)"agent-1";
    sb->b.epoch = epoch;
    sb->b.seq = seq;
    sb->b.created = &sb->created;
    sb->w.namespace_ = (char *)"shop";
    sb->w.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    sb->w.workload_name = (char *)"web";
    sb->w.pod = (char *)pod;
    sb->w.container = (char *)"app";
    sb->w.window_start = &sb->start;
    sb->w.window_end = &sb->end;
    sb->w.cpu_usage_mean_cores = 0.25;
    sb->w.cpu_usage_peak_cores = 0.5;
    sb->w.memory_working_set_peak_bytes = 64ULL << 20;
    sb->w.sample_count = 6;
    sb->wp[0] = &sb->w;
    sb->b.windows = sb->wp;
    sb->b.n_windows = 1;
}

/* Publishes straight to JetStream on `subject`; returns the stream sequence. */
static uint64_t side_publish(const side_batch_t *sb, const char *subject, char *id, size_t id_len)
{
    size_t len = kopt__v1__metric_batch__get_packed_size(&sb->b);
    uint8_t *buf = malloc(len + 1);
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    uint64_t seq;

    assert_non_null(buf);
    kopt__v1__metric_batch__pack(&sb->b, buf);
    snprintf(id, id_len, "agent-1/%" PRIu64 "/%" PRIu64, sb->b.epoch, sb->b.seq);
    assert_int_equal(natsMsg_Create(&m, subject, NULL, (char *)buf, (int)len), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    assert_int_equal(js_PublishMsg(&pa, js, m, NULL, NULL), NATS_OK);
    seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(buf);
    return seq;
}

/* The last message on `subject` of the stream KOPT_DEADLETTER has `msg_id`. */
static void stored_dead_letter(const char *subject, const char *msg_id)
{
    natsMsg *m = NULL;
    const char *v = NULL;

    assert_int_equal(js_GetLastMsg(&m, js, "KOPT_DEADLETTER", subject, NULL, NULL), NATS_OK);
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, msg_id);
    natsMsg_Destroy(m);
}

/* Issue 15 item 6: batches published straight to kopt.metrics.* that
 * ingest would have refused (a <script> pod name, NaN and negative CPU)
 * and one whose cluster is not its subject's go to the dead letters with
 * the reason and the exact problem, and not into ClickHouse; the good
 * batches around them are stored, and so is a valid batch created 20 days
 * ago (JetStream may deliver late after an outage: age is not refused). */
static void side_door_batches_are_checked(void **state)
{
    const char *db = "kopt_side";
    const char *subject = "kopt.metrics." CLUSTER ".node-1";
    uint64_t e = epoch_now(), seq[7] = {0};
    natsSubscription *sub;
    side_batch_t sb;
    char id[7][96];
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    sub = watch_dead_letters();
    /* One worker: the dead letters come out in stream order. */
    a = agg_proc_start(db, ARGS("--workers", "1"));
    side_batch(&sb, e, 1, "good-1", 0);
    side_publish(&sb, subject, id[0], sizeof(id[0]));
    side_batch(&sb, e, 2, "<script>alert(1)</script>", 0);
    seq[1] = side_publish(&sb, subject, id[1], sizeof(id[1]));
    side_batch(&sb, e, 3, "nan-cpu", 0);
    sb.w.cpu_usage_mean_cores = NAN;
    seq[2] = side_publish(&sb, subject, id[2], sizeof(id[2]));
    side_batch(&sb, e, 4, "negative-cpu", 0);
    sb.w.cpu_usage_mean_cores = -1;
    seq[3] = side_publish(&sb, subject, id[3], sizeof(id[3]));
    side_batch(&sb, e, 5, "other-cluster", 0);
    sb.b.cluster = (char *)"other";
    seq[4] = side_publish(&sb, subject, id[4], sizeof(id[4]));
    side_batch(&sb, e, 6, "good-old", 20 * 86400);
    seq[5] = side_publish(&sb, subject, id[5], sizeof(id[5]));
    side_batch(&sb, e, 7, "good-2", 0);
    seq[6] = side_publish(&sb, subject, id[6], sizeof(id[6]));

    expect_dead_letter(sub, "invalid", id[1], seq[1],
                       "bad_name: windows[0].pod: \"<script>alert(1)</script>\" is not a valid "
                       "name");
    expect_dead_letter(sub, "invalid", id[2], seq[2],
                       "bad_number: windows[0].cpu_usage_mean_cores: nan is not a finite number");
    expect_dead_letter(sub, "invalid", id[3], seq[3],
                       "bad_number: windows[0].cpu_usage_mean_cores: -1 is not a finite number");
    expect_dead_letter(sub, "subject_mismatch", id[4], seq[4],
                       "batch of cluster \"other\" came on kopt.metrics." CLUSTER
                       ".node-1, not kopt.metrics.other.node-1");
    /* Kept in the dead-letter stream too, not only sent to subscribers. */
    stored_dead_letter("kopt.deadletter.invalid", id[3]);
    stored_dead_letter("kopt.deadletter.subject_mismatch", id[4]);
    wait_rows(db, 3, 30);
    assert_int_equal(ch_u64("SELECT count() FROM %s.container_windows FINAL WHERE pod IN "
                            "('good-1', 'good-2', 'good-old') AND cluster = '" CLUSTER "'",
                            db),
                     3);
    assert_int_equal(ch_u64("SELECT count() FROM %s.container_windows WHERE pod NOT LIKE 'good-%%' "
                            "OR cluster != '" CLUSTER "' OR NOT isFinite(cpu_usage_mean_cores) OR "
                            "cpu_usage_mean_cores < 0",
                            db),
                     0);
    assert_int_equal(metric(a, "kopt_aggregator_dead_letters_total{reason=\"invalid\"}"), 3);
    assert_int_equal(metric(a, "kopt_aggregator_dead_letters_total{reason=\"subject_mismatch\"}"),
                     1);
    assert_int_equal(metric(a, "kopt_aggregator_consumed_total"), 7);
    /* Nothing else was dead-lettered. */
    {
        natsMsg *dl = NULL;

        assert_int_equal(natsSubscription_NextMsg(&dl, sub, 500), NATS_TIMEOUT);
    }
    natsSubscription_Destroy(sub);
    agg_proc_stop(a);
}

/* ClickHouse over https, verified against the dev CA: the real aggregator
 * stores the batches. With another CA it never gets in: /readyz 503 with
 * the TLS reason within seconds, a probe-failure counter, a clear log line,
 * and SIGTERM still ends it at once. */
static void clickhouse_over_tls(void **state)
{
    const char *db = "kopt_t9";
    double t0;
    agg_proc_t *a;

    (void)state;
    if (!ch->https_port)
        skip();
    fresh_stream();
    a = agg_proc_start(db, ARGS("--clickhouse-url", ch->https_url, "--clickhouse-ca", ca_pem));
    publish_range(epoch_now(), 1, 20, 10);
    wait_rows(db, 200, 30);
    assert_int_equal(kopt_test_log_contains(a->log_path, "https://127.0.0.1"), 1);
    agg_proc_stop(a);

    a = agg_proc_spawn(db,
                       ARGS("--clickhouse-url", ch->https_url, "--clickhouse-ca", rogue_ca_pem));
    fprintf(stderr, "wrong CA: /readyz 503 with the reason in %.2f s\n",
            wait_ready_state(a, 503, "certificate", 10));
    {
        char *body = NULL;

        ready_body(a, &body);
        fprintf(stderr, "wrong CA: /readyz %s\n", body ? body : "");
        free(body);
    }
    assert_true(metric(a, "kopt_aggregator_clickhouse_probe_failures_total{error=\"tls\"}") > 0);
    assert_int_equal(kopt_test_log_contains(a->log_path, "SSL certificate problem"), 1);
    t0 = kopt_test_now();
    assert_int_equal(kopt_test_proc_stop(&a->proc, 10000), 0);
    fprintf(stderr, "wrong CA: stopped in %.2f s\n", kopt_test_now() - t0);
    assert_true(WIFEXITED(a->proc.status) && WEXITSTATUS(a->proc.status) == 0);
    assert_clean_log(a);
    kopt_test_cleanup_forget(a);
    for (int i = 0; i < 4; i++)
        if (live[i] == a)
            live[i] = NULL;
    agg_release(a);
}

/* Garbage on the stream -> kopt.deadletter.decode with its reason; the rest flows. */
static void poison_message(void **state)
{
    const char *db = "kopt_t4";
    const char garbage[] = "\xff\xff\xff not a protobuf \x01\x02";
    natsSubscription *sub = NULL;
    natsMsg *m = NULL, *dl = NULL;
    jsPubAck *pa = NULL;
    const char *v = NULL;
    agg_proc_t *a;

    (void)state;
    fresh_stream();
    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, "kopt.deadletter.>"), NATS_OK);
    natsConnection_Flush(nc);
    a = agg_proc_start(db, NULL);
    publish_range(epoch_now(), 1, 5, 10);
    assert_int_equal(natsMsg_Create(&m, "kopt.metrics." CLUSTER ".node-1", NULL, garbage,
                                    (int)sizeof(garbage) - 1),
                     NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", "agent-1/poison/1");
    assert_int_equal(js_PublishMsg(&pa, js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    publish_range(epoch_now(), 6, 5, 10);
    wait_rows(db, 100, 30);
    assert_int_equal(natsSubscription_NextMsg(&dl, sub, 10000), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(dl), "kopt.deadletter.decode");
    assert_int_equal(natsMsg_GetDataLength(dl), (int)sizeof(garbage) - 1);
    assert_memory_equal(natsMsg_GetData(dl), garbage, sizeof(garbage) - 1);
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Reason", &v), NATS_OK);
    assert_string_equal(v, "decode");
    assert_int_equal(natsMsgHeader_Get(dl, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, "agent-1/poison/1");
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Subject", &v), NATS_OK);
    assert_string_equal(v, "kopt.metrics." CLUSTER ".node-1");
    assert_int_equal(natsMsgHeader_Get(dl, "Kopt-Error", &v), NATS_OK);
    assert_true(strlen(v) > 0);
    natsMsg_Destroy(dl);
    natsSubscription_Destroy(sub);
    assert_int_equal(metric(a, "kopt_aggregator_dead_letters_total{reason=\"decode\"}"), 1);
    agg_proc_stop(a);
}

/* Two replicas on one durable: both work, totals exact. */
static void two_aggregators(void **state)
{
    const char *db = "kopt_t5";
    const uint64_t n = 400, w = 10;
    agg_proc_t *a, *b;
    double ca, cb;

    (void)state;
    fresh_stream();
    a = agg_proc_start(db, ARGS("--workers", "1"));
    b = agg_proc_start(db, ARGS("--workers", "1"));
    publish_range(epoch_now(), 1, n, w);
    wait_rows(db, n * w, 60);
    ca = metric(a, "kopt_aggregator_consumed_total");
    cb = metric(b, "kopt_aggregator_consumed_total");
    fprintf(stderr, "replica a consumed %.0f, b %.0f\n", ca, cb);
    assert_true(ca > 0 && cb > 0);
    assert_true(ca + cb >= (double)n);
    agg_proc_stop(a);
    agg_proc_stop(b);
}

static void migrate_subcommand(void **state)
{
    const char *argv[] = {agg_exe,
                          "migrate",
                          "--clickhouse-url",
                          ch->url,
                          "--clickhouse-database",
                          "kopt_t6",
                          "--log-format",
                          "text",
                          NULL};
    char *dir = kopt_test_tmpdir("kopt-itest-aggm"), log_path[600];
    kopt_test_proc_t p;

    (void)state;
    assert_non_null(dir);
    snprintf(log_path, sizeof(log_path), "%s/migrate.log", dir);
    for (int run = 0; run < 2; run++) {
        assert_int_equal(kopt_test_proc_spawn(&p, (char *const *)argv, NULL, log_path), 0);
        while (kopt_test_proc_alive(&p))
            usleep(20000);
        assert_true(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0);
        kopt_test_proc_release(&p);
    }
    assert_int_equal(ch_u64("SELECT count() FROM system.tables WHERE database = 'kopt_t6' AND "
                            "name = 'container_hourly'"),
                     1);
    kopt_test_rmtree(dir);
    free(dir);
}

static int group_setup(void **state)
{
    int64_t now = (int64_t)time(NULL);
    kopt_test_clickhouse_opts_t opts = {0};
    char cert[512], key[512];
    int r;

    (void)state;
    hour0 = now - now % 3600 - 3600;
    certs_dir = kopt_test_tmpdir("kopt-itest-aggcerts");
    if (!certs_dir || kopt_test_make_certs(src_dir, certs_dir) < 0)
        return -1;
    snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", certs_dir);
    snprintf(rogue_ca_pem, sizeof(rogue_ca_pem), "%s/rogue-ca.pem", certs_dir);
    opts.tls_cert = cert;
    opts.tls_key = key;
    r = kopt_test_nats_start(&nats, NULL);
    if (r == 0)
        r = kopt_test_clickhouse_start_opts(&ch, &opts);
    if (r < 0)
        return -1;
    if (natsConnection_ConnectTo(&nc, nats->url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int r;

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    r = kopt_test_teardown_all(state);
    if (certs_dir)
        kopt_test_rmtree(certs_dir);
    free(certs_dir);
    certs_dir = NULL;
    return r;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(migrate_subcommand, test_teardown),
        cmocka_unit_test_teardown(exact_redelivery_and_rollup, test_teardown),
        cmocka_unit_test_teardown(covered_seconds_and_rollup_state, test_teardown),
        cmocka_unit_test_teardown(poison_message, test_teardown),
        cmocka_unit_test_teardown(side_door_batches_are_checked, test_teardown),
        cmocka_unit_test_teardown(two_aggregators, test_teardown),
        cmocka_unit_test_teardown(kill9_mid_stream, test_teardown),
        cmocka_unit_test_teardown(permanent_rows_are_halved_out, test_teardown),
        cmocka_unit_test_teardown(missing_table_is_retried_not_dead_lettered, test_teardown),
        cmocka_unit_test_teardown(max_deliver_goes_to_dead_letter, test_teardown),
        cmocka_unit_test_teardown(clickhouse_over_tls, test_teardown),
        cmocka_unit_test_teardown(outage_clickhouse_a_minute, test_teardown),
    };

    if (argc < 3) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_AGGREGATOR\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    agg_exe = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    if (getenv("KOPT_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("KOPT_TEST_SKIP"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
