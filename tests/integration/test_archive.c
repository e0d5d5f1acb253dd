/* The cold archive of container_windows (aggregator/archive.c) against a
 * real clickhouse-server and the harness's S3-protocol server: archive,
 * read back, record, and retention gated on the record; and the faults — a
 * corrupt or truncated object, a manifest that disagrees, a store that is
 * down, slow or answers 403/500 mid-upload, a partition that changed after
 * it was archived. Each ends with a clear error, no record, no objects left
 * and nothing dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "archive.h"
#include "backup_internal.h"
#include "harness.h"
#include "storage_env.h"
#include "kopt/clickhouse.h"
#include "kopt/objstore.h"
#include "schema.h"

/* 2026-12-31 00:00:00 UTC: the windows of November are all older than 30 days. */
#define NOW 1798675200LL

static kopt_test_clickhouse_t *ch;
static kopt_test_s3_t *s3;
static const char *src_root = ".";
static const char *aggregator_bin;
static char *tmp;

static long ch_long(const char *fmt, const char *db)
{
    char sql[1024], *out;
    long n;

    snprintf(sql, sizeof(sql), fmt, db);
    out = itest_ch_query(ch, sql);
    n = atol(out);
    free(out);
    return n;
}

/* A fresh migrated database with `n` windows four minutes apart from
 * 2026-11-01: n = 600 fills two daily partitions (20261101, 20261102). */
static kopt_ch_client_t *fresh(const char *db, unsigned n)
{
    kopt_ch_client_t *c;
    kopt_ch_error_t err;
    char sql[1024];

    kopt_test_s3_fault(s3, "{\"clear\":true}"); /* a failed test's leftovers */
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
    free(itest_ch_query(ch, sql));
    c = itest_ch_client(ch, db, 30000);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    itest_insert_windows(ch, db, n);
    return c;
}

