/* kopt explain NAMESPACE/KIND/NAME: one workload's full recommendation
 * (GetRecommendation): per container the explanation, the usage it rests on,
 * the bounds, the replayed risk and the out-of-sample backtest. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "kopt/v1/advisor.pb-c.h"
#include "quantity.h"
#include "recs.h"

static const char help[] =
    "Usage: kopt explain [-c CLUSTER] NAMESPACE/KIND/NAME [-o text|json|yaml]\n"
    "\n"
    "Why kopt recommends what it does for one workload: per container the explanation,\n"
    "the usage percentiles behind it, the bounds of the requests, the analysis window\n"
    "replayed against the new values, and the backtest (fitted on the first two thirds\n"
    "of the history, scored on the rest).\n"
    "\n"
    "  -o, --output FORMAT  text (default), json or yaml (proto3 JSON mapping)\n"
    "\n"
    "Examples:\n"
    "  kopt explain shop/deployment/web\n"
    "  kopt explain -c prod payments/StatefulSet/db -o yaml\n"
    "\n";

static int output_option(int opt, const char *arg, void *data)
{
    return opt == 'o' ? cli_text_output_option("explain", arg, data) : 0;
}

static const char *cpu(double v, char *b)
{
    return cli_cpu_quantity(v, b, 32);
}

static const char *mem(uint64_t v, char *b)
{
    return cli_memory_quantity(v, b, 32);
}

/* A request or limit: "-" when not set (0), as in the table. */
static const char *cpu_or_unset(double v, char *b)
{
    return v > 0 ? cpu(v, b) : "-";
}

static const char *mem_or_unset(uint64_t v, char *b)
{
    return v ? mem(v, b) : "-";
}

static void print_container(FILE *f, const Kopt__V1__ContainerRecommendation *c)
{
    static const Kopt__V1__ResourceValues zero = KOPT__V1__RESOURCE_VALUES__INIT;
    const Kopt__V1__ResourceValues *now = c->current ? c->current : &zero;
    const Kopt__V1__ResourceValues *to = c->recommended ? c->recommended : &zero;
    char a[32], b[32], d[32], e[32], f_max[32];

    fprintf(f, "\ncontainer %s (confidence %.2f)\n", c->container, c->confidence);
    if (c->explanation[0])
        fprintf(f, "  %s\n", c->explanation);
    fprintf(f, "  CPU request     %s -> %s   (p%.0f of usage)\n",
            cpu_or_unset(now->cpu_request_cores, a), cpu_or_unset(to->cpu_request_cores, b),
            c->cpu_request_percentile * 100);
    fprintf(f, "  CPU limit       %s -> %s\n", cpu_or_unset(now->cpu_limit_cores, a),
            cpu_or_unset(to->cpu_limit_cores, b));
    fprintf(f, "  memory request  %s -> %s   (p%.0f of peaks)\n",
            mem_or_unset(now->memory_request_bytes, a), mem_or_unset(to->memory_request_bytes, b),
            c->memory_request_percentile * 100);
    fprintf(f, "  memory limit    %s -> %s\n", mem_or_unset(now->memory_limit_bytes, a),
            mem_or_unset(to->memory_limit_bytes, b));
    if (c->cpu_usage)
        fprintf(f, "  CPU usage       p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f cores\n",
                c->cpu_usage->p50_cores, c->cpu_usage->p90_cores, c->cpu_usage->p95_cores,
                c->cpu_usage->p99_cores, c->cpu_usage->max_cores);
    if (c->memory_usage)
        fprintf(f, "  memory usage    p50 %s  p90 %s  p95 %s  p99 %s  max %s\n",
                mem(c->memory_usage->p50_bytes, a), mem(c->memory_usage->p90_bytes, b),
                mem(c->memory_usage->p95_bytes, d), mem(c->memory_usage->p99_bytes, e),
                mem(c->memory_usage->max_bytes, f_max));
    fprintf(f, "  events          %u OOM kills, %.1f s throttled\n", c->oom_kills,
            c->cpu_throttled_seconds);
    if (c->bounds)
        fprintf(f, "  bounds          CPU %s .. %s, memory %s .. %s\n",
                cpu(c->bounds->cpu_lower_cores, a), cpu(c->bounds->cpu_upper_cores, b),
                mem(c->bounds->memory_lower_bytes, d), mem(c->bounds->memory_upper_bytes, e));
    if (c->replayed_risk)
        fprintf(f,
                "  replayed risk   %llu windows: CPU over request %.1f%%, over limit %.1f%%; "
                "memory over request %.1f%%, over limit %llu windows\n",
                (unsigned long long)c->replayed_risk->windows,
                c->replayed_risk->cpu_over_request_share * 100,
                c->replayed_risk->cpu_over_limit_share * 100,
                c->replayed_risk->memory_over_request_share * 100,
                (unsigned long long)c->replayed_risk->memory_windows_over_limit);
    if (c->backtest && c->backtest->valid)
        fprintf(
            f,
            "  backtest        fitted %s CPU, %s memory; on %.0f unseen hours: CPU over "
            "request %.1f%%, memory over request %.1f%%; reserved %.2f core-h for %.2f "
            "used\n",
            c->backtest->recommended ? cpu(c->backtest->recommended->cpu_request_cores, a) : "-",
            c->backtest->recommended ? mem(c->backtest->recommended->memory_request_bytes, b) : "-",
            c->backtest->scored_hours, c->backtest->cpu_over_request_share * 100,
            c->backtest->memory_over_request_share * 100, c->backtest->reserved_core_hours,
            c->backtest->used_core_hours);
    else
        fprintf(f, "  backtest        not enough history (needs two hours on each side)\n");
}

