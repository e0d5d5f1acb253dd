/* The engine over real usage: Bitbrains GWA-T-12 "Rnd" VM traces (5-minute
 * samples of CPU MHz and memory KB) from ../shared/traces, read at test time
 * and rolled up into hours as the aggregator would (each sample counts as 5
 * one-minute windows). Skipped when the traces are not there. Checks sanity,
 * not numbers: no NaN, bounds around the request, monotone in percentile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopt/engine.h>

#define MAX_HOURS 2400
#define MAX_BUCKETS 64 /* per hour */
#define VMS 20

typedef struct {
    kopt_engine_hour_t hours[MAX_HOURS];
    kopt_engine_bucket_t cpu[MAX_HOURS][MAX_BUCKETS];
    kopt_engine_bucket_t mem[MAX_HOURS][MAX_BUCKETS];
    kopt_engine_container_t c;
} trace_t;

static const char *traces_dir(void)
{
    static const char *candidates[] = {"../shared/traces", "../../shared/traces",
                                       "../../../shared/traces", "../../../../shared/traces",
                                       "/work/shared/traces"};
    const char *env = getenv("KOPT_TRACES_DIR");
    char path[512];

    if (env && *env)
        return env;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        snprintf(path, sizeof(path), "%s/bitbrains-rnd/rnd/2013-7/1.csv.gz", candidates[i]);
        if (access(path, R_OK) == 0)
            return candidates[i];
    }
    return NULL;
}

static void add(kopt_engine_bucket_t *b, size_t *n, int index, uint32_t count)
{
    for (size_t i = 0; i < *n; i++) {
        if (b[i].index == index) {
            b[i].count += count;
            return;
        }
    }
    if (*n < MAX_BUCKETS)
        b[(*n)++] = (kopt_engine_bucket_t){(uint16_t)index, count};
}

static kopt_engine_hour_t *hour_of(trace_t *t, int64_t start)
{
    kopt_engine_hour_t *h;
    size_t k = t->c.n_hours;

    if (k > 0 && t->hours[k - 1].start == start)
        return &t->hours[k - 1];
    for (size_t i = 0; i < k; i++) /* rarely out of order */
        if (t->hours[i].start == start)
            return &t->hours[i];
    if (k >= MAX_HOURS)
        return NULL;
    h = &t->hours[k];
    memset(h, 0, sizeof(*h));
    h->start = start;
    h->pods = 1;
    h->cpu_hist = t->cpu[k];
    h->mem_hist = t->mem[k];
    t->c.n_hours++;
    return h;
}

/* 0 when the file was read; -1 when it cannot be. */
static int load(const char *dir, int vm, trace_t *t)
{
    char cmd[600], line[1024];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "gzip -dc '%s/bitbrains-rnd/rnd/2013-7/%d.csv.gz' 2>/dev/null", dir,
             vm);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    memset(&t->c, 0, sizeof(t->c));
    t->c.hours = t->hours;
    while (fgets(line, sizeof(line), p)) {
        long long ts;
        double cores, cap, mhz, pct, mem_cap, mem_kb, usage, bytes;
        kopt_engine_hour_t *h;
        size_t n;

        if (sscanf(line, "%lld;\t%lf;\t%lf;\t%lf;\t%lf;\t%lf;\t%lf", &ts, &cores, &cap, &mhz, &pct,
                   &mem_cap, &mem_kb) != 7 ||
            !(cap > 0) || !(cores > 0))
            continue;
        usage = mhz / (cap / cores);
        bytes = mem_kb * 1024;
        h = hour_of(t, (int64_t)ts / 3600 * 3600);
        if (!h)
            break;
        h->windows += 5;
        n = h->cpu_hist_len;
        add(t->cpu[h - t->hours], &n, kopt_cpu_bucket(usage), 5);
        h->cpu_hist_len = n;
        n = h->mem_hist_len;
        add(t->mem[h - t->hours], &n, kopt_memory_bucket(bytes), 5);
        h->mem_hist_len = n;
        h->cpu_peak_cores = fmax(h->cpu_peak_cores, usage);
        if (bytes > (double)h->mem_peak_bytes)
            h->mem_peak_bytes = (uint64_t)bytes;
        /* What the VM was given stands in for the requests. */
        t->c.current.cpu_request_cores = cores;
        t->c.current.memory_request_bytes = (uint64_t)(mem_cap * 1024);
    }
    pclose(p);
    return t->c.n_hours > 0 ? 0 : -1;
}