static char *record_key(const char *db, const char *pid, const char *column)
{
    char sql[512], *out;

    snprintf(sql, sizeof(sql),
             "SELECT %s FROM %s.archive WHERE partition_id = '%s' ORDER BY archived_at DESC "
             "LIMIT 1 FORMAT TSVRaw",
             column, db, pid);
    out = itest_ch_query(ch, sql);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static unsigned retention(kopt_ch_client_t *c, agg_archive_gate_t *g)
{
    kopt_ch_error_t err;
    unsigned dropped = 99;

    assert_int_equal(agg_schema_retention_gated(c, "container_windows", 30, NOW, agg_archive_gate,
                                                g, &dropped, &err),
                     0);
    return dropped;
}

#define WINDOWS "SELECT count() FROM %s.container_windows FORMAT TSV"
#define RECORDS "SELECT count() FROM %s.archive FORMAT TSV"
#define SCRATCH                                                                                    \
    "SELECT count() FROM system.tables WHERE database = '%s' AND substring(name, 1, 1) = '_' "     \
    "FORMAT TSV"

static int setup(void **state)
{
    (void)state;
    if (itest_storage_start("kopt-archive-test", src_root, &ch, &s3, &tmp) < 0)
        return -1;
    return 0;
}

/* Archive, a second run that finds nothing new, a partition too young to
 * archive, retention that drops only what is archived, and the data read
 * back from the object into a table. */
static void archive_then_retention(void **state)
{
    (void)state;
    kopt_ch_client_t *c = fresh("ar_ok", 600);
    kopt_objstore_t *st = itest_store(s3, 3, 10000);
    agg_archive_options_t o = {.prefix = "ok", .after_days = 30, .now = NOW};
    agg_archive_result_t res;
    agg_archive_gate_t g = {.st = st};
    char why[512] = "";

    /* A December window: too young to archive, and kept by retention. */
    free(itest_ch_query(
        ch, "INSERT INTO ar_ok.container_windows (cluster, pod, window_start, window_end) "
            "VALUES ('c1', 'p', toDateTime('2026-12-20 00:00:00'), "
            "toDateTime('2026-12-20 00:01:00'))"));
    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    assert_int_equal(res.partitions, 2);
    assert_int_equal(res.rows, 600);
    assert_true(res.bytes > 0);
    assert_int_equal(ch_long(RECORDS, "ar_ok"), 2);
    assert_int_equal(itest_objects_under(s3, "ok/archive/container_windows/"), 4);
    assert_int_equal(ch_long("SELECT sum(rows) FROM %s.archive FORMAT TSV", "ar_ok"), 600);
    assert_int_equal(ch_long("SELECT toUInt32(min(min_key)) FROM %s.archive FORMAT TSV", "ar_ok"),
                     1793491200L); /* 2026-11-01 00:00:00 */
    assert_int_equal(ch_long(SCRATCH, "ar_ok"), 0);

    /* Nothing new: the next run exports nothing. */
    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    assert_int_equal(res.partitions, 0);
    assert_int_equal(res.unchanged, 2);
    assert_int_equal(ch_long(RECORDS, "ar_ok"), 2);

    /* Retention drops the two archived days, keeps December. */
    assert_int_equal(retention(c, &g), 2);
    assert_int_equal(g.dropped, 2);
    assert_int_equal(ch_long(WINDOWS, "ar_ok"), 1);

    /* The object is what ClickHouse reads back: gunzip'd Native, inserted
     * into a table of the same schema, holds the rows and checksum recorded. */
    char *key = record_key("ar_ok", "20261101", "object_key");
    char *data = NULL;
    unsigned char *native = NULL;
    size_t len = 0, native_len = 0;
    kopt_objstore_error_t err;
    kopt_ch_error_t cerr;
    assert_int_equal(kopt_objstore_get(st, key, &data, &len, &err), 0);
    assert_int_equal(kopt_archive_gunzip(data, len, (size_t)1 << 30, &native, &native_len), 0);
    free(itest_ch_query(ch, "CREATE TABLE ar_ok.back AS ar_ok.container_windows"));
    assert_int_equal(kopt_ch_insert(c, "back", NULL, "Native", native, native_len, &cerr), 0);
    char *want = itest_ch_query(ch, "SELECT rows, checksum FROM ar_ok.archive WHERE partition_id = "
                                    "'20261101' FORMAT TSV");
    char *have =
        itest_ch_query(ch, "SELECT count(), sum(cityHash64(*)) FROM ar_ok.back FINAL FORMAT TSV");
    assert_string_equal(have, want);
    assert_true(strncmp(have, "360\t", 4) == 0);
    free(want);
    free(have);
    free(native);
    free(data);
    free(key);
    kopt_objstore_free(st);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_ok");
}

/* New rows in an archived partition: retention refuses to drop it (a
 * counter says why), the next run archives it again under a new name, and
 * then it goes. */
static void changed_partition_is_archived_again(void **state)
{
    (void)state;
    kopt_ch_client_t *c = fresh("ar_chg", 300);
    kopt_objstore_t *st = itest_store(s3, 3, 10000);
    agg_archive_options_t o = {.prefix = "chg", .after_days = 30, .now = NOW};
    agg_archive_result_t res;
    agg_archive_gate_t g = {.st = st};
    char why[512] = "";

    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    assert_int_equal(res.partitions, 1);
    char *first = record_key("ar_chg", "20261101", "object_key");
    /* A late window lands in the archived day. */
    free(itest_ch_query(
        ch, "INSERT INTO ar_chg.container_windows (cluster, pod, window_start, window_end) "
            "VALUES ('c2', 'late', toDateTime('2026-11-01 12:00:00'), "
            "toDateTime('2026-11-01 12:01:00'))"));
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.changed, 1);
    assert_int_equal(ch_long(WINDOWS, "ar_chg"), 301);

    /* archived_at has whole seconds: the new record must be the newest. */
    sleep(1);
    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    assert_int_equal(res.partitions, 1);
    assert_int_equal(res.rearchived, 1);
    char *second = record_key("ar_chg", "20261101", "object_key");
    assert_string_not_equal(first, second);
    assert_int_equal(ch_long("SELECT rows FROM %s.archive ORDER BY archived_at DESC, rows DESC "
                             "LIMIT 1 FORMAT TSV",
                             "ar_chg"),
                     301);
    assert_int_equal(retention(c, &g), 1);
    assert_int_equal(ch_long(WINDOWS, "ar_chg"), 0);
    free(first);
    free(second);
    kopt_objstore_free(st);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_chg");
}

