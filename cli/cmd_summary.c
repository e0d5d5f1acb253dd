/* kopt summary: a cluster's totals (GetClusterSummary); without -c, every
 * cluster the advisor knows (ListClusters). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "kopt/v1/advisor.pb-c.h"
#include "quantity.h"
#include "recs.h"

static const char help[] =
    "Usage: kopt summary [-c CLUSTER] [-o text|json|yaml]\n"
    "\n"
    "Totals of a cluster from its latest analysis: nodes, allocatable, requested and\n"
    "recommended CPU and memory, and the monthly savings. Without -c (and no cluster in\n"
    "the context), every cluster the advisor knows.\n"
    "\n"
    "  -o, --output FORMAT  text (default), json or yaml (proto3 JSON mapping)\n"
    "\n"
    "Examples:\n"
    "  kopt summary -c prod\n"
    "  kopt summary -o json\n"
    "\n";

static int output_option(int opt, const char *arg, void *data)
{
    return opt == 'o' ? cli_text_output_option("summary", arg, data) : 0;
}

static void totals_line(FILE *f, const char *what, const Kopt__V1__ResourceTotals *t)
{
    char a[32], b[32];

    fprintf(f, "  %-12s CPU %-8s memory %s\n", what,
            cli_cpu_quantity(t ? t->cpu_cores : 0, a, sizeof(a)),
            cli_memory_quantity(t ? t->memory_bytes : 0, b, sizeof(b)));
}

static void print_text(FILE *f, const Kopt__V1__GetClusterSummaryResponse *s)
{
    const char *cur = s->pricing && s->pricing->currency[0] ? s->pricing->currency : "";
    char when[64] = "never";

    if (s->generated_at) {
        time_t t = (time_t)s->generated_at->seconds;
        struct tm tm;

        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    }
    fprintf(f, "cluster %s: %u nodes, %u workloads (%u idle); analysis %s at %s\n", s->cluster,
            s->node_count, s->workload_count, s->idle_workload_count,
            s->analysis_id[0] ? s->analysis_id : "-", when);
    totals_line(f, "allocatable", s->allocatable);
    totals_line(f, "requested", s->requested);
    totals_line(f, "recommended", s->recommended);
    fprintf(f, "  %-12s %.2f %s/month now, %.2f %s/month recommended: saves %.2f %s/month\n",
            "cost", s->requested_monthly_cost, cur, s->recommended_monthly_cost, cur,
            s->monthly_savings, cur);
}

static int one(cli_client_t *cl, const char *cluster, const char *out)
{
    Kopt__V1__GetClusterSummaryRequest req = KOPT__V1__GET_CLUSTER_SUMMARY_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    int rc;

    req.cluster = (char *)cluster;
    rc = cli_client_call(cl, "/kopt.v1.Advisor/GetClusterSummary", &req.base,
                         &kopt__v1__get_cluster_summary_response__descriptor, &m, 0, NULL, NULL);
    if (rc != 0)
        return rc;
    if (strcmp(out, "text") == 0)
        print_text(stdout, (Kopt__V1__GetClusterSummaryResponse *)m);
    else
        rc = cli_print_message(stdout, m, strcmp(out, "yaml") == 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int cli_cmd_summary(int argc, char **argv)
{
    static const struct option own[] = {{"output", required_argument, NULL, 'o'}};
    const char *out = "text";
    cli_conn_t c = {0};
    cli_client_t *cl = NULL;
    int first, rc;

    rc = cli_parse("summary", argc, argv, own, 1, "o:", output_option, &out, help, &c, false,
                   &first);
    if (rc == 0 && first < argc)
        rc = cli_usage_error("summary", "unexpected argument '%s'", argv[first]);
    if (rc == 0)
        rc = cli_client_new(&c, &cl);
    if (rc == 0 && c.cluster) {
        rc = one(cl, c.cluster, out);
    } else if (rc == 0) {
        Kopt__V1__ListClustersRequest req = KOPT__V1__LIST_CLUSTERS_REQUEST__INIT;
        ProtobufCMessage *m = NULL;

        req.page_size = 1000;
        rc = cli_client_call(cl, "/kopt.v1.Advisor/ListClusters", &req.base,
                             &kopt__v1__list_clusters_response__descriptor, &m, 0, NULL, NULL);
        if (rc == 0) {
            Kopt__V1__ListClustersResponse *l = (Kopt__V1__ListClustersResponse *)m;

            if (l->n_clusters == 0)
                fprintf(stderr, "kopt: the advisor knows no cluster yet\n");
            for (size_t i = 0; i < l->n_clusters && rc == 0; i++)
                rc = one(cl, l->clusters[i]->name, out);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    cli_client_free(cl);
    cli_conn_clear(&c);
    return rc == CLI_HELP_SHOWN ? 0 : rc;
}
