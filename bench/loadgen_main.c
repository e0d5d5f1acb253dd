/* kopt-loadgen: load generator for kopt-ingest. Parses flags, builds the
 * synthetic nodes, runs the phases asked for (decode+validate baseline,
 * JetStream baseline, the ingest run) and prints one report, ending in
 * machine-readable RESULT lines that scripts/bench-ingest collects. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>

#include <kopt/grpc_server.h>

#include "loadgen.h"

static const char usage_text[] =
    "Usage: kopt-loadgen [flags]\n"
    "Simulated kopt-agents push synthetic MetricBatches to kopt-ingest over mutual TLS.\n"
    "\n"
    "  --target ADDR[,ADDR]   ingest gRPC address(es); each agent starts at the one its node\n"
    "                         name hashes to, moves to the next on failure (default\n"
    "                         127.0.0.1:7400)\n"
    "  --ca, --cert, --key F  PEM files: CA of the server, the agent's client cert and key\n"
    "  --cluster NAME         batch cluster, as in the client certificate (default local)\n"
    "  --agent-id ID          batch agent_id, as in the client certificate (default dev-agent)\n"
    "  --agents N             concurrent Push streams, one connection each (default 16)\n"
    "  --containers MIN[-MAX] containers per node (default 100-300)\n"
    "  --window N             unacked batches per stream (default 8)\n"
    "  --duration S           measured seconds (default 20)\n"
    "  --warmup S             seconds before measuring (default 3)\n"
    "  --rate W               container windows/s over all agents; 0: as fast as acked\n"
    "  --threads N            completion-queue threads, 1 or 2 (default 1)\n"
    "  --no-buffer-hint       never set GRPC_WRITE_BUFFER_HINT\n"
    "  --ingest-pid PID       sample CPU and RSS of kopt-ingest from /proc\n"
    "  --nats-pid PID         sample CPU of nats-server from /proc\n"
    "  --nats-url URL         run the JetStream baseline against this server\n"
    "  --phases LIST          decode,nats,ingest (default: all; nats needs --nats-url)\n"
    "  --baseline-seconds S   length of each baseline (default 5)\n"
    "  --label NAME           names the run in the RESULT lines (default run)\n"
    "  --seed N               synthetic data seed (default 1)\n"
    "  --minute0 UNIX_S       distinct windows: batch seq s holds the minute ending at\n"
    "                         UNIX_S - (s-1)*60; container keys repeated across nodes dropped\n"
    "  --progress FILE        append \"unix_time acked_windows\" 10 times a second\n"
    "  --help\n";

enum {
    O_TARGET = 256,
    O_CA,
    O_CERT,
    O_KEY,
    O_CLUSTER,
    O_AGENT_ID,
    O_AGENTS,
    O_CONTAINERS,
    O_WINDOW,
    O_DURATION,
    O_WARMUP,
    O_RATE,
    O_THREADS,
    O_NO_HINT,
    O_INGEST_PID,
    O_NATS_PID,
    O_NATS_URL,
    O_PHASES,
    O_BASELINE_S,
    O_LABEL,
    O_SEED,
    O_MINUTE0,
    O_PROGRESS,
    O_HELP,
};

static const struct option long_opts[] = {
    {"target", 1, 0, O_TARGET},
    {"ca", 1, 0, O_CA},
    {"cert", 1, 0, O_CERT},
    {"key", 1, 0, O_KEY},
    {"cluster", 1, 0, O_CLUSTER},
    {"agent-id", 1, 0, O_AGENT_ID},
    {"agents", 1, 0, O_AGENTS},
    {"containers", 1, 0, O_CONTAINERS},
    {"window", 1, 0, O_WINDOW},
    {"duration", 1, 0, O_DURATION},
    {"warmup", 1, 0, O_WARMUP},
    {"rate", 1, 0, O_RATE},
    {"threads", 1, 0, O_THREADS},
    {"no-buffer-hint", 0, 0, O_NO_HINT},
    {"ingest-pid", 1, 0, O_INGEST_PID},
    {"nats-pid", 1, 0, O_NATS_PID},
    {"nats-url", 1, 0, O_NATS_URL},
    {"phases", 1, 0, O_PHASES},
    {"baseline-seconds", 1, 0, O_BASELINE_S},
    {"label", 1, 0, O_LABEL},
    {"seed", 1, 0, O_SEED},
    {"minute0", 1, 0, O_MINUTE0},
    {"progress", 1, 0, O_PROGRESS},
    {"help", 0, 0, O_HELP},
    {0, 0, 0, 0},
};

static int bad(const char *flag, const char *v)
{
    fprintf(stderr, "kopt-loadgen: bad value for --%s: \"%s\" (see --help)\n", flag, v);
    return -EINVAL;
}

static int num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);

    if (end == v || *end || d < lo || d > hi)
        return bad(flag, v);
    *out = d;
    return 0;
}

static int phases(const char *v, unsigned *out)
{
    char buf[128], *save, *tok;

    snprintf(buf, sizeof(buf), "%s", v);
    *out = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "decode") == 0)
            *out |= LG_PHASE_DECODE;
        else if (strcmp(tok, "nats") == 0)
            *out |= LG_PHASE_NATS;
        else if (strcmp(tok, "ingest") == 0)
            *out |= LG_PHASE_INGEST;
        else
            return bad("phases", v);
    }
    return 0;
}

static int one_flag(lg_opts_t *o, int c, const char *v)
{
    double d = 0;
    int r = 0;

    switch (c) {
    case O_TARGET:
        o->target = v;
        break;
    case O_CA:
        o->ca = v;
        break;
    case O_CERT:
        o->cert = v;
        break;
    case O_KEY:
        o->key = v;
        break;
    case O_CLUSTER:
        o->cluster = v;
        break;
    case O_AGENT_ID:
        o->agent_id = v;
        break;
    case O_NATS_URL:
        o->nats_url = v;
        break;
    case O_LABEL:
        o->label = v;
        break;
    case O_PROGRESS:
        o->progress = v;
        break;
    case O_MINUTE0:
        r = num("minute0", v, 86400, 1e11, &d);
        o->minute0 = (int64_t)d;
        break;
    case O_NO_HINT:
        o->buffer_hint = 0;
        break;
    case O_PHASES:
        r = phases(v, &o->phases);
        break;
    case O_AGENTS:
        r = num("agents", v, 1, 10000, &d);
        o->agents = (int)d;
        break;
    case O_WINDOW:
        r = num("window", v, 1, 1 << 20, &d);
        o->window = (int)d;
        break;
    case O_THREADS:
        r = num("threads", v, 1, 2, &d);
        o->threads = (int)d;
        break;
    case O_DURATION:
        r = num("duration", v, 0.5, 86400, &o->duration);
        break;
    case O_WARMUP:
        r = num("warmup", v, 0, 3600, &o->warmup);
        break;
    case O_RATE:
        r = num("rate", v, 0, 1e12, &o->rate);
        break;
    case O_BASELINE_S:
        r = num("baseline-seconds", v, 0.1, 3600, &o->baseline_seconds);
        break;
    case O_INGEST_PID:
        r = num("ingest-pid", v, 1, 1e9, &d);
        o->ingest_pid = (pid_t)d;
        break;
    case O_NATS_PID:
        r = num("nats-pid", v, 1, 1e9, &d);
        o->nats_pid = (pid_t)d;
        break;
    case O_SEED:
        r = num("seed", v, 0, 1e15, &d);
        o->seed = (uint64_t)d;
        break;
    case O_CONTAINERS:
        if (sscanf(v, "%d-%d", &o->containers_min, &o->containers_max) == 1)
            o->containers_max = o->containers_min;
        if (o->containers_min < 1 || o->containers_max < o->containers_min ||
            o->containers_max > 20000)
            r = bad("containers", v);
        break;
    default:
        r = -EINVAL;
    }
    return r;
}

/* --target A,B: the addresses in o->targets (kept in a static buffer). */
static int split_targets(lg_opts_t *o)
{
    static char buf[1024];
    char *save, *tok;

    if (snprintf(buf, sizeof(buf), "%s", o->target) >= (int)sizeof(buf))
        return bad("target", o->target);
    o->n_targets = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_targets == LG_TARGETS_MAX)
            return bad("target", o->target);
        o->targets[o->n_targets++] = tok;
    }
    return o->n_targets > 0 ? 0 : bad("target", o->target);
}

