/* kopt-engine-replay: the recommendation engine on usage series without
 * the pipeline, for working on the model. Each CSV (`unix_seconds,
 * cpu_cores,memory_bytes`, one container, as ../shared/replay/traces.py
 * writes them) is cut after --train-days; the history is rolled into hours
 * the way kopt-aggregator rolls container_windows into container_hourly
 * (one window per sample, the same usage buckets), and the engine analyses
 * it as `kopt-advisor analyze` would just after the history ended. Prints
 * {stem: {cpu_cores, memory_bytes, ...}}, the shape replay.py reads with
 * --strategy file:NAME=PATH. The real pipeline (pipeline_replay.py) remains
 * the reference; this only skips its minutes.
 *
 *   kopt-engine-replay [--train-days 8] [--strategy kopt|vpa|simple]
 *                      [--shift S] [--set NAME=VALUE]... CSV...
 *
 * --set changes one engine option (the names of kopt_engine_options_t:
 * half_life_s, cpu_percentile, cpu_step, cpu_step_share, ...; see
 * options[] below), for comparing a model's variants.
 * --shift moves every timestamp by S seconds before the hours are cut, to
 * check that a result does not depend on where hour boundaries fall. */
#include <kopt/engine.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR 3600

typedef struct {
    int64_t t;
    double cpu, mem;
} sample_t;

typedef struct {
    kopt_engine_hour_t *hours;
    kopt_engine_bucket_t *cpu, *mem; /* one bucket per window, hours point in */
    size_t n_hours;
} rolled_t;

/* The numeric options --set can change. */
#define OPT(name)                                                                                  \
    {                                                                                              \
#name, offsetof(kopt_engine_options_t, name)                                               \
    }
static const struct {
    const char *name;
    size_t offset;
} options[] = {
    OPT(half_life_s),       OPT(cpu_percentile), OPT(cpu_max_percentile),
    OPT(cpu_step),          OPT(cpu_step_share), OPT(memory_half_life_s),
    OPT(memory_percentile), OPT(safety_margin),  OPT(cpu_min_cores),
};

static int set_option(kopt_engine_options_t *o, const char *arg)
{
    const char *eq = strchr(arg, '=');

    if (eq && strncmp(arg, "memory_headroom_bytes=", 22) == 0) {
        o->memory_headroom_bytes = strtoull(eq + 1, NULL, 10);
        return 0;
    }
    for (size_t i = 0; eq && i < sizeof(options) / sizeof(options[0]); i++)
        if (strlen(options[i].name) == (size_t)(eq - arg) &&
            strncmp(options[i].name, arg, (size_t)(eq - arg)) == 0) {
            *(double *)(void *)((char *)o + options[i].offset) = atof(eq + 1);
            return 0;
        }
    return -EINVAL;
}

static int by_time(const void *a, const void *b)
{
    const sample_t *x = a, *y = b;

    return (x->t > y->t) - (x->t < y->t);
}

static sample_t *load(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    sample_t *s = NULL;
    size_t cap = 0;
    char line[256];

    *n = 0;
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        double t, c, m;

        if (sscanf(line, "%lf,%lf,%lf", &t, &c, &m) != 3)
            continue;
        if (*n == cap) {
            sample_t *g = realloc(s, (cap = cap ? cap * 2 : 4096) * sizeof(*s));

            if (!g)
                break;
            s = g;
        }
        s[(*n)++] = (sample_t){(int64_t)t, c, m};
    }
    fclose(f);
    if (s)
        qsort(s, *n, sizeof(*s), by_time);
    return s;
}

/* The median gap between samples: each sample is a window that long (or
 * up to the next sample, when that comes sooner). */
static int64_t step_of(const sample_t *s, size_t n)
{
    int64_t *gaps = malloc((n > 1 ? n - 1 : 1) * sizeof(*gaps));
    size_t k = 0;
    int64_t step = 300;

    if (!gaps)
        return step;
    for (size_t i = 1; i < n; i++)
        if (s[i].t > s[i - 1].t)
            gaps[k++] = s[i].t - s[i - 1].t;
    if (k > 0) {
        for (size_t i = 1; i < k; i++) /* insertion sort is fine: mostly equal gaps */
            for (size_t j = i; j > 0 && gaps[j] < gaps[j - 1]; j--) {
                int64_t x = gaps[j];

                gaps[j] = gaps[j - 1];
                gaps[j - 1] = x;
            }
        step = gaps[k / 2];
    }
    free(gaps);
    return step < 1 ? 1 : step > HOUR ? HOUR : step;
}

/* Adds one window's bucket to an hour's sparse histogram. */
static void add_bucket(kopt_engine_bucket_t *hist, size_t *len, int index)
{
    for (size_t i = 0; i < *len; i++)
        if (hist[i].index == index) {
            hist[i].count++;
            return;
        }
    hist[*len] = (kopt_engine_bucket_t){(uint16_t)index, 1};
    (*len)++;
}

