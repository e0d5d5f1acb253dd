/* kopt's CPU request. CPU is compressible: above its request a container
 * only competes for spare CPU, so the request is the usage that must be
 * guaranteed, measured in time (every window weighs the same, decaying with
 * age), not in CPU-seconds. Rather than one fixed percentile, the request
 * starts at cpu_percentile and rises one bucket at a time while raising it
 * by another cpu_step would still cover at least cpu_step_share of the
 * time: a steady series ends near its top, whose last few per cent are
 * cheap to cover, while a rare burst far above the usual level is left to
 * spare CPU instead of being reserved all the time. Never past
 * cpu_max_percentile, nor below cpu_floor_cores. docs/engine.md has the reasoning and measurements.
 */
#include "engine_internal.h"

#include <math.h>

/* What a bucket reports as its value: its upper bound (the VPA's rule); the
 * open last bucket reports its start. */
static double top(int i)
{
    return i >= KOPT_CPU_BUCKETS - 1 ? kopt_cpu_bucket_lower(i) : kopt_cpu_bucket_upper(i);
}

/* Weight of the buckets above `i` that lie wholly at or below `limit`. */
static double weight_up_to(const kopt_dhist_t *h, int i, double limit)
{
    double w = 0;

    for (int j = i + 1; j <= h->max_bucket && top(j) <= limit; j++)
        w += h->weight[j];
    return w;
}

void kopt_engine_fit_cpu(const kopt_engine_options_t *o, const kopt_engine_container_t *c,
                         int64_t now, kopt_cpu_fit_t *out)
{
    kopt_dhist_t h;
    double cum = 0, next = 0, floor = o->cpu_floor_cores;
    int i;

    kopt_dhist_init(&h, KOPT_DHIST_CPU, o->half_life_s);
    for (size_t k = 0; k < c->n_hours; k++) {
        const kopt_engine_hour_t *hr = &c->hours[k];

        if (!kopt_engine_in_lookback(hr, now, o->lookback_s))
            continue;
        for (size_t j = 0; j < hr->cpu_hist_len; j++)
            kopt_dhist_add(&h, hr->cpu_hist[j].index, hr->cpu_hist[j].count, hr->start);
    }
    out->request = out->percentile = out->next_share = out->lower = out->upper = 0;
    if (kopt_dhist_empty(&h))
        return;
    /* The bucket where the running weight reaches cpu_percentile. */
    for (i = h.min_bucket; i < h.max_bucket; i++) {
        cum += h.weight[i];
        if (cum >= o->cpu_percentile * h.total)
            break;
    }
    if (i == h.max_bucket)
        cum = h.total;
    /* Up while one step more still buys enough time, to the cap. */
    while (i < h.max_bucket && cum < o->cpu_max_percentile * h.total) {
        next = weight_up_to(&h, i, fmax(top(i), floor) * o->cpu_step);
        if (next < o->cpu_step_share * h.total)
            break;
        i++;
        cum += h.weight[i];
        next = 0;
    }
    out->request = fmax(top(i), floor);
    out->percentile = fmin(1.0, cum / h.total);
    out->next_share = next / h.total;
    out->lower = kopt_dhist_percentile(&h, o->cpu_lower_percentile);
    out->upper = kopt_dhist_percentile(&h, o->cpu_upper_percentile);
}
