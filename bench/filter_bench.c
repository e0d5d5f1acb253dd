/* kopt-filter-bench: ListRecommendationsRequest.filter (advisor/filter.c)
 * over a snapshot of 100,000 recommendations, the pass api_list.c makes per
 * ListRecommendations call before it pages: adv_list_matches (api_list.c,
 * the very test the call makes) on each entry with the parsed filter.
 * Baseline: the same pass without a filter (the older request fields
 * only, all empty). Parsing is timed apart: it happens once
 * per call. docs/performance.md, "Advisor filter". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "advisor.h"
#include "bench_recs.h"
#include "filter.h"
#include "microbench.h"

#define N_RECS 100000

static const char usage[] = "Usage: kopt-filter-bench [--quick] [--seconds S]\n"
                            "Times one filtering pass over 100,000 recommendations.\n";

static const char filter3[] = "cluster = cluster-1 AND savings > 12.5 AND confidence >= 0.6";
static const char filter_or[] =
    "namespace = ns-3 OR namespace = ns-7 OR namespace = \"ns-11\" AND kind = Deployment";

typedef struct {
    const adv_results_t *res;
    const adv_filter_t *f;
    size_t matched;
} pass_t;

static int pass(void *arg, uint64_t i)
{
    static const Kopt__V1__ListRecommendationsRequest q =
        KOPT__V1__LIST_RECOMMENDATIONS_REQUEST__INIT; /* the older fields empty */
    pass_t *p = arg;
    size_t n = 0;

    (void)i;
    for (size_t k = 0; k < p->res->n; k++)
        n += adv_list_matches(p->res->by_savings[k], &q, p->f);
    p->matched = n;
    return n ? 0 : -ENOENT; /* a filter that matches nothing would measure nothing */
}

static int parse(void *arg, uint64_t i)
{
    adv_filter_t *f = NULL;
    char err[256];
    int r = adv_filter_parse(arg, &f, err, sizeof(err));

    (void)i;
    adv_filter_free(f);
    return r;
}

int main(int argc, char **argv)
{
    double seconds;
    int quick, rc = 1;
    size_t n;
    adv_results_t *res;
    adv_filter_t *f3 = NULL, *fo = NULL;
    char err[256] = "";
    pass_t p[3];
    mb_result_t out[5];

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    n = quick ? 5000 : N_RECS;
    if (!(res = bench_results(n))) {
        fprintf(stderr, "kopt-filter-bench: out of memory\n");
        return 1;
    }
    if (adv_filter_parse(filter3, &f3, err, sizeof(err)) < 0 ||
        adv_filter_parse(filter_or, &fo, err, sizeof(err)) < 0) {
        fprintf(stderr, "kopt-filter-bench: %s\n", err);
        goto out;
    }
    p[0] = (pass_t){res, NULL, 0};
    p[1] = (pass_t){res, f3, 0};
    p[2] = (pass_t){res, fo, 0};
    if (mb_run("no filter (baseline)", pass, &p[0], 1, seconds, &out[0]) < 0 ||
        mb_run("3 comparisons, AND", pass, &p[1], 1, seconds, &out[1]) < 0 ||
        mb_run("3-way OR AND kind", pass, &p[2], 1, seconds, &out[2]) < 0 ||
        mb_run("parse the 3-comparison filter", parse, (void *)filter3, 100, seconds, &out[3]) <
            0 ||
        mb_run("parse the OR filter", parse, (void *)filter_or, 100, seconds, &out[4]) < 0)
        goto out;
    for (size_t i = 0; i < 3; i++) {
        out[i].per_call_items = (double)n;
        out[i].item = "recs";
    }
    printf("snapshot: %zu recommendations\n", n);
    printf("filter \"%s\": %zu match\n", filter3, p[1].matched);
    printf("filter \"%s\": %zu match\n", filter_or, p[2].matched);
    mb_print("kopt-filter-bench: one filtering pass per call", out, 5, 0);
    rc = 0;
out:
    adv_filter_free(f3);
    adv_filter_free(fo);
    adv_results_release(res);
    return rc;
}
