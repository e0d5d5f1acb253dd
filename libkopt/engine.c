/* The engine's entry points: options, and the pipeline that turns a
 * strategy's estimate into advice (low-confidence hold, min/max, rounding,
 * limits policy, throttling, replayed risk, flags, savings) and, per
 * workload, the HPA target that keeps the scale-out point. */
#include "engine_internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MIB 1048576ULL
#define DEFAULT_LOOKBACK_S (8 * 86400)
#define PROVISIONING_SLACK 0.10 /* over/under-provisioned beyond +-10 % */

void kopt_engine_options_default(kopt_engine_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->strategy = KOPT_STRATEGY_KOPT;
    o->half_life_s = 2 * 86400;
    o->cpu_percentile = 0.80;
    o->cpu_max_percentile = 0.99;
    o->cpu_step = 1.3;
    o->cpu_step_share = 0.005;
    o->cpu_floor_cores = 0.025;
    o->cpu_lower_percentile = 0.50;
    o->cpu_upper_percentile = 0.99;
    o->memory_half_life_s = 86400;
    o->memory_percentile = 0.90;
    o->memory_headroom_bytes = 256 * MIB;
    o->memory_lower_percentile = 0.50;
    o->memory_upper_percentile = 1.0;
    o->safety_margin = 0;
    o->oom_bump = 1.2;
    o->limits = KOPT_LIMITS_KEEP_RATIO;
    o->throttle_share = 0.05;
    o->cpu_min_cores = 0.01;
    o->memory_min_bytes = 16 * MIB;
    o->cpu_round_cores = 0.001;
    o->memory_round_bytes = MIB;
    o->lookback_s = DEFAULT_LOOKBACK_S;
    o->idle_cpu_cores = 0.01;
    o->idle_min_history_s = 86400;
    o->low_confidence_days = 1.0;
    o->hpa_max_target_percent = 100;
    o->prices.cpu_core_hour = 0.031611;
    o->prices.memory_gib_hour = 0.004237;
    o->prices.hours_per_month = 730;
    memcpy(o->prices.currency, "USD", 4);
    o->confidence = KOPT_CONFIDENCE_VPA;
}

static bool fraction_ok(double p)
{
    return p > 0 && p <= 1;
}

static bool nonneg(double v)
{
    return v >= 0 && isfinite(v);
}

int kopt_engine_options_check(const kopt_engine_options_t *o)
{
    if (!o || (unsigned)o->strategy > KOPT_STRATEGY_SIMPLE ||
        (unsigned)o->limits > KOPT_LIMITS_LEAVE || (unsigned)o->confidence > KOPT_CONFIDENCE_NONE)
        return -EINVAL;
    if (!fraction_ok(o->cpu_percentile) || !fraction_ok(o->cpu_lower_percentile) ||
        !fraction_ok(o->cpu_upper_percentile) || !fraction_ok(o->memory_percentile) ||
        !fraction_ok(o->memory_lower_percentile) || !fraction_ok(o->memory_upper_percentile) ||
        !fraction_ok(o->cpu_max_percentile) || o->cpu_max_percentile < o->cpu_percentile)
        return -EINVAL;
    if (!(o->cpu_step >= 1) || !isfinite(o->cpu_step) ||
        !(o->cpu_step_share >= 0 && o->cpu_step_share <= 1) || !nonneg(o->memory_half_life_s))
        return -EINVAL;
    if (!nonneg(o->half_life_s) || !nonneg(o->safety_margin) || !(o->oom_bump >= 1) ||
        !isfinite(o->oom_bump) || !nonneg(o->throttle_share) || !nonneg(o->cpu_min_cores) ||
        !nonneg(o->cpu_max_cores) || !nonneg(o->cpu_round_cores) || !nonneg(o->idle_cpu_cores) ||
        !nonneg(o->low_confidence_days))
        return -EINVAL;
    if ((o->cpu_max_cores > 0 && o->cpu_max_cores < o->cpu_min_cores) ||
        (o->memory_max_bytes > 0 && o->memory_max_bytes < o->memory_min_bytes))
        return -EINVAL;
    if (o->lookback_s < 0 || o->idle_min_history_s < 0 || o->hpa_max_target_percent < 1)
        return -EINVAL;
    if (!nonneg(o->prices.cpu_core_hour) || !nonneg(o->prices.memory_gib_hour) ||
        !nonneg(o->prices.hours_per_month))
        return -EINVAL;
    return 0;
}

/* Up to the next multiple of unit (the 1e-9 keeps 0.138 at 138 m). */
static double round_cpu(double v, double unit)
{
    if (!(unit > 0))
        return v;
    return ceil(v / unit - 1e-9) * unit;
}

