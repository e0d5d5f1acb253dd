/* Sources → windows → batches. Window keys are the source's identities; the
 * metadata for a key is looked up when its window closes, and a window whose
 * container is not known yet waits for the next metadata refresh (once). */
#include "collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopt/log.h>

/* A closed window and what is known about its container. */
typedef struct {
    agent_window_t w;
    agent_window_meta_t m;
    uint64_t held_gen; /* metadata generation when it closed */
    agent_meta_result_t res;
    bool counted; /* in windows_held_total */
} item_t;

struct agent_collector {
    agent_collector_opts_t opts;
    agent_sources_opts_t src_opts;
    agent_sources_t *sources;
    agent_windower_t *windower;
    /* Closed windows not sent yet (held back or ready), oldest first. */
    item_t *items;
    size_t n_items, cap_items;
    /* The windows of one batch being made, and their metadata views. */
    agent_window_t *wins;
    agent_container_meta_t *metas;
    size_t cap;
    int64_t now_ms;
    int64_t closed_before_ms; /* windows before this boundary were flushed */
    kopt_metric_counter_t *samples, *late, *windows, *batches, *sink_errors, *held, *sandbox,
        *partial, *overflow, *split;
};

/* A reading from the source (on the loop thread). */
static void on_sample(void *data, const agent_sample_t *s)
{
    agent_collector_t *c = data;

    /* A kubelet reading from before the last flush's window boundary would
     * reopen a window already sent: skip it; the next reading's rate covers
     * the time. */
    if (s->at_ms < c->closed_before_ms) {
        kopt_metric_counter_inc(c->late);
        return;
    }
    if (agent_windower_add(c->windower, s) == 0)
        kopt_metric_counter_inc(c->samples);
}

static void on_window(const agent_window_t *w, void *data)
{
    agent_collector_t *c = data;
    item_t *it;

    /* Bounded: at most four windows a container waiting (normally one). */
    if (c->n_items >= 4 * c->opts.max_containers) {
        kopt_metric_counter_inc(c->overflow);
        return;
    }
    if (c->n_items == c->cap_items) {
        size_t cap = c->cap_items ? c->cap_items * 2 : 64;
        item_t *v = realloc(c->items, cap * sizeof(*v));

        if (!v) {
            kopt_metric_counter_inc(c->overflow);
            return;
        }
        c->items = v;
        c->cap_items = cap;
    }
    it = &c->items[c->n_items++];
    memset(it, 0, sizeof(*it));
    it->w = *w;
    it->held_gen = agent_sources_generation(c->sources);
}

static int reserve(agent_collector_t *c, size_t n)
{
    agent_window_t *wins;
    agent_container_meta_t *metas;

    if (n <= c->cap)
        return 0;
    wins = realloc(c->wins, n * sizeof(*wins));
    if (!wins)
        return -ENOMEM;
    c->wins = wins;
    metas = realloc(c->metas, n * sizeof(*metas));
    if (!metas)
        return -ENOMEM;
    c->metas = metas;
    c->cap = n;
    return 0;
}

/* --- workload and node facts ------------------------------------------------ */

static bool listed(const agent_kube_workload_t *w, size_t n, const agent_container_meta_t *m)
{
    for (size_t i = 0; i < n; i++)
        if ((int)w[i].kind == m->workload_kind && strcmp(w[i].name, m->workload_name) == 0 &&
            strcmp(w[i].namespace_, m->namespace_) == 0)
            return true;
    return false;
}

/* The facts of the windows' workloads from the API server, each once, into
 * *out (malloc'd; NULL when there are none). 0 or -ENOMEM. */
static int workload_facts(agent_collector_t *c, const agent_container_meta_t *metas, size_t n,
                          agent_kube_workload_t **out, size_t *n_out)
{
    agent_kube_cache_t *kube = agent_sources_kube(c->sources);
    agent_kube_workload_t *w;
    size_t nw = 0;

    *out = NULL;
    *n_out = 0;
    if (!kube || n == 0)
        return 0;
    w = calloc(n, sizeof(*w));
    if (!w)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (listed(w, nw, &metas[i]) ||
            agent_kube_cache_workload(kube, metas[i].namespace_,
                                      (agent_kube_kind_t)metas[i].workload_kind,
                                      metas[i].workload_name, &w[nw]) < 0)
            continue;
        nw++;
    }
    *out = w;
    *n_out = nw;
    return 0;
}

/* The Node's facts from the API server, when known, over the machine's own
 * capacity. `node` holds the strings the header points to. */