/* A truncated or corrupt data object, and a manifest that no longer says
 * what was recorded: retention keeps the partition and counts it. */
static void damaged_archive_keeps_the_partition(void **state)
{
    (void)state;
    kopt_ch_client_t *c = fresh("ar_bad", 300);
    kopt_objstore_t *st = itest_store(s3, 3, 10000);
    agg_archive_options_t o = {.prefix = "bad", .after_days = 30, .now = NOW};
    agg_archive_result_t res;
    agg_archive_gate_t g = {.st = st};
    char why[512] = "", *data = NULL;
    size_t len = 0;
    kopt_objstore_error_t err;

    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    char *key = record_key("ar_bad", "20261101", "object_key");
    char *mkey = record_key("ar_bad", "20261101", "manifest_key");
    assert_int_equal(kopt_objstore_get(st, key, &data, &len, &err), 0);

    /* Truncated. */
    itest_replace_object(s3, key, data, len / 2);
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.unverified, 1);
    /* Same size, one byte flipped. */
    data[len / 2] ^= 0x5a;
    itest_replace_object(s3, key, data, len);
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.unverified, 2);
    /* Gone. */
    assert_int_equal(kopt_objstore_delete(st, key, &err), 0);
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.unverified, 3);
    data[len / 2] ^= 0x5a;
    assert_int_equal(kopt_objstore_put(st, key, data, len, &err), 0);

    /* The manifest now claims other rows than its data holds. */
    char *man = NULL;
    size_t man_len = 0;
    assert_int_equal(kopt_objstore_get(st, mkey, &man, &man_len, &err), 0);
    char *rows = strstr(man, "\"rows\": \"300\"");
    assert_non_null(rows);
    rows[9] = '9'; /* "300" becomes "900" */
    itest_replace_object(s3, mkey, man, man_len);
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.unverified, 4);
    assert_int_equal(ch_long(WINDOWS, "ar_bad"), 300);

    /* Repaired: it goes. */
    rows[9] = '3';
    itest_replace_object(s3, mkey, man, man_len);
    assert_int_equal(retention(c, &g), 1);
    assert_int_equal(ch_long(WINDOWS, "ar_bad"), 0);
    free(man);
    free(data);
    free(key);
    free(mkey);
    kopt_objstore_free(st);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_bad");
}

static void expect_failed_run(kopt_ch_client_t *c, kopt_objstore_t *st, const char *db,
                              const char *prefix, int want, const char *says)
{
    agg_archive_options_t o = {.prefix = prefix, .after_days = 30, .now = NOW};
    agg_archive_result_t res;
    char why[512] = "", pfx[128];

    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), want);
    fprintf(stderr, "archive failed as expected: %s\n", why);
    if (says)
        assert_non_null(strstr(why, says));
    kopt_test_s3_fault(s3, "{\"clear\":true}");
    assert_int_equal(ch_long(RECORDS, db), 0);
    assert_int_equal(ch_long(WINDOWS, db), 300);
    assert_int_equal(ch_long(SCRATCH, db), 0);
    snprintf(pfx, sizeof(pfx), "%s/", prefix);
    assert_int_equal(itest_objects_under(s3, pfx), 0);
}

/* 500 and 403 mid-upload, a read-back that fails, a slow store and one
 * that is down: an error that says so, no record, no objects, no drop. */
