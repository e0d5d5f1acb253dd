/* kopt, the real CLI binary, against the real kopt-advisor serving gRPC over
 * TLS with API keys, on real nats-server and clickhouse-server: this program
 * writes a known usage history for the workloads of
 * tests/fixtures/kustomize/base (a Deployment with two containers, a
 * StatefulSet, a DaemonSet, a CronJob), runs `kopt-advisor analyze --once`,
 * starts the advisor, then runs test_cli.py, which drives `kopt` and checks
 * every output format against the API's own answer (a Python gRPC client),
 * renders `kopt patch` output with `kubectl kustomize` over the base, and
 * checks the error cases' messages and exit codes.
 *
 * usage: test_cli SRCDIR KOPT_ADVISOR KOPT PYTHON3 PY_SCRIPT [PROTO_INCLUDE_DIR...] */
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

#include <kopt/clickhouse.h>
#include <kopt/usage_buckets.h>

#include "harness.h"
#include "schema.h"

#define KEY "cli-itest-key-0123456789"

static const char *src_dir, *advisor_exe, *kopt_exe, *python_exe, *python_script;
static char *const *proto_dirs;
static int n_proto_dirs;

static struct {
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    kopt_test_proc_t adv;
    char *dir, *certs;
    char keys[600], log[600];
    int grpc_port, admin_port;
} w;

static int n_rows;

/* 48 hours of one container at a constant shape ending the hour before now;
 * requests and limits as the base's manifests set them. */
