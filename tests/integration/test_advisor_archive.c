/* kopt-advisor --include-archive (advisor/archive_input.c) against a real
 * clickhouse-server and the harness's S3-protocol server: windows of three
 * days more than 20 days old are rolled up and archived with
 * `kopt-aggregator archive`, and `kopt-advisor analyze` records its
 * recommendations. Then those days' container_hourly partition and
 * container_windows partitions are dropped (hourly and windows retention):
 * without --include-archive the analysis has less data and differs; with it
 * the recommendations equal the first ones exactly. The faults — a corrupt,
 * truncated or missing object, limits exceeded, a store that is down — each
 * fail the read with an error naming the partition and the cause, counted
 * in kopt_advisor_archive_loads_total{result}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "advisor.h"
#include "harness.h"
#include "storage_env.h"
#include "kopt/clickhouse.h"
#include "kopt/metrics.h"
#include "kopt/objstore.h"
#include "rollup.h"
#include "schema.h"

#define DB "adv_arch"
#define PREFIX "ia"
#define LOOKBACK "1800h" /* 75 days: the archived days and the hot ones */

static kopt_test_clickhouse_t *ch;
static kopt_test_s3_t *s3;
static const char *src_root = ".";
static const char *aggregator_bin, *advisor_bin;
static char *tmp;
static char store_url[256]; /* --object-store-url, prefix PREFIX */

static char *hot_recs;                      /* the recommendations with every day hot */
static int64_t now_s, old_day[3], hot_from; /* the archived days; the hot hours' start */
static char old_month[8], old_pid[3][12];

static kopt_ch_options_t ch_opts(void)
{
    return (kopt_ch_options_t){.url = ch->url, .database = DB, .timeout_ms = 60000};
}

/* Windows every 5 minutes of three workloads (two pods each) over
 * [from, to), with usage that varies by the hour, so the engine has
 * something to say. */
static void insert_windows(int64_t from, int64_t to)
{
    char sql[2048];

    snprintf(sql, sizeof(sql),
             "INSERT INTO " DB ".container_windows (cluster, namespace, workload_kind, "
             "workload_name, pod, container, node, window_start, window_end, "
             "cpu_usage_mean_cores, cpu_usage_peak_cores, memory_working_set_peak_bytes, "
             "cpu_request_cores, cpu_limit_cores, memory_request_bytes, memory_limit_bytes, "
             "sample_count) SELECT 'c1', 'ns', 'Deployment', concat('w', toString(number %% 3)), "
             "concat('p', toString(number %% 6)), 'app', 'n1', "
             "toDateTime(%lld + intDiv(number, 6) * 300), "
             "toDateTime(%lld + intDiv(number, 6) * 300 + 60), "
             "0.05 + (number %% 3) * 0.2 + (intDiv(number, 72) %% 24) / 100, "
             "0.1 + (number %% 3) * 0.3 + (intDiv(number, 72) %% 24) / 50, "
             "(100 + (number %% 3) * 200 + intDiv(number, 72) %% 24) * 1048576, "
             "1, 2, 1073741824, 2147483648, 6 FROM system.numbers LIMIT %lld",
             (long long)from, (long long)from, (long long)((to - from) / 300 * 6));
    free(itest_ch_query(ch, sql));
}

static void roll_up(int64_t from, int64_t to)
{
    kopt_ch_options_t o = ch_opts();
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    for (int64_t day = from; day < to; day += 86400) {
        int64_t hours[24];
        size_t n = 0;

        for (int64_t h = day; h < day + 86400 && h < to; h += 3600)
            hours[n++] = h;
        assert_int_equal(agg_rollup_hours(c, NULL, hours, n, &err), 0);
    }
    kopt_ch_client_free(c);
}

/* The archived days: the last three of the month before the last, so the
 * month's container_hourly partition holds nothing else, and at least 27
 * days old. */