static uint64_t round_bytes(double v, uint64_t unit)
{
    if (!(v > 0))
        return 0;
    if (unit == 0)
        return (uint64_t)ceil(v);
    return (uint64_t)ceil(v / (double)unit - 1e-9) * unit;
}

static double clamp(double v, double min, double max)
{
    if (v < min)
        v = min;
    if (max > 0 && v > max)
        v = max;
    return v;
}

/* Low confidence (kopt only): too little history to cut; still raise. */
static void hold_when_unsure(const kopt_engine_options_t *o, const kopt_resources_t *cur,
                             kopt_engine_estimate_t *est)
{
    double cpu = fmin(est->cpu_upper, cur->cpu_request_cores);
    double mem = fmin(est->memory_upper, (double)cur->memory_request_bytes);

    if (o->strategy != KOPT_STRATEGY_KOPT || !(est->history_days < o->low_confidence_days))
        return;
    if (cpu > est->cpu_target)
        est->cpu_target = cpu;
    if (mem > est->memory_target)
        est->memory_target = mem;
}

static double cpu_limit(const kopt_engine_options_t *o, const kopt_resources_t *cur, double req,
                        double upper)
{
    switch (o->limits) {
    case KOPT_LIMITS_KEEP_RATIO:
        if (cur->cpu_limit_cores <= 0)
            return 0;
        if (cur->cpu_request_cores <= 0)
            return upper;
        return req * cur->cpu_limit_cores / cur->cpu_request_cores;
    case KOPT_LIMITS_FROM_UPPER:
        return upper;
    case KOPT_LIMITS_LEAVE:
    default:
        return cur->cpu_limit_cores;
    }
}

static double memory_limit(const kopt_engine_options_t *o, const kopt_resources_t *cur, double req,
                           double upper)
{
    switch (o->limits) {
    case KOPT_LIMITS_KEEP_RATIO:
        if (cur->memory_limit_bytes == 0)
            return 0;
        if (cur->memory_request_bytes == 0)
            return upper;
        return req * (double)cur->memory_limit_bytes / (double)cur->memory_request_bytes;
    case KOPT_LIMITS_FROM_UPPER:
        return upper;
    case KOPT_LIMITS_LEAVE:
    default:
        return (double)cur->memory_limit_bytes;
    }
}

static void estimate(const kopt_engine_options_t *o, const kopt_engine_container_t *c,
                     const kopt_engine_history_t *hist, size_t per_pod, int64_t now,
                     kopt_engine_estimate_t *est)
{
    memset(est, 0, sizeof(*est));
    switch (o->strategy) {
    case KOPT_STRATEGY_VPA:
        kopt_engine_estimate_vpa(o, c, hist, per_pod, now, est);
        break;
    case KOPT_STRATEGY_SIMPLE:
        kopt_engine_estimate_simple(o, c, hist, now, est);
        break;
    case KOPT_STRATEGY_KOPT:
    default:
        kopt_engine_estimate_kopt(o, c, hist, now, est);
        break;
    }
    /* A strategy that does not say where its targets came from: the
     * targets themselves. */
    if (est->cpu_basis == 0)
        est->cpu_basis = est->cpu_target;
    if (est->memory_basis == 0)
        est->memory_basis = est->memory_target;
}

/* Targets and bounds: min/max, then up to whole units. */
static void set_requests(const kopt_engine_options_t *o, const kopt_engine_estimate_t *est,
                         kopt_engine_result_t *r)
{
    double cmin = o->cpu_min_cores, cmax = o->cpu_max_cores;
    double mmin = (double)o->memory_min_bytes, mmax = (double)o->memory_max_bytes;
    double cpu = clamp(est->cpu_target, cmin, cmax);
    double mem = clamp(est->memory_target, mmin, mmax);

    if (est->cpu_target <= cmin)
        r->flags |= KOPT_ENGINE_CPU_AT_MIN;
    if (cmax > 0 && est->cpu_target >= cmax)
        r->flags |= KOPT_ENGINE_CPU_AT_MAX;
    if (est->memory_target <= mmin)
        r->flags |= KOPT_ENGINE_MEMORY_AT_MIN;
    if (mmax > 0 && est->memory_target >= mmax)
        r->flags |= KOPT_ENGINE_MEMORY_AT_MAX;
    r->recommended.cpu_request_cores =
        fmin(round_cpu(cpu, o->cpu_round_cores), cmax > 0 ? cmax : INFINITY);
    r->recommended.memory_request_bytes = round_bytes(mem, o->memory_round_bytes);
    if (mmax > 0 && (double)r->recommended.memory_request_bytes > mmax)
        r->recommended.memory_request_bytes = o->memory_max_bytes;
    r->cpu_lower = round_cpu(clamp(est->cpu_lower, cmin, cmax), o->cpu_round_cores);
    r->cpu_upper = round_cpu(clamp(est->cpu_upper, cmin, cmax), o->cpu_round_cores);
    r->memory_lower = round_bytes(clamp(est->memory_lower, mmin, mmax), o->memory_round_bytes);
    r->memory_upper = round_bytes(clamp(est->memory_upper, mmin, mmax), o->memory_round_bytes);
    /* The bounds bracket the request whatever the clamps and low-confidence
     * hold did to it. */
    r->cpu_lower = fmin(r->cpu_lower, r->recommended.cpu_request_cores);
    r->cpu_upper = fmax(r->cpu_upper, r->recommended.cpu_request_cores);
    if (r->memory_lower > r->recommended.memory_request_bytes)
        r->memory_lower = r->recommended.memory_request_bytes;
    if (r->memory_upper < r->recommended.memory_request_bytes)
        r->memory_upper = r->recommended.memory_request_bytes;
}