static void node_facts(agent_collector_t *c, agent_batch_header_t *h, agent_kube_node_t *node)
{
    agent_kube_cache_t *kube = agent_sources_kube(c->sources);

    h->cpu_capacity_cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    h->memory_capacity_bytes = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    if (!kube || agent_kube_cache_node(kube, node) < 0)
        return;
    if (node->cpu_capacity_cores > 0)
        h->cpu_capacity_cores = node->cpu_capacity_cores;
    if (node->memory_capacity_bytes > 0)
        h->memory_capacity_bytes = node->memory_capacity_bytes;
    h->cpu_allocatable_cores = node->cpu_allocatable_cores;
    h->memory_allocatable_bytes = node->memory_allocatable_bytes;
    h->kernel_version = node->kernel_version;
    h->kubelet_version = node->kubelet_version;
    h->container_runtime_version = node->container_runtime_version;
    h->architecture = node->architecture;
    h->instance_type = node->instance_type;
    h->zone = node->zone;
    h->region = node->region;
}

/* --- batches ------------------------------------------------------------------- */

/* Packs wins[0..n) into one batch with the next id and hands it to the
 * sink. */
static int emit_one(agent_collector_t *c, agent_batch_header_t *h, const agent_window_t *wins,
                    const agent_container_meta_t *metas, size_t n)
{
    agent_kube_workload_t *workloads;
    uint8_t *bytes;
    size_t len;
    int r;

    r = workload_facts(c, metas, n, &workloads, &h->n_workloads);
    if (r < 0)
        return r;
    h->workloads = workloads;
    c->opts.take_id(c->opts.data, &h->epoch, &h->seq);
    r = agent_batch_pack(h, wins, metas, n, &bytes, &len);
    free(workloads);
    if (r < 0)
        return r;
    r = c->opts.sink(c->opts.data, h->epoch, h->seq, bytes, len, wins, metas, n);
    free(bytes);
    if (r < 0) {
        kopt_metric_counter_inc(c->sink_errors);
        return r;
    }
    kopt_metric_counter_inc(c->batches);
    kopt_metric_counter_add(c->windows, (double)n);
    return 0;
}

/* Sends c->wins[0..n) in as few batches as stay under max_batch_bytes,
 * each with the next seq, in order: the spool wants seqs without gaps, so
 * an id is taken only for a batch that is made. The size is bounded with
 * the largest id and the workloads of all n windows, which each part can
 * only undercut. A window too large on its own is sent alone, and ingest
 * refuses it (TOO_LARGE). */
static int emit_batch(agent_collector_t *c, size_t n)
{
    agent_batch_header_t h = {
        .cluster = c->opts.cluster,
        .node = c->opts.node,
        .agent_id = c->opts.agent_id,
        .agent_version = KOPT_VERSION,
        .created_ms = c->now_ms,
        .metric_source = agent_sources_metric_source(c->sources),
    };
    agent_batch_header_t bound;
    agent_kube_node_t node;
    agent_kube_workload_t *workloads;
    size_t from = 0, fit;
    int r = 0;

    node_facts(c, &h, &node);
    r = workload_facts(c, c->metas, n, &workloads, &h.n_workloads);
    if (r < 0)
        return r;
    bound = h;
    bound.workloads = workloads;
    bound.epoch = bound.seq = UINT64_MAX;
    while (r == 0 && from < n) {
        r = agent_batch_fit(&bound, c->wins + from, c->metas + from, n - from,
                            c->opts.max_batch_bytes, &fit);
        if (r == -EFBIG) {
            kopt_log_warn("one window alone is over the batch size limit; sending it anyway "
                          "(ingest will refuse it)",
                          KOPT_UINT("max_batch_bytes", c->opts.max_batch_bytes));
            r = 0;
        }
        if (r < 0)
            break;
        if (fit < n - from)
            kopt_metric_counter_inc(c->split); /* one more batch to come */
        r = emit_one(c, &h, c->wins + from, c->metas + from, fit);
        from += fit;
    }
    free(workloads);
    return r;
}

/* Describes the waiting windows and sends those that are ready, in batches
 * of at most max_windows_per_batch, then keeps only the held ones. Two
 * passes, so the metadata views point into items that do not move until
 * their batch is packed. Returns how many were sent, or -errno. */
static int send_ready(agent_collector_t *c)
{
    size_t kept = 0, n = 0, sent = 0;
    int r = 0;

    if (reserve(c, c->opts.max_windows_per_batch) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_items; i++) {
        item_t *it = &c->items[i];

        it->res = agent_sources_describe(c->sources, &it->w, it->held_gen, &it->m);
        if (it->res == AGENT_META_WAIT && !it->counted) {
            kopt_metric_counter_inc(c->held);
            it->counted = true;
        } else if (it->res == AGENT_META_DROP) {
            kopt_metric_counter_inc(c->sandbox);
        } else if (it->res == AGENT_META_PARTIAL) {
            kopt_metric_counter_inc(c->partial);
        }
    }
    for (size_t i = 0; i < c->n_items && r == 0; i++) {
        item_t *it = &c->items[i];

        if (it->res != AGENT_META_FOUND && it->res != AGENT_META_PARTIAL)
            continue;
        c->wins[n] = it->w;
        agent_window_meta_view(&it->m, &c->metas[n]);
        if (++n == c->opts.max_windows_per_batch || i + 1 == c->n_items) {
            r = emit_batch(c, n);
            sent += n;
            n = 0;
        }
    }
    if (r == 0 && n > 0) {
        r = emit_batch(c, n);
        sent += n;
    }
    for (size_t i = 0; i < c->n_items; i++)
        if (c->items[i].res == AGENT_META_WAIT)
            c->items[kept++] = c->items[i];
    c->n_items = kept;
    return r < 0 ? r : (int)sent;
}