static void pick_days(void)
{
    time_t t;
    struct tm tm;

    now_s = (int64_t)time(NULL);
    t = (time_t)now_s;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon -= 1; /* the first of last month; timegm normalises */
    int64_t first = (int64_t)timegm(&tm);
    for (int i = 0; i < 3; i++) {
        old_day[i] = first - (3 - i) * 86400;
        t = (time_t)old_day[i];
        gmtime_r(&t, &tm);
        strftime(old_pid[i], sizeof(old_pid[i]), "%Y%m%d", &tm);
    }
    strftime(old_month, sizeof(old_month), "%Y%m", &tm);
    hot_from = now_s - now_s % 3600 - 36 * 3600;
}

static int setup(void **state)
{
    (void)state;
    if (itest_storage_start("kopt-advisor-archive-test", src_root, &ch, &s3, &tmp) < 0)
        return -1;
    kopt_test_s3_store_url(s3, PREFIX, store_url, sizeof(store_url));
    return 0;
}

/* Runs the advisor (`cmd`: analyze --once or backtest; no NATS) with extra
 * arguments; its output in *out. The exit code. */
static int advisor(const char *cmd, const char *const *extra, char **out)
{
    char log[600];
    const char *argv[40] = {advisor_bin,
                            cmd,
                            "--nats-url",
                            "",
                            "--clickhouse-url",
                            ch->url,
                            "--clickhouse-database",
                            DB,
                            "--lookback",
                            LOOKBACK,
                            "--rollup-wait",
                            "0s",
                            "--log-format",
                            "text",
                            "--object-store-url",
                            store_url,
                            "--object-store-credentials-file",
                            s3->credentials_file};
    size_t n = 18;

    if (strcmp(cmd, "analyze") == 0)
        argv[n++] = "--once";

    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(log, sizeof(log), "%s/analyze.log", tmp);
    free(itest_ch_query(ch, "TRUNCATE TABLE " DB ".recommendations"));
    int rc = kopt_test_run_capture((char *const *)argv, NULL, log, 180000, out);
    assert_true(rc >= 0);
    assert_non_null(*out);
    return rc;
}

static int analyze(const char *const *extra, char **out)
{
    return advisor("analyze", extra, out);
}

/* The recommendations, all but when and by which analysis they were made. */
static char *recommendations(void)
{
    return itest_ch_query(
        ch, "SELECT cluster, namespace, workload_kind, workload_name, container, "
            "cpu_request_cores_current, cpu_request_cores_recommended, "
            "cpu_limit_cores_recommended, memory_request_bytes_recommended, "
            "memory_limit_bytes_recommended, confidence, reasons, explanation, idle, "
            "replicas, savings_cpu_cores, savings_memory_bytes, savings_monthly_cost, "
            "data_points FROM " DB ".recommendations FINAL ORDER BY workload_name, "
            "container FORMAT TSV");
}

static double loads(kopt_metrics_t *m, const char *result)
{
    char *text = NULL, sample[128];
    size_t len = 0;
    double v = -1;

    assert_int_equal(kopt_metrics_expose(m, &text, &len), 0);
    snprintf(sample, sizeof(sample), "kopt_advisor_archive_loads_total{result=\"%s\"} ", result);
    const char *p = strstr(text, sample);
    if (p)
        v = atof(p + strlen(sample));
    free(text);
    return v;
}

static void archive_opts(adv_archive_t *a, kopt_metrics_t *m)
{
    kopt_metric_family_t *f;

    memset(a, 0, sizeof(*a));
    a->store = (kopt_objstore_options_t){.endpoint = s3->url,
                                         .bucket = s3->bucket,
                                         .credentials_file = s3->credentials_file,
                                         .path_style = true,
                                         .max_attempts = 2,
                                         .backoff_base_ms = 20,
                                         .timeout_ms = 3000};
    a->prefix = PREFIX;
    a->max_days = 62;
    a->max_bytes = (uint64_t)1 << 32;
    assert_int_equal(
        kopt_metrics_counter(m, "kopt_advisor_archive_loads_total", "loads", "result", &f), 0);
    for (int i = 0; i < ADV_ARCHIVE_RESULTS; i++)
        a->loads[i] = kopt_metric_counter_with(f, adv_archive_result_name(i));
}

