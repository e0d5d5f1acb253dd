/* The latest results in memory: an immutable snapshot of every workload's
 * recommendation, sorted for lookups, with per-cluster totals, shared by
 * reference count. An analysis builds a new snapshot off the loop and swaps
 * it in under a mutex; readers holding the old one finish with it, and the
 * last release frees it. So the list and get calls never touch ClickHouse.
 * Each entry's list view is encoded here once (page.c). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"

struct adv_snapshot {
    pthread_mutex_t mu;
    adv_results_t *cur;
};

static int entry_cmp(const void *a, const void *b)
{
    const adv_entry_t *x = a, *y = b;
    int c = strcmp(x->cluster, y->cluster);

    if (c == 0)
        c = strcmp(x->namespace_, y->namespace_);
    if (c == 0)
        c = (x->kind > y->kind) - (x->kind < y->kind);
    if (c == 0)
        c = strcmp(x->name, y->name);
    return c;
}

static int cluster_cmp(const void *a, const void *b)
{
    return strcmp(((const adv_cluster_t *)a)->name, ((const adv_cluster_t *)b)->name);
}

static bool inside(const adv_entry_t *e, const char *cluster, const char *namespace_)
{
    return strcmp(e->cluster, cluster) == 0 &&
           (!namespace_ || !*namespace_ || strcmp(e->namespace_, namespace_) == 0);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static double rec_totals(const Kopt__V1__Recommendation *rec, double *req_cpu, double *rec_cpu,
                         double *req_mem, double *rec_mem)
{
    double reps = rec->replicas > 0 ? rec->replicas : 1;

    *req_cpu = *rec_cpu = *req_mem = *rec_mem = 0;
    for (size_t i = 0; i < rec->n_containers; i++) {
        const Kopt__V1__ContainerRecommendation *c = rec->containers[i];

        if (c->current) {
            *req_cpu += c->current->cpu_request_cores * reps;
            *req_mem += (double)c->current->memory_request_bytes * reps;
        }
        if (c->recommended) {
            *rec_cpu += c->recommended->cpu_request_cores * reps;
            *rec_mem += (double)c->recommended->memory_request_bytes * reps;
        }
    }
    return reps;
}

static adv_cluster_t *cluster_of(adv_results_t *r, const char *name)
{
    adv_cluster_t *c;

    if (r->n_clusters && strcmp(r->clusters[r->n_clusters - 1].name, name) == 0)
        return &r->clusters[r->n_clusters - 1];
    c = &r->clusters[r->n_clusters]; /* room for one per entry was allocated */
    memset(c, 0, sizeof(*c));
    c->name = strdup(name);
    if (!c->name)
        return NULL;
    r->n_clusters++;
    return c;
}

static int add_to_cluster(adv_results_t *r, const adv_entry_t *e,
                          const kopt_engine_prices_t *prices)
{
    adv_cluster_t *c = cluster_of(r, e->cluster);
    const Kopt__V1__Recommendation *rec = e->rec;
    double req_cpu, rec_cpu, req_mem, rec_mem;

    if (!c)
        return -ENOMEM;
    rec_totals(rec, &req_cpu, &rec_cpu, &req_mem, &rec_mem);
    c->workloads++;
    c->idle += rec->idle;
    c->req_cpu += req_cpu;
    c->rec_cpu += rec_cpu;
    c->req_mem += req_mem;
    c->rec_mem += rec_mem;
    c->req_cost += kopt_engine_monthly_cost(prices, req_cpu, req_mem);
    c->rec_cost += kopt_engine_monthly_cost(prices, rec_cpu, rec_mem);
    if (e->generated_at >= c->last_analysis) {
        c->last_analysis = e->generated_at;
        snprintf(c->analysis_id, sizeof(c->analysis_id), "%s", nz(rec->analysis_id));
    }
    return 0;
}

void adv_entry_filter_item(const adv_entry_t *e, adv_filter_item_t *it)
{
    const Kopt__V1__Recommendation *rec = e->rec;

    it->cluster = e->cluster;
    it->namespace_ = e->namespace_;
    it->name = e->name;
    it->kind = e->kind;
    it->savings = e->monthly_savings;
    it->cpu_savings = rec->savings ? rec->savings->cpu_cores : 0;
    it->memory_savings = rec->savings ? (double)rec->savings->memory_bytes : 0;
    it->confidence = rec->n_containers ? 1 : 0;
    for (size_t i = 0; i < rec->n_containers; i++)
        if (rec->containers[i]->confidence < it->confidence)
            it->confidence = rec->containers[i]->confidence;
    it->idle = rec->idle;
}

