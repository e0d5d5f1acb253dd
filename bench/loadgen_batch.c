/* Synthetic MetricBatches that look like a real node's: EKS-style node names,
 * daemonset pods on every node, Deployment/StatefulSet/CronJob pods with
 * sidecars, requests and limits, and usage that passes libkopt/batch_validate.c
 * (peak >= mean, working set last <= peak, one-minute windows that ended
 * before now). Deterministic for a seed, so runs are comparable. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/v1/metrics.pb-c.h"
#include "loadgen.h"

#define MiB (1024ull * 1024ull)

typedef struct {
    uint64_t s;
} rng_t;

/* splitmix64: small, fast, good enough for test data. */
static uint64_t rnd(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(rng_t *r)
{
    return (double)(rnd(r) >> 11) / (double)(1ull << 53);
}

static int pick(rng_t *r, int n)
{
    return (int)(rnd(r) % (uint64_t)n);
}

/* Bump allocator for the strings of one batch; freed after packing. */
typedef struct {
    char *buf;
    size_t used, cap;
} arena_t;

static char *sfmt(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *sfmt(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    char *p = a->buf + a->used;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(p, a->cap - a->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= a->cap - a->used)
        return NULL;
    a->used += (size_t)n + 1;
    return p;
}

/* Kubernetes' rand.String alphabet: no vowels, no look-alikes. */
static void kid(rng_t *r, char *out, int n)
{
    static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";

    for (int i = 0; i < n; i++)
        out[i] = alpha[pick(r, (int)sizeof(alpha) - 1)];
    out[n] = '\0';
}

static void hex(rng_t *r, char *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[rnd(r) & 15];
    out[n] = '\0';
}

static const char *const namespaces[] = {
    "payments",      "checkout",        "search",  "catalog",       "identity",     "ml-serving",
    "data-pipeline", "monitoring",      "logging", "ingress-nginx", "cert-manager", "analytics",
    "notifications", "recommendations", "orders",  "inventory",
};
static const char *const roles[] = {
    "api",     "worker", "web",  "frontend", "backend", "gateway", "consumer", "scheduler",
    "indexer", "cache",  "sync", "exporter", "grpc",    "events",  "reporter", "webhook",
};
static const char *const stateful[] = {"postgres",  "redis",         "kafka",
                                       "zookeeper", "elasticsearch", "rabbitmq"};
static const char *const daemonsets[][2] = {
    {"kube-system", "kube-proxy"},   {"kube-system", "aws-node"},     {"logging", "fluent-bit"},
    {"monitoring", "node-exporter"}, {"kube-system", "ebs-csi-node"},
};

typedef struct {
    Kopt__V1__ContainerWindow w;
    double util; /* share of the CPU request this container uses on average */
} container_t;

typedef struct {
    Kopt__V1__ContainerWindow *w;
    Kopt__V1__ContainerWindow **wp;
    Kopt__V1__WorkloadFacts *wl;
    Kopt__V1__WorkloadFacts **wlp;
    Kopt__V1__HpaFacts *hpa;
    size_t n_w, n_wl, cap;
} build_t;

/* The workload facts entry for (ns, kind, name), added once per batch. */
static void add_workload(build_t *b, rng_t *r, const char *ns, Kopt__V1__WorkloadKind kind,
                         const char *name)
{
    Kopt__V1__WorkloadFacts *f;

    for (size_t i = 0; i < b->n_wl; i++)
        if (b->wl[i].kind == kind && strcmp(b->wl[i].name, name) == 0 &&
            strcmp(b->wl[i].namespace_, ns) == 0)
            return;
    f = &b->wl[b->n_wl];
    kopt__v1__workload_facts__init(f);
    f->namespace_ = (char *)ns;
    f->kind = kind;
    f->name = (char *)name;
    f->replicas = kind == KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DAEMON_SET ? 40 : 1 + pick(r, 12);
    f->ready_replicas = f->replicas - (pick(r, 10) == 0 ? 1 : 0);
    f->qos_class = KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE;
    if (kind == KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT && pick(r, 4) == 0) {
        Kopt__V1__HpaFacts *h = &b->hpa[b->n_wl];
        static char *metrics[] = {"cpu"};

        kopt__v1__hpa_facts__init(h);
        h->name = (char *)name;
        h->min_replicas = 2;
        h->max_replicas = 20;
        h->target_cpu_utilization_percent = 70;
        h->n_metric_names = 1;
        h->metric_names = metrics;
        f->hpa = h;
    }
    b->wlp[b->n_wl] = f;
    b->n_wl++;
}

/* One container's identity and resources; usage is filled per variant. */
static void add_container(build_t *b, rng_t *r, arena_t *a, const char *ns,
                          Kopt__V1__WorkloadKind kind, const char *wl, const char *pod,
                          const char *pod_uid, const char *name)
{
    Kopt__V1__ContainerWindow *w = &b->w[b->n_w];
    static const double cpu_req[] = {0.05, 0.1, 0.25, 0.5, 1.0, 2.0};
    static const uint64_t mem_req[] = {64, 128, 256, 512, 1024, 2048, 4096};
    char id[65];

    kopt__v1__container_window__init(w);
    hex(r, id, 64);
    w->namespace_ = (char *)ns;
    w->workload_kind = kind;
    w->workload_name = (char *)wl;
    w->pod = (char *)pod;
    w->container = (char *)name;
    w->container_id = sfmt(a, "containerd://%s", id);
    w->pod_uid = (char *)pod_uid;
    w->cpu_request_cores = cpu_req[pick(r, 6)];
    w->cpu_limit_cores = pick(r, 3) == 0 ? 0 : w->cpu_request_cores * 2;
    w->memory_request_bytes = mem_req[pick(r, 7)] * MiB;
    w->memory_limit_bytes = pick(r, 4) == 0 ? 0 : w->memory_request_bytes * 2;
    w->sample_count = 6; /* 10 s sampling in a one-minute window */
    b->wp[b->n_w] = w;
    b->n_w++;
}

static void add_pod(build_t *b, rng_t *r, arena_t *a, const char *ns, Kopt__V1__WorkloadKind kind,
                    const char *wl, const char *pod, int containers, const char *main_name)
{
    static const char *const sidecars[] = {"istio-proxy", "log-shipper"};
    char u[33];
    const char *uid;

    hex(r, u, 32);
    uid = sfmt(a, "%.8s-%.4s-4%.3s-a%.3s-%.12s", u, u + 8, u + 12, u + 15, u + 18);
    add_workload(b, r, ns, kind, wl);
    add_container(b, r, a, ns, kind, wl, pod, uid, main_name);
    for (int i = 1; i < containers && b->n_w < b->cap; i++)
        add_container(b, r, a, ns, kind, wl, pod, uid, sidecars[i - 1]);
}

/* Pods until the node holds `want` containers: daemonsets first. */
static void populate(build_t *b, rng_t *r, arena_t *a, size_t want)
{
    char k1[11], k2[6];

    for (size_t i = 0; i < sizeof(daemonsets) / sizeof(daemonsets[0]) && b->n_w < want; i++) {
        kid(r, k2, 5);
        add_pod(b, r, a, daemonsets[i][0], KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DAEMON_SET,
                daemonsets[i][1], sfmt(a, "%s-%s", daemonsets[i][1], k2), 1, daemonsets[i][1]);
    }
    while (b->n_w < want) {
        const char *ns = namespaces[pick(r, sizeof(namespaces) / sizeof(namespaces[0]))];
        const char *role = roles[pick(r, sizeof(roles) / sizeof(roles[0]))];
        int kind_pick = pick(r, 100);
        int containers = 1 + (pick(r, 100) >= 50) + (pick(r, 100) >= 85);
        size_t room = want - b->n_w;
        const char *wl, *pod;
        Kopt__V1__WorkloadKind kind;

        if ((size_t)containers > room)
            containers = (int)room;
        kid(r, k1, 10);
        kid(r, k2, 5);
        if (kind_pick < 75) {
            kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
            wl = sfmt(a, "%s-%s", ns, role);
            pod = sfmt(a, "%s-%s-%s", wl, k1, k2);
        } else if (kind_pick < 87) {
            kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET;
            role = stateful[pick(r, sizeof(stateful) / sizeof(stateful[0]))];
            wl = sfmt(a, "%s-%s", ns, role);
            pod = sfmt(a, "%s-%d", wl, pick(r, 3));
        } else if (kind_pick < 95) {
            kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_CRON_JOB;
            wl = sfmt(a, "%s-%s-nightly", ns, role);
            pod = sfmt(a, "%s-%d-%s", wl, 28000000 + pick(r, 999999), k2);
        } else {
            kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_JOB;
            wl = sfmt(a, "%s-%s-migrate-%s", ns, role, k2);
            pod = sfmt(a, "%s-%s", wl, k1 + 5);
        }
        add_pod(b, r, a, ns, kind, wl, pod, containers, role);
    }
}

/* Usage for one variant: valid by construction (peak >= mean, last <= peak). */
static void usage(build_t *b, rng_t *r, Google__Protobuf__Timestamp *start,
                  Google__Protobuf__Timestamp *end)
{
    for (size_t i = 0; i < b->n_w; i++) {
        Kopt__V1__ContainerWindow *w = b->wp[i];
        double req = w->cpu_request_cores > 0 ? w->cpu_request_cores : 0.1;
        double mean = req * (0.02 + 1.2 * unit(r) * unit(r));
        uint64_t mreq = w->memory_request_bytes;
        uint64_t peak = (uint64_t)((double)mreq * (0.2 + 0.9 * unit(r)));

        w->window_start = start;
        w->window_end = end;
        w->cpu_usage_mean_cores = mean;
        w->cpu_usage_peak_cores = mean * (1.0 + 2.0 * unit(r));
        if (w->cpu_limit_cores > 0) {
            if (w->cpu_usage_peak_cores > w->cpu_limit_cores)
                w->cpu_usage_peak_cores = w->cpu_limit_cores;
            if (w->cpu_usage_mean_cores > w->cpu_usage_peak_cores)
                w->cpu_usage_mean_cores = w->cpu_usage_peak_cores;
            w->cpu_periods = 600; /* 100 ms CFS periods in a minute */
            w->cpu_throttled_periods = pick(r, 5) == 0 ? (uint64_t)pick(r, 120) : 0;
            w->cpu_throttled_seconds = (double)w->cpu_throttled_periods * 0.004;
        }
        w->memory_working_set_peak_bytes = peak;
        w->memory_working_set_last_bytes = (uint64_t)((double)peak * (0.8 + 0.2 * unit(r)));
        w->memory_rss_peak_bytes = (uint64_t)((double)peak * (0.6 + 0.3 * unit(r)));
        w->oom_kills = pick(r, 2000) == 0;
        w->restarts = w->oom_kills;
    }
}

static void node_facts(Kopt__V1__NodeFacts *nf, Kopt__V1__NodeFacts__LabelsEntry *le,
                       Kopt__V1__NodeFacts__LabelsEntry **lp, rng_t *r, const char *zone)
{
    static const char *const types[] = {"m6i.4xlarge", "m6i.8xlarge", "c6i.4xlarge", "r6i.2xlarge"};
    static const double cores[] = {16, 32, 16, 8};
    static const uint64_t mem_gib[] = {64, 128, 32, 64};
    int t = pick(r, 4);

    kopt__v1__node_facts__init(nf);
    nf->cpu_capacity_cores = cores[t];
    nf->cpu_allocatable_cores = cores[t] - 0.09;
    nf->memory_capacity_bytes = mem_gib[t] << 30;
    nf->memory_allocatable_bytes = (mem_gib[t] << 30) - (1ull << 30);
    nf->kernel_version = "6.1.0-18-amd64";
    nf->kubelet_version = "v1.29.2";
    nf->container_runtime_version = "containerd://1.7.13";
    nf->architecture = "amd64";
    nf->instance_type = (char *)types[t];
    nf->zone = (char *)zone;
    nf->region = "eu-west-1";
    nf->metric_source = KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2;
    for (int i = 0; i < 3; i++) {
        kopt__v1__node_facts__labels_entry__init(&le[i]);
        lp[i] = &le[i];
    }
    le[0].key = "node.kubernetes.io/instance-type";
    le[0].value = (char *)types[t];
    le[1].key = "topology.kubernetes.io/zone";
    le[1].value = (char *)zone;
    le[2].key = "karpenter.sh/capacity-type";
    le[2].value = pick(r, 3) == 0 ? "spot" : "on-demand";
    nf->n_labels = 3;
    nf->labels = lp;
}

/* A node's batch before packing. Kept in lg_node_t when every send packs
 * its own minute (o->minute0); the pointers inside point into it. */
struct lg_node_src {
    build_t b;
    arena_t a;
    rng_t r;
    Kopt__V1__MetricBatch mb;
    Kopt__V1__NodeFacts nf;
    Kopt__V1__NodeFacts__LabelsEntry le[3], *lp[3];
    Google__Protobuf__Timestamp start, end;
};

struct lg_keyset {
    uint64_t *slot; /* 64-bit key hashes, open addressing; 0 marks a free slot */
    size_t cap, n;
};

lg_keyset_t *lg_keyset_new(size_t cap)
{
    lg_keyset_t *k = calloc(1, sizeof(*k));
    size_t c = 1024;

    while (c < 2 * cap)
        c <<= 1;
    if (k && !(k->slot = calloc(c, sizeof(*k->slot)))) {
        free(k);
        return NULL;
    }
    if (k)
        k->cap = c;
    return k;
}

void lg_keyset_free(lg_keyset_t *k)
{
    if (k)
        free(k->slot);
    free(k);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* separator */
}

/* true when the window's container key was new (and is now in the set);
 * false too when the set is full, so the caller leaves the window out. */
static int keyset_add(lg_keyset_t *k, const Kopt__V1__ContainerWindow *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    h = fnv(h, w->namespace_);
    h = fnv(h ^ (uint64_t)w->workload_kind, w->workload_name);
    h = fnv(h, w->pod);
    h = fnv(h, w->container);
    if (h == 0)
        h = 1;
    if (2 * (k->n + 1) > k->cap)
        return 0;
    for (i = h & (k->cap - 1); k->slot[i]; i = (i + 1) & (k->cap - 1))
        if (k->slot[i] == h)
            return 0;
    k->slot[i] = h;
    k->n++;
    return 1;
}

/* Leaves out the windows whose key an earlier node (or this one) had:
 * ClickHouse's ReplacingMergeTree would fold them into one row. */
static void drop_repeats(build_t *b, lg_keyset_t *k)
{
    size_t kept = 0;

    for (size_t i = 0; i < b->n_w; i++)
        if (keyset_add(k, b->wp[i]))
            b->wp[kept++] = b->wp[i];
    b->n_w = kept;
}

static void src_free(struct lg_node_src *s)
{
    if (!s)
        return;
    free(s->b.w);
    free(s->b.wp);
    free(s->b.wl);
    free(s->b.wlp);
    free(s->b.hpa);
    free(s->a.buf);
    free(s);
}

int lg_node_build(lg_node_t *n, const lg_opts_t *o, int index, int64_t now_s)
{
    static const char *const zones[] = {"eu-west-1a", "eu-west-1b", "eu-west-1c"};
    struct lg_node_src *s = calloc(1, sizeof(*s));
    int span = o->containers_max - o->containers_min + 1;
    size_t want;
    int rc = 0;

    memset(n, 0, sizeof(*n));
    if (!s)
        return -ENOMEM;
    s->r = (rng_t){o->seed * 1000003u + (uint64_t)index};
    want = (size_t)o->containers_min + (size_t)pick(&s->r, span > 0 ? span : 1);
    s->b.cap = want;
    s->a.cap = want * 512 + 4096;
    snprintf(n->node, sizeof(n->node), "ip-10-%d-%d-%d.eu-west-1.compute.internal",
             (index / 65536) % 256, (index / 256) % 256, index % 256);
    s->b.w = calloc(want, sizeof(*s->b.w));
    s->b.wp = calloc(want, sizeof(*s->b.wp));
    s->b.wl = calloc(want, sizeof(*s->b.wl));
    s->b.wlp = calloc(want, sizeof(*s->b.wlp));
    s->b.hpa = calloc(want, sizeof(*s->b.hpa));
    s->a.buf = malloc(s->a.cap);
    if (!s->b.w || !s->b.wp || !s->b.wl || !s->b.wlp || !s->b.hpa || !s->a.buf) {
        rc = -ENOMEM;
        goto out;
    }
    populate(&s->b, &s->r, &s->a, want);
    if (o->minute0 && o->keys)
        drop_repeats(&s->b, o->keys);
    node_facts(&s->nf, s->le, s->lp, &s->r, zones[index % 3]);
    kopt__v1__metric_batch__init(&s->mb);
    google__protobuf__timestamp__init(&s->start);
    google__protobuf__timestamp__init(&s->end);
    s->end.seconds = now_s - now_s % 60; /* the minute that just ended */
    s->start.seconds = s->end.seconds - 60;
    s->mb.cluster = (char *)o->cluster;
    s->mb.node = n->node;
    s->mb.agent_id = (char *)o->agent_id;
    s->mb.node_facts = &s->nf;
    s->mb.agent_version = "0.1.0";
    s->mb.n_windows = s->b.n_w;
    s->mb.windows = s->b.wp;
    s->mb.n_workloads = s->b.n_wl;
    s->mb.workloads = s->b.wlp;
    n->n_windows = s->b.n_w;
    for (int v = 0; v < LG_VARIANTS; v++) {
        usage(&s->b, &s->r, &s->start, &s->end);
        n->body_len[v] = kopt__v1__metric_batch__get_packed_size(&s->mb);
        n->body[v] = malloc(n->body_len[v] + LG_SUFFIX_MAX);
        if (!n->body[v]) {
            rc = -ENOMEM;
            goto out;
        }
        kopt__v1__metric_batch__pack(&s->mb, n->body[v]);
    }
    if (o->minute0) {
        /* mb.node points into n: n must not move while src lives. */
        n->src = s;
        s = NULL;
    }
out:
    src_free(s);
    if (rc < 0)
        lg_node_free(n);
    return rc;
}

int lg_node_minute(lg_node_t *n, int64_t end_s, uint8_t **out, size_t *len)
{
    struct lg_node_src *s = n->src;

    if (!s)
        return -EINVAL;
    s->end.seconds = end_s - end_s % 60;
    s->start.seconds = s->end.seconds - 60;
    usage(&s->b, &s->r, &s->start, &s->end);
    *len = kopt__v1__metric_batch__get_packed_size(&s->mb);
    *out = malloc(*len + LG_SUFFIX_MAX);
    if (!*out)
        return -ENOMEM;
    kopt__v1__metric_batch__pack(&s->mb, *out);
    return 0;
}

void lg_node_free(lg_node_t *n)
{
    if (!n)
        return;
    for (int v = 0; v < LG_VARIANTS; v++) {
        free(n->body[v]);
        n->body[v] = NULL;
    }
    src_free(n->src);
    n->src = NULL;
}

static size_t varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t lg_batch_suffix(uint8_t *buf, uint64_t epoch, uint64_t seq, int64_t created_s,
                       int32_t created_ns)
{
    uint8_t ts[24];
    size_t n = 0, t = 0;

    buf[n++] = 4 << 3; /* epoch, varint */
    n += varint(buf + n, epoch);
    buf[n++] = 5 << 3; /* seq, varint */
    n += varint(buf + n, seq);
    ts[t++] = 1 << 3; /* Timestamp.seconds */
    t += varint(ts + t, (uint64_t)created_s);
    if (created_ns > 0) {
        ts[t++] = 2 << 3; /* Timestamp.nanos */
        t += varint(ts + t, (uint64_t)created_ns);
    }
    buf[n++] = 6 << 3 | 2; /* created, length-delimited */
    buf[n++] = (uint8_t)t;
    memcpy(buf + n, ts, t);
    return n + t;
}
