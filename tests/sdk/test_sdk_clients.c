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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define KEY "sdk-test-key-0123456789"
#define CLUSTER "sdk"

static const char *src_dir, *advisor_exe, *python_exe, *driver, *gocache;

static kopt_test_advisor_t w;

/* 48 hours of each. */
static const kopt_test_seed_t seed[] = {
    /* web: 0.2 cores and 200 MiB used of 1 core and 1 GiB requested. */
    {CLUSTER, "shop", "Deployment", "web", "app", 0.2, 200.0 * 1048576, 1.0, 1024.0 * 1048576, 0, 0,
     1, 0},
    /* db: 0.5 cores used of 0.25 requested. */
    {CLUSTER, "shop", "StatefulSet", "db", "pg", 0.5, 600.0 * 1048576, 0.25, 512.0 * 1048576, 0, 0,
     1, 0},
    /* sleepy: idle. */
    {CLUSTER, "batch", "Deployment", "sleepy", "main", 0.0005, 5.0 * 1048576, 0.5, 256.0 * 1048576,
     0, 0, 1, 0},
};

static int group_setup(void **state)
{
    kopt_test_advisor_opts_t o = {.src_dir = src_dir,
                                  .advisor_exe = advisor_exe,
                                  .name = "sdk",
                                  .seed = seed,
                                  .n_seed = sizeof(seed) / sizeof(seed[0]),
                                  .keys = KEY "\n"};

    (void)state;
    return kopt_test_advisor_up(&w, &o, NULL) == 0 ? 0 : -1; /* messages printed */
}

static int group_teardown(void **state)
{
    (void)state;
    return kopt_test_advisor_teardown(&w);
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
