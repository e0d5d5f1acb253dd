/* The policies around every strategy (low confidence, HPA, idle, savings,
 * rounding, min/max, limits, replayed risk) with hand-computed numbers; the
 * kopt model itself is in test_engine_kopt.c.
 *
 * Bucket arithmetic used throughout (kopt/usage_buckets.h): a value v falls
 * in bucket i = 1 + floor(ln(v / first) / ln 1.05), whose upper bound is
 * first x 1.05^i; percentiles report that upper bound (the VPA's rule).
 *   0.5 cores  -> i = 1 + floor(ln 500 / ln 1.05) = 1 + floor(127.37) = 128,
 *                 upper 0.001 x 1.05^128 = 0.515502 cores
 *   1.0 cores  -> 142, upper 1.020659;  0.1 -> 95, upper 0.103035
 *   0.7 cores  -> 135, upper 0.725363;  0.05 -> 81, upper 0.052040
 *   0.3 cores  -> 117, upper 0.301403;  0.002 -> 15, upper 0.002079
 *   512 MiB    -> 128, upper 515.5019 MiB;  400 MiB -> 123, upper 403.9092 MiB
 *   256 MiB -> 114 (260.3635), 272 -> 115 (273.3817), 288 -> 117 (301.4033),
 *   304 MiB -> 118 (316.4735 MiB) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/engine.h>

#include "assert_near.h"

#define MIB 1048576ULL
#define HOUR 3600
#define DAY 86400
#define NOW ((int64_t)1700000000 / HOUR * HOUR)
#define MAX_HOURS 400


typedef struct {
    kopt_engine_hour_t hours[MAX_HOURS];
    kopt_engine_bucket_t cpu[MAX_HOURS][2];
    kopt_engine_bucket_t mem[MAX_HOURS][2];
    kopt_engine_container_t c;
} fixture_t;

static fixture_t *fixture_new(double cpu_req, double cpu_lim, uint64_t mem_req, uint64_t mem_lim)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->c.name = "app";
    f->c.hours = f->hours;
    f->c.current.cpu_request_cores = cpu_req;
    f->c.current.cpu_limit_cores = cpu_lim;
    f->c.current.memory_request_bytes = mem_req;
    f->c.current.memory_limit_bytes = mem_lim;
    return f;
}

/* One hour `ago` hours before NOW: n1 windows at cpu1/mem1, n2 at cpu2/mem2. */
static kopt_engine_hour_t *hour2(fixture_t *f, int ago, double cpu1, uint64_t mem1, uint32_t n1,
                                 double cpu2, uint64_t mem2, uint32_t n2)
{
    size_t k = f->c.n_hours++;
    kopt_engine_hour_t *h = &f->hours[k];

    assert_true(k < MAX_HOURS);
    h->start = NOW - (int64_t)ago * HOUR;
    h->windows = n1 + n2;
    h->pods = 1;
    f->cpu[k][0] = (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(cpu1), n1};
    f->mem[k][0] = (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket((double)mem1), n1};
    f->cpu[k][1] = (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(cpu2), n2};
    f->mem[k][1] = (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket((double)mem2), n2};
    h->cpu_hist = f->cpu[k];
    h->mem_hist = f->mem[k];
    h->cpu_hist_len = h->mem_hist_len = n2 > 0 ? 2 : 1;
    h->cpu_peak_cores = fmax(cpu1, n2 > 0 ? cpu2 : 0);
    h->cpu_mean_cores = (cpu1 * n1 + cpu2 * n2) / (n1 + n2);
    h->mem_peak_bytes = n2 > 0 && mem2 > mem1 ? mem2 : mem1;
    return h;
}

static kopt_engine_hour_t *hour(fixture_t *f, int ago, double cpu, uint64_t mem)
{
    return hour2(f, ago, cpu, mem, 60, 0, 0, 0);
}

static void analyze(const kopt_engine_options_t *o, fixture_t *f, kopt_engine_result_t *r)
{
    assert_int_equal(kopt_engine_analyze_container(o, &f->c, 1, NOW, r), 0);
    assert_true(strlen(r->explanation) > 0);
    assert_true(strlen(r->explanation) < KOPT_ENGINE_EXPLANATION_MAX);
}

