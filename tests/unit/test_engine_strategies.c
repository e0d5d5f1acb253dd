/* The vpa and simple strategies against their published rules, and the
 * decaying histogram under them. Bucket bounds as in test_engine.c:
 *   0.5 cores -> bucket 128, upper 0.515502;  0.2 -> 109, upper 0.204002;
 *   0.8 cores -> 138, upper 0.839698;  1.0 -> 142, upper 1.020659;
 *   0.005 -> 33, upper 0.005003;  400 MiB -> 123, upper 403.9092 MiB;
 *   500 MiB -> 128, upper 515.5019 MiB;  50 MiB -> 81, upper 52.0395 MiB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/engine.h>

#include "assert_near.h"

#define MIB 1048576ULL
#define HOUR 3600
#define DAY 86400
#define NOW ((int64_t)1700000000 / HOUR * HOUR)
#define MAX_HOURS 200


typedef struct {
    kopt_engine_hour_t hours[MAX_HOURS];
    kopt_engine_bucket_t cpu[MAX_HOURS][2];
    kopt_engine_bucket_t mem[MAX_HOURS];
    kopt_engine_container_t c;
} fixture_t;

static fixture_t *fixture_new(double cpu_req, uint64_t mem_req)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->c.hours = f->hours;
    f->c.current.cpu_request_cores = cpu_req;
    f->c.current.memory_request_bytes = mem_req;
    return f;
}

/* One hour `ago` hours before NOW: n1 windows at cpu1, 60 - n1 at cpu2. */
static kopt_engine_hour_t *hour(fixture_t *f, int ago, double cpu1, uint32_t n1, double cpu2,
                                uint64_t mem)
{
    size_t k = f->c.n_hours++;
    kopt_engine_hour_t *h = &f->hours[k];

    assert_true(k < MAX_HOURS);
    h->start = NOW - (int64_t)ago * HOUR;
    h->windows = 60;
    h->pods = 1;
    f->cpu[k][0] = (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(cpu1), n1};
    f->cpu[k][1] = (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(cpu2), 60 - n1};
    f->mem[k] = (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket((double)mem), 60};
    h->cpu_hist = f->cpu[k];
    h->cpu_hist_len = n1 < 60 ? 2 : 1;
    h->mem_hist = &f->mem[k];
    h->mem_hist_len = 1;
    h->cpu_peak_cores = n1 < 60 ? fmax(cpu1, cpu2) : cpu1;
    h->mem_peak_bytes = mem;
    return h;
}

static void run(kopt_engine_strategy_t s, fixture_t *f, size_t per_pod, kopt_engine_result_t *r)
{
    kopt_engine_options_t o;

    kopt_engine_options_default(&o);
    o.strategy = s;
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, per_pod, NOW, r), 0);
}

/* The vpa strategy with a lookback of 9 days (the default 8 would cut the
 * first hour of a history 193 hours long). */
static void run_vpa_9_days(fixture_t *f, kopt_engine_result_t *r)
{
    kopt_engine_options_t o;

    kopt_engine_options_default(&o);
    o.strategy = KOPT_STRATEGY_VPA;
    o.lookback_s = 9 * DAY;
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, 1, NOW, r), 0);
}

/* An hour `ago` hours before NOW holding only `windows` one-minute windows,
 * all at `cpu` and `mem`. */
static kopt_engine_hour_t *part_hour(fixture_t *f, int ago, uint32_t windows, double cpu,
                                     uint64_t mem)
{
    kopt_engine_hour_t *h = hour(f, ago, cpu, 60, 0, mem);
    size_t k = (size_t)(h - f->hours);

    h->windows = windows;
    f->cpu[k][0].count = windows;
    f->mem[k].count = windows;
    return h;
}

/* 8 days at 0.5 cores, 400 MiB. The vpa strategy uses VPA's own buckets:
 * bucket b starts at first x (1.05^b - 1) / 0.05 (first 0.01 core, 1e7
 * bytes) and a percentile is its bucket's end; amounts are whole millicores
 * and bytes, truncated at each step. d = min(lifespan, samples / 1440): the
 * first sample starts at NOW - 192 h, the last at NOW - 60 s, so lifespan =
 * 691140 s = 7.9993056 days (11520 samples / 1440 = 8).
 * CPU: 0.5 cores -> bucket 25, end 0.5111345 -> 511 m + 76 m = 587 m;
 * lower 587 x (1 + 0.001/d)^-2 = 586.85 -> 586 m; upper 587 x (1 + 1/d) =
 * 660.38 -> 660 m. Memory: p90 of 8 interval peaks of 400 MiB: bucket 23,
 * end 445019988 + 66752998 = 511772986 bytes = 488.06 MiB -> 489 MiB
 * (rounded up to MiB); upper x 1.1250109 = 549.08 MiB -> 550 MiB. */