/* The read of the whole lookback through the library: its status, and the
 * error's message in msg. */
static int load(const adv_archive_t *a, size_t *hours, char *msg, size_t msg_len)
{
    kopt_ch_options_t o = ch_opts();
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    adv_scope_t scope = {.from = now_s - 1800 * 3600, .to = now_s};
    adv_input_t in = {0};

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    int r = adv_ch_load_input(c, &o, a, &scope, &in, &err);
    snprintf(msg, msg_len, "%s", err.message);
    if (hours)
        *hours = in.n_hours;
    adv_input_free(&in);
    kopt_ch_client_free(c);
    return r;
}

static char *record(const char *pid)
{
    char sql[512], *out;

    snprintf(sql, sizeof(sql),
             "SELECT object_key FROM " DB ".archive WHERE partition_id = '%s' ORDER BY "
             "archived_at DESC LIMIT 1 FORMAT TSVRaw",
             pid);
    out = itest_ch_query(ch, sql);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* The read fails saying `says` (and naming partition pid, when given). */
static void expect_failure(const adv_archive_t *a, kopt_metrics_t *m, const char *result,
                           double count, const char *pid, const char *says)
{
    char msg[512], what[64];
    int r = load(a, NULL, msg, sizeof(msg));

    fprintf(stderr, "read failed as expected (%d): %s\n", r, msg);
    assert_true(r < 0);
    assert_non_null(strstr(msg, says));
    snprintf(what, sizeof(what), "archived partition %s: ", pid ? pid : "");
    if (pid)
        assert_non_null(strstr(msg, what));
    assert_true(loads(m, result) == count);
}

static void archived_days_give_the_same_recommendations(void **state)
{
    (void)state;
    kopt_ch_options_t o;
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;
    char *out = NULL, *hot = NULL, *without = NULL, *with = NULL, sql[512], log[600];

    pick_days();
    free(itest_ch_query(ch, "DROP DATABASE IF EXISTS " DB));
    o = ch_opts();
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    kopt_ch_client_free(c);
    insert_windows(old_day[0], old_day[2] + 86400);
    insert_windows(hot_from, now_s - now_s % 3600);
    roll_up(old_day[0], old_day[2] + 86400);
    roll_up(hot_from, now_s - now_s % 3600);

    /* kopt-aggregator archive: the three old days, not the hot ones. */
    const char *archive_argv[] = {aggregator_bin,
                                  "archive",
                                  "--clickhouse-url",
                                  ch->url,
                                  "--clickhouse-database=" DB,
                                  "--object-store-url",
                                  store_url,
                                  "--object-store-credentials-file",
                                  s3->credentials_file,
                                  "--archive-after=20",
                                  NULL};
    snprintf(log, sizeof(log), "%s/aggregator-archive.log", tmp);
    int rc = kopt_test_proc_run((char *const *)archive_argv, log, 120000);
    if (rc != 0)
        kopt_test_log_tail(log, 20);
    assert_int_equal(rc, 0);
    assert_int_equal(itest_ch_long(ch, "SELECT count() FROM " DB ".archive FORMAT TSV"), 3);

    /* The recommendations with everything hot. */
    rc = analyze(NULL, &out);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    hot = recommendations();
    fprintf(stderr, "hot:\n%s", hot);
    assert_true(strlen(hot) > 0);

    /* Retention: the old month of container_hourly and the old days of
     * container_windows go; the hot days stay. */
    snprintf(sql, sizeof(sql), "ALTER TABLE " DB ".container_hourly DROP PARTITION %s", old_month);
    free(itest_ch_query(ch, sql));
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof(sql), "ALTER TABLE " DB ".container_windows DROP PARTITION %s",
                 old_pid[i]);
        free(itest_ch_query(ch, sql));
    }
    assert_true(itest_ch_long(ch, "SELECT count() FROM " DB ".container_hourly FORMAT TSV") > 0);
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM " DB ".container_hourly WHERE hour < toDateTime(%lld) FORMAT "
             "TSV",
             (long long)hot_from);
    assert_int_equal(itest_ch_long(ch, sql), 0);

    /* Without the archive: less data, other recommendations. */
    rc = analyze(NULL, &out);
    assert_int_equal(rc, 0);
    free(out);
    without = recommendations();
    fprintf(stderr, "without the archive:\n%s", without);
    assert_string_not_equal(without, hot);

    /* With it: the same as with everything hot. */
    const char *with_archive[] = {"--include-archive", NULL};
    rc = analyze(with_archive, &out);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "archived days loaded"));
    assert_non_null(strstr(out, "partitions=3"));
    free(out);
    with = recommendations();
    assert_string_equal(with, hot);
    /* Nothing was written back into container_hourly. */
    assert_int_equal(itest_ch_long(ch, sql), 0);

    /* backtest reads the same way. */
    rc = advisor("backtest", with_archive, &out);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "archived days loaded"));
    free(out);

    /* A lookback within the hot days loads nothing. */
    const char *short_lookback[] = {"--include-archive", "--lookback", "24h", NULL};
    rc = analyze(short_lookback, &out);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "archived days loaded"));
    free(out);

    hot_recs = hot;
    free(without);
    free(with);
}