static void add_hours(FILE *f, const char *ns, const char *kind, const char *name,
                      const char *container, double cpu, double mem_mib, double cpu_req,
                      double mem_req_mib, double cpu_lim, double mem_lim_mib)
{
    int64_t now = (int64_t)time(NULL) / 3600 * 3600;
    double mem = mem_mib * 1048576;

    for (int h = 48; h >= 1; h--) {
        uint32_t n = 60;

        fprintf(f,
                "%s('local','%s','%s','%s','%s',%lld,%u,1,%u,%.6f,%.6f,%.3f,0,0,0,[%d],[%u],"
                "%.0f,%.0f,[%d],[%u],0,0,%.3f,%.3f,%.0f,%.0f,%lld)",
                n_rows++ ? "," : "", ns, kind, name, container,
                (long long)(now - (int64_t)h * 3600), n, n * 6, cpu, cpu * 1.5, cpu * 60 * n,
                kopt_cpu_bucket(cpu), n, mem, mem, kopt_memory_bucket(mem), n, cpu_req, cpu_lim,
                mem_req_mib * 1048576, mem_lim_mib * 1048576, (long long)now);
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
    /* The same requests and limits as tests/fixtures/kustomize/base. */
    add_hours(f, "shop", "Deployment", "web", "app", 0.2, 200, 1.0, 1024, 2.0, 2048);
    add_hours(f, "shop", "Deployment", "web", "sidecar", 0.02, 30, 0.25, 256, 0, 0);
    add_hours(f, "shop", "StatefulSet", "db", "pg", 0.5, 600, 0.25, 512, 0, 1024);
    add_hours(f, "infra", "DaemonSet", "node-agent", "agent", 0.05, 80, 0.1, 128, 0.5, 256);
    add_hours(f, "batch", "CronJob", "report", "main", 0.3, 300, 0.5, 512, 0, 0);
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
    char grpc_l[64], admin_l[64], http_l[64], ca[700], cert[700], key[700], url[128], log[700];
    long st = 0;
    FILE *f;

    (void)state;
    w.certs = kopt_test_tmpdir("kopt-cli-certs");
    w.dir = kopt_test_tmpdir("kopt-cli-test");
    assert_non_null(w.certs);
    assert_non_null(w.dir);
    assert_int_equal(kopt_test_make_certs(src_dir, w.certs), 0);
    if (kopt_test_nats_start(&w.nats, NULL) == -ENOENT ||
        kopt_test_clickhouse_start(&w.ch) == -ENOENT) {
        fprintf(stderr, "nats-server or clickhouse-server missing: skipping\n");
        return -1;
    }
    o.url = w.ch->url;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    kopt_ch_client_free(c);
    write_history();
    snprintf(w.keys, sizeof(w.keys), "%s/api-keys", w.dir);
    snprintf(w.log, sizeof(w.log), "%s/advisor.log", w.dir);
    f = fopen(w.keys, "w");
    assert_non_null(f);
    fputs("# test keys\n" KEY "\n", f);
    fclose(f);
    {
        char *once[] = {(char *)advisor_exe,
                        "analyze",
                        "--once",
                        "--clickhouse-url",
                        w.ch->url,
                        "--nats-url",
                        w.nats->url,
                        "--log-format",
                        "text",
                        NULL};

        snprintf(log, sizeof(log), "%s/analyze-once.log", w.dir);
        if (kopt_test_proc_run(once, log, 120000) != 0) {
            kopt_test_log_tail(log, 40);
            fail_msg("kopt-advisor analyze --once failed");
        }
    }
    w.grpc_port = kopt_test_free_port();
    w.admin_port = kopt_test_free_port();
    snprintf(grpc_l, sizeof(grpc_l), "127.0.0.1:%d", w.grpc_port);
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", w.admin_port);
    snprintf(http_l, sizeof(http_l), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(ca, sizeof(ca), "%s/ca.pem", w.certs);
    snprintf(cert, sizeof(cert), "%s/server.pem", w.certs);
    snprintf(key, sizeof(key), "%s/server-key.pem", w.certs);
    {
        char *argv[] = {(char *)advisor_exe,
                        "--tls-ca",
                        ca,
                        "--tls-cert",
                        cert,
                        "--tls-key",
                        key,
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
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", w.admin_port);
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
        if (r != 0 || !WIFEXITED(w.adv.status) || WEXITSTATUS(w.adv.status) != 0) {
            kopt_test_log_tail(w.log, 40);
            r = -1;
        }
    }
    kopt_test_proc_release(&w.adv);
    kopt_test_cleanup_all();
    if (w.dir)
        kopt_test_rmtree(w.dir);
    if (w.certs)
        kopt_test_rmtree(w.certs);
    free(w.dir);
    free(w.certs);
    return r;
}

/* Everything about the binary is checked in test_cli.py; its checks print
 * "ok: ..." or "FAIL: ..." lines, shown here when it fails. */
static void kopt_cli_against_the_advisor(void **state)
{
    char target[64], ca[700], rogue[700], down[64], fixtures[700], log[700];
    char **argv = calloc(32 + 2 * (size_t)n_proto_dirs, sizeof(char *));
    int n = 0, rc;

    (void)state;
    assert_non_null(argv);
    snprintf(target, sizeof(target), "127.0.0.1:%d", w.grpc_port);
    snprintf(down, sizeof(down), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(ca, sizeof(ca), "%s/ca.pem", w.certs);
    snprintf(rogue, sizeof(rogue), "%s/rogue-ca.pem", w.certs);
    snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/kustomize", src_dir);
    snprintf(log, sizeof(log), "%s/test_cli_py.log", w.dir);
    argv[n++] = (char *)python_exe;
    argv[n++] = (char *)python_script;
    argv[n++] = "--kopt";
    argv[n++] = (char *)kopt_exe;
    argv[n++] = "--address";
    argv[n++] = target;
    argv[n++] = "--down-address";
    argv[n++] = down;
    argv[n++] = "--ca";
    argv[n++] = ca;
    argv[n++] = "--rogue-ca";
    argv[n++] = rogue;
    argv[n++] = "--key-file";
    argv[n++] = w.keys;
    argv[n++] = "--fixtures";
    argv[n++] = fixtures;
    argv[n++] = "--work";
    argv[n++] = w.dir;
    for (int i = 0; i < n_proto_dirs; i++) {
        argv[n++] = "-I";
        argv[n++] = proto_dirs[i];
    }
    rc = kopt_test_proc_run(argv, log, 240000);
    kopt_test_log_tail(log, 400);
    free(argv);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kopt_cli_against_the_advisor),
    };

    if (argc < 6) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_ADVISOR KOPT PYTHON3 PY_SCRIPT [-I...]\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    advisor_exe = argv[2];
    kopt_exe = argv[3];
    python_exe = argv[4];
    python_script = argv[5];
    proto_dirs = argv + 6;
    n_proto_dirs = argc - 6;
    cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
