/* The human output of `kopt recommendations`: one row per container with
 * current -> recommended requests and limits as Kubernetes quantities, then
 * a totals line. Cells are built first so each column is as wide as its
 * widest cell; colour codes go around the padded text. */
#include <stdlib.h>
#include <string.h>

#include "quantity.h"
#include "recs.h"

#define MAX_COLS 16
#define CELL 96

typedef struct {
    char (*cells)[MAX_COLS][CELL];
    const char **colors; /* per row, for the savings cell; NULL none */
    size_t rows, cols;
} grid_t;

static const char *const BOLD = "\033[1m", *const GREEN = "\033[32m", *const RED = "\033[31m",
                         *const RESET = "\033[0m";

static void cpu_cell(char *out, double now, double rec)
{
    char a[32], b[32];

    snprintf(out, CELL, "%s -> %s", now > 0 ? cli_cpu_quantity(now, a, sizeof(a)) : "-",
             rec > 0 ? cli_cpu_quantity(rec, b, sizeof(b)) : "-");
}

static void mem_cell(char *out, uint64_t now, uint64_t rec)
{
    char a[32], b[32];

    snprintf(out, CELL, "%s -> %s", now ? cli_memory_quantity(now, a, sizeof(a)) : "-",
             rec ? cli_memory_quantity(rec, b, sizeof(b)) : "-");
}

static void reasons_cell(char *out, const Kopt__V1__ContainerRecommendation *c)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < c->n_reasons && n < CELL - 1; i++) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &kopt__v1__recommendation_reason__descriptor, c->reasons[i]);
        const char *name = v ? v->name : "?";

        if (strncmp(name, "RECOMMENDATION_REASON_", 22) == 0)
            name += 22;
        n += (size_t)snprintf(out + n, CELL - n, "%s%s", i ? "," : "", name);
    }
    if (!out[0])
        snprintf(out, CELL, "-");
}

static bool many_clusters(const cli_recs_t *r)
{
    for (size_t i = 1; i < r->n; i++)
        if (strcmp(r->items[i]->workload->cluster, r->items[0]->workload->cluster) != 0)
            return true;
    return false;
}

static void signed_cpu(char *out, size_t len, double cores)
{
    char q[32];

    snprintf(out, len, "%s%s", cores < 0 ? "-" : "",
             cli_cpu_quantity(cores < 0 ? -cores : cores, q, sizeof(q)));
}

static void signed_mem(char *out, size_t len, int64_t bytes)
{
    char q[32];
    uint64_t abs = bytes < 0 ? (uint64_t)(-(bytes + 1)) + 1 : (uint64_t)bytes;

    snprintf(out, len, "%s%s", bytes < 0 ? "-" : "", cli_memory_quantity(abs, q, sizeof(q)));
}

static void fill_row(grid_t *g, const Kopt__V1__Recommendation *rec, size_t ci, bool wide,
                     bool cluster_col)
{
    const Kopt__V1__ContainerRecommendation *c = rec->containers[ci];
    const Kopt__V1__ResourceValues zero = KOPT__V1__RESOURCE_VALUES__INIT;
    const Kopt__V1__ResourceValues *now = c->current ? c->current : &zero;
    const Kopt__V1__ResourceValues *to = c->recommended ? c->recommended : &zero;
    char(*row)[CELL] = g->cells[g->rows];
    size_t k = 0;

    g->colors[g->rows] = NULL;
    if (cluster_col)
        snprintf(row[k++], CELL, "%s", ci == 0 ? rec->workload->cluster : "");
    if (ci == 0)
        snprintf(row[k++], CELL, "%s/%s/%s", rec->workload->namespace_,
                 cli_kind_name(rec->workload->kind), rec->workload->name);
    else
        row[k++][0] = '\0';
    snprintf(row[k++], CELL, "%s", c->container);
    cpu_cell(row[k++], now->cpu_request_cores, to->cpu_request_cores);
    cpu_cell(row[k++], now->cpu_limit_cores, to->cpu_limit_cores);
    mem_cell(row[k++], now->memory_request_bytes, to->memory_request_bytes);
    mem_cell(row[k++], now->memory_limit_bytes, to->memory_limit_bytes);
    snprintf(row[k++], CELL, "%.2f", c->confidence);
    if (wide) {
        snprintf(row[k++], CELL, "%.1f%%",
                 c->replayed_risk ? c->replayed_risk->cpu_over_request_share * 100 : 0.0);
        snprintf(row[k++], CELL, "%.1f%%",
                 c->replayed_risk ? c->replayed_risk->memory_over_request_share * 100 : 0.0);
    } else {
        snprintf(row[k++], CELL, "%.1f%%", cli_rec_risk(c) * 100);
    }
    if (ci == 0 && rec->savings) {
        snprintf(row[k++], CELL, "%.2f %s", rec->savings->monthly_cost, rec->savings->currency);
        g->colors[g->rows] = rec->savings->monthly_cost > 0   ? GREEN
                             : rec->savings->monthly_cost < 0 ? RED
                                                              : NULL;
    } else {
        row[k++][0] = '\0';
    }
    if (wide) {
        const ProtobufCEnumValue *q =
            protobuf_c_enum_descriptor_get_value(&kopt__v1__qos_class__descriptor, rec->qos_class);
        const char *qos = q ? q->name : "-";

        if (strncmp(qos, "QOS_CLASS_", 10) == 0)
            qos += 10;
        snprintf(row[k++], CELL, "%s", ci == 0 ? qos : "");
        if (ci == 0)
            snprintf(row[k++], CELL, "%.1f", rec->replicas);
        else
            row[k++][0] = '\0';
        snprintf(row[k++], CELL, "%s", ci == 0 ? (rec->idle ? "yes" : "no") : "");
        if (ci == 0 && rec->hpa_advice && rec->hpa_advice->adjusted)
            snprintf(row[k++], CELL, "%u%%", rec->hpa_advice->target_cpu_utilization_percent);
        else
            snprintf(row[k++], CELL, "%s", ci == 0 ? "-" : "");
        reasons_cell(row[k++], c);
    }
    g->cols = k;
    g->rows++;
}