static kopt_test_proc_t server;
static char server_log[600];

/* On a failed assertion: the server's last lines, and it is killed. */
static void server_cleanup(void *arg)
{
    kopt_test_log_tail(server_log, 30);
    kopt_test_proc_release(arg);
}

/* The server (`kopt-advisor` with --include-archive) analyses at start,
 * loads the archived days for it, and counts them on /metrics. */
static void the_server_reads_the_archive_too(void **state)
{
    (void)state;
    if (!hot_recs)
        skip();
    char grpc[64], http[64], admin[64], admin_url[96];
    int port = kopt_test_free_port();

    snprintf(grpc, sizeof(grpc), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(http, sizeof(http), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", port);
    snprintf(admin_url, sizeof(admin_url), "http://%s", admin);
    snprintf(server_log, sizeof(server_log), "%s/server.log", tmp);
    char *argv[] = {(char *)advisor_bin,
                    "--insecure",
                    "--listen",
                    grpc,
                    "--http-listen",
                    http,
                    "--admin-listen",
                    admin,
                    "--nats-url",
                    "",
                    "--clickhouse-url",
                    ch->url,
                    "--clickhouse-database",
                    DB,
                    "--lookback",
                    LOOKBACK,
                    "--rollup-wait",
                    "0s",
                    "--include-archive",
                    "--object-store-url",
                    store_url,
                    "--object-store-credentials-file",
                    s3->credentials_file,
                    NULL};
    free(itest_ch_query(ch, "TRUNCATE TABLE " DB ".recommendations"));
    memset(&server, 0, sizeof(server));
    assert_int_equal(kopt_test_proc_spawn(&server, argv, NULL, server_log), 0);
    assert_int_equal(kopt_test_cleanup_push(server_cleanup, &server), 0);
    double ok = -1, t0 = kopt_test_now();
    while (kopt_test_now() - t0 < 60 && ok < 3) {
        ok = kopt_test_metric(admin_url, "kopt_advisor_archive_loads_total{result=\"ok\"}");
        usleep(200000);
    }
    assert_true(ok == 3);
    assert_true(
        kopt_test_metric(admin_url, "kopt_advisor_archive_loads_total{result=\"corrupt\"}") == 0);
    /* The run is written after the loads: wait for its rows. */
    char *recs = NULL;
    for (int i = 0; i < 300; i++) {
        free(recs);
        recs = recommendations();
        if (strcmp(recs, hot_recs) == 0)
            break;
        usleep(100000);
    }
    assert_string_equal(recs, hot_recs);
    free(recs);
    assert_int_equal(kopt_test_proc_stop(&server, 20000), 0);
    assert_true(WIFEXITED(server.status) && WEXITSTATUS(server.status) == 0);
    kopt_test_cleanup_forget(&server);
    kopt_test_proc_release(&server);
}

/* A corrupt, truncated or missing object, the limits, a store that is down:
 * the read fails naming the partition and the cause, and counts it. Also
 * through the binary: exit 1 and the same sentence. */
static void faults_fail_the_read(void **state)
{
    (void)state;
    kopt_metrics_t *m = NULL;
    kopt_objstore_t *st = itest_store(s3, 2, 0);
    kopt_objstore_error_t oerr;
    adv_archive_t a;
    char msg[512], *data = NULL, *out = NULL;
    size_t len = 0, hours = 0;
    char *key = record(old_pid[1]);

    assert_int_equal(kopt_metrics_new(&m), 0);
    archive_opts(&a, m);
    assert_int_equal(load(&a, &hours, msg, sizeof(msg)), 0);
    assert_true(loads(m, "ok") == 3);
    /* 36 hot hours and 72 archived ones, for each of 3 containers. */
    assert_int_equal(hours, 3 * (36 + 72));

    assert_int_equal(kopt_objstore_get(st, key, &data, &len, &oerr), 0);
    /* One byte flipped. */
    data[len / 2] ^= 0x5a;
    itest_replace_object(s3, key, data, len);
    expect_failure(&a, m, "corrupt", 1, old_pid[1], "corrupt or truncated");
    /* Through the binary: exit 1, the partition and the cause on stderr. */
    const char *with_archive[] = {"--include-archive", NULL};
    assert_int_equal(analyze(with_archive, &out), 1);
    assert_non_null(strstr(out, old_pid[1]));
    assert_non_null(strstr(out, "corrupt or truncated"));
    assert_null(strstr(out, s3->secret_key));
    free(out);
    /* Truncated. */
    data[len / 2] ^= 0x5a;
    itest_replace_object(s3, key, data, len / 2);
    expect_failure(&a, m, "corrupt", 2, old_pid[1], "corrupt or truncated");
    /* Missing. */
    itest_replace_object(s3, key, NULL, 0);
    expect_failure(&a, m, "missing", 1, old_pid[1], "NoSuchKey");
    /* Whole again. */
    itest_replace_object(s3, key, data, len);
    assert_int_equal(load(&a, NULL, msg, sizeof(msg)), 0);

    /* Limits. */
    a.max_days = 2;
    expect_failure(&a, m, "limit", 1, NULL, "--archive-max-days");
    a.max_days = 62;
    a.max_bytes = 10;
    expect_failure(&a, m, "limit", 2, NULL, "--archive-max-bytes");
    a.max_bytes = (uint64_t)1 << 32;

    /* The store down. */
    assert_int_equal(kopt_test_s3_kill9(s3), 0);
    expect_failure(&a, m, "store_error", 1, old_pid[0], "object store");
    assert_int_equal(analyze(with_archive, &out), 1);
    assert_non_null(strstr(out, "archived partition"));
    free(out);
    assert_int_equal(kopt_test_s3_restart(s3), 0);
    assert_int_equal(load(&a, NULL, msg, sizeof(msg)), 0);

    free(key);
    free(data);
    kopt_objstore_free(st);
    kopt_metrics_free(m);
    free(itest_ch_query(ch, "DROP DATABASE IF EXISTS " DB));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(archived_days_give_the_same_recommendations),
        cmocka_unit_test(the_server_reads_the_archive_too),
        cmocka_unit_test(faults_fail_the_read),
    };
    int failed;

    if (argc < 4) {
        fprintf(stderr, "usage: test_advisor_archive SRC_ROOT KOPT_AGGREGATOR KOPT_ADVISOR\n");
        return 2;
    }
    src_root = argv[1];
    aggregator_bin = argv[2];
    advisor_bin = argv[3];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, setup, kopt_test_teardown_all);
    free(hot_recs);
    itest_storage_stop(&tmp);
    return failed;
}
