/* ingest/rate_limit.c, on a simulated clock: each agent's batch and byte
 * buckets (bursts, refills, retry hints, a too-big batch, a refusal that
 * costs nothing), reconfiguration, and the bounded table: an agent in use is
 * never evicted, one not seen for long is forgotten and starts full again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "rate_limit.h"

#define SEC 1000000000ULL
#define MS (SEC / 1000)

static ingest_rate_limit_t *limiter(double batches_per_s, double batch_burst, double bytes_per_s,
                                    double byte_burst, size_t max_agents)
{
    ingest_rate_limit_opts_t o = {batches_per_s, batch_burst, bytes_per_s, byte_burst, max_agents};
    ingest_rate_limit_t *rl = NULL;

    assert_int_equal(ingest_rate_limit_new(&o, &rl), 0);
    assert_non_null(rl);
    return rl;
}

static int take(ingest_rate_limit_t *rl, const char *agent, size_t bytes, uint64_t now)
{
    uint64_t retry = 0;

    return ingest_rate_limit_take(rl, agent, bytes, now, &retry);
}

static void rate_limit_burst_then_refusal_with_retry(void **state)
{
    ingest_rate_limit_t *rl = limiter(10, 5, 0, 0, 64);
    uint64_t retry = 0;

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(ingest_rate_limit_take(rl, "c/a", 100, 0, &retry), 0);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 100, 0, &retry), -EAGAIN);
    /* One batch at 10/s comes back after 100 ms (the hint rounds up by 1 ns). */
    assert_in_range(retry, 100 * MS, 100 * MS + 1000);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 100, 100 * MS - 1000, &retry), -EAGAIN);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 100, 100 * MS + 1000, &retry), 0);
    ingest_rate_limit_free(rl);
}

static void rate_limit_bytes_refill_at_their_rate(void **state)
{
    ingest_rate_limit_t *rl = limiter(0, 0, 1000, 4000, 64); /* batches unlimited */
    uint64_t retry = 0;

    (void)state;
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 3000, 0, &retry), 0);
    /* 1000 left, 2000 asked: 1000 more bytes at 1000/s is one second. */
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 2000, 0, &retry), -EAGAIN);
    assert_in_range(retry, SEC, SEC + 1000);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 2000, SEC / 2, &retry), -EAGAIN);
    assert_in_range(retry, SEC / 2, SEC / 2 + 1000);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 2000, SEC + 1000, &retry), 0);
    ingest_rate_limit_free(rl);
}

static void rate_limit_sustains_the_batch_rate(void **state)
{
    ingest_rate_limit_t *rl = limiter(100, 10, 0, 0, 64);
    int passed = 0;

    (void)state;
    /* 10 s of offers every millisecond: 100/s pass, plus the burst of 10. */
    for (uint64_t t = 0; t <= 10 * SEC; t += MS)
        passed += take(rl, "c/a", 1, t) == 0;
    assert_in_range(passed, 1000 + 10 - 1, 1000 + 10 + 1);
    ingest_rate_limit_free(rl);
}

static void rate_limit_batch_over_the_byte_burst_never_passes(void **state)
{
    ingest_rate_limit_t *rl = limiter(1e-9, 1, 1e6, 1000, 64); /* one batch, ever */

    (void)state;
    assert_int_equal(take(rl, "c/a", 1001, 0), -E2BIG);
    assert_int_equal(take(rl, "c/a", 1001, 1000 * SEC), -E2BIG);
    /* Refusals cost no batch: the agent's only one is still there. */
    assert_int_equal(take(rl, "c/a", 1000, 1000 * SEC), 0);
    assert_int_equal(take(rl, "c/a", 1, 1000 * SEC), -EAGAIN);
    ingest_rate_limit_free(rl);
}

static void rate_limit_byte_refusal_gives_the_batch_back(void **state)
{
    ingest_rate_limit_t *rl = limiter(1, 2, 100, 100, 64);
    uint64_t retry = 0;

    (void)state;
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 100, 0, &retry), 0); /* 1 batch, 0 bytes */
    /* Every retry is refused by the byte bucket (50 bytes at 100/s: 0.5 s);
     * were the batch kept, the second would wait for the batch bucket (1 s). */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ingest_rate_limit_take(rl, "c/a", 50, 0, &retry), -EAGAIN);
        assert_in_range(retry, SEC / 2, SEC / 2 + 1000);
    }
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 50, SEC / 2 + 1000, &retry), 0);
    /* 1.5 batches were there, 0.5 are left: the next one waits 0.5 s. */
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 0, SEC / 2 + 1000, &retry), -EAGAIN);
    assert_in_range(retry, SEC / 2 - 1000, SEC / 2 + 1000);
    ingest_rate_limit_free(rl);
}

