/* advisor/results.c: a snapshot sorts its workloads by cluster, namespace,
 * kind and name (lookups by bsearch), keeps the savings and newest-first
 * orders with name order breaking ties, sums each cluster (replicas times
 * requests, costs, idle, the latest analysis), lists clusters known only from
 * container_windows, drops what analysis.c never makes, copies what lies
 * outside a scope, and is shared by reference through the store. Sums are
 * worked out in the comments; ASan checks ownership (run the unit suite in
 * build-asan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "assert_near.h"

#define GIB (1024.0 * 1024 * 1024)
#define DEPLOYMENT KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT
#define STATEFUL_SET KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET

typedef struct {
    double cpu, mem_gib; /* requests; 0 for both: no such message */
} res_t;

typedef struct {
    const char *cluster, *namespace_, *name;
    int kind;
    double savings;
    int64_t generated_at;
    double replicas;
    bool idle;
    const char *analysis_id;
    res_t current[2], recommended[2]; /* up to two containers; cpu 0: none */
} spec_t;

static Kopt__V1__ResourceValues *resources(const res_t *r, Kopt__V1__ResourceValues *m)
{
    if (r->cpu == 0 && r->mem_gib == 0)
        return NULL;
    kopt__v1__resource_values__init(m);
    m->cpu_request_cores = r->cpu;
    m->memory_request_bytes = (uint64_t)(r->mem_gib * GIB);
    return m;
}

/* An owned Recommendation (unpacked, as analysis.c hands them over). */
static Kopt__V1__Recommendation *make_rec(const spec_t *s)
{
    Kopt__V1__Recommendation rec = KOPT__V1__RECOMMENDATION__INIT, *out;
    Kopt__V1__WorkloadRef ref = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__WorkloadSavings sav = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    Google__Protobuf__Timestamp gen = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Kopt__V1__ContainerRecommendation c[2], *cp[2] = {&c[0], &c[1]};
    Kopt__V1__ResourceValues cur[2], nr[2];
    uint8_t buf[4096];
    size_t len;

    ref.cluster = (char *)s->cluster;
    ref.namespace_ = (char *)s->namespace_;
    ref.name = (char *)s->name;
    ref.kind = (Kopt__V1__WorkloadKind)s->kind;
    sav.monthly_cost = s->savings;
    gen.seconds = s->generated_at;
    rec.workload = &ref;
    rec.savings = &sav;
    rec.generated_at = s->generated_at ? &gen : NULL;
    rec.replicas = s->replicas;
    rec.idle = s->idle;
    rec.analysis_id = (char *)(s->analysis_id ? s->analysis_id : "");
    for (size_t i = 0; i < 2; i++) {
        if (!resources(&s->current[i], &cur[i]) && !resources(&s->recommended[i], &nr[i]))
            break;
        kopt__v1__container_recommendation__init(&c[i]);
        c[i].container = i ? "sidecar" : "app";
        c[i].current = resources(&s->current[i], &cur[i]);
        c[i].recommended = resources(&s->recommended[i], &nr[i]);
        rec.n_containers = i + 1;
    }
    rec.containers = cp;
    len = kopt__v1__recommendation__get_packed_size(&rec);
    assert_true(len <= sizeof(buf));
    kopt__v1__recommendation__pack(&rec, buf);
    out = kopt__v1__recommendation__unpack(NULL, len, buf);
    assert_non_null(out);
    return out;
}

/* A snapshot of specs (the recs array is taken by adv_results_new). */
static adv_results_t *snapshot(const spec_t *specs, size_t n, const adv_cluster_info_t *ci,
                               size_t n_ci)
{
    static const kopt_engine_prices_t prices = {0.04, 0.005, 730, "USD"};
    Kopt__V1__Recommendation **recs = malloc((n ? n : 1) * sizeof(*recs));
    adv_results_t *r;

    assert_non_null(recs);
    for (size_t i = 0; i < n; i++)
        recs[i] = make_rec(&specs[i]);
    r = adv_results_new(recs, n, ci, n_ci, &prices);
    assert_non_null(r);
    return r;
}

