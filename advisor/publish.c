/* Publishing results for integrations: each workload's kopt.v1.Recommendation
 * as protobuf on kopt.recommendations.<cluster>.<namespace> (stream
 * KOPT_RECOMMENDATIONS), de-duplicated by a Nats-Msg-Id made of the analysis
 * id and the workload. It runs on the analysis worker thread (or the CLI),
 * never on the loop, with a plain connection of its own: blocking JetStream
 * calls are fine there (docs/stack-facts.md, 'nats.c: blocking calls on the
 * loop'). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/nats_servers.h>
#include <kopt/names.h>
#include <kopt/url.h>

#include "advisor.h"

#define PUBLISH_WINDOW 1024
#define PUBLISH_WAIT_MS 30000

struct adv_publisher {
    const char *url;
    natsConnection *nc;
    jsCtx *js;
    atomic_uint failed;
    char last_error[200];
};

void adv_stream_spec(const adv_settings_t *s, kopt_stream_spec_t *spec)
{
    *spec = (kopt_stream_spec_t){
        .name = ADV_STREAM_NAME,
        .subject = ADV_STREAM_SUBJECTS,
        .memory = 0,
        .replicas = (int)s->stream_replicas,
        .max_age_ms = s->stream_max_age_ms,
        .max_bytes = 0,
        .duplicates_ms = 10 * 60 * 1000,
    };
}

int adv_publisher_new(const char *url, adv_publisher_t **out)
{
    adv_publisher_t *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->url = url;
    atomic_init(&p->failed, 0);
    *out = p;
    return 0;
}

/* nats.c thread: a publish that failed for good (the library frees it). */
static void on_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    adv_publisher_t *p = closure;

    (void)js;
    if (atomic_fetch_add(&p->failed, 1) == 0)
        snprintf(p->last_error, sizeof(p->last_error), "%s",
                 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

static void disconnect(adv_publisher_t *p)
{
    jsCtx_Destroy(p->js);
    natsConnection_Destroy(p->nc);
    p->js = NULL;
    p->nc = NULL;
}

static int connect_js(adv_publisher_t *p, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    jsOptions jo;
    natsStatus s;

    if (p->nc && natsConnection_Status(p->nc) == NATS_CONN_STATUS_CONNECTED)
        return 0;
    disconnect(p);
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = kopt_nats_servers(o, p->url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "kopt-advisor-publisher");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, 10);
    if (s == NATS_OK)
        s = natsConnection_Connect(&p->nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = PUBLISH_WINDOW;
        jo.PublishAsync.ErrHandler = on_error;
        jo.PublishAsync.ErrHandlerClosure = p;
        jo.Wait = 10000;
        s = natsConnection_JetStream(&p->js, p->nc, &jo);
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS at %s: %s", KOPT_URL_REDACTED(p->url), natsStatus_GetText(s));
        disconnect(p);
        return -ECONNREFUSED;
    }
    return 0;
}

static int publish_one(adv_publisher_t *p, const Kopt__V1__Recommendation *rec)
{
    const Kopt__V1__WorkloadRef *w = rec->workload;
    char subject[512], token[256], id[1024];
    natsMsg *msg = NULL;
    size_t len = kopt__v1__recommendation__get_packed_size(rec);
    uint8_t *buf = malloc(len ? len : 1);
    natsStatus s;

    if (!buf)
        return -ENOMEM;
    kopt__v1__recommendation__pack(rec, buf);
    if (kopt_name_subject_token(w->cluster, token, sizeof(token)) < 0) {
        free(buf);
        return -EINVAL;
    }
    snprintf(subject, sizeof(subject), "%s.%s.%s", ADV_SUBJECT_PREFIX, token, w->namespace_);
    snprintf(id, sizeof(id), "%s/%s/%s/%s/%s", rec->analysis_id, w->cluster, w->namespace_,
             adv_kind_name(w->kind), w->name);
    s = natsMsg_Create(&msg, subject, NULL, (const char *)buf, (int)len);
    free(buf);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &msg, NULL);
    natsMsg_Destroy(msg); /* NULL once the library took it */
    return s == NATS_OK ? 0 : -EIO;
}

int adv_publisher_send(adv_publisher_t *p, Kopt__V1__Recommendation *const *recs, size_t n,
                       size_t *sent, char *err, size_t errlen)
{
    jsPubOptions po;
    size_t queued = 0;
    natsStatus s;
    int r;

    *sent = 0;
    r = connect_js(p, err, errlen);
    if (r < 0)
        return r;
    atomic_store(&p->failed, 0);
    for (size_t i = 0; i < n; i++) {
        r = publish_one(p, recs[i]);
        if (r < 0) {
            snprintf(err, errlen, "publish of %s/%s failed: %s", recs[i]->workload->namespace_,
                     recs[i]->workload->name, r == -EINVAL ? "bad cluster name" : "NATS error");
            break;
        }
        queued++;
    }
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    s = js_PublishAsyncComplete(p->js, &po);
    if (s != NATS_OK && r == 0) {
        snprintf(err, errlen, "JetStream did not acknowledge every result in %d ms: %s",
                 PUBLISH_WAIT_MS, natsStatus_GetText(s));
        r = -ETIMEDOUT;
    }
    if (s != NATS_OK) {
        natsMsgList pending = {0};

        /* Give up on what is left; the next run publishes again. */
        if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
            queued -= (size_t)pending.Count < queued ? (size_t)pending.Count : queued;
            natsMsgList_Destroy(&pending);
        }
    }
    if (atomic_load(&p->failed) > 0 && r == 0) {
        snprintf(err, errlen, "%u results were refused by JetStream: %s", atomic_load(&p->failed),
                 p->last_error);
        r = -EIO;
    }
    *sent = queued - (atomic_load(&p->failed) < queued ? atomic_load(&p->failed) : queued);
    return r;
}

void adv_publisher_free(adv_publisher_t *p)
{
    if (!p)
        return;
    disconnect(p);
    free(p);
}
