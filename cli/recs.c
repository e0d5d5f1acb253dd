/* Fetching, de-duplicating and sorting recommendations (recs.h). */
#include "recs.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define METHOD_LIST "/kopt.v1.Advisor/ListRecommendations"

static const struct {
    const char *name; /* Kubernetes kind */
    const char *alias;
    int kind;
} kinds[] = {
    {"Deployment", "deploy", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT},
    {"StatefulSet", "sts", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET},
    {"DaemonSet", "ds", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DAEMON_SET},
    {"Job", "job", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_JOB},
    {"CronJob", "cj", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_CRON_JOB},
    {"ReplicaSet", "rs", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_REPLICA_SET},
    {"Pod", "po", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_POD},
    /* kopt-agent's proc source on a plain machine, not Kubernetes. */
    {"ProcessGroup", "process-group", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_PROCESS_GROUP},
};

int cli_kind_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcasecmp(s, kinds[i].name) == 0 || strcasecmp(s, kinds[i].alias) == 0)
            return kinds[i].kind;
    return -1;
}

const char *cli_kind_name(int kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "Unknown";
}

static bool same_workload(const Kopt__V1__Recommendation *a, const Kopt__V1__Recommendation *b)
{
    return a->workload && b->workload && a->workload->kind == b->workload->kind &&
           strcmp(a->workload->cluster, b->workload->cluster) == 0 &&
           strcmp(a->workload->namespace_, b->workload->namespace_) == 0 &&
           strcmp(a->workload->name, b->workload->name) == 0;
}

static int keep_page(cli_recs_t *out, Kopt__V1__ListRecommendationsResponse *page)
{
    void *p = realloc(out->pages, (out->n_pages + 1) * sizeof(*out->pages));
    void *q;

    if (!p)
        return -1;
    out->pages = p;
    out->pages[out->n_pages++] = page;
    q = realloc(out->items, (out->n + page->n_recommendations) * sizeof(*out->items));
    if (!q && page->n_recommendations)
        return -1;
    if (q)
        out->items = q;
    for (size_t i = 0; i < page->n_recommendations; i++) {
        bool dup = false;

        if (!page->recommendations[i]->workload)
            continue;
        for (size_t j = 0; j < out->n && !dup; j++)
            dup = same_workload(out->items[j], page->recommendations[i]);
        if (!dup)
            out->items[out->n++] = page->recommendations[i];
    }
    return 0;
}

/* Every page of one listing. */
static int fetch_one(cli_client_t *cl, const cli_recs_filter_t *f, const char *ns, cli_recs_t *out)
{
    Kopt__V1__ListRecommendationsRequest req = KOPT__V1__LIST_RECOMMENDATIONS_REQUEST__INIT;
    char *token = NULL;
    int rc = 0;

    req.cluster = (char *)(f->cluster ? f->cluster : "");
    req.namespace_ = (char *)(ns ? ns : "");
    req.kind = f->kind;
    req.name = (char *)(f->name ? f->name : "");
    req.min_monthly_savings = f->min_savings;
    req.page_size = f->page_size > 0 ? f->page_size : 1000;
    req.view = KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL;
    /* A server that kept returning a token would loop for ever: 10000 pages
     * of 1000 is far beyond any cluster. */
    for (int pages = 0; pages < 10000; pages++) {
        ProtobufCMessage *m = NULL;
        Kopt__V1__ListRecommendationsResponse *page;

        req.page_token = token ? token : "";
        rc = cli_client_call(cl, METHOD_LIST, &req.base,
                             &kopt__v1__list_recommendations_response__descriptor, &m, 0, NULL,
                             NULL);
        free(token);
        token = NULL;
        if (rc != 0)
            break;
        page = (Kopt__V1__ListRecommendationsResponse *)m;
        if (page->next_page_token[0])
            token = strdup(page->next_page_token);
        if (keep_page(out, page) != 0) {
            rc = cli_error("out of memory");
            break;
        }
        if (!token)
            break;
    }
    free(token);
    return rc;
}

int cli_recs_fetch(cli_client_t *cl, const cli_recs_filter_t *f, cli_recs_t *out)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (f->n_namespaces == 0)
        return fetch_one(cl, f, NULL, out);
    for (size_t i = 0; i < f->n_namespaces && rc == 0; i++)
        rc = fetch_one(cl, f, f->namespaces[i], out);
    return rc;
}

