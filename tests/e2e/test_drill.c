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

#include "harness.h"

#define WINDOW_MS 5000

static const char *src_dir, *ingest_exe, *aggregator_exe, *advisor_exe, *agent_exe;

static struct {
    char *dir;
    char spool[512], agent_conf[512];
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    kopt_test_s3_t *s3;
    int p_ingest, p_ingest_admin, p_agg_admin, p_agent_admin;
    kopt_test_proc_t ingest, aggregator, agent, workload;
} S;

static void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "drill: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static int64_t wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void spawn(kopt_test_proc_t *p, const char *name, char *const argv[])
{
    char log[600];

    snprintf(log, sizeof(log), "%s/%s.log", S.dir, name);
    assert_int_equal(kopt_test_proc_spawn(p, argv, NULL, log), 0);
}

static int wait_ready(int port, double seconds)
{
    char url[96];
    double end = kopt_test_now() + seconds;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
    while (kopt_test_now() < end) {
        long status = 0;

        if (kopt_test_http(url, NULL, 1000, &status, NULL) == 0 && status == 200)
            return 0;
        kopt_test_sleep_ms(200);
    }
    return -ETIMEDOUT;
}

static void start_aggregator(void)
{
    char admin[64];
    char *argv[] = {(char *)aggregator_exe,
                    "--admin-listen",
                    admin,
                    "--nats-url",
                    S.nats->url,
                    "--clickhouse-url",
                    S.ch->url,
                    "--rollup-interval",
                    "3s",
                    "--ack-wait",
                    "5s",
                    "--clickhouse-timeout",
                    "10s",
                    NULL};

    snprintf(admin, sizeof(admin), "127.0.0.1:%d", S.p_agg_admin);
    spawn(&S.aggregator, "aggregator", argv);
}

/* A one-shot kopt-aggregator subcommand with the object store settings. */
static int aggregator_cmd(const char *sub)
{
    char log[600];
    char *argv[] = {(char *)aggregator_exe,
                    (char *)sub,
                    "--clickhouse-url",
                    S.ch->url,
                    "--nats-url",
                    S.nats->url,
                    "--s3-endpoint",
                    S.s3->url,
                    "--s3-bucket",
                    S.s3->bucket,
                    "--s3-credentials-file",
                    S.s3->credentials_file,
                    NULL};

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
    char conf[1024], log[600];
    char *migrate_argv[] = {(char *)aggregator_exe, "migrate", "--clickhouse-url", NULL, NULL};
    char *work_argv[] = {"stress-ng", "--cpu", "1", "--cpu-load", "20", "--quiet", NULL};
    int r;

    (void)state;
    S.dir = kopt_test_owned_tmpdir("kopt-drill");
    if (!S.dir)
        return -1;
    snprintf(S.spool, sizeof(S.spool), "%s/spool", S.dir);
    snprintf(S.agent_conf, sizeof(S.agent_conf), "%s/agent.yaml", S.dir);
    snprintf(conf, sizeof(conf),
             "source: proc\ncluster: local\nproc-namespace: host\nspool-dir: %s\n"
             "proc-rules:\n"
             "  - \"steady=^stress-ng(-cpu \\\\[| .*--cpu 1 --cpu-load)\"\n"
             "  - \"kopt-aggregator=(^|/)kopt-aggregator( |$)\"\n"
             "  - \"kopt-ingest=(^|/)kopt-ingest( |$)\"\n",
             S.spool);
    FILE *f = fopen(S.agent_conf, "w");
    if (!f || fputs(conf, f) < 0 || fclose(f) != 0)
        return -1;
    r = kopt_test_s3_start(&S.s3, src_dir);
    if (r < 0)
        return -1;
    if (kopt_test_nats_start(&S.nats, NULL) < 0 || kopt_test_clickhouse_start(&S.ch) < 0)
        return -1;
    migrate_argv[3] = S.ch->url;
    snprintf(log, sizeof(log), "%s/migrate.log", S.dir);
    if (kopt_test_proc_run(migrate_argv, log, 60000) != 0)
        return -1;
    S.p_ingest = kopt_test_free_port();
    S.p_ingest_admin = kopt_test_free_port();
    S.p_agg_admin = kopt_test_free_port();
    S.p_agent_admin = kopt_test_free_port();
    {
        char listen[64], admin[64];
        char *argv[] = {
            (char *)ingest_exe, "--insecure", "--listen", listen, "--admin-listen", admin,
            "--nats-url",       S.nats->url,  NULL};

        snprintf(listen, sizeof(listen), "127.0.0.1:%d", S.p_ingest);
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", S.p_ingest_admin);
        snprintf(log, sizeof(log), "%s/ingest.log", S.dir);
        if (kopt_test_proc_spawn(&S.ingest, argv, NULL, log) < 0 ||
            wait_ready(S.p_ingest_admin, 60) < 0)
            return -1;
    }
    start_aggregator();
    if (wait_ready(S.p_agg_admin, 60) < 0)
        return -1;
    snprintf(log, sizeof(log), "%s/workload.log", S.dir);
    if (kopt_test_proc_spawn(&S.workload, work_argv, NULL, log) < 0)
        return -1;
    {
        char ingest[64], admin[64];
        char *argv[] = {(char *)agent_exe,
                        "--config",
                        S.agent_conf,
                        "--insecure",
                        "--ingest",
                        ingest,
                        "--admin-listen",
                        admin,
                        "--window",
                        "5s",
                        "--sample-interval",
                        "1s",
                        NULL};

        snprintf(ingest, sizeof(ingest), "127.0.0.1:%d", S.p_ingest);
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", S.p_agent_admin);
        snprintf(log, sizeof(log), "%s/agent.log", S.dir);
        if (kopt_test_proc_spawn(&S.agent, argv, NULL, log) < 0 ||
            wait_ready(S.p_agent_admin, 60) < 0)
            return -1;
    }
    return 0;
}

