/* One kopt.v1.Ingest/Push stream: read a batch, check it, publish it, and
 * ack it once JetStream has it. Batches are settled in arrival order (a FIFO
 * of pending entries) so a cumulative ack never covers a batch that is not
 * stored. A bad batch, a rate limit or a failed publish ends the stream with
 * a status after everything before it was acked; the agent re-sends the rest.
 * Windows too old to keep are left out of their batch and reported in the
 * ack (WindowRefusal); they never end the stream.
 * Threads: on_recv runs on the gRPC completion-queue thread and touches only
 * the rx_* fields: it reads the message, decodes it into the stream's arena,
 * validates it and re-packs it without its too-old windows. Everything else
 * (identity, rate limits, publishing, settling, acks) runs on the loop
 * thread, where on_decoded takes the result over and PubAcks arrive through
 * publish.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>

#include <kopt/arena.h>
#include <kopt/log.h>
#include <kopt/trace.h>
#include <kopt/util.h>

#include <kopt/identity.h>
#include "ingest_internal.h"
#include "kopt/v1/ingest.pb-c.h"
#include <kopt/batch_subject.h>

#define MAX_EPOCHS 4 /* an agent replaying its spool sends at most two */
/* WindowRefusals in one PushAck, at most: a spool replay of old batches
 * then yields acks of a few KiB, each covering up to this many batches. */
#define MAX_REFUSALS 32
/* Rejections waiting for the ack that covers their batch. Only TOO_LARGE
 * lets a stream go on after a rejection, so this bounds what one stream of
 * too-large batches holds until the agent reads its acks. */
#define MAX_REJECTIONS 32
/* Retry hint on refusing a stream for want of a slot. */
#define RETRY_STREAMS_MS 10000
/* What our one NATS header adds to a batch besides its id (publish.c). */
#define NATS_HEADER_BYTES (sizeof("NATS/1.0\r\nNats-Msg-Id: \r\n\r\n") - 1)

/* SKIPPED: settled without publishing (every window too old). */
enum { WAITING, INFLIGHT, STORED, SKIPPED, REJECTED, FAILED };

/* Windows left out of one settled batch, until an ack reports them. */
typedef struct {
    uint64_t epoch, seq;
    uint32_t refused, stored;
    int64_t oldest_s;
    int batch_too_old;
} refusal_t;

/* A batch refused for good, until an ack reports it. */
typedef struct {
    uint64_t epoch, seq;
    Kopt__V1__RejectReason reason;
    char msg[256];
} rejection_t;

typedef struct pending {
    struct pending *next;
    push_stream_t *s; /* NULL once the stream is gone: the publish result is dropped */
    uint64_t epoch, seq, started_ns;
    size_t bytes, windows;
    kopt_batch_split_t split; /* too_old > 0 or store_nothing: reported when settled */
    int state;
    grpc_slice data; /* WAITING only: the batch to publish */
    char subject[544], msg_id[300];
    kopt_span_t span; /* ingest.publish: from the batch's arrival to JetStream's PubAck */
    char traceparent[KOPT_TRACEPARENT_LEN + 1]; /* the span's, for the JetStream header */
} pending_t;

typedef struct {
    uint64_t epoch, last_seq, acked, sent;
} epoch_t;

struct push_stream {
    ingest_t *ing;
    kopt_grpc_call_t *c;
    push_stream_t *prev, *next, *paused_next;
    int paused;
    kopt_identity_t id;
    int has_id;
    char slot_key[520];     /* "cluster/agent-id" when it holds a slot of ing->slots */
    uint64_t last_batch_ns; /* stream start, then each batch received: idleness */
    grpc_byte_buffer *in, *out;
    grpc_slice details;
    grpc_metadata trailer;
    char retry_ms[24];
    int cancelled, refs;
    int reading, half_closed, sending, status_sent;
    int ending;
    grpc_status_code end_code;
    char end_msg[300];
    pending_t *head, *tail;
    epoch_t epochs[MAX_EPOCHS];
    size_t n_epochs;
    rejection_t *rejections; /* not yet acked; MAX_REJECTIONS, allocated on first use */
    size_t n_rejections;
    int logged_too_large; /* the first too-large batch is logged, the rest counted */
    refusal_t *refusals;  /* settled, not yet acked; MAX_REFUSALS, allocated on first use */
    size_t n_refusals;
    int logged_too_old; /* the first batch with old windows is logged, the rest counted */
    int agent_traced;   /* the call's traceparent is sampled: agent.push spans exist */
    kopt_grpc_tag_t recv_tag, send_tag, status_tag, close_tag;
    /* Filled on the CQ thread while a read is outstanding, used on the loop:
     * decoding and validating there keeps the loop free for the rest. */
    kopt_grpc_tag_t decoded_tag;
    int rx_has;                      /* a message arrived (else half-close or error) */
    grpc_slice rx;                   /* its bytes */
    Kopt__V1__MetricBatch *rx_batch; /* NULL: undecodable; lives in rx_arena */
    kopt_arena_t rx_arena;           /* emptied after each batch: no idle memory */
    int rx_valid;                    /* kopt_batch_validate's result */
    kopt_batch_problem_t rx_problem;
    kopt_batch_split_t rx_split; /* valid batches: which windows are too old */
    grpc_slice rx_pub;           /* windows left out: the bytes to publish instead of rx */
    int rx_has_pub;
};