static void vpa_constant(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.5, 60, 0, 400 * MIB);
    run(KOPT_STRATEGY_VPA, f, 1, &r);
    assert_near(r.cpu_percentile, 0.9, 0);
    assert_near(r.memory_percentile, 0.9, 0);
    assert_near(r.history_days, 691140.0 / 86400, 1e-12);
    assert_near(r.recommended.cpu_request_cores, 0.587, 1e-12);
    assert_near(r.cpu_upper, 0.660, 1e-12);
    assert_near(r.cpu_lower, 0.586, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 489 * MIB);
    assert_int_equal(r.memory_upper, 550 * MIB);
    free(f);
}

/* Memory intervals start at the first sample, not at an hour, and each
 * peak weighs as of its interval's end: 8 days give 8 peaks weighing 2, 4,
 * ..., 256 (total 510). The first hour (NOW - 193 h) holds 20 windows, so
 * the first sample is at NOW - 193 h + 40 min = t0 and interval k is
 * [t0 + k day, t0 + (k + 1) day). Memory is 300 MiB but 1000 MiB in the
 * hours 24..2 ago; the last hour (1 ago) has 40 windows at 300 MiB, the
 * last starting at NOW - 21 min, before t0 + 8 days = NOW - 20 min: it is
 * in interval 7, no ninth interval. The hour 25 ago straddles t0 + 7 days
 * (40 of its windows start before): interval 6.
 * Interval 7's 1000 MiB weighs 256/510 = 50.2 %, so p50 and p90 are both
 * 1000 MiB: bucket 37, end 1077095457 + 161564318 = 1238659775 bytes =
 * 1181.28 MiB -> 1182; lower x (1 + 0.001/d)^-2 = 1180.98 -> 1181 MiB,
 * d = (NOW - 21 min - t0) = 691140 s = 7.9993056 days. (Intervals cut at
 * the first hour's start would make a ninth of the last hour alone, at
 * 300 MiB with the highest weight, and drop p50 to 300 MiB.) */
static void vpa_interval_peaks(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    part_hour(f, 193, 20, 0.5, 300 * MIB);
    for (int ago = 192; ago >= 2; ago--)
        hour(f, ago, 0.5, 60, 0, ago <= 24 ? 1000 * MIB : 300 * MIB);
    part_hour(f, 1, 40, 0.5, 300 * MIB);
    run_vpa_9_days(f, &r);
    assert_near(r.history_days, 691140.0 / 86400, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 1182 * MIB);
    assert_int_equal(r.memory_lower, 1181 * MIB);
    free(f);
}

/* An hour across an interval boundary goes where most of its windows
 * start. 31 hours; 300 MiB but 1000 MiB in the hour 24 h after the first.
 * First hour with 20 windows: t0 = its start + 40 min, the boundary t0 + 1
 * day cuts that hour after 40 windows -> interval 0 (weight 2; interval 1
 * at 300 MiB weighs 4): p50 = 300 MiB, lower 380258472 x (1 + 0.001/d)^-2
 * = 362.07 MiB -> 363, d = 109140 s = 1.2631944 days; p90 = 1000 MiB ->
 * 1182. First hour with 40 windows: t0 = its start + 20 min, 20 windows
 * before the boundary, 40 after -> interval 1: 1000 MiB weighs 4/6, p50 =
 * 1000 MiB: 1236722224 bytes = 1179.43 MiB -> 1180 (d = 110340 s). */
static void vpa_boundary_hour(void **state)
{
    kopt_engine_result_t r;

    (void)state;
    for (int first = 20; first <= 40; first += 20) {
        fixture_t *f = fixture_new(1.0, 1024 * MIB);

        part_hour(f, 31, (uint32_t)first, 0.5, 300 * MIB);
        for (int ago = 30; ago >= 1; ago--)
            hour(f, ago, 0.5, 60, 0, ago == 7 ? 1000 * MIB : 300 * MIB);
        run(KOPT_STRATEGY_VPA, f, 1, &r);
        assert_int_equal(r.recommended.memory_request_bytes, 1182 * MIB);
        assert_int_equal(r.memory_lower, first == 20 ? 363 * MIB : 1180 * MIB);
        free(f);
    }
}

