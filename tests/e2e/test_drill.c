/* The recovery drill (issue 19), as docs/operations.md's runbook does it:
 * the system runs with data flowing (kopt-agent measuring a stress-ng
 * workload -> kopt-ingest -> JetStream -> kopt-aggregator -> ClickHouse);
 * `kopt-aggregator backup` to the harness's S3 server; ingest goes on; then
 * ClickHouse is lost (kill -9, its data directory wiped, started empty).
 * Recovery: `restore`, `replay` (the durable consumer deleted, so the stream
 * is read again), aggregator started. Checked: every window the agent
 * reported is in container_windows exactly once, and `kopt-advisor analyze
 * --once` recommends exactly what it did before the loss. Prints the
 * recovery time (RTO) and the data lost (RPO).
 *
 *   test_drill SRCDIR INGEST AGGREGATOR ADVISOR AGENT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_system.h"
#include "harness.h"


static const char *src_dir, *ingest_exe, *aggregator_exe, *advisor_exe, *agent_exe;

static e2e_system_t S;
static kopt_test_s3_t *s3;

static void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "drill: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* A one-shot kopt-aggregator subcommand with the object store settings. */
static int aggregator_cmd(const char *sub)
{
    char log[600], url[256];
    char *argv[] = {(char *)aggregator_exe,
                    (char *)sub,
                    "--clickhouse-url",
                    S.ch->url,
                    "--nats-url",
                    S.nats->url,
                    "--object-store-url",
                    url,
                    "--object-store-credentials-file",
                    s3->credentials_file,
                    NULL};

    kopt_test_s3_store_url(s3, NULL, url, sizeof(url));

    snprintf(log, sizeof(log), "%s/aggregator-%s.log", S.dir, sub);
    int r = kopt_test_proc_run(argv, log, 120000);
    if (r != 0)
        kopt_test_log_tail(log, 20);
    return r;
}

static char *ch_text(const char *sql)
{
    char *out = NULL;

    if (kopt_test_clickhouse_query(S.ch, sql, &out) < 0) {
        fprintf(stderr, "query failed: %s: %s\n", sql, out ? out : "");
        free(out);
        return NULL;
    }
    return out;
}

static int windows(unsigned long long *rows, unsigned long long *keys)
{
    char *out = ch_text("SELECT count(), uniqExact(cluster, namespace, workload_kind, "
                        "workload_name, pod, container, window_start) "
                        "FROM kopt.container_windows FINAL FORMAT TSV");
    int n = out ? sscanf(out, "%llu\t%llu", rows, keys) : 0;

    free(out);
    return n == 2 ? 0 : -EIO;
}

/* Waits until container_windows FINAL holds `want` rows (or the time is up). */
static double wait_windows(unsigned long long want, double seconds)
{
    double t0 = kopt_test_now();
    unsigned long long rows = 0, keys = 0;

    while (kopt_test_now() - t0 < seconds) {
        if (windows(&rows, &keys) == 0 && rows >= want)
            break;
        kopt_test_sleep_ms(250);
    }
    return kopt_test_now() - t0;
}

/* `kopt-advisor analyze --once`, then the recommendations without their
 * timestamps, one line a container, sorted. */
static char *recommend(void)
{
    char log[600], *names, *cols, *sql = NULL, *out;
    char *argv[] = {(char *)advisor_exe, "analyze",          "--once",
                    "--insecure",        "--clickhouse-url", S.ch->url,
                    "--nats-url",        S.nats->url,        NULL};

    snprintf(log, sizeof(log), "%s/advisor.log", S.dir);
    if (kopt_test_proc_run(argv, log, 120000) != 0) {
        kopt_test_log_tail(log, 20);
        return NULL;
    }
    /* Every column but the analysis's id and times; in the JSON details,
     * the times and the id (generatedAt, windowStart, windowEnd,
     * analysisId) taken out too. */
    names = ch_text("SELECT name FROM system.columns WHERE database = 'kopt' AND table = "
                    "'recommendations' AND type NOT LIKE '%DateTime%' AND name != 'analysis_id' "
                    "ORDER BY name FORMAT TSV");
    if (!names)
        return NULL;
    cols = calloc(1, strlen(names) * 2 + 256);
    if (!cols) {
        free(names);
        return NULL;
    }
    for (char *save = NULL, *n = strtok_r(names, "\n", &save); n; n = strtok_r(NULL, "\n", &save)) {
        if (cols[0])
            strcat(cols, ", ");
        if (strcmp(n, "details") == 0)
            strcat(cols, "replaceRegexpAll(details, "
                         "'\"(generatedAt|windowStart|windowEnd|analysisId)\":\"[^\"]*\"', "
                         "'')");
        else
            strcat(cols, n);
    }
    free(names);
    if (asprintf(&sql,
                 "SELECT %s FROM kopt.recommendations FINAL ORDER BY cluster, namespace, "
                 "workload_kind, workload_name, container FORMAT TSV",
                 cols) < 0)
        sql = NULL;
    out = sql ? ch_text(sql) : NULL;
    free(sql);
    free(cols);
    return out;
}

static int drill_up(void **state)
{
    const e2e_options_t o = {.src_dir = src_dir,
                             .ingest_exe = ingest_exe,
                             .aggregator_exe = aggregator_exe,
                             .advisor_exe = advisor_exe,
                             .agent_exe = agent_exe,
                             .name = "kopt-drill",
                             .no_advisor = true, /* analyses run as `analyze --once` */
                             .rollup_interval = "3s"};

    (void)state;
    if (kopt_test_s3_start(&s3, src_dir) < 0)
        return -1;
    return e2e_up(&S, &o);
}

