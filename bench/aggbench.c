/* kopt-aggbench: fills KOPT_METRICS with a backlog for the aggregator
 * benchmark (scripts/bench-aggregator, docs/performance.md) and writes the
 * same rows as one RowBinary file for the curl baseline.
 *
 * The batches are kopt-loadgen's realistic nodes (bench/loadgen_batch.c):
 * --nodes nodes of --containers windows each, every node sending one batch
 * per minute, going back in time, until --batches batches are out. Batch i is
 * node i % nodes for minute i / nodes. Every row is a distinct
 * container_windows key (a container key that repeats across the nodes, such
 * as a StatefulSet pod name drawn twice, is dropped once at build time), so
 * ReplacingMergeTree merges never shrink count() below the number sent.
 *
 * Each batch is published to JetStream as kopt-ingest does it: subject
 * kopt.metrics.<cluster>.<node>, Nats-Msg-Id <agent>/<epoch>/<seq>, nats.c
 * async publish with a window of unacked messages. Its rows go to the file
 * through aggregator/rows.c, the aggregator's own encoder, in the
 * column order of AGG_ROWBINARY_WINDOW_COLUMNS.
 *
 *   kopt-aggbench --nats-url URL --out FILE [--batches N] [--nodes N]
 *                 [--containers MIN-MAX] [--cluster NAME] [--seed N]
 *
 * Prints "RESULT batches=... windows=... ..." and "COLUMNS <the file's
 * columns, for INSERT ... (cols) FORMAT RowBinary>" on stdout. Exit 0, or 1 when
 * a publish was not acknowledged.
 *
 *   kopt-aggbench --rollup-clickhouse URL [--days N] [--containers N-N]
 *
 * instead times the rollups of a backfill: database kopt_rollbench gets
 * --days days of one-minute windows of the --containers maximum
 * containers (made by the server from numbers()), then every hour is
 * rolled up twice, as a pass did before (one statement per hour) and as
 * agg_rollup_pass does now (one per UTC day), and the two results are
 * compared. Prints "ROLLUP per_hour_s=... per_day_s=... ...". */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include <kopt/clickhouse.h>
#include <kopt/names.h>

#include "kopt/v1/metrics.pb-c.h"
#include "loadgen.h"
#include "rollup.h"
#include "rows.h"
#include "schema.h"

#define WINDOW 4096            /* unacked publishes */
#define FILE_CHUNK (16u << 20) /* RowBinary written out every 16 MiB */
#define STREAM "KOPT_METRICS"
#define SUBJECTS "kopt.metrics.>"

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t room;
    int inflight;
    uint64_t acked, errors;
} pub_state_t;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    pub_state_t *st = closure;

    (void)js;
    (void)pa;
    pthread_mutex_lock(&st->lock);
    st->inflight--;
    if (pae) {
        if (st->errors++ == 0)
            fprintf(stderr, "kopt-aggbench: publish failed: %s\n",
                    pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    } else {
        st->acked++;
    }
    pthread_cond_signal(&st->room);
    pthread_mutex_unlock(&st->lock);
    natsMsg_Destroy(msg);
}

static int stream_replicas = 1; /* --replicas: 3 on a NATS cluster */

/* KOPT_METRICS as kopt-ingest creates it (file storage, 10 min duplicate
 * window), unless it exists already. */
static int ensure_stream(jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    const char *subj[1] = {SUBJECTS};
    natsStatus s = js_GetStreamInfo(&si, js, STREAM, NULL, &jerr);

    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    jsStreamConfig_Init(&sc);
    sc.Name = STREAM;
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Duplicates = (int64_t)600 * 1000000000;
    sc.Replicas = stream_replicas;
    s = js_AddStream(NULL, js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "kopt-aggbench: cannot create %s: %s (jerr %d)\n", STREAM,
                natsStatus_GetText(s), (int)jerr);
        return -EIO;
    }
    return 0;
}

/* A set of 64-bit key hashes (open addressing; 0 marks a free slot). */
typedef struct {
    uint64_t *slot;
    size_t cap;
} keyset_t;

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* separator */
}

