/* The loop-driven NATS connection and stream set-up. The libuv adapter header
 * defines functions, so it is included here and nowhere else
 * (docs/stack-facts.md, 'nats.c: adapter header in one file'). */
#include <kopt/nats.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/adapters/libuv.h>

#include <kopt/log.h>
#include <kopt/nats_servers.h>
#include <kopt/url.h>

struct kopt_nats {
    natsConnection *nc;
    uv_async_t wake; /* state changes come from nats.c threads */
    _Atomic int connected;
    _Atomic int closing; /* kopt_nats_close was called: callbacks do nothing */
    int reported;        /* last state given to cb; loop thread only */
    kopt_nats_t *next;   /* in the graveyard after close */
    kopt_nats_state_fn cb;
    void *data;
};

static pthread_once_t adapter_once = PTHREAD_ONCE_INIT;

/* Closed handles wait here until kopt_nats_shutdown(): nats.c may still call
 * a connection's callbacks from its own threads after natsConnection_Close
 * returns, and only nats_CloseAndWait() says they have all finished. */
static pthread_mutex_t graveyard_lock = PTHREAD_MUTEX_INITIALIZER;
static kopt_nats_t *graveyard;

static void adapter_init(void)
{
    natsLibuv_Init();
}

static void set_state(kopt_nats_t *n, int up)
{
    if (atomic_load(&n->closing))
        return;
    atomic_store(&n->connected, up);
    uv_async_send(&n->wake);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    set_state(closure, 1);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    set_state(closure, 0);
}


static void on_freed(uv_handle_t *h)
{
    free(h->data);
}


static void on_wake(uv_async_t *a)
{
    kopt_nats_t *n = a->data;
    int up = atomic_load(&n->connected);

    if (atomic_load(&n->closing))
        return;
    if (up == n->reported)
        return;
    n->reported = up;
    if (up)
        kopt_log_info("NATS connected");
    else
        kopt_log_warn("NATS connection lost, reconnecting");
    if (n->cb)
        n->cb(n->data, up);
}

static int options(uv_loop_t *loop, const char *url, const char *name, kopt_nats_t *n,
                   natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);

    if (s == NATS_OK)
        s = kopt_nats_servers(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, loop, natsLibuv_Attach, natsLibuv_Read, natsLibuv_Write,
                                     natsLibuv_Detach);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* forever: we are a server */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 500);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, 250, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, n);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_connected, n);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    *out = o;
    return 0;
}

