/* What the engine's files share and the public header does not offer. */
#ifndef KOPT_ENGINE_INTERNAL_H
#define KOPT_ENGINE_INTERNAL_H

#include <kopt/engine.h>

/* An hour the analysis at `now` reads: in [now - lookback, now), with data. */
static inline bool kopt_engine_in_lookback(const kopt_engine_hour_t *h, int64_t now,
                                           int64_t lookback_s)
{
    return h->windows > 0 && h->start < now && (lookback_s <= 0 || h->start >= now - lookback_s);
}

/* Seconds an hour's windows cover, all pods (windows x 60 when unknown). */
static inline double kopt_engine_hour_covered_s(const kopt_engine_hour_t *h)
{
    return h->covered_s > 0 ? h->covered_s : 60.0 * (double)h->windows;
}

/* The analysis up to the recommended requests and limits (history,
 * estimate, low-confidence hold, min/max, rounding, limits, OOM flag):
 * what kopt_engine_analyze_container and the backtest share. */
int kopt_engine_recommend(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                          size_t containers_per_pod, int64_t now, kopt_engine_result_t *out);

/* kopt's CPU fit (engine_kopt_cpu.c): the request, the share of time at
 * or below it, the time one step more would have covered, and bounds at
 * the options' lower/upper percentiles (before the confidence widening). */
typedef struct {
    double request, percentile, next_share;
    double lower, upper;
} kopt_cpu_fit_t;

void kopt_engine_fit_cpu(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                         int64_t now, kopt_cpu_fit_t *out);

/* kopt's memory fit (engine_kopt_memory.c): the daily-peak level at the
 * request percentile, the headroom added to it, the bounds' peak levels
 * and how many days had a peak. */
typedef struct {
    double basis, headroom;
    double lower, upper;
    unsigned days;
} kopt_memory_fit_t;

void kopt_engine_fit_memory(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                            const kopt_engine_history_t *hist, int64_t now, kopt_memory_fit_t *out);

#endif