static void maybe_read(push_stream_t *s);
static void maybe_send(push_stream_t *s);

static void unref(push_stream_t *s)
{
    ingest_t *ing = s->ing;

    if (--s->refs > 0)
        return;
    for (pending_t *p = s->head, *next; p; p = next) {
        next = p->next;
        if (p->state == INFLIGHT) {
            p->s = NULL; /* the publisher still holds it */
        } else {
            grpc_slice_unref(p->data);
            free(p);
        }
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        ing->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ing->n_streams--;
    if (s->slot_key[0])
        ingest_stream_slots_put(ing->slots, s->slot_key);
    if (s->in)
        grpc_byte_buffer_destroy(s->in);
    if (s->out)
        grpc_byte_buffer_destroy(s->out);
    grpc_slice_unref(s->details);
    free(s->refusals);
    free(s->rejections);
    kopt_arena_free(&s->rx_arena);
    kopt_grpc_call_release(s->c);
    free(s);
    ingest_check_drained(ing);
}

static void start(push_stream_t *s, grpc_op *ops, size_t n, kopt_grpc_tag_t *tag)
{
    grpc_call_error e;

    s->refs++;
    e = grpc_call_start_batch(kopt_grpc_call_raw(s->c), ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        kopt_log_error("Push: grpc_call_start_batch refused", KOPT_STR("agent", s->id.agent_id),
                       KOPT_INT("grpc_call_error", e));
        s->refs--;
    }
}

/* Ends the stream with `code` once what came before is settled. The first
 * reason wins. */
static void end_stream(push_stream_t *s, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void end_stream(push_stream_t *s, grpc_status_code code, const char *fmt, ...)
{
    va_list ap;

    if (s->ending)
        return;
    s->ending = 1;
    s->end_code = code;
    va_start(ap, fmt);
    vsnprintf(s->end_msg, sizeof(s->end_msg), fmt, ap);
    va_end(ap);
}

static epoch_t *find_epoch(push_stream_t *s, uint64_t epoch)
{
    for (size_t i = 0; i < s->n_epochs; i++)
        if (s->epochs[i].epoch == epoch)
            return &s->epochs[i];
    return NULL;
}

/* The epoch slot for a new batch; reuses a slot whose batches are all acked. */
static epoch_t *epoch_for(push_stream_t *s, uint64_t epoch)
{
    epoch_t *e = find_epoch(s, epoch);

    if (e)
        return e;
    if (s->n_epochs < MAX_EPOCHS) {
        e = &s->epochs[s->n_epochs++];
    } else {
        for (size_t i = 0; i < MAX_EPOCHS && !e; i++)
            if (s->epochs[i].sent == s->epochs[i].last_seq)
                e = &s->epochs[i];
        if (!e)
            return NULL;
    }
    *e = (epoch_t){.epoch = epoch};
    return e;
}

static void push_pending(push_stream_t *s, pending_t *p)
{
    p->s = s;
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
}

/* Records a refusal that the agent must not retry: it is acked with the
 * rejection, and the stream ends with `code`, or goes on with
 * GRPC_STATUS_OK (TOO_LARGE: that batch is refused, not the agent; only the
 * first such batch of a stream is logged). */
static void reject(push_stream_t *s, const Kopt__V1__MetricBatch *b, Kopt__V1__RejectReason reason,
                   const char *label, grpc_status_code code, const char *msg)
{
    pending_t *p;
    rejection_t *r;
    epoch_t *e;

    ingest_count_rejected(s->ing, label);
    if (code != GRPC_STATUS_OK || !s->logged_too_large)
        kopt_log_warn(code == GRPC_STATUS_OK
                          ? "Push: batch refused; the stream goes on, and later refusals of "
                            "this stream are only counted in kopt_ingest_rejected_total"
                          : "Push: batch refused",
                      KOPT_STR("cluster", b->cluster), KOPT_STR("agent", b->agent_id),
                      KOPT_UINT("epoch", b->epoch), KOPT_UINT("seq", b->seq),
                      KOPT_STR("reason", label), KOPT_STR("detail", msg));
    if (code == GRPC_STATUS_OK)
        s->logged_too_large = 1;
    else
        end_stream(s, code, "batch %s/%" PRIu64 "/%" PRIu64 " refused: %s", b->agent_id, b->epoch,
                   b->seq, msg);
    if (b->seq == 0 || !(e = epoch_for(s, b->epoch)) || b->seq <= e->last_seq)
        return; /* nothing an ack could name */
    if (!s->rejections && !(s->rejections = calloc(MAX_REJECTIONS, sizeof(*s->rejections))))
        p = NULL;
    else
        p = s->n_rejections < MAX_REJECTIONS ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        /* maybe_read keeps the queue from filling: out of memory. */
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "ingest cannot record a rejection now; re-send from seq %" PRIu64, b->seq);
        return;
    }
    e->last_seq = b->seq;
    r = &s->rejections[s->n_rejections++];
    r->epoch = b->epoch;
    r->seq = b->seq;
    r->reason = reason;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
    p->epoch = b->epoch;
    p->seq = b->seq;
    p->state = REJECTED;
    p->data = grpc_empty_slice();
    push_pending(s, p);
}

