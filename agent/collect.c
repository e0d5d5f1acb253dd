/* Sources → windows → batches. Window keys are the source's identities; the
 * metadata for a key is looked up when its window closes. */
#include "collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopt/log.h>

#include "kopt/v1/metrics.pb-c.h"

struct kopt_collector {
    kopt_collector_opts_t opts;
    kopt_windower_t *windower;
    /* Windows of the current flush, and their metadata. */
    kopt_window_t *wins;
    kopt_container_meta_t *metas;
    size_t n, cap;
    int64_t now_ms;
    kopt_metric_counter_t *samples, *windows, *batches, *sink_errors;
};

static void on_group(const kopt_proc_group_t *g, void *data)
{
    kopt_collector_t *c = data;
    kopt_sample_t s;

    memset(&s, 0, sizeof(s));
    s.key = g->group;
    s.at_ms = c->now_ms;
    s.cpu_usage_ns = g->cpu_usage_ns;
    s.memory_working_set = g->rss_bytes; /* no cgroup: RSS is the best working set we have */
    s.memory_rss = g->rss_bytes;
    if (kopt_windower_add(c->windower, &s) == 0)
        kopt_metric_counter_inc(c->samples);
}

/* Metadata for a proc group: the rule's name is the workload. */
static void proc_meta(const kopt_collector_t *c, const kopt_window_t *w, kopt_container_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    m->namespace_ = c->opts.proc_namespace;
    m->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_PROCESS_GROUP;
    m->workload_name = w->key;
    m->pod = w->key;
    m->container = w->key;
}

static void on_window(const kopt_window_t *w, void *data)
{
    kopt_collector_t *c = data;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        kopt_window_t *wins = realloc(c->wins, cap * sizeof(*wins));
        kopt_container_meta_t *metas = wins ? realloc(c->metas, cap * sizeof(*metas)) : NULL;
        if (wins)
            c->wins = wins;
        if (!metas)
            return;
        c->metas = metas;
        c->cap = cap;
    }
    c->wins[c->n] = *w;
    c->n++;
}

static int emit_batch(kopt_collector_t *c, size_t from, size_t n)
{
    kopt_batch_header_t h = {
        .cluster = c->opts.cluster,
        .node = c->opts.node,
        .agent_id = c->opts.agent_id,
        .agent_version = KOPT_VERSION,
        .created_ms = c->now_ms,
        .cpu_capacity_cores = (double)sysconf(_SC_NPROCESSORS_ONLN),
        .memory_capacity_bytes =
            (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE),
        .metric_source = c->opts.proc ? KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_PROC
                                      : KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2,
    };
    uint8_t *bytes;
    size_t len;
    int r;

    c->opts.take_id(c->opts.data, &h.epoch, &h.seq);
    r = kopt_batch_pack(&h, c->wins + from, c->metas + from, n, &bytes, &len);
    if (r < 0)
        return r;
    r = c->opts.sink(c->opts.data, h.epoch, h.seq, bytes, len, c->wins + from, c->metas + from, n);
    free(bytes);
    if (r < 0) {
        kopt_metric_counter_inc(c->sink_errors);
        return r;
    }
    kopt_metric_counter_inc(c->batches);
    kopt_metric_counter_add(c->windows, (double)n);
    return 0;
}

int kopt_collector_tick(kopt_collector_t *c, int64_t now_ms)
{
    size_t emitted;
    int r = 0;

    c->now_ms = now_ms;
    c->n = 0;
    /* Close what ended before this reading, so the reading opens a new window. */
    kopt_windower_flush(c->windower, now_ms, on_window, c);
    if (c->opts.proc) {
        r = kopt_proc_source_scan(c->opts.proc, now_ms, on_group, c);
        if (r < 0)
            kopt_log_warn("reading /proc failed", KOPT_ERR(r));
    }
    emitted = c->n;
    for (size_t i = 0; i < c->n; i++)
        proc_meta(c, &c->wins[i], &c->metas[i]);
    for (size_t from = 0; from < c->n && r >= 0; from += c->opts.max_windows_per_batch) {
        size_t n = c->n - from < c->opts.max_windows_per_batch ? c->n - from
                                                               : c->opts.max_windows_per_batch;
        r = emit_batch(c, from, n);
    }
    return r < 0 ? r : (int)emitted;
}

int kopt_collector_new(const kopt_collector_opts_t *opts, kopt_metrics_t *metrics,
                       kopt_collector_t **out)
{
    kopt_collector_t *c = calloc(1, sizeof(*c));
    kopt_windower_opts_t wo = {.window_ms = opts->window_ms,
                               .max_containers = opts->max_containers,
                               .forget_after_ms = 3 * opts->window_ms};
    kopt_metric_family_t *f;
    int r;

    if (!c)
        return -ENOMEM;
    c->opts = *opts;
    if (c->opts.max_windows_per_batch == 0)
        c->opts.max_windows_per_batch = 2000;
    r = kopt_windower_new(&wo, &c->windower);
    if (r == 0)
        r = kopt_metrics_counter(metrics, "kopt_agent_samples_total", "Container readings taken.",
                                 NULL, &f);
    if (r == 0) {
        c->samples = kopt_metric_counter_with(f);
        r = kopt_metrics_counter(metrics, "kopt_agent_windows_total",
                                 "Windows closed and queued for ingest.", NULL, &f);
    }
    if (r == 0) {
        c->windows = kopt_metric_counter_with(f);
        r = kopt_metrics_counter(metrics, "kopt_agent_batches_total", "Batches made and spooled.",
                                 NULL, &f);
    }
    if (r == 0) {
        c->batches = kopt_metric_counter_with(f);
        r = kopt_metrics_counter(metrics, "kopt_agent_spool_errors_total",
                                 "Batches that could not be spooled.", NULL, &f);
    }
    if (r < 0) {
        kopt_collector_free(c);
        return r;
    }
    c->sink_errors = kopt_metric_counter_with(f);
    *out = c;
    return 0;
}

void kopt_collector_free(kopt_collector_t *c)
{
    if (!c)
        return;
    kopt_windower_free(c->windower);
    free(c->wins);
    free(c->metas);
    free(c);
}
