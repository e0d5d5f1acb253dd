/* The lease's decision and timing (libkopt/lease_state.c): create when
 * nobody holds it, renew our own, leave another replica's alone; the
 * keeper's period against the TTL. The NATS side is in the integration
 * tests tests/integration/test_replicas.c (the advisor's analyses) and
 * test_schedule_lease.c (the aggregator's archive and backup). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kopt/lease.h>

static void decide(void **state)
{
    (void)state;
    assert_int_equal(kopt_lease_decide(NULL, "a/1"), KOPT_LEASE_CREATE); /* absent or expired */
    assert_int_equal(kopt_lease_decide("", "a/1"), KOPT_LEASE_CREATE);   /* deleted on release */
    assert_int_equal(kopt_lease_decide("a/1", "a/1"), KOPT_LEASE_RENEW);
    assert_int_equal(kopt_lease_decide("b/1", "a/1"), KOPT_LEASE_ELSEWHERE);
    assert_int_equal(kopt_lease_decide("a/10", "a/1"), KOPT_LEASE_ELSEWHERE); /* no prefix match */
}

static void period(void **state)
{
    (void)state;
    assert_int_equal(kopt_lease_period_ms(120000), 5000); /* new results within seconds */
    assert_int_equal(kopt_lease_period_ms(3000), 1000);   /* three renewals per TTL */
    assert_int_equal(kopt_lease_period_ms(1000), 333);
    assert_int_equal(kopt_lease_period_ms(0), 100);
}

static void self_id(void **state)
{
    char id[KOPT_LEASE_HOLDER_MAX], want[32];

    (void)state;
    kopt_lease_self_id(id, sizeof(id));
    snprintf(want, sizeof(want), "/%ld", (long)getpid());
    assert_true(strlen(id) > strlen(want));
    assert_string_equal(id + strlen(id) - strlen(want), want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decide),
        cmocka_unit_test(period),
        cmocka_unit_test(self_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