static const spec_t shuffled[] = {
    {"prod", "web", "api", DEPLOYMENT, 5, 3000, 1, false, "a2", {{1, 1}}, {{0.5, 1}}},
    {"dev", "web", "api", DEPLOYMENT, 5, 1000, 1, false, "a1", {{1, 1}}, {{0.5, 1}}},
    {"prod", "db", "pg", STATEFUL_SET, 20, 2000, 1, false, "a2", {{4, 8}}, {{2, 8}}},
    {"prod", "web", "api", STATEFUL_SET, -3, 3000, 1, false, "a2", {{1, 1}}, {{2, 1}}},
    {"prod", "web", "admin", DEPLOYMENT, 5, 4000, 1, false, "a2", {{1, 1}}, {{0.5, 1}}},
};

static void results_sorted_for_lookups(void **state)
{
    adv_results_t *r = snapshot(shuffled, 5, NULL, 0);
    const char *want[][3] = {{"dev", "web", "api"},
                             {"prod", "db", "pg"},
                             {"prod", "web", "admin"},
                             {"prod", "web", "api"},
                             {"prod", "web", "api"}};

    (void)state;
    assert_int_equal(r->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(r->e[i].cluster, want[i][0]);
        assert_string_equal(r->e[i].namespace_, want[i][1]);
        assert_string_equal(r->e[i].name, want[i][2]);
    }
    /* Kind orders before name: same name, Deployment (1) then StatefulSet (2). */
    assert_int_equal(r->e[3].kind, DEPLOYMENT);
    assert_int_equal(r->e[4].kind, STATEFUL_SET);
    assert_ptr_equal(adv_results_find(r, "prod", "web", STATEFUL_SET, "api"), &r->e[4]);
    assert_ptr_equal(adv_results_find(r, "prod", "web", DEPLOYMENT, "api"), &r->e[3]);
    assert_ptr_equal(adv_results_find(r, "dev", "web", DEPLOYMENT, "api"), &r->e[0]);
    assert_ptr_equal(adv_results_find(r, "prod", "db", STATEFUL_SET, "pg"), &r->e[1]);
    assert_null(adv_results_find(r, "prod", "db", DEPLOYMENT, "pg"));
    assert_null(adv_results_find(r, "prod", "web", DEPLOYMENT, "apis"));
    assert_null(adv_results_find(r, "staging", "web", DEPLOYMENT, "api"));
    /* Each entry is encoded once, and points into its own message. */
    for (size_t i = 0; i < r->n; i++) {
        assert_ptr_equal(r->e[i].name, r->e[i].rec->workload->name);
        assert_non_null(r->e[i].basic_json.data);
        assert_true(r->e[i].basic_json.len > 0);
        assert_non_null(r->e[i].basic_pb.data);
        assert_true(r->e[i].basic_pb.len > 0);
    }
    adv_results_release(r);
}

static void results_other_orders_break_ties_by_name(void **state)
{
    adv_results_t *r = snapshot(shuffled, 5, NULL, 0);

    (void)state;
    /* Savings, largest first: pg 20; then the three at 5 in name order
     * (dev/api, prod/admin, prod/api); -3 last. */
    assert_ptr_equal(r->by_savings[0], &r->e[1]);
    assert_ptr_equal(r->by_savings[1], &r->e[0]);
    assert_ptr_equal(r->by_savings[2], &r->e[2]);
    assert_ptr_equal(r->by_savings[3], &r->e[3]);
    assert_ptr_equal(r->by_savings[4], &r->e[4]);
    /* Newest first: admin 4000; both prod/web/api at 3000 in name order
     * (Deployment, StatefulSet); pg 2000; dev 1000. */
    assert_ptr_equal(r->by_generated[0], &r->e[2]);
    assert_ptr_equal(r->by_generated[1], &r->e[3]);
    assert_ptr_equal(r->by_generated[2], &r->e[4]);
    assert_ptr_equal(r->by_generated[3], &r->e[1]);
    assert_ptr_equal(r->by_generated[4], &r->e[0]);
    adv_results_release(r);
}

