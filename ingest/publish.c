/* JetStream async publishing for ingest. The window is ours, kept below
 * nats.c's MaxPending so a publish never stalls the loop (docs/stack-facts.md,
 * 'nats.c: MaxPending on the loop'); publishes are matched to their PubAcks
 * by the natsMsg pointer, which stays alive until the AckHandler hands it
 * back. */
#include "publish.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>

typedef struct {
    natsMsg *msg; /* NULL: free slot */
    void *ref;
} slot_t;

typedef struct completion {
    natsMsg *msg;
    int status, duplicate;
    char why[128];
    struct completion *next;
} completion_t;

struct ingest_publisher {
    jsCtx *js;
    ingest_publisher_opts_t opts;
    ingest_publish_done_fn done;
    void *data;
    slot_t *slots; /* open addressing, keyed by msg pointer; loop thread */
    size_t cap;    /* power of two, >= 2 * window */
    uint32_t inflight;
    uv_async_t wake;
    pthread_mutex_t lock; /* guards the completion list */
    completion_t *head, *tail;
};

static size_t slot_of(const ingest_publisher_t *p, const natsMsg *m)
{
    uintptr_t h = (uintptr_t)m;

    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 7) & (p->cap - 1);
}

static void slot_put(ingest_publisher_t *p, natsMsg *m, void *ref)
{
    size_t i = slot_of(p, m);

    while (p->slots[i].msg)
        i = (i + 1) & (p->cap - 1);
    p->slots[i] = (slot_t){m, ref};
}

/* Removes and returns the ref for `m`, keeping the probe chains intact. */
static int slot_take(ingest_publisher_t *p, const natsMsg *m, void **ref)
{
    size_t i = slot_of(p, m), j;

    while (p->slots[i].msg && p->slots[i].msg != m)
        i = (i + 1) & (p->cap - 1);
    if (!p->slots[i].msg)
        return -ENOENT;
    *ref = p->slots[i].ref;
    p->slots[i].msg = NULL;
    /* Re-insert the rest of the cluster (deletion without tombstones). */
    for (j = (i + 1) & (p->cap - 1); p->slots[j].msg; j = (j + 1) & (p->cap - 1)) {
        slot_t s = p->slots[j];
        p->slots[j].msg = NULL;
        slot_put(p, s.msg, s.ref);
    }
    return 0;
}

/* nats.c thread: queue the result for the loop. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    ingest_publisher_t *p = closure;
    completion_t *c = calloc(1, sizeof(*c));

    (void)js;
    if (!c) { /* cannot report it; the publish will look timed out at shutdown */
        natsMsg_Destroy(msg);
        return;
    }
    c->msg = msg;
    if (pae) {
        c->status = pae->Err == NATS_TIMEOUT ? -ETIMEDOUT : -EIO;
        snprintf(c->why, sizeof(c->why), "%s",
                 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    } else {
        c->duplicate = pa && pa->Duplicate;
    }
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    pthread_mutex_unlock(&p->lock);
    uv_async_send(&p->wake);
}

static void complete(ingest_publisher_t *p, completion_t *c)
{
    void *ref;

    if (slot_take(p, c->msg, &ref) == 0) {
        p->inflight--;
        p->done(ref, c->status, c->duplicate, c->why, p->data);
    }
    natsMsg_Destroy(c->msg);
    free(c);
}

static void on_wake(uv_async_t *a)
{
    ingest_publisher_t *p = a->data;
    completion_t *c;

    pthread_mutex_lock(&p->lock);
    c = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (c) {
        completion_t *next = c->next;
        complete(p, c);
        c = next;
    }
}

int ingest_publisher_new(uv_loop_t *loop, kopt_nats_t *nats, const ingest_publisher_opts_t *opts,
                         ingest_publish_done_fn done, void *data, ingest_publisher_t **out)
{
    ingest_publisher_t *p = calloc(1, sizeof(*p));
    jsOptions jo;

    if (!p)
        return -ENOMEM;
    p->opts = *opts;
    if (p->opts.window == 0)
        p->opts.window = 1;
    for (p->cap = 16; p->cap < 2 * (size_t)p->opts.window; p->cap *= 2)
        ;
    p->slots = calloc(p->cap, sizeof(*p->slots));
    jsOptions_Init(&jo);
    jo.Wait = opts->timeout_ms;
    jo.PublishAsync.MaxPending = (int64_t)p->opts.window * 2;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    if (!p->slots || natsConnection_JetStream(&p->js, kopt_nats_conn(nats), &jo) != NATS_OK) {
        free(p->slots);
        free(p);
        return -ENOMEM;
    }
    p->done = done;
    p->data = data;
    pthread_mutex_init(&p->lock, NULL);
    uv_async_init(loop, &p->wake, on_wake);
    p->wake.data = p;
    *out = p;
    return 0;
}

int ingest_publisher_send(ingest_publisher_t *p, const char *subject, const char *msg_id,
                          const char *traceparent, const uint8_t *data, size_t len, void *ref)
{
    natsMsg *m = NULL, *key;
    jsPubOptions po;
    natsStatus s;

    if (p->inflight >= p->opts.window)
        return -EAGAIN;
    s = natsMsg_Create(&m, subject, NULL, (const char *)data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (s == NATS_OK && traceparent && traceparent[0])
        s = natsMsgHeader_Set(m, "traceparent", traceparent); /* the aggregator's parent */
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    jsPubOptions_Init(&po);
    po.MaxWait = p->opts.timeout_ms;
    /* Registered first: the ack may be queued before the call returns. */
    key = m;
    slot_put(p, key, ref);
    s = js_PublishMsgAsync(p->js, &m, &po);
    if (s != NATS_OK) {
        void *unused;
        slot_take(p, key, &unused);
        natsMsg_Destroy(m);
        switch (s) {
        case NATS_INSUFFICIENT_BUFFER:
            return -ENOBUFS;
        case NATS_CONNECTION_CLOSED:
        case NATS_NOT_YET_CONNECTED:
            return -ENOTCONN;
        default:
            return -EIO;
        }
    }
    p->inflight++;
    return 0;
}

uint32_t ingest_publisher_inflight(const ingest_publisher_t *p)
{
    return p->inflight;
}

int ingest_publisher_has_room(const ingest_publisher_t *p)
{
    return p->inflight < p->opts.window;
}

static void on_closed(uv_handle_t *h)
{
    ingest_publisher_t *p = h->data;

    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p);
}

void ingest_publisher_free(ingest_publisher_t *p)
{
    if (!p)
        return;
    on_wake(&p->wake); /* results that already arrived */
    for (size_t i = 0; i < p->cap; i++)
        if (p->slots[i].msg) {
            /* nats.c still owns the message; it goes with the connection. */
            p->done(p->slots[i].ref, -ECANCELED, 0, "shutting down", p->data);
            p->slots[i].msg = NULL;
        }
    p->inflight = 0;
    jsCtx_Destroy(p->js);
    uv_close((uv_handle_t *)&p->wake, on_closed);
}
