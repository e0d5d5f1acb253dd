/* The simple strategy, the baseline people compute by hand: CPU request =
 * p95 of the window means, memory request = the highest peak + 15 %; no
 * decay, no weighting, no confidence. Bounds: CPU p50 .. highest peak,
 * memory p50 of the peaks .. the request. */
#include <kopt/engine.h>

#define SIMPLE_CPU_PERCENTILE 0.95
#define SIMPLE_MEMORY_MARGIN 0.15

void kopt_engine_estimate_simple(const kopt_engine_options_t *opts,
                                 const kopt_engine_container_t *c,
                                 const kopt_engine_history_t *hist, int64_t now,
                                 kopt_engine_estimate_t *est)
{
    (void)opts;
    (void)c;
    (void)now;
    est->cpu_percentile = SIMPLE_CPU_PERCENTILE;
    est->memory_percentile = 1.0;
    est->cpu_target = hist->cpu.p95;
    est->cpu_lower = hist->cpu.p50;
    est->cpu_upper = hist->cpu.max > est->cpu_target ? hist->cpu.max : est->cpu_target;
    est->memory_target = hist->memory.max * (1.0 + SIMPLE_MEMORY_MARGIN);
    est->memory_lower =
        hist->memory.p50 < est->memory_target ? hist->memory.p50 : est->memory_target;
    est->memory_upper = est->memory_target;
    est->cpu_basis = est->cpu_target;
    est->memory_basis = hist->memory.max;
    est->memory_headroom = est->memory_target - hist->memory.max;
    est->history_days = hist->lifespan_days;
    est->oom_floor_bytes = 0;
    est->oom_bumped = false;
}
