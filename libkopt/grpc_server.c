/* gRPC server plumbing shared by ingest and advisor: request slots per
 * method, unary replies, UNIMPLEMENTED for unknown methods (without a pending
 * catch-all request a client would hang until its deadline), and gRPC's
 * shutdown order; docs/stack-facts.md, 'gRPC: catch-all calls' and 'gRPC:
 * server shutdown order'. See kopt/grpc_server.h. */
#include <kopt/grpc_server.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include <kopt/log.h>
#include <kopt/metrics.h>
#include <kopt/util.h>

/* OK (0) .. UNAUTHENTICATED (16). */
#define STATUS_COUNT (GRPC_STATUS_UNAUTHENTICATED + 1)

typedef struct kopt_grpc_method {
    const char *path;
    void *handle; /* from grpc_server_register_method */
    kopt_grpc_unary_fn unary;
    kopt_grpc_stream_fn stream;
    void *user;
    struct kopt_grpc_method *next;
    /* Call metrics (no-op handles without a registry); handled per code is
     * looked up at the first call that ends with it. */
    char service[128], name[128];
    kopt_metric_counter_t *started;
    kopt_metric_histogram_t *seconds;
    _Atomic(kopt_metric_counter_t *) handled[GRPC_STATUS_UNAUTHENTICATED + 1];
} method_t;

struct kopt_grpc_server {
    uv_loop_t *loop;
    grpc_server *srv;
    kopt_grpc_loop_t *gl;
    method_t *methods;
    int started, stopping;
    kopt_grpc_tag_t shutdown_tag;
    uv_timer_t deadline;
    void (*done)(void *arg);
    void *done_arg;
    _Atomic uint64_t by_status[STATUS_COUNT];
    kopt_metric_family_t *f_started, *f_handled, *f_seconds; /* NULL without metrics */
};

struct kopt_grpc_call {
    kopt_grpc_server_t *server;
    method_t *m; /* NULL: the catch-all slot */
    grpc_call *call;
    grpc_call_details details; /* catch-all only */
    grpc_metadata_array metadata;
    gpr_timespec deadline;
    grpc_byte_buffer *payload; /* unary request */
    grpc_byte_buffer *reply;
    grpc_slice reply_details;
    grpc_status_code status;
    int status_set, counted;
    uint64_t start_ns; /* uv_hrtime() when the call arrived */
    int cancelled;
    kopt_grpc_tag_t request_tag; /* loop */
    kopt_grpc_tag_t done_tag;    /* CQ thread */
};

