/* advisor/backtest.c: the sums of `kopt-advisor backtest` over series, and
 * the table and JSON they print. Four series, numbers worked out below:
 *   A valid, 1000 windows, CPU over request 5 %, over limit 1 %, memory
 *     never; 4 core-h and 2 GiB-h reserved, 2 and 1 used; 2 pods.
 *   B valid, 3000 windows, CPU 20 %, memory 0.1 % (3 windows), CPU limit
 *     10 %, memory limit 1 window; 1, 0.5 reserved, 0.5, 0.25 used; pods 0,
 *     read as 1.
 *   C too little history: skipped, adds nothing.
 *   D valid, 1000 windows, CPU exactly 10 %: not "more than 10 %".
 * Windows 5000; CPU over request 50 + 600 + 100 = 750 (15 %); memory 3
 * (0.06 %); CPU over limit 10 + 300 = 310; memory over limit 1. Series
 * ever over the memory request: B; over the CPU request in > 10 %: B.
 * Reserved 4 x 2 + 1 = 9 core-h and 2 x 2 + 0.5 = 4.5 GiB-h; used 2 x 2 +
 * 0.5 = 4.5 and 1 x 2 + 0.25 = 2.25. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backtest.h"

static void add_series(adv_backtest_totals_t *t)
{
    kopt_engine_backtest_t a = {.valid = true,
                                .windows = 1000,
                                .cpu_over_request_share = 0.05,
                                .cpu_over_limit_share = 0.01,
                                .reserved_core_hours = 4,
                                .reserved_gib_hours = 2,
                                .used_core_hours = 2,
                                .used_gib_hours = 1};
    kopt_engine_backtest_t b = {.valid = true,
                                .windows = 3000,
                                .cpu_over_request_share = 0.2,
                                .memory_over_request_share = 3 / 3000.0,
                                .cpu_over_limit_share = 0.1,
                                .memory_over_limit_share = 1 / 3000.0,
                                .reserved_core_hours = 1,
                                .reserved_gib_hours = 0.5,
                                .used_core_hours = 0.5,
                                .used_gib_hours = 0.25};
    kopt_engine_backtest_t c = {.valid = false, .windows = 0};
    kopt_engine_backtest_t d = {.valid = true, .windows = 1000, .cpu_over_request_share = 0.10};

    adv_backtest_totals_add(t, &a, 2);
    adv_backtest_totals_add(t, &b, 0);
    adv_backtest_totals_add(t, &c, 5);
    adv_backtest_totals_add(t, &d, 1);
}

static void sums_weigh_windows_and_pods(void **state)
{
    adv_backtest_totals_t t;

    (void)state;
    adv_backtest_totals_init(&t, KOPT_STRATEGY_VPA);
    add_series(&t);
    assert_int_equal(t.strategy, KOPT_STRATEGY_VPA);
    assert_int_equal(t.series, 3);
    assert_int_equal(t.skipped, 1);
    assert_int_equal(t.windows, 5000);
    assert_float_equal(adv_backtest_share(&t, t.cpu_windows_over_request), 0.15, 1e-12);
    assert_float_equal(adv_backtest_share(&t, t.memory_windows_over_request), 0.0006, 1e-12);
    assert_float_equal(t.cpu_windows_over_limit, 310, 1e-9);
    assert_float_equal(t.memory_windows_over_limit, 1, 1e-9);
    assert_int_equal(t.series_memory_over_request, 1);
    assert_int_equal(t.series_cpu_over_request, 1);
    assert_float_equal(t.reserved_core_hours, 9, 1e-12);
    assert_float_equal(t.reserved_gib_hours, 4.5, 1e-12);
    assert_float_equal(t.used_core_hours, 4.5, 1e-12);
    assert_float_equal(t.used_gib_hours, 2.25, 1e-12);
}

static void nothing_scored_has_zero_shares(void **state)
{
    adv_backtest_totals_t t;
    kopt_engine_backtest_t c = {.valid = false};

    (void)state;
    adv_backtest_totals_init(&t, KOPT_STRATEGY_SIMPLE);
    adv_backtest_totals_add(&t, &c, 1);
    assert_int_equal(t.series, 0);
    assert_int_equal(t.skipped, 1);
    assert_float_equal(adv_backtest_share(&t, t.cpu_windows_over_request), 0, 0);
}

static void report(adv_backtest_totals_t t[2], adv_backtest_report_t *rep)
{
    adv_backtest_totals_init(&t[0], KOPT_STRATEGY_KOPT);
    adv_backtest_totals_init(&t[1], KOPT_STRATEGY_SIMPLE);
    add_series(&t[1]);
    /* 2024-01-01T00:00:00Z to eight days later. */
    *rep = (adv_backtest_report_t){.cluster = "prod",
                                   .namespace_ = NULL,
                                   .from = 1704067200,
                                   .to = 1704067200 + 8 * 86400,
                                   .containers = 4,
                                   .totals = t,
                                   .n = 2};
}

