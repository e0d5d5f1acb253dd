/* The advisor's web page in a real headless Chromium (issue 17). Real
 * nats-server and clickhouse-server; two days of one-minute windows of a
 * few workloads (plus one that started minutes ago) are written to
 * container_windows with a daily shape, rolled up with the aggregator's own
 * SQL, analysed by `kopt-advisor analyze --once`, then a real kopt-advisor
 * serves the page. tests/web/web_test.mjs drives Chromium through the
 * DevTools protocol (playwright-core) and asserts on the DOM; it saves
 * screenshots into SHOTS_DIR.
 *
 * Exit 77 (meson: skipped) when Chromium, node or playwright-core are not
 * installed (scripts/deps installs them).
 *
 * usage: test_web SRCDIR KOPT_ADVISOR NODE SCRIPT MODULES_DIR SHOTS_DIR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "rollup.h"

#define KEY "web-test-key-0123456789"
#define CHROMIUM "/usr/bin/chromium"

static const char *src_dir, *advisor_exe, *node_exe, *script, *modules_dir, *shots_dir;

/* No seeded hours: windows rolled up by the aggregator's SQL instead. */
static kopt_test_advisor_t w;

/* ---- data -------------------------------------------------------------------- */

static void query(const char *sql)
{
    char *out = NULL;

    if (kopt_test_clickhouse_query(w.ch, sql, &out) != 0)
        fail_msg("query failed: %s\n%s", out ? out : "", sql);
    free(out);
}

/* One pod's one-minute windows of one container: `minutes` of them, ending
 * at the current minute. CPU follows a daily sine around `cpu` (+-40 %) with
 * a little deterministic noise; memory is `mem_mib` +-10 %. */
/* The hour the newest window written starts in: the running hour at setup. */
static int64_t newest_window_hour;

static void windows(const char *cluster, const char *ns, const char *kind, const char *name,
                    const char *pod, const char *container, int minutes, double cpu, double mem_mib,
                    double cpu_req, double cpu_lim, double mem_req_mib, double mem_lim_mib)
{
    int64_t now = (int64_t)time(NULL) / 60 * 60;
    char sql[4096];

    snprintf(sql, sizeof(sql),
             "INSERT INTO kopt.container_windows (cluster, namespace, workload_kind, "
             "workload_name, pod, container, node, window_start, window_end, "
             "cpu_usage_mean_cores, cpu_usage_peak_cores, memory_working_set_peak_bytes, "
             "memory_working_set_last_bytes, memory_rss_peak_bytes, cpu_request_cores, "
             "cpu_limit_cores, memory_request_bytes, memory_limit_bytes, sample_count, agent_id, "
             "epoch, seq, inserted_at) "
             "SELECT '%s', '%s', '%s', '%s', '%s', '%s', 'n1', toDateTime(%lld - number * 60), "
             "toDateTime(%lld - number * 60 + 60), c, c * 1.6, m, m, m, %g, %g, %.0f, %.0f, 6, "
             "'web-test', 1, number, now() FROM (SELECT number, "
             "%g * (1 + 0.4 * sin(2 * pi() * number / 1440) + 0.15 * ((number * 7919) %% 13) / "
             "13) AS c, toUInt64(%g * 1048576 * (1 + 0.1 * cos(2 * pi() * number / 1440))) AS m "
             "FROM system.numbers LIMIT %d)",
             cluster, ns, kind, name, pod, container, (long long)(now - 60), (long long)(now - 60),
             cpu_req, cpu_lim, mem_req_mib * 1048576, mem_lim_mib * 1048576, cpu, mem_mib, minutes);
    query(sql);
    newest_window_hour = (now - 60) / 3600 * 3600;
}

