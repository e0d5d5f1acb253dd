/* Publishing results for integrations: each workload's kopt.v1.Recommendation
 * on kopt.recommendations.<cluster>.<namespace> (stream
 * KOPT_RECOMMENDATIONS), de-duplicated by a Nats-Msg-Id made of the analysis
 * id and the workload, and into the key-value bucket kopt_recommendations;
 * then, per cluster, one kopt.v1.AnalysisCompleted on
 * kopt.recommendations.<cluster>._completed (docs/integrations.md). It runs
 * on the analysis worker thread (or the CLI), never on the loop, with a
 * plain connection of its own: blocking JetStream calls are fine there
 * (docs/stack-facts.md, 'nats.c: blocking calls on the loop'). */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>
#include <kopt/names.h>
#include <kopt/url.h>

#include "advisor.h"
#include "publish_contract.h"

#define PUBLISH_WINDOW 1024
#define PUBLISH_WAIT_MS 30000

struct adv_publisher {
    const char *url;
    kopt_nats_auth_t auth; /* a copy: settings are freed on reload */
    natsConnection *nc;
    jsCtx *js;
    atomic_uint failed;
    char last_error[200];
    int encoding;  /* ADV_ENCODING_* */
    int replicas;  /* of the KV bucket, when the advisor creates it */
    bool kv_ready; /* the bucket was found or made on this connection */
};

/* Recommendations published per cluster in one send, for the markers. */
typedef struct {
    const char *cluster;
    uint32_t count;
} cluster_count_t;

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
        .auth = &s->nats,
    };
}

int adv_publisher_new(const char *url, const kopt_nats_auth_t *auth, adv_publisher_t **out)
{
    adv_publisher_t *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    if (kopt_nats_auth_validate(url, auth) < 0) {
        free(p);
        return -EINVAL;
    }
    if (kopt_nats_auth_copy(&p->auth, auth) < 0) {
        free(p);
        return -ENOMEM;
    }
    p->url = url;
    atomic_init(&p->failed, 0);
    *out = p;
    return 0;
}

void adv_publisher_configure(adv_publisher_t *p, const adv_settings_t *s)
{
    p->encoding = s->recommendations_encoding == 1 ? ADV_ENCODING_JSON : ADV_ENCODING_PROTOBUF;
    p->replicas = (int)s->stream_replicas;
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
    p->kv_ready = false;
}

static int connect_js(adv_publisher_t *p, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    jsOptions jo;
    natsStatus s;

    if (p->nc && natsConnection_Status(p->nc) == NATS_CONN_STATUS_CONNECTED)
        return 0;
    disconnect(p);
    if (kopt_nats_options_new(p->url, "kopt-advisor-publisher", &p->auth, &o, err, errlen) < 0)
        return -EINVAL;
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
        snprintf(err, errlen, "NATS at %s: %s (%s)", KOPT_URL_REDACTED(p->url),
                 natsStatus_GetText(s), nats_GetLastError(NULL));
        disconnect(p);
        return -ECONNREFUSED;
    }
    return 0;
}

/* Queues one encoded message on the stream subject and on its KV key. */
static int publish_pair(adv_publisher_t *p, const char *subject, const char *key, const char *data,
                        size_t len, const char *type, const char *analysis_id, const char *id)
{
    char kv_subject[1024];
    natsMsg *msg = NULL;
    natsStatus s;

    snprintf(kv_subject, sizeof(kv_subject), "%s%s", ADV_KV_SUBJECT_PREFIX, key);
    s = adv_publish_message(&msg, subject, data, len, p->encoding, type, analysis_id, id);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &msg, NULL);
    natsMsg_Destroy(msg); /* NULL once the library took it */
    msg = NULL;
    /* No Nats-Msg-Id in the bucket: history 1 keeps the newest anyway. */
    if (s == NATS_OK)
        s = adv_publish_message(&msg, kv_subject, data, len, p->encoding, type, analysis_id, NULL);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &msg, NULL);
    natsMsg_Destroy(msg);
    return s == NATS_OK ? 0 : -EIO;
}

static int publish_one(adv_publisher_t *p, const Kopt__V1__Recommendation *rec)
{
    const Kopt__V1__WorkloadRef *w = rec->workload;
    char subject[512], token[256], id[1024], key[1024];
    char *data = NULL;
    size_t len = 0;
    int r;

    if (kopt_name_subject_token(w->cluster, token, sizeof(token)) < 0 ||
        adv_kv_key(w, adv_kind_name(w->kind), key, sizeof(key)) < 0)
        return -EINVAL;
    snprintf(subject, sizeof(subject), "%s.%s.%s", ADV_SUBJECT_PREFIX, token, w->namespace_);
    snprintf(id, sizeof(id), "%s/%s/%s/%s/%s", rec->analysis_id, w->cluster, w->namespace_,
             adv_kind_name(w->kind), w->name);
    r = adv_publish_encode(&rec->base, p->encoding, &data, &len);
    if (r == 0)
        r = publish_pair(p, subject, key, data, len, "kopt.v1.Recommendation", rec->analysis_id,
                         id);
    free(data);
    return r;
}

/* Counts `cluster` in `c` (at most `n` distinct names: one per record). */
static void count_cluster(cluster_count_t *c, size_t *n, const char *cluster)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(c[i].cluster, cluster) == 0) {
            c[i].count++;
            return;
        }
    c[*n] = (cluster_count_t){cluster, 1};
    (*n)++;
}

