/* The out-of-sample backtest: the strategy fitted on the earlier part of a
 * container's own history and scored on the later part it never saw. As in
 * the replayed risk, a window counts as passing a value when its bucket
 * reaches past it (the shares lean to the safe side by one 5 % bucket). */
#include "engine_internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define HOUR 3600
#define DEFAULT_FIT_SHARE (2.0 / 3.0)
#define MIN_HOURS_A_SIDE 2
#define GIB 1073741824.0

/* The split: fit_share of the span after the first hour, on an hour. */
static int64_t split_of(const kopt_engine_history_t *h, double fit_share)
{
    double span = (double)(h->last_hour + HOUR - h->first_hour);
    int64_t at = h->first_hour + (int64_t)llround(span * fit_share / HOUR) * HOUR;

    return at;
}

static void score_hour(const kopt_engine_hour_t *h, const kopt_resources_t *rec,
                       kopt_engine_backtest_t *out, uint64_t over[4])
{
    double mem_sum = 0;
    size_t j;

    for (j = 0; j < h->cpu_hist_len; j++) {
        double top = kopt_cpu_bucket_upper(
            h->cpu_hist[j].index < KOPT_CPU_BUCKETS ? h->cpu_hist[j].index : KOPT_CPU_BUCKETS - 1);

        if (top > rec->cpu_request_cores)
            over[0] += h->cpu_hist[j].count;
        if (rec->cpu_limit_cores > 0 && top > rec->cpu_limit_cores)
            over[2] += h->cpu_hist[j].count;
    }
    for (j = 0; j < h->mem_hist_len; j++) {
        int b = h->mem_hist[j].index < KOPT_MEMORY_BUCKETS ? h->mem_hist[j].index
                                                           : KOPT_MEMORY_BUCKETS - 1;
        double top = kopt_memory_bucket_upper(b);

        if (top > (double)rec->memory_request_bytes)
            over[1] += h->mem_hist[j].count;
        if (rec->memory_limit_bytes > 0 && top > (double)rec->memory_limit_bytes)
            over[3] += h->mem_hist[j].count;
        mem_sum += (kopt_memory_bucket_lower(b) + top) / 2 * h->mem_hist[j].count;
    }
    out->windows += h->windows;
    out->scored_hours += 1;
    out->used_core_hours += h->cpu_mean_cores;
    out->used_gib_hours += mem_sum / (double)h->windows / GIB;
}

int kopt_engine_backtest(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                         size_t containers_per_pod, int64_t now, double fit_share,
                         kopt_engine_backtest_t *out)
{
    kopt_engine_options_t fit = *opts;
    kopt_engine_history_t all;
    kopt_engine_result_t rec;
    uint64_t over[4] = {0};
    int64_t from;
    size_t i, before = 0, after = 0;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!c || (c->n_hours > 0 && !c->hours) || kopt_engine_options_check(opts) < 0 ||
        !(fit_share >= 0 && fit_share < 1))
        return -EINVAL;
    kopt_engine_history(c, now, opts->lookback_s, &all);
    if (all.windows == 0)
        return 0;
    out->split = split_of(&all, fit_share > 0 ? fit_share : DEFAULT_FIT_SHARE);
    from = opts->lookback_s > 0 ? now - opts->lookback_s : all.first_hour;
    for (i = 0; i < c->n_hours; i++) {
        if (!kopt_engine_in_lookback(&c->hours[i], now, opts->lookback_s))
            continue;
        if (c->hours[i].start < out->split)
            before++;
        else
            after++;
    }
    if (before < MIN_HOURS_A_SIDE || after < MIN_HOURS_A_SIDE)
        return 0;
    /* The fit sees exactly the hours before the split. */
    fit.lookback_s = out->split - from;
    if (kopt_engine_recommend(&fit, c, containers_per_pod, out->split, &rec) < 0)
        return 0;
    out->recommended = rec.recommended;
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];

        if (kopt_engine_in_lookback(h, now, opts->lookback_s) && h->start >= out->split)
            score_hour(h, &rec.recommended, out, over);
    }
    out->valid = out->windows > 0;
    if (!out->valid)
        return 0;
    out->cpu_over_request_share = (double)over[0] / (double)out->windows;
    out->memory_over_request_share = (double)over[1] / (double)out->windows;
    out->cpu_over_limit_share = (double)over[2] / (double)out->windows;
    out->memory_over_limit_share = (double)over[3] / (double)out->windows;
    out->reserved_core_hours = rec.recommended.cpu_request_cores * out->scored_hours;
    out->reserved_gib_hours =
        (double)rec.recommended.memory_request_bytes / GIB * out->scored_hours;
    return 0;
}