static void print_grid(FILE *f, const grid_t *g, size_t savings_col, bool color)
{
    size_t w[MAX_COLS] = {0};

    for (size_t r = 0; r < g->rows; r++)
        for (size_t c = 0; c < g->cols; c++)
            if (strlen(g->cells[r][c]) > w[c])
                w[c] = strlen(g->cells[r][c]);
    for (size_t r = 0; r < g->rows; r++) {
        const char *on = r == 0 ? BOLD : NULL;

        for (size_t c = 0; c < g->cols; c++) {
            const char *col = on ? on : (c == savings_col ? g->colors[r] : NULL);
            bool last = c + 1 == g->cols;

            if (color && col)
                fputs(col, f);
            fprintf(f, "%-*s", last ? 0 : (int)w[c], g->cells[r][c]);
            if (color && col)
                fputs(RESET, f);
            if (!last)
                fputs("  ", f);
        }
        fputc('\n', f);
    }
}

void cli_recs_table(FILE *f, const cli_recs_t *r, const cli_table_opts_t *o)
{
    static const char *const head[] = {"WORKLOAD", "CONTAINER", "CPU REQ", "CPU LIM",
                                       "MEM REQ",  "MEM LIM",   "CONF"};
    static const char *const head_wide[] = {"QOS", "REPLICAS", "IDLE", "HPA TARGET", "REASONS"};
    bool cluster_col = o->wide || many_clusters(r);
    size_t n_rows = 1, k = 0, savings_col, containers = 0;
    double cpu = 0, cost = 0;
    int64_t mem = 0;
    const char *currency = "";
    grid_t g = {0};
    char a[32], b[32];

    for (size_t i = 0; i < r->n; i++)
        n_rows += r->items[i]->n_containers;
    g.cells = calloc(n_rows, sizeof(*g.cells));
    g.colors = calloc(n_rows, sizeof(*g.colors));
    if (!g.cells || !g.colors) {
        free(g.cells);
        free(g.colors);
        fputs("kopt: out of memory\n", stderr);
        return;
    }
    if (cluster_col)
        snprintf(g.cells[0][k++], CELL, "CLUSTER");
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
        snprintf(g.cells[0][k++], CELL, "%s", head[i]);
    if (o->wide) {
        snprintf(g.cells[0][k++], CELL, "CPU RISK");
        snprintf(g.cells[0][k++], CELL, "MEM RISK");
    } else {
        snprintf(g.cells[0][k++], CELL, "RISK");
    }
    savings_col = k;
    snprintf(g.cells[0][k++], CELL, "SAVINGS/MONTH");
    for (size_t i = 0; o->wide && i < sizeof(head_wide) / sizeof(head_wide[0]); i++)
        snprintf(g.cells[0][k++], CELL, "%s", head_wide[i]);
    g.cols = k;
    g.rows = 1;
    for (size_t i = 0; i < r->n; i++) {
        const Kopt__V1__Recommendation *rec = r->items[i];

        for (size_t c = 0; c < rec->n_containers; c++)
            fill_row(&g, rec, c, o->wide, cluster_col);
        containers += rec->n_containers;
        if (rec->savings) {
            cpu += rec->savings->cpu_cores;
            mem += rec->savings->memory_bytes;
            cost += rec->savings->monthly_cost;
            currency = rec->savings->currency;
        }
    }
    g.cols = k;
    print_grid(f, &g, savings_col, o->color);
    signed_cpu(a, sizeof(a), cpu);
    signed_mem(b, sizeof(b), mem);
    fprintf(f,
            "TOTAL  %zu workloads, %zu containers; requests freed: CPU %s, memory %s; "
            "savings %.2f %s/month\n",
            r->n, containers, a, b, cost, currency[0] ? currency : "");
    free(g.cells);
    free(g.colors);
}
