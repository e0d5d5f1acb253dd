/* kopt recommendations: lists the advisor's advice, filtered and sorted, as a
 * table (default), a wide table, JSON, YAML or CSV. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "recs.h"

static const char help[] =
    "Usage: kopt recommendations [-c CLUSTER] [-n NAMESPACE]... [--kind KIND] [--name NAME]\n"
    "                            [--min-savings X] [--sort savings|cpu|memory|name]\n"
    "                            [-o table|wide|json|yaml|csv]\n"
    "\n"
    "Lists the latest recommendation of every matching workload: current -> recommended\n"
    "requests and limits per container (Kubernetes quantities, rounded up), confidence,\n"
    "risk (share of the window the new requests would have been passed) and savings.\n"
    "\n"
    "  -n, --namespace NS   only this namespace; repeat for several\n"
    "      --kind KIND      Deployment, StatefulSet, DaemonSet, Job, CronJob,\n"
    "                       ReplicaSet, Pod, ProcessGroup\n"
    "      --name NAME      only workloads with exactly this name\n"
    "      --min-savings X  only workloads saving at least X per month\n"
    "      --sort BY        savings (default, largest first), cpu, memory (most freed\n"
    "                       first) or name\n"
    "  -o, --output FORMAT  table (default), wide, json, yaml (proto3 JSON mapping), csv\n"
    "      --page-size N    recommendations per call (1..1000, default 1000); every page\n"
    "                       is fetched either way\n"
    "\n"
    "Examples:\n"
    "  kopt recommendations\n"
    "  kopt recommendations -c prod -n shop -n payments --min-savings 10\n"
    "  kopt recommendations --kind deployment --sort cpu -o wide\n"
    "  kopt recommendations -o json | jq '.recommendations[].workload.name'\n"
    "\n";

static const char *const formats[] = {"table", "wide", "json", "yaml", "csv", NULL};

typedef struct {
    cli_recs_filter_t filter;
    cli_sort_t sort;
    const char *output;
} args_t;

static int own_option(int opt, const char *arg, void *data)
{
    args_t *a = data;
    int rc = cli_recs_filter_option("recommendations", opt, arg, &a->filter);

    if (rc != 0)
        return rc;
    switch (opt) {
    case 's':
        if (strcmp(arg, "savings") == 0)
            a->sort = CLI_SORT_SAVINGS;
        else if (strcmp(arg, "cpu") == 0)
            a->sort = CLI_SORT_CPU;
        else if (strcmp(arg, "memory") == 0)
            a->sort = CLI_SORT_MEMORY;
        else if (strcmp(arg, "name") == 0)
            a->sort = CLI_SORT_NAME;
        else
            return cli_usage_error("recommendations",
                                   "--sort: '%s' is not savings, cpu, memory or name", arg);
        return 1;
    case 'o':
        if (!cli_one_of(arg, formats))
            return cli_usage_error("recommendations",
                                   "-o: '%s' is not table, wide, json, yaml or csv", arg);
        a->output = arg;
        return 1;
    default:
        return 0;
    }
}

int cli_cmd_recommendations(int argc, char **argv)
{
    static const struct option own[] = {
        {"namespace", required_argument, NULL, 'n'}, {"kind", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'N'},      {"min-savings", required_argument, NULL, 'm'},
        {"sort", required_argument, NULL, 's'},      {"output", required_argument, NULL, 'o'},
        {"page-size", required_argument, NULL, 'P'},
    };
    args_t a = {.output = "table"};
    cli_conn_t c = {0};
    cli_client_t *cl = NULL;
    cli_recs_t recs = {0};
    int first, rc;

    rc = cli_parse("recommendations", argc, argv, own, sizeof(own) / sizeof(own[0]),
                   "n:o:", own_option, &a, help, &c, false, &first);
    if (rc == 0 && first < argc)
        rc = cli_usage_error("recommendations", "unexpected argument '%s'", argv[first]);
    if (rc == 0)
        rc = cli_client_new(&c, &cl);
    if (rc == 0) {
        a.filter.cluster = c.cluster;
        rc = cli_recs_fetch(cl, &a.filter, &recs);
    }
    if (rc == 0) {
        cli_recs_sort(&recs, a.sort);
        if (strcmp(a.output, "table") == 0 || strcmp(a.output, "wide") == 0) {
            cli_table_opts_t o = {.color = cli_use_color(&c, stdout),
                                  .wide = strcmp(a.output, "wide") == 0};

            cli_recs_table(stdout, &recs, &o);
        } else if (strcmp(a.output, "csv") == 0) {
            rc = cli_recs_csv(stdout, &recs);
        } else {
            rc = cli_recs_json(stdout, &recs, strcmp(a.output, "yaml") == 0);
        }
    }
    cli_recs_free(&recs);
    cli_client_free(cl);
    cli_conn_clear(&c);
    free(a.filter.namespaces);
    return rc == CLI_HELP_SHOWN ? 0 : rc;
}