/* gRPC channel args from our options; `args` has room for 5. */
static size_t channel_args(const kopt_grpc_server_opts_t *o, grpc_arg *args)
{
    size_t n = 0;

#define INT_ARG(k, v)                                                                              \
    args[n++] = (grpc_arg)                                                                         \
    {                                                                                              \
        .type = GRPC_ARG_INTEGER, .key = (k), .value.integer = (v)                                 \
    }
    if (o && o->max_recv_bytes > 0)
        INT_ARG(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                o->max_recv_bytes < INT32_MAX ? (int)o->max_recv_bytes : INT32_MAX);
    if (o && o->keepalive_time_ms > 0) {
        INT_ARG(GRPC_ARG_KEEPALIVE_TIME_MS, (int)o->keepalive_time_ms);
        INT_ARG(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    }
    if (o && o->keepalive_min_ping_ms > 0) {
        INT_ARG(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                (int)o->keepalive_min_ping_ms);
        INT_ARG(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
    }
#undef INT_ARG
    return n;
}

int kopt_grpc_server_new(uv_loop_t *loop, const kopt_grpc_server_opts_t *opts,
                         kopt_grpc_server_t **out)
{
    kopt_grpc_server_t *s = calloc(1, sizeof(*s));
    grpc_arg arg[5];
    grpc_channel_args args = {.args = arg};
    int r;

    if (!s)
        return -ENOMEM;
    s->loop = loop;
    if (opts && opts->metrics) {
        const double *b;
        size_t nb;
        const char *labels = "grpc_type,grpc_service,grpc_method";

        b = kopt_metrics_latency_buckets(&nb);
        r = kopt_metrics_counter(opts->metrics, "grpc_server_started_total",
                                 "RPCs started on the server.", labels, &s->f_started);
        if (r == 0)
            r = kopt_metrics_counter(opts->metrics, "grpc_server_handled_total",
                                     "RPCs completed on the server, by gRPC status code.",
                                     "grpc_type,grpc_service,grpc_method,grpc_code", &s->f_handled);
        if (r == 0)
            r = kopt_metrics_histogram(opts->metrics, "grpc_server_handling_seconds",
                                       "Time from an RPC's arrival to its final status, in "
                                       "seconds.",
                                       labels, b, nb, &s->f_seconds);
        if (r < 0) {
            free(s);
            return r;
        }
    }
    r = kopt_grpc_loop_new(loop, &s->gl);
    if (r < 0) {
        free(s);
        return r;
    }
    args.num_args = channel_args(opts, arg);
    s->srv = grpc_server_create(&args, NULL);
    grpc_server_register_completion_queue(s->srv, kopt_grpc_loop_cq(s->gl), NULL);
    uv_timer_init(loop, &s->deadline);
    s->deadline.data = s;
    *out = s;
    return 0;
}

static const char *method_type(const method_t *m)
{
    return m->unary ? "unary" : "bidi_stream";
}

/* "/kopt.v1.Ingest/Push" -> service "kopt.v1.Ingest", name "Push"; the call
 * metrics' children with those labels. */
static void method_metrics(kopt_grpc_server_t *s, method_t *m)
{
    const char *p = m->path[0] == '/' ? m->path + 1 : m->path;
    const char *slash = strrchr(p, '/');
    size_t sl = slash ? (size_t)(slash - p) : 0;

    snprintf(m->service, sizeof(m->service), "%.*s", (int)sl, p);
    snprintf(m->name, sizeof(m->name), "%s", slash ? slash + 1 : p);
    m->started = kopt_metric_counter_with(s->f_started, method_type(m), m->service, m->name);
    m->seconds = kopt_metric_histogram_with(s->f_seconds, method_type(m), m->service, m->name);
    for (size_t i = 0; i < STATUS_COUNT; i++)
        atomic_init(&m->handled[i], NULL);
    /* OK from the start, so rate() sees the first calls. */
    atomic_store(&m->handled[GRPC_STATUS_OK],
                 kopt_metric_counter_with(s->f_handled, method_type(m), m->service, m->name, "OK"));
}

/* grpc_code values as go-grpc-prometheus writes them (Go's codes.Code
 * String()), so queries written for it match ours. */
static const char *const code_label[STATUS_COUNT] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

/* Any thread: a call of a registered method ended with c->status. */
static void count_done(kopt_grpc_call_t *c)
{
    method_t *m = c->m;
    kopt_metric_counter_t *h;
    grpc_status_code code = c->status;

    if (!m || c->counted || !c->start_ns)
        return;
    c->counted = 1;
    if (code < 0 || code >= STATUS_COUNT)
        code = GRPC_STATUS_UNKNOWN;
    h = atomic_load(&m->handled[code]);
    if (!h) { /* the registry returns the same child to racing threads */
        h = kopt_metric_counter_with(c->server->f_handled, method_type(m), m->service, m->name,
                                     code_label[code]);
        atomic_store(&m->handled[code], h);
    }
    kopt_metric_counter_inc(h);
    kopt_metric_histogram_observe(m->seconds, (double)(uv_hrtime() - c->start_ns) / 1e9);
}

static int add_method(kopt_grpc_server_t *s, const char *path, kopt_grpc_unary_fn unary,
                      kopt_grpc_stream_fn stream, void *user)
{
    method_t *m;

    if (s->started)
        return -EBUSY;
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->path = path;
    m->unary = unary;
    m->stream = stream;
    m->user = user;
    method_metrics(s, m);
    m->handle = grpc_server_register_method(
        s->srv, path, NULL,
        unary ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    if (!m->handle) {
        free(m);
        return -EEXIST;
    }
    m->next = s->methods;
    s->methods = m;
    return 0;
}

int kopt_grpc_server_add_unary(kopt_grpc_server_t *s, const char *path, kopt_grpc_unary_fn fn,
                               void *user)
{
    return add_method(s, path, fn, NULL, user);
}

int kopt_grpc_server_add_stream(kopt_grpc_server_t *s, const char *path, kopt_grpc_stream_fn fn,
                                void *user)
{
    return add_method(s, path, NULL, fn, user);
}

int kopt_grpc_server_listen(kopt_grpc_server_t *s, const char *addr, grpc_server_credentials *creds,
                            int *port)
{
    int p = grpc_server_add_http2_port(s->srv, addr, creds);

    grpc_server_credentials_release(creds);
    if (p <= 0)
        return -EADDRINUSE;
    if (port)
        *port = p;
    return 0;
}

static void free_call(kopt_grpc_call_t *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    grpc_slice_unref(c->reply_details);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->metadata);
    free(c);
}

static void on_request(kopt_grpc_tag_t *tag, int ok);

/* One pending request slot for `m` (NULL: any unregistered method). */
static void post_request(kopt_grpc_server_t *s, method_t *m)
{
    kopt_grpc_call_t *c = calloc(1, sizeof(*c));
    grpc_completion_queue *cq = kopt_grpc_loop_cq(s->gl);
    grpc_call_error e;

    if (!c) {
        kopt_log_error("out of memory posting a gRPC request slot");
        return;
    }
    c->server = s;
    c->m = m;
    c->reply_details = grpc_empty_slice();
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->metadata);
    kopt_grpc_tag_init(&c->request_tag, on_request, 1);
    if (m)
        e = grpc_server_request_registered_call(s->srv, m->handle, &c->call, &c->deadline,
                                                &c->metadata, m->unary ? &c->payload : NULL, cq, cq,
                                                &c->request_tag);
    else
        e = grpc_server_request_call(s->srv, &c->call, &c->details, &c->metadata, cq, cq,
                                     &c->request_tag);
    if (e != GRPC_CALL_OK) {
        kopt_log_error("gRPC request slot refused", KOPT_INT("grpc_call_error", e));
        free_call(c);
    }
}

/* Reads a whole byte buffer into a slice the caller unrefs. */
static grpc_slice read_payload(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    grpc_slice sl;

    if (!grpc_byte_buffer_reader_init(&r, bb))
        return grpc_empty_slice();
    sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return sl;
}

static void on_request(kopt_grpc_tag_t *tag, int ok)
{
    kopt_grpc_call_t *c = kopt_container_of(tag, kopt_grpc_call_t, request_tag);
    kopt_grpc_server_t *s = c->server;
    char why[300];

    if (!ok) { /* the server is shutting down: the slot comes back unused */
        free_call(c);
        return;
    }
    if (!s->stopping)
        post_request(s, c->m);
    if (c->m) {
        c->start_ns = uv_hrtime();
        kopt_metric_counter_inc(c->m->started);
    }
    if (!c->m) {
        snprintf(why, sizeof(why), "unknown method %.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        kopt_grpc_call_reply(c, GRPC_STATUS_UNIMPLEMENTED, why, NULL, 0);
    } else if (c->m->stream) {
        c->m->stream(c);
    } else if (!c->payload) {
        kopt_grpc_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "missing request message", NULL, 0);
    } else {
        grpc_slice req = read_payload(c->payload);
        c->m->unary(c, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
        grpc_slice_unref(req);
    }
}

int kopt_grpc_server_start(kopt_grpc_server_t *s)
{
    int r;

    grpc_server_start(s->srv);
    r = kopt_grpc_loop_start(s->gl);
    if (r < 0)
        return r;
    s->started = 1;
    for (method_t *m = s->methods; m; m = m->next)
        post_request(s, m);
    post_request(s, NULL);
    return 0;
}

/* CQ thread: the reply was sent and the call closed. */
static void on_replied(kopt_grpc_tag_t *tag, int ok)
{
    kopt_grpc_call_t *c = kopt_container_of(tag, kopt_grpc_call_t, done_tag);

    (void)ok;
    atomic_fetch_add(&c->server->by_status[c->status], 1);
    count_done(c);
    free_call(c);
}

void kopt_grpc_call_reply(kopt_grpc_call_t *c, grpc_status_code status, const char *details,
                          const uint8_t *msg, size_t len)
{
    grpc_op ops[4];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    c->status = status >= 0 && status < STATUS_COUNT ? status : GRPC_STATUS_UNKNOWN;
    if (details)
        c->reply_details = grpc_slice_from_copied_string(details);
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (status == GRPC_STATUS_OK && msg) {
        grpc_slice sl = grpc_slice_from_copied_buffer((const char *)msg, len);
        c->reply = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->status;
    ops[n++].data.send_status_from_server.status_details = &c->reply_details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    kopt_grpc_tag_init(&c->done_tag, on_replied, 0);
    if (grpc_call_start_batch(c->call, ops, n, &c->done_tag, NULL) != GRPC_CALL_OK) {
        count_done(c);
        free_call(c); /* the call is gone (cancelled); nothing to send */
    }
}

void kopt_grpc_call_set_status(kopt_grpc_call_t *c, grpc_status_code status)
{
    c->status = status >= 0 && status < STATUS_COUNT ? status : GRPC_STATUS_UNKNOWN;
    c->status_set = 1;
}

void kopt_grpc_call_release(kopt_grpc_call_t *c)
{
    if (!c)
        return;
    if (!c->status_set)
        c->status = GRPC_STATUS_CANCELLED;
    count_done(c);
    free_call(c);
}

int kopt_grpc_call_metadata(const kopt_grpc_call_t *c, const char *key, char *out, size_t len)
{
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *md = &c->metadata.metadata[i];
        size_t klen = GRPC_SLICE_LENGTH(md->key), vlen = GRPC_SLICE_LENGTH(md->value);

        if (klen != strlen(key) || memcmp(GRPC_SLICE_START_PTR(md->key), key, klen) != 0)
            continue;
        if (vlen + 1 > len)
            return -E2BIG;
        memcpy(out, GRPC_SLICE_START_PTR(md->value), vlen);
        out[vlen] = 0;
        return 0;
    }
    return -ENOENT;
}

int kopt_grpc_call_peer_uri(const kopt_grpc_call_t *c, char *out, size_t len)
{
    grpc_auth_context *ctx = grpc_call_auth_context(c->call);
    grpc_auth_property_iterator it;
    const grpc_auth_property *p, *uri = NULL;
    int n = 0, r = -ENOENT;

    if (!ctx)
        return -ENOENT;
    /* URI SANs only: "x509_subject_alternative_name" mixes in DNS and e-mail
     * SANs, and a DNS SAN may read spiffe://... too (docs/stack-facts.md,
     * 'gRPC: peer identity'). */
    it = grpc_auth_context_find_properties_by_name(ctx, GRPC_PEER_URI_PROPERTY_NAME);
    while ((p = grpc_auth_property_iterator_next(&it))) {
        uri = p;
        n++;
    }
    if (n > 1) {
        r = -ENOTUNIQ; /* an X.509-SVID has exactly one URI SAN: which would be meant? */
    } else if (uri && uri->value_length > 9 && strncmp(uri->value, "spiffe://", 9) == 0 &&
               !memchr(uri->value, '\0', uri->value_length)) {
        r = uri->value_length + 1 > len ? -E2BIG : 0;
        if (r == 0) {
            memcpy(out, uri->value, uri->value_length);
            out[uri->value_length] = 0;
        }
    }
    grpc_auth_context_release(ctx);
    return r;
}

grpc_call *kopt_grpc_call_raw(kopt_grpc_call_t *c)
{
    return c->call;
}

const char *kopt_grpc_call_method(const kopt_grpc_call_t *c)
{
    return c->m ? c->m->path : "";
}

void *kopt_grpc_call_user(const kopt_grpc_call_t *c)
{
    return c->m ? c->m->user : NULL;
}

kopt_grpc_server_t *kopt_grpc_call_server(const kopt_grpc_call_t *c)
{
    return c->server;
}

grpc_completion_queue *kopt_grpc_server_cq(kopt_grpc_server_t *s)
{
    return kopt_grpc_loop_cq(s->gl);
}

void kopt_grpc_server_post(kopt_grpc_server_t *s, kopt_grpc_tag_t *tag, int ok)
{
    kopt_grpc_loop_post(s->gl, tag, ok);
}

const char *kopt_grpc_status_name(grpc_status_code code)
{
    static const char *const names[STATUS_COUNT] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };

    return code >= 0 && code < STATUS_COUNT ? names[code] : "UNKNOWN";
}

uint64_t kopt_grpc_server_calls(kopt_grpc_server_t *s, grpc_status_code status)
{
    if (status < 0 || status >= STATUS_COUNT)
        return 0;
    return atomic_load(&s->by_status[status]);
}

static void on_deadline(uv_timer_t *t)
{
    kopt_grpc_server_t *s = t->data;

    kopt_log_warn("drain deadline passed, cancelling the calls still open");
    grpc_server_cancel_all_calls(s->srv);
}

static void on_timer_closed(uv_handle_t *h)
{
    kopt_grpc_server_t *s = h->data;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;

    free(s);
    if (done)
        done(arg);
}

/* Loop: every call finished; tear down in the order gRPC wants. */
static void on_shutdown(kopt_grpc_tag_t *tag, int ok)
{
    kopt_grpc_server_t *s = kopt_container_of(tag, kopt_grpc_server_t, shutdown_tag);

    (void)ok;
    uv_timer_stop(&s->deadline);
    kopt_grpc_loop_free(s->gl); /* CQ shutdown, join, run what is left */
    grpc_server_destroy(s->srv);
    while (s->methods) {
        method_t *m = s->methods;
        s->methods = m->next;
        free(m);
    }
    uv_close((uv_handle_t *)&s->deadline, on_timer_closed);
}

void kopt_grpc_server_shutdown(kopt_grpc_server_t *s, uint64_t deadline_ms, void (*done)(void *arg),
                               void *arg)
{
    if (s->stopping) { /* again, e.g. a second SIGTERM: cancel now, report to the new caller */
        s->done = done;
        s->done_arg = arg;
        grpc_server_cancel_all_calls(s->srv);
        return;
    }
    s->stopping = 1;
    s->done = done;
    s->done_arg = arg;
    kopt_grpc_tag_init(&s->shutdown_tag, on_shutdown, 1);
    if (!s->started) {
        grpc_server_start(s->srv); /* shutdown_and_notify wants a started server */
        kopt_grpc_loop_start(s->gl);
    }
    grpc_server_shutdown_and_notify(s->srv, kopt_grpc_loop_cq(s->gl), &s->shutdown_tag);
    uv_timer_start(&s->deadline, on_deadline, deadline_ms, 0);
}
