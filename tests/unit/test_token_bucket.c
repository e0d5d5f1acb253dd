/* Unit tests for libkopt/token_bucket.c, with a simulated clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>

#include <kopt/token_bucket.h>

#define SEC 1000000000ULL

static void bucket_allows_burst_then_refuses_with_hint(void **state)
{
    kopt_token_bucket_t tb;
    uint64_t retry = 0;

    (void)state;
    kopt_token_bucket_init(&tb, 10, 5, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(kopt_token_bucket_take(&tb, 1, 0, &retry), 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 1, 0, &retry), -EAGAIN);
    /* One token at 10/s comes after 100 ms. */
    assert_in_range(retry, SEC / 10, SEC / 10 + 1000);
    assert_int_equal(kopt_token_bucket_take(&tb, 1, SEC / 10 + 1000, &retry), 0);
}

static void bucket_sustains_its_rate_exactly(void **state)
{
    kopt_token_bucket_t tb;
    int passed = 0;

    (void)state;
    kopt_token_bucket_init(&tb, 1000, 100, 0);
    /* 10 s of offers every 100 us (10,000/s): 1000/s pass, plus the burst. */
    for (uint64_t t = 0; t <= 10 * SEC; t += SEC / 10000)
        passed += kopt_token_bucket_take(&tb, 1, t, NULL) == 0;
    assert_in_range(passed, 10000 + 100 - 2, 10000 + 100 + 1);
}

static void bucket_refuses_more_than_burst_and_unlimited_passes(void **state)
{
    kopt_token_bucket_t tb;

    (void)state;
    kopt_token_bucket_init(&tb, 1e6, 1e6, 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 2e6, 0, NULL), -E2BIG);
    kopt_token_bucket_init(&tb, 0, 0, 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 1e12, 0, NULL), 0);
}

static void bucket_reconfigure_keeps_earned_tokens_within_burst(void **state)
{
    kopt_token_bucket_t tb;

    (void)state;
    kopt_token_bucket_init(&tb, 10, 100, 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 100, 0, NULL), 0);
    kopt_token_bucket_set(&tb, 100, 20, SEC); /* earned 10 at the old rate */
    assert_int_equal(kopt_token_bucket_take(&tb, 10, SEC, NULL), 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 1, SEC, NULL), -EAGAIN);
    assert_int_equal(kopt_token_bucket_take(&tb, 20, 2 * SEC, NULL), 0);
}

static void bucket_ignores_a_clock_that_goes_back(void **state)
{
    kopt_token_bucket_t tb;

    (void)state;
    kopt_token_bucket_init(&tb, 1, 1, 5 * SEC);
    assert_int_equal(kopt_token_bucket_take(&tb, 1, 5 * SEC, NULL), 0);
    assert_int_equal(kopt_token_bucket_take(&tb, 1, 1 * SEC, NULL), -EAGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_allows_burst_then_refuses_with_hint),
        cmocka_unit_test(bucket_sustains_its_rate_exactly),
        cmocka_unit_test(bucket_refuses_more_than_burst_and_unlimited_passes),
        cmocka_unit_test(bucket_reconfigure_keeps_earned_tokens_within_burst),
        cmocka_unit_test(bucket_ignores_a_clock_that_goes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
