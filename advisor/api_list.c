/* The Advisor methods answered from the in-memory results:
 * ListRecommendations (filters, ordering, page tokens), GetRecommendation,
 * GetClusterSummary and ListClusters. Responses point into the snapshot,
 * which is held until the reply has been serialized; a list page goes out
 * as the entries' cached encodings (adv_page_t, page.c). Loop thread. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "filter.h"

#define DEFAULT_PAGE 100
#define MAX_PAGE 1000

static int page_size(int32_t asked)
{
    return asked <= 0 ? DEFAULT_PAGE : asked > MAX_PAGE ? MAX_PAGE : asked;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    return adv_hash(h, s ? s : "", (s ? strlen(s) : 0) + 1);
}

/* The entry's fields only (its filter view was made with the snapshot):
 * following rec into its messages for 100,000 entries is what cost. */
bool adv_list_matches(const adv_entry_t *e, const Kopt__V1__ListRecommendationsRequest *q,
                      const adv_filter_t *f)
{
    if (!((!*q->cluster || strcmp(e->filter.cluster, q->cluster) == 0) &&
          (!*q->namespace_ || strcmp(e->filter.namespace_, q->namespace_) == 0) &&
          (!q->kind || e->kind == (int)q->kind) && (!*q->name || strcmp(e->name, q->name) == 0) &&
          (q->min_monthly_savings == 0 || e->monthly_savings >= q->min_monthly_savings) &&
          (!q->idle_only || e->filter.idle)))
        return false;
    return !f || adv_filter_match(f, &e->filter);
}

static bool filtered(const Kopt__V1__ListRecommendationsRequest *q, const adv_filter_t *f)
{
    return *q->cluster || *q->namespace_ || q->kind || *q->name || q->min_monthly_savings != 0 ||
           q->idle_only || f;
}

static bool view_ok(Kopt__V1__RecommendationView v)
{
    return (int)v >= 0 && v <= KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL;
}

void adv_api_list_recommendations(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *r)
{
    const Kopt__V1__ListRecommendationsRequest *q =
        (const Kopt__V1__ListRecommendationsRequest *)msg;
    adv_page_t page = {.full = q->view == KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL,
                       .next_page_token = ""};
    adv_results_t *res;
    const adv_entry_t **sel, **order;
    size_t n = 0, offset, size = (size_t)page_size(q->page_size);
    adv_filter_t *filter = NULL;
    char token[64], why[400];
    uint64_t h;
    int rc;

    if (q->page_size < 0 || !isfinite(q->min_monthly_savings) || (int)q->order < 0 ||
        q->order > KOPT__V1__RECOMMENDATION_ORDER__RECOMMENDATION_ORDER_GENERATED_AT_DESC ||
        !view_ok(q->view)) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT,
              q->page_size < 0 ? "page_size must not be negative"
                               : "min_monthly_savings, order or view is out of range",
              NULL);
        return;
    }
    rc = adv_filter_parse(q->filter, &filter, why, sizeof(why));
    if (rc < 0) {
        r->fn(r, rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
              rc == -ENOMEM ? "out of memory" : why, NULL);
        return;
    }
    /* view is left out: it changes what each item shows, not which items.
     * The filter goes in as written (the same filter spelled another way
     * refuses the token), and only when set, so older tokens stay good. */
    h = hash_str(hash_str(hash_str(0, q->cluster), q->namespace_), q->name);
    if (*q->filter)
        h = hash_str(h, q->filter);
    h = adv_hash(h, &q->kind, sizeof(q->kind));
    h = adv_hash(h, &q->min_monthly_savings, sizeof(q->min_monthly_savings));
    h = adv_hash(h, &q->idle_only, sizeof(q->idle_only));
    h = adv_hash(h, &q->order, sizeof(q->order));
    if (adv_page_token_parse(q->page_token, h, &offset) < 0) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT,
              "page_token is not one this server gave for these filters", NULL);
        adv_filter_free(filter);
        return;
    }
    /* One pass over the snapshot in the asked order: count the matches and
     * keep those of this page. */
    sel = malloc(size * sizeof(*sel));
    if (!sel) {
        r->fn(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        adv_filter_free(filter);
        return;
    }
    res = adv_snapshot_acquire(adv_api_opts(api)->store);
    order = q->order == KOPT__V1__RECOMMENDATION_ORDER__RECOMMENDATION_ORDER_GENERATED_AT_DESC
                ? res->by_generated
            : q->order == KOPT__V1__RECOMMENDATION_ORDER__RECOMMENDATION_ORDER_NAME_ASC
                ? NULL
                : res->by_savings;
    if (!filtered(q, filter)) { /* the common call: a slice of the order */
        n = res->n;
        for (size_t i = offset; i < n && page.n < size; i++)
            sel[page.n++] = order ? order[i] : &res->e[i];
    } else {
        for (size_t i = 0; i < res->n; i++) {
            const adv_entry_t *e = order ? order[i] : &res->e[i];

            if (!adv_list_matches(e, q, filter))
                continue;
            if (n >= offset && n - offset < size)
                sel[page.n++] = e;
            n++;
        }
    }
    page.total_size = (uint32_t)n;
    page.items = sel;
    if (offset + page.n < n) {
        adv_page_token(h, offset + page.n, token, sizeof(token));
        page.next_page_token = token;
    }
    /* The transport encodes the page from the snapshot before it is released. */
    r->page(r, &page);
    free(sel);
    adv_filter_free(filter);
    adv_results_release(res);
}

