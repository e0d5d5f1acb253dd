/* The filter's view of each entry, made once with the snapshot
 * (results.c), equals the one built from the entry's message
 * (adv_entry_filter_item): savings, the lowest container confidence (none:
 * 0), idle, in whatever order the snapshot sorts them; entries of one
 * cluster and namespace share those strings; and adv_list_matches, the
 * list's test, reads the view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "advisor.h"

typedef struct {
    const char *cluster, *namespace_, *name;
    int kind;
    double savings, cpu, conf[3];
    int64_t mem;
    size_t n_containers;
    bool idle;
} spec_t;

static const spec_t specs[] = {
    {"prod", "shop", "web", 1, 42.5, 0.5, {0.9, 0.4, 0}, 1 << 30, 2, false},
    {"dev", "tools", "ci", 2, -3, -0.25, {0.7, 0, 0}, -(1 << 20), 1, true},
    {"prod", "shop", "api", 1, 120, 2, {0.6, 0.8, 0.3}, 3LL << 30, 3, false},
    {"prod", "pay", "ledger", 2, 7, 0.1, {0}, 0, 0, false},
    {"dev", "tools", "bot", 3, 0, 0, {1, 0, 0}, 0, 1, true},
};
#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

/* An owned Recommendation, unpacked from its encoding as analysis.c's are. */
static Kopt__V1__Recommendation *make_rec(const spec_t *s)
{
    Kopt__V1__Recommendation rec = KOPT__V1__RECOMMENDATION__INIT, *out;
    Kopt__V1__WorkloadRef ref = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__WorkloadSavings sav = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    Kopt__V1__ContainerRecommendation c[3], *cp[3] = {&c[0], &c[1], &c[2]};
    uint8_t buf[2048];
    size_t len;

    ref.cluster = (char *)s->cluster;
    ref.namespace_ = (char *)s->namespace_;
    ref.name = (char *)s->name;
    ref.kind = (Kopt__V1__WorkloadKind)s->kind;
    sav.monthly_cost = s->savings;
    sav.cpu_cores = s->cpu;
    sav.memory_bytes = s->mem;
    rec.workload = &ref;
    rec.savings = &sav;
    rec.idle = s->idle;
    for (size_t i = 0; i < s->n_containers; i++) {
        kopt__v1__container_recommendation__init(&c[i]);
        c[i].container = "c";
        c[i].confidence = s->conf[i];
    }
    rec.n_containers = s->n_containers;
    rec.containers = cp;
    len = kopt__v1__recommendation__get_packed_size(&rec);
    assert_true(len <= sizeof(buf));
    kopt__v1__recommendation__pack(&rec, buf);
    out = kopt__v1__recommendation__unpack(NULL, len, buf);
    assert_non_null(out);
    return out;
}

static adv_results_t *snapshot(void)
{
    Kopt__V1__Recommendation **recs = calloc(N_SPECS, sizeof(*recs));
    kopt_engine_prices_t prices = {
        .cpu_core_hour = 0.03, .memory_gib_hour = 0.004, .hours_per_month = 730, .currency = "USD"};
    adv_results_t *r;

    assert_non_null(recs);
    for (size_t i = 0; i < N_SPECS; i++)
        recs[i] = make_rec(&specs[i]);
    r = adv_results_new(recs, N_SPECS, NULL, 0, &prices);
    assert_non_null(r);
    assert_int_equal(r->n, N_SPECS);
    return r;
}

static void view_equals_the_message(void **state)
{
    adv_results_t *r = snapshot();

    (void)state;
    for (size_t i = 0; i < r->n; i++) {
        const adv_entry_t *e = &r->e[i];
        adv_filter_item_t want;

        adv_entry_filter_item(e, &want);
        assert_string_equal(e->filter.cluster, want.cluster);
        assert_string_equal(e->filter.namespace_, want.namespace_);
        assert_string_equal(e->filter.name, want.name);
        assert_int_equal(e->filter.kind, want.kind);
        assert_true(e->filter.savings == want.savings);
        assert_true(e->filter.cpu_savings == want.cpu_savings);
        assert_true(e->filter.memory_savings == want.memory_savings);
        assert_true(e->filter.confidence == want.confidence);
        assert_int_equal(e->filter.idle, want.idle);
        /* The expected values, from the specs themselves. */
        for (size_t k = 0; k < N_SPECS; k++) {
            double lowest = specs[k].n_containers ? 1 : 0;

            if (strcmp(specs[k].name, e->name) != 0)
                continue;
            for (size_t c = 0; c < specs[k].n_containers; c++)
                lowest = specs[k].conf[c] < lowest ? specs[k].conf[c] : lowest;
            assert_true(e->filter.confidence == lowest);
            assert_true(e->filter.memory_savings == (double)specs[k].mem);
            assert_int_equal(e->filter.idle, specs[k].idle);
        }
    }
    adv_results_release(r);
}

static void equal_strings_are_shared(void **state)
{
    adv_results_t *r = snapshot();
    const adv_entry_t *web = adv_results_find(r, "prod", "shop", 1, "web");
    const adv_entry_t *api = adv_results_find(r, "prod", "shop", 1, "api");
    const adv_entry_t *ledger = adv_results_find(r, "prod", "pay", 2, "ledger");

    (void)state;
    assert_non_null(web);
    assert_non_null(api);
    assert_non_null(ledger);
    assert_ptr_equal(web->filter.cluster, api->filter.cluster);
    assert_ptr_equal(web->filter.namespace_, api->filter.namespace_);
    assert_ptr_equal(ledger->filter.cluster, web->filter.cluster);
    assert_string_equal(ledger->filter.namespace_, "pay");
    adv_results_release(r);
}

static void list_matches_reads_the_view(void **state)
{
    Kopt__V1__ListRecommendationsRequest q = KOPT__V1__LIST_RECOMMENDATIONS_REQUEST__INIT;
    adv_results_t *r = snapshot();
    adv_filter_t *f = NULL;
    char err[256];
    size_t n = 0;

    (void)state;
    assert_int_equal(adv_filter_parse("cluster = prod AND confidence < 0.5", &f, err, sizeof(err)),
                     0);
    for (size_t i = 0; i < r->n; i++)
        n += adv_list_matches(&r->e[i], &q, f);
    assert_int_equal(n, 3); /* web (0.4), api (0.3), ledger (no containers: 0) */
    q.idle_only = true;
    q.cluster = "dev";
    n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += adv_list_matches(&r->e[i], &q, NULL);
    assert_int_equal(n, 2);
    adv_filter_free(f);
    adv_results_release(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(view_equals_the_message),
        cmocka_unit_test(equal_strings_are_shared),
        cmocka_unit_test(list_matches_reads_the_view),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