static void store_faults_leave_nothing(void **state)
{
    (void)state;
    kopt_ch_client_t *c = fresh("ar_flt", 300);
    kopt_objstore_t *st = itest_store(s3, 2, 10000);
    agg_archive_gate_t g = {.st = st};

    /* The manifest's upload answers 500 until the retries give up. */
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"PUT\",\"path\":\"manifest\","
                                            "\"status\":500,\"count\":100}"),
                     0);
    expect_failed_run(c, st, "ar_flt", "f500", -EREMOTEIO, "manifest");
    /* 403 on the data. */
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"PUT\",\"status\":403,\"count\":100}"),
                     0);
    expect_failed_run(c, st, "ar_flt", "f403", -EACCES, "AccessDenied");
    /* Uploads work, the read-back does not. */
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"GET\",\"status\":500,\"count\":100}"),
                     0);
    expect_failed_run(c, st, "ar_flt", "fget", -EREMOTEIO, "reading back");
    kopt_objstore_free(st);

    /* Slower than the client's timeout. */
    st = itest_store(s3, 1, 500);
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"PUT\",\"delay_ms\":2000,\"count\":5}"),
                     0);
    expect_failed_run(c, st, "ar_flt", "fslow", -ETIMEDOUT, NULL);
    kopt_objstore_free(st);

    /* Down. */
    st = itest_store(s3, 2, 2000);
    g.st = st;
    assert_int_equal(kopt_test_s3_kill9(s3), 0);
    agg_archive_options_t o = {.prefix = "fdown", .after_days = 30, .now = NOW};
    agg_archive_result_t res;
    char why[512] = "";
    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), -ECONNREFUSED);
    assert_int_equal(retention(c, &g), 0);
    assert_int_equal(g.unarchived, 1);
    assert_int_equal(kopt_test_s3_restart(s3), 0);
    assert_int_equal(ch_long(RECORDS, "ar_flt"), 0);
    assert_int_equal(ch_long(WINDOWS, "ar_flt"), 300);
    assert_int_equal(itest_objects_under(s3, "fdown/"), 0);

    /* Back up: the archive completes, and retention drops. */
    assert_int_equal(agg_archive_run(c, st, &o, &res, why, sizeof(why)), 0);
    assert_int_equal(retention(c, &g), 1);
    kopt_objstore_free(st);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_flt");
}

/* `kopt-aggregator archive` with --archive-after. */
static void archive_through_the_binary(void **state)
{
    (void)state;
    kopt_ch_client_t *c = fresh("ar_bin", 300);
    char log[512], dbarg[128], url[256];
    char *argv[] = {(char *)aggregator_bin,
                    "archive",
                    "--clickhouse-url",
                    ch->url,
                    dbarg,
                    "--object-store-url",
                    url,
                    "--object-store-credentials-file",
                    s3->credentials_file,
                    "--archive-after=7",
                    NULL};

    kopt_test_s3_store_url(s3, "bin", url, sizeof(url));
    snprintf(dbarg, sizeof(dbarg), "--clickhouse-database=%s", "ar_bin");
    snprintf(log, sizeof(log), "%s/aggregator-archive.log", tmp);
    int r = kopt_test_proc_run(argv, log, 120000);
    if (r != 0)
        kopt_test_log_tail(log, 20);
    assert_int_equal(r, 0);
    assert_int_equal(ch_long(RECORDS, "ar_bin"), 1);
    assert_int_equal(itest_objects_under(s3, "bin/archive/container_windows/20261101/"), 2);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_bin");
}

static kopt_test_proc_t daemon_proc;

/* The stream kopt-ingest would have made: the aggregator waits for it. */
static void make_stream(const char *url)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;

    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(kopt_test_js_add_stream(js, "KOPT_METRICS", "kopt.metrics.>", 1), 0);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static char daemon_log[512];

static void daemon_cleanup(void *arg)
{
    kopt_test_log_tail(daemon_log, 40);
    kopt_test_proc_release(arg);
}

static double metric_wait(const char *admin, const char *sample, double at_least)
{
    double t0 = kopt_test_now(), v = -1;

    while (kopt_test_now() - t0 < 60.0) {
        v = kopt_test_metric(admin, sample);
        if (v >= at_least)
            break;
        usleep(200000);
    }
    return v;
}

/* `kopt-aggregator run` with an object store: retention at start keeps the
 * old partitions (not archived yet), then the schedule archives them and
 * takes a backup, and /metrics says so. */