/* 14 days at 0.5 cores and 512 MiB; the default lookback reads 8 of them. */
static void constant_load(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(1.0, 2.0, 1024 * MIB, 2048 * MIB);
    kopt_engine_result_t r;

    (void)state;
    kopt_engine_options_default(&o);
    for (int ago = 1; ago <= 14 * 24; ago++)
        hour(f, ago, 0.5, 512 * MIB);
    analyze(&o, f, &r);
    /* 192 hours x 60 windows = 11520; lifespan 8 days; d = min(8, 11520/1440) = 8. */
    assert_int_equal(r.history.windows, 11520);
    assert_int_equal(r.history.hours, 192);
    assert_near(r.history_days, 8.0, 1e-9);
    assert_near(r.confidence, 1.0, 1e-9);
    /* Everything is bucket 128: the request is its upper bound, 0.515502 ->
     * 0.516 (p100); upper: p99 x (1 + 1/8) = 0.579940 -> 0.580; lower: p50
     * x (1 + 0.001/8)^-2 = 0.515373 -> 0.516. */
    assert_near(r.recommended.cpu_request_cores, 0.516, 1e-9);
    assert_near(r.cpu_upper, 0.580, 1e-9);
    assert_near(r.cpu_lower, 0.516, 1e-9);
    /* Memory: daily peaks 512 MiB + 256 MiB headroom = 768; upper x 1.125 = 864. */
    assert_int_equal(r.recommended.memory_request_bytes, 768 * MIB);
    assert_int_equal(r.memory_upper, 864 * MIB);
    /* keep-ratio limits: 2 x request. */
    assert_near(r.recommended.cpu_limit_cores, 1.032, 1e-9);
    assert_int_equal(r.recommended.memory_limit_bytes, 1536 * MIB);
    assert_near(r.cpu_percentile, 1.0, 0);
    assert_near(r.memory_percentile, 0.90, 0);
    assert_true(r.flags & KOPT_ENGINE_OVER_PROVISIONED);
    assert_false(r.flags &
                 (KOPT_ENGINE_IDLE | KOPT_ENGINE_LOW_CONFIDENCE | KOPT_ENGINE_OOM_BUMPED));
    /* Nothing in the history passes the new values. */
    assert_int_equal(r.risk.windows, 11520);
    assert_int_equal(r.risk.cpu_windows_over_request, 0);
    assert_int_equal(r.risk.memory_windows_oom, 0);
    free(f);
}

/* One hour at 0.5 cores against a 1-core request: d = min(1/24, 60 x 60 s
 * / 1 day) = 1/24 day. Upper = p99 0.515502 x (1 + 24) = 12.888; lower =
 * p50 0.515502 x (1.024)^-2 = 0.491627 -> 0.492. kopt does not cut on an
 * hour: request = max(0.516, min(upper, 1.0)) = 1.0. */
static void short_history_low_confidence(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(1.0, 0, 256 * MIB, 0);
    kopt_engine_result_t r;

    (void)state;
    kopt_engine_options_default(&o);
    hour(f, 1, 0.5, 512 * MIB);
    analyze(&o, f, &r);
    assert_near(r.history_days, 1.0 / 24, 1e-12);
    assert_near(r.confidence, 1.0 / 24 / 8, 1e-12);
    assert_true(r.flags & KOPT_ENGINE_LOW_CONFIDENCE);
    assert_near(r.cpu_upper, 12.888, 1e-9);
    assert_near(r.cpu_lower, 0.492, 1e-9);
    assert_near(r.recommended.cpu_request_cores, 1.0, 1e-9);
    /* Memory must grow (768 MiB > 256 MiB): raising is never held back. */
    assert_int_equal(r.recommended.memory_request_bytes, 768 * MIB);
    assert_non_null(strstr(r.explanation, "not lowered"));
    /* The vpa strategy reports wide bounds too but does not hold: VPA's
     * bucket of 0.5 cores ends at 0.5111345 -> 511 + 76 = 587 m. */
    o.strategy = KOPT_STRATEGY_VPA;
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.587, 1e-9);
    assert_true(r.flags & KOPT_ENGINE_LOW_CONFIDENCE);
    free(f);
}

