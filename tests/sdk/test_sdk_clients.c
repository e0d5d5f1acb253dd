/* Generated clients against the real kopt-advisor (issue 16).
 *
 * Starts nats-server and clickhouse-server (tests/harness), writes 48 hours of
 * history for three workloads of cluster "sdk", runs `kopt-advisor analyze
 * --once` and starts kopt-advisor with plaintext gRPC on a free loopback port.
 * Then tests/sdk/sdk_clients.py generates the Python, Go and TypeScript clients
 * with `buf generate` (proto/buf.gen.yaml) into a temp dir, compiles them, runs
 * each one against this advisor and checks their answers; it also regenerates
 * docs/openapi/kopt.swagger.json and compares it with the committed one.
 *
 * usage: test_sdk_clients SRC_ROOT ADVISOR_EXE PYTHON3 SDK_CLIENTS_PY GOCACHE_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopt/clickhouse.h>
#include <kopt/usage_buckets.h>

#include "harness.h"
#include "schema.h"

#define KEY "sdk-test-key-0123456789"
#define CLUSTER "sdk"

static const char *src_dir, *advisor_exe, *python_exe, *driver, *gocache;

static struct {
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    kopt_test_proc_t adv;
    char *dir;
    char keys[512], log[512], target[64];
} w;

/* 48 hours of one container with a constant shape, ending the hour before now. */
static void add_hours(FILE *f, bool *first, const char *ns, const char *kind, const char *name,
                      const char *container, double cpu, double mem, double cpu_req, double mem_req)
{
    int64_t now = (int64_t)time(NULL) / 3600 * 3600;
    const uint32_t n = 60; /* one pod, a window a minute */

    for (int h = 48; h >= 1; h--) {
        fprintf(f,
                "%s('" CLUSTER "','%s','%s','%s','%s',%lld,%u,1,%u,%.6f,%.6f,%.3f,0,0,0,[%d],[%u],"
                "%.0f,%.0f,[%d],[%u],0,0,%.3f,0,%.0f,0,%lld)",
                *first ? "" : ",", ns, kind, name, container, (long long)(now - h * 3600LL), n,
                n * 6, cpu, cpu * 1.5, cpu * 60 * n, kopt_cpu_bucket(cpu), n, mem, mem,
                kopt_memory_bucket(mem), n, cpu_req, mem_req, (long long)now);
        *first = false;
    }
}

static void write_history(void)
{
    char *sql = NULL, *out = NULL;
    size_t len = 0;
    bool first = true;
    FILE *f = open_memstream(&sql, &len);

    assert_non_null(f);
    fputs("INSERT INTO kopt.container_hourly (cluster, namespace, workload_kind, workload_name, "
          "container, hour, window_count, pod_count, sample_count, cpu_usage_mean_cores, "
          "cpu_usage_peak_cores, cpu_usage_core_seconds, cpu_throttled_seconds, "
          "cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "
          "memory_working_set_peak_bytes, memory_rss_peak_bytes, mem_hist_index, mem_hist_count, "
          "oom_kills, restarts, cpu_request_cores, cpu_limit_cores, memory_request_bytes, "
          "memory_limit_bytes, rolled_at) VALUES ",
          f);
    /* web: 0.2 cores and 200 MiB used of 1 core and 1 GiB requested. */
    add_hours(f, &first, "shop", "Deployment", "web", "app", 0.2, 200.0 * 1048576, 1.0,
              1024.0 * 1048576);
    /* db: 0.5 cores used of 0.25 requested. */
    add_hours(f, &first, "shop", "StatefulSet", "db", "pg", 0.5, 600.0 * 1048576, 0.25,
              512.0 * 1048576);
    /* sleepy: idle. */
    add_hours(f, &first, "batch", "Deployment", "sleepy", "main", 0.0005, 5.0 * 1048576, 0.5,
              256.0 * 1048576);
    fclose(f);
    if (kopt_test_clickhouse_query(w.ch, sql, &out) != 0)
        fail_msg("insert failed: %s", out);
    free(out);
    free(sql);
}