/* true when the key was new (and is now in the set). */
static bool keyset_add(keyset_t *k, const Kopt__V1__ContainerWindow *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    h = fnv(h, w->namespace_);
    h = fnv(h, agg_rowbinary_workload_kind(w->workload_kind));
    h = fnv(h, w->workload_name);
    h = fnv(h, w->pod);
    h = fnv(h, w->container);
    if (h == 0)
        h = 1;
    for (i = h & (k->cap - 1); k->slot[i]; i = (i + 1) & (k->cap - 1))
        if (k->slot[i] == h)
            return false;
    k->slot[i] = h;
    return true;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: kopt-aggbench --nats-url URL --out FILE [--batches N] [--nodes N]\n"
        "                     [--containers MIN-MAX] [--cluster NAME] [--seed N] [--replicas N]\n"
        "       kopt-aggbench --rollup-clickhouse URL [--days N] [--containers MIN-MAX]\n");
}

/* ---- --rollup-clickhouse: the rollups of a backfill ----------------------- */

static int ch_run(kopt_ch_client_t *c, const char *sql, char **out)
{
    kopt_ch_error_t err = {0};
    int r = kopt_ch_query(c, sql, out, NULL, &err);

    if (r < 0)
        fprintf(stderr, "kopt-aggbench: query failed: %s\n%.300s\n", err.message, sql);
    return r;
}

/* What a run wrote (rolled_at >= since): rows and sums that must agree. */
static int hourly_digest(kopt_ch_client_t *c, int64_t since, char **out)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT count(), sum(window_count), sum(pod_count), sum(covered_seconds), "
             "round(sum(cpu_usage_core_seconds), 3), sum(arraySum(cpu_hist_count)), "
             "sum(length(mem_hist_index)), max(memory_working_set_peak_bytes) "
             "FROM kopt_rollbench.container_hourly WHERE rolled_at >= toDateTime(%lld) FORMAT TSV",
             (long long)since);
    return ch_run(c, sql, out);
}