static int by_savings(const void *a, const void *b)
{
    const adv_entry_t *x = *(const adv_entry_t *const *)a, *y = *(const adv_entry_t *const *)b;

    if (x->monthly_savings != y->monthly_savings)
        return x->monthly_savings < y->monthly_savings ? 1 : -1;
    return x < y ? -1 : x > y; /* name order breaks ties: stable pages */
}

static int by_generated(const void *a, const void *b)
{
    const adv_entry_t *x = *(const adv_entry_t *const *)a, *y = *(const adv_entry_t *const *)b;

    if (x->generated_at != y->generated_at)
        return x->generated_at < y->generated_at ? 1 : -1;
    return x < y ? -1 : x > y;
}

/* The list's other orders, once here instead of a sort per call. */
static int sort_orders(adv_results_t *r)
{
    r->by_savings = malloc((r->n ? r->n : 1) * sizeof(*r->by_savings));
    r->by_generated = malloc((r->n ? r->n : 1) * sizeof(*r->by_generated));
    if (!r->by_savings || !r->by_generated)
        return -ENOMEM;
    for (size_t i = 0; i < r->n; i++)
        r->by_savings[i] = r->by_generated[i] = &r->e[i];
    qsort(r->by_savings, r->n, sizeof(*r->by_savings), by_savings);
    qsort(r->by_generated, r->n, sizeof(*r->by_generated), by_generated);
    return 0;
}