static void results_cluster_totals(void **state)
{
    /* Prices: 0.04 a core-hour, 0.005 a GiB-hour, 730 hours a month. */
    const spec_t specs[] = {
        /* 2 replicas of (1 core, 2 GiB) -> (0.5, 1): requested 2 cores and
         * 4 GiB, (0.08 + 0.02) x 730 = 73; recommended 1 core and 2 GiB,
         * (0.04 + 0.01) x 730 = 36.5. */
        {"c1", "ns", "w1", DEPLOYMENT, 36.5, 1000, 2, false, "an-1", {{1, 2}}, {{0.5, 1}}},
        /* Replicas 0 counts as 1; two containers of (0.25, 1) -> (0.125,
         * 0.5): requested 0.5 cores and 2 GiB, (0.02 + 0.01) x 730 = 21.9;
         * recommended 0.25 and 1 GiB, 10.95. Idle, and the newest. */
        {"c1",
         "ns",
         "w2",
         DEPLOYMENT,
         10.95,
         2000,
         0,
         true,
         "an-2",
         {{0.25, 1}, {0.25, 1}},
         {{0.125, 0.5}, {0.125, 0.5}}},
        /* No recommendation for the container yet: only the request counts. */
        {"c2", "ns", "w3", DEPLOYMENT, 0, 500, 1, false, "an-0", {{1, 1}}, {{0, 0}}},
    };
    adv_results_t *r = snapshot(specs, 3, NULL, 0);
    const adv_cluster_t *c1, *c2;

    (void)state;
    assert_int_equal(r->n_clusters, 2);
    c1 = adv_results_cluster(r, "c1");
    c2 = adv_results_cluster(r, "c2");
    assert_non_null(c1);
    assert_non_null(c2);
    assert_null(adv_results_cluster(r, "c3"));
    assert_int_equal(c1->workloads, 2);
    assert_int_equal(c1->idle, 1);
    assert_near(c1->req_cpu, 2.5, 1e-9);
    assert_near(c1->rec_cpu, 1.25, 1e-9);
    assert_near(c1->req_mem, 6 * GIB, 1);
    assert_near(c1->rec_mem, 3 * GIB, 1);
    assert_near(c1->req_cost, 73 + 21.9, 1e-9);
    assert_near(c1->rec_cost, 36.5 + 10.95, 1e-9);
    assert_int_equal(c1->last_analysis, 2000);
    assert_string_equal(c1->analysis_id, "an-2");
    assert_int_equal(c1->nodes, 0); /* no cluster info given */
    assert_int_equal(c2->workloads, 1);
    assert_near(c2->req_cpu, 1, 1e-9);
    assert_near(c2->rec_cpu, 0, 1e-9);
    assert_near(c2->req_cost, (0.04 + 0.005) * 730, 1e-9);
    assert_near(c2->rec_cost, 0, 1e-9);
    assert_string_equal(c2->analysis_id, "an-0");
    adv_results_release(r);
}

static void results_list_clusters_seen_without_recommendations(void **state)
{
    const spec_t specs[] = {
        {"mid", "ns", "w", DEPLOYMENT, 1, 100, 1, false, "a", {{1, 1}}, {{1, 1}}},
    };
    adv_cluster_info_t ci[] = {
        {"zeta", 3, 900, 12, (uint64_t)(48 * GIB)},
        {"mid", 5, 800, 20, (uint64_t)(64 * GIB)},
        {"alpha", 1, 700, 0, 0},
    };
    adv_results_t *r = snapshot(specs, 1, ci, 3);
    const adv_cluster_t *mid;

    (void)state;
    /* Sorted by name, so adv_results_cluster's bsearch finds each. */
    assert_int_equal(r->n_clusters, 3);
    assert_string_equal(r->clusters[0].name, "alpha");
    assert_string_equal(r->clusters[1].name, "mid");
    assert_string_equal(r->clusters[2].name, "zeta");
    mid = adv_results_cluster(r, "mid");
    assert_ptr_equal(mid, &r->clusters[1]);
    assert_int_equal(mid->workloads, 1);
    assert_int_equal(mid->nodes, 5);
    assert_int_equal(mid->last_seen, 800);
    assert_near(mid->alloc_cpu, 20, 0);
    assert_near(mid->alloc_mem, 64 * GIB, 0);
    assert_int_equal(adv_results_cluster(r, "zeta")->nodes, 3);
    assert_int_equal(adv_results_cluster(r, "zeta")->workloads, 0);
    assert_int_equal(adv_results_cluster(r, "alpha")->last_seen, 700);
    /* Copied: the infos may go away. */
    assert_ptr_not_equal(adv_results_cluster(r, "zeta")->name, ci[0].cluster);
    adv_results_release(r);
}