/* An HPA at 60 % of the pod's CPU request (app 1.0 + sidecar 0.1 = 1.1 cores,
 * scale-out at 0.66 cores a pod). New requests: app 0.725363 -> 0.726;
 * sidecar 0.052040 -> 0.053; sum 0.779. T' = round(60 x 1.1 / 0.779) =
 * round(84.72) = 85 %. */
static void hpa_target_follows_request(void **state)
{
    kopt_engine_options_t o;
    fixture_t *app = fixture_new(1.0, 0, 512 * MIB, 0);
    fixture_t *side = fixture_new(0.1, 0, 64 * MIB, 0);
    kopt_engine_container_t cs[2];
    kopt_engine_workload_t w = {0};
    kopt_engine_result_t r[2];
    kopt_engine_workload_result_t wr;

    (void)state;
    kopt_engine_options_default(&o);
    for (int ago = 1; ago <= 8 * 24; ago++) {
        hour(app, ago, 0.7, 300 * MIB);
        hour(side, ago, 0.05, 50 * MIB);
    }
    cs[0] = app->c;
    cs[1] = side->c;
    w.kind = "Deployment";
    w.name = "web";
    w.replicas = 4;
    w.hpa = (kopt_engine_hpa_t){true, true, 2, 10, 60};
    w.containers = cs;
    w.n_containers = 2;
    assert_int_equal(kopt_engine_analyze_workload(&o, &w, NOW, r, &wr), 0);
    assert_near(r[0].recommended.cpu_request_cores, 0.726, 1e-9);
    assert_near(r[1].recommended.cpu_request_cores, 0.053, 1e-9);
    assert_true(wr.hpa_adjusted);
    assert_int_equal(wr.hpa_target_percent, 85);
    assert_near(wr.hpa_scale_out_cores_old, 0.66, 1e-9);
    assert_near(wr.hpa_scale_out_cores_new, 0.85 * 0.779, 1e-9);
    assert_true(r[0].flags & KOPT_ENGINE_HPA_ADJUSTED);
    assert_false(r[0].flags & KOPT_ENGINE_HPA_TARGET_CLAMPED);
    assert_int_equal(r[1].hpa_target_percent, 85);
    assert_non_null(strstr(r[0].explanation, "85 %"));
    /* Savings x 4 replicas: CPU (1.1 - 0.779) x 4 = 1.284 cores. */
    assert_near(wr.savings.cpu_cores, 1.284, 1e-9);

    /* 0.3 cores against a 1-core request at 80 %: 0.301403 -> 0.302; T' =
     * 80 / 0.302 = 264.9 -> clamped to 100: scale-out moves from 0.8 to
     * 0.302 cores a pod, and the explanation says so. */
    app->c.n_hours = 0;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(app, ago, 0.3, 300 * MIB);
    w.hpa.target_cpu_percent = 80;
    w.n_containers = 1;
    cs[0] = app->c;
    assert_int_equal(kopt_engine_analyze_workload(&o, &w, NOW, r, &wr), 0);
    assert_int_equal(wr.hpa_target_percent, 100);
    assert_true(r[0].flags & KOPT_ENGINE_HPA_TARGET_CLAMPED);
    assert_near(wr.hpa_scale_out_cores_new, 0.302, 1e-9);
    assert_non_null(strstr(r[0].explanation, "moves scale-out"));
    /* An HPA on a custom metric only: nothing to adjust. */
    w.hpa.scales_on_cpu = false;
    assert_int_equal(kopt_engine_analyze_workload(&o, &w, NOW, r, &wr), 0);
    assert_false(wr.hpa_adjusted);
    assert_false(r[0].flags & KOPT_ENGINE_HPA_ADJUSTED);
    free(app);
    free(side);
}

/* 3 days at 0.002 cores: peak < 0.01 -> idle; the CPU request is kopt's
 * 0.025-core floor. 12 hours alone are not enough to call it idle. */
