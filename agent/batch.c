/* MetricBatch assembly with protobuf-c: the message borrows every string
 * from the caller, so packing copies nothing but the output; sizing builds
 * the same message and packs nothing. */
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/v1/metrics.pb-c.h"

static void stamp(Google__Protobuf__Timestamp *t, int64_t ms)
{
    google__protobuf__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
}

static void fill(Kopt__V1__ContainerWindow *cw, Google__Protobuf__Timestamp *ts,
                 const agent_window_t *w, const agent_container_meta_t *m)
{
    kopt__v1__container_window__init(cw);
    cw->namespace_ = (char *)m->namespace_;
    cw->workload_kind = (Kopt__V1__WorkloadKind)m->workload_kind;
    cw->workload_name = (char *)m->workload_name;
    cw->pod = (char *)m->pod;
    cw->container = (char *)m->container;
    cw->container_id = (char *)(m->container_id ? m->container_id : "");
    cw->pod_uid = (char *)(m->pod_uid ? m->pod_uid : "");
    stamp(&ts[0], w->start_ms);
    stamp(&ts[1], w->end_ms);
    cw->window_start = &ts[0];
    cw->window_end = &ts[1];
    cw->cpu_usage_mean_cores = w->cpu_mean_cores;
    cw->cpu_usage_peak_cores = w->cpu_peak_cores;
    cw->cpu_throttled_seconds = w->cpu_throttled_seconds;
    cw->cpu_throttled_periods = w->cpu_throttled_periods;
    cw->cpu_periods = w->cpu_periods;
    cw->memory_working_set_peak_bytes = w->memory_working_set_peak;
    cw->memory_working_set_last_bytes = w->memory_working_set_last;
    cw->memory_rss_peak_bytes = w->memory_rss_peak;
    cw->oom_kills = w->oom_kills;
    cw->restarts = m->restarts;
    cw->cpu_request_cores = m->cpu_request_cores;
    cw->cpu_limit_cores = m->cpu_limit_cores;
    cw->memory_request_bytes = m->memory_request_bytes;
    cw->memory_limit_bytes = m->memory_limit_bytes;
    cw->sample_count = w->samples;
}

/* proto3 has no absent string: "" is "not known". */
static char *or_empty(const char *s)
{
    return (char *)(s ? s : "");
}

static void node_facts(Kopt__V1__NodeFacts *f, const agent_batch_header_t *h)
{
    f->cpu_capacity_cores = h->cpu_capacity_cores;
    f->cpu_allocatable_cores = h->cpu_allocatable_cores;
    f->memory_capacity_bytes = h->memory_capacity_bytes;
    f->memory_allocatable_bytes = h->memory_allocatable_bytes;
    f->kernel_version = or_empty(h->kernel_version);
    f->kubelet_version = or_empty(h->kubelet_version);
    f->container_runtime_version = or_empty(h->container_runtime_version);
    f->architecture = or_empty(h->architecture);
    f->instance_type = or_empty(h->instance_type);
    f->zone = or_empty(h->zone);
    f->region = or_empty(h->region);
    f->metric_source = (Kopt__V1__MetricSource)h->metric_source;
}

/* A workload's facts and the storage they point into. */
typedef struct {
    Kopt__V1__WorkloadFacts wf;
    Kopt__V1__HpaFacts hpa;
    char *names[AGENT_KUBE_HPA_MAX_METRICS];
} facts_t;

static void workload_facts(facts_t *f, const agent_kube_workload_t *kw)
{
    kopt__v1__workload_facts__init(&f->wf);
    f->wf.namespace_ = (char *)kw->namespace_;
    f->wf.kind = (Kopt__V1__WorkloadKind)kw->kind;
    f->wf.name = (char *)kw->name;
    f->wf.replicas = kw->replicas;
    f->wf.ready_replicas = kw->ready_replicas;
    f->wf.qos_class = (Kopt__V1__QosClass)kw->qos;
    if (!kw->has_hpa)
        return;
    kopt__v1__hpa_facts__init(&f->hpa);
    f->hpa.name = (char *)kw->hpa.name;
    f->hpa.min_replicas = kw->hpa.min_replicas;
    f->hpa.max_replicas = kw->hpa.max_replicas;
    f->hpa.target_cpu_utilization_percent = kw->hpa.target_cpu_utilization_percent;
    f->hpa.target_memory_utilization_percent = kw->hpa.target_memory_utilization_percent;
    for (size_t i = 0; i < kw->hpa.n_metrics && i < AGENT_KUBE_HPA_MAX_METRICS; i++)
        f->names[i] = (char *)kw->hpa.metric_names[i];
    f->hpa.n_metric_names = kw->hpa.n_metrics;
    f->hpa.metric_names = f->names;
    f->wf.hpa = &f->hpa;
}