static void results_drop_what_analysis_never_makes(void **state)
{
    const spec_t ok = {"c", "ns", "kept", DEPLOYMENT, 1, 1, 1, false, "a", {{1, 1}}, {{1, 1}}};
    Kopt__V1__Recommendation **recs = malloc(3 * sizeof(*recs));
    adv_results_t *r;

    (void)state;
    assert_non_null(recs);
    recs[0] = make_rec(&ok);
    recs[1] = make_rec(&ok);
    recs[2] = make_rec(&ok);
    /* No workload, no savings: freed by adv_results_new (ASan sees a leak
     * otherwise). */
    protobuf_c_message_free_unpacked(&recs[1]->workload->base, NULL);
    recs[1]->workload = NULL;
    protobuf_c_message_free_unpacked(&recs[2]->savings->base, NULL);
    recs[2]->savings = NULL;
    r = adv_results_new(recs, 3, NULL, 0, &(kopt_engine_prices_t){0, 0, 730, "USD"});
    assert_non_null(r);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->e[0].name, "kept");
    assert_int_equal(r->n_clusters, 1);
    adv_results_release(r);
}

static void results_copy_what_lies_outside_a_scope(void **state)
{
    adv_results_t *r = snapshot(shuffled, 5, NULL, 0);
    Kopt__V1__Recommendation **recs = NULL;
    size_t n = 0;

    (void)state;
    /* No cluster: everything is inside, nothing is copied. */
    assert_int_equal(adv_results_keep_outside(r, NULL, NULL, &recs, &n), 0);
    assert_int_equal(adv_results_keep_outside(r, "", "web", &recs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(recs);
    /* Outside prod/web: dev/web/api and prod/db/pg, in snapshot order. */
    assert_int_equal(adv_results_keep_outside(r, "prod", "web", &recs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0]->workload->cluster, "dev");
    assert_string_equal(recs[1]->workload->name, "pg");
    /* Outside prod (namespace "" is the whole cluster): appended. */
    assert_int_equal(adv_results_keep_outside(r, "prod", "", &recs, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(recs[2]->workload->cluster, "dev");
    /* Deep copies: they outlive the snapshot and are freed on their own. */
    assert_ptr_not_equal(recs[0], r->e[0].rec);
    adv_results_release(r);
    assert_string_equal(recs[1]->workload->namespace_, "db");
    assert_near(recs[1]->savings->monthly_cost, 20, 0);
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&recs[i]->base, NULL);
    free(recs);
}

static void store_readers_keep_their_snapshot_across_a_swap(void **state)
{
    adv_snapshot_t *s = NULL;
    adv_results_t *before, *next, *after;

    (void)state;
    assert_int_equal(adv_snapshot_new(&s), 0);
    before = adv_snapshot_acquire(s); /* the empty one a new store starts with */
    assert_int_equal(before->n, 0);
    assert_int_equal(before->n_clusters, 0);
    assert_null(adv_results_find(before, "c", "ns", DEPLOYMENT, "w"));
    assert_null(adv_results_cluster(before, "c"));
    assert_int_equal(atomic_load(&before->refs), 2); /* the store's and ours */

    next = snapshot(shuffled, 5, NULL, 0);
    adv_snapshot_swap(s, next);
    /* The old snapshot is ours alone now, and still whole. */
    assert_int_equal(atomic_load(&before->refs), 1);
    assert_int_equal(before->n, 0);
    after = adv_snapshot_acquire(s);
    assert_ptr_equal(after, next);
    assert_int_equal(atomic_load(&after->refs), 2);
    adv_results_release(before); /* the last reference: freed */
    adv_results_release(after);
    assert_int_equal(atomic_load(&next->refs), 1);
    adv_snapshot_free(s); /* frees next */
    adv_snapshot_free(NULL);
    adv_results_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(results_sorted_for_lookups),
        cmocka_unit_test(results_other_orders_break_ties_by_name),
        cmocka_unit_test(results_cluster_totals),
        cmocka_unit_test(results_list_clusters_seen_without_recommendations),
        cmocka_unit_test(results_drop_what_analysis_never_makes),
        cmocka_unit_test(results_copy_what_lies_outside_a_scope),
        cmocka_unit_test(store_readers_keep_their_snapshot_across_a_swap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