static int parse(int argc, char **argv, lg_opts_t *o)
{
    int c;

    *o = (lg_opts_t){
        .target = "127.0.0.1:7400",
        .cluster = "local",
        .agent_id = "dev-agent",
        .agents = 16,
        .containers_min = 100,
        .containers_max = 300,
        .window = 8,
        .threads = 1,
        .buffer_hint = 1,
        .duration = 20,
        .warmup = 3,
        .baseline_seconds = 5,
        .phases = LG_PHASE_DECODE | LG_PHASE_NATS | LG_PHASE_INGEST,
        .label = "run",
        .seed = 1,
    };
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == O_HELP) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (c == '?' || one_flag(o, c, optarg) < 0)
            return -EINVAL;
    }
    if (optind < argc) {
        fprintf(stderr, "kopt-loadgen: unexpected argument \"%s\"\n", argv[optind]);
        return -EINVAL;
    }
    if (split_targets(o) < 0)
        return -EINVAL;
    if (!o->nats_url)
        o->phases &= ~(unsigned)LG_PHASE_NATS;
    if ((o->phases & LG_PHASE_INGEST) && (!o->ca || !o->cert || !o->key)) {
        fprintf(stderr, "kopt-loadgen: the ingest run needs --ca, --cert and --key\n");
        return -EINVAL;
    }
    return 0;
}