/* CPU in VPA's buckets. A rollup bucket (5 % from 1 m) is split over the
 * VPA buckets its usage would read as (whole millicores, rounded up),
 * evenly, but never above the hour's peak. 36 windows at 0.5 and 24 at 1.0
 * cores an hour, peak 1.0: rollup bucket 128 = [0.4909542, 0.5155019) reads
 * as VPA bucket 25 up to 0.511 (511 m; 512 m starts bucket 26), a share
 * (0.511 - 0.4909542) / 0.0245477 = 81.66 %. p50: 36 x 0.8166 = 29.40 of
 * 60 < 30, so bucket 26: end 0.5466913 -> 546 + 81 = 627 m, lower x
 * (1 + 0.001/d)^-2 = 626.84 -> 0.626. p90: 1.0's bucket 36 (its rollup
 * bucket ends above the peak, so all of it): end 1.0162814 -> 1016 + 152 =
 * 1168 m. 0.012 cores, two containers a pod: VPA's bucket 1 = [0.01,
 * 0.0205) -> 20 + 3 = 23 m, above the pod minimum 25 / 2 = 12 m. */
static void vpa_cpu_buckets(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.5, 36, 1.0, 400 * MIB);
    run(KOPT_STRATEGY_VPA, f, 1, &r);
    assert_near(r.cpu_lower, 0.626, 1e-12);
    assert_near(r.recommended.cpu_request_cores, 1.168, 1e-12);
    free(f);
    f = fixture_new(1.0, 1024 * MIB);
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.012, 60, 0, 400 * MIB);
    run(KOPT_STRATEGY_VPA, f, 2, &r);
    assert_near(r.recommended.cpu_request_cores, 0.023, 1e-12);
    free(f);
}

/* VPA weights a CPU sample by the request in force (min 0.1 core). Days
 * 8..5 ago: 0.8 cores under a 4-core request (weight 4); days 4..1 ago: 0.2
 * cores under 0.05 (weight 0.1). Decay makes the older half worth 2^-4 of
 * the newer per unit weight, so VPA's older share is 4/16 / (4/16 + 0.1) =
 * 71 %: p50 and p90 in 0.8's bucket 32, which ends at 0.8006377 -> 800 +
 * 120 = 920 m. (kopt weighs every window the same: test_engine_kopt.c.) */
static void vpa_weights_by_request(void **state)
{
    fixture_t *f = fixture_new(0.05, 256 * MIB);
    kopt_engine_result_t vpa;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++) {
        kopt_engine_hour_t *h = hour(f, ago, ago > 96 ? 0.8 : 0.2, 60, 0, 300 * MIB);

        h->cpu_request_cores = ago > 96 ? 4.0 : 0.05;
    }
    run(KOPT_STRATEGY_VPA, f, 1, &vpa);
    assert_near(vpa.recommended.cpu_request_cores, 0.920, 1e-12);
    /* lower: 920 x (1 + 0.001/7.9993)^-2 = 919.77 -> 0.919. */
    assert_near(vpa.cpu_lower, 0.919, 1e-12);
    free(f);
}

/* An OOM kill at 400 MiB on the newest day: VPA puts max(400 x 1.2, 400 +
 * 100) = 500 MiB into that interval's peak. Interval weights double each
 * day, so the newest holds 256/510 = 50.2 %: the 400 MiB intervals hold
 * 49.8 % < 50 %, and p50 and p90 are both 500's bucket 26: end 546691264
 * + 82003689 = 628694953 bytes = 599.57 MiB -> 600 MiB. */
static void vpa_oom_bump(void **state)
{
    fixture_t *f = fixture_new(0.5, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++) {
        kopt_engine_hour_t *h = hour(f, ago, 0.5, 60, 0, 400 * MIB);

        if (ago == 2) {
            h->oom_kills = 1;
            h->oom_usage_bytes = 400 * MIB;
        }
    }
    run(KOPT_STRATEGY_VPA, f, 1, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 600 * MIB);
    /* lower: 599.57 x (1 + 0.001/7.9993)^-2 = 599.42 -> 600 MiB. */
    assert_int_equal(r.memory_lower, 600 * MIB);
    free(f);
}

/* Pod minimums, 25 millicores and 250 MiB, spread over 2 containers and
 * truncated as VPA's ScaleResource does: 12 m (not 12.5) and 125 MiB. 0.005
 * cores -> VPA bucket 0, end 0.01 -> 10 + 1 = 11 m < 12 m; 50 MiB -> bucket
 * 4, end 55256312 -> 63544758 bytes < 125 MiB = 131072000 bytes. */
static void vpa_pod_minimums(void **state)
{
    fixture_t *f = fixture_new(0.1, 64 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.005, 60, 0, 50 * MIB);
    run(KOPT_STRATEGY_VPA, f, 2, &r);
    assert_near(r.recommended.cpu_request_cores, 0.012, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 125 * MIB);
    run(KOPT_STRATEGY_VPA, f, 1, &r); /* one container: 25 m, 250 MiB */
    assert_near(r.recommended.cpu_request_cores, 0.025, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 250 * MIB);
    free(f);
}