int kopt_nats_connect(uv_loop_t *loop, const char *url, const char *name, kopt_nats_state_fn cb,
                      void *data, kopt_nats_t **out)
{
    kopt_nats_t *n = calloc(1, sizeof(*n));
    natsOptions *o;
    natsStatus s;
    int r;

    if (!n)
        return -ENOMEM;
    pthread_once(&adapter_once, adapter_init);
    natsLibuv_SetThreadLocalLoop(loop);
    n->cb = cb;
    n->data = data;
    r = options(loop, url, name, n, &o);
    if (r < 0) {
        free(n);
        return r;
    }
    uv_async_init(loop, &n->wake, on_wake);
    n->wake.data = n;
    s = natsConnection_Connect(&n->nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        set_state(n, 1);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        kopt_log_warn("NATS not reachable yet, retrying in the background",
                      KOPT_STR("url", KOPT_URL_REDACTED(url)));
    } else {
        kopt_log_error("NATS connect failed", KOPT_STR("url", KOPT_URL_REDACTED(url)),
                       KOPT_STR("status", natsStatus_GetText(s)));
        uv_close((uv_handle_t *)&n->wake, on_freed);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

natsConnection *kopt_nats_conn(kopt_nats_t *n)
{
    return n->nc;
}

int kopt_nats_connected(const kopt_nats_t *n)
{
    return atomic_load(&n->connected);
}

void kopt_nats_close(kopt_nats_t *n, int64_t flush_ms)
{
    if (!n)
        return;
    if (atomic_load(&n->connected))
        natsConnection_FlushTimeout(n->nc, flush_ms);
    atomic_store(&n->closing, 1);
    natsConnection_Close(n->nc);
    natsConnection_Destroy(n->nc);
    n->nc = NULL;
    uv_close((uv_handle_t *)&n->wake, NULL);
    pthread_mutex_lock(&graveyard_lock);
    n->next = graveyard;
    graveyard = n;
    pthread_mutex_unlock(&graveyard_lock);
}


void kopt_nats_shutdown(int64_t timeout_ms)
{
    kopt_nats_t *n;

    if (nats_CloseAndWait(timeout_ms) != NATS_OK)
        return; /* threads may still run: keep the handles (a bounded leak at exit) */
    pthread_mutex_lock(&graveyard_lock);
    n = graveyard;
    graveyard = NULL;
    pthread_mutex_unlock(&graveyard_lock);
    while (n) {
        kopt_nats_t *next = n->next;
        free(n);
        n = next;
    }
}

typedef struct {
    uv_work_t work;
    char *url;
    const kopt_stream_spec_t *spec;
    void (*done)(void *data, int status, const char *message);
    void *data;
    int status;
    char message[300];
} ensure_t;

static void fill_config(jsStreamConfig *c, const kopt_stream_spec_t *spec, const char **subjects)
{
    jsStreamConfig_Init(c);
    c->Name = spec->name;
    subjects[0] = spec->subject;
    c->Subjects = subjects;
    c->SubjectsLen = 1;
    c->Storage = spec->memory ? js_MemoryStorage : js_FileStorage;
    c->Replicas = spec->replicas > 0 ? spec->replicas : 1;
    c->MaxAge = (int64_t)spec->max_age_ms * 1000000;        /* nanoseconds */
    c->Duplicates = (int64_t)spec->duplicates_ms * 1000000; /* nanoseconds */
    c->MaxBytes = spec->max_bytes > 0 ? spec->max_bytes : -1;
}

/* Worker thread: blocking JetStream API on a plain connection. */
static void ensure_work(uv_work_t *w)
{
    ensure_t *e = w->data;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    const char *subjects[1];
    const char *what = "connect";
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);

    if (s == NATS_OK)
        s = kopt_nats_servers(o, e->url); /* a cluster's URL list too */
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);

    if (s == NATS_OK) {
        what = "JetStream context";
        s = natsConnection_JetStream(&js, nc, NULL);
    }
    if (s == NATS_OK) {
        fill_config(&cfg, e->spec, subjects);
        what = "update stream";
        s = js_UpdateStream(&si, js, &cfg, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
            what = "add stream";
            jerr = 0;
            s = js_AddStream(&si, js, &cfg, NULL, &jerr);
        }
    }
    if (s == NATS_OK) {
        e->status = 0;
        snprintf(e->message, sizeof(e->message), "stream %s ready (%s, %d replicas)", e->spec->name,
                 e->spec->memory ? "memory" : "file", (int)cfg.Replicas);
    } else {
        e->status = s == NATS_NO_SERVER || s == NATS_TIMEOUT ? -ENOTCONN : -EIO;
        snprintf(e->message, sizeof(e->message), "%s %s: %s (JetStream error %d)", what,
                 e->spec->name, natsStatus_GetText(s), (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void ensure_after(uv_work_t *w, int status)
{
    ensure_t *e = w->data;

    if (status == UV_ECANCELED) {
        e->status = -ECANCELED;
        snprintf(e->message, sizeof(e->message), "cancelled");
    }
    e->done(e->data, e->status, e->message);
    free(e->url);
    free(e);
}

int kopt_nats_ensure_stream(uv_loop_t *loop, const char *url, const kopt_stream_spec_t *spec,
                            void (*done)(void *data, int status, const char *message), void *data)
{
    ensure_t *e = calloc(1, sizeof(*e));

    if (!e || !(e->url = strdup(url))) {
        free(e);
        return -ENOMEM;
    }
    e->spec = spec;
    e->done = done;
    e->data = data;
    e->work.data = e;
    return uv_queue_work(loop, &e->work, ensure_work, ensure_after);
}