static void write_windows(void)
{
    const int days2 = 48 * 60;

    /* web: two pods, an app container well over-provisioned and a proxy. */
    for (int p = 0; p < 2; p++) {
        char pod[32];

        snprintf(pod, sizeof(pod), "web-%d", p);
        windows("local", "shop", "Deployment", "web", pod, "app", days2, 0.2, 200, 1.0, 2.0, 1024,
                2048);
        windows("local", "shop", "Deployment", "web", pod, "proxy", days2, 0.03, 40, 0.1, 0, 128,
                256);
    }
    /* db: more than it asks for. */
    windows("local", "shop", "StatefulSet", "db", "db-0", "pg", days2, 0.5, 600, 0.25, 0, 512, 0);
    /* sleepy: idle. */
    windows("local", "batch", "Deployment", "sleepy", "sleepy-0", "main", days2, 0.0005, 5, 0.5, 0,
            256, 0);
    /* tidy: idle too, but its requests are what kopt advises for such a
     * container (the minimum CPU, the peak plus 256 MiB headroom), so the
     * "only changes > 10 %" filter leaves it out. */
    windows("local", "batch", "Deployment", "tidy", "tidy-0", "main", days2, 0.0005, 5, 0.025, 0,
            262, 0);
    /* report: a CronJob. */
    windows("local", "batch", "CronJob", "report", "report-1", "job", days2, 0.3, 300, 0.5, 0, 512,
            512);
    /* fresh: started 12 minutes ago; its first hour is still running. */
    windows("local", "shop", "Deployment", "fresh", "fresh-0", "app", 12, 0.4, 150, 0.5, 0, 256, 0);
    /* Another cluster, for the cluster filter. */
    windows("other", "default", "Deployment", "api", "api-0", "api", days2, 0.1, 100, 0.1, 0, 128,
            0);
}

/* What the aggregator does every minute: roll every touched hour up into
 * container_hourly, the current (partial) hour included. Its own SQL. */
static void roll_up(void)
{
    int64_t cur = (int64_t)time(NULL) / 3600 * 3600, hours[AGG_ROLLUP_MAX_HOURS];
    size_t n = 0;

    for (int64_t h = cur - 49 * 3600; h <= cur; h += 3600) {
        hours[n++] = h;
        if (n == AGG_ROLLUP_MAX_HOURS || h == cur) {
            char *sql = NULL;

            assert_int_equal(agg_rollup_sql_hours("kopt", NULL, hours, n, &sql), 0);
            query(sql);
            free(sql);
            n = 0;
        }
    }
}

/* The HPA of web (CPU target 50 %) and the nodes, as the agents report them. */
static void write_facts(void)
{
    query("INSERT INTO kopt.workload_facts (cluster, namespace, workload_kind, workload_name, "
          "observed_at, node, replicas, ready_replicas, qos_class, hpa_name, hpa_min_replicas, "
          "hpa_max_replicas, hpa_target_cpu_percent, hpa_target_memory_percent, hpa_metrics) "
          "VALUES ('local','shop','Deployment','web',now()-600,'n1',2,2,'Burstable','web-hpa',2,"
          "10,50,0,['cpu'])");
    query("INSERT INTO kopt.node_facts (cluster, node, observed_at, cpu_capacity_cores, "
          "cpu_allocatable_cores, memory_capacity_bytes, memory_allocatable_bytes) VALUES "
          "('local','n1',now()-600,4,3.5,17179869184,15032385536),"
          "('other','n9',now()-600,4,3.5,17179869184,15032385536)");
}

/* ---- set-up ------------------------------------------------------------------ */

static int run(char *const argv[], const char *log, int timeout_ms)
{
    int rc = kopt_test_proc_run(argv, log, timeout_ms);

    if (rc != 0)
        kopt_test_log_tail(log, 80);
    return rc;
}

