/* Workload and node facts: one row per key, the newest observation wins
 * whatever the order batches arrive in, and rows are encoded in the column
 * order the INSERT names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "facts.h"

typedef struct {
    Kopt__V1__MetricBatch m;
    Google__Protobuf__Timestamp created;
    Kopt__V1__NodeFacts node;
    Kopt__V1__WorkloadFacts wl[2];
    Kopt__V1__WorkloadFacts *wlp[2];
    Kopt__V1__HpaFacts hpa;
    char *metrics[2];
} batch_t;

static void make_batch(batch_t *b, const char *node, int64_t created, uint32_t hpa_target)
{
    memset(b, 0, sizeof(*b));
    kopt__v1__metric_batch__init(&b->m);
    google__protobuf__timestamp__init(&b->created);
    kopt__v1__node_facts__init(&b->node);
    kopt__v1__hpa_facts__init(&b->hpa);
    b->created.seconds = created;
    b->m.cluster = "prod";
    b->m.node = (char *)node;
    b->m.created = &b->created;
    b->node.cpu_allocatable_cores = 3.5;
    b->node.memory_allocatable_bytes = 8ULL << 30;
    b->m.node_facts = &b->node;
    for (int i = 0; i < 2; i++) {
        kopt__v1__workload_facts__init(&b->wl[i]);
        b->wl[i].namespace_ = "shop";
        b->wl[i].kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
        b->wl[i].replicas = 3;
        b->wlp[i] = &b->wl[i];
    }
    b->wl[0].name = "web";
    b->wl[1].name = "api";
    b->hpa.name = "web";
    b->hpa.min_replicas = 2;
    b->hpa.max_replicas = 10;
    b->hpa.target_cpu_utilization_percent = hpa_target;
    b->metrics[0] = "cpu";
    b->metrics[1] = "requests_per_second";
    b->hpa.metric_names = b->metrics;
    b->hpa.n_metric_names = 2;
    b->wl[0].hpa = &b->hpa;
    b->m.workloads = b->wlp;
    b->m.n_workloads = 2;
}

static void one_row_per_key_newest_wins(void **state)
{
    agg_facts_t f;
    batch_t a, b, c;

    (void)state;
    agg_facts_init(&f);
    make_batch(&a, "node-1", 1700000060, 70);
    make_batch(&b, "node-2", 1700000120, 80); /* newest */
    make_batch(&c, "node-3", 1700000000, 60); /* arrives last, oldest */
    assert_int_equal(agg_facts_add_batch(&f, &a.m), 0);
    assert_int_equal(agg_facts_add_batch(&f, &b.m), 0);
    assert_int_equal(agg_facts_add_batch(&f, &c.m), 0);
    /* web and api once each; three nodes. */
    assert_int_equal(f.workloads.used, 2);
    assert_int_equal(f.nodes.used, 3);
    assert_int_equal(agg_facts_count(&f), 5);
    /* The row kept for web carries the HPA target of the newest batch (80),
     * as the little-endian UInt32 after min and max replicas. */
    {
        kopt_ch_buf_t want;
        size_t key_len;
        bool found = false;

        kopt_ch_buf_init(&want);
        assert_int_equal(agg_rowbinary_workload_facts(&want, &b.m, &b.wl[0], &key_len), 0);
        for (size_t i = 0; i + want.len <= f.workloads.rows.len; i++)
            if (memcmp(f.workloads.rows.data + i, want.data, want.len) == 0)
                found = true;
        assert_true(found);
        kopt_ch_buf_free(&want);
    }
    agg_facts_clear(&f);
    assert_int_equal(agg_facts_count(&f), 0);
    assert_int_equal(f.workloads.rows.len, 0);
    agg_facts_free(&f);
}

static void many_keys_grow_the_table(void **state)
{
    static char names[500][16];
    agg_facts_t f = {0};
    batch_t a;

    (void)state;
    make_batch(&a, "node-1", 1700000000, 70);
    for (int i = 0; i < 500; i++) {
        snprintf(names[i], sizeof(names[i]), "w%d", i);
        a.wl[0].name = names[i];
        a.wl[1].name = names[i]; /* the same key twice in one batch */
        assert_int_equal(agg_facts_add_batch(&f, &a.m), 0);
    }
    assert_int_equal(f.workloads.used, 500);
    assert_int_equal(f.nodes.used, 1);
    assert_true(f.workloads.cap >= 1000);
    agg_facts_free(&f);
}

static void no_created_time_no_facts(void **state)
{
    agg_facts_t f = {0};
    batch_t a;

    (void)state;
    make_batch(&a, "node-1", 1700000000, 70);
    a.m.created = NULL;
    assert_int_equal(agg_facts_add_batch(&f, &a.m), 0);
    assert_int_equal(agg_facts_count(&f), 0);
    a.m.created = &a.created;
    a.m.node_facts = NULL;
    a.m.n_workloads = 0;
    assert_int_equal(agg_facts_add_batch(&f, &a.m), 0);
    assert_int_equal(agg_facts_count(&f), 0);
    agg_facts_free(&f);
}

static void node_row_layout(void **state)
{
    kopt_ch_buf_t b = {0};
    size_t key_len = 0;
    batch_t a;
    double alloc;

    (void)state;
    make_batch(&a, "n1", 1700000000, 70);
    assert_int_equal(agg_rowbinary_node_facts(&b, &a.m, &key_len), 0);
    /* "prod" "n1": 1+4 + 1+2 bytes of key, then observed_at, then the two
     * CPU figures (capacity 0, allocatable 3.5). */
    assert_int_equal(key_len, 8);
    assert_memory_equal(b.data, "\x04prod\x02n1", 8);
    assert_memory_equal(b.data + 8, "\x00\xf1\x53\x65", 4);
    memcpy(&alloc, b.data + 12 + 8, sizeof(alloc));
    assert_true(alloc == 3.5);
    a.m.node_facts = NULL;
    b.len = 0;
    assert_int_equal(agg_rowbinary_node_facts(&b, &a.m, &key_len), -EINVAL);
    assert_int_equal(b.len, 0);
    kopt_ch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_row_per_key_newest_wins),
        cmocka_unit_test(many_keys_grow_the_table),
        cmocka_unit_test(no_created_time_no_facts),
        cmocka_unit_test(node_row_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