static void idle_workload_flagged(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(0.5, 0, 256 * MIB, 0);
    kopt_engine_container_t c;
    kopt_engine_workload_t w = {0};
    kopt_engine_result_t r;
    kopt_engine_workload_result_t wr;

    (void)state;
    kopt_engine_options_default(&o);
    for (int ago = 1; ago <= 3 * 24; ago++)
        hour(f, ago, 0.002, 20 * MIB);
    analyze(&o, f, &r);
    assert_true(r.flags & KOPT_ENGINE_IDLE);
    assert_near(r.recommended.cpu_request_cores, 0.025, 1e-12);
    /* 20 MiB daily peaks + 256 MiB headroom. */
    assert_int_equal(r.recommended.memory_request_bytes, 276 * MIB);
    assert_non_null(strstr(r.explanation, "idle"));
    c = f->c;
    w.replicas = 2;
    w.containers = &c;
    w.n_containers = 1;
    assert_int_equal(kopt_engine_analyze_workload(&o, &w, NOW, &r, &wr), 0);
    assert_true(wr.idle);

    f->c.n_hours = 12;
    analyze(&o, f, &r);
    assert_false(r.flags & KOPT_ENGINE_IDLE);
    free(f);
}

/* Prices 0.04 a core-hour, 0.005 a GiB-hour, 730 h a month. 2 cores/4 GiB
 * down to 0.5/1 GiB saves 1.5 cores and 3 GiB: (1.5 x 0.04 + 3 x 0.005) x
 * 730 = 54.75 a month; 0.25 -> 0.5 cores costs (-0.25 x 0.04) x 730 = -7.3. */
static void savings_math(void **state)
{
    kopt_engine_prices_t p = {0.04, 0.005, 730, "EUR"};
    kopt_resources_t cur = {2.0, 0, 4096 * MIB, 0}, rec = {0.5, 0, 1024 * MIB, 0};
    kopt_engine_result_t res[2];
    kopt_engine_totals_t ns, ns2, cluster;
    kopt_engine_savings_t s;

    (void)state;
    kopt_engine_savings(&p, &cur, &rec, &s);
    assert_near(s.cpu_cores, 1.5, 1e-12);
    assert_int_equal(s.memory_bytes, (int64_t)3072 * MIB);
    assert_near(s.monthly_cost, 54.75, 1e-9);
    cur = (kopt_resources_t){0.25, 0, 1024 * MIB, 0};
    kopt_engine_savings(&p, &cur, &rec, &s);
    assert_near(s.cpu_cores, -0.25, 1e-12);
    assert_int_equal(s.memory_bytes, 0);
    assert_near(s.monthly_cost, -7.3, 1e-9);

    /* A workload of 3 replicas with two containers: requested (2 + 0.25) x 3
     * = 6.75 cores, recommended (0.5 + 0.5) x 3 = 3 cores; memory (4 + 1) x 3
     * = 15 GiB vs (1 + 1) x 3 = 6 GiB; saving (3.75 x 0.04 + 9 x 0.005) x 730
     * = (0.15 + 0.045) x 730 = 142.35. */
    memset(res, 0, sizeof(res));
    res[0].current = (kopt_resources_t){2.0, 0, 4096 * MIB, 0};
    res[0].recommended = rec;
    res[1].current = cur;
    res[1].recommended = rec;
    kopt_engine_totals_init(&ns);
    kopt_engine_totals_add_workload(&ns, &p, res, 2, 3, false);
    assert_near(ns.requested_cpu_cores, 6.75, 1e-9);
    assert_near(ns.recommended_cpu_cores, 3.0, 1e-9);
    assert_int_equal(ns.savings.memory_bytes, (int64_t)9 * 1024 * MIB);
    assert_near(ns.savings.monthly_cost, 142.35, 1e-9);
    /* Another namespace with one idle single-replica workload that needs more:
     * 0.25 -> 0.5 cores, -7.3. The cluster sums both: 142.35 - 7.3 = 135.05. */
    kopt_engine_totals_init(&ns2);
    kopt_engine_totals_add_workload(&ns2, &p, &res[1], 1, 1, true);
    kopt_engine_totals_init(&cluster);
    kopt_engine_totals_merge(&cluster, &ns);
    kopt_engine_totals_merge(&cluster, &ns2);
    assert_int_equal(cluster.workloads, 2);
    assert_int_equal(cluster.idle_workloads, 1);
    assert_int_equal(cluster.containers, 3);
    assert_near(cluster.savings.cpu_cores, 3.5, 1e-9);
    assert_near(cluster.savings.monthly_cost, 135.05, 1e-9);
    assert_near(cluster.requested_monthly_cost - cluster.recommended_monthly_cost, 135.05, 1e-9);
}