static void set_limits(const kopt_engine_options_t *o, kopt_engine_result_t *r)
{
    const kopt_engine_history_t *h = &r->history;
    double req = r->recommended.cpu_request_cores;
    double lim = cpu_limit(o, &r->current, req, r->cpu_upper);
    double mreq = (double)r->recommended.memory_request_bytes;
    double mlim = memory_limit(o, &r->current, mreq, (double)r->memory_upper);

    if (h->cpu_periods > 0 &&
        (double)h->cpu_throttled_periods / (double)h->cpu_periods > o->throttle_share) {
        r->flags |= KOPT_ENGINE_CPU_THROTTLED;
        if (lim > 0 && lim < r->cpu_upper)
            lim = r->cpu_upper;
    }
    /* Kubernetes refuses a limit below the request. */
    if (lim > 0 && lim < req)
        lim = req;
    if (mlim > 0 && mlim < mreq)
        mlim = mreq;
    r->recommended.cpu_limit_cores = lim > 0 ? round_cpu(lim, o->cpu_round_cores) : 0;
    r->recommended.memory_limit_bytes = mlim > 0 ? round_bytes(mlim, o->memory_round_bytes) : 0;
}

static void set_flags(const kopt_engine_options_t *o, kopt_engine_result_t *r)
{
    const kopt_resources_t *cur = &r->current, *rec = &r->recommended;
    const kopt_engine_history_t *h = &r->history;
    int64_t need = o->idle_min_history_s;
    double lookback = (double)(o->lookback_s > 0 ? o->lookback_s : DEFAULT_LOOKBACK_S);

    if (o->lookback_s > 0 && o->lookback_s < need)
        need = o->lookback_s;
    if (h->lifespan_days * 86400.0 >= (double)need && h->cpu.max < o->idle_cpu_cores &&
        (o->idle_memory_bytes == 0 || h->memory.max < (double)o->idle_memory_bytes))
        r->flags |= KOPT_ENGINE_IDLE;
    if (cur->cpu_request_cores <= 0 || cur->memory_request_bytes == 0)
        r->flags |= KOPT_ENGINE_MISSING_REQUESTS;
    if ((cur->cpu_request_cores > 0 &&
         rec->cpu_request_cores < cur->cpu_request_cores * (1 - PROVISIONING_SLACK)) ||
        (cur->memory_request_bytes > 0 &&
         (double)rec->memory_request_bytes <
             (double)cur->memory_request_bytes * (1 - PROVISIONING_SLACK)))
        r->flags |= KOPT_ENGINE_OVER_PROVISIONED;
    if ((cur->cpu_request_cores > 0 &&
         rec->cpu_request_cores > cur->cpu_request_cores * (1 + PROVISIONING_SLACK)) ||
        (cur->memory_request_bytes > 0 &&
         (double)rec->memory_request_bytes >
             (double)cur->memory_request_bytes * (1 + PROVISIONING_SLACK)))
        r->flags |= KOPT_ENGINE_UNDER_PROVISIONED;
    if (r->history_days < o->low_confidence_days)
        r->flags |= KOPT_ENGINE_LOW_CONFIDENCE;
    r->confidence = fmin(1.0, r->history_days * 86400.0 / lookback);
}