static int publish(push_stream_t *s, pending_t *p)
{
    ingest_t *ing = s->ing;
    int r = ingest_publisher_send(ing->pub, p->subject, p->msg_id, p->traceparent,
                                  GRPC_SLICE_START_PTR(p->data), GRPC_SLICE_LENGTH(p->data), p);

    if (r == -EAGAIN)
        return r; /* stays WAITING; retried when capacity frees */
    grpc_slice_unref(p->data);
    p->data = grpc_empty_slice();
    if (r < 0) {
        p->state = FAILED;
        kopt_span_end(&p->span, 1, strerror(-r));
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "JetStream unavailable (%s); re-send from seq %" PRIu64, strerror(-r), p->seq);
        return r;
    }
    p->state = INFLIGHT;
    p->started_ns = kopt_now_ns();
    ing->inflight_batches++;
    ing->inflight_bytes += p->bytes;
    return 0;
}

/* A certificate for agent "a" may write as "a" or as "a.<anything>": one
 * certificate shared by a DaemonSet's pods, each agent naming itself
 * "<id>.<node>" so batch ids never collide across nodes. */
static int agent_allowed(const char *cert_id, const char *batch_id)
{
    size_t n = strlen(cert_id);

    return strcmp(batch_id, cert_id) == 0 ||
           (strncmp(batch_id, cert_id, n) == 0 && batch_id[n] == '.' && batch_id[n + 1]);
}

