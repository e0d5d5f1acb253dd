/* Spans and their export: ended spans go into one bounded ring; a thread
 * takes up to batch_max of them at least every flush_ms and POSTs them as
 * OTLP/HTTP JSON to <endpoint>/v1/traces with libcurl and short timeouts.
 * A full ring drops the new span (queue_full), a failed POST drops its batch
 * (endpoint_error): tracing never holds up the work it describes. */
#include <kopt/trace.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>
#include <kopt/url.h>

static struct {
    atomic_int on; /* set before any span starts, cleared after the thread ends */
    kopt_trace_opts_t o;
    char url[1024], redacted[1024], service[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kopt_span_t *ring; /* guarded by mu */
    size_t head, count;
    int stop;
    pthread_t thread;
    atomic_uint_fast64_t exported, dropped_full, dropped_error;
    kopt_metric_counter_t *m_exported, *m_full, *m_error;
    int failing; /* exporter thread: the last POST failed (logged once per outage) */
} X = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

uint64_t kopt_trace_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int kopt_trace_enabled(void)
{
    return X.on;
}

void kopt_span_start_with(kopt_span_t *s, const char *name, kopt_span_kind_t kind,
                          const kopt_trace_ctx_t *self, const kopt_trace_ctx_t *parent)
{
    memset(s, 0, sizeof(*s));
    if (!X.on || (parent && !(parent->flags & KOPT_TRACE_FLAG_SAMPLED)))
        return;
    if (self) {
        s->ctx = *self;
    } else {
        if (parent)
            memcpy(s->ctx.trace_id, parent->trace_id, KOPT_TRACE_ID_LEN);
        else if (kopt_trace_random_id(s->ctx.trace_id, KOPT_TRACE_ID_LEN) < 0)
            return;
        if (kopt_trace_random_id(s->ctx.span_id, KOPT_SPAN_ID_LEN) < 0)
            return;
    }
    s->ctx.flags = KOPT_TRACE_FLAG_SAMPLED;
    if (parent)
        memcpy(s->parent_id, parent->span_id, KOPT_SPAN_ID_LEN);
    s->kind = kind;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->start_ns = kopt_trace_now_ns();
    s->active = 1;
}

void kopt_span_start(kopt_span_t *s, const char *name, kopt_span_kind_t kind,
                     const kopt_trace_ctx_t *parent)
{
    kopt_span_start_with(s, name, kind, NULL, parent);
}

void kopt_span_attr(kopt_span_t *s, const char *key, const char *value)
{
    if (!s->active || s->n_attrs >= KOPT_SPAN_MAX_ATTRS)
        return;
    s->attrs[s->n_attrs].key = key;
    snprintf(s->attrs[s->n_attrs].value, sizeof(s->attrs[0].value), "%s", value ? value : "");
    s->n_attrs++;
}

void kopt_span_traceparent(const kopt_span_t *s, char *out)
{
    if (s->active)
        kopt_traceparent_format(&s->ctx, out);
    else
        out[0] = '\0';
}

static void count(kopt_metric_counter_t *m, atomic_uint_fast64_t *v, size_t n)
{
    atomic_fetch_add(v, n);
    if (m)
        kopt_metric_counter_add(m, (double)n);
}

void kopt_span_end(kopt_span_t *s, int error, const char *message)
{
    if (!s->active)
        return;
    s->end_ns = kopt_trace_now_ns();
    s->error = error;
    snprintf(s->status, sizeof(s->status), "%s", error && message ? message : "");
    s->active = 0;
    pthread_mutex_lock(&X.mu);
    if (!X.on || X.stop) {
        pthread_mutex_unlock(&X.mu);
        return;
    }
    if (X.count == X.o.queue_max) {
        /* Counted under the lock: kopt_trace_shutdown clears the metric
         * under it, and the caller may free the registry right after. */
        count(X.m_full, &X.dropped_full, 1);
        pthread_mutex_unlock(&X.mu);
        return;
    }
    X.ring[(X.head + X.count) % X.o.queue_max] = *s;
    X.ring[(X.head + X.count) % X.o.queue_max].active = 1;
    X.count++;
    if (X.count >= X.o.batch_max)
        pthread_cond_signal(&X.cv);
    pthread_mutex_unlock(&X.mu);
}

/* ---- OTLP/HTTP JSON ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, or 0 (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* A copy of `in` that jansson takes: span text may quote a client's bytes
 * (an error message), and the fixed-size copies may cut a character in
 * two. jansson refuses a string that is not UTF-8, which dropped the whole
 * span; each byte that does not start a valid sequence becomes '?'. */
static void utf8_clean(const char *in, char *out, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;

    while (*s && o + 1 < len) {
        size_t n = utf8_seq(s);

        if (n == 0 || o + n >= len) {
            out[o++] = '?';
            s++;
            continue;
        }
        memcpy(out + o, s, n);
        o += n;
        s += n;
    }
    out[o] = '\0';
}

static json_t *attr(const char *key, const char *value)
{
    char clean[sizeof(((kopt_span_t *)0)->attrs[0].value)];

    utf8_clean(value, clean, sizeof(clean));
    return json_pack("{s:s,s:{s:s}}", "key", key, "value", "stringValue", clean);
}

static json_t *span_json(const kopt_span_t *s)
{
    char trace[2 * KOPT_TRACE_ID_LEN + 1], span[2 * KOPT_SPAN_ID_LEN + 1],
        parent[2 * KOPT_SPAN_ID_LEN + 1], start[24], end[24], name[sizeof(s->name)],
        status[sizeof(s->status)];
    json_t *j, *attrs = json_array();
    uint8_t zero[KOPT_SPAN_ID_LEN] = {0};

    kopt_trace_hex(s->ctx.trace_id, KOPT_TRACE_ID_LEN, trace);
    kopt_trace_hex(s->ctx.span_id, KOPT_SPAN_ID_LEN, span);
    kopt_trace_hex(s->parent_id, KOPT_SPAN_ID_LEN, parent);
    /* OTLP JSON: 64-bit integers are strings, ids are hex. */
    snprintf(start, sizeof(start), "%llu", (unsigned long long)s->start_ns);
    snprintf(end, sizeof(end), "%llu", (unsigned long long)s->end_ns);
    utf8_clean(s->name, name, sizeof(name));
    utf8_clean(s->status, status, sizeof(status));
    for (size_t i = 0; i < s->n_attrs; i++)
        json_array_append_new(attrs, attr(s->attrs[i].key, s->attrs[i].value));
    j = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o,s:{s:i,s:s}}", "traceId", trace, "spanId", span,
                  "name", name, "kind", (int)s->kind, "startTimeUnixNano", start, "endTimeUnixNano",
                  end, "attributes", attrs, "status", "code", s->error ? 2 : 1, "message", status);
    if (j && memcmp(s->parent_id, zero, sizeof(zero)) != 0)
        json_object_set_new(j, "parentSpanId", json_string(parent));
    return j;
}