/* Rounding goes up to whole units: 0.515502 -> 0.516 (millicores), with a
 * 0.1-core unit -> 0.6; 768 MiB stays 768 with a 1 MiB unit, -> 800 with a
 * 100 MiB one. Min/max: a 0.25-core maximum caps the request; a 1 GiB
 * minimum lifts it. */
static void rounding_and_min_max(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(1.0, 0, 1024 * MIB, 0);
    kopt_engine_result_t r;

    (void)state;
    kopt_engine_options_default(&o);
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.5, 512 * MIB);
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.516, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 768 * MIB);
    o.cpu_round_cores = 0.1;
    o.memory_round_bytes = 100 * MIB;
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.6, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 800 * MIB);
    kopt_engine_options_default(&o);
    o.cpu_max_cores = 0.25;
    o.memory_min_bytes = 1024 * MIB;
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.25, 1e-12);
    assert_true(r.flags & KOPT_ENGINE_CPU_AT_MAX);
    assert_int_equal(r.recommended.memory_request_bytes, 1024 * MIB);
    assert_true(r.flags & KOPT_ENGINE_MEMORY_AT_MIN);
    assert_true(r.cpu_upper <= 0.25 + 1e-12);
    /* Bad options are refused. */
    o.cpu_percentile = 1.5;
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, 1, NOW, &r), -EINVAL);
    free(f);
}

/* Request 0.516 / memory 768 MiB (constant load above); current request 0.5
 * with limit 0.5 (ratio 1), memory 512 / 1024 MiB (ratio 2). */
static void limits_policies(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(0.5, 0.5, 512 * MIB, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    kopt_engine_options_default(&o);
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.5, 512 * MIB);
    analyze(&o, f, &r); /* keep ratio: 0.516 x 1; 768 x 2 MiB */
    assert_near(r.recommended.cpu_limit_cores, 0.516, 1e-12);
    assert_int_equal(r.recommended.memory_limit_bytes, 1536 * MIB);
    o.limits = KOPT_LIMITS_FROM_UPPER; /* upper: 0.580 cores, 864 MiB (see constant_load) */
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_limit_cores, 0.580, 1e-12);
    assert_int_equal(r.recommended.memory_limit_bytes, 864 * MIB);
    o.limits = KOPT_LIMITS_LEAVE; /* 0.5 < 0.516 would be refused: raised to the request */
    analyze(&o, f, &r);
    assert_near(r.recommended.cpu_limit_cores, 0.516, 1e-12);
    assert_int_equal(r.recommended.memory_limit_bytes, 1024 * MIB);

    /* Throttled in 20 % of periods (> 5 %): keep-ratio's 0.516 is raised to
     * the upper bound 0.580. */
    for (size_t i = 0; i < f->c.n_hours; i++) {
        f->hours[i].cpu_periods = 36000;
        f->hours[i].cpu_throttled_periods = 7200;
        f->hours[i].cpu_throttled_seconds = 100;
    }
    o.limits = KOPT_LIMITS_KEEP_RATIO;
    analyze(&o, f, &r);
    assert_true(r.flags & KOPT_ENGINE_CPU_THROTTLED);
    assert_near(r.recommended.cpu_limit_cores, 0.580, 1e-12);
    assert_near(r.history.cpu_throttled_seconds, 19200, 1e-9);
    assert_non_null(strstr(r.explanation, "throttled in 20 %"));
    free(f);
}