static void daemon_schedule_and_metrics(void **state)
{
    (void)state;
    kopt_test_nats_t *nats = NULL;
    kopt_ch_client_t *c = fresh("ar_run", 600);
    char admin[64], admin_url[96], log[512], url[256];
    int port = kopt_test_free_port();

    assert_int_equal(kopt_test_nats_start(&nats, NULL), 0);
    make_stream(nats->url);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", port);
    snprintf(admin_url, sizeof(admin_url), "http://%s", admin);
    snprintf(log, sizeof(log), "%s/aggregator-run.log", tmp);
    snprintf(daemon_log, sizeof(daemon_log), "%s", log);
    kopt_test_s3_store_url(s3, "run", url, sizeof(url));
    char *argv[] = {(char *)aggregator_bin,
                    "run",
                    "--nats-url",
                    nats->url,
                    "--clickhouse-url",
                    ch->url,
                    "--clickhouse-database=ar_run",
                    "--admin-listen",
                    admin,
                    "--object-store-url",
                    url,
                    "--object-store-credentials-file",
                    s3->credentials_file,
                    "--archive-interval=1h",
                    "--backup-interval=1h",
                    "--retention-days=31",
                    "--drain-timeout=20s",
                    NULL};
    memset(&daemon_proc, 0, sizeof(daemon_proc));
    assert_int_equal(kopt_test_proc_spawn(&daemon_proc, argv, NULL, log), 0);
    assert_int_equal(kopt_test_cleanup_push(daemon_cleanup, &daemon_proc), 0);

    /* Every name is there from the start. */
    assert_true(metric_wait(admin_url, "kopt_aggregator_archive_runs_total{result=\"error\"}", 0) ==
                0);
    assert_true(metric_wait(admin_url, "kopt_aggregator_archive_runs_total{result=\"ok\"}", 1) >=
                1);
    assert_true(metric_wait(admin_url, "kopt_aggregator_backup_runs_total{result=\"ok\"}", 1) >= 1);
    assert_true(kopt_test_metric(admin_url, "kopt_aggregator_archived_partitions_total") == 2);
    assert_true(kopt_test_metric(admin_url, "kopt_aggregator_last_backup_timestamp_seconds") >
                1.7e9);
    assert_true(
        kopt_test_metric(admin_url, "kopt_aggregator_backup_runs_total{result=\"error\"}") == 0);
    assert_true(
        kopt_test_metric(admin_url, "kopt_aggregator_objstore_requests_total{result=\"ok\"}") > 4);
    /* Retention ran at start, before the archive: it kept both. */
    assert_true(kopt_test_metric(
                    admin_url,
                    "kopt_aggregator_retention_kept_partitions_total{reason=\"unarchived\"}") == 2);
    assert_true(kopt_test_metric(admin_url, "kopt_aggregator_retention_dropped_partitions_total") ==
                0);
    assert_int_equal(ch_long(WINDOWS, "ar_run"), 600);
    assert_int_equal(ch_long(RECORDS, "ar_run"), 2);
    assert_true(itest_objects_under(s3, "run/backups/") > 2);

    /* SIGTERM: the schedule thread stops with the rest, exit 0, a clean log. */
    assert_int_equal(kopt_test_proc_stop(&daemon_proc, 30000), 0);
    assert_true(WIFEXITED(daemon_proc.status) && WEXITSTATUS(daemon_proc.status) == 0);
    assert_false(kopt_test_log_contains(log, "ERROR: AddressSanitizer"));
    assert_false(kopt_test_log_contains(log, "ERROR: LeakSanitizer"));
    assert_false(kopt_test_log_contains(log, "runtime error:"));
    kopt_test_cleanup_forget(&daemon_proc);
    kopt_test_proc_release(&daemon_proc);
    kopt_test_nats_free(nats);
    kopt_ch_client_free(c);
    itest_drop_db(ch, "ar_run");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(archive_then_retention),
        cmocka_unit_test(changed_partition_is_archived_again),
        cmocka_unit_test(damaged_archive_keeps_the_partition),
        cmocka_unit_test(store_faults_leave_nothing),
        cmocka_unit_test(archive_through_the_binary),
        cmocka_unit_test(daemon_schedule_and_metrics),
    };
    int failed;

    if (argc < 3) {
        fprintf(stderr, "usage: test_archive SRC_ROOT KOPT_AGGREGATOR\n");
        return 2;
    }
    src_root = argv[1];
    aggregator_bin = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, setup, kopt_test_teardown_all);
    itest_storage_stop(&tmp);
    return failed;
}
