/* The kopt strategy: a model per resource (engine_kopt_cpu.c for CPU,
 * engine_kopt_memory.c for memory), bounds around each request widened by
 * the confidence model, and memory never below the usage at an OOM kill
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
    kopt_cpu_fit_t cpu;
    kopt_memory_fit_t mem;

    kopt_engine_fit_cpu(opts, c, now, &cpu);
    kopt_engine_fit_memory(opts, c, hist, now, &mem);
    est->cpu_percentile = cpu.percentile;
    est->cpu_basis = cpu.request;
    est->cpu_next_share = cpu.next_share;
    est->cpu_target = cpu.request;
    est->cpu_lower = fmin(cpu.lower, cpu.request);
    est->cpu_upper = fmax(cpu.upper, cpu.request);
    est->memory_percentile = opts->memory_percentile;
    est->memory_basis = mem.basis;
    est->memory_headroom = mem.headroom;
    est->memory_target = mem.basis + mem.headroom;
    est->memory_lower = mem.lower;
    est->memory_upper = fmax(mem.upper + mem.headroom, est->memory_target);
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
    if (est->memory_lower > est->memory_target)
        est->memory_lower = est->memory_target;
}