static int rollup_bench(const char *url, int days, int containers)
{
    kopt_ch_options_t o = {.url = url, .database = "kopt_rollbench", .timeout_ms = 600000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    agg_rollup_stats_t st = {0};
    agg_hourset_t hours, failed;
    atomic_int stop = 0;
    int64_t now = (int64_t)time(NULL), day0 = now - now % 86400 - (int64_t)days * 86400;
    int64_t n_hours = (int64_t)days * 24, since_old, since_new;
    char *sql = NULL, *d_old = NULL, *d_new = NULL;
    double t0, t_fill, t_old, t_new;
    int r;

    agg_hourset_init(&hours);
    agg_hourset_init(&failed);
    r = kopt_ch_client_new(&o, &c, &err);
    if (r == 0)
        r = kopt_ch_query_flags(c, "DROP DATABASE IF EXISTS kopt_rollbench", KOPT_CH_NO_DATABASE,
                                NULL, NULL, &err);
    if (r == 0)
        r = agg_schema_migrate(c, NULL, NULL, &err);
    t0 = now_s();
    /* Pods of 20 namespaces and 100 workloads; a usage that moves. */
    if (r == 0 &&
        asprintf(&sql,
                 "INSERT INTO kopt_rollbench.container_windows (cluster, namespace, workload_kind, "
                 "workload_name, pod, container, node, window_start, window_end, "
                 "cpu_usage_mean_cores, cpu_usage_peak_cores, memory_working_set_peak_bytes, "
                 "memory_rss_peak_bytes, cpu_request_cores, memory_request_bytes, sample_count, "
                 "inserted_at) "
                 "SELECT 'bench', concat('ns-', toString(c %% 20)), 'Deployment', "
                 "concat('wl-', toString(c %% 100)), concat('pod-', toString(c)), 'app', "
                 "concat('node-', toString(c %% 10)), toDateTime(%lld + m * 60), "
                 "toDateTime(%lld + m * 60 + 60), (c %% 17) * 0.013 + (m %% 7) * 0.011, "
                 "(c %% 17) * 0.02 + (m %% 5) * 0.03, toUInt64(50000000 + (c %% 31) * 7000000 + "
                 "(m %% 13) * 1000000), 40000000, 0.5, 268435456, 6, now() "
                 "FROM (SELECT number %% %d AS c, intDiv(number, %d) AS m FROM numbers(%lld))",
                 (long long)day0, (long long)day0, containers, containers,
                 (long long)containers * n_hours * 60) < 0)
        r = -ENOMEM;
    if (r == 0)
        r = ch_run(c, sql, NULL);
    free(sql);
    t_fill = now_s() - t0;
    for (int64_t h = 0; r == 0 && h < n_hours; h++)
        agg_hourset_add(&hours, "bench", day0 + h * 3600);
    /* Before: one statement per touched hour (the old agg_rollup_pass). */
    since_old = (int64_t)time(NULL);
    t0 = now_s();
    for (size_t i = 0; r == 0 && i < hours.n; i++)
        r = agg_rollup_hour(c, "bench", hours.items[i].hour, &err);
    t_old = now_s() - t0;
    if (r == 0)
        r = hourly_digest(c, since_old, &d_old);
    /* After: the pass as it is now, no lateness window. */
    while (r == 0 && (int64_t)time(NULL) <= since_old + (int64_t)t_old + 1)
        usleep(100000); /* rolled_at must tell the runs apart */
    since_new = (int64_t)time(NULL);
    t0 = now_s();
    if (r == 0)
        agg_rollup_pass(c, &hours, 0, (int64_t)time(NULL), &stop, &st, &failed);
    t_new = now_s() - t0;
    if (r == 0 && failed.n > 0)
        r = -EIO;
    if (r == 0)
        r = hourly_digest(c, since_new, &d_new);
    if (r == 0) {
        printf("ROLLUP days=%d containers=%d windows=%lld hours=%lld fill_s=%.2f per_hour_s=%.2f "
               "per_day_s=%.2f speedup=%.1f same=%s\n",
               days, containers, (long long)containers * n_hours * 60, (long long)n_hours, t_fill,
               t_old, t_new, t_new > 0 ? t_old / t_new : 0,
               strcmp(d_old, d_new) == 0 ? "yes" : "NO");
        printf("DIGEST per_hour %sDIGEST per_day  %s", d_old, d_new);
        if (strcmp(d_old, d_new) != 0)
            r = -EPROTO;
    } else {
        fprintf(stderr, "kopt-aggbench: rollup bench failed: %s (%d)\n", err.message, r);
    }
    free(d_old);
    free(d_new);
    agg_hourset_free(&hours);
    agg_hourset_free(&failed);
    kopt_ch_client_free(c);
    return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    lg_opts_t o = {.cluster = "bench",
                   .agent_id = "aggbench",
                   .containers_min = 200,
                   .containers_max = 300,
                   .seed = 1};
    const char *url = NULL, *out = NULL, *rollup_url = NULL;
    int days = 3;
    long batches = 2000, n_nodes = 40;
    pub_state_t st = {.lock = PTHREAD_MUTEX_INITIALIZER, .room = PTHREAD_COND_INITIALIZER};
    lg_node_t *nodes = NULL;
    bool **keep = NULL;
    keyset_t keys = {0};
    kopt_ch_buf_t rb;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    FILE *f = NULL;
    uint8_t *pbuf = NULL;
    size_t pcap = 0, dropped = 0;
    uint64_t windows = 0, pb_bytes = 0, rb_bytes = 0, epoch0;
    int64_t t_now, end0;
    uint32_t inserted_at;
    double t0, t_pub, t_ack;
    natsStatus s;
    int rc = 1;

    for (int i = 1; i < argc; i += 2) { /* every flag takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(a, "--nats-url") == 0)
            url = v;
        else if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--batches") == 0)
            batches = strtol(v, NULL, 10);
        else if (strcmp(a, "--nodes") == 0)
            n_nodes = strtol(v, NULL, 10);
        else if (strcmp(a, "--containers") == 0 &&
                 sscanf(v, "%d-%d", &o.containers_min, &o.containers_max) == 2)
            ;
        else if (strcmp(a, "--cluster") == 0)
            o.cluster = v;
        else if (strcmp(a, "--replicas") == 0)
            stream_replicas = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            o.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--rollup-clickhouse") == 0)
            rollup_url = v;
        else if (strcmp(a, "--days") == 0)
            days = (int)strtol(v, NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (rollup_url && days > 0 && o.containers_max > 0)
        return rollup_bench(rollup_url, days, o.containers_max);
    if (!url || !out || batches < 1 || n_nodes < 1 || o.containers_min < 1 ||
        o.containers_max < o.containers_min) {
        usage();
        return 2;
    }

    t_now = (int64_t)time(NULL);
    end0 = t_now - t_now % 60; /* the minute that just ended, then back in time */
    inserted_at = (uint32_t)t_now;
    epoch0 = (uint64_t)t_now * 1000000000ull;
    kopt_ch_buf_init(&rb);

    /* The nodes, and which of their windows have a key no other node has. */
    nodes = calloc((size_t)n_nodes, sizeof(*nodes));
    keep = calloc((size_t)n_nodes, sizeof(*keep));
    for (keys.cap = 1024; keys.cap < (size_t)n_nodes * (size_t)o.containers_max * 2;)
        keys.cap *= 2;
    keys.slot = calloc(keys.cap, sizeof(*keys.slot));
    if (!nodes || !keep || !keys.slot)
        goto oom;
    for (long n = 0; n < n_nodes; n++) {
        Kopt__V1__MetricBatch *mb;

        if (lg_node_build(&nodes[n], &o, (int)n, t_now) < 0)
            goto oom;
        for (int v = 0; v < LG_VARIANTS; v++)
            if (nodes[n].body_len[v] + LG_SUFFIX_MAX > pcap)
                pcap = nodes[n].body_len[v] + LG_SUFFIX_MAX;
        mb = kopt__v1__metric_batch__unpack(NULL, nodes[n].body_len[0], nodes[n].body[0]);
        if (!mb || !(keep[n] = calloc(mb->n_windows, sizeof(bool))))
            goto oom;
        for (size_t i = 0; i < mb->n_windows; i++)
            if (!(keep[n][i] = keyset_add(&keys, mb->windows[i])))
                dropped++;
        kopt__v1__metric_batch__free_unpacked(mb, NULL);
    }
    pcap += 1024; /* the batch is packed again with its times and suffix fields */
    if (!(pbuf = malloc(pcap)))
        goto oom;

    f = fopen(out, "wb");
    if (!f) {
        fprintf(stderr, "kopt-aggbench: %s: %s\n", out, strerror(errno));
        goto out;
    }
    s = natsConnection_ConnectTo(&nc, url);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = WINDOW * 2;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = &st;
        s = natsConnection_JetStream(&js, nc, &jo);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "kopt-aggbench: NATS %s: %s\n", url, natsStatus_GetText(s));
        goto out;
    }
    if (ensure_stream(js) < 0)
        goto out;

    t0 = now_s();
    for (long i = 0; i < batches; i++) {
        long n = i % n_nodes, minute = i / n_nodes;
        int v = (int)(minute % LG_VARIANTS);
        const lg_node_t *node = &nodes[n];
        Kopt__V1__MetricBatch *mb =
            kopt__v1__metric_batch__unpack(NULL, node->body_len[v], node->body[v]);
        Google__Protobuf__Timestamp created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        char subject[256], token[160], id[160];
        size_t all, kept = 0, len, rows = 0;
        natsMsg *m = NULL;
        int r;

        if (!mb)
            goto oom;
        /* Keep the windows with unique keys, at this batch's minute. */
        all = mb->n_windows;
        for (size_t k = 0; k < all; k++) {
            Kopt__V1__ContainerWindow *w = mb->windows[k];

            if (!keep[n][k])
                continue;
            w->window_end->seconds = end0 - 60 * (int64_t)minute;
            w->window_end->nanos = 0;
            w->window_start->seconds = w->window_end->seconds - 60;
            w->window_start->nanos = 0;
            mb->windows[k] = mb->windows[kept]; /* swap: dropped ones stay owned */
            mb->windows[kept++] = w;
        }
        mb->n_windows = kept;
        mb->epoch = epoch0 + (uint64_t)n;
        mb->seq = (uint64_t)minute + 1;
        created.seconds = end0 - 60 * (int64_t)minute + 2;
        mb->created = &created;
        len = kopt__v1__metric_batch__get_packed_size(mb);
        if (len > pcap) {
            free(pbuf);
            pcap = len * 2;
            if (!(pbuf = malloc(pcap))) {
                mb->created = NULL;
                mb->n_windows = all;
                kopt__v1__metric_batch__free_unpacked(mb, NULL);
                goto oom;
            }
        }
        kopt__v1__metric_batch__pack(mb, pbuf);
        r = agg_rowbinary_metric_batch(&rb, mb, inserted_at, &rows);
        mb->created = NULL; /* ours, on the stack */
        mb->n_windows = all;
        kopt__v1__metric_batch__free_unpacked(mb, NULL);
        if (r < 0) {
            fprintf(stderr, "kopt-aggbench: RowBinary of batch %ld: %s\n", i, strerror(-r));
            goto out;
        }
        windows += rows;
        pb_bytes += len;
        if (rb.len >= FILE_CHUNK || i + 1 == batches) {
            if (fwrite(rb.data, 1, rb.len, f) != rb.len) {
                fprintf(stderr, "kopt-aggbench: writing %s: %s\n", out, strerror(errno));
                goto out;
            }
            rb_bytes += rb.len;
            rb.len = 0;
        }

        if (kopt_name_subject_token(node->node, token, sizeof(token)) < 0)
            snprintf(token, sizeof(token), "node%ld", n);
        snprintf(subject, sizeof(subject), "kopt.metrics.%s.%s", o.cluster, token);
        snprintf(id, sizeof(id), "%s/%" PRIu64 "/%" PRIu64, o.agent_id, epoch0 + (uint64_t)n,
                 (uint64_t)minute + 1);
        pthread_mutex_lock(&st.lock);
        while (st.inflight >= WINDOW)
            pthread_cond_wait(&st.room, &st.lock);
        st.inflight++;
        pthread_mutex_unlock(&st.lock);
        s = natsMsg_Create(&m, subject, NULL, (const char *)pbuf, (int)len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
            fprintf(stderr, "kopt-aggbench: publish: %s\n", natsStatus_GetText(s));
            pthread_mutex_lock(&st.lock);
            st.inflight--;
            st.errors++;
            pthread_mutex_unlock(&st.lock);
            goto out;
        }
    }
    t_pub = now_s();
    s = js_PublishAsyncComplete(js, NULL);
    pthread_mutex_lock(&st.lock);
    while (st.inflight > 0)
        pthread_cond_wait(&st.room, &st.lock);
    pthread_mutex_unlock(&st.lock);
    t_ack = now_s();
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "kopt-aggbench: closing %s: %s\n", out, strerror(errno));
        goto out;
    }
    f = NULL;
    printf("RESULT batches=%ld acked=%" PRIu64 " errors=%" PRIu64 " windows=%" PRIu64
           " nodes=%ld minutes=%ld dropped_keys=%zu pb_bytes=%" PRIu64 " rowbinary_bytes=%" PRIu64
           " publish_s=%.3f acked_s=%.3f windows_per_s=%.0f\n",
           batches, st.acked, st.errors, windows, n_nodes, (batches + n_nodes - 1) / n_nodes,
           dropped, pb_bytes, rb_bytes, t_pub - t0, t_ack - t0,
           t_ack > t0 ? (double)windows / (t_ack - t0) : 0.0);
    printf("COLUMNS %s\n", AGG_ROWBINARY_WINDOW_COLUMNS);
    rc = st.errors == 0 && st.acked == (uint64_t)batches && s == NATS_OK ? 0 : 1;
    goto out;
oom:
    fprintf(stderr, "kopt-aggbench: out of memory\n");
out:
    if (f)
        fclose(f);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    for (long n = 0; nodes && n < n_nodes; n++) {
        lg_node_free(&nodes[n]);
        if (keep)
            free(keep[n]);
    }
    free(nodes);
    free(keep);
    free(keys.slot);
    free(pbuf);
    kopt_ch_buf_free(&rb);
    nats_Close();
    return rc;
}
