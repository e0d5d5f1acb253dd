/* Replicas of kopt-aggregator share the scheduled archive and backup
 * through the lease aggregator.schedule in the kopt_leases bucket
 * (aggregator/archive_schedule.c, docs/operations.md). Two real
 * `kopt-aggregator run` against one real nats-server (with the
 * per-component users of tests/harness/nats_auth.c, so the lease's
 * permissions are the documented ones), one clickhouse-server and the
 * harness's S3 server, with a 2 s archive interval and a 2 s lease TTL:
 * only the holder archives and backs up, the other skips and counts; after
 * kill -9 of the holder the other takes the lease over and archives; with
 * NATS down nothing runs, and when it is back the survivor runs again; a
 * clean stop deletes the lease. The times are printed.
 *
 * usage: test_schedule_lease SRCDIR KOPT_AGGREGATOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kopt/clickhouse.h>

#include "harness.h"
#include "schema.h"

#define DB "sched_lease"
#define INTERVAL "2s"
#define TTL "2s"
#define WAIT_S 90.0 /* a generous bound for each wait on a loaded box */

static const char *src_dir, *aggregator_exe;

typedef struct {
    kopt_test_proc_t proc;
    char log[512], pw[600], admin[64], name[4];
} agg_t;

static struct {
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    kopt_test_s3_t *s3;
    char *dir, *certs;
    agg_t agg[2];
    int holder; /* the index of the replica holding the lease, or -1 */
} w;

/* ---- helpers ------------------------------------------------------------ */

static long ch_long(const char *sql)
{
    char *out = NULL;
    long n;

    if (kopt_test_clickhouse_query(w.ch, sql, &out) != 0)
        fail_msg("query failed: %s: %s", sql, out ? out : "");
    n = atol(out);
    free(out);
    return n;
}

/* 600 windows ten days old, four minutes apart: two daily partitions the
 * schedule archives (--archive-after 1). */
