/* Unit tests for libkopt/backoff.c: growth, cap, jitter bounds, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <kopt/backoff.h>

static void backoff_grows_doubling_within_jitter_bounds(void **state)
{
    kopt_backoff_t b;
    uint64_t expect = 100;

    (void)state;
    kopt_backoff_init(&b, 100, 10000, 42);
    for (int i = 0; i < 20; i++) {
        uint64_t d = kopt_backoff_next(&b);
        assert_in_range(d, expect - expect / 2, expect);
        expect = expect * 2 > 10000 ? 10000 : expect * 2;
    }
}

static void backoff_caps_and_never_overflows(void **state)
{
    kopt_backoff_t b;

    (void)state;
    kopt_backoff_init(&b, 1000, UINT64_MAX / 3, 7);
    b.attempt = UINT32_MAX; /* a very long outage */
    assert_in_range(kopt_backoff_next(&b), UINT64_MAX / 6, UINT64_MAX / 3);
    assert_int_equal(b.attempt, UINT32_MAX);
}

static void backoff_reset_starts_over(void **state)
{
    kopt_backoff_t b;

    (void)state;
    kopt_backoff_init(&b, 200, 5000, 1);
    for (int i = 0; i < 6; i++)
        kopt_backoff_next(&b);
    kopt_backoff_reset(&b);
    assert_in_range(kopt_backoff_next(&b), 100, 200);
}

static void backoff_jitter_spreads_a_herd(void **state)
{
    uint64_t seen_low = 0, seen_high = 0;

    (void)state;
    /* 1000 agents restarting together: delays must not all coincide. */
    for (uint64_t seed = 1; seed <= 1000; seed++) {
        kopt_backoff_t b;
        kopt_backoff_init(&b, 1000, 1000, seed * 0x9e3779b97f4a7c15ULL);
        uint64_t d = kopt_backoff_next(&b);
        seen_low += d < 750;
        seen_high += d >= 750;
    }
    assert_in_range(seen_low, 350, 650);
    assert_in_range(seen_high, 350, 650);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_grows_doubling_within_jitter_bounds),
        cmocka_unit_test(backoff_caps_and_never_overflows),
        cmocka_unit_test(backoff_reset_starts_over),
        cmocka_unit_test(backoff_jitter_spreads_a_herd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