int agent_collector_tick(agent_collector_t *c, int64_t now_ms)
{
    int r, sent;

    c->now_ms = now_ms;
    /* Close what ended before this reading, so the reading opens a new window. */
    agent_windower_flush(c->windower, now_ms, on_window, c);
    c->closed_before_ms = now_ms - now_ms % c->opts.window_ms;
    r = agent_sources_tick(c->sources, now_ms);
    if (r < 0)
        kopt_log_warn("reading the source failed", KOPT_ERR(r));
    sent = send_ready(c);
    return r < 0 ? r : sent;
}

int agent_collector_new(const agent_collector_opts_t *opts, kopt_metrics_t *metrics,
                        agent_collector_t **out)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } defs[] = {
        {"kopt_agent_samples_total", "Container readings taken.",
         offsetof(agent_collector_t, samples)},
        {"kopt_agent_late_samples_total",
         "Readings older than the last closed window (kubelet), skipped.",
         offsetof(agent_collector_t, late)},
        {"kopt_agent_windows_total", "Windows closed and queued for ingest.",
         offsetof(agent_collector_t, windows)},
        {"kopt_agent_batches_total", "Batches made and spooled.",
         offsetof(agent_collector_t, batches)},
        {"kopt_agent_spool_errors_total", "Batches that could not be spooled.",
         offsetof(agent_collector_t, sink_errors)},
        {"kopt_agent_windows_held_total",
         "Windows held back until the next metadata refresh (container not known yet).",
         offsetof(agent_collector_t, held)},
        {"kopt_agent_windows_sandbox_dropped_total",
         "Windows of cgroups the API server does not list (pod sandbox/pause), dropped.",
         offsetof(agent_collector_t, sandbox)},
        {"kopt_agent_windows_partial_total",
         "Windows sent without Kubernetes metadata (unknown after a refresh, or no API).",
         offsetof(agent_collector_t, partial)},
        {"kopt_agent_batches_split_total",
         "Batches made in addition because the windows ready at once packed to more than the "
         "batch size limit (which NATS's max_payload sets).",
         offsetof(agent_collector_t, split)},
        {"kopt_agent_windows_overflow_total",
         "Windows dropped because too many were waiting for metadata.",
         offsetof(agent_collector_t, overflow)},
    };
    agent_collector_t *c = calloc(1, sizeof(*c));
    agent_windower_opts_t wo = {.window_ms = opts->window_ms,
                                .max_containers = opts->max_containers,
                                .forget_after_ms = 3 * opts->window_ms};
    int r;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->opts = *opts;
    c->src_opts = *opts->sources;
    c->opts.sources = &c->src_opts;
    if (c->opts.max_windows_per_batch == 0)
        c->opts.max_windows_per_batch = 2000;
    if (c->opts.max_batch_bytes == 0)
        c->opts.max_batch_bytes = AGENT_BATCH_MAX_BYTES_DEFAULT;
    r = agent_windower_new(&wo, &c->windower);
    for (size_t i = 0; r == 0 && i < sizeof(defs) / sizeof(defs[0]); i++) {
        kopt_metric_family_t *f;

        r = kopt_metrics_counter(metrics, defs[i].name, defs[i].help, NULL, &f);
        if (r == 0)
            *(kopt_metric_counter_t **)((char *)c + defs[i].off) = kopt_metric_counter_with(f);
    }
    if (r == 0)
        r = agent_sources_new(opts->loop, &c->src_opts, metrics, on_sample, c, &c->sources);
    if (r < 0) {
        agent_collector_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void agent_collector_set_max_batch_bytes(agent_collector_t *c, size_t max_bytes)
{
    c->opts.max_batch_bytes = max_bytes ? max_bytes : AGENT_BATCH_MAX_BYTES_DEFAULT;
}

void agent_collector_free(agent_collector_t *c)
{
    if (!c)
        return;
    agent_sources_free(c->sources);
    agent_windower_free(c->windower);
    free(c->items);
    free(c->wins);
    free(c->metas);
    free(c);
}


uint64_t agent_collector_samples(const agent_collector_t *c)
{
    return (uint64_t)kopt_metric_counter_value(c->samples);
}
