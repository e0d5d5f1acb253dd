/* Distributed tracing: W3C trace context (`traceparent`) and spans exported
 * over OTLP/HTTP JSON to a collector (Jaeger, Tempo, the OpenTelemetry
 * Collector). Off by default: without kopt_trace_setup() and an endpoint,
 * spans cost a flag test and are never kept.
 *
 * A span lives in the caller's memory (kopt_span_t); kopt_span_end() copies
 * it into a bounded queue that a background thread posts in batches. A full
 * queue or an endpoint that is away drops spans and counts them; nothing
 * ever waits for the collector. See docs/observability.md, "Tracing". */
#ifndef KOPT_TRACE_H
#define KOPT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/metrics.h>

#define KOPT_TRACE_ID_LEN 16
#define KOPT_SPAN_ID_LEN 8
#define KOPT_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define KOPT_TRACE_FLAG_SAMPLED 0x01

/* One position in a trace: the trace and the span that is the parent of
 * whatever comes next. */
typedef struct {
    uint8_t trace_id[KOPT_TRACE_ID_LEN];
    uint8_t span_id[KOPT_SPAN_ID_LEN];
    uint8_t flags;
} kopt_trace_ctx_t;

/* ---- trace context (trace_context.c): pure, no I/O ------------------------ */

/* Parses a `traceparent` value of `len` bytes (not NUL-terminated). Version
 * 00 takes exactly 55 bytes; a later version may add "-..." after them.
 * Lower-case hex only, version ff and all-zero ids refused (W3C Trace
 * Context, section 3.2). 0, or -EINVAL. */
int kopt_traceparent_parse(const char *s, size_t len, kopt_trace_ctx_t *out);

/* Writes "00-<trace id>-<span id>-<flags>" and a NUL: `out` holds
 * KOPT_TRACEPARENT_LEN + 1 bytes. */
void kopt_traceparent_format(const kopt_trace_ctx_t *c, char *out);

/* Lower-case hex of `n` bytes and a NUL into `out` (2n + 1 bytes). */
void kopt_trace_hex(const uint8_t *id, size_t n, char *out);

/* Fills `id` with `n` random bytes from the kernel's CSPRNG, never all zero.
 * 0, or a negative errno. */
int kopt_trace_random_id(uint8_t *id, size_t n);

/* The context of the agent's span for one batch, derived from the batch's
 * identity: trace id and span id are the first 24 bytes of SHA-256 over
 * "kopt-batch", agent_id, epoch and seq. A batch re-sent after an agent
 * restart (replayed from the spool) keeps its trace, and ingest finds the
 * parent of its span from the batch alone. Sampled. */
void kopt_trace_batch_ctx(const char *agent_id, uint64_t epoch, uint64_t seq,
                          kopt_trace_ctx_t *out);

/* ---- spans and export (trace_export.c) ------------------------------------- */

typedef enum {
    KOPT_SPAN_INTERNAL = 1,
    KOPT_SPAN_SERVER = 2,
    KOPT_SPAN_CLIENT = 3,
    KOPT_SPAN_PRODUCER = 4,
    KOPT_SPAN_CONSUMER = 5,
} kopt_span_kind_t; /* OTLP's SpanKind numbers */

#define KOPT_SPAN_MAX_ATTRS 6

typedef struct {
    int active; /* 0: tracing off or not sampled; every call below is a no-op */
    kopt_trace_ctx_t ctx;
    uint8_t parent_id[KOPT_SPAN_ID_LEN]; /* all zero: a root span */
    kopt_span_kind_t kind;
    char name[64];
    uint64_t start_ns, end_ns; /* Unix epoch nanoseconds */
    int error;
    char status[96];
    size_t n_attrs;
    struct {
        const char *key; /* a literal: kept, not copied */
        char value[96];
    } attrs[KOPT_SPAN_MAX_ATTRS];
} kopt_span_t;

typedef struct {
    const char *endpoint; /* base URL; spans go to <endpoint>/v1/traces. NULL/"": off */
    const char *service;  /* service.name: "kopt-ingest" */
    size_t queue_max;     /* spans waiting at most (0: 2048) */
    size_t batch_max;     /* spans a POST (0: 256) */
    uint64_t flush_ms;    /* a batch leaves at least this often (0: 1000) */
    uint64_t timeout_ms;  /* one POST, connecting included (0: 2000) */
} kopt_trace_opts_t;

/* Starts the exporter thread and registers kopt_trace_spans_exported_total
 * and kopt_trace_spans_dropped_total{reason} in `metrics` (may be NULL).
 * Without an endpoint, tracing stays off and 0 is returned. Process-wide:
 * call once, before any span starts. */
int kopt_trace_setup(const kopt_trace_opts_t *o, kopt_metrics_t *metrics);

/* Posts what is queued (one try, bounded by the POST timeout), stops the
 * thread. Spans ended later are dropped. Safe without setup. */
void kopt_trace_shutdown(void);

int kopt_trace_enabled(void);

/* Unix time in nanoseconds, the clock of span start and end times. */
uint64_t kopt_trace_now_ns(void);

/* Starts a span: a child of `parent`, or the root of a new trace when
 * `parent` is NULL. A parent without the sampled flag gives an inactive
 * span (the caller upstream decided not to record). */
void kopt_span_start(kopt_span_t *s, const char *name, kopt_span_kind_t kind,
                     const kopt_trace_ctx_t *parent);

/* The same with the span's own context given, not drawn at random (the
 * agent's batch spans, kopt_trace_batch_ctx). */
void kopt_span_start_with(kopt_span_t *s, const char *name, kopt_span_kind_t kind,
                          const kopt_trace_ctx_t *self, const kopt_trace_ctx_t *parent);

/* Adds a string attribute (value copied, cut at 95 bytes); more than
 * KOPT_SPAN_MAX_ATTRS are ignored. */
void kopt_span_attr(kopt_span_t *s, const char *key, const char *value);

/* Ends the span with status OK, or ERROR and `message` when `error`, and
 * queues it for export. `s` may be reused afterwards. */
void kopt_span_end(kopt_span_t *s, int error, const char *message);

/* The traceparent of a span, for the next hop ("" when inactive). */
void kopt_span_traceparent(const kopt_span_t *s, char *out);

/* The calling thread's current span, which log lines carry as trace_id and
 * span_id. Set returns the previous one, to restore; NULL clears. The
 * pointer is kept: it must stay valid until replaced. */
const kopt_trace_ctx_t *kopt_trace_set_current(const kopt_trace_ctx_t *c);
const kopt_trace_ctx_t *kopt_trace_current(void);

/* Counters, for tests and the admin page. */
uint64_t kopt_trace_exported(void);
uint64_t kopt_trace_dropped(const char *reason); /* "queue_full", "endpoint_error" */

#endif