/* Checks one decoded batch against the stream's identity and order. */
static int admit(push_stream_t *s, const Kopt__V1__MetricBatch *b, size_t bytes)
{
    ingest_t *ing = s->ing;
    const kopt_batch_problem_t *problem = &s->rx_problem;
    uint64_t retry_ns;
    char key[520], msg[400];
    epoch_t *e;

    if (s->rx_valid < 0) {
        reject(s, b, KOPT__V1__REJECT_REASON__REJECT_REASON_INVALID, problem->reason,
               GRPC_STATUS_INVALID_ARGUMENT, problem->message);
        return -EINVAL;
    }
    if (s->has_id &&
        (strcmp(b->cluster, s->id.cluster) != 0 || !agent_allowed(s->id.agent_id, b->agent_id))) {
        snprintf(msg, sizeof(msg),
                 "batch for cluster \"%.63s\" agent \"%.63s\", but the client certificate is "
                 "for cluster \"%.63s\" agent \"%.63s\"",
                 b->cluster, b->agent_id, s->id.cluster, s->id.agent_id);
        reject(s, b, KOPT__V1__REJECT_REASON__REJECT_REASON_PERMISSION_DENIED, "permission_denied",
               GRPC_STATUS_PERMISSION_DENIED, msg);
        return -EPERM;
    }
    e = epoch_for(s, b->epoch);
    if (!e) {
        end_stream(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %d epochs in flight", MAX_EPOCHS);
        return -ENOSPC;
    }
    if (b->seq <= e->last_seq) {
        end_stream(s, GRPC_STATUS_INVALID_ARGUMENT,
                   "seq %" PRIu64 " after %" PRIu64 " in epoch %" PRIu64
                   ": seqs must increase on a stream",
                   b->seq, e->last_seq, b->epoch);
        return -EINVAL;
    }
    /* The certificate's identity, not the batch's: one certificate may
     * write as "a.<anything>", and a key per suffix would give every
     * invented suffix a fresh bucket (and evict other agents' buckets). */
    if (s->has_id)
        snprintf(key, sizeof(key), "%s/%s", s->id.cluster, s->id.agent_id);
    else
        snprintf(key, sizeof(key), "%s/%s", b->cluster, b->agent_id);
    if (ingest_rate_limit_take(ing->rate, key, bytes, kopt_now_ns(), &retry_ns) < 0) {
        kopt_metric_counter_inc(ing->m.rate_limited);
        snprintf(s->retry_ms, sizeof(s->retry_ms), "%" PRIu64, retry_ns / 1000000 + 1);
        end_stream(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
                   "rate limit for agent %s: retry in %s ms (seq %" PRIu64 " not stored)", key,
                   s->retry_ms, b->seq);
        return -EAGAIN;
    }
    return 0;
}

/* The largest batch ingest can publish now: nats-server refuses a message
 * whose headers and payload together exceed its max_payload (1 MiB by
 * default), which the server announces when we connect and may differ
 * after a reconnect to another server. Our one header is
 * "NATS/1.0\r\n" "Nats-Msg-Id: <id>\r\n" "\r\n", with tracing on also
 * "traceparent: <55 bytes>\r\n". 0: not known (not connected yet; the
 * publish fails and the batch is re-sent). */
static size_t publish_max_bytes(const ingest_t *ing, size_t msg_id_len)
{
    int64_t max = natsConnection_GetMaxPayload(kopt_nats_conn(ing->nats));
    size_t hdr =
        NATS_HEADER_BYTES + msg_id_len +
        (kopt_trace_enabled() ? sizeof("traceparent: \r\n") - 1 + KOPT_TRACEPARENT_LEN : 0);

    return max > 0 && (uint64_t)max > hdr ? (size_t)max - hdr : 0;
}

/* Refuses a batch that can never be stored: over --max-batch-bytes as it
 * arrived, or over what NATS takes as it would be published (`pub_len`).
 * Settled with TOO_LARGE, so the agent drops it instead of re-sending it
 * forever (gRPC's own limit sits above ours so it arrives here); the stream
 * goes on. Returns 1 when refused. */
static int refuse_too_large(push_stream_t *s, const Kopt__V1__MetricBatch *b, size_t len,
                            size_t pub_len, size_t msg_id_len)
{
    const ingest_t *ing = s->ing;
    size_t nats_max = publish_max_bytes(ing, msg_id_len);
    char msg[200];

    if (len > ing->opts.max_batch_bytes)
        snprintf(msg, sizeof(msg), "batch of %zu bytes, at most %zu (--max-batch-bytes)", len,
                 ing->opts.max_batch_bytes);
    else if (nats_max > 0 && pub_len > nats_max)
        snprintf(msg, sizeof(msg),
                 "batch of %zu bytes, at most %zu: NATS max_payload is %zu bytes, headers "
                 "included; split the windows over more batches",
                 pub_len, nats_max, nats_max + NATS_HEADER_BYTES + msg_id_len);
    else
        return 0;
    reject(s, b, KOPT__V1__REJECT_REASON__REJECT_REASON_TOO_LARGE, "too_large", GRPC_STATUS_OK,
           msg);
    return 1;
}

/* Logs the first batch of a stream that loses windows for their age; the
 * others only move kopt_ingest_windows_refused_total, so a spool replay of
 * days of old batches does not flood the log. */
static void log_too_old(push_stream_t *s, const Kopt__V1__MetricBatch *b,
                        const kopt_batch_split_t *sp)
{
    if (s->logged_too_old)
        return;
    s->logged_too_old = 1;
    kopt_log_warn("Push: windows older than --max-batch-age left out; later batches of this "
                  "stream are only counted in kopt_ingest_windows_refused_total",
                  KOPT_STR("cluster", b->cluster), KOPT_STR("agent", b->agent_id),
                  KOPT_UINT("epoch", b->epoch), KOPT_UINT("seq", b->seq),
                  KOPT_UINT("windows_refused", sp->too_old), KOPT_UINT("windows_stored", sp->kept),
                  KOPT_INT("oldest_s", sp->oldest_seconds),
                  KOPT_INT("max_age_s", s->ing->opts.limits.max_age_seconds));
}

/* The batch's ingest.publish span: a child of the agent's agent.push span,
 * whose ids derive from the batch identity, when the stream said the agent
 * traces; a root span otherwise. */
static void trace_publish_start(const push_stream_t *s, const Kopt__V1__MetricBatch *b,
                                pending_t *p)
{
    kopt_trace_ctx_t agent;

    if (!kopt_trace_enabled())
        return;
    kopt_trace_batch_ctx(b->agent_id, b->epoch, b->seq, &agent);
    kopt_span_start(&p->span, "ingest.publish", KOPT_SPAN_PRODUCER,
                    s->agent_traced ? &agent : NULL);
    kopt_span_attr(&p->span, "messaging.destination.name", p->subject);
    kopt_span_attr(&p->span, "messaging.message.id", p->msg_id);
    kopt_span_traceparent(&p->span, p->traceparent);
}

/* `data` is what arrived (limits and rate count it); `pub` what to publish:
 * the same bytes, or the batch re-packed without its too-old windows. */
static void handle_batch(push_stream_t *s, grpc_slice data, grpc_slice pub,
                         const Kopt__V1__MetricBatch *b)
{
    ingest_t *ing = s->ing;
    size_t len = GRPC_SLICE_LENGTH(data);
    const kopt_batch_split_t *sp = &s->rx_split;
    pending_t *p;
    char msg_id[sizeof(p->msg_id)];

    kopt_metric_counter_add(ing->m.bytes, (double)len);
    if (!b) {
        ingest_count_rejected(ing, "malformed");
        kopt_log_warn("Push: undecodable message", KOPT_STR("agent", s->id.agent_id),
                      KOPT_UINT("bytes", len));
        end_stream(s, GRPC_STATUS_INVALID_ARGUMENT,
                   "malformed MetricBatch: %zu bytes that do not decode", len);
        return;
    }
    if (admit(s, b, len) < 0)
        return;
    /* The batch's id even when windows were left out: a re-send is still
     * recognised, and JetStream keeps the copy it stored first. */
    snprintf(msg_id, sizeof(msg_id), "%s/%" PRIu64 "/%" PRIu64, b->agent_id, b->epoch, b->seq);
    if (refuse_too_large(s, b, len, GRPC_SLICE_LENGTH(pub), strlen(msg_id)) ||
        !(p = calloc(1, sizeof(*p))))
        return;
    find_epoch(s, b->epoch)->last_seq = b->seq;
    p->epoch = b->epoch;
    p->seq = b->seq;
    p->split = *sp;
    if (sp->too_old > 0 || sp->store_nothing)
        log_too_old(s, b, sp);
    if (sp->store_nothing) {
        /* Settled at once, in order behind what is still in flight. */
        p->state = SKIPPED;
        p->data = grpc_empty_slice();
        push_pending(s, p);
        return;
    }
    p->bytes = GRPC_SLICE_LENGTH(pub);
    p->windows = sp->kept;
    p->state = WAITING;
    p->data = grpc_slice_ref(pub);
    /* Validated names fit: the buffer holds a prefix and two 253-byte names. */
    kopt_batch_subject(ing->opts.subject_prefix, b->cluster, b->node, p->subject,
                       sizeof(p->subject));
    memcpy(p->msg_id, msg_id, sizeof(msg_id));
    trace_publish_start(s, b, p);
    push_pending(s, p);
    publish(s, p);
}

/* Publishes entries held back by a full window, in order. */
static int flush_waiting(push_stream_t *s)
{
    for (pending_t *p = s->head; p; p = p->next)
        if (p->state == WAITING && publish(s, p) == -EAGAIN)
            return -EAGAIN;
    return 0;
}

static void send_status(push_stream_t *s)
{
    grpc_op op = {.op = GRPC_OP_SEND_STATUS_FROM_SERVER};
    grpc_status_code code = s->ending ? s->end_code : GRPC_STATUS_OK;

    s->status_sent = 1;
    s->details = grpc_slice_from_copied_string(s->ending ? s->end_msg : "");
    op.data.send_status_from_server.status = code;
    op.data.send_status_from_server.status_details = &s->details;
    if (s->retry_ms[0]) {
        /* The agent reads this to wait before reconnecting. */
        s->trailer.key = grpc_slice_from_static_string("kopt-retry-after-ms");
        s->trailer.value = grpc_slice_from_static_string(s->retry_ms);
        op.data.send_status_from_server.trailing_metadata = &s->trailer;
        op.data.send_status_from_server.trailing_metadata_count = 1;
    }
    ingest_count_stream_end(s->ing, code);
    kopt_grpc_call_set_status(s->c, code);
    if (code != GRPC_STATUS_OK)
        kopt_log_info("Push stream ended", KOPT_STR("agent", s->id.agent_id),
                      KOPT_INT("code", code), KOPT_STR("detail", s->end_msg));
    start(s, &op, 1, &s->status_tag);
}

/* Queues the report of a settled batch that lost windows and counts them.
 * -ENOSPC: the queue is full; the batch waits until an ack took some.
 * -ENOMEM: counted and logged, not reported (the ack still covers it). */
static int queue_refusal(push_stream_t *s, const pending_t *p)
{
    refusal_t *r;

    if (s->n_refusals == MAX_REFUSALS)
        return -ENOSPC;
    if (!s->refusals && !(s->refusals = calloc(MAX_REFUSALS, sizeof(*s->refusals)))) {
        kopt_log_error("Push: out of memory; a WindowRefusal is not reported",
                       KOPT_UINT("epoch", p->epoch), KOPT_UINT("seq", p->seq));
        kopt_metric_counter_add(s->ing->m.windows_too_old, (double)p->split.too_old);
        return -ENOMEM;
    }
    r = &s->refusals[s->n_refusals++];
    r->epoch = p->epoch;
    r->seq = p->seq;
    r->refused = (uint32_t)p->split.too_old; /* at most max_windows */
    r->stored = (uint32_t)p->split.kept;
    r->oldest_s = p->split.oldest_seconds;
    r->batch_too_old = p->split.batch_too_old;
    kopt_metric_counter_add(s->ing->m.windows_too_old, (double)p->split.too_old);
    return 0;
}

/* Pops settled entries and advances the cumulative acks. */
static void settle(push_stream_t *s)
{
    pending_t *p;

    while ((p = s->head) && (p->state == STORED || p->state == SKIPPED || p->state == REJECTED ||
                             p->state == FAILED)) {
        epoch_t *e = find_epoch(s, p->epoch);
        int failed = p->state == FAILED;

        /* Its report must travel in the ack that first covers it. */
        if (!failed && (p->split.too_old > 0 || p->split.store_nothing) &&
            queue_refusal(s, p) == -ENOSPC)
            break;
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        if (!failed && e && p->seq > e->acked)
            e->acked = p->seq;
        grpc_slice_unref(p->data);
        free(p);
        if (failed) {
            /* Nothing after a lost batch may be acked: forget the rest. */
            for (pending_t *q = s->head, *next; q; q = next) {
                next = q->next;
                if (q->state == INFLIGHT) {
                    q->s = NULL;
                } else {
                    grpc_slice_unref(q->data);
                    free(q);
                }
            }
            s->head = s->tail = NULL;
        }
    }
    maybe_send(s);
}

/* Moves the queued refusals of `epoch` into the ack; `msg` holds their
 * texts until the ack is packed. Returns how many. */
static size_t take_refusals(push_stream_t *s, uint64_t epoch, int64_t max_age,
                            Kopt__V1__WindowRefusal *wr, char (*msg)[160])
{
    size_t n = 0, keep = 0;

    for (size_t i = 0; i < s->n_refusals; i++) {
        const refusal_t *r = &s->refusals[i];

        if (r->epoch != epoch) {
            if (keep != i)
                s->refusals[keep] = *r;
            keep++;
            continue;
        }
        kopt__v1__window_refusal__init(&wr[n]);
        wr[n].epoch = r->epoch;
        wr[n].seq = r->seq;
        wr[n].reason = KOPT__V1__REJECT_REASON__REJECT_REASON_TOO_OLD;
        wr[n].windows_refused = r->refused;
        wr[n].windows_stored = r->stored;
        if (r->batch_too_old)
            snprintf(msg[n], sizeof(msg[n]),
                     "batch created longer ago than the %" PRId64
                     " s accepted (oldest time %" PRId64 " s ago); nothing of it stored (%" PRIu32
                     " windows)",
                     max_age, r->oldest_s, r->refused);
        else
            snprintf(msg[n], sizeof(msg[n]),
                     "%" PRIu32 " of %" PRIu32 " windows start more than %" PRId64
                     " s ago (oldest %" PRId64 " s); %s",
                     r->refused, r->refused + r->stored, max_age, r->oldest_s,
                     r->stored ? "the rest stored" : "nothing stored");
        wr[n].message = msg[n];
        n++;
    }
    s->n_refusals = keep;
    return n;
}

/* Moves the rejections the ack for `due` covers into `out`; `msg` holds
 * their texts until the ack is packed. Returns how many. */
static size_t take_rejections(push_stream_t *s, const epoch_t *due, Kopt__V1__BatchRejection *out,
                              char (*msg)[sizeof(((rejection_t *)0)->msg)])
{
    size_t n = 0, keep = 0;

    for (size_t i = 0; i < s->n_rejections; i++) {
        rejection_t *r = &s->rejections[i];

        if (r->epoch != due->epoch || r->seq > due->acked) {
            if (keep != i)
                s->rejections[keep] = *r;
            keep++;
            continue;
        }
        kopt__v1__batch_rejection__init(&out[n]);
        out[n].epoch = r->epoch;
        out[n].seq = r->seq;
        out[n].reason = r->reason;
        memcpy(msg[n], r->msg, sizeof(msg[n]));
        out[n].message = msg[n];
        n++;
    }
    s->n_rejections = keep;
    return n;
}

/* Sends the next ack if one is due and none is in flight; else ends the
 * stream when it has nothing left to do. */
static void maybe_send(push_stream_t *s)
{
    Kopt__V1__PushAck ack = KOPT__V1__PUSH_ACK__INIT;
    Kopt__V1__BatchRejection rej[MAX_REJECTIONS], *rejp[MAX_REJECTIONS];
    char rej_msg[MAX_REJECTIONS][sizeof(((rejection_t *)0)->msg)];
    Kopt__V1__WindowRefusal wr[MAX_REFUSALS], *wrp[MAX_REFUSALS];
    char wr_msg[MAX_REFUSALS][160];
    grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
    epoch_t *due = NULL;
    grpc_slice sl;

    if (s->sending || s->status_sent)
        return;
    for (size_t i = 0; i < s->n_epochs && !due; i++)
        if (s->epochs[i].acked > s->epochs[i].sent)
            due = &s->epochs[i];
    if (!due) {
        /* An outstanding read is fine: the status ends it. */
        if ((s->ending || s->half_closed) && !s->head)
            send_status(s);
        return;
    }
    ack.epoch = due->epoch;
    ack.acked_through_seq = due->acked;
    ack.n_rejections = take_rejections(s, due, rej, rej_msg);
    for (size_t i = 0; i < ack.n_rejections; i++)
        rejp[i] = &rej[i];
    ack.rejections = ack.n_rejections ? rejp : NULL;
    ack.n_window_refusals =
        take_refusals(s, due->epoch, s->ing->opts.limits.max_age_seconds, wr, wr_msg);
    for (size_t i = 0; i < ack.n_window_refusals; i++)
        wrp[i] = &wr[i];
    ack.window_refusals = ack.n_window_refusals ? wrp : NULL;
    sl = grpc_slice_malloc(kopt__v1__push_ack__get_packed_size(&ack));
    kopt__v1__push_ack__pack(&ack, GRPC_SLICE_START_PTR(sl));
    s->out = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    due->sent = due->acked;
    s->sending = 1;
    op.data.send_message.send_message = s->out;
    start(s, &op, 1, &s->send_tag);
}

static void on_send(kopt_grpc_tag_t *tag, int ok)
{
    push_stream_t *s = kopt_container_of(tag, push_stream_t, send_tag);

    s->sending = 0;
    if (s->out) {
        grpc_byte_buffer_destroy(s->out);
        s->out = NULL;
    }
    if (!ok)
        end_stream(s, GRPC_STATUS_CANCELLED, "client went away");
    settle(s); /* entries held back while the refusal queue was full; then the next ack */
    maybe_read(s);
    unref(s);
}

/* CQ thread: finds the windows too old to keep and, when some of the batch
 * is still to be stored, packs it without them into rx_pub. */
static void trim_old_windows(push_stream_t *s, Kopt__V1__MetricBatch *b, int64_t now)
{
    size_t n = b->n_windows;

    kopt_batch_split_old(b, &s->ing->opts.limits, now, &s->rx_split);
    if (s->rx_split.too_old == 0 || s->rx_split.store_nothing)
        return;
    b->n_windows = s->rx_split.kept;
    s->rx_pub = grpc_slice_malloc(kopt__v1__metric_batch__get_packed_size(b));
    kopt__v1__metric_batch__pack(b, GRPC_SLICE_START_PTR(s->rx_pub));
    s->rx_has_pub = 1;
    b->n_windows = n;
}

/* CQ thread: read, decode, validate and trim the message; nothing else of
 * the stream is touched here. The loop takes over in on_decoded. */
static void on_recv(kopt_grpc_tag_t *tag, int ok)
{
    push_stream_t *s = kopt_container_of(tag, push_stream_t, recv_tag);
    ingest_t *ing = s->ing;
    grpc_byte_buffer_reader rd;
    int64_t now;
    size_t len;

    s->rx_has = ok && s->in && grpc_byte_buffer_reader_init(&rd, s->in);
    if (s->rx_has) {
        s->rx = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        len = GRPC_SLICE_LENGTH(s->rx);
        s->rx_batch = kopt__v1__metric_batch__unpack(&s->rx_arena.allocator, len,
                                                     GRPC_SLICE_START_PTR(s->rx));
        now = time(NULL);
        if (s->rx_batch)
            s->rx_valid = kopt_batch_validate(s->rx_batch, &ing->opts.limits, now, &s->rx_problem);
        if (s->rx_batch && s->rx_valid == 0)
            trim_old_windows(s, s->rx_batch, now);
    }
    if (s->in) {
        grpc_byte_buffer_destroy(s->in);
        s->in = NULL;
    }
    kopt_grpc_server_post(kopt_grpc_call_server(s->c), &s->decoded_tag, ok);
}

static void on_decoded(kopt_grpc_tag_t *tag, int ok)
{
    push_stream_t *s = kopt_container_of(tag, push_stream_t, decoded_tag);

    (void)ok;
    s->reading = 0;
    if (!s->rx_has) {
        s->half_closed = 1;
    } else {
        s->last_batch_ns = kopt_now_ns();
        if (!s->ending) /* else: arrived after the end was decided; re-sent later */
            handle_batch(s, s->rx, s->rx_has_pub ? s->rx_pub : s->rx, s->rx_batch);
    }
    if (s->rx_has) {
        kopt_arena_free(&s->rx_arena); /* the whole decoded batch at once */
        grpc_slice_unref(s->rx);
        if (s->rx_has_pub)
            grpc_slice_unref(s->rx_pub);
        s->rx_batch = NULL;
        s->rx_has = 0;
        s->rx_has_pub = 0;
        memset(&s->rx_split, 0, sizeof(s->rx_split));
    }
    maybe_read(s);
    settle(s);
    unref(s);
}

/* Re-arms the read unless the stream ends, or capacity is short: then it
 * waits in the paused list, and HTTP/2 flow control pushes back on the
 * agent (docs/stack-facts.md, 'gRPC: backpressure'). */
static void maybe_read(push_stream_t *s)
{
    ingest_t *ing = s->ing;
    grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};

    if (s->reading || s->half_closed || s->ending || s->status_sent || s->paused)
        return;
    /* An agent that does not read its acks must not make us hold settled
     * batches without end: on_send reads again once an ack took the queue. */
    if (s->n_refusals == MAX_REFUSALS || s->n_rejections == MAX_REJECTIONS)
        return;
    if (flush_waiting(s) == -EAGAIN || !ingest_has_capacity(ing)) {
        s->paused = 1;
        s->paused_next = NULL;
        if (ing->paused_tail)
            ing->paused_tail->paused_next = s;
        else
            ing->paused_head = s;
        ing->paused_tail = s;
        s->refs++; /* the paused list holds it */
        return;
    }
    s->reading = 1;
    op.data.recv_message.recv_message = &s->in;
    start(s, &op, 1, &s->recv_tag);
}

