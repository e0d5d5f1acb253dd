/* The kopt model (engine_kopt_cpu.c, engine_kopt_memory.c) on constructed
 * series, with the numbers worked out by hand.
 *
 * Defaults: CPU from a time-weighted histogram (half-life 48 h) starting at
 * p80 and rising while 30 % more would cover >= 0.5 % more of the time, to
 * p99 at most, never below 0.025 cores; memory = p90 of the daily peaks
 * (days back from the last hour, weight 2^-day) + 256 MiB.
 *
 * Buckets (kopt/usage_buckets.h; a value reports its bucket's upper bound):
 *   0.1 -> 95 (0.103035)   0.2 -> 109 (0.204002)   0.24 -> 113 (0.248010)
 *   0.3 -> 117 (0.301403)  0.5 -> 128 (0.515502)   0.6 -> 132 (0.626596)
 *   0.8 -> 138 (0.839698)  1.0 -> 142 (1.020659)
 * Daily weights 1, 1/2, 1/4, ... 1/128 over 8 days sum to 1.9921875. */
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
#define NOW ((int64_t)1700000000 / HOUR * HOUR)
#define MAX_HOURS 400
#define PARTS 3


typedef struct {
    kopt_engine_hour_t hours[MAX_HOURS];
    kopt_engine_bucket_t cpu[MAX_HOURS][PARTS];
    kopt_engine_bucket_t mem[MAX_HOURS][PARTS];
    kopt_engine_container_t c;
    kopt_engine_options_t o;
} fixture_t;

/* One part of an hour: `n` windows at `cpu` cores and `mem` MiB. */
typedef struct {
    uint32_t n;
    double cpu;
    double mem_mib;
} part_t;

static fixture_t *fixture_new(double cpu_req, uint64_t mem_req)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->c.name = "app";
    f->c.hours = f->hours;
    f->c.current.cpu_request_cores = cpu_req;
    f->c.current.memory_request_bytes = mem_req;
    kopt_engine_options_default(&f->o);
    return f;
}

/* The hour `ago` hours before NOW, made of up to PARTS parts. */
static kopt_engine_hour_t *hour_of(fixture_t *f, int ago, const part_t *p, size_t n)
{
    size_t k = f->c.n_hours++;
    kopt_engine_hour_t *h = &f->hours[k];
    double sum = 0;

    assert_true(k < MAX_HOURS && n <= PARTS);
    memset(h, 0, sizeof(*h));
    h->start = NOW - (int64_t)ago * HOUR;
    h->pods = 1;
    h->cpu_hist = f->cpu[k];
    h->mem_hist = f->mem[k];
    for (size_t i = 0; i < n; i++) {
        uint64_t mem = (uint64_t)(p[i].mem_mib * MIB);

        f->cpu[k][i] = (kopt_engine_bucket_t){(uint16_t)kopt_cpu_bucket(p[i].cpu), p[i].n};
        f->mem[k][i] = (kopt_engine_bucket_t){(uint16_t)kopt_memory_bucket((double)mem), p[i].n};
        h->windows += p[i].n;
        sum += p[i].cpu * p[i].n;
        h->cpu_peak_cores = fmax(h->cpu_peak_cores, p[i].cpu);
        if (mem > h->mem_peak_bytes)
            h->mem_peak_bytes = mem;
    }
    h->cpu_hist_len = h->mem_hist_len = n;
    h->cpu_mean_cores = sum / h->windows;
    return h;
}

static void flat_hour(fixture_t *f, int ago, double cpu, double mem_mib)
{
    part_t p = {60, cpu, mem_mib};

    hour_of(f, ago, &p, 1);
}

static void analyze(fixture_t *f, kopt_engine_result_t *r)
{
    assert_int_equal(kopt_engine_analyze_container(&f->o, &f->c, 1, NOW, r), 0);
    assert_true(r->cpu_lower <= r->recommended.cpu_request_cores);
    assert_true(r->cpu_upper >= r->recommended.cpu_request_cores);
    assert_true(r->memory_lower <= r->recommended.memory_request_bytes);
    assert_true(r->memory_upper >= r->recommended.memory_request_bytes);
}

/* 8 days at 0.5 cores and 512 MiB: everything in one bucket, so the
 * request is that bucket, 0.515502 -> 0.516 (p100: nothing above it);
 * memory 512 + 256 = 768 MiB. */
static void steady(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.5, 512);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.516, 1e-9);
    assert_near(r.cpu_percentile, 1.0, 1e-12);
    assert_near(r.cpu_next_share, 0, 0);
    assert_int_equal(r.recommended.memory_request_bytes, 768 * MIB);
    assert_near(r.memory_basis_bytes, 512.0 * MIB, 1);
    assert_near(r.memory_headroom_bytes, 256.0 * MIB, 0);
    assert_near(r.history_days, 8.0, 1e-9);
    /* The explanation names the numbers the requests came from. */
    assert_non_null(strstr(r.explanation, "0.516 cores is the p100.0"));
    assert_non_null(strstr(r.explanation, "reach 512 MiB (p90), plus 256 MiB headroom"));
    /* Out of sample: the last third is the same load, nothing passes. */
    assert_true(r.backtest.valid);
    assert_near(r.backtest.cpu_over_request_share, 0, 0);
    assert_near(r.backtest.memory_over_request_share, 0, 0);
    free(f);
}