/* The end-of-analysis marker of one cluster, on the stream and in the KV. */
static int publish_completed(adv_publisher_t *p, const char *analysis_id, const cluster_count_t *c)
{
    Kopt__V1__AnalysisCompleted m = KOPT__V1__ANALYSIS_COMPLETED__INIT;
    Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char subject[512], token[256], id[512], key[512];
    struct timespec ts;
    char *data = NULL;
    size_t len = 0;
    int r;

    if (kopt_name_subject_token(c->cluster, token, sizeof(token)) < 0 ||
        adv_kv_key_part(c->cluster, key, sizeof(key) - sizeof(ADV_COMPLETED_TOKEN) - 1) < 0)
        return -EINVAL;
    strcat(key, "." ADV_COMPLETED_TOKEN);
    snprintf(subject, sizeof(subject), "%s.%s.%s", ADV_SUBJECT_PREFIX, token, ADV_COMPLETED_TOKEN);
    snprintf(id, sizeof(id), "%s/%s/%s", analysis_id, c->cluster, ADV_COMPLETED_TOKEN);
    clock_gettime(CLOCK_REALTIME, &ts);
    at.seconds = ts.tv_sec;
    at.nanos = (int32_t)ts.tv_nsec;
    m.analysis_id = (char *)analysis_id;
    m.cluster = (char *)c->cluster;
    m.recommendation_count = c->count;
    m.completed_at = &at;
    r = adv_publish_encode(&m.base, p->encoding, &data, &len);
    if (r == 0)
        r = publish_pair(p, subject, key, data, len, "kopt.v1.AnalysisCompleted", analysis_id, id);
    free(data);
    return r;
}

/* Waits for every PubAck; 0, or -ETIMEDOUT with `err` (what is left is
 * dropped: the next run publishes again). *left: messages never acked. */
static int wait_acks(adv_publisher_t *p, size_t *left, char *err, size_t errlen)
{
    jsPubOptions po;
    natsStatus s;

    *left = 0;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    s = js_PublishAsyncComplete(p->js, &po);
    if (s == NATS_OK)
        return 0;
    snprintf(err, errlen, "JetStream did not acknowledge every result in %d ms: %s",
             PUBLISH_WAIT_MS, natsStatus_GetText(s));
    {
        natsMsgList pending = {0};

        if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
            *left = (size_t)pending.Count;
            natsMsgList_Destroy(&pending);
        }
    }
    return -ETIMEDOUT;
}

int adv_publisher_send(adv_publisher_t *p, Kopt__V1__Recommendation *const *recs, size_t n,
                       size_t *sent, char *err, size_t errlen)
{
    cluster_count_t *clusters;
    size_t queued = 0, n_clusters = 0, left = 0, lost;
    char scratch[200]; /* the first error wins */
    int r;

    *sent = 0;
    r = connect_js(p, err, errlen);
    if (r == 0 && !p->kv_ready) {
        r = adv_kv_ensure(p->js, p->replicas, err, errlen);
        p->kv_ready = r == 0;
    }
    if (r < 0)
        return r;
    clusters = calloc(n ? n : 1, sizeof(*clusters));
    if (!clusters)
        return -ENOMEM;
    atomic_store(&p->failed, 0);
    for (size_t i = 0; i < n; i++) {
        r = publish_one(p, recs[i]);
        if (r < 0) {
            snprintf(err, errlen, "publish of %s/%s failed: %s", recs[i]->workload->namespace_,
                     recs[i]->workload->name,
                     r == -EINVAL ? "bad cluster or workload name" : "NATS error");
            break;
        }
        count_cluster(clusters, &n_clusters, recs[i]->workload->cluster);
        queued++;
    }
    if (wait_acks(p, &left, r == 0 ? err : scratch, r == 0 ? errlen : sizeof(scratch)) < 0 &&
        r == 0)
        r = -ETIMEDOUT;
    if (atomic_load(&p->failed) > 0 && r == 0) {
        snprintf(err, errlen,
                 "%u messages (results or their KV copies) were refused by JetStream: %s",
                 atomic_load(&p->failed), p->last_error);
        r = -EIO;
    }
    /* Two messages a result (stream and bucket); count a result lost when
     * either was. */
    lost = atomic_load(&p->failed) + left;
    *sent = queued - (lost < queued ? lost : queued);
    /* The markers say "complete": only when every result is stored. */
    for (size_t i = 0; r == 0 && i < n_clusters; i++) {
        r = publish_completed(p, recs[0]->analysis_id, &clusters[i]);
        if (r < 0)
            snprintf(err, errlen, "publish of the end-of-analysis marker of %s failed",
                     clusters[i].cluster);
    }
    if (r == 0 && n_clusters > 0 && wait_acks(p, &left, err, errlen) < 0)
        r = -ETIMEDOUT;
    if (r == 0 && atomic_load(&p->failed) > 0) {
        snprintf(err, errlen, "an end-of-analysis marker was refused by JetStream: %s",
                 p->last_error);
        r = -EIO;
    }
    free(clusters);
    return r;
}

void adv_publisher_free(adv_publisher_t *p)
{
    if (!p)
        return;
    disconnect(p);
    kopt_nats_auth_clear(&p->auth);
    free(p);
}