static void progress(void *data, double t, uint64_t windows, uint64_t batches)
{
    uint64_t *last = data;

    fprintf(stderr, "  t=%4.0fs  %10.0f windows/s  %8.0f batches/s\n", t,
            (double)(windows - last[0]), (double)(batches - last[1]));
    last[0] = windows;
    last[1] = batches;
}

static double per_s(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

static void print_baseline(const char *name, const char *phase, const char *label,
                           const lg_baseline_result_t *b)
{
    printf("%-34s %12.0f windows/s %9.0f batches/s %8.1f MB/s  (%.1f s, %llu errors)\n", name,
           per_s(b->windows, b->seconds), per_s(b->batches, b->seconds),
           per_s(b->bytes, b->seconds) / 1e6, b->seconds, (unsigned long long)b->errors);
    if (b->cpu_seconds > 0)
        printf("  per CPU-second: %.0f windows with validation, %.0f unpack alone (%.0f %% of "
               "wall time on CPU)\n",
               per_s(b->windows, b->cpu_seconds), per_s(b->unpack_windows, b->unpack_seconds),
               100 * b->cpu_seconds / b->seconds);
    printf("RESULT label=%s phase=%s windows_per_s=%.0f batches_per_s=%.0f mb_per_s=%.1f "
           "windows_per_cpu_s=%.0f\n",
           label, phase, per_s(b->windows, b->seconds), per_s(b->batches, b->seconds),
           per_s(b->bytes, b->seconds) / 1e6, per_s(b->windows, b->cpu_seconds));
}

static void print_ingest(const lg_opts_t *o, const lg_ingest_result_t *r,
                         const lg_baseline_result_t *dec, double nats_wps)
{
    static const char *const reasons[LG_REJECT_REASONS] = {"unspecified", "invalid", "too_large",
                                                           "permission_denied"};
    double wps = per_s(r->windows, r->seconds);
    double decode_wps = per_s(dec->windows, dec->seconds);
    double decode_cpu = per_s(dec->windows, dec->cpu_seconds);
    double cpu = 0, ncpu = 0, ms = 1e6;
    unsigned long long errors = 0;

    printf("%-34s %12.0f windows/s %9.0f batches/s %8.1f MB/s  (%.1f s, %.0f acks/s)\n",
           o->rate > 0 ? "ingest (fixed rate)" : "ingest (max load)", wps,
           per_s(r->batches, r->seconds), per_s(r->bytes, r->seconds) / 1e6, r->seconds,
           per_s(r->acks, r->seconds));
    printf("  ack latency   p50 %.2f ms   p99 %.2f ms   p99.9 %.2f ms   max %.2f ms  (%llu "
           "batches)\n",
           (double)lg_hist_quantile(&r->latency, 0.5) / ms,
           (double)lg_hist_quantile(&r->latency, 0.99) / ms,
           (double)lg_hist_quantile(&r->latency, 0.999) / ms, (double)r->latency.max_ns / ms,
           (unsigned long long)r->latency.n);
    printf("  streams ended:");
    for (int c = 0; c < LG_STATUS_CODES; c++)
        if (r->statuses[c]) {
            printf(" %s=%llu", kopt_grpc_status_name((grpc_status_code)c),
                   (unsigned long long)r->statuses[c]);
            if (c != 0)
                errors += r->statuses[c];
        }
    printf("   rejections:");
    for (int c = 0; c < LG_REJECT_REASONS; c++)
        if (r->rejections[c])
            printf(" %s=%llu", reasons[c], (unsigned long long)r->rejections[c]);
    printf(" %s  reconnects %llu (to the next target %llu), unacked at end %llu\n",
           r->rejections[0] + r->rejections[1] + r->rejections[2] + r->rejections[3] ? "" : "none",
           (unsigned long long)r->reconnects, (unsigned long long)r->failovers,
           (unsigned long long)r->unacked_at_end);
    if (o->rate > 0)
        printf("  target %.0f windows/s; sends late by > 10 ms: %llu\n", o->rate,
               (unsigned long long)r->behind_schedule);
    if (o->ingest_pid > 0) {
        cpu = (r->ingest_end.user_s + r->ingest_end.sys_s - r->ingest_start.user_s -
               r->ingest_start.sys_s) /
              r->seconds;
        printf("  kopt-ingest   CPU %.2f s/s (user %.2f, sys %.2f)   RSS peak %.1f MB (VmHWM "
               "%.1f MB)\n",
               cpu, (r->ingest_end.user_s - r->ingest_start.user_s) / r->seconds,
               (r->ingest_end.sys_s - r->ingest_start.sys_s) / r->seconds,
               (double)r->ingest_rss_max_kb / 1024, (double)r->ingest_end.hwm_kb / 1024);
        printf("  kopt-ingest   main (loop) thread waited for a CPU %.2f s/s\n",
               (r->ingest_end.main_wait_s - r->ingest_start.main_wait_s) / r->seconds);
    }
    if (o->nats_pid > 0) {
        ncpu =
            (r->nats_end.user_s + r->nats_end.sys_s - r->nats_start.user_s - r->nats_start.sys_s) /
            r->seconds;
        printf("  nats-server   CPU %.2f s/s\n", ncpu);
    }
    printf("  kopt-loadgen  CPU %.2f s/s\n", r->self_cpu_s / r->seconds);
    if (cpu > 0)
        printf("  per ingest CPU-second: %.0f windows\n", wps / cpu);
    if (decode_wps > 0)
        printf("  = %.1f %% of the decode+validate ceiling (per CPU-second: %.1f %%)\n",
               100 * wps / decode_wps, cpu > 0 ? 100 * wps / cpu / decode_cpu : 0);
    if (nats_wps > 0)
        printf("  = %.1f %% of direct JetStream publishing\n", 100 * wps / nats_wps);
    printf("RESULT label=%s phase=ingest rate=%.0f windows_per_s=%.0f batches_per_s=%.0f "
           "mb_per_s=%.1f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f ingest_cpu=%.2f "
           "ingest_rss_mb=%.1f ingest_hwm_mb=%.1f nats_cpu=%.2f loadgen_cpu=%.2f errors=%llu "
           "pct_decode=%.1f pct_nats=%.1f windows_per_ingest_cpu_s=%.0f pct_decode_cpu=%.1f "
           "ingest_wait=%.2f\n",
           o->label, o->rate, wps, per_s(r->batches, r->seconds), per_s(r->bytes, r->seconds) / 1e6,
           (double)lg_hist_quantile(&r->latency, 0.5) / ms,
           (double)lg_hist_quantile(&r->latency, 0.99) / ms,
           (double)lg_hist_quantile(&r->latency, 0.999) / ms, cpu,
           (double)r->ingest_rss_max_kb / 1024, (double)r->ingest_end.hwm_kb / 1024, ncpu,
           r->self_cpu_s / r->seconds, errors, decode_wps > 0 ? 100 * wps / decode_wps : 0,
           nats_wps > 0 ? 100 * wps / nats_wps : 0, cpu > 0 ? wps / cpu : 0,
           cpu > 0 && decode_cpu > 0 ? 100 * wps / cpu / decode_cpu : 0,
           (r->ingest_end.main_wait_s - r->ingest_start.main_wait_s) / r->seconds);
}

static void describe(const lg_opts_t *o, const lg_node_t *nodes)
{
    size_t windows = 0, bytes = 0;

    for (int i = 0; i < o->agents; i++) {
        windows += nodes[i].n_windows;
        bytes += nodes[i].body_len[0];
    }
    printf("kopt-loadgen: %d agents -> %s, %d-%d containers/node, window %d, %d CQ thread(s), "
           "%s\n",
           o->agents, o->target, o->containers_min, o->containers_max, o->window, o->threads,
           o->rate > 0 ? "fixed rate" : "max load");
    printf("  batches: %.1f windows and %.1f KB on average (%.0f bytes/window)\n",
           (double)windows / o->agents, (double)bytes / o->agents / 1000,
           (double)bytes / (double)windows);
    fflush(stdout);
}

static uint64_t rejections(const lg_ingest_result_t *res)
{
    uint64_t n = 0;

    for (size_t i = 0; i < LG_REJECT_REASONS; i++)
        n += res->rejections[i];
    return n;
}

int main(int argc, char **argv)
{
    lg_opts_t o;
    lg_node_t *nodes;
    lg_baseline_result_t dec = {0}, nat = {0};
    lg_ingest_result_t *res = NULL;
    uint64_t last[2] = {0, 0};
    double nats_wps = 0;
    int rc = 0;

    if (parse(argc, argv, &o) < 0)
        return 2;
    nodes = calloc((size_t)o.agents, sizeof(*nodes));
    if (!nodes)
        return 1;
    if (o.minute0 && !(o.keys = lg_keyset_new((size_t)o.agents * (size_t)o.containers_max))) {
        free(nodes);
        return 1;
    }
    for (int i = 0; i < o.agents; i++)
        if (lg_node_build(&nodes[i], &o, i, (int64_t)time(NULL)) < 0) {
            fprintf(stderr, "kopt-loadgen: out of memory building batches\n");
            for (int k = 0; k <= i; k++)
                lg_node_free(&nodes[k]);
            free(nodes);
            lg_keyset_free(o.keys);
            return 1;
        }
    describe(&o, nodes);
    if (o.phases & LG_PHASE_DECODE) {
        rc |= lg_baseline_decode(&o, nodes, &dec) < 0;
        print_baseline("baseline decode+validate", "decode", o.label, &dec);
    }
    if (o.phases & LG_PHASE_NATS) {
        rc |= lg_baseline_nats(&o, nodes, &nat) < 0;
        print_baseline("baseline JetStream direct", "nats", o.label, &nat);
        nats_wps = per_s(nat.windows, nat.seconds);
    }
    fflush(stdout);
    if (o.phases & LG_PHASE_INGEST) {
        res = calloc(1, sizeof(*res));
        grpc_init();
        if (!res || lg_ingest_run(&o, nodes, progress, last, res) < 0) {
            fprintf(stderr, "kopt-loadgen: the ingest run could not start\n");
            rc = 1;
        } else {
            print_ingest(&o, res, &dec, nats_wps);
            /* Everything acked, warmup and drain included: what ClickHouse
             * must hold in the end (scripts/bench-cluster). */
            printf("TOTAL label=%s windows=%llu batches=%llu max_seq=%llu unacked_at_end=%llu "
                   "rejections=%llu failovers=%llu\n",
                   o.label, (unsigned long long)res->total_windows,
                   (unsigned long long)res->total_batches, (unsigned long long)res->max_seq,
                   (unsigned long long)res->unacked_at_end, (unsigned long long)rejections(res),
                   (unsigned long long)res->failovers);
        }
        grpc_shutdown();
        free(res);
    }
    for (int i = 0; i < o.agents; i++)
        lg_node_free(&nodes[i]);
    free(nodes);
    lg_keyset_free(o.keys);
    return rc ? 1 : 0;
}
