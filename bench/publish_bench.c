/* kopt-publish-bench: the advisor's JetStream publishing of one analysis'
 * results, against the real nats-server the test harness starts (free
 * loopback ports, a temp store, stopped at exit). Three ways to send the
 * same 20,000 recommendations, each until every PubAck is in:
 *   stream only (baseline): the protobuf of each on its subject
 *     kopt.recommendations.<cluster>.<namespace>, no headers, same window;
 *   + headers: the same with the contract's headers and Nats-Msg-Id
 *     (adv_publish_message, advisor/publish_headers.c);
 *   adv_publisher_send: what the advisor does (advisor/publish.c): encode,
 *     headers, the stream message and a KV put per workload, the
 *     AnalysisCompleted markers.
 * Each round uses a new analysis id, so Nats-Msg-Id never deduplicates.
 * Prints wall time, this process's CPU (nats.c's threads included) and
 * nats-server's CPU. docs/performance.md, "Advisor JetStream publishing". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "advisor.h"
#include "bench_recs.h"
#include "harness.h"
#include "microbench.h"
#include "publish_contract.h"

#define N_RECS 20000
#define WINDOW 1024 /* advisor/publish.c's PUBLISH_WINDOW */

typedef struct {
    Kopt__V1__Recommendation **recs;
    char **pb;
    size_t *pb_len, n;
    char subject[64];
} data_t;

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double server_cpu(pid_t pid)
{
    char path[64];
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    /* utime and stime are fields 14 and 15; comm has no blanks here. */
    if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        ut = st = 0;
    fclose(f);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Stream-only or with headers, through one JetStream context. */
static int send_plain(jsCtx *js, const data_t *d, const char *analysis_id, int headers)
{
    jsPubOptions po;
    natsStatus s = NATS_OK;
    char subject[512], id[512];

    for (size_t i = 0; s == NATS_OK && i < d->n; i++) {
        const Kopt__V1__WorkloadRef *w = d->recs[i]->workload;

        snprintf(subject, sizeof(subject), "%s.%s.%s", ADV_SUBJECT_PREFIX, w->cluster,
                 w->namespace_);
        if (headers) {
            natsMsg *m = NULL;

            snprintf(id, sizeof(id), "%s/%s/%s/%s/%s", analysis_id, w->cluster, w->namespace_,
                     adv_kind_name(w->kind), w->name);
            s = adv_publish_message(&m, subject, d->pb[i], d->pb_len[i], ADV_ENCODING_PROTOBUF,
                                    "kopt.v1.Recommendation", analysis_id, id);
            if (s == NATS_OK)
                s = js_PublishMsgAsync(js, &m, NULL);
            natsMsg_Destroy(m);
        } else {
            s = js_PublishAsync(js, subject, d->pb[i], (int)d->pb_len[i], NULL);
        }
    }
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (s == NATS_OK)
        s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        fprintf(stderr, "kopt-publish-bench: publish: %s\n", natsStatus_GetText(s));
    return s == NATS_OK ? 0 : -EIO;
}

static int add_stream(jsCtx *js)
{
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    const char *subj[1] = {ADV_STREAM_SUBJECTS};
    natsStatus s;

    jsStreamConfig_Init(&sc);
    sc.Name = ADV_STREAM_NAME;
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Duplicates = (int64_t)600 * 1000000000;
    s = js_AddStream(NULL, js, &sc, NULL, &jerr);
    if (s != NATS_OK)
        fprintf(stderr, "kopt-publish-bench: add stream: %s (jerr %d)\n", natsStatus_GetText(s),
                (int)jerr);
    return s == NATS_OK ? 0 : -EIO;
}

static int make_data(data_t *d, size_t n)
{
    d->n = n;
    d->recs = calloc(n, sizeof(*d->recs));
    d->pb = calloc(n, sizeof(*d->pb));
    d->pb_len = calloc(n, sizeof(*d->pb_len));
    if (!d->recs || !d->pb || !d->pb_len)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(d->recs[i] = bench_rec(i)) ||
            adv_publish_encode(&d->recs[i]->base, ADV_ENCODING_PROTOBUF, &d->pb[i], &d->pb_len[i]) <
                0)
            return -ENOMEM;
    }
    return 0;
}

