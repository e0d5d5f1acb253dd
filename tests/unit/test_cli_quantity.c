/* kopt CLI quantities (cli/quantity.c): cores and bytes rounded up to
 * Kubernetes quantities, never below the recommendation; and the sentences
 * and exit codes of failed calls (cli/client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <grpc/status.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "quantity.h"

static const char *cpu(double v)
{
    static char b[32];

    return cli_cpu_quantity(v, b, sizeof(b));
}

static const char *mem(uint64_t v)
{
    static char b[32];

    return cli_memory_quantity(v, b, sizeof(b));
}

static void cpu_is_millicores_rounded_up(void **state)
{
    (void)state;
    assert_string_equal(cpu(0.25), "250m");
    assert_string_equal(cpu(0.1 + 0.15), "250m"); /* 0.25000000000000006: float noise */
    assert_string_equal(cpu(0.2501), "251m");     /* never below the recommendation */
    assert_string_equal(cpu(0.0001), "1m");
    assert_string_equal(cpu(1.0), "1");
    assert_string_equal(cpu(2.0), "2");
    assert_string_equal(cpu(1.5), "1500m");
    assert_string_equal(cpu(1.9999), "2");
    assert_string_equal(cpu(0), "0");
    assert_string_equal(cpu(-1), "0");
    assert_string_equal(cpu(NAN), "0");
    assert_int_equal(cli_cpu_millicores(0.597), 597);
    for (int m = 1; m <= 64000; m += 7) /* every printed value reads back as at least v */
        assert_true(cli_cpu_millicores(m / 1000.0) == (uint64_t)m);
}

static void memory_is_mebibytes_rounded_up(void **state)
{
    (void)state;
    assert_string_equal(mem(512ull << 20), "512Mi");
    assert_string_equal(mem((512ull << 20) + 1), "513Mi");
    assert_string_equal(mem(1), "1Mi");
    assert_string_equal(mem(0), "0");
    assert_string_equal(mem(1ull << 30), "1Gi");
    assert_string_equal(mem(2ull << 30), "2Gi");
    assert_string_equal(mem((2ull << 30) - 1), "2Gi"); /* 2048 MiB rounded up is 2Gi */
    assert_string_equal(mem((2ull << 30) + 1), "2049Mi");
    assert_string_equal(mem(1536ull << 20), "1536Mi");
    assert_int_equal(cli_memory_mib(271 * 1048576ull - 5), 271);
}

static void failed_calls_get_their_exit_codes(void **state)
{
    char m[600];
    const char *what = "the advisor at h:1";

    (void)state;
    assert_int_equal(cli_status_message(GRPC_STATUS_UNAUTHENTICATED, "invalid API key", what,
                                        "ca.pem", "the API key in k", 30, m, sizeof(m)),
                     CLI_EXIT_UNAUTHENTICATED);
    assert_non_null(strstr(m, "refused the API key in k"));
    assert_int_equal(
        cli_status_message(GRPC_STATUS_UNAUTHENTICATED, "x", what, NULL, "", 30, m, sizeof(m)),
        CLI_EXIT_UNAUTHENTICATED);
    assert_non_null(strstr(m, "none was given"));
    assert_int_equal(cli_status_message(GRPC_STATUS_UNAVAILABLE,
                                        "Ssl handshake failed: SSL_ERROR_SSL: error:1000007d:SSL "
                                        "routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: "
                                        "certificate verify failed",
                                        what, "rogue.pem", NULL, 30, m, sizeof(m)),
                     CLI_EXIT_UNAVAILABLE);
    assert_non_null(strstr(m, "rogue.pem does not trust"));
    assert_int_equal(cli_status_message(GRPC_STATUS_UNAVAILABLE, "Connection refused", what,
                                        "ca.pem", NULL, 30, m, sizeof(m)),
                     CLI_EXIT_UNAVAILABLE);
    assert_non_null(strstr(m, "cannot reach the advisor at h:1"));
    assert_int_equal(cli_status_message(GRPC_STATUS_UNAVAILABLE, "Socket closed", what, "ca.pem",
                                        NULL, 30, m, sizeof(m)),
                     CLI_EXIT_UNAVAILABLE);
    assert_non_null(strstr(m, "--insecure"));
    assert_int_equal(
        cli_status_message(GRPC_STATUS_DEADLINE_EXCEEDED, "", what, NULL, NULL, 7, m, sizeof(m)),
        CLI_EXIT_UNAVAILABLE);
    assert_non_null(strstr(m, "within 7 s"));
    assert_int_equal(cli_status_message(GRPC_STATUS_INVALID_ARGUMENT, "bad kind", what, NULL, NULL,
                                        30, m, sizeof(m)),
                     CLI_EXIT_USAGE);
    assert_int_equal(cli_status_message(GRPC_STATUS_NOT_FOUND, "no such workload", what, NULL, NULL,
                                        30, m, sizeof(m)),
                     CLI_EXIT_ERROR);
    assert_int_equal(
        cli_status_message(GRPC_STATUS_INTERNAL, "boom", what, NULL, NULL, 30, m, sizeof(m)),
        CLI_EXIT_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_is_millicores_rounded_up),
        cmocka_unit_test(memory_is_mebibytes_rounded_up),
        cmocka_unit_test(failed_calls_get_their_exit_codes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