static int drill_down(void **state)
{
    kopt_test_proc_t *procs[] = {&S.agent, &S.workload, &S.aggregator, &S.ingest};

    (void)state;
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
        if (procs[i]->pid)
            kopt_test_proc_stop(procs[i], 30000);
        kopt_test_proc_release(procs[i]);
    }
    kopt_test_clickhouse_free(S.ch);
    kopt_test_nats_free(S.nats);
    kopt_test_s3_free(S.s3);
    if (S.dir && !getenv("KOPT_E2E_KEEP"))
        kopt_test_rmtree(S.dir);
    free(S.dir);
    kopt_test_cleanup_all();
    return 0;
}

static void tail_logs(void)
{
    const char *names[] = {"ingest", "aggregator", "agent", "advisor"};
    char path[600];

    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s.log", S.dir, names[i]);
        kopt_test_log_tail(path, 10);
    }
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
    kopt_test_sleep_ms(3 * WINDOW_MS);
    assert_int_equal(wait_windows(1, 30) < 30, 1);
    assert_int_equal(aggregator_cmd("backup"), 0);
    t_backup = kopt_test_now();
    assert_int_equal(windows(&rows, &keys), 0);
    note("backup taken with %llu windows stored", rows);

    /* Ingest goes on past the backup; then the agent stops cleanly, mid-window,
     * so its counter is every window it reported. */
    kopt_test_sleep_ms(3 * WINDOW_MS);
    {
        int64_t into = wall_ms() % WINDOW_MS;

        kopt_test_sleep_ms(into < 2500 ? 2500 - into : WINDOW_MS - into + 2500);
    }
    v = kopt_test_metric(admin, "kopt_agent_windows_total");
    assert_int_equal(kopt_test_proc_stop(&S.agent, 30000), 0);
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
    kopt_test_proc_stop(&S.aggregator, 30000);
    assert_int_equal(aggregator_cmd("restore"), 0);
    t_restored = kopt_test_now();
    assert_int_equal(aggregator_cmd("replay"), 0);
    kopt_test_proc_release(&S.aggregator);
    start_aggregator();
    assert_int_equal(wait_ready(S.p_agg_admin, 60), 0);
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