/* Each hour 56 windows at 0.1 and 4 at 1.0 (6.7 % of the time). p80 is in
 * 0.1's bucket (93.3 %); 30 % more (0.134) would cover nothing more, so the
 * request stays 0.103035 -> 0.104: the burst runs on spare CPU, and the
 * backtest says 6.7 % of later windows pass the request. */
static void bursty(void **state)
{
    fixture_t *f = fixture_new(0.25, 256 * MIB);
    part_t p[2] = {{56, 0.1, 100}, {4, 1.0, 100}};
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour_of(f, ago, p, 2);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.104, 1e-9);
    assert_near(r.cpu_percentile, 56.0 / 60, 1e-9);
    assert_true(r.backtest.valid);
    assert_near(r.backtest.cpu_over_request_share, 4.0 / 60, 1e-9);
    assert_true(r.flags & KOPT_ENGINE_OVER_PROVISIONED);
    free(f);
}

/* A shoulder: 48 windows at 0.2, 6 at 0.24 and 6 at 0.3 an hour. p80 ends
 * in 0.2's bucket; 30 % more (0.265) reaches 0.24's bucket (10 % of the
 * time), so it rises; from there 30 % more (0.322) reaches 0.3's (10 %), so
 * it rises again, to p100: 0.301403 -> 0.302. */
static void shoulder_is_covered(void **state)
{
    fixture_t *f = fixture_new(0.25, 256 * MIB);
    part_t p[3] = {{48, 0.2, 100}, {6, 0.24, 100}, {6, 0.3, 100}};
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour_of(f, ago, p, 3);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.302, 1e-9);
    assert_near(r.cpu_percentile, 1.0, 1e-12);
    free(f);
}

/* A daily cycle: 16 hours at 0.2, 8 busy hours at 0.8. The busy third of
 * the day is past p80, so the request covers it: 0.839698 -> 0.840. */
static void daily_cycle(void **state)
{
    fixture_t *f = fixture_new(1.0, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, (ago % 24) < 8 ? 0.8 : 0.2, 300);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.840, 1e-9);
    free(f);
}

/* A weekly cycle seen just after a quiet weekend: the last 2 days at 0.1,
 * the 5 days before at 0.6, the oldest day at 0.1. With a 48 h half-life
 * the weekend holds (1 - 2^-1) + 2^-3.5 .. = 53 % of the weight, under p80,
 * so the weekday level stays covered: 0.626596 -> 0.627. */
static void weekly_cycle(void **state)
{
    fixture_t *f = fixture_new(1.0, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, ago <= 48 || ago > 7 * 24 ? 0.1 : 0.6, 300);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.627, 1e-9);
    free(f);
}

/* Memory grows every 2 days: 256, 272, 288, 304 MiB (newest). Sorted
 * daily peaks with weights: 256 (days 6-7: 0.0234), 272 (days 4-5:
 * 0.0938), 288 (days 2-3: 0.375), 304 (days 0-1: 1.5); p90 of 1.992 is
 * 1.793, reached at 304: request 304 + 256 = 560 MiB. The lower bound
 * (p50, 0.996) is 304 too, x (1 + 0.001/8)^-2 -> 304 MiB rounded up. */
static void memory_growth(void **state)
{
    static const double level[4] = {304, 288, 272, 256}; /* newest first */
    fixture_t *f = fixture_new(0.5, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.2, level[(ago - 1) / 48]);
    analyze(f, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 560 * MIB);
    assert_int_equal(r.memory_lower, 304 * MIB);
    /* upper: highest peak + headroom = 560, x (1 + 1/8) = 630 MiB. */
    assert_int_equal(r.memory_upper, 630 * MIB);
    free(f);
}

/* A step up on the last day (200 -> 400 MiB) is followed at once: the
 * newest day holds half the weight, so p90 = 400: 656 MiB. A step down
 * takes longer: 3 days at 200 after 5 at 400 hold (1 + 1/2 + 1/4) / 1.992
 * = 87.8 % < 90 %, so 400 still counts (656 MiB); after 4 days, 94.1 %:
 * 200 + 256 = 456 MiB. */
static void memory_steps(void **state)
{
    fixture_t *f = fixture_new(0.5, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.2, ago <= 24 ? 400 : 200);
    analyze(f, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 656 * MIB);

    f->c.n_hours = 0;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.2, ago <= 3 * 24 ? 200 : 400);
    analyze(f, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 656 * MIB);

    f->c.n_hours = 0;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.2, ago <= 4 * 24 ? 200 : 400);
    analyze(f, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 456 * MIB);
    free(f);
}

/* 400 MiB all along; 6 days ago an OOM kill at 900 MiB (that day weighs
 * 1/64 of 1.992: under the p90's reach). Daily peaks give 400 + 256 = 656
 * MiB, but the floor after the kill is 900 x 1.2 = 1080 MiB. */