void ingest_push_streams_resume(ingest_t *ing)
{
    while (ing->paused_head && ingest_has_capacity(ing)) {
        push_stream_t *s = ing->paused_head;

        ing->paused_head = s->paused_next;
        if (!ing->paused_head)
            ing->paused_tail = NULL;
        s->paused = 0;
        maybe_read(s);
        settle(s);
        unref(s);
    }
}

static void on_status(kopt_grpc_tag_t *tag, int ok)
{
    (void)ok;
    unref(kopt_container_of(tag, push_stream_t, status_tag));
}

static void on_close(kopt_grpc_tag_t *tag, int ok)
{
    push_stream_t *s = kopt_container_of(tag, push_stream_t, close_tag);

    (void)ok;
    if (s->cancelled) {
        s->half_closed = 1;
        end_stream(s, GRPC_STATUS_CANCELLED, "cancelled by the client");
        settle(s);
    }
    unref(s);
}

void ingest_push_published(void *ref, int status, int duplicate, const char *why, void *data)
{
    pending_t *p = ref;
    ingest_t *ing = data;
    push_stream_t *s = p->s;

    const kopt_trace_ctx_t *prev = kopt_trace_set_current(p->span.active ? &p->span.ctx : NULL);

    ing->inflight_batches--;
    ing->inflight_bytes -= p->bytes;
    kopt_metric_histogram_observe(ing->m.publish_seconds,
                                  (double)(kopt_now_ns() - p->started_ns) / 1e9);
    if (status == 0) {
        kopt_metric_counter_inc(duplicate ? ing->m.duplicate : ing->m.stored);
        if (!duplicate)
            kopt_metric_counter_add(ing->m.windows, (double)p->windows);
    } else {
        kopt_metric_counter_inc(ing->m.failed);
        kopt_log_warn("JetStream did not store a batch", KOPT_STR("msg_id", p->msg_id),
                      KOPT_STR("error", why));
    }
    kopt_trace_set_current(prev);
    kopt_span_end(&p->span, status != 0, why);
    if (!s) {
        free(p);
    } else {
        p->state = status == 0 ? STORED : FAILED;
        if (status < 0)
            end_stream(s, GRPC_STATUS_UNAVAILABLE,
                       "JetStream did not confirm batch %s: %s; re-send from there", p->msg_id,
                       why);
        settle(s);
    }
    ingest_push_streams_resume(ing);
    ingest_check_drained(ing);
}