static char *batch_json(const kopt_span_t *spans, size_t n)
{
    json_t *arr = json_array(), *root;
    char *body;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, span_json(&spans[i]));
    root = json_pack("{s:[{s:{s:[o]},s:[{s:{s:s},s:o}]}]}", "resourceSpans", "resource",
                     "attributes", attr("service.name", X.service), "scopeSpans", "scope", "name",
                     "kopt", "spans", arr);
    body = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return body;
}

static size_t discard(char *p, size_t size, size_t n, void *data)
{
    (void)p;
    (void)data;
    return size * n;
}

/* One POST; 0 when the collector answered 2xx. */
static int post(const char *body, long *status)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    CURLcode rc;

    *status = 0;
    if (!c)
        return -ENOMEM;
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, X.url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)X.o.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)X.o.timeout_ms);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return -EIO;
    return *status >= 200 && *status < 300 ? 0 : -EIO;
}

static void export_batch(const kopt_span_t *spans, size_t n)
{
    char *body = batch_json(spans, n);
    long status = 0;
    int r = body ? post(body, &status) : -ENOMEM;

    free(body);
    if (r == 0) {
        count(X.m_exported, &X.exported, n);
        if (X.failing)
            kopt_log_info("trace export works again", KOPT_STR("endpoint", X.redacted));
        X.failing = 0;
        return;
    }
    count(X.m_error, &X.dropped_error, n);
    if (!X.failing)
        kopt_log_warn("trace export failed; dropping spans until the endpoint answers",
                      KOPT_STR("endpoint", X.redacted), KOPT_INT("http_status", status),
                      KOPT_UINT("spans", n));
    X.failing = 1;
}

/* Takes up to batch_max spans from the ring into `out`; mu held. */
static size_t take(kopt_span_t *out)
{
    size_t n = X.count < X.o.batch_max ? X.count : X.o.batch_max;

    for (size_t i = 0; i < n; i++)
        out[i] = X.ring[(X.head + i) % X.o.queue_max];
    X.head = (X.head + n) % X.o.queue_max;
    X.count -= n;
    return n;
}

