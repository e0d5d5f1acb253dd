/* Workload and node facts for an analysis run: the HPA of each workload and
 * the allocatable resources of each cluster's nodes, as the agents last
 * reported them (workload_facts and node_facts, written by the aggregator).
 * Both tables keep one row per key per month, so the newest observation is
 * picked with argMax over observed_at. The answers are small (one row per
 * workload with an HPA, one per cluster), so they are read as JSONEachRow
 * with jansson rather than with a hand-written row parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "advisor.h"

#define CH_UNKNOWN_TABLE 60 /* the aggregator has not migrated yet */

static void scope_filter(FILE *q, const adv_scope_t *scope)
{
    fprintf(q, "observed_at >= toDateTime(%lld)", (long long)scope->from);
    if (scope->cluster && *scope->cluster) {
        fputs(" AND cluster = ", q);
        kopt_ch_sql_string(q, scope->cluster);
    }
}

/* UInt64 arrives quoted in JSON formats (output_format_json_quote_64bit_integers). */
static uint64_t json_u64(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

static char *json_dup(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));

    return strdup(s ? s : "");
}

/* Closes q, the memstream writing *sql, runs the query (freeing *sql) and
 * calls each(row, arg) for every line of the answer. */
static int each_row(kopt_ch_client_t *ch, FILE *q, char **sql,
                    int (*each)(const json_t *row, void *arg), void *arg, kopt_ch_error_t *err)
{
    char *body = NULL, *line, *save = NULL;
    int r = fclose(q) == 0 ? kopt_ch_query(ch, *sql, &body, NULL, err) : -ENOMEM;

    free(*sql);
    *sql = NULL;
    if (r < 0)
        return r;
    for (line = strtok_r(body, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
        json_t *row = json_loads(line, 0, NULL);

        r = json_is_object(row) ? each(row, arg) : -EBADMSG;
        json_decref(row);
    }
    free(body);
    if (r == -EBADMSG && err)
        snprintf(err->message, sizeof(err->message), "unexpected facts row from ClickHouse");
    return r;
}

static int add_hpa(const json_t *row, void *arg)
{
    adv_facts_t *f = arg;
    const json_t *metrics = json_object_get(row, "metrics");
    adv_hpa_t *h, *grown;
    size_t n = json_array_size(metrics);

    grown = realloc(f->hpa, (f->n_hpa + 1) * sizeof(*f->hpa));
    if (!grown)
        return -ENOMEM;
    f->hpa = grown;
    h = &f->hpa[f->n_hpa];
    memset(h, 0, sizeof(*h));
    h->metrics = calloc(n ? n : 1, sizeof(*h->metrics));
    h->cluster = json_dup(row, "cluster");
    h->namespace_ = json_dup(row, "namespace");
    h->kind = json_dup(row, "kind");
    h->name = json_dup(row, "name");
    h->hpa_name = json_dup(row, "hpa");
    f->n_hpa++; /* from here adv_facts_free releases what was set */
    if (!h->metrics || !h->cluster || !h->namespace_ || !h->kind || !h->name || !h->hpa_name)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(json_array_get(metrics, i));

        if (!(h->metrics[h->n_metrics] = strdup(m ? m : "")))
            return -ENOMEM;
        h->n_metrics++;
    }
    h->min_replicas = (uint32_t)json_u64(json_object_get(row, "min"));
    h->max_replicas = (uint32_t)json_u64(json_object_get(row, "max"));
    h->target_cpu_percent = (uint32_t)json_u64(json_object_get(row, "cpu"));
    h->target_memory_percent = (uint32_t)json_u64(json_object_get(row, "memory"));
    return 0;
}

static int add_nodes(const json_t *row, void *arg)
{
    adv_facts_t *f = arg;
    adv_node_totals_t *t, *grown;

    grown = realloc(f->nodes, (f->n_nodes + 1) * sizeof(*f->nodes));
    if (!grown)
        return -ENOMEM;
    f->nodes = grown;
    t = &f->nodes[f->n_nodes];
    memset(t, 0, sizeof(*t));
    if (!(t->cluster = json_dup(row, "cluster")))
        return -ENOMEM;
    f->n_nodes++;
    t->nodes = (uint32_t)json_u64(json_object_get(row, "nodes"));
    t->cpu_allocatable_cores = json_number_value(json_object_get(row, "cpu_sum"));
    t->cpu_largest_node_cores = json_number_value(json_object_get(row, "cpu_max"));
    t->memory_allocatable_bytes = json_u64(json_object_get(row, "memory_sum"));
    t->memory_largest_node_bytes = json_u64(json_object_get(row, "memory_max"));
    return 0;
}

static int load_hpas(kopt_ch_client_t *ch, const adv_scope_t *scope, adv_facts_t *f,
                     kopt_ch_error_t *err)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *q = open_memstream(&sql, &len);

    if (!q)
        return -ENOMEM;
    fprintf(q,
            "SELECT cluster, namespace, workload_kind AS kind, workload_name AS name, "
            "argMax(hpa_name, observed_at) AS hpa, argMax(hpa_min_replicas, observed_at) AS min, "
            "argMax(hpa_max_replicas, observed_at) AS max, "
            "argMax(hpa_target_cpu_percent, observed_at) AS cpu, "
            "argMax(hpa_target_memory_percent, observed_at) AS memory, "
            "argMax(hpa_metrics, observed_at) AS metrics FROM %s.workload_facts WHERE ",
            kopt_ch_database(ch));
    scope_filter(q, scope);
    if (scope->namespace_ && *scope->namespace_) {
        fputs(" AND namespace = ", q);
        kopt_ch_sql_string(q, scope->namespace_);
    }
    fputs(" GROUP BY cluster, namespace, workload_kind, workload_name HAVING hpa != '' "
          "ORDER BY cluster, namespace, kind, name FORMAT JSONEachRow",
          q);
    return each_row(ch, q, &sql, add_hpa, f, err);
}