adv_results_t *adv_results_new(Kopt__V1__Recommendation **recs, size_t n,
                               const adv_cluster_info_t *ci, size_t n_ci,
                               const kopt_engine_prices_t *prices)
{
    adv_results_t *r = calloc(1, sizeof(*r));
    size_t k = 0;

    if (r) {
        r->e = calloc(n ? n : 1, sizeof(*r->e));
        r->clusters = calloc(n + n_ci + 1, sizeof(*r->clusters));
    }
    if (!r || !r->e || !r->clusters) {
        for (size_t i = 0; i < n; i++)
            protobuf_c_message_free_unpacked(&recs[i]->base, NULL);
        free(recs);
        if (r) {
            free(r->e);
            free(r->clusters);
        }
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    for (size_t i = 0; i < n; i++) {
        Kopt__V1__Recommendation *rec = recs[i];

        if (!rec->workload || !rec->savings) { /* not ours: never made by analysis.c */
            protobuf_c_message_free_unpacked(&rec->base, NULL);
            continue;
        }
        r->e[r->n++] = (adv_entry_t){
            .cluster = nz(rec->workload->cluster),
            .namespace_ = nz(rec->workload->namespace_),
            .name = nz(rec->workload->name),
            .kind = (int)rec->workload->kind,
            .rec = rec,
            .monthly_savings = rec->savings->monthly_cost,
            .generated_at = rec->generated_at ? rec->generated_at->seconds : 0,
        };
    }
    free(recs);
    qsort(r->e, r->n, sizeof(*r->e), entry_cmp);
    if (sort_orders(r) < 0)
        goto fail;
    /* Encoded once here, so a list call only filters, pages and splices;
     * the filter's view likewise (after the sort, which moves entries). Its
     * cluster and namespace point at the first entry's equal string of the
     * run (entries are sorted by them): a few strings that stay in the
     * cache instead of one per message. */
    for (size_t i = 0; i < r->n; i++) {
        adv_filter_item_t *it = &r->e[i].filter, *prev = i ? &r->e[i - 1].filter : NULL;

        adv_entry_filter_item(&r->e[i], it);
        if (prev && strcmp(prev->cluster, it->cluster) == 0) {
            it->cluster = prev->cluster;
            if (strcmp(prev->namespace_, it->namespace_) == 0)
                it->namespace_ = prev->namespace_;
        }
        if (add_to_cluster(r, &r->e[i], prices) < 0 || adv_entry_encode(&r->e[i]) < 0)
            goto fail;
    }
    /* Node counts and last_seen from container_windows; clusters seen there
     * without a recommendation yet are listed too. */
    for (size_t i = 0; i < n_ci; i++) {
        adv_cluster_t *c = NULL;

        for (size_t j = 0; j < r->n_clusters && !c; j++)
            if (strcmp(r->clusters[j].name, ci[i].cluster) == 0)
                c = &r->clusters[j];
        if (!c) {
            c = &r->clusters[r->n_clusters];
            memset(c, 0, sizeof(*c));
            if (!(c->name = strdup(ci[i].cluster)))
                goto fail;
            r->n_clusters++;
            k++;
        }
        c->nodes = ci[i].nodes;
        c->last_seen = ci[i].last_seen;
        c->alloc_cpu = ci[i].cpu_allocatable_cores;
        c->alloc_mem = (double)ci[i].memory_allocatable_bytes;
    }
    if (k)
        qsort(r->clusters, r->n_clusters, sizeof(*r->clusters), cluster_cmp);
    return r;
fail:
    adv_results_release(r);
    return NULL;
}

int adv_results_keep_outside(const adv_results_t *r, const char *cluster, const char *namespace_,
                             Kopt__V1__Recommendation ***recs, size_t *n)
{
    Kopt__V1__Recommendation **v;
    size_t keep = 0;

    if (!cluster || !*cluster)
        return 0; /* everything is inside the scope */
    for (size_t i = 0; i < r->n; i++)
        keep += !inside(&r->e[i], cluster, namespace_);
    if (!keep)
        return 0;
    v = realloc(*recs, (*n + keep) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    *recs = v;
    for (size_t i = 0; i < r->n; i++) {
        const ProtobufCMessage *m = &r->e[i].rec->base;
        size_t len;
        uint8_t *buf;

        if (inside(&r->e[i], cluster, namespace_))
            continue;
        /* A deep copy: snapshots never share messages. */
        len = protobuf_c_message_get_packed_size(m);
        buf = malloc(len ? len : 1);
        if (!buf)
            return -ENOMEM;
        protobuf_c_message_pack(m, buf);
        v[*n] = kopt__v1__recommendation__unpack(NULL, len, buf);
        free(buf);
        if (!v[*n])
            return -ENOMEM;
        (*n)++;
    }
    return 0;
}

const adv_entry_t *adv_results_find(const adv_results_t *r, const char *cluster,
                                    const char *namespace_, int kind, const char *name)
{
    adv_entry_t key = {.cluster = cluster, .namespace_ = namespace_, .kind = kind, .name = name};

    return bsearch(&key, r->e, r->n, sizeof(*r->e), entry_cmp);
}

const adv_cluster_t *adv_results_cluster(const adv_results_t *r, const char *name)
{
    adv_cluster_t key = {.name = (char *)name};

    return bsearch(&key, r->clusters, r->n_clusters, sizeof(*r->clusters), cluster_cmp);
}

void adv_results_release(adv_results_t *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->n; i++) {
        protobuf_c_message_free_unpacked(&r->e[i].rec->base, NULL);
        free(r->e[i].basic_json.data);
        free(r->e[i].basic_pb.data);
    }
    for (size_t i = 0; i < r->n_clusters; i++)
        free(r->clusters[i].name);
    free(r->e);
    free(r->by_savings);
    free(r->by_generated);
    free(r->clusters);
    free(r);
}

int adv_snapshot_new(adv_snapshot_t **out)
{
    adv_snapshot_t *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->cur = adv_results_new(NULL, 0, NULL, 0, NULL);
    if (!s->cur) {
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void adv_snapshot_free(adv_snapshot_t *s)
{
    if (!s)
        return;
    adv_results_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

adv_results_t *adv_snapshot_acquire(adv_snapshot_t *s)
{
    adv_results_t *r;

    pthread_mutex_lock(&s->mu);
    r = s->cur;
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return r;
}

void adv_snapshot_swap(adv_snapshot_t *s, adv_results_t *next)
{
    adv_results_t *old;

    pthread_mutex_lock(&s->mu);
    old = s->cur;
    s->cur = next;
    pthread_mutex_unlock(&s->mu);
    adv_results_release(old);
}
