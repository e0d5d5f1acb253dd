/* Sample-to-window aggregation. Containers live in an array sorted by key
 * (a few hundred on a node: bsearch and memmove are plenty). A rate belongs
 * to the window in which its interval ends. */
#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t start_ms; /* window boundary; 0: nothing yet */
    uint64_t cpu_ns, time_ms;
    double cpu_peak;
    uint64_t periods, throttled, throttled_ns;
    uint64_t ws_peak, ws_last, rss_peak, oom;
    uint32_t rates, samples, resets;
} accum_t;

typedef struct {
    char key[256];
    int has_last;
    agent_sample_t last;
    accum_t cur, closed;
    int has_closed;
} entry_t;

struct agent_windower {
    agent_windower_opts_t opts;
    entry_t *v;
    size_t n, cap;
    uint64_t dropped;
};

int agent_windower_new(const agent_windower_opts_t *opts, agent_windower_t **out)
{
    agent_windower_t *w;

    if (opts->window_ms <= 0 || opts->max_containers == 0)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->opts = *opts;
    *out = w;
    return 0;
}

void agent_windower_free(agent_windower_t *w)
{
    if (!w)
        return;
    free(w->v);
    free(w);
}

/* Index of `key`, or where it would go (negative: -(pos + 1)). */
static long find(const agent_windower_t *w, const char *key)
{
    size_t lo = 0, hi = w->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w->v[mid].key, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static entry_t *lookup(agent_windower_t *w, const char *key)
{
    long i = find(w, key);
    size_t pos;

    if (i >= 0)
        return &w->v[i];
    if (w->n >= w->opts.max_containers) {
        w->dropped++;
        return NULL;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        entry_t *grown = realloc(w->v, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        w->v = grown;
        w->cap = cap;
    }
    pos = (size_t)(-i - 1);
    memmove(w->v + pos + 1, w->v + pos, (w->n - pos) * sizeof(entry_t));
    memset(&w->v[pos], 0, sizeof(entry_t));
    snprintf(w->v[pos].key, sizeof(w->v[pos].key), "%s", key);
    w->n++;
    return &w->v[pos];
}

/* A cumulative counter's increase, or -1 when it went down (a reset). */
static int64_t delta(uint64_t now, uint64_t before)
{
    return now >= before ? (int64_t)(now - before) : -1;
}

static void add_rates(accum_t *a, const agent_sample_t *s, const agent_sample_t *last)
{
    int64_t dt = s->at_ms - last->at_ms;
    int64_t dcpu = delta(s->cpu_usage_ns, last->cpu_usage_ns);
    int64_t d;

    if (dcpu < 0) { /* the container restarted: no rate for this interval */
        a->resets++;
        a->oom += s->oom_kills;
        return;
    }
    if (dt > 0) {
        double cores = (double)dcpu / ((double)dt * 1e6);
        a->cpu_ns += (uint64_t)dcpu;
        a->time_ms += (uint64_t)dt;
        if (cores > a->cpu_peak)
            a->cpu_peak = cores;
        a->rates++;
    }
    if ((d = delta(s->cpu_periods, last->cpu_periods)) > 0)
        a->periods += (uint64_t)d;
    if ((d = delta(s->cpu_throttled, last->cpu_throttled)) > 0)
        a->throttled += (uint64_t)d;
    if ((d = delta(s->cpu_throttled_ns, last->cpu_throttled_ns)) > 0)
        a->throttled_ns += (uint64_t)d;
    d = delta(s->oom_kills, last->oom_kills);
    a->oom += d >= 0 ? (uint64_t)d : s->oom_kills;
}

int agent_windower_add(agent_windower_t *w, const agent_sample_t *s)
{
    entry_t *e = lookup(w, s->key);
    int64_t boundary = s->at_ms - s->at_ms % w->opts.window_ms;
    accum_t *a;

    if (!e)
        return -ENOSPC;
    if (e->has_last && s->at_ms <= e->last.at_ms)
        return -EINVAL;
    if (e->cur.start_ms != boundary) {
        if (e->cur.rates > 0) { /* the window ended and was not flushed yet */
            if (e->has_closed)
                w->dropped++;
            e->closed = e->cur;
            e->has_closed = 1;
        }
        memset(&e->cur, 0, sizeof(e->cur));
        e->cur.start_ms = boundary;
    }
    a = &e->cur;
    if (e->has_last)
        add_rates(a, s, &e->last);
    if (s->memory_working_set > a->ws_peak)
        a->ws_peak = s->memory_working_set;
    a->ws_last = s->memory_working_set;
    if (s->memory_rss > a->rss_peak)
        a->rss_peak = s->memory_rss;
    a->samples++;
    e->last = *s;
    e->last.key = NULL; /* not owned; keep no dangling pointer */
    e->has_last = 1;
    return 0;
}

static void emit_one(const entry_t *e, const accum_t *a, int64_t window_ms,
                     agent_window_emit_fn emit, void *data)
{
    agent_window_t win;

    memset(&win, 0, sizeof(win));
    snprintf(win.key, sizeof(win.key), "%s", e->key);
    win.start_ms = a->start_ms;
    win.end_ms = a->start_ms + window_ms;
    win.cpu_mean_cores = a->time_ms ? (double)a->cpu_ns / ((double)a->time_ms * 1e6) : 0;
    win.cpu_peak_cores = a->cpu_peak > win.cpu_mean_cores ? a->cpu_peak : win.cpu_mean_cores;
    win.cpu_throttled_seconds = (double)a->throttled_ns / 1e9;
    win.cpu_throttled_periods = a->throttled;
    win.cpu_periods = a->periods;
    win.memory_working_set_peak = a->ws_peak;
    win.memory_working_set_last = a->ws_last;
    win.memory_rss_peak = a->rss_peak;
    win.oom_kills = (uint32_t)a->oom;
    win.samples = a->samples;
    win.resets = a->resets;
    emit(&win, data);
}

size_t agent_windower_flush(agent_windower_t *w, int64_t now_ms, agent_window_emit_fn emit,
                            void *data)
{
    size_t emitted = 0, kept = 0;

    for (size_t i = 0; i < w->n; i++) {
        entry_t *e = &w->v[i];
        if (e->has_closed) {
            emit_one(e, &e->closed, w->opts.window_ms, emit, data);
            e->has_closed = 0;
            emitted++;
        }
        if (e->cur.rates > 0 && e->cur.start_ms + w->opts.window_ms <= now_ms) {
            emit_one(e, &e->cur, w->opts.window_ms, emit, data);
            memset(&e->cur, 0, sizeof(e->cur));
            emitted++;
        }
        if (e->has_last && now_ms - e->last.at_ms > w->opts.forget_after_ms)
            continue; /* gone: drop it */
        if (kept != i)
            w->v[kept] = *e;
        kept++;
    }
    w->n = kept;
    return emitted;
}

size_t agent_windower_tracked(const agent_windower_t *w)
{
    return w->n;
}

uint64_t agent_windower_dropped(const agent_windower_t *w)
{
    return w->dropped;
}