/* Ten hours inside the lookback, one older and one in the future (ignored):
 *   hours 1-8: 50 windows at 0.2 cores, 10 at 0.6, peak 0.6;
 *   hours 9-10: 60 at 0.2, peak 0.2;  memory: hours 1-3 have 5 windows at
 *   300 MiB, everything else 100 MiB.
 * Against request 0.4 / limit 0.5 cores, 200 / 250 MiB: 600 windows; 80 above
 * the CPU request (share 0.1333), 80 throttled, 8 hours with a peak above the
 * limit; 15 windows past the memory limit in 3 hours. */
static void replayed_risk_counts(void **state)
{
    fixture_t *f = fixture_new(0, 0, 0, 0);
    kopt_resources_t rec = {0.4, 0.5, 200 * MIB, 250 * MIB};
    kopt_engine_risk_t k;

    (void)state;
    for (int ago = 1; ago <= 10; ago++) {
        kopt_engine_hour_t *h;

        if (ago <= 8)
            h = hour2(f, ago, 0.2, 100 * MIB, 50, 0.6, 100 * MIB, 10);
        else
            h = hour(f, ago, 0.2, 100 * MIB);
        if (ago <= 3) {
            f->mem[f->c.n_hours - 1][0].count = 55;
            f->mem[f->c.n_hours - 1][1] =
                (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket(300.0 * MIB), 5};
            h->mem_hist_len = 2;
        }
    }
    hour2(f, 30, 0.6, 300 * MIB, 60, 0, 0, 0); /* before now - 24 h */
    hour2(f, 0, 0.6, 300 * MIB, 60, 0, 0, 0);  /* starts at now */
    kopt_engine_replay(&f->c, NOW, DAY, &rec, &k);
    assert_int_equal(k.windows, 600);
    assert_int_equal(k.cpu_windows_over_request, 80);
    assert_near(k.cpu_over_request_share, 80.0 / 600, 1e-12);
    assert_int_equal(k.cpu_windows_throttled, 80);
    assert_int_equal(k.cpu_hours_peak_over_limit, 8);
    assert_int_equal(k.memory_windows_over_request, 15);
    assert_int_equal(k.memory_windows_oom, 15);
    assert_int_equal(k.memory_hours_oom, 3);
    /* No limits: nothing can be throttled or OOM-killed by a limit. */
    rec.cpu_limit_cores = 0;
    rec.memory_limit_bytes = 0;
    kopt_engine_replay(&f->c, NOW, DAY, &rec, &k);
    assert_int_equal(k.cpu_windows_throttled, 0);
    assert_int_equal(k.memory_windows_oom, 0);
    free(f);
}

static void no_data_and_bad_input(void **state)
{
    kopt_engine_options_t o;
    fixture_t *f = fixture_new(0.5, 0, 256 * MIB, 0);
    kopt_engine_result_t r;
    kopt_engine_strategy_t s;

    (void)state;
    kopt_engine_options_default(&o);
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, 1, NOW, &r), -ENODATA);
    assert_near(r.recommended.cpu_request_cores, 0.5, 0);
    hour(f, 9 * 24, 0.5, 512 * MIB); /* older than the 8-day lookback */
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, 1, NOW, &r), -ENODATA);
    assert_int_equal(kopt_engine_analyze_container(NULL, &f->c, 1, NOW, &r), -EINVAL);
    assert_int_equal(kopt_engine_strategy_parse("vpa", &s), 0);
    assert_int_equal(s, KOPT_STRATEGY_VPA);
    assert_int_equal(kopt_engine_strategy_parse("VPA2", &s), -EINVAL);
    assert_string_equal(kopt_engine_strategy_name(KOPT_STRATEGY_SIMPLE), "simple");
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constant_load),
        cmocka_unit_test(short_history_low_confidence),
        cmocka_unit_test(hpa_target_follows_request),
        cmocka_unit_test(idle_workload_flagged),
        cmocka_unit_test(savings_math),
        cmocka_unit_test(rounding_and_min_max),
        cmocka_unit_test(limits_policies),
        cmocka_unit_test(replayed_risk_counts),
        cmocka_unit_test(no_data_and_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
