/* Which ingest address an agent starts at (agent_transport_home): the same
 * for the same id, always inside the list, and a fleet of agents spreads
 * over the addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include <uv.h>

#include "transport.h"

static void stable_and_in_range(void **state)
{
    (void)state;
    assert_int_equal(agent_transport_home("node-a", 0), 0);
    assert_int_equal(agent_transport_home("node-a", 1), 0);
    assert_int_equal(agent_transport_home(NULL, 3), agent_transport_home("", 3));
    for (size_t n = 1; n <= 7; n++)
        assert_true(agent_transport_home("prod/node-a", n) < n);
    assert_int_equal(agent_transport_home("prod/node-a", 5),
                     agent_transport_home("prod/node-a", 5));
}

/* 1,000 node names over 2 and 3 addresses: each address gets its fair
 * share within 20 %, so none is left out or crowded. */
static void fleet_spreads(void **state)
{
    (void)state;
    for (size_t n = 2; n <= 3; n++) {
        size_t count[3] = {0};
        char id[64];

        for (int i = 0; i < 1000; i++) {
            snprintf(id, sizeof(id), "prod/ip-10-0-%d-%d.ec2.internal", i / 200, i % 200);
            count[agent_transport_home(id, n)]++;
        }
        for (size_t k = 0; k < n; k++) {
            print_message("%zu addresses: address %zu gets %zu of 1000 agents\n", n, k, count[k]);
            assert_true(count[k] > 1000 / n * 8 / 10);
            assert_true(count[k] < 1000 / n * 12 / 10);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stable_and_in_range),
        cmocka_unit_test(fleet_spreads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