static push_stream_t *stream_new(ingest_t *ing, kopt_grpc_call_t *call)
{
    push_stream_t *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->ing = ing;
    s->c = call;
    s->details = grpc_empty_slice();
    s->refs = 1;
    s->last_batch_ns = kopt_now_ns();
    kopt_grpc_tag_init(&s->recv_tag, on_recv, 0);
    kopt_grpc_tag_init(&s->decoded_tag, on_decoded, 1);
    kopt_arena_init(&s->rx_arena, 0);
    kopt_grpc_tag_init(&s->send_tag, on_send, 1);
    kopt_grpc_tag_init(&s->status_tag, on_status, 1);
    kopt_grpc_tag_init(&s->close_tag, on_close, 1);
    s->next = ing->streams;
    if (ing->streams)
        ing->streams->prev = s;
    ing->streams = s;
    ing->n_streams++;
    return s;
}

/* Who may this stream write for? With mutual TLS, the certificate says. */
static int identify(push_stream_t *s)
{
    char uri[512];

    if (s->ing->opts.insecure) {
        snprintf(s->id.agent_id, sizeof(s->id.agent_id), "-");
        return 0;
    }
    if (kopt_grpc_call_peer_uri(s->c, uri, sizeof(uri)) < 0 ||
        kopt_identity_parse(uri, &s->id) < 0) {
        end_stream(s, GRPC_STATUS_PERMISSION_DENIED,
                   "the client certificate carries no kopt agent identity "
                   "(URI SAN spiffe://kopt/cluster/<cluster>/agent/<id>)");
        ingest_count_rejected(s->ing, "no_identity");
        return -EPERM;
    }
    s->has_id = 1;
    return 0;
}

