/* ingest/stream_slots.c: per-identity stream counts against a cap, slots
 * given back, identities forgotten when their last stream ends, and many
 * identities at once (the table grows) with every count still exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "stream_slots.h"

static void slots_capped_per_identity(void **state)
{
    ingest_stream_slots_t *sl = NULL;

    (void)state;
    assert_int_equal(ingest_stream_slots_new(&sl), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ingest_stream_slots_take(sl, "local/a", 4), 0);
    assert_int_equal(ingest_stream_slots_take(sl, "local/a", 4), -EBUSY);
    /* Another identity is not affected; nor is "a" in another cluster. */
    assert_int_equal(ingest_stream_slots_take(sl, "local/b", 4), 0);
    assert_int_equal(ingest_stream_slots_take(sl, "other/a", 4), 0);
    assert_int_equal(ingest_stream_slots_held(sl, "local/a"), 4);
    /* One ends: one more may open. */
    ingest_stream_slots_put(sl, "local/a");
    assert_int_equal(ingest_stream_slots_held(sl, "local/a"), 3);
    assert_int_equal(ingest_stream_slots_take(sl, "local/a", 4), 0);
    assert_int_equal(ingest_stream_slots_take(sl, "local/a", 4), -EBUSY);
    for (int i = 0; i < 4; i++)
        ingest_stream_slots_put(sl, "local/a");
    assert_int_equal(ingest_stream_slots_held(sl, "local/a"), 0);
    ingest_stream_slots_put(sl, "local/a"); /* not held: ignored */
    assert_int_equal(ingest_stream_slots_held(sl, "local/a"), 0);
    assert_int_equal(ingest_stream_slots_take(sl, "local/c", 0), -EBUSY);
    ingest_stream_slots_free(sl);
    ingest_stream_slots_free(NULL);
}

static void slots_exact_for_many_identities(void **state)
{
    enum { N = 5000 };
    ingest_stream_slots_t *sl = NULL;
    char key[64];

    (void)state;
    assert_int_equal(ingest_stream_slots_new(&sl), 0);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "c/agent-%d", i);
            assert_int_equal(ingest_stream_slots_take(sl, key, 2), 0);
        }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "c/agent-%d", i);
        assert_int_equal(ingest_stream_slots_held(sl, key), 2);
        assert_int_equal(ingest_stream_slots_take(sl, key, 2), -EBUSY);
        if (i % 2)
            ingest_stream_slots_put(sl, key);
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "c/agent-%d", i);
        assert_int_equal(ingest_stream_slots_held(sl, key), i % 2 ? 1 : 2);
    }
    ingest_stream_slots_free(sl); /* frees what is still held */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slots_capped_per_identity),
        cmocka_unit_test(slots_exact_for_many_identities),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
