/* Recommendations as the CLI shows them: fetched page by page (one listing
 * per -n namespace, as ListRecommendationsRequest takes one), filtered,
 * sorted, and written in each output format (output_*.c). */
#ifndef CLI_RECS_H
#define CLI_RECS_H

#include <stdbool.h>
#include <stdio.h>

#include "client.h"
#include "kopt/v1/advisor.pb-c.h"

typedef struct {
    const char *cluster; /* NULL: every cluster */
    char **namespaces;   /* none: every namespace */
    size_t n_namespaces;
    int kind;         /* KOPT__V1__WORKLOAD_KIND__*, 0 any */
    const char *name; /* NULL any */
    double min_savings;
    int page_size; /* per call; 0 means 1000, the server's cap */
} cli_recs_filter_t;

typedef struct {
    Kopt__V1__Recommendation **items; /* point into pages */
    size_t n;
    Kopt__V1__ListRecommendationsResponse **pages;
    size_t n_pages;
} cli_recs_t;

typedef enum {
    CLI_SORT_SAVINGS = 0,
    CLI_SORT_CPU,
    CLI_SORT_MEMORY,
    CLI_SORT_NAME,
} cli_sort_t;

/* Parses the filter options commands share: -n/--namespace (repeatable),
 * --kind, --name, --min-savings, --page-size. 1 when `opt` was one of them,
 * 0 when not, else the usage error's exit code (naming `cmd`). */
int cli_recs_filter_option(const char *cmd, int opt, const char *arg, cli_recs_filter_t *f);

/* Every recommendation that matches, in the full view. 0 or an exit code. */
int cli_recs_fetch(cli_client_t *cl, const cli_recs_filter_t *f, cli_recs_t *out);
void cli_recs_free(cli_recs_t *r);
void cli_recs_sort(cli_recs_t *r, cli_sort_t by);

/* "deployment", "Deployment", "deploy", "statefulset", "sts", ...,
 * "ProcessGroup" -> the enum, or -1. */
int cli_kind_parse(const char *s);
/* The Kubernetes kind ("Deployment"), or "Unknown". */
const char *cli_kind_name(int kind);

/* Output formats; each returns 0 or an exit code. */
typedef struct {
    bool color;
    bool wide;
} cli_table_opts_t;

void cli_recs_table(FILE *f, const cli_recs_t *r, const cli_table_opts_t *o);
int cli_recs_csv(FILE *f, const cli_recs_t *r);
/* The proto3 JSON mapping of one ListRecommendationsResponse holding them all. */
int cli_recs_json(FILE *f, const cli_recs_t *r, bool yaml);

/* A proto message as proto3 JSON, or as the same tree in YAML. */
int cli_print_message(FILE *f, const ProtobufCMessage *m, bool yaml);

/* The higher of the replayed CPU and memory over-request shares (0..1). */
double cli_rec_risk(const Kopt__V1__ContainerRecommendation *c);

#endif
