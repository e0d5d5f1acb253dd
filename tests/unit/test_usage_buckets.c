/* The shared bucket scheme: bounds, edges and the open last bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include <kopt/usage_buckets.h>

static void cpu_buckets_follow_the_scheme(void **state)
{
    (void)state;
    assert_int_equal(kopt_cpu_bucket(0), 0);
    assert_int_equal(kopt_cpu_bucket(-1), 0);
    assert_int_equal(kopt_cpu_bucket(NAN), 0);
    assert_int_equal(kopt_cpu_bucket(0.0009), 0);
    assert_int_equal(kopt_cpu_bucket(0.001), 1);
    assert_int_equal(kopt_cpu_bucket(0.001049), 1);
    assert_int_equal(kopt_cpu_bucket(1e9), KOPT_CPU_BUCKETS - 1);
    for (int i = 1; i < KOPT_CPU_BUCKETS - 1; i++) {
        double mid = (kopt_cpu_bucket_lower(i) + kopt_cpu_bucket_upper(i)) / 2;
        assert_int_equal(kopt_cpu_bucket(mid), i);
        assert_int_equal(kopt_cpu_bucket(kopt_cpu_bucket_lower(i)), i);
    }
}

static void memory_buckets_follow_the_scheme(void **state)
{
    (void)state;
    assert_int_equal(kopt_memory_bucket(1048575), 0);
    assert_int_equal(kopt_memory_bucket(1048576), 1);
    assert_true(fabs(kopt_memory_bucket_upper(1) - 1048576 * 1.05) < 1e-6);
    /* 1 GiB is 1024 MiB: bucket 1 + floor(log(1024) / log(1.05)) = 143. */
    assert_int_equal(kopt_memory_bucket(1073741824.0), 143);
    assert_int_equal(kopt_memory_bucket(1e18), KOPT_MEMORY_BUCKETS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_buckets_follow_the_scheme),
        cmocka_unit_test(memory_buckets_follow_the_scheme),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