void cli_recs_free(cli_recs_t *r)
{
    for (size_t i = 0; i < r->n_pages; i++)
        protobuf_c_message_free_unpacked(&r->pages[i]->base, NULL);
    free(r->pages);
    free(r->items);
    memset(r, 0, sizeof(*r));
}

static double cpu_freed(const Kopt__V1__Recommendation *r)
{
    return r->savings ? r->savings->cpu_cores : 0;
}

static double memory_freed(const Kopt__V1__Recommendation *r)
{
    return r->savings ? (double)r->savings->memory_bytes : 0;
}

static double money(const Kopt__V1__Recommendation *r)
{
    return r->savings ? r->savings->monthly_cost : 0;
}

static int by_name(const Kopt__V1__Recommendation *a, const Kopt__V1__Recommendation *b)
{
    int c = strcmp(a->workload->cluster, b->workload->cluster);

    if (!c)
        c = strcmp(a->workload->namespace_, b->workload->namespace_);
    if (!c)
        c = strcmp(cli_kind_name(a->workload->kind), cli_kind_name(b->workload->kind));
    if (!c)
        c = strcmp(a->workload->name, b->workload->name);
    return c;
}

static int desc(double a, double b)
{
    return a > b ? -1 : a < b ? 1 : 0;
}

static cli_sort_t sort_by;

static int compare(const void *pa, const void *pb)
{
    const Kopt__V1__Recommendation *a = *(Kopt__V1__Recommendation *const *)pa;
    const Kopt__V1__Recommendation *b = *(Kopt__V1__Recommendation *const *)pb;
    int c = 0;

    switch (sort_by) {
    case CLI_SORT_SAVINGS:
        c = desc(money(a), money(b));
        break;
    case CLI_SORT_CPU:
        c = desc(cpu_freed(a), cpu_freed(b));
        break;
    case CLI_SORT_MEMORY:
        c = desc(memory_freed(a), memory_freed(b));
        break;
    case CLI_SORT_NAME:
        break;
    }
    return c ? c : by_name(a, b); /* ties in a stable, readable order */
}

void cli_recs_sort(cli_recs_t *r, cli_sort_t by)
{
    sort_by = by; /* qsort has no context argument; the CLI is one thread */
    if (r->n)
        qsort(r->items, r->n, sizeof(*r->items), compare);
}

double cli_rec_risk(const Kopt__V1__ContainerRecommendation *c)
{
    const Kopt__V1__ReplayedRisk *rr = c->replayed_risk;

    if (!rr)
        return 0;
    return rr->cpu_over_request_share > rr->memory_over_request_share
               ? rr->cpu_over_request_share
               : rr->memory_over_request_share;
}

int cli_recs_filter_option(const char *cmd, int opt, const char *arg, cli_recs_filter_t *f)
{
    char *end;
    void *p;

    switch (opt) {
    case 'n':
        if (!arg[0])
            return cli_usage_error(cmd, "-n needs a namespace name");
        p = realloc(f->namespaces, (f->n_namespaces + 1) * sizeof(char *));
        if (!p)
            return cli_error("out of memory");
        f->namespaces = p;
        f->namespaces[f->n_namespaces++] = (char *)arg;
        return 1;
    case 'k':
        f->kind = cli_kind_parse(arg);
        if (f->kind < 0)
            return cli_usage_error(cmd,
                                   "--kind: '%s' is not Deployment, StatefulSet, DaemonSet, "
                                   "Job, CronJob, ReplicaSet, Pod or ProcessGroup",
                                   arg);
        return 1;
    case 'N':
        f->name = arg;
        return 1;
    case 'm':
        errno = 0;
        f->min_savings = strtod(arg, &end);
        if (errno || end == arg || *end || !isfinite(f->min_savings))
            return cli_usage_error(cmd, "--min-savings: '%s' is not a number", arg);
        return 1;
    case 'P':
        errno = 0;
        f->page_size = (int)strtol(arg, &end, 10);
        if (errno || end == arg || *end || f->page_size < 1 || f->page_size > 1000)
            return cli_usage_error(cmd, "--page-size: '%s' is not 1 to 1000", arg);
        return 1;
    default:
        return 0;
    }
}
