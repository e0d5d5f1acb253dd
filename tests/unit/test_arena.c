/* The decode arena: alignment, large allocations, reset and reuse, and a
 * real protobuf-c unpack through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <kopt/arena.h>

#include "kopt/v1/metrics.pb-c.h"


static void allocations_are_aligned_and_distinct(void **state)
{
    kopt_arena_t a;
    char *p, *q, *big;

    (void)state;
    kopt_arena_init(&a, 256);
    p = kopt_arena_alloc(&a, 3);
    q = kopt_arena_alloc(&a, 40);
    assert_true(((uintptr_t)p & 15) == 0 && ((uintptr_t)q & 15) == 0);
    assert_true(q >= p + 16);
    big = kopt_arena_alloc(&a, 10000); /* larger than a chunk: its own */
    assert_non_null(big);
    memset(big, 1, 10000);
    memset(p, 2, 3);
    assert_int_equal(big[9999], 1);
    kopt_arena_reset(&a);
    /* The first regular chunk is kept and handed out again. */
    assert_ptr_equal(kopt_arena_alloc(&a, 3), p);
    kopt_arena_free(&a);
}


static void protobuf_unpacks_into_the_arena(void **state)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT, *out;
    Kopt__V1__ContainerWindow w = KOPT__V1__CONTAINER_WINDOW__INIT, *ws[1] = {&w};
    uint8_t buf[256];
    size_t len;
    kopt_arena_t a;

    (void)state;
    b.cluster = "prod";
    b.seq = 9;
    w.pod = "web-1";
    b.n_windows = 1;
    b.windows = ws;
    len = kopt__v1__metric_batch__pack(&b, buf);
    kopt_arena_init(&a, 0);
    for (int i = 0; i < 3; i++) {
        out = kopt__v1__metric_batch__unpack(&a.allocator, len, buf);
        assert_non_null(out);
        assert_string_equal(out->cluster, "prod");
        assert_string_equal(out->windows[0]->pod, "web-1");
        kopt__v1__metric_batch__free_unpacked(out, &a.allocator); /* a no-op */
        kopt_arena_reset(&a);
    }
    kopt_arena_free(&a);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocations_are_aligned_and_distinct),
        cmocka_unit_test(protobuf_unpacks_into_the_arena),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