static int roll(const sample_t *s, size_t n, int64_t step, rolled_t *out)
{
    kopt_engine_hour_t *h = NULL;

    memset(out, 0, sizeof(*out));
    out->hours = calloc(n, sizeof(*out->hours));
    out->cpu = calloc(n, sizeof(*out->cpu));
    out->mem = calloc(n, sizeof(*out->mem));
    if (!out->hours || !out->cpu || !out->mem)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int64_t start = s[i].t - (((s[i].t % HOUR) + HOUR) % HOUR);
        int64_t len = i + 1 < n && s[i + 1].t > s[i].t && s[i + 1].t - s[i].t < step
                          ? s[i + 1].t - s[i].t
                          : step;

        if (!h || h->start != start) {
            h = &out->hours[out->n_hours++];
            h->start = start;
            h->pods = 1;
            h->cpu_hist = &out->cpu[i];
            h->mem_hist = &out->mem[i];
        }
        add_bucket((kopt_engine_bucket_t *)h->cpu_hist, &h->cpu_hist_len,
                   kopt_cpu_bucket(s[i].cpu));
        add_bucket((kopt_engine_bucket_t *)h->mem_hist, &h->mem_hist_len,
                   kopt_memory_bucket(s[i].mem));
        h->cpu_mean_cores += (s[i].cpu - h->cpu_mean_cores) / (h->windows + 1);
        h->windows++;
        h->covered_s += (double)len;
        if (s[i].cpu > h->cpu_peak_cores)
            h->cpu_peak_cores = s[i].cpu;
        if ((uint64_t)s[i].mem > h->mem_peak_bytes)
            h->mem_peak_bytes = (uint64_t)s[i].mem;
    }
    return 0;
}

static void rolled_free(rolled_t *r)
{
    free(r->hours);
    free(r->cpu);
    free(r->mem);
}

static const char *stem_of(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    size_t len;

    b = b ? b + 1 : path;
    len = strcspn(b, ".");
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, b, len);
    buf[len] = '\0';
    return buf;
}

static int replay_one(const kopt_engine_options_t *base, const char *path, double train_days,
                      int64_t shift, bool *first)
{
    kopt_engine_options_t o = *base;
    kopt_engine_container_t c = {.name = "main"};
    kopt_engine_result_t r;
    rolled_t rolled;
    size_t n, hist_n = 0;
    sample_t *s = load(path, &n);
    int64_t step, now;
    char stem[256];
    int rc;

    if (!s || n < 30) {
        free(s);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        s[i].t += shift;
    while (hist_n < n && s[hist_n].t < s[0].t + (int64_t)(train_days * 86400))
        hist_n++;
    if (hist_n < 10 || n - hist_n < 10) {
        free(s);
        return 0;
    }
    step = step_of(s, hist_n);
    rc = roll(s, hist_n, step, &rolled);
    if (rc == 0) {
        /* As the replay does: analysed two minutes after the history ended,
         * with a lookback that reaches its first hour. */
        now = s[hist_n - 1].t + step + 120;
        o.lookback_s = now - rolled.hours[0].start + 1;
        c.hours = rolled.hours;
        c.n_hours = rolled.n_hours;
        rc = kopt_engine_analyze_container(&o, &c, 1, now, &r);
    }
    if (rc == 0) {
        printf(
            "%s\n \"%s\": {\"cpu_cores\": %.6f, \"memory_bytes\": %llu, \"cpu_lower\": %.6f, "
            "\"cpu_upper\": %.6f, \"memory_lower\": %llu, \"memory_upper\": %llu, "
            "\"history_days\": %.4f, \"backtest_cpu_over\": %.5f, \"backtest_memory_over\": "
            "%.5f}",
            *first ? "" : ",", stem_of(path, stem, sizeof(stem)), r.recommended.cpu_request_cores,
            (unsigned long long)r.recommended.memory_request_bytes, r.cpu_lower, r.cpu_upper,
            (unsigned long long)r.memory_lower, (unsigned long long)r.memory_upper, r.history_days,
            r.backtest.cpu_over_request_share, r.backtest.memory_over_request_share);
        *first = false;
    } else {
        fprintf(stderr, "kopt-engine-replay: %s: analysis failed: %s\n", path, strerror(-rc));
    }
    rolled_free(&rolled);
    free(s);
    return rc == -ENOMEM ? rc : 0;
}

int main(int argc, char **argv)
{
    kopt_engine_options_t o;
    double train_days = 8;
    int64_t shift = 0;
    bool first = true;
    int i;

    kopt_engine_options_default(&o);
    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--train-days") == 0)
            train_days = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--shift") == 0)
            shift = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--set") == 0) {
            if (set_option(&o, argv[i + 1]) < 0) {
                fprintf(stderr, "kopt-engine-replay: --set %s: unknown option\n", argv[i + 1]);
                return 2;
            }
        } else if (strcmp(argv[i], "--strategy") == 0) {
            if (kopt_engine_strategy_parse(argv[i + 1], &o.strategy) < 0) {
                fprintf(stderr, "kopt-engine-replay: unknown strategy %s\n", argv[i + 1]);
                return 2;
            }
        } else {
            fprintf(stderr, "kopt-engine-replay: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc || !(train_days > 0)) {
        fprintf(stderr, "usage: kopt-engine-replay [--train-days D] [--strategy S] [--shift S] "
                        "[--set NAME=VALUE]... CSV...\n");
        return 2;
    }
    printf("{");
    for (; i < argc; i++)
        if (replay_one(&o, argv[i], train_days, shift, &first) < 0)
            return 1;
    printf("\n}\n");
    return 0;
}