static void print_text(FILE *f, const Kopt__V1__Recommendation *r)
{
    fprintf(f, "%s/%s/%s in cluster %s: analysis %s, %llu data points, %.1f replicas%s\n",
            r->workload->namespace_, cli_kind_name(r->workload->kind), r->workload->name,
            r->workload->cluster, r->analysis_id, (unsigned long long)r->data_points, r->replicas,
            r->idle ? ", IDLE" : "");
    if (r->savings)
        fprintf(f, "savings: %.2f %s/month\n", r->savings->monthly_cost, r->savings->currency);
    if (r->hpa_advice && r->hpa_advice->adjusted)
        fprintf(f, "HPA: set the CPU target to %u%% to keep scaling out at %.3f cores a pod\n",
                r->hpa_advice->target_cpu_utilization_percent,
                r->hpa_advice->scale_out_cores_recommended);
    for (size_t i = 0; i < r->n_containers; i++)
        print_container(f, r->containers[i]);
}

int cli_cmd_explain(int argc, char **argv)
{
    static const struct option own[] = {{"output", required_argument, NULL, 'o'}};
    Kopt__V1__GetRecommendationRequest req = KOPT__V1__GET_RECOMMENDATION_REQUEST__INIT;
    const char *out = "text";
    char *ref = NULL, *ns, *kind, *name, *save = NULL;
    cli_conn_t c = {0};
    cli_client_t *cl = NULL;
    ProtobufCMessage *m = NULL;
    int first, rc, k = 0;

    rc = cli_parse("explain", argc, argv, own, 1, "o:", output_option, &out, help, &c, false,
                   &first);
    if (rc == 0 && first + 1 != argc)
        rc = cli_usage_error("explain", "give one workload as NAMESPACE/KIND/NAME");
    if (rc == 0) {
        ref = strdup(argv[first]);
        ns = ref ? strtok_r(ref, "/", &save) : NULL;
        kind = ns ? strtok_r(NULL, "/", &save) : NULL;
        name = kind ? strtok_r(NULL, "/", &save) : NULL;
        if (!name || strtok_r(NULL, "/", &save))
            rc = cli_usage_error("explain", "'%s' is not NAMESPACE/KIND/NAME", argv[first]);
        else if ((k = cli_kind_parse(kind)) < 0)
            rc = cli_usage_error("explain",
                                 "'%s' is not a kind (Deployment, StatefulSet, DaemonSet, Job, "
                                 "CronJob, ReplicaSet, Pod, ProcessGroup)",
                                 kind);
    }
    if (rc == 0 && !c.cluster)
        rc = cli_usage_error("explain", "which cluster? give -c CLUSTER or KOPT_CLUSTER");
    if (rc == 0)
        rc = cli_client_new(&c, &cl);
    if (rc == 0) {
        req.cluster = c.cluster;
        req.namespace_ = ns;
        req.kind = k;
        req.name = name;
        req.view = KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL;
        rc = cli_client_call(cl, "/kopt.v1.Advisor/GetRecommendation", &req.base,
                             &kopt__v1__get_recommendation_response__descriptor, &m, 0, NULL, NULL);
    }
    if (rc == 0) {
        Kopt__V1__GetRecommendationResponse *resp = (Kopt__V1__GetRecommendationResponse *)m;

        if (strcmp(out, "text") != 0)
            rc = cli_print_message(stdout, m, strcmp(out, "yaml") == 0);
        else if (resp->recommendation && resp->recommendation->workload)
            print_text(stdout, resp->recommendation);
        else
            rc = cli_error("the advisor sent no recommendation");
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(ref);
    cli_client_free(cl);
    cli_conn_clear(&c);
    return rc == CLI_HELP_SHOWN ? 0 : rc;
}
