/* kopt-recmetrics-bench: one /metrics scrape of the advisor
 * (kopt_metrics_expose, which runs the kopt_recommendation_* collector of
 * metrics_recommendations.c) at 1k, 10k (the default cap) and 100k
 * recommendation series, and with 100k workloads' worth held back by the
 * default cap. Baseline: the same registry with only the process and HTTP
 * families every daemon exposes. The advisor renders a scrape on its loop
 * thread, so the time per scrape is time no API call is served.
 * docs/performance.md, "Advisor /metrics". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "advisor.h"
#include "bench_recs.h"
#include "microbench.h"

#define SERIES_PER_WORKLOAD 19 /* 1 savings + 9 per container, 2 containers */
#define DEFAULT_CAP 10000

static const char usage[] =
    "Usage: kopt-recmetrics-bench [--quick] [--seconds S]\n"
    "Times one /metrics scrape at 1k, 10k and 100k recommendation series.\n";

typedef struct {
    kopt_metrics_t *m;
    adv_snapshot_t *store;
    adv_rec_metrics_t *rm;
    size_t bytes;
} scrape_t;

static int scrape(void *arg, uint64_t i)
{
    scrape_t *s = arg;
    char *text = NULL;
    size_t len = 0;
    int r = kopt_metrics_expose(s->m, &text, &len);

    (void)i;
    free(text);
    s->bytes = len;
    return r < 0 ? r : 0;
}

/* The families of every daemon, as the admin server and the HTTP servers
 * register them, with the samples a running advisor has: 6 handlers. */
static int base_families(kopt_metrics_t *m)
{
    static const char *const handlers[] = {"list", "get", "usage", "summary", "clusters", "web"};
    kopt_metric_family_t *req, *dur;
    size_t nb;
    const double *b = kopt_metrics_latency_buckets(&nb);
    int r = kopt_metrics_process_register(m, "advisor");

    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_http_requests_total", "HTTP requests answered.",
                                 "handler,code", &req);
    if (r == 0)
        r = kopt_metrics_histogram(m, "kopt_http_request_duration_seconds",
                                   "Time from a complete request to its response, in seconds.",
                                   "handler", b, nb, &dur);
    for (size_t i = 0; r == 0 && i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        kopt_metric_counter_inc(kopt_metric_counter_with(req, handlers[i], "200"));
        kopt_metric_counter_inc(kopt_metric_counter_with(req, handlers[i], "401"));
        kopt_metric_histogram_observe(kopt_metric_histogram_with(dur, handlers[i]), 0.0004);
    }
    return r;
}

/* A registry like the advisor's with `workloads` in the snapshot and the
 * collector capped at `cap` series (0: baseline, no collector). */
static int make(scrape_t *s, size_t workloads, uint64_t cap)
{
    adv_results_t *res;
    int r;

    *s = (scrape_t){0};
    r = kopt_metrics_new(&s->m);
    if (r == 0)
        r = base_families(s->m);
    if (r < 0 || cap == 0)
        return r;
    r = adv_snapshot_new(&s->store);
    if (r == 0)
        r = adv_rec_metrics_register(s->m, s->store, cap, &s->rm);
    if (r < 0)
        return r;
    if (!(res = bench_results(workloads)))
        return -ENOMEM;
    adv_snapshot_swap(s->store, res);
    return 0;
}

static void drop(scrape_t *s)
{
    kopt_metrics_free(s->m);
    adv_rec_metrics_free(s->rm);
    adv_snapshot_free(s->store);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        size_t workloads;
        uint64_t cap;
    } cases[] = {
        {"process + http families (baseline)", 0, 0},
        {"1k series (53 workloads)", 1000 / SERIES_PER_WORKLOAD, 1000},
        {"10k series (526 workloads)", 10000 / SERIES_PER_WORKLOAD, DEFAULT_CAP},
        {"100k series (5263 workloads)", 100000 / SERIES_PER_WORKLOAD, 100000},
        {"100k workloads, cap 10k", 100000, DEFAULT_CAP},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    mb_result_t res[N];
    double seconds;
    int quick;

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    for (size_t i = 0; i < N; i++) {
        scrape_t s;
        /* --quick keeps the shapes but not 100k workloads (ASan is slow). */
        size_t w = quick && cases[i].workloads > 10000 ? 10000 : cases[i].workloads;
        int r = make(&s, w, cases[i].cap);

        if (r == 0)
            r = mb_run(cases[i].name, scrape, &s, 1, seconds, &res[i]);
        if (r < 0) {
            fprintf(stderr, "kopt-recmetrics-bench: %s: error %d\n", cases[i].name, r);
            drop(&s);
            return 1;
        }
        res[i].per_call_items = (double)s.bytes;
        res[i].item = "B";
        printf("%-36s %zu bytes of text per scrape\n", cases[i].name, s.bytes);
        drop(&s);
    }
    mb_print("kopt-recmetrics-bench: one /metrics scrape (kopt_metrics_expose)", res, N, 0);
    return 0;
}