static int drill_down(void **state)
{
    (void)state;
    e2e_down(&S);
    kopt_test_s3_free(s3);
    s3 = NULL;
    kopt_test_cleanup_all();
    return 0;
}

static void tail_logs(void)
{
    e2e_tail_logs(&S, 10);
}

static void backup_lose_clickhouse_restore_replay(void **state)
{
    char admin[64], cmd[700];
    unsigned long long rows = 0, keys = 0, want;
    double v, t_backup, t_loss, t_up, t_restored, t_exact;
    char *before, *after;

    (void)state;
    snprintf(admin, sizeof(admin), "http://127.0.0.1:%d", S.p_agent_admin);
    /* Data flows; a backup after a few windows. */
    kopt_test_sleep_ms(3 * E2E_WINDOW_MS);
    assert_int_equal(wait_windows(1, 30) < 30, 1);
    assert_int_equal(aggregator_cmd("backup"), 0);
    t_backup = kopt_test_now();
    assert_int_equal(windows(&rows, &keys), 0);
    note("backup taken with %llu windows stored", rows);

    /* Ingest goes on past the backup; then the agent stops cleanly, mid-window,
     * so its counter is every window it reported. */
    kopt_test_sleep_ms(3 * E2E_WINDOW_MS);
    {
        int64_t into = e2e_wall_ms() % E2E_WINDOW_MS;

        kopt_test_sleep_ms(into < 2500 ? 2500 - into : E2E_WINDOW_MS - into + 2500);
    }
    v = kopt_test_metric(admin, "kopt_agent_windows_total");
    assert_int_equal(kopt_test_proc_stop(&S.proc[E2E_AGENT], 30000), 0);
    assert_true(v > 0);
    want = (unsigned long long)v;
    wait_windows(want, 60);
    kopt_test_sleep_ms(4000); /* one more rollup */
    assert_int_equal(windows(&rows, &keys), 0);
    note("agent reported %llu windows; ClickHouse holds %llu (%llu keys)", want, rows, keys);
    if (rows != want)
        tail_logs();
    assert_int_equal(rows, want);
    before = recommend();
    assert_non_null(before);
    assert_true(strlen(before) > 0);

    /* The loss: kill -9, wipe the data directory, start it empty. */
    t_loss = kopt_test_now();
    assert_int_equal(kopt_test_clickhouse_kill9(S.ch), 0);
    snprintf(cmd, sizeof(cmd), "%s/data", S.ch->dir);
    assert_int_equal(kopt_test_rmtree(cmd), 0);
    assert_int_equal(kopt_test_clickhouse_restart(S.ch), 0);
    t_up = kopt_test_now();
    note("ClickHouse lost and started empty (%.1f s after the backup)", t_loss - t_backup);

    /* Recovery, as the runbook: aggregator stopped, restore, replay, start. */
    kopt_test_proc_stop(&S.proc[E2E_AGGREGATOR], 30000);
    assert_int_equal(aggregator_cmd("restore"), 0);
    t_restored = kopt_test_now();
    assert_int_equal(aggregator_cmd("replay"), 0);
    e2e_start(&S, E2E_AGGREGATOR);
    assert_int_equal(e2e_wait_ready(&S, E2E_AGGREGATOR, 60), 0);
    wait_windows(want, 60);
    t_exact = kopt_test_now();
    kopt_test_sleep_ms(4000); /* anything counted twice would show now; one more rollup */
    assert_int_equal(windows(&rows, &keys), 0);
    if (rows != want || keys != rows)
        tail_logs();
    assert_int_equal(rows, want);
    assert_int_equal(keys, rows);
    after = recommend();
    assert_non_null(after);
    if (strcmp(before, after) != 0) {
        char path[600];
        FILE *f;

        snprintf(path, sizeof(path), "%s/recommendations-before.tsv", S.dir);
        if ((f = fopen(path, "w"))) {
            fputs(before, f);
            fclose(f);
        }
        snprintf(path, sizeof(path), "%s/recommendations-after.tsv", S.dir);
        if ((f = fopen(path, "w"))) {
            fputs(after, f);
            fclose(f);
        }
        note("recommendations differ: see %s/recommendations-{before,after}.tsv", S.dir);
    }
    assert_string_equal(after, before);

    note("RTO: %.1f s from an empty ClickHouse to every window back (restore %.1f s, replay "
         "%.1f s)",
         t_exact - t_up, t_restored - t_up, t_exact - t_restored);
    note("RPO: 0 windows lost of %llu; %.1f s of windows newer than the backup came back from "
         "JetStream",
         want, t_loss - t_backup);
    free(before);
    free(after);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backup_lose_clickhouse_restore_replay),
    };

    if (argc < 6) {
        fprintf(stderr, "usage: test_drill SRCDIR INGEST AGGREGATOR ADVISOR AGENT\n");
        return 2;
    }
    src_dir = argv[1];
    ingest_exe = argv[2];
    aggregator_exe = argv[3];
    advisor_exe = argv[4];
    agent_exe = argv[5];
    return cmocka_run_group_tests(tests, drill_up, drill_down);
}
