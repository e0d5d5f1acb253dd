/* Replayed risk: the lookback history played against recommended values.
 * Histograms only know a window to 5 % (one bucket), so a window counts as
 * passing a value when its bucket reaches past it: the counts lean to the
 * safe side by at most one bucket. */
#include "engine_internal.h"

#include <string.h>

void kopt_engine_replay(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                        const kopt_resources_t *rec, kopt_engine_risk_t *out)
{
    double mem_req = (double)rec->memory_request_bytes;
    double mem_lim = (double)rec->memory_limit_bytes;
    double cpu_top[KOPT_CPU_BUCKETS] = {0}, mem_top[KOPT_MEMORY_BUCKETS] = {0}; /* bounds cache */
    size_t i, j;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        bool oom_hour = false;

        if (!kopt_engine_in_lookback(h, now, lookback_s))
            continue;
        out->windows += h->windows;
        for (j = 0; j < h->cpu_hist_len; j++) {
            int b = h->cpu_hist[j].index < KOPT_CPU_BUCKETS ? h->cpu_hist[j].index
                                                            : KOPT_CPU_BUCKETS - 1;
            double top;

            if (cpu_top[b] == 0)
                cpu_top[b] = kopt_cpu_bucket_upper(b);
            top = cpu_top[b];

            if (rec->cpu_request_cores > 0 && top > rec->cpu_request_cores)
                out->cpu_windows_over_request += h->cpu_hist[j].count;
            if (rec->cpu_limit_cores > 0 && top > rec->cpu_limit_cores)
                out->cpu_windows_throttled += h->cpu_hist[j].count;
        }
        if (rec->cpu_limit_cores > 0 && h->cpu_peak_cores > rec->cpu_limit_cores)
            out->cpu_hours_peak_over_limit++;
        for (j = 0; j < h->mem_hist_len; j++) {
            int b = h->mem_hist[j].index < KOPT_MEMORY_BUCKETS ? h->mem_hist[j].index
                                                               : KOPT_MEMORY_BUCKETS - 1;
            double top;

            if (mem_top[b] == 0)
                mem_top[b] = kopt_memory_bucket_upper(b);
            top = mem_top[b];

            if (mem_req > 0 && top > mem_req)
                out->memory_windows_over_request += h->mem_hist[j].count;
            if (mem_lim > 0 && top > mem_lim) {
                out->memory_windows_oom += h->mem_hist[j].count;
                oom_hour = true;
            }
        }
        if (oom_hour)
            out->memory_hours_oom++;
    }
    if (out->windows > 0) {
        out->cpu_over_request_share = (double)out->cpu_windows_over_request / (double)out->windows;
        out->cpu_throttled_share = (double)out->cpu_windows_throttled / (double)out->windows;
    }
}