static void *exporter(void *arg)
{
    kopt_span_t *batch = arg;
    int stop = 0;

    while (!stop) {
        struct timespec until;
        size_t n;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(X.o.flush_ms / 1000);
        until.tv_nsec += (long)(X.o.flush_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&X.mu);
        while (!X.stop && X.count < X.o.batch_max &&
               pthread_cond_timedwait(&X.cv, &X.mu, &until) != ETIMEDOUT) {
        }
        stop = X.stop;
        n = take(batch);
        pthread_mutex_unlock(&X.mu);
        if (n > 0)
            export_batch(batch, n);
    }
    /* Stopping: the rest goes while the endpoint answers, else is dropped
     * (one failed POST bounds how long shutdown waits). */
    for (;;) {
        size_t n;

        pthread_mutex_lock(&X.mu);
        n = take(batch);
        pthread_mutex_unlock(&X.mu);
        if (n == 0)
            break;
        if (X.failing)
            count(X.m_error, &X.dropped_error, n);
        else
            export_batch(batch, n);
    }
    free(batch);
    return NULL;
}

int kopt_trace_setup(const kopt_trace_opts_t *o, kopt_metrics_t *metrics)
{
    kopt_metric_family_t *f;
    kopt_span_t *batch;
    size_t n;

    if (metrics) {
        if (kopt_metrics_counter(metrics, "kopt_trace_spans_exported_total",
                                 "spans the OTLP endpoint accepted", NULL, &f) == 0)
            X.m_exported = kopt_metric_counter_with(f);
        if (kopt_metrics_counter(metrics, "kopt_trace_spans_dropped_total",
                                 "spans not exported: queue_full (the export queue was full) or "
                                 "endpoint_error (the POST to the OTLP endpoint failed)",
                                 "reason", &f) == 0) {
            X.m_full = kopt_metric_counter_with(f, "queue_full");
            X.m_error = kopt_metric_counter_with(f, "endpoint_error");
        }
    }
    if (!o || !o->endpoint || !o->endpoint[0] || X.on)
        return 0;
    X.o = *o;
    X.o.queue_max = o->queue_max ? o->queue_max : 2048;
    X.o.batch_max = o->batch_max ? o->batch_max : 256;
    if (X.o.batch_max > X.o.queue_max)
        X.o.batch_max = X.o.queue_max;
    X.o.flush_ms = o->flush_ms ? o->flush_ms : 1000;
    X.o.timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
    n = strlen(o->endpoint);
    while (n > 0 && o->endpoint[n - 1] == '/')
        n--;
    if (n + sizeof("/v1/traces") > sizeof(X.url))
        return -ENAMETOOLONG;
    snprintf(X.url, sizeof(X.url), "%.*s/v1/traces", (int)n, o->endpoint);
    kopt_url_redact(X.url, X.redacted, sizeof(X.redacted));
    snprintf(X.service, sizeof(X.service), "%s", o->service ? o->service : "kopt");
    X.o.endpoint = X.url;
    X.o.service = X.service;
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        return -EIO;
    X.ring = calloc(X.o.queue_max, sizeof(*X.ring));
    batch = calloc(X.o.batch_max, sizeof(*batch));
    if (!X.ring || !batch) {
        free(X.ring);
        free(batch);
        X.ring = NULL;
        return -ENOMEM;
    }
    X.head = X.count = 0;
    X.stop = 0;
    X.on = 1;
    if (pthread_create(&X.thread, NULL, exporter, batch) != 0) {
        X.on = 0;
        free(X.ring);
        free(batch);
        X.ring = NULL;
        return -EAGAIN;
    }
    kopt_log_info("tracing on: spans go over OTLP/HTTP JSON", KOPT_STR("endpoint", X.redacted),
                  KOPT_UINT("queue_max", X.o.queue_max));
    return 0;
}

void kopt_trace_shutdown(void)
{
    if (!X.on)
        return;
    pthread_mutex_lock(&X.mu);
    X.stop = 1;
    pthread_cond_signal(&X.cv);
    pthread_mutex_unlock(&X.mu);
    pthread_join(X.thread, NULL);
    pthread_mutex_lock(&X.mu);
    X.on = 0;
    free(X.ring);
    X.ring = NULL;
    X.count = X.head = 0;
    X.m_exported = X.m_full = X.m_error = NULL;
    pthread_mutex_unlock(&X.mu);
}

uint64_t kopt_trace_exported(void)
{
    return atomic_load(&X.exported);
}

uint64_t kopt_trace_dropped(const char *reason)
{
    if (reason && strcmp(reason, "queue_full") == 0)
        return atomic_load(&X.dropped_full);
    return atomic_load(&X.dropped_error);
}
