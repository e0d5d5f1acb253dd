/* kopt's memory request. Memory is not compressible: above its request a
 * container is among the first evicted under node pressure, above its limit
 * it is OOM-killed. So the request follows the peaks the workload reaches,
 * one per day, not the ordinary minutes: the memory_percentile of the daily
 * peaks, each day weighted by its age (half-life memory_half_life_s), plus
 * a headroom that is absolute (memory_headroom_bytes) because what moves a
 * workload's peak from one day to the next (allocator arenas, caches, a
 * bigger request batch) is an amount of memory more than a share of it.
 * Days count back from the last hour with data, so analysing the same data
 * later gives the same answer. docs/engine.md has the measurements. */
#include "engine_internal.h"

#include <math.h>

#define DAY 86400
#define MAX_DAYS 120 /* older peaks weigh < 2^-119 at the default half-life */

typedef struct {
    double peak, weight;
} day_t;

/* The value below which `p` of the days' weight lies (exact values, the
 * lowest reaching p x total). Days sorted by peak. */
static double quantile(const day_t *d, unsigned n, double total, double p)
{
    double cum = 0;

    for (unsigned i = 0; i < n; i++) {
        cum += d[i].weight;
        if (cum >= p * total * (1 - 1e-12))
            return d[i].peak;
    }
    return n ? d[n - 1].peak : 0;
}

void kopt_engine_fit_memory(const kopt_engine_options_t *o, const kopt_engine_container_t *c,
                            const kopt_engine_history_t *hist, int64_t now, kopt_memory_fit_t *out)
{
    double peak[MAX_DAYS] = {0}, total = 0;
    day_t days[MAX_DAYS];
    unsigned n = 0;

    out->basis = out->headroom = out->lower = out->upper = 0;
    out->days = 0;
    for (size_t k = 0; k < c->n_hours; k++) {
        const kopt_engine_hour_t *h = &c->hours[k];
        int64_t age = hist->last_hour - h->start;

        if (!kopt_engine_in_lookback(h, now, o->lookback_s) || age >= (int64_t)MAX_DAYS * DAY)
            continue;
        if ((double)h->mem_peak_bytes > peak[age / DAY])
            peak[age / DAY] = (double)h->mem_peak_bytes;
    }
    for (unsigned d = 0; d < MAX_DAYS; d++) {
        day_t x;
        unsigned j;

        if (!(peak[d] > 0))
            continue;
        x.peak = peak[d];
        x.weight = o->memory_half_life_s > 0 ? exp2(-(double)d * DAY / o->memory_half_life_s) : 1;
        /* Insertion by peak keeps the list sorted; at most MAX_DAYS. */
        for (j = n; j > 0 && days[j - 1].peak > x.peak; j--)
            days[j] = days[j - 1];
        days[j] = x;
        n++;
        total += x.weight;
    }
    if (n == 0 || !(total > 0))
        return;
    out->days = n;
    out->basis = quantile(days, n, total, o->memory_percentile);
    out->headroom = fmax((double)o->memory_headroom_bytes, o->safety_margin * out->basis);
    out->lower = quantile(days, n, total, o->memory_lower_percentile);
    out->upper = quantile(days, n, total, o->memory_upper_percentile);
}
