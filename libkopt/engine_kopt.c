/* The kopt strategy: decaying histograms (half-life from the options) of
 * per-window CPU means weighted by usage and of per-window memory peaks;
 * request = percentile x (1 + margin); bounds at other percentiles widened
 * by the confidence model; memory never below the usage at an OOM kill
 * times the bump. */
#include "engine_internal.h"

#include <math.h>

/* d: days of history, counting a day only when its windows cover a day
 * per pod (so three pods seen for a day are one day, as one pod is), and
 * whatever the agents' window length. */
static double history_days(const kopt_engine_history_t *hist)
{
    double pods = hist->mean_pods > 1 ? hist->mean_pods : 1;
    double by_time = hist->covered_s / (86400.0 * pods);

    return by_time < hist->lifespan_days ? by_time : hist->lifespan_days;
}

static void widen(kopt_confidence_model_t model, double d, double *lower, double *upper)
{
    if (model != KOPT_CONFIDENCE_VPA || !(d > 0))
        return;
    *upper *= 1.0 + 1.0 / d;
    *lower *= pow(1.0 + 0.001 / d, -2.0);
}

void kopt_engine_estimate_kopt(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                               const kopt_engine_history_t *hist, int64_t now,
                               kopt_engine_estimate_t *est)
{
    kopt_dhist_t cpu, mem;
    double mid[KOPT_CPU_BUCKETS] = {0}; /* bucket middles, computed once each */
    double m = 1.0 + opts->safety_margin;
    size_t i, j;

    kopt_dhist_init(&cpu, KOPT_DHIST_CPU, opts->half_life_s);
    kopt_dhist_init(&mem, KOPT_DHIST_MEMORY, opts->half_life_s);
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];

        if (!kopt_engine_in_lookback(h, now, opts->lookback_s))
            continue;
        for (j = 0; j < h->cpu_hist_len; j++) {
            int b = h->cpu_hist[j].index < KOPT_CPU_BUCKETS ? h->cpu_hist[j].index
                                                            : KOPT_CPU_BUCKETS - 1;
            double w;

            /* A window's weight is its usage (the bucket's middle), so the
             * percentile is one of CPU time, not of minutes. */
            if (mid[b] == 0)
                mid[b] = (kopt_cpu_bucket_lower(b) + kopt_cpu_bucket_upper(b)) / 2;
            w = mid[b] > opts->cpu_min_weight ? mid[b] : opts->cpu_min_weight;

            kopt_dhist_add(&cpu, b, (double)h->cpu_hist[j].count * w, h->start);
        }
        for (j = 0; j < h->mem_hist_len; j++)
            kopt_dhist_add(&mem, h->mem_hist[j].index, h->mem_hist[j].count, h->start);
    }
    est->cpu_percentile = opts->cpu_percentile;
    est->memory_percentile = opts->memory_percentile;
    est->cpu_target = kopt_dhist_percentile(&cpu, opts->cpu_percentile) * m;
    est->cpu_lower = kopt_dhist_percentile(&cpu, opts->cpu_lower_percentile) * m;
    est->cpu_upper = kopt_dhist_percentile(&cpu, opts->cpu_upper_percentile) * m;
    est->memory_target = kopt_dhist_percentile(&mem, opts->memory_percentile) * m;
    est->memory_lower = kopt_dhist_percentile(&mem, opts->memory_lower_percentile) * m;
    est->memory_upper = kopt_dhist_percentile(&mem, opts->memory_upper_percentile) * m;
    est->history_days = history_days(hist);
    widen(opts->confidence, est->history_days, &est->cpu_lower, &est->cpu_upper);
    widen(opts->confidence, est->history_days, &est->memory_lower, &est->memory_upper);

    est->oom_floor_bytes = 0;
    est->oom_bumped = false;
    if (hist->oom_kills > 0) {
        est->oom_floor_bytes = hist->oom_max_usage_bytes * opts->oom_bump;
        if (est->oom_floor_bytes > est->memory_target) {
            est->memory_target = est->oom_floor_bytes;
            est->oom_bumped = true;
        }
        if (est->memory_upper < est->memory_target)
            est->memory_upper = est->memory_target;
    }
    /* Percentiles are monotone, so only a narrow lower percentile option
     * can put a bound on the wrong side. */
    if (est->cpu_lower > est->cpu_target)
        est->cpu_lower = est->cpu_target;
    if (est->cpu_upper < est->cpu_target)
        est->cpu_upper = est->cpu_target;
    if (est->memory_lower > est->memory_target)
        est->memory_lower = est->memory_target;
    if (est->memory_upper < est->memory_target)
        est->memory_upper = est->memory_target;
}
