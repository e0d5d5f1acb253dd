/* Baseline (b): the same batch bytes published straight to JetStream with
 * nats.c's async publish, a window of 4096 unacked messages and a
 * Nats-Msg-Id on each, into a stream of our own (file storage, like
 * KOPT_METRICS) on the same nats-server. It is the storage side's ceiling
 * with no gRPC, TLS or validation in front. The stream is deleted after. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "loadgen.h"

#define WINDOW 4096

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t room;
    int inflight;
    uint64_t acked, windows, bytes, errors;
} pub_state_t;

typedef struct {
    pub_state_t *st;
    size_t windows, bytes;
} msg_info_t;

/* nats.c thread: one PubAck (or failure) per publish. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    pub_state_t *st = closure;
    size_t len = (size_t)natsMsg_GetDataLength(msg);

    (void)js;
    (void)pa;
    pthread_mutex_lock(&st->lock);
    st->inflight--;
    if (pae) {
        if (st->errors++ == 0)
            fprintf(stderr, "kopt-loadgen: JetStream baseline: publish failed: %s\n",
                    pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    } else {
        st->acked++;
        st->bytes += len;
    }
    pthread_cond_signal(&st->room);
    pthread_mutex_unlock(&st->lock);
    natsMsg_Destroy(msg);
}

static int setup(const char *url, const char *stream, const char *subjects, pub_state_t *st,
                 natsConnection **nc, jsCtx **js)
{
    jsOptions jo;
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    const char *subj[1] = {subjects};
    natsStatus s = natsConnection_ConnectTo(nc, url);

    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = WINDOW * 2; /* our window stays below: never stalls */
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = st;
        s = natsConnection_JetStream(js, *nc, &jo);
    }
    if (s == NATS_OK) {
        jsStreamConfig_Init(&sc);
        sc.Name = stream;
        sc.Subjects = subj;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Duplicates = (int64_t)600 * 1000000000; /* 10 min, as ingest sets KOPT_METRICS */
        s = js_AddStream(NULL, *js, &sc, NULL, &jerr);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "kopt-loadgen: JetStream baseline: %s (jerr %d) at %s\n",
                natsStatus_GetText(s), (int)jerr, url);
        return -EIO;
    }
    return 0;
}

int lg_baseline_nats(const lg_opts_t *o, const lg_node_t *nodes, lg_baseline_result_t *res)
{
    pub_state_t st = {.lock = PTHREAD_MUTEX_INITIALIZER, .room = PTHREAD_COND_INITIALIZER};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    char stream[64], subjects[64], subject[200], id[200];
    uint8_t *buf = NULL;
    size_t cap = LG_SUFFIX_MAX;
    uint64_t t0, end, now, epoch, seq = 0;
    struct timespec rt;
    jsPubOptions po;
    int r;

    memset(res, 0, sizeof(*res));
    snprintf(stream, sizeof(stream), "KOPT_BENCH_%d", (int)getpid());
    snprintf(subjects, sizeof(subjects), "kopt.bench.%d.>", (int)getpid());
    r = setup(o->nats_url, stream, subjects, &st, &nc, &js);
    /* Room for the longest variant of any node: each is sent in turn. */
    for (int i = 0; r == 0 && i < o->agents; i++)
        for (int v = 0; v < LG_VARIANTS; v++)
            if (nodes[i].body_len[v] + LG_SUFFIX_MAX > cap)
                cap = nodes[i].body_len[v] + LG_SUFFIX_MAX;
    if (r == 0 && !(buf = malloc(cap)))
        r = -ENOMEM;
    if (r < 0)
        goto out;
    clock_gettime(CLOCK_REALTIME, &rt);
    epoch = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
    t0 = lg_now_ns();
    end = t0 + (uint64_t)(o->baseline_seconds * 1e9);
    do {
        for (int i = 0; i < o->agents && r == 0; i++) {
            const lg_node_t *n = &nodes[i];
            int v = (int)(seq % LG_VARIANTS);
            size_t len;
            natsMsg *m = NULL;
            natsStatus s;
            char *dot;

            seq++;
            memcpy(buf, n->body[v], n->body_len[v]);
            len = n->body_len[v] + lg_batch_suffix(buf + n->body_len[v], epoch + (uint64_t)i, seq,
                                                   (int64_t)time(NULL), 0);
            snprintf(subject, sizeof(subject), "kopt.bench.%d.%s.%s", (int)getpid(), o->cluster,
                     n->node);
            /* The node name becomes one subject token, as ingest does it. */
            for (dot = subject + strlen(subject) - strlen(n->node); *dot; dot++)
                if (*dot == '.')
                    *dot = '_';
            snprintf(id, sizeof(id), "%s/%" PRIu64 "/%" PRIu64, o->agent_id, epoch + (uint64_t)i,
                     seq);
            pthread_mutex_lock(&st.lock);
            while (st.inflight >= WINDOW)
                pthread_cond_wait(&st.room, &st.lock);
            st.inflight++;
            pthread_mutex_unlock(&st.lock);
            s = natsMsg_Create(&m, subject, NULL, (const char *)buf, (int)len);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
            if (s == NATS_OK)
                s = js_PublishMsgAsync(js, &m, NULL);
            natsMsg_Destroy(m); /* NULL after a successful publish */
            if (s != NATS_OK) {
                fprintf(stderr, "kopt-loadgen: JetStream baseline: publish: %s\n",
                        natsStatus_GetText(s));
                r = -EIO;
            }
            res->windows += n->n_windows; /* counted when acked, below */
        }
        now = lg_now_ns();
    } while (now < end && r == 0);
    /* The interval ends when the last PubAck arrived. */
    jsPubOptions_Init(&po);
    po.MaxWait = 30000; /* ms; a lost PubAck must not hang the bench */
    if (js_PublishAsyncComplete(js, &po) != NATS_OK)
        fprintf(stderr, "kopt-loadgen: JetStream baseline: PubAcks missing after 30 s\n");
    now = lg_now_ns();
    res->seconds = (double)(now - t0) / 1e9;
    res->batches = st.acked;
    res->bytes = st.bytes;
    res->errors = st.errors;
    if (st.errors)
        res->windows = res->windows * st.acked / (st.acked + st.errors);
out:
    if (js && js_DeleteStream(js, stream, NULL, NULL) != NATS_OK)
        fprintf(stderr, "kopt-loadgen: could not delete stream %s\n", stream);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(buf);
    return r;
}