static char *printed(const adv_backtest_report_t *rep, bool json)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(f);
    assert_int_equal(json ? adv_backtest_print_json(f, rep) : adv_backtest_print_table(f, rep), 0);
    fclose(f);
    return out;
}

static void the_table_has_a_line_per_strategy(void **state)
{
    adv_backtest_totals_t t[2];
    adv_backtest_report_t rep;
    char *out;

    (void)state;
    report(t, &rep);
    out = printed(&rep, false);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "backtest of 4 series (cluster prod, namespace all), history "
                                "2024-01-01T00:00:00Z to 2024-01-09T00:00:00Z"));
    assert_non_null(strstr(out, "STRATEGY"));
    assert_non_null(strstr(out, "\nkopt          0       0       0.00       0.00    0.00%    "
                                "0.00%        0        0       0.00       0.00\n"));
    assert_non_null(strstr(out, "\nsimple        3       1       9.00       4.50   15.00%    "
                                "0.06%        1        1       4.50       2.25\n"));
    free(out);
}

static void the_json_carries_every_sum(void **state)
{
    adv_backtest_totals_t t[2];
    adv_backtest_report_t rep;
    json_error_t jerr;
    json_t *j, *s;
    char *out;

    (void)state;
    report(t, &rep);
    out = printed(&rep, true);
    j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "cluster")), "prod");
    assert_string_equal(json_string_value(json_object_get(j, "namespace")), "");
    assert_string_equal(json_string_value(json_object_get(j, "historyEnd")),
                        "2024-01-09T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(j, "series")), 4);
    assert_int_equal(json_array_size(json_object_get(j, "strategies")), 2);
    s = json_array_get(json_object_get(j, "strategies"), 1);
    assert_string_equal(json_string_value(json_object_get(s, "strategy")), "simple");
    assert_int_equal(json_integer_value(json_object_get(s, "series")), 3);
    assert_int_equal(json_integer_value(json_object_get(s, "skipped")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "windows")), 5000);
    assert_float_equal(json_real_value(json_object_get(s, "cpuOverRequestShare")), 0.15, 1e-12);
    assert_float_equal(json_real_value(json_object_get(s, "memoryOverRequestShare")), 0.0006,
                       1e-12);
    assert_float_equal(json_real_value(json_object_get(s, "cpuOverLimitShare")), 0.062, 1e-12);
    assert_float_equal(json_real_value(json_object_get(s, "memoryOverLimitShare")), 0.0002, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(s, "seriesMemoryOverRequest")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "seriesCpuOverRequest")), 1);
    assert_float_equal(json_real_value(json_object_get(s, "reservedCoreHours")), 9, 1e-12);
    assert_float_equal(json_real_value(json_object_get(s, "usedGibHours")), 2.25, 1e-12);
    json_decref(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_weigh_windows_and_pods),
        cmocka_unit_test(nothing_scored_has_zero_shares),
        cmocka_unit_test(the_table_has_a_line_per_strategy),
        cmocka_unit_test(the_json_carries_every_sum),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