/* cluster, namespace, kind and name of a request: INVALID_ARGUMENT text or NULL. */
static const char *check_ref(const char *cluster, const char *namespace_, int kind,
                             const char *name)
{
    if (!*cluster || !*namespace_ || !*name)
        return "cluster, namespace and name are required";
    if (kind <= 0 || !*adv_kind_name(kind))
        return "kind is required (WORKLOAD_KIND_DEPLOYMENT, or over HTTP also \"Deployment\")";
    return NULL;
}

void adv_api_get_recommendation(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *r)
{
    const Kopt__V1__GetRecommendationRequest *q = (const Kopt__V1__GetRecommendationRequest *)msg;
    Kopt__V1__GetRecommendationResponse resp = KOPT__V1__GET_RECOMMENDATION_RESPONSE__INIT;
    const char *bad = check_ref(q->cluster, q->namespace_, (int)q->kind, q->name);
    const adv_entry_t *e;
    adv_results_t *res;
    Kopt__V1__Recommendation basic;
    Kopt__V1__ContainerRecommendation *cs = NULL, **ps = NULL;
    char why[600];

    if (!bad && !view_ok(q->view))
        bad = "view is out of range";
    if (bad) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
        return;
    }
    res = adv_snapshot_acquire(adv_api_opts(api)->store);
    e = adv_results_find(res, q->cluster, q->namespace_, (int)q->kind, q->name);
    if (!e) {
        snprintf(why, sizeof(why), "no recommendation for %s %s/%s in cluster %s yet",
                 adv_kind_name((int)q->kind), q->namespace_, q->name, q->cluster);
        r->fn(r, GRPC_STATUS_NOT_FOUND, why, NULL);
    } else if (q->view != KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_BASIC) {
        resp.recommendation = e->rec;
        r->fn(r, GRPC_STATUS_OK, NULL, &resp.base);
    } else if ((cs = calloc(e->rec->n_containers + 1, sizeof(*cs))) &&
               (ps = calloc(e->rec->n_containers + 1, sizeof(*ps)))) {
        adv_recommendation_basic(e->rec, &basic, cs, ps);
        resp.recommendation = &basic;
        r->fn(r, GRPC_STATUS_OK, NULL, &resp.base);
    } else {
        r->fn(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    }
    free(cs);
    free(ps);
    adv_results_release(res);
}

static void set_time(Google__Protobuf__Timestamp *t, int64_t s)
{
    google__protobuf__timestamp__init(t);
    t->seconds = s;
}