int kopt_engine_recommend(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                          size_t containers_per_pod, int64_t now, kopt_engine_result_t *out)
{
    kopt_engine_estimate_t est;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!c || (c->n_hours > 0 && !c->hours) || kopt_engine_options_check(opts) < 0)
        return -EINVAL;
    out->current = c->current;
    out->recommended = c->current;
    out->strategy = opts->strategy;
    kopt_engine_history(c, now, opts->lookback_s, &out->history);
    if (out->history.windows == 0)
        return -ENODATA;

    estimate(opts, c, &out->history, containers_per_pod, now, &est);
    hold_when_unsure(opts, &c->current, &est);
    out->history_days = est.history_days;
    out->cpu_percentile = est.cpu_percentile;
    out->memory_percentile = est.memory_percentile;
    out->oom_floor_bytes = est.oom_floor_bytes;
    out->cpu_basis_cores = est.cpu_basis;
    out->cpu_next_share = est.cpu_next_share;
    out->memory_basis_bytes = est.memory_basis;
    out->memory_headroom_bytes = est.memory_headroom;
    if (est.oom_bumped)
        out->flags |= KOPT_ENGINE_OOM_BUMPED;
    set_requests(opts, &est, out);
    set_limits(opts, out);
    return 0;
}

int kopt_engine_analyze_container(const kopt_engine_options_t *opts,
                                  const kopt_engine_container_t *c, size_t containers_per_pod,
                                  int64_t now, kopt_engine_result_t *out)
{
    int r = kopt_engine_recommend(opts, c, containers_per_pod, now, out);

    if (r < 0)
        return r;
    kopt_engine_replay(c, now, opts->lookback_s, &out->recommended, &out->risk);
    set_flags(opts, out);
    kopt_engine_savings(&opts->prices, &out->current, &out->recommended, &out->savings);
    r = kopt_engine_backtest(opts, c, containers_per_pod, now, 0, &out->backtest);
    if (r < 0)
        return r;
    kopt_engine_explain(opts, NULL, NULL, out);
    return 0;
}

/* T' = T x sum R / sum R': the same absolute CPU per pod triggers scale-out. */
static void adjust_hpa(const kopt_engine_options_t *o, const kopt_engine_workload_t *w,
                       kopt_engine_result_t *out, kopt_engine_workload_result_t *wres)
{
    double old_sum = 0, new_sum = 0, t;
    uint32_t target;
    size_t i;

    wres->hpa_target_percent = w->hpa.target_cpu_percent;
    if (!w->hpa.present || !w->hpa.scales_on_cpu || w->hpa.target_cpu_percent == 0)
        return;
    for (i = 0; i < w->n_containers; i++) {
        old_sum += out[i].current.cpu_request_cores;
        new_sum += out[i].recommended.cpu_request_cores;
    }
    wres->hpa_scale_out_cores_old = w->hpa.target_cpu_percent * old_sum / 100.0;
    wres->hpa_scale_out_cores_new = wres->hpa_scale_out_cores_old;
    if (!(old_sum > 0) || !(new_sum > 0))
        return;
    t = round(w->hpa.target_cpu_percent * old_sum / new_sum);
    target = (uint32_t)clamp(t, 1, o->hpa_max_target_percent);
    wres->hpa_target_percent = target;
    wres->hpa_scale_out_cores_new = target * new_sum / 100.0;
    if (target == w->hpa.target_cpu_percent)
        return;
    wres->hpa_adjusted = true;
    for (i = 0; i < w->n_containers; i++) {
        out[i].flags |= KOPT_ENGINE_HPA_ADJUSTED;
        if ((double)target != t)
            out[i].flags |= KOPT_ENGINE_HPA_TARGET_CLAMPED;
        out[i].hpa_target_percent = target;
    }
}

int kopt_engine_analyze_workload(const kopt_engine_options_t *opts, const kopt_engine_workload_t *w,
                                 int64_t now, kopt_engine_result_t *out,
                                 kopt_engine_workload_result_t *wout)
{
    size_t i, with_data = 0, idle = 0;
    int r;

    if (!w || !out || !wout || (w->n_containers > 0 && !w->containers) || !(w->replicas >= 0) ||
        !isfinite(w->replicas))
        return -EINVAL;
    memset(wout, 0, sizeof(*wout));
    for (i = 0; i < w->n_containers; i++) {
        r = kopt_engine_analyze_container(opts, &w->containers[i], w->n_containers, now, &out[i]);
        if (r == -ENODATA)
            continue;
        if (r < 0)
            return r;
        with_data++;
        idle += (out[i].flags & KOPT_ENGINE_IDLE) ? 1 : 0;
        wout->windows += out[i].history.windows;
        wout->savings.cpu_cores += out[i].savings.cpu_cores * w->replicas;
        wout->savings.memory_bytes +=
            (int64_t)llround((double)out[i].savings.memory_bytes * w->replicas);
        wout->savings.monthly_cost += out[i].savings.monthly_cost * w->replicas;
    }
    if (with_data == 0)
        return -ENODATA;
    wout->idle = idle == with_data;
    adjust_hpa(opts, w, out, wout);
    for (i = 0; i < w->n_containers; i++)
        if (out[i].history.windows > 0)
            kopt_engine_explain(opts, &w->hpa, wout, &out[i]);
    return 0;
}