static void write_windows(void)
{
    kopt_ch_options_t o = {.url = w.ch->url, .database = DB, .timeout_ms = 30000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    char *out = NULL;

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    kopt_ch_client_free(c);
    if (kopt_test_clickhouse_query(
            w.ch,
            "INSERT INTO " DB ".container_windows (cluster, namespace, workload_name, pod, "
            "container, window_start, window_end, cpu_usage_mean_cores, "
            "memory_working_set_peak_bytes) SELECT 'c1', 'ns', concat('w', toString(number % 5)), "
            "'p', 'app', toDateTime(toStartOfDay(now()) - 10 * 86400) + number * 240, "
            "toDateTime(toStartOfDay(now()) - 10 * 86400) + number * 240 + 60, number / 100, "
            "number * 4096 FROM system.numbers LIMIT 600",
            &out) != 0)
        fail_msg("insert failed: %s", out ? out : "");
    free(out);
}

/* The stream kopt-ingest would have made: the aggregator waits for it. */
static void make_stream(void)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;

    assert_int_equal(kopt_test_nats_jetstream(w.nats, &nc, &js), 0);
    assert_int_equal(kopt_test_js_add_stream(js, "KOPT_METRICS", "kopt.metrics.>", 1), 0);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* The lease's value now ("" when absent, deleted or expired). */
static void lease_value(char *out, size_t len)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;

    assert_int_equal(kopt_test_nats_jetstream(w.nats, &nc, &js), 0);
    assert_int_not_equal(kopt_test_kv_get(js, "kopt_leases", "aggregator.schedule", out, len),
                         -EIO);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void start_aggregator(int i)
{
    agg_t *a = &w.agg[i];
    char admin_l[64], url[256];
    const char *argv[48];
    int n = 0, port = kopt_test_free_port();

    snprintf(a->name, sizeof(a->name), "%c", 'A' + i);
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", port);
    snprintf(a->admin, sizeof(a->admin), "http://127.0.0.1:%d", port);
    snprintf(a->log, sizeof(a->log), "%s/aggregator-%c.log", w.dir, 'A' + i);
    argv[n++] = aggregator_exe;
    argv[n++] = "run";
    argv[n++] = "--admin-listen";
    argv[n++] = admin_l;
    argv[n++] = "--nats-url";
    argv[n++] = w.nats->url;
    argv[n++] = "--clickhouse-url";
    argv[n++] = w.ch->url;
    argv[n++] = "--clickhouse-database=" DB;
    kopt_test_s3_store_url(w.s3, "lease", url, sizeof(url));
    argv[n++] = "--object-store-url";
    argv[n++] = url;
    argv[n++] = "--object-store-credentials-file";
    argv[n++] = w.s3->credentials_file;
    argv[n++] = "--archive-after=1";
    argv[n++] = "--archive-interval=" INTERVAL;
    argv[n++] = "--backup-interval=1h"; /* one backup each, at the first tick */
    argv[n++] = "--lease-ttl=" TTL;
    argv[n++] = "--retention-days=0";
    argv[n++] = "--drain-timeout=20s";
    argv[n++] = "--log-format=text";
    assert_int_equal(
        kopt_test_nats_auth_args(w.nats, "kopt-aggregator", argv, &n, a->pw, sizeof(a->pw)), 0);
    argv[n] = NULL;
    memset(&a->proc, 0, sizeof(a->proc));
    assert_int_equal(kopt_test_proc_spawn(&a->proc, (char *const *)argv, NULL, a->log), 0);
}

static double metric(const agg_t *a, const char *sample)
{
    double v = kopt_test_metric(a->admin, sample);

    return v < 0 ? 0 : v;
}

#define ARCHIVE_OK "kopt_aggregator_archive_runs_total{result=\"ok\"}"
#define ARCHIVE_ERR "kopt_aggregator_archive_runs_total{result=\"error\"}"
#define BACKUP_OK "kopt_aggregator_backup_runs_total{result=\"ok\"}"
#define HELD "kopt_aggregator_schedule_lease_held"
#define SKIPPED(run, reason)                                                                       \
    "kopt_aggregator_schedule_skipped_total{run=\"" run "\",reason=\"" reason "\"}"

/* Seconds until `sample` on a reaches at_least, or -1 after WAIT_S. */
static double wait_metric(const agg_t *a, const char *sample, double at_least)
{
    double t0 = kopt_test_now();

    while (kopt_test_now() - t0 < WAIT_S) {
        if (metric(a, sample) >= at_least)
            return kopt_test_now() - t0;
        usleep(100 * 1000);
    }
    fprintf(stderr, "%s: %s is %.0f after %.0f s, wanted %.0f\n", a->name, sample,
            metric(a, sample), WAIT_S, at_least);
    kopt_test_log_tail(a->log, 30);
    return -1;
}

static void print(const agg_t *a)
{
    fprintf(stderr,
            "%s: lease held %.0f, archive ok %.0f error %.0f, backup ok %.0f, skipped archive "
            "lease %.0f nats %.0f, skipped backup lease %.0f\n",
            a->name, metric(a, HELD), metric(a, ARCHIVE_OK), metric(a, ARCHIVE_ERR),
            metric(a, BACKUP_OK), metric(a, SKIPPED("archive", "lease")),
            metric(a, SKIPPED("archive", "nats")), metric(a, SKIPPED("backup", "lease")));
}

/* ---- tests -------------------------------------------------------------- */

/* A and B share the schedule: one holds the lease and archives at every
 * tick of its own, and takes the one backup; the other skips each of its
 * ticks and counts them. The partitions are archived once. */
static void one_replica_runs_the_schedule(void **state)
{
    agg_t *holder, *other;

    (void)state;
    start_aggregator(0);
    start_aggregator(1);
    /* Three archive runs between them, and two skipped ticks on the other. */
    for (double t0 = kopt_test_now(); kopt_test_now() - t0 < WAIT_S;) {
        if (metric(&w.agg[0], ARCHIVE_OK) + metric(&w.agg[1], ARCHIVE_OK) >= 3 &&
            metric(&w.agg[0], SKIPPED("archive", "lease")) +
                    metric(&w.agg[1], SKIPPED("archive", "lease")) >=
                2)
            break;
        usleep(100 * 1000);
    }
    print(&w.agg[0]);
    print(&w.agg[1]);
    w.holder = metric(&w.agg[0], HELD) == 1 ? 0 : 1;
    holder = &w.agg[w.holder];
    other = &w.agg[1 - w.holder];
    assert_true(metric(holder, HELD) == 1);
    assert_true(metric(other, HELD) == 0);
    assert_true(metric(holder, ARCHIVE_OK) >= 3);
    assert_true(metric(holder, BACKUP_OK) == 1);
    assert_true(metric(other, SKIPPED("archive", "lease")) >= 2);
    assert_true(metric(other, SKIPPED("backup", "lease")) == 1);
    /* The other never ran either, and nobody failed to reach NATS. */
    assert_true(metric(other, ARCHIVE_OK) == 0 && metric(other, ARCHIVE_ERR) == 0);
    assert_true(metric(other, BACKUP_OK) == 0);
    assert_true(metric(holder, ARCHIVE_ERR) == 0);
    for (int i = 0; i < 2; i++)
        assert_true(metric(&w.agg[i], SKIPPED("archive", "nats")) == 0);
    /* Two partitions, archived once: two records, and counted once. */
    assert_int_equal(ch_long("SELECT count() FROM " DB ".archive FORMAT TSV"), 2);
    assert_true(metric(holder, "kopt_aggregator_archived_partitions_total") == 2);
    assert_true(metric(other, "kopt_aggregator_archived_partitions_total") == 0);
    assert_true(kopt_test_log_contains(holder->log, "schedule lease taken"));
    /* The bucket's max age is the TTL both gave (no mismatch reported). */
    assert_false(kopt_test_log_contains(holder->log, "the lease bucket's TTL is not"));
    assert_false(kopt_test_log_contains(other->log, "the lease bucket's TTL is not"));
    assert_true(kopt_test_log_contains(other->log,
                                       "scheduled run skipped: another replica holds the lease"));
}

/* kill -9 of the holder: its lease expires the TTL after its last renewal,
 * the other's keeper takes it and its next tick archives. */
static void the_other_takes_over_when_the_holder_dies(void **state)
{
    agg_t *holder, *other;
    double killed, taken, ran;

    (void)state;
    if (w.holder < 0)
        skip();
    holder = &w.agg[w.holder];
    other = &w.agg[1 - w.holder];
    assert_int_equal(kopt_test_proc_kill9(&holder->proc), 0);
    killed = kopt_test_now();
    taken = wait_metric(other, HELD, 1);
    assert_true(taken >= 0);
    ran = wait_metric(other, ARCHIVE_OK, 1);
    assert_true(ran >= 0);
    fprintf(stderr,
            "kill -9 %s (holder): %s took the lease %.2f s after (TTL %s), archived %.2f s after\n",
            holder->name, other->name, taken, TTL, kopt_test_now() - killed);
    print(other);
    assert_true(kopt_test_log_contains(other->log, "schedule lease taken"));
    assert_true(metric(other, ARCHIVE_ERR) == 0);
    w.holder = 1 - w.holder;
}

/* NATS down: the survivor cannot check the lease and runs nothing (counted
 * as reason nats); NATS back: it holds the lease and archives again. */
static void nothing_runs_while_nats_is_down(void **state)
{
    agg_t *a;
    double ok_down, ok_after;

    (void)state;
    if (w.holder < 0)
        skip();
    a = &w.agg[w.holder];
    assert_int_equal(kopt_test_nats_kill9(w.nats), 0);
    assert_true(wait_metric(a, SKIPPED("archive", "nats"), 1) >= 0);
    assert_true(metric(a, HELD) == 0);
    ok_down = metric(a, ARCHIVE_OK);
    assert_true(wait_metric(a, SKIPPED("archive", "nats"), 2) >= 0);
    /* A second skipped tick, and still no run in between. */
    assert_true(metric(a, ARCHIVE_OK) == ok_down);
    assert_true(kopt_test_log_contains(a->log, "scheduled run skipped: the lease could not be "
                                               "checked"));
    assert_int_equal(kopt_test_nats_restart(w.nats), 0);
    assert_true(wait_metric(a, HELD, 1) >= 0);
    assert_true(wait_metric(a, ARCHIVE_OK, ok_down + 1) >= 0);
    ok_after = metric(a, ARCHIVE_OK);
    fprintf(stderr, "NATS down: %s ran %.0f archives before, %.0f after it came back\n", a->name,
            ok_down, ok_after);
    print(a);
}

/* SIGTERM: the holder stops cleanly (exit 0, a clean log) and deletes its
 * lease on the way out, so a new replica need not wait for the TTL. */
static void a_clean_stop_deletes_the_lease(void **state)
{
    agg_t *a;
    char before[128], after[128];

    (void)state;
    if (w.holder < 0)
        skip();
    a = &w.agg[w.holder];
    lease_value(before, sizeof(before));
    assert_int_equal(kopt_test_proc_stop(&a->proc, 30000), 0);
    assert_true(WIFEXITED(a->proc.status) && WEXITSTATUS(a->proc.status) == 0);
    lease_value(after, sizeof(after));
    fprintf(stderr, "clean stop of %s: lease was \"%s\", after its exit \"%s\"\n", a->name, before,
            after);
    assert_true(before[0] != '\0');
    assert_string_equal(after, "");
    for (int i = 0; i < 2; i++) {
        assert_false(kopt_test_log_contains(w.agg[i].log, "ERROR: AddressSanitizer"));
        assert_false(kopt_test_log_contains(w.agg[i].log, "ERROR: LeakSanitizer"));
        assert_false(kopt_test_log_contains(w.agg[i].log, "runtime error:"));
    }
}

/* ---- set-up ------------------------------------------------------------- */

static int group_setup(void **state)
{
    kopt_test_nats_opts_t no = {0};
    int r;

    (void)state;
    w.holder = -1;
    w.certs = kopt_test_tmpdir("kopt-schedlease-certs");
    w.dir = kopt_test_tmpdir("kopt-schedlease-test");
    if (!w.certs || !w.dir || kopt_test_make_certs(src_dir, w.certs) < 0)
        return -1;
    no.auth_certs_dir = w.certs;
    if (kopt_test_nats_start(&w.nats, &no) < 0 || kopt_test_clickhouse_start(&w.ch) < 0)
        return -1;
    r = kopt_test_s3_start(&w.s3, src_dir);
    if (r < 0)
        return -1;
    write_windows();
    make_stream();
    return 0;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < 2; i++)
        kopt_test_proc_release(&w.agg[i].proc);
    kopt_test_teardown_all(state);
    if (w.dir)
        kopt_test_rmtree(w.dir);
    if (w.certs)
        kopt_test_rmtree(w.certs);
    free(w.dir);
    free(w.certs);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_replica_runs_the_schedule),
        cmocka_unit_test(the_other_takes_over_when_the_holder_dies),
        cmocka_unit_test(nothing_runs_while_nats_is_down),
        cmocka_unit_test(a_clean_stop_deletes_the_lease),
    };

    if (argc < 3) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_AGGREGATOR\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    aggregator_exe = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