/* simple: CPU = p95 of window means, no margin; memory = highest peak x
 * 1.15. 56 windows at 0.5 and 4 at 1.0 an hour: 56/60 = 93.3 % < 95 %, so
 * p95 is 1.0's bucket, whose upper bound 1.020659 passes the highest peak
 * seen (1.0): a percentile never says more than the maximum, so 1.0. Memory 300 MiB but one hour at
 * 700 MiB: 700 x 1.15 = 805 MiB exactly. */
static void simple_rule(void **state)
{
    fixture_t *f = fixture_new(2.0, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour(f, ago, 0.5, 56, 1.0, ago == 50 ? 700 * MIB : 300 * MIB);
    run(KOPT_STRATEGY_SIMPLE, f, 1, &r);
    assert_near(r.cpu_percentile, 0.95, 0);
    assert_near(r.memory_percentile, 1.0, 0);
    assert_near(r.recommended.cpu_request_cores, 1.0, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 805 * MIB);
    assert_non_null(strstr(r.explanation, "the simple rule"));
    free(f);
}

/* The histogram itself: the VPA's percentile rule, decay, and the moving
 * reference. Two equal weights in buckets 10 and 20: p50 reaches 50 % in
 * bucket 10 -> its upper bound 0.001 x 1.05^10; p51 -> bucket 20. A sample a
 * half-life later weighs double. */
static void histogram_rules(void **state)
{
    kopt_dhist_t h;

    (void)state;
    kopt_dhist_init(&h, KOPT_DHIST_CPU, 3600);
    assert_true(kopt_dhist_empty(&h));
    assert_near(kopt_dhist_percentile(&h, 0.5), 0, 0);
    kopt_dhist_add(&h, 10, 1.0, 0);
    kopt_dhist_add(&h, 20, 1.0, 0);
    assert_near(kopt_dhist_percentile(&h, 0.5), 0.001 * pow(1.05, 10), 1e-15);
    assert_near(kopt_dhist_percentile(&h, 0.51), 0.001 * pow(1.05, 20), 1e-15);
    kopt_dhist_add(&h, 10, 1.0, 3600); /* weighs 2: bucket 10 holds 3/4 */
    assert_near(h.total, 4.0, 1e-12);
    assert_near(kopt_dhist_percentile(&h, 0.75), 0.001 * pow(1.05, 10), 1e-15);
    /* 1000 half-lives later: the reference moves instead of overflowing;
     * the old weight (4) shrinks to 4 x 2^-1000, the new sample weighs 1. */
    kopt_dhist_add(&h, 30, 1.0, 3600 * 1000);
    assert_true(isfinite(h.total));
    assert_near(h.total, 1.0, 1e-12);
    assert_near(kopt_dhist_percentile(&h, 0.5), 0.001 * pow(1.05, 30), 1e-15);
    /* The last, open bucket reports its lower bound. */
    kopt_dhist_init(&h, KOPT_DHIST_MEMORY, 0);
    kopt_dhist_add(&h, 100000, 1.0, 0);
    assert_near(kopt_dhist_percentile(&h, 1.0), kopt_memory_bucket_lower(KOPT_MEMORY_BUCKETS - 1),
                1);
}

/* Confidence model "none" leaves the bounds at the bare percentiles: one
 * hour at 0.5 cores gives kopt's upper p99 0.515502 -> 0.516 instead of
 * 12.888, and as the low-confidence hold is capped by the upper bound, the
 * request is cut to 0.516 too. */
static void confidence_none(void **state)
{
    fixture_t *f = fixture_new(1.0, 512 * MIB);
    kopt_engine_options_t o;
    kopt_engine_result_t r;

    (void)state;
    hour(f, 1, 0.5, 60, 0, 512 * MIB);
    kopt_engine_options_default(&o);
    o.confidence = KOPT_CONFIDENCE_NONE;
    assert_int_equal(kopt_engine_analyze_container(&o, &f->c, 1, NOW, &r), 0);
    assert_near(r.cpu_upper, 0.516, 1e-12);
    assert_near(r.recommended.cpu_request_cores, 0.516, 1e-12);
    assert_true(r.flags & KOPT_ENGINE_LOW_CONFIDENCE);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vpa_constant),           cmocka_unit_test(vpa_interval_peaks),
        cmocka_unit_test(vpa_boundary_hour),      cmocka_unit_test(vpa_cpu_buckets),
        cmocka_unit_test(vpa_weights_by_request), cmocka_unit_test(vpa_oom_bump),
        cmocka_unit_test(vpa_pod_minimums),       cmocka_unit_test(simple_rule),
        cmocka_unit_test(histogram_rules),        cmocka_unit_test(confidence_none),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