/* One certificate may hold at most max_streams_per_agent streams, so it
 * cannot take the slots of every other agent. The refusal carries a retry
 * hint: for the agent it is a wait, not a poison batch. */
static void take_slot(push_stream_t *s)
{
    ingest_t *ing = s->ing;
    char key[sizeof(s->slot_key)];
    int r;

    snprintf(key, sizeof(key), "%s/%s", s->id.cluster, s->id.agent_id);
    r = ingest_stream_slots_take(ing->slots, key, ing->opts.max_streams_per_agent);
    if (r == 0) {
        memcpy(s->slot_key, key, sizeof(key));
        return;
    }
    ingest_count_rejected(ing, "agent_streams");
    snprintf(s->retry_ms, sizeof(s->retry_ms), "%d", RETRY_STREAMS_MS);
    if (r == -EBUSY)
        end_stream(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
                   "agent %s has %u streams open already (--max-streams-per-agent); retry in "
                   "%d ms",
                   key, ing->opts.max_streams_per_agent, RETRY_STREAMS_MS);
    else
        end_stream(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory; retry in %d ms",
                   RETRY_STREAMS_MS);
}

/* Whether the agent sent a sampled traceparent with the call (it does when
 * its tracing is on); a bad value is ignored, as the W3C spec asks. */
