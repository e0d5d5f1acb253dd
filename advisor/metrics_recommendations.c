/* The latest recommendations as Prometheus series, made at scrape time from
 * the in-memory snapshot (a reference taken and released, so the API is never
 * blocked and no copy is kept). docs/observability.md lists the families.
 *
 * The cap: --metrics-max-recommendation-series bounds the series of one
 * scrape. Workloads are taken whole (every series of their containers and
 * their savings), largest monthly savings first, while they fit; the series
 * of the workloads left out are added to
 * kopt_recommendation_series_dropped_total at each scrape. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "advisor.h"

struct adv_rec_metrics {
    adv_snapshot_t *store;
    uint64_t max_series;
    kopt_metric_family_t *cpu, *mem, *cpu_now, *mem_now, *confidence, *savings;
    kopt_metric_counter_t *dropped;
    kopt_metric_gauge_t *exported;
};

/* Series one workload adds: per container three CPU and three memory bounds,
 * the two current requests and the confidence; one savings series. */
static uint64_t workload_series(const Kopt__V1__Recommendation *rec)
{
    return 1 + 9 * (uint64_t)rec->n_containers;
}

static void emit_workload(adv_rec_metrics_t *rm, kopt_metrics_emitter_t *e, const adv_entry_t *en)
{
    const Kopt__V1__Recommendation *rec = en->rec;
    const char *kind = adv_kind_name(en->kind);
    const Kopt__V1__WorkloadSavings *sv = rec->savings;

    kopt_metrics_emit(e, rm->savings, sv ? sv->monthly_cost : 0.0, en->cluster, en->namespace_,
                      kind, en->name, sv && sv->currency ? sv->currency : "");
    for (size_t i = 0; i < rec->n_containers; i++) {
        const Kopt__V1__ContainerRecommendation *c = rec->containers[i];
        const char *cn = c->container ? c->container : "";
        const Kopt__V1__ResourceValues *now = c->current, *want = c->recommended;
        const Kopt__V1__ResourceBounds *b = c->bounds;

        kopt_metrics_emit(e, rm->cpu, want ? want->cpu_request_cores : 0.0, en->cluster,
                          en->namespace_, kind, en->name, cn, "target");
        kopt_metrics_emit(e, rm->cpu, b ? b->cpu_lower_cores : 0.0, en->cluster, en->namespace_,
                          kind, en->name, cn, "lower");
        kopt_metrics_emit(e, rm->cpu, b ? b->cpu_upper_cores : 0.0, en->cluster, en->namespace_,
                          kind, en->name, cn, "upper");
        kopt_metrics_emit(e, rm->mem, want ? (double)want->memory_request_bytes : 0.0, en->cluster,
                          en->namespace_, kind, en->name, cn, "target");
        kopt_metrics_emit(e, rm->mem, b ? (double)b->memory_lower_bytes : 0.0, en->cluster,
                          en->namespace_, kind, en->name, cn, "lower");
        kopt_metrics_emit(e, rm->mem, b ? (double)b->memory_upper_bytes : 0.0, en->cluster,
                          en->namespace_, kind, en->name, cn, "upper");
        kopt_metrics_emit(e, rm->cpu_now, now ? now->cpu_request_cores : 0.0, en->cluster,
                          en->namespace_, kind, en->name, cn);
        kopt_metrics_emit(e, rm->mem_now, now ? (double)now->memory_request_bytes : 0.0,
                          en->cluster, en->namespace_, kind, en->name, cn);
        kopt_metrics_emit(e, rm->confidence, c->confidence, en->cluster, en->namespace_, kind,
                          en->name, cn);
    }
}

static void collect(void *data, kopt_metrics_emitter_t *e)
{
    adv_rec_metrics_t *rm = data;
    adv_results_t *res = adv_snapshot_acquire(rm->store);
    uint64_t used = 0, dropped = 0;
    bool full = false;

    for (size_t i = 0; i < res->n; i++) {
        const adv_entry_t *en = res->by_savings[i];
        uint64_t n = workload_series(en->rec);

        if (!full && used + n <= rm->max_series) {
            emit_workload(rm, e, en);
            used += n;
        } else {
            full = true; /* keep the largest savings: nothing after the first miss */
            dropped += n;
        }
    }
    adv_results_release(res);
    kopt_metric_gauge_set(rm->exported, (double)used);
    kopt_metric_counter_add(rm->dropped, (double)dropped);
}

int adv_rec_metrics_register(kopt_metrics_t *m, adv_snapshot_t *store, uint64_t max_series,
                             adv_rec_metrics_t **out)
{
    static const char *const w = "cluster,namespace,kind,workload";
    static const char *const c = "cluster,namespace,kind,workload,container";
    static const char *const cb = "cluster,namespace,kind,workload,container,bound";
    adv_rec_metrics_t *rm = calloc(1, sizeof(*rm));
    kopt_metric_family_t *f;
    int r;

    if (!rm)
        return -ENOMEM;
    rm->store = store;
    rm->max_series = max_series;
    r = kopt_metrics_gauge_collected(m, "kopt_recommendation_cpu_request_cores",
                                     "Recommended CPU request of a container in cores: bound is "
                                     "target (the recommendation), lower or upper.",
                                     cb, &rm->cpu);
    r = r ? r
          : kopt_metrics_gauge_collected(m, "kopt_recommendation_memory_request_bytes",
                                         "Recommended memory request of a container in bytes: "
                                         "bound is target (the recommendation), lower or upper.",
                                         cb, &rm->mem);
    r = r ? r
          : kopt_metrics_gauge_collected(m, "kopt_workload_cpu_request_cores",
                                         "CPU request of a container in force when the latest "
                                         "analysis ran, in cores (0: none).",
                                         c, &rm->cpu_now);
    r = r ? r
          : kopt_metrics_gauge_collected(m, "kopt_workload_memory_request_bytes",
                                         "Memory request of a container in force when the latest "
                                         "analysis ran, in bytes (0: none).",
                                         c, &rm->mem_now);
    r = r ? r
          : kopt_metrics_gauge_collected(m, "kopt_recommendation_confidence",
                                         "How much history backs a container's recommendation, "
                                         "0 to 1.",
                                         c, &rm->confidence);
    if (r == 0) {
        char labels[64];

        snprintf(labels, sizeof(labels), "%s,currency", w);
        r = kopt_metrics_gauge_collected(m, "kopt_recommendation_savings_monthly",
                                         "Monthly cost of the requests a workload's recommendation "
                                         "frees, in currency (negative: it costs more).",
                                         labels, &rm->savings);
    }
    r = r ? r
          : kopt_metrics_counter(m, "kopt_recommendation_series_dropped_total",
                                 "Recommendation series left out of scrapes by "
                                 "--metrics-max-recommendation-series, summed over scrapes.",
                                 NULL, &f);
    if (r == 0) {
        rm->dropped = kopt_metric_counter_with(f);
        r = kopt_metrics_gauge(m, "kopt_recommendation_series",
                               "Recommendation series in the last scrape.", NULL, &f);
    }
    if (r == 0) {
        rm->exported = kopt_metric_gauge_with(f);
        r = kopt_metrics_add_collector(m, collect, rm);
    }
    if (r < 0) {
        free(rm);
        return r;
    }
    *out = rm;
    return 0;
}

void adv_rec_metrics_free(adv_rec_metrics_t *rm)
{
    free(rm);
}
