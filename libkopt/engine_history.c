/* What the history inside the lookback holds: span, counts, OOM kills,
 * throttling and plain (undecayed, one weight per window) percentiles, the
 * evidence every strategy reports. */
#include "engine_internal.h"

#include <math.h>
#include <string.h>

/* Percentiles are bucket upper bounds, which can pass the exact maximum
 * seen; a percentile is never reported above it. */
static void stats(const kopt_dhist_t *h, kopt_engine_stats_t *s)
{
    s->p50 = fmin(kopt_dhist_percentile(h, 0.50), s->max);
    s->p90 = fmin(kopt_dhist_percentile(h, 0.90), s->max);
    s->p95 = fmin(kopt_dhist_percentile(h, 0.95), s->max);
    s->p99 = fmin(kopt_dhist_percentile(h, 0.99), s->max);
}

void kopt_engine_history(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                         kopt_engine_history_t *out)
{
    kopt_dhist_t cpu, mem;
    double pods = 0;
    size_t i, j;

    memset(out, 0, sizeof(*out));
    kopt_dhist_init(&cpu, KOPT_DHIST_CPU, 0);
    kopt_dhist_init(&mem, KOPT_DHIST_MEMORY, 0);
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        double usage;

        if (!kopt_engine_in_lookback(h, now, lookback_s))
            continue;
        if (out->hours == 0 || h->start < out->first_hour)
            out->first_hour = h->start;
        if (out->hours == 0 || h->start > out->last_hour)
            out->last_hour = h->start;
        out->hours++;
        out->windows += h->windows;
        out->covered_s += kopt_engine_hour_covered_s(h);
        pods += h->pods > 0 ? h->pods : 1;
        out->oom_kills += h->oom_kills;
        usage = (double)(h->oom_usage_bytes ? h->oom_usage_bytes : h->mem_peak_bytes);
        if (h->oom_kills > 0 && usage > out->oom_max_usage_bytes)
            out->oom_max_usage_bytes = usage;
        out->cpu_throttled_seconds += h->cpu_throttled_seconds;
        out->cpu_throttled_periods += h->cpu_throttled_periods;
        out->cpu_periods += h->cpu_periods;
        if (h->cpu_peak_cores > out->cpu.max)
            out->cpu.max = h->cpu_peak_cores;
        if ((double)h->mem_peak_bytes > out->memory.max)
            out->memory.max = (double)h->mem_peak_bytes;
        for (j = 0; j < h->cpu_hist_len; j++)
            kopt_dhist_add(&cpu, h->cpu_hist[j].index, h->cpu_hist[j].count, h->start);
        for (j = 0; j < h->mem_hist_len; j++)
            kopt_dhist_add(&mem, h->mem_hist[j].index, h->mem_hist[j].count, h->start);
    }
    if (out->hours == 0)
        return;
    out->mean_pods = pods / out->hours;
    out->lifespan_days = (double)(out->last_hour + 3600 - out->first_hour) / 86400.0;
    stats(&cpu, &out->cpu);
    stats(&mem, &out->memory);
}
