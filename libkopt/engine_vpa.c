/* The vpa strategy: the Kubernetes VPA recommender's algorithm with its
 * default constants (pkg/recommender/logic, pkg/recommender/model), fed
 * from kopt's hourly rollups. Constants and the differences that the
 * rollups force are listed in docs/engine.md. */
#include "engine_internal.h"

#include <math.h>

#define VPA_HALF_LIFE_S 86400.0   /* CPU and memory histogram decay */
#define VPA_MIN_SAMPLE_WEIGHT 0.1 /* cores */
#define VPA_TARGET_CPU 0.90
#define VPA_LOWER_CPU 0.50
#define VPA_UPPER_CPU 0.95
#define VPA_TARGET_MEMORY 0.90 /* of daily peaks */
#define VPA_LOWER_MEMORY 0.50
#define VPA_UPPER_MEMORY 0.95
#define VPA_MARGIN 0.15
#define VPA_POD_MIN_CPU 0.025          /* cores (25 millicores) */
#define VPA_POD_MIN_MEMORY 262144000.0 /* bytes (250 MiB) */
#define VPA_OOM_BUMP 1.2
#define VPA_OOM_MIN_BUMP 104857600.0 /* bytes (100 MiB) */
#define VPA_MEMORY_INTERVAL 86400    /* one peak a day */
#define VPA_MAX_DAYS 64              /* older days weigh < 2^-63 anyway */

static void memory_peaks(const kopt_engine_container_t *c, const kopt_engine_history_t *hist,
                         int64_t now, int64_t lookback_s, kopt_dhist_t *mem)
{
    double peak[VPA_MAX_DAYS] = {0};
    int64_t base = hist->first_hour;
    size_t i;
    int d;

    if (hist->last_hour - base >= (int64_t)VPA_MAX_DAYS * VPA_MEMORY_INTERVAL)
        base = hist->last_hour - (int64_t)(VPA_MAX_DAYS - 1) * VPA_MEMORY_INTERVAL;
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        double v = (double)h->mem_peak_bytes;

        if (!kopt_engine_in_lookback(h, now, lookback_s) || h->start < base)
            continue;
        d = (int)((h->start - base) / VPA_MEMORY_INTERVAL);
        if (h->oom_kills > 0) {
            /* RecordOOM: max(usage x 1.2, usage + 100 MiB) into the interval. */
            double u = (double)(h->oom_usage_bytes ? h->oom_usage_bytes : h->mem_peak_bytes);
            double bumped = fmax(u * VPA_OOM_BUMP, u + VPA_OOM_MIN_BUMP);

            v = fmax(v, bumped);
        }
        if (v > peak[d])
            peak[d] = v;
    }
    for (d = 0; d < VPA_MAX_DAYS; d++)
        if (peak[d] > 0)
            kopt_dhist_add(mem, kopt_memory_bucket(peak[d]), 1.0,
                           base + (int64_t)d * VPA_MEMORY_INTERVAL);
}

void kopt_engine_estimate_vpa(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                              const kopt_engine_history_t *hist, size_t containers_per_pod,
                              int64_t now, kopt_engine_estimate_t *est)
{
    kopt_dhist_t cpu, mem;
    double m = 1.0 + VPA_MARGIN, d, n, fraction;
    size_t i, j;

    kopt_dhist_init(&cpu, KOPT_DHIST_CPU, VPA_HALF_LIFE_S);
    kopt_dhist_init(&mem, KOPT_DHIST_MEMORY, VPA_HALF_LIFE_S);
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        double req = h->cpu_request_cores > 0 ? h->cpu_request_cores : c->current.cpu_request_cores;
        /* addCPUSample: weight = max(request, minSampleWeight). */
        double w = req > VPA_MIN_SAMPLE_WEIGHT ? req : VPA_MIN_SAMPLE_WEIGHT;

        if (!kopt_engine_in_lookback(h, now, opts->lookback_s))
            continue;
        for (j = 0; j < h->cpu_hist_len; j++)
            kopt_dhist_add(&cpu, h->cpu_hist[j].index, (double)h->cpu_hist[j].count * w, h->start);
    }
    memory_peaks(c, hist, now, opts->lookback_s, &mem);

    est->cpu_percentile = VPA_TARGET_CPU;
    est->memory_percentile = VPA_TARGET_MEMORY;
    est->cpu_target = kopt_dhist_percentile(&cpu, VPA_TARGET_CPU) * m;
    est->cpu_lower = kopt_dhist_percentile(&cpu, VPA_LOWER_CPU) * m;
    est->cpu_upper = kopt_dhist_percentile(&cpu, VPA_UPPER_CPU) * m;
    est->memory_target = kopt_dhist_percentile(&mem, VPA_TARGET_MEMORY) * m;
    est->memory_lower = kopt_dhist_percentile(&mem, VPA_LOWER_MEMORY) * m;
    est->memory_upper = kopt_dhist_percentile(&mem, VPA_UPPER_MEMORY) * m;

    /* getConfidence: min(lifespan in days, samples / (60 x 24)). */
    n = (double)hist->windows / 1440.0;
    d = n < hist->lifespan_days ? n : hist->lifespan_days;
    est->history_days = d;
    if (d > 0) {
        est->cpu_upper *= 1.0 + 1.0 / d;
        est->memory_upper *= 1.0 + 1.0 / d;
        est->cpu_lower *= pow(1.0 + 0.001 / d, -2.0);
        est->memory_lower *= pow(1.0 + 0.001 / d, -2.0);
    }
    /* Pod minimums spread evenly over the pod's containers. */
    fraction = 1.0 / (double)(containers_per_pod > 0 ? containers_per_pod : 1);
    est->cpu_target = fmax(est->cpu_target, VPA_POD_MIN_CPU * fraction);
    est->cpu_lower = fmax(est->cpu_lower, VPA_POD_MIN_CPU * fraction);
    est->cpu_upper = fmax(est->cpu_upper, VPA_POD_MIN_CPU * fraction);
    est->memory_target = fmax(est->memory_target, VPA_POD_MIN_MEMORY * fraction);
    est->memory_lower = fmax(est->memory_lower, VPA_POD_MIN_MEMORY * fraction);
    est->memory_upper = fmax(est->memory_upper, VPA_POD_MIN_MEMORY * fraction);
    est->oom_floor_bytes = 0;
    est->oom_bumped = false;
}