static void oom_kill(void **state)
{
    fixture_t *f = fixture_new(0.5, 512 * MIB);
    part_t p[2] = {{59, 0.2, 400}, {1, 0.2, 900}};
    kopt_engine_result_t r;
    kopt_engine_hour_t *h;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++) {
        if (ago == 150) {
            h = hour_of(f, ago, p, 2);
            h->oom_kills = 1;
            h->oom_usage_bytes = 900 * MIB;
        } else {
            flat_hour(f, ago, 0.2, 400);
        }
    }
    analyze(f, &r);
    assert_true(r.flags & KOPT_ENGINE_OOM_BUMPED);
    assert_int_equal(r.recommended.memory_request_bytes, 1080 * MIB);
    assert_non_null(strstr(r.explanation, "OOM kill"));
    free(f);
}

/* A process restarted every day after growing from 100 to 500 MiB (a
 * sawtooth): each day's peak is the top of the tooth, so the request
 * covers it: 500 + 256 = 756 MiB, though the mean is near 300. */
static void restarts_sawtooth(void **state)
{
    fixture_t *f = fixture_new(0.5, 512 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.2, 100 + (double)((ago - 1) % 24) * 400.0 / 23);
    analyze(f, &r);
    assert_int_equal(r.recommended.memory_request_bytes, 756 * MIB);
    free(f);
}

/* One hour of history against a 1-core request: d = 1/24 day, so the CPU
 * upper bound is p99 (0.515502) x 25 = 12.888 and the request is held at
 * min(upper, 1.0) = 1.0: too little to cut. Memory must grow (512 + 256 >
 * 256 MiB): raising is never held back. */
static void short_history(void **state)
{
    fixture_t *f = fixture_new(1.0, 256 * MIB);
    kopt_engine_result_t r;

    (void)state;
    flat_hour(f, 1, 0.5, 512);
    analyze(f, &r);
    assert_true(r.flags & KOPT_ENGINE_LOW_CONFIDENCE);
    assert_near(r.cpu_upper, 12.888, 1e-9);
    assert_near(r.recommended.cpu_request_cores, 1.0, 1e-9);
    assert_int_equal(r.recommended.memory_request_bytes, 768 * MIB);
    assert_false(r.backtest.valid); /* one hour: nothing to split */
    free(f);
}

/* 0.002 cores is below the 0.025-core floor: the request is the floor. */
static void tiny_usage_floor(void **state)
{
    fixture_t *f = fixture_new(0.5, 256 * MIB);
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 3 * 24; ago++)
        flat_hour(f, ago, 0.002, 20);
    analyze(f, &r);
    assert_near(r.recommended.cpu_request_cores, 0.025, 1e-12);
    assert_int_equal(r.recommended.memory_request_bytes, 276 * MIB);
    free(f);
}

/* Windows of any length: 5-minute windows (12 an hour, covered_s 3600)
 * make 8 days of history, not 8 x 12/60 days. */
static void five_minute_windows(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    part_t p = {12, 0.5, 512};
    kopt_engine_result_t r;

    (void)state;
    for (int ago = 1; ago <= 8 * 24; ago++)
        hour_of(f, ago, &p, 1)->covered_s = 3600;
    analyze(f, &r);
    assert_near(r.history_days, 8.0, 1e-9);
    assert_near(r.confidence, 1.0, 1e-9);
    assert_non_null(strstr(r.explanation, "2304 windows covering 8.0 days"));
    free(f);
}

/* The same data analysed 59 minutes later gives the same answer: days and
 * decay count back from the last hour with data, not from now. */
static void stable_over_time(void **state)
{
    fixture_t *f = fixture_new(1.0, 1024 * MIB);
    kopt_engine_result_t a, b;

    (void)state;
    for (int ago = 2; ago <= 8 * 24; ago++)
        flat_hour(f, ago, 0.1 + 0.05 * (ago % 7), 200 + (ago * 37) % 300);
    f->o.lookback_s = 10 * 86400;
    assert_int_equal(kopt_engine_analyze_container(&f->o, &f->c, 1, NOW, &a), 0);
    assert_int_equal(kopt_engine_analyze_container(&f->o, &f->c, 1, NOW + 59 * 60, &b), 0);
    assert_near(a.recommended.cpu_request_cores, b.recommended.cpu_request_cores, 0);
    assert_int_equal(a.recommended.memory_request_bytes, b.recommended.memory_request_bytes);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steady),
        cmocka_unit_test(bursty),
        cmocka_unit_test(shoulder_is_covered),
        cmocka_unit_test(daily_cycle),
        cmocka_unit_test(weekly_cycle),
        cmocka_unit_test(memory_growth),
        cmocka_unit_test(memory_steps),
        cmocka_unit_test(oom_kill),
        cmocka_unit_test(restarts_sawtooth),
        cmocka_unit_test(short_history),
        cmocka_unit_test(tiny_usage_floor),
        cmocka_unit_test(five_minute_windows),
        cmocka_unit_test(stable_over_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