static int load_nodes(kopt_ch_client_t *ch, const adv_scope_t *scope, adv_facts_t *f,
                      kopt_ch_error_t *err)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *q = open_memstream(&sql, &len);

    if (!q)
        return -ENOMEM;
    fprintf(q,
            "SELECT cluster, count() AS nodes, sum(cpu) AS cpu_sum, max(cpu) AS cpu_max, "
            "sum(memory) AS memory_sum, max(memory) AS memory_max FROM (SELECT cluster, node, "
            "argMax(cpu_allocatable_cores, observed_at) AS cpu, "
            "argMax(memory_allocatable_bytes, observed_at) AS memory FROM %s.node_facts WHERE ",
            kopt_ch_database(ch));
    scope_filter(q, scope);
    fputs(" GROUP BY cluster, node) GROUP BY cluster ORDER BY cluster FORMAT JSONEachRow", q);
    return each_row(ch, q, &sql, add_nodes, f, err);
}

int adv_facts_load(kopt_ch_client_t *ch, const adv_scope_t *scope, adv_facts_t *f,
                   kopt_ch_error_t *err)
{
    int r;

    memset(f, 0, sizeof(*f));
    r = load_hpas(ch, scope, f, err);
    if (r == 0)
        r = load_nodes(ch, scope, f, err);
    if (r == -EREMOTEIO && err && err->code == CH_UNKNOWN_TABLE)
        r = -ENOENT;
    if (r < 0)
        adv_facts_free(f);
    return r;
}

void adv_facts_free(adv_facts_t *f)
{
    for (size_t i = 0; i < f->n_hpa; i++) {
        adv_hpa_t *h = &f->hpa[i];

        for (size_t k = 0; k < h->n_metrics; k++)
            free(h->metrics[k]);
        free(h->metrics);
        free(h->cluster);
        free(h->namespace_);
        free(h->kind);
        free(h->name);
        free(h->hpa_name);
    }
    for (size_t i = 0; i < f->n_nodes; i++)
        free(f->nodes[i].cluster);
    free(f->hpa);
    free(f->nodes);
    memset(f, 0, sizeof(*f));
}

typedef struct {
    const char *cluster, *namespace_, *kind, *name;
} hpa_key_t;

static int hpa_cmp(const void *k, const void *e)
{
    const hpa_key_t *a = k;
    const adv_hpa_t *b = e;
    int c = strcmp(a->cluster, b->cluster);

    if (c == 0)
        c = strcmp(a->namespace_, b->namespace_);
    if (c == 0)
        c = strcmp(a->kind, b->kind);
    return c ? c : strcmp(a->name, b->name);
}

const adv_hpa_t *adv_facts_hpa(const adv_facts_t *f, const char *cluster, const char *namespace_,
                               const char *kind, const char *name)
{
    hpa_key_t k = {cluster, namespace_, kind, name};

    if (f->n_hpa == 0)
        return NULL;
    return bsearch(&k, f->hpa, f->n_hpa, sizeof(*f->hpa), hpa_cmp);
}

const adv_node_totals_t *adv_facts_nodes(const adv_facts_t *f, const char *cluster)
{
    for (size_t i = 0; i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].cluster, cluster) == 0)
            return &f->nodes[i];
    return NULL;
}

void adv_facts_engine_hpa(const adv_hpa_t *h, kopt_engine_hpa_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!h)
        return;
    out->present = true;
    out->scales_on_cpu = h->target_cpu_percent > 0;
    out->min_replicas = h->min_replicas;
    out->max_replicas = h->max_replicas;
    out->target_cpu_percent = h->target_cpu_percent;
}

int adv_facts_merge_clusters(const adv_facts_t *f, adv_cluster_info_t **ci, size_t *n)
{
    for (size_t i = 0; i < f->n_nodes; i++) {
        const adv_node_totals_t *t = &f->nodes[i];
        adv_cluster_info_t *c = NULL, *grown;

        for (size_t k = 0; k < *n && !c; k++)
            if (strcmp((*ci)[k].cluster, t->cluster) == 0)
                c = &(*ci)[k];
        if (!c) {
            grown = realloc(*ci, (*n + 1) * sizeof(**ci));
            if (!grown)
                return -ENOMEM;
            *ci = grown;
            c = &(*ci)[*n];
            memset(c, 0, sizeof(*c));
            if (!(c->cluster = strdup(t->cluster)))
                return -ENOMEM;
            (*n)++;
        }
        if (c->nodes == 0)
            c->nodes = t->nodes;
        c->cpu_allocatable_cores = t->cpu_allocatable_cores;
        c->memory_allocatable_bytes = t->memory_allocatable_bytes;
    }
    return 0;
}

int adv_facts_cluster_info(kopt_ch_client_t *ch, int64_t since, adv_cluster_info_t **ci, size_t *n,
                           kopt_ch_error_t *err)
{
    adv_scope_t scope = {.from = since};
    adv_facts_t f = {0};
    int r = load_nodes(ch, &scope, &f, err);

    if (r == 0)
        r = adv_facts_merge_clusters(&f, ci, n);
    adv_facts_free(&f);
    return r;
}