static int group_setup(void **state)
{
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    char grpc_l[64], http_l[64], admin_l[64], url[128], log[600];
    long st = 0;
    FILE *f;

    (void)state;
    if (kopt_test_nats_start(&w.nats, NULL) == -ENOENT ||
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

    w.dir = kopt_test_tmpdir("kopt-sdk-test");
    assert_non_null(w.dir);
    snprintf(w.keys, sizeof(w.keys), "%s/keys", w.dir);
    snprintf(w.log, sizeof(w.log), "%s/advisor.log", w.dir);
    f = fopen(w.keys, "w");
    assert_non_null(f);
    fputs(KEY "\n", f);
    fclose(f);

    {
        char *once[] = {(char *)advisor_exe, "analyze",    "--once",    "--clickhouse-url",
                        w.ch->url,           "--nats-url", w.nats->url, NULL};
        int rc;

        snprintf(log, sizeof(log), "%s/analyze.log", w.dir);
        rc = kopt_test_proc_run(once, log, 120000);
        if (rc != 0) {
            kopt_test_log_tail(log, 40);
            fail_msg("analyze --once exited %d", rc);
        }
    }

    snprintf(w.target, sizeof(w.target), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(grpc_l, sizeof(grpc_l), "%s", w.target);
    snprintf(http_l, sizeof(http_l), "127.0.0.1:%d", kopt_test_free_port());
    int admin_port = kopt_test_free_port();
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", admin_port);
    {
        char *argv[] = {(char *)advisor_exe,
                        "--insecure",
                        "--api-keys-file",
                        w.keys,
                        "--listen",
                        grpc_l,
                        "--http-listen",
                        http_l,
                        "--admin-listen",
                        admin_l,
                        "--clickhouse-url",
                        w.ch->url,
                        "--nats-url",
                        w.nats->url,
                        "--analysis-interval",
                        "0",
                        NULL};

        assert_int_equal(kopt_test_proc_spawn(&w.adv, argv, NULL, w.log), 0);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", admin_port);
    for (int i = 0; i < 300 && st != 200; i++) {
        usleep(100 * 1000);
        kopt_test_http(url, NULL, 1000, &st, NULL);
    }
    if (st != 200)
        kopt_test_log_tail(w.log, 40);
    assert_int_equal(st, 200);
    return 0;
}

static int group_teardown(void **state)
{
    int r = 0;

    (void)state;
    if (w.adv.pid) {
        r = kopt_test_proc_stop(&w.adv, 10000);
        if (r != 0 || kopt_test_log_contains(w.log, "ERROR: AddressSanitizer") ||
            kopt_test_log_contains(w.log, "LeakSanitizer")) {
            kopt_test_log_tail(w.log, 60);
            r = -1;
        }
    }
    kopt_test_proc_release(&w.adv);
    kopt_test_cleanup_all();
    if (w.dir)
        kopt_test_rmtree(w.dir);
    free(w.dir);
    w.dir = NULL;
    return r;
}

/* The driver prints its own checks; exit 77 is a skip (a tool is missing). */
static void generated_clients_call_the_advisor(void **state)
{
    char log[600];
    char *argv[] = {(char *)python_exe, (char *)driver,  "--src", (char *)src_dir, "--target",
                    w.target,           "--key",         KEY,     "--cluster",     CLUSTER,
                    "--gocache",        (char *)gocache, NULL};
    int rc;

    (void)state;
    snprintf(log, sizeof(log), "%s/sdk_clients.log", w.dir);
    rc = kopt_test_proc_run(argv, log, 540000);
    kopt_test_log_tail(log, 200);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_clients_call_the_advisor),
    };

    if (argc != 6) {
        fprintf(stderr, "usage: %s SRC_ROOT ADVISOR_EXE PYTHON3 SDK_CLIENTS_PY GOCACHE_DIR\n",
                argv[0]);
        return 2;
    }
    src_dir = argv[1];
    advisor_exe = argv[2];
    python_exe = argv[3];
    driver = argv[4];
    gocache = argv[5];
    cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