static void free_data(data_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->recs && d->recs[i])
            protobuf_c_message_free_unpacked(&d->recs[i]->base, NULL);
        if (d->pb)
            free(d->pb[i]);
    }
    free(d->recs);
    free(d->pb);
    free(d->pb_len);
}

typedef struct {
    const char *name;
    double wall, cpu, server;
} row_t;

int main(int argc, char **argv)
{
    static const char usage[] = "Usage: kopt-publish-bench [--quick] [--seconds S]\n"
                                "Publishes 20,000 recommendations three ways to a real "
                                "nats-server (--seconds is ignored).\n";
    static const char *const names[3] = {"stream only (baseline)", "+ headers, Nats-Msg-Id",
                                         "adv_publisher_send (+ KV, markers)"};
    kopt_test_nats_t *srv = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    adv_publisher_t *pub = NULL;
    adv_settings_t settings;
    data_t d = {0};
    row_t rows[3];
    double seconds, w0, c0, s0;
    char machine[128], err[512] = "", analysis[3][48];
    int quick, rc = 1;
    size_t sent = 0;

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    if (make_data(&d, quick ? 500 : N_RECS) < 0) {
        fprintf(stderr, "kopt-publish-bench: out of memory\n");
        goto out;
    }
    if (kopt_test_nats_start(&srv, NULL) < 0) {
        fprintf(stderr, "kopt-publish-bench: nats-server did not start\n");
        goto out;
    }
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = WINDOW;
    if (natsConnection_ConnectTo(&nc, srv->url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK || add_stream(js) < 0 ||
        adv_publisher_new(srv->url, NULL, &pub) < 0) {
        fprintf(stderr, "kopt-publish-bench: cannot connect to %s\n", srv->url);
        goto out;
    }
    memset(&settings, 0, sizeof(settings));
    settings.stream_replicas = 1;
    settings.recommendations_encoding = ADV_ENCODING_PROTOBUF;
    adv_publisher_configure(pub, &settings);
    for (int k = 0; k < 3; k++) {
        int r;

        snprintf(analysis[k], sizeof(analysis[k]), "bench-%ld-%d", (long)time(NULL), k);
        w0 = clock_s(CLOCK_MONOTONIC);
        c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        s0 = server_cpu(srv->pid);
        if (k < 2) {
            r = send_plain(js, &d, analysis[k], k);
        } else {
            char *keep[N_RECS];

            /* The advisor's recs carry the run's analysis id. */
            for (size_t i = 0; i < d.n; i++) {
                keep[i] = d.recs[i]->analysis_id;
                d.recs[i]->analysis_id = analysis[k];
            }
            r = adv_publisher_send(pub, d.recs, d.n, &sent, err, sizeof(err));
            for (size_t i = 0; i < d.n; i++)
                d.recs[i]->analysis_id = keep[i];
            if (r == 0 && sent < d.n) {
                snprintf(err, sizeof(err), "%zu of %zu acked", sent, d.n);
                r = -EIO;
            }
        }
        if (r < 0) {
            fprintf(stderr, "kopt-publish-bench: %s: %s\n", names[k], err[0] ? err : "failed");
            goto out;
        }
        rows[k] = (row_t){names[k], clock_s(CLOCK_MONOTONIC) - w0,
                          clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0, server_cpu(srv->pid) - s0};
    }
    mb_machine(machine, sizeof(machine));
    printf("kopt-publish-bench: %zu recommendations to nats-server %s (%s)\n", d.n, srv->url,
           machine);
    printf("%-36s %9s %12s %9s %12s %12s %10s\n", "case", "wall s", "recs/s", "CPU s", "CPU us/rec",
           "server CPU s", "x baseline");
    for (int k = 0; k < 3; k++)
        printf("%-36s %9.3f %12.0f %9.3f %12.2f %12.2f %9.2f%s\n", rows[k].name, rows[k].wall,
               (double)d.n / rows[k].wall, rows[k].cpu, rows[k].cpu / (double)d.n * 1e6,
               rows[k].server, rows[k].wall / rows[0].wall, k == 0 ? " (baseline)" : "");
    rc = 0;
out:
    adv_publisher_free(pub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (srv) {
        kopt_test_nats_stop(srv);
        kopt_test_nats_free(srv);
    }
    nats_Close();
    free_data(&d);
    return rc;
}