static void rate_limit_each_agent_has_its_own_buckets(void **state)
{
    ingest_rate_limit_t *rl = limiter(1, 3, 0, 0, 64);

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "c1/a", 1, 0), 0);
    assert_int_equal(take(rl, "c1/a", 1, 0), -EAGAIN);
    /* The same agent id in another cluster is another agent. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(take(rl, "c2/a", 1, 0), 0);
        assert_int_equal(take(rl, "c1/b", 1, 0), 0);
    }
    assert_int_equal(take(rl, "c2/a", 1, 0), -EAGAIN);
    assert_int_equal(take(rl, "c1/a", 1, 0), -EAGAIN);
    ingest_rate_limit_free(rl);
}

static void rate_limit_zero_rates_are_unlimited(void **state)
{
    ingest_rate_limit_t *rl = limiter(0, 0, 0, 0, 64);

    (void)state;
    for (int i = 0; i < 10000; i++)
        assert_int_equal(take(rl, "c/a", (size_t)1 << 40, 0), 0);
    ingest_rate_limit_free(rl);
}

static void rate_limit_set_keeps_earned_tokens_and_applies_to_new_agents(void **state)
{
    ingest_rate_limit_opts_t faster = {100, 5, 0, 0, 64};
    ingest_rate_limit_t *rl = limiter(1, 10, 0, 0, 64);
    uint64_t retry = 0;

    (void)state;
    for (int i = 0; i < 10; i++)
        assert_int_equal(take(rl, "c/a", 1, 0), 0);
    /* Two seconds at the old 1/s earned 2 batches; the new rate counts
     * from the reload on. */
    ingest_rate_limit_set(rl, &faster, 2 * SEC);
    assert_int_equal(take(rl, "c/a", 1, 2 * SEC), 0);
    assert_int_equal(take(rl, "c/a", 1, 2 * SEC), 0);
    assert_int_equal(ingest_rate_limit_take(rl, "c/a", 1, 2 * SEC, &retry), -EAGAIN);
    assert_in_range(retry, 10 * MS, 10 * MS + 1000); /* one batch at 100/s */
    /* A new agent starts with the new burst, 5 and no more. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(take(rl, "c/new", 1, 2 * SEC), 0);
    assert_int_equal(take(rl, "c/new", 1, 2 * SEC), -EAGAIN);
    /* A smaller burst caps what an idle agent had saved. */
    assert_int_equal(take(rl, "c/idle", 1, 2 * SEC), 0); /* 4 left */
    faster.batch_burst = 2;
    ingest_rate_limit_set(rl, &faster, 3 * SEC);
    assert_int_equal(take(rl, "c/idle", 1, 3 * SEC), 0);
    assert_int_equal(take(rl, "c/idle", 1, 3 * SEC), 0);
    assert_int_equal(take(rl, "c/idle", 1, 3 * SEC), -EAGAIN);
    ingest_rate_limit_free(rl);
}

/* The table holds 64 agents (max_agents rounds up to a power of two, at
 * least 64). A drained agent is refused; a forgotten one starts full. */
static void rate_limit_agent_in_use_is_never_evicted(void **state)
{
    ingest_rate_limit_t *rl = limiter(1e-9, 3, 0, 0, 64); /* 3 batches, no refill */
    char agent[32];
    uint64_t t = 0;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "c/hot", 1, t++), 0);
    /* 2000 new agents through a 64-slot table. The hot agent is seen before
     * each one, so it is the most recent of any slots a newcomer probes and
     * never the one reused: it stays drained. Were it evicted once, it would
     * come back with a full bucket and pass. */
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(take(rl, "c/hot", 1, t++), -EAGAIN);
        snprintf(agent, sizeof(agent), "c/churn-%d", i);
        assert_int_equal(take(rl, agent, 1, t++), 0);
    }
    ingest_rate_limit_free(rl);
}

static void rate_limit_forgets_agents_not_seen_for_long(void **state)
{
    ingest_rate_limit_t *rl = limiter(1e-9, 1, 0, 0, 64);
    char agent[32];
    uint64_t t = 0;
    int forgotten = 0;

    (void)state;
    for (int i = 0; i < 64; i++) {
        snprintf(agent, sizeof(agent), "c/old-%d", i);
        assert_int_equal(take(rl, agent, 1, t++), 0);
        assert_int_equal(take(rl, agent, 1, t++), -EAGAIN);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(agent, sizeof(agent), "c/churn-%d", i);
        assert_int_equal(take(rl, agent, 1, t++), 0);
    }
    /* The old agents are the least recently seen of all: with 2000
     * newcomers in 64 slots each was reused, and starts full again. */
    for (int i = 0; i < 64; i++) {
        snprintf(agent, sizeof(agent), "c/old-%d", i);
        forgotten += take(rl, agent, 1, t++) == 0;
    }
    assert_int_equal(forgotten, 64);
    ingest_rate_limit_free(rl);
}

static void rate_limit_remembers_every_agent_while_there_is_room(void **state)
{
    ingest_rate_limit_t *rl = limiter(1e-9, 1, 0, 0, 1000); /* 1024 slots */
    char agent[32];
    uint64_t t = 0;

    (void)state;
    /* 200 agents fill a fifth of the table: probes of 16 slots always find
     * a free one, so nobody is evicted and every agent stays drained. */
    for (int i = 0; i < 200; i++) {
        snprintf(agent, sizeof(agent), "c/agent-%d", i);
        assert_int_equal(take(rl, agent, 1, t++), 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(agent, sizeof(agent), "c/agent-%d", i);
        assert_int_equal(take(rl, agent, 1, t++), -EAGAIN);
    }
    ingest_rate_limit_free(rl);
}

static void rate_limit_free_null_is_a_noop(void **state)
{
    (void)state;
    ingest_rate_limit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rate_limit_burst_then_refusal_with_retry),
        cmocka_unit_test(rate_limit_bytes_refill_at_their_rate),
        cmocka_unit_test(rate_limit_sustains_the_batch_rate),
        cmocka_unit_test(rate_limit_batch_over_the_byte_burst_never_passes),
        cmocka_unit_test(rate_limit_byte_refusal_gives_the_batch_back),
        cmocka_unit_test(rate_limit_each_agent_has_its_own_buckets),
        cmocka_unit_test(rate_limit_zero_rates_are_unlimited),
        cmocka_unit_test(rate_limit_set_keeps_earned_tokens_and_applies_to_new_agents),
        cmocka_unit_test(rate_limit_agent_in_use_is_never_evicted),
        cmocka_unit_test(rate_limit_forgets_agents_not_seen_for_long),
        cmocka_unit_test(rate_limit_remembers_every_agent_while_there_is_room),
        cmocka_unit_test(rate_limit_free_null_is_a_noop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