static int64_t end_of(const trace_t *t)
{
    int64_t last = 0;

    for (size_t i = 0; i < t->c.n_hours; i++)
        if (t->hours[i].start > last)
            last = t->hours[i].start;
    return last + 3600;
}

static void check_sane(const kopt_engine_result_t *r)
{
    const kopt_resources_t *rec = &r->recommended;

    assert_true(isfinite(rec->cpu_request_cores) && rec->cpu_request_cores > 0);
    assert_true(isfinite(rec->cpu_limit_cores));
    assert_true(isfinite(r->cpu_lower) && isfinite(r->cpu_upper));
    assert_true(isfinite(r->confidence) && r->confidence >= 0 && r->confidence <= 1);
    assert_true(isfinite(r->savings.monthly_cost));
    assert_true(isfinite(r->risk.cpu_over_request_share));
    assert_true(r->cpu_lower <= rec->cpu_request_cores + 1e-12);
    assert_true(rec->cpu_request_cores <= r->cpu_upper + 1e-12);
    assert_true(r->memory_lower <= rec->memory_request_bytes);
    assert_true(rec->memory_request_bytes <= r->memory_upper);
    assert_true(rec->cpu_limit_cores == 0 || rec->cpu_limit_cores >= rec->cpu_request_cores);
    assert_true(rec->memory_limit_bytes == 0 ||
                rec->memory_limit_bytes >= rec->memory_request_bytes);
    assert_true(strlen(r->explanation) > 0);
}

static void bitbrains_vms_are_sane(void **state)
{
    static const double pcts[] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99};
    const char *dir = traces_dir();
    kopt_engine_options_t o;
    kopt_engine_result_t r;
    trace_t *t;
    int analysed = 0;

    (void)state;
    if (!dir)
        skip();
    t = malloc(sizeof(*t));
    assert_non_null(t);
    for (int vm = 1; vm <= VMS; vm++) {
        int64_t now;
        double prev_cpu = 0;
        uint64_t prev_mem = 0;

        if (load(dir, vm, t) < 0)
            continue;
        now = end_of(t);
        for (int s = KOPT_STRATEGY_KOPT; s <= KOPT_STRATEGY_SIMPLE; s++) {
            kopt_engine_options_default(&o);
            o.strategy = (kopt_engine_strategy_t)s;
            o.lookback_s = 14 * 86400;
            assert_int_equal(kopt_engine_analyze_container(&o, &t->c, 1, now, &r), 0);
            check_sane(&r);
        }
        for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
            kopt_engine_options_default(&o);
            o.cpu_percentile = pcts[i];
            o.memory_percentile = pcts[i];
            o.cpu_upper_percentile = o.memory_upper_percentile = 0.99;
            o.cpu_lower_percentile = o.memory_lower_percentile = 0.5;
            assert_int_equal(kopt_engine_analyze_container(&o, &t->c, 1, now, &r), 0);
            check_sane(&r);
            assert_true(r.recommended.cpu_request_cores >= prev_cpu);
            assert_true(r.recommended.memory_request_bytes >= prev_mem);
            prev_cpu = r.recommended.cpu_request_cores;
            prev_mem = r.recommended.memory_request_bytes;
        }
        analysed++;
    }
    free(t);
    if (analysed == 0)
        skip();
    print_message("analysed %d Bitbrains VMs from %s\n", analysed, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bitbrains_vms_are_sane),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