void adv_api_get_cluster_summary(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *r)
{
    const Kopt__V1__GetClusterSummaryRequest *q = (const Kopt__V1__GetClusterSummaryRequest *)msg;
    Kopt__V1__GetClusterSummaryResponse resp = KOPT__V1__GET_CLUSTER_SUMMARY_RESPONSE__INIT;
    Kopt__V1__ResourceTotals alloc_t = KOPT__V1__RESOURCE_TOTALS__INIT,
                             req_t = KOPT__V1__RESOURCE_TOTALS__INIT,
                             rec_t = KOPT__V1__RESOURCE_TOTALS__INIT;
    Kopt__V1__Pricing pricing = KOPT__V1__PRICING__INIT;
    Google__Protobuf__Timestamp gen;
    const kopt_engine_prices_t *p = &adv_api_opts(api)->engine->prices;
    const adv_cluster_t *c;
    adv_results_t *res;
    char why[300];

    if (!*q->cluster) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT, "cluster is required", NULL);
        return;
    }
    res = adv_snapshot_acquire(adv_api_opts(api)->store);
    c = adv_results_cluster(res, q->cluster);
    if (!c) {
        snprintf(why, sizeof(why), "no cluster named %s has been analysed", q->cluster);
        r->fn(r, GRPC_STATUS_NOT_FOUND, why, NULL);
        adv_results_release(res);
        return;
    }
    resp.cluster = c->name;
    resp.node_count = c->nodes;
    alloc_t.cpu_cores = c->alloc_cpu;
    alloc_t.memory_bytes = (uint64_t)c->alloc_mem;
    resp.allocatable = c->alloc_cpu > 0 || c->alloc_mem > 0 ? &alloc_t : NULL;
    req_t.cpu_cores = c->req_cpu;
    req_t.memory_bytes = (uint64_t)c->req_mem;
    rec_t.cpu_cores = c->rec_cpu;
    rec_t.memory_bytes = (uint64_t)c->rec_mem;
    resp.requested = &req_t;
    resp.recommended = &rec_t;
    resp.workload_count = c->workloads;
    resp.idle_workload_count = c->idle;
    resp.requested_monthly_cost = c->req_cost;
    resp.recommended_monthly_cost = c->rec_cost;
    resp.monthly_savings = c->req_cost - c->rec_cost;
    pricing.currency = (char *)p->currency;
    pricing.cpu_core_hour = p->cpu_core_hour;
    pricing.memory_gib_hour = p->memory_gib_hour;
    pricing.hours_per_month = p->hours_per_month;
    resp.pricing = &pricing;
    if (c->last_analysis) {
        set_time(&gen, c->last_analysis);
        resp.generated_at = &gen;
        resp.analysis_id = (char *)c->analysis_id;
    }
    r->fn(r, GRPC_STATUS_OK, NULL, &resp.base);
    adv_results_release(res);
}

void adv_api_list_clusters(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *r)
{
    const Kopt__V1__ListClustersRequest *q = (const Kopt__V1__ListClustersRequest *)msg;
    Kopt__V1__ListClustersResponse resp = KOPT__V1__LIST_CLUSTERS_RESPONSE__INIT;
    const uint64_t h = adv_hash(0, "clusters", 8);
    size_t offset, size = (size_t)page_size(q->page_size), n;
    Kopt__V1__Cluster *cl = NULL, **cp = NULL;
    Google__Protobuf__Timestamp *ts = NULL;
    adv_results_t *res;
    char token[64];

    if (q->page_size < 0 || adv_page_token_parse(q->page_token, h, &offset) < 0) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT,
              q->page_size < 0 ? "page_size must not be negative"
                               : "page_token is not one this server gave",
              NULL);
        return;
    }
    res = adv_snapshot_acquire(adv_api_opts(api)->store);
    if (offset > res->n_clusters)
        offset = res->n_clusters;
    n = res->n_clusters - offset < size ? res->n_clusters - offset : size;
    cl = calloc(n + 1, sizeof(*cl));
    cp = calloc(n + 1, sizeof(*cp));
    ts = calloc(2 * n + 1, sizeof(*ts));
    if (!cl || !cp || !ts) {
        r->fn(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const adv_cluster_t *c = &res->clusters[offset + i];

        kopt__v1__cluster__init(&cl[i]);
        cl[i].name = c->name;
        cl[i].node_count = c->nodes;
        cl[i].workload_count = c->workloads;
        if (c->last_seen) {
            set_time(&ts[2 * i], c->last_seen);
            cl[i].last_seen = &ts[2 * i];
        }
        if (c->last_analysis) {
            set_time(&ts[2 * i + 1], c->last_analysis);
            cl[i].last_analysis = &ts[2 * i + 1];
        }
        cp[i] = &cl[i];
    }
    resp.n_clusters = n;
    resp.clusters = cp;
    if (offset + n < res->n_clusters) {
        adv_page_token(h, offset + n, token, sizeof(token));
        resp.next_page_token = token;
    }
    r->fn(r, GRPC_STATUS_OK, NULL, &resp.base);
out:
    free(cl);
    free(cp);
    free(ts);
    adv_results_release(res);
}