static int group_setup(void **state)
{
    kopt_test_advisor_opts_t o = {
        .src_dir = src_dir, .advisor_exe = advisor_exe, .name = "web", .keys = KEY "\n"};
    int rc = kopt_test_advisor_setup(&w, &o);

    (void)state;
    if (rc == -ENOENT)
        return -1;
    assert_int_equal(rc, 0);
    write_windows();
    roll_up();
    write_facts();
    assert_int_equal(kopt_test_advisor_analyze_once(&w), 0);
    assert_int_equal(kopt_test_advisor_start(&w, NULL), 0);
    const char *pause = getenv("KOPT_TEST_WEB_PAUSE");
    if (pause) {
        fprintf(stderr, "paused: page %s/ key %s\n", w.base, KEY);
        sleep((unsigned)atoi(pause));
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return kopt_test_advisor_teardown(&w);
}

/* ---- tests ------------------------------------------------------------------- */

/* GetWorkloadUsage has the running hour from its first minutes: fresh's 12
 * minutes of windows are one or two points (the hour may have turned),
 * the newest is the hour of the newest window (the running hour at setup,
 * not at this check: the clock may have passed the hour since), with its
 * percentiles. */
static void usage_has_the_current_partial_hour(void **state)
{
    char url[256], *body = NULL;
    json_t *j, *pts, *last;
    json_error_t jerr;
    char want[32];
    struct tm tm;
    time_t t = (time_t)newest_window_hour;

    (void)state;
    snprintf(url, sizeof(url), "%s/v1/workloads/local/shop/Deployment/fresh/usage", w.base);
    {
        /* kopt_test_http sends no header: the key goes through curl here. */
        static char auth[] = "authorization: Bearer " KEY;
        char *argv[] = {"curl", "-sS", "-H", auth, "-o", NULL, url, NULL};
        char out[600], log[600];
        FILE *f;
        long n;

        snprintf(out, sizeof(out), "%s/usage.json", w.dir);
        snprintf(log, sizeof(log), "%s/curl.log", w.dir);
        argv[5] = out;
        assert_int_equal(run(argv, log, 10000), 0);
        f = fopen(out, "r");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        body = calloc(1, (size_t)n + 1);
        assert_non_null(body);
        assert_int_equal(fread(body, 1, (size_t)n, f), (size_t)n);
        fclose(f);
    }
    j = json_loads(body, 0, &jerr);
    if (!j)
        fail_msg("not JSON: %s", body);
    pts = json_object_get(json_array_get(json_object_get(j, "series"), 0), "points");
    assert_true(json_array_size(pts) >= 1 && json_array_size(pts) <= 2);
    last = json_array_get(pts, json_array_size(pts) - 1);
    gmtime_r(&t, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:00:00Z", &tm);
    assert_string_equal(json_string_value(json_object_get(last, "time")), want);
    assert_true(json_number_value(json_object_get(last, "cpuP95Cores")) > 0.2);
    assert_true(json_number_value(json_object_get(last, "cpuMaxCores")) > 0.2);
    json_decref(j);
    free(body);
}

static void page_in_chromium(void **state)
{
    char log[600];
    char *argv[] = {(char *)node_exe, (char *)script, NULL};
    char *env[6];
    char e_base[128], e_key[128], e_mod[700], e_shots[700], e_chrome[128];
    int rc;

    (void)state;
    snprintf(e_base, sizeof(e_base), "KOPT_WEB_BASE=%s", w.base);
    snprintf(e_key, sizeof(e_key), "KOPT_WEB_KEY=%s", KEY);
    snprintf(e_mod, sizeof(e_mod), "KOPT_WEB_MODULES=%s", modules_dir);
    snprintf(e_shots, sizeof(e_shots), "KOPT_WEB_SHOTS=%s", shots_dir);
    snprintf(e_chrome, sizeof(e_chrome), "KOPT_WEB_CHROMIUM=%s", CHROMIUM);
    env[0] = e_base;
    env[1] = e_key;
    env[2] = e_mod;
    env[3] = e_shots;
    env[4] = e_chrome;
    env[5] = NULL;
    snprintf(log, sizeof(log), "%s/chromium-test.log", w.dir);
    {
        kopt_test_proc_t p;

        assert_int_equal(kopt_test_proc_spawn(&p, argv, env, log), 0);
        for (int i = 0; i < 1800 && kopt_test_proc_alive(&p); i++)
            usleep(100 * 1000);
        if (kopt_test_proc_alive(&p))
            kopt_test_proc_kill9(&p);
        rc = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 128;
        kopt_test_proc_release(&p);
    }
    /* The script's own report, pass or fail. */
    kopt_test_log_tail(log, 200);
    assert_int_equal(rc, 0);
}

static bool installed(const char *path)
{
    struct stat s;

    return stat(path, &s) == 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usage_has_the_current_partial_hour),
        cmocka_unit_test(page_in_chromium),
    };
    char pw[700];
    double t0 = kopt_test_now();
    int failed;

    if (argc != 7) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_ADVISOR NODE SCRIPT MODULES_DIR SHOTS_DIR\n",
                argv[0]);
        return 2;
    }
    src_dir = argv[1];
    advisor_exe = argv[2];
    node_exe = argv[3];
    script = argv[4];
    modules_dir = argv[5];
    shots_dir = argv[6];
    snprintf(pw, sizeof(pw), "%s/playwright-core/package.json", modules_dir);
    if (!installed(CHROMIUM) || !installed(node_exe) || !installed(pw)) {
        fprintf(stderr, "skipped: needs %s, %s and %s (scripts/deps installs them)\n", CHROMIUM,
                node_exe, pw);
        return 77;
    }
    (void)src_dir;
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    fprintf(stderr, "timing: test_web %.3f s\n", kopt_test_now() - t0);
    return failed;
}
