/* kopt analyze: RunAnalysis now instead of waiting for the schedule. The
 * call returns when the analysis is done, so the CLI waits with a longer
 * deadline and shows the elapsed time on a terminal meanwhile. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "kopt/v1/advisor.pb-c.h"
#include "recs.h"

static const char help[] =
    "Usage: kopt analyze [-c CLUSTER] [-n NAMESPACE] [--history DURATION] [--dry-run]\n"
    "                    [-o text|json|yaml]\n"
    "\n"
    "Runs an analysis now and waits for it (the deadline is ten times --timeout):\n"
    "new recommendations are stored and published, as a scheduled analysis does.\n"
    "\n"
    "  -n, --namespace NS   only this namespace\n"
    "      --history D      how much history to read, e.g. 36h or 8d (default: the\n"
    "                       advisor's, 8 days)\n"
    "      --dry-run        compute and count, store and publish nothing\n"
    "  -o, --output FORMAT  text (default), json or yaml\n"
    "\n"
    "Examples:\n"
    "  kopt analyze -c prod\n"
    "  kopt analyze -c prod -n shop --history 3d --dry-run\n"
    "\n";


typedef struct {
    const char *ns, *out;
    int64_t history_s;
    bool dry_run;
} args_t;

/* "90s", "30m", "36h", "8d" -> seconds; -1 when not one of those. */
static int64_t parse_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    int64_t unit;

    if (end == s || v <= 0 || v > 3650LL * 86400 || !end[0] || end[1])
        return -1;
    switch (*end) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    return v * unit > 3650LL * 86400 ? -1 : v * unit;
}

static int own_option(int opt, const char *arg, void *data)
{
    args_t *a = data;

    switch (opt) {
    case 'n':
        a->ns = arg;
        return 1;
    case 'H':
        a->history_s = parse_duration(arg);
        if (a->history_s < 0)
            return cli_usage_error("analyze", "--history: '%s' is not a duration like 36h or 8d",
                                   arg);
        return 1;
    case 'D':
        a->dry_run = true;
        return 1;
    case 'o':
        return cli_text_output_option("analyze", arg, &a->out);
    default:
        return 0;
    }
}

static void progress(double elapsed, void *arg)
{
    (void)arg;
    fprintf(stderr, "\ranalysing... %.0f s", elapsed);
    fflush(stderr);
}

int cli_cmd_analyze(int argc, char **argv)
{
    static const struct option own[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"history", required_argument, NULL, 'H'},
        {"dry-run", no_argument, NULL, 'D'},
        {"output", required_argument, NULL, 'o'},
    };
    Kopt__V1__RunAnalysisRequest req = KOPT__V1__RUN_ANALYSIS_REQUEST__INIT;
    Google__Protobuf__Duration hist = GOOGLE__PROTOBUF__DURATION__INIT;
    args_t a = {.out = "text"};
    cli_conn_t c = {0};
    cli_client_t *cl = NULL;
    ProtobufCMessage *m = NULL;
    bool tty;
    int first, rc;

    rc = cli_parse("analyze", argc, argv, own, sizeof(own) / sizeof(own[0]), "n:o:", own_option, &a,
                   help, &c, false, &first);
    if (rc == 0 && first < argc)
        rc = cli_usage_error("analyze", "unexpected argument '%s'", argv[first]);
    if (rc == 0)
        rc = cli_client_new(&c, &cl);
    tty = isatty(STDERR_FILENO);
    if (rc == 0) {
        req.cluster = c.cluster ? c.cluster : "";
        req.namespace_ = (char *)(a.ns ? a.ns : "");
        if (a.history_s > 0) {
            hist.seconds = a.history_s;
            req.history = &hist;
        }
        req.dry_run = a.dry_run;
        if (!tty)
            fprintf(stderr, "analysing (this may take a while)...\n");
        rc = cli_client_call(cl, "/kopt.v1.Advisor/RunAnalysis", &req.base,
                             &kopt__v1__run_analysis_response__descriptor, &m, c.timeout_s * 10,
                             tty ? progress : NULL, NULL);
        if (tty)
            fputs("\r\033[K", stderr);
    }
    if (rc == 0 && strcmp(a.out, "text") == 0) {
        Kopt__V1__RunAnalysisResponse *r = (Kopt__V1__RunAnalysisResponse *)m;
        double took = 0;

        if (r->started_at && r->finished_at)
            took = (double)(r->finished_at->seconds - r->started_at->seconds) +
                   (r->finished_at->nanos - r->started_at->nanos) / 1e9;
        printf("analysis %s%s: %u workloads analysed, %u recommendations written, %u idle, "
               "%u skipped (too little history), in %.1f s\n",
               r->analysis_id, a.dry_run ? " (dry run)" : "", r->workloads_analyzed,
               r->recommendations_written, r->idle_workloads, r->workloads_skipped, took);
    } else if (rc == 0) {
        rc = cli_print_message(stdout, m, strcmp(a.out, "yaml") == 0);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    cli_client_free(cl);
    cli_conn_clear(&c);
    return rc == CLI_HELP_SHOWN ? 0 : rc;
}
