/* kopt-engine-bench: times the recommendation engine over synthetic
 * rollups, 10,000 containers x 14 days of hourly points by default (the
 * advisor's target: <= 10 s). Prints figures, asserts nothing.
 *
 *   kopt-engine-bench [containers] [days]
 *
 * Each hour has 8 CPU and 4 memory buckets around a per-container level
 * with a daily cycle; the points of one container are made into a reused
 * buffer, and only the analysis is timed. */
#include <kopt/engine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CPU_BUCKETS_PER_HOUR 8
#define MEM_BUCKETS_PER_HOUR 4

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double uniform(uint64_t *s)
{
    return (double)(rng(s) >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make(kopt_engine_hour_t *hours, kopt_engine_bucket_t *cpu, kopt_engine_bucket_t *mem,
                 size_t n, int64_t end, uint64_t *seed)
{
    double level = 0.01 + uniform(seed) * 2.0;
    double mem_level = (64 + uniform(seed) * 2000) * 1048576.0;

    for (size_t k = 0; k < n; k++) {
        kopt_engine_hour_t *h = &hours[k];
        double cycle = 1.0 + 0.5 * sin((double)k * 2 * M_PI / 24);

        h->start = end - (int64_t)(n - k) * 3600;
        h->windows = 60 * 2;
        h->pods = 2;
        h->cpu_hist = &cpu[k * CPU_BUCKETS_PER_HOUR];
        h->mem_hist = &mem[k * MEM_BUCKETS_PER_HOUR];
        h->cpu_hist_len = CPU_BUCKETS_PER_HOUR;
        h->mem_hist_len = MEM_BUCKETS_PER_HOUR;
        h->cpu_peak_cores = 0;
        for (int j = 0; j < CPU_BUCKETS_PER_HOUR; j++) {
            double v = level * cycle * (0.5 + uniform(seed));

            cpu[k * CPU_BUCKETS_PER_HOUR + j] =
                (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(v), 15};
            h->cpu_peak_cores = fmax(h->cpu_peak_cores, v * 1.3);
        }
        h->mem_peak_bytes = 0;
        for (int j = 0; j < MEM_BUCKETS_PER_HOUR; j++) {
            double v = mem_level * (0.9 + 0.2 * uniform(seed));

            mem[k * MEM_BUCKETS_PER_HOUR + j] =
                (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket(v), 30};
            if (v > (double)h->mem_peak_bytes)
                h->mem_peak_bytes = (uint64_t)v;
        }
        h->oom_kills = uniform(seed) < 0.001 ? 1 : 0;
        h->cpu_periods = 72000;
        h->cpu_throttled_periods = (uint64_t)(uniform(seed) * 3000);
    }
}

int main(int argc, char **argv)
{
    long containers = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    long days = argc > 2 ? strtol(argv[2], NULL, 10) : 14;
    size_t n = (size_t)(days > 0 ? days : 14) * 24;
    int64_t end = 1700000000 / 3600 * 3600;
    kopt_engine_hour_t *hours = calloc(n, sizeof(*hours));
    kopt_engine_bucket_t *cpu = calloc(n * CPU_BUCKETS_PER_HOUR, sizeof(*cpu));
    kopt_engine_bucket_t *mem = calloc(n * MEM_BUCKETS_PER_HOUR, sizeof(*mem));
    int rc = 1;

    if (!hours || !cpu || !mem || containers <= 0)
        goto out;
    printf("engine: %ld containers x %ld days of hourly points (%zu points each)\n", containers,
           days, n);
    for (int s = KOPT_STRATEGY_KOPT; s <= KOPT_STRATEGY_SIMPLE; s++) {
        kopt_engine_options_t o;
        kopt_engine_result_t r;
        kopt_engine_container_t c = {"app", {1.0, 2.0, 1073741824ULL, 2147483648ULL}, hours, n};
        uint64_t seed = 0x9e3779b97f4a7c15ULL;
        double spent = 0, sum = 0;

        kopt_engine_options_default(&o);
        o.strategy = (kopt_engine_strategy_t)s;
        o.lookback_s = (int64_t)n * 3600;
        for (long i = 0; i < containers; i++) {
            double t0;

            make(hours, cpu, mem, n, end, &seed);
            t0 = now_s();
            if (kopt_engine_analyze_container(&o, &c, 1, end, &r) < 0)
                goto out;
            spent += now_s() - t0;
            sum += r.recommended.cpu_request_cores;
        }
        printf("  %-6s %.3f s  %.0f containers/s  (mean CPU request %.3f cores)\n",
               kopt_engine_strategy_name(o.strategy), spent, (double)containers / spent,
               sum / (double)containers);
    }
    rc = 0;
out:
    free(hours);
    free(cpu);
    free(mem);
    return rc;
}