/* The message and the storage its pointers use. */
typedef struct {
    Kopt__V1__MetricBatch b;
    Kopt__V1__NodeFacts facts;
    Google__Protobuf__Timestamp created;
    Kopt__V1__ContainerWindow *cws, **ptrs;
    Google__Protobuf__Timestamp *ts;
    facts_t *wfacts;
    Kopt__V1__WorkloadFacts **wptrs;
} built_t;

static void release(built_t *m)
{
    free(m->cws);
    free(m->ptrs);
    free(m->ts);
    free(m->wfacts);
    free(m->wptrs);
}

/* Fills `m` with the batch of `n` windows; it borrows every string. 0 or
 * -ENOMEM; release(m) either way. */
static int build(built_t *m, const agent_batch_header_t *h, const agent_window_t *wins,
                 const agent_container_meta_t *metas, size_t n)
{
    size_t nw = h->n_workloads;
    Kopt__V1__MetricBatch *b = &m->b;

    memset(m, 0, sizeof(*m));
    kopt__v1__metric_batch__init(b);
    kopt__v1__node_facts__init(&m->facts);
    m->cws = calloc(n ? n : 1, sizeof(*m->cws));
    m->ptrs = calloc(n ? n : 1, sizeof(*m->ptrs));
    m->ts = calloc(n ? 2 * n : 1, sizeof(*m->ts));
    m->wfacts = calloc(nw ? nw : 1, sizeof(*m->wfacts));
    m->wptrs = calloc(nw ? nw : 1, sizeof(*m->wptrs));
    if (!m->cws || !m->ptrs || !m->ts || !m->wfacts || !m->wptrs)
        return -ENOMEM;
    b->cluster = (char *)h->cluster;
    b->node = (char *)h->node;
    b->agent_id = (char *)h->agent_id;
    b->agent_version = (char *)(h->agent_version ? h->agent_version : "");
    b->epoch = h->epoch;
    b->seq = h->seq;
    stamp(&m->created, h->created_ms);
    b->created = &m->created;
    node_facts(&m->facts, h);
    b->node_facts = &m->facts;
    for (size_t i = 0; i < n; i++) {
        fill(&m->cws[i], &m->ts[2 * i], &wins[i], &metas[i]);
        m->ptrs[i] = &m->cws[i];
    }
    b->n_windows = n;
    b->windows = m->ptrs;
    for (size_t i = 0; i < nw; i++) {
        workload_facts(&m->wfacts[i], &h->workloads[i]);
        m->wptrs[i] = &m->wfacts[i].wf;
    }
    b->n_workloads = nw;
    b->workloads = m->wptrs;
    return 0;
}

int agent_batch_pack(const agent_batch_header_t *h, const agent_window_t *wins,
                     const agent_container_meta_t *metas, size_t n, uint8_t **out, size_t *len)
{
    built_t m;
    int r = build(&m, h, wins, metas, n);

    if (r == 0) {
        *len = kopt__v1__metric_batch__get_packed_size(&m.b);
        *out = malloc(*len ? *len : 1);
        if (*out)
            kopt__v1__metric_batch__pack(&m.b, *out);
        else
            r = -ENOMEM;
    }
    release(&m);
    return r;
}

int agent_batch_size(const agent_batch_header_t *h, const agent_window_t *wins,
                     const agent_container_meta_t *metas, size_t n, size_t *len)
{
    built_t m;
    int r = build(&m, h, wins, metas, n);

    if (r == 0)
        *len = kopt__v1__metric_batch__get_packed_size(&m.b);
    release(&m);
    return r;
}

int agent_batch_fit(const agent_batch_header_t *h, const agent_window_t *wins,
                    const agent_container_meta_t *metas, size_t n, size_t max_bytes, size_t *fit)
{
    size_t lo = 1, hi = n, len; /* the answer is in [lo, hi] */
    int r;

    *fit = n;
    if (n == 0)
        return 0;
    r = agent_batch_size(h, wins, metas, n, &len);
    if (r < 0 || len <= max_bytes)
        return r;
    /* The size grows with every window added, so bisect on the count. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;

        r = agent_batch_size(h, wins, metas, mid, &len);
        if (r < 0)
            return r;
        if (len <= max_bytes)
            lo = mid;
        else
            hi = mid - 1;
    }
    *fit = lo;
    if (lo == 1 && (r = agent_batch_size(h, wins, metas, 1, &len)) == 0 && len > max_bytes)
        return -EFBIG;
    return r;
}