static int stream_traced(const kopt_grpc_call_t *call)
{
    char v[KOPT_TRACEPARENT_LEN + 64];
    kopt_trace_ctx_t c;

    return kopt_trace_enabled() &&
           kopt_grpc_call_metadata(call, "traceparent", v, sizeof(v)) == 0 &&
           kopt_traceparent_parse(v, strlen(v), &c) == 0 && (c.flags & KOPT_TRACE_FLAG_SAMPLED);
}

void ingest_push_stream_start(kopt_grpc_call_t *call)
{
    ingest_t *ing = kopt_grpc_call_user(call);
    push_stream_t *s = stream_new(ing, call);
    grpc_op ops[2];

    if (!s) {
        kopt_grpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    s->agent_traced = stream_traced(call);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &s->cancelled;
    start(s, ops, 1, &s->close_tag);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    start(s, ops, 1, &s->send_tag); /* completes like an ack send with no message */
    s->sending = 1;
    if (ing->draining)
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "ingest is shutting down; connect to another replica");
    else if (!kopt_nats_connected(ing->nats))
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "JetStream is not reachable from ingest; retry later");
    else if (ing->n_streams > ing->opts.max_streams) {
        ingest_count_rejected(ing, "too_many_streams");
        snprintf(s->retry_ms, sizeof(s->retry_ms), "%d", RETRY_STREAMS_MS);
        end_stream(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many streams (%u); retry in %d ms",
                   ing->opts.max_streams, RETRY_STREAMS_MS);
    } else if (identify(s) == 0 && s->has_id)
        take_slot(s);
    maybe_read(s);
    unref(s);
}

void ingest_push_streams_end_idle(ingest_t *ing, uint64_t now_ns)
{
    uint64_t idle_ns = ing->opts.stream_idle_ms * 1000000;

    for (push_stream_t *s = ing->streams; s; s = s->next) {
        /* Waiting on us (publishes, a full window) is not idleness. */
        if (s->ending || s->status_sent || s->head || s->paused ||
            now_ns - s->last_batch_ns < idle_ns)
            continue;
        kopt_metric_counter_inc(ing->m.idle_ended);
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "no batch for %" PRIu64 " s (--stream-idle-timeout); reconnect to send more",
                   (now_ns - s->last_batch_ns) / 1000000000);
        maybe_send(s);
    }
}

void ingest_push_streams_drain(ingest_t *ing)
{
    for (push_stream_t *s = ing->streams; s; s = s->next) {
        end_stream(s, GRPC_STATUS_UNAVAILABLE,
                   "ingest is shutting down; connect to another replica");
        maybe_send(s);
    }
}
