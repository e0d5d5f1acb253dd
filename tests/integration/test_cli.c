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

#include "harness.h"

#define KEY "cli-itest-key-0123456789"

static const char *src_dir, *advisor_exe, *kopt_exe, *python_exe, *python_script;
static char *const *proto_dirs;
static int n_proto_dirs;

static kopt_test_advisor_t w;

/* 48 hours of each container at a constant shape; requests and limits as
 * the base's manifests set them. */
#define MIB 1048576.0
static const kopt_test_seed_t seed[] = {
    {"local", "shop", "Deployment", "web", "app", 0.2, 200 * MIB, 1.0, 1024 * MIB, 2.0, 2048 * MIB,
     1, 0},
    {"local", "shop", "Deployment", "web", "sidecar", 0.02, 30 * MIB, 0.25, 256 * MIB, 0, 0, 1, 0},
    {"local", "shop", "StatefulSet", "db", "pg", 0.5, 600 * MIB, 0.25, 512 * MIB, 0, 1024 * MIB, 1,
     0},
    {"local", "infra", "DaemonSet", "node-agent", "agent", 0.05, 80 * MIB, 0.1, 128 * MIB, 0.5,
     256 * MIB, 1, 0},
    {"local", "batch", "CronJob", "report", "main", 0.3, 300 * MIB, 0.5, 512 * MIB, 0, 0, 1, 0},
};

static int group_setup(void **state)
{
    kopt_test_advisor_opts_t o = {.src_dir = src_dir,
                                  .advisor_exe = advisor_exe,
                                  .name = "cli",
                                  .seed = seed,
                                  .n_seed = sizeof(seed) / sizeof(seed[0]),
                                  .keys = "# test keys\n" KEY "\n",
                                  .tls = true};

    (void)state;
    return kopt_test_advisor_up(&w, &o, NULL) == 0 ? 0 : -1; /* messages printed */
}

static int group_teardown(void **state)
{
    (void)state;
    return kopt_test_advisor_teardown(&w);
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
    snprintf(target, sizeof(target), "%s", w.target);
    snprintf(down, sizeof(down), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(ca, sizeof(ca), "%s", w.ca);
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
