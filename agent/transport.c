/* The Push client. One stream at a time; its batches are serialized per tag
 * (one send, one receive and the final status outstanding at most), all on
 * the loop thread. Sent batches wait in a ring until an ack covers them. */
#include "transport.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include <kopt/backoff.h>
#include <kopt/grpc_loop.h>
#include <kopt/log.h>
#include <kopt/trace.h>
#include <kopt/util.h>

#include "kopt/v1/ingest.pb-c.h"

#define PUSH_METHOD "/kopt.v1.Ingest/Push"

typedef struct {
    uint64_t epoch, seq;
    uint64_t sent_ns; /* Unix time, for the batch's agent.push span */
} sent_t;

struct agent_transport {
    uv_loop_t *loop;
    kopt_grpc_loop_t *gl;
    agent_transport_opts_t opts;
    agent_batch_source_t src;
    grpc_channel *ch;
    size_t target;
    /* The current call. */
    grpc_call *call;
    int refs; /* batches outstanding on it */
    int first_recv, sending, closing_sent, call_done;
    int established; /* gRPC finished sending our headers: ingest is reachable */
    int src_empty;   /* the source's last next() had nothing more to send */
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata trace_md; /* traceparent, alive until the call ends */
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send_bb, *recv_bb;
    kopt_grpc_tag_t status_tag, start_tag, recv_tag, send_tag, close_tag;
    uint64_t acks_this_call;
    /* Sent, not yet acked, oldest first. */
    sent_t *ring;
    size_t head, count;
    /* Between calls, and the end. */
    uv_timer_t retry, stop_timer;
    kopt_backoff_t backoff;
    uint32_t strikes;
    int stopping, stopped;
    int closing; /* timer handles not closed yet: t is freed when this reaches 0 */
    void (*done)(void *);
    void *done_arg;
    agent_transport_stats_t stats;
};

static void connect_call(agent_transport_t *t);
static void pump(agent_transport_t *t);

static int start(agent_transport_t *t, grpc_op *ops, size_t n, kopt_grpc_tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(t->call, ops, n, tag, NULL);

    if (e != GRPC_CALL_OK) {
        kopt_log_error("Push client: batch refused by gRPC", KOPT_INT("grpc_call_error", e));
        return -EIO;
    }
    t->refs++;
    return 0;
}

static grpc_channel *make_channel(agent_transport_t *t)
{
    grpc_arg args[3];
    grpc_channel_args ca = {.num_args = 0, .args = args};
    const char *target = t->opts.targets[t->target];
    grpc_channel *ch;

    args[ca.num_args++] = (grpc_arg){
        .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 30000};
    args[ca.num_args++] = (grpc_arg){
        .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 10000};
    if (t->opts.server_name)
        args[ca.num_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                         .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                         .value.string = (char *)t->opts.server_name};
    if (t->opts.creds) {
        ch = grpc_channel_create(target, t->opts.creds, &ca);
    } else {
        grpc_channel_credentials *insecure = grpc_insecure_credentials_create();
        ch = grpc_channel_create(target, insecure, &ca);
        grpc_channel_credentials_release(insecure);
    }
    return ch;
}

/* libuv reads a closing handle until its close callback ran, so the
 * struct holding the timers outlives both callbacks. */
static void on_timer_closed(uv_handle_t *h)
{
    agent_transport_t *t = h->data;

    if (--t->closing == 0)
        free(t);
}

static void finish_stop(agent_transport_t *t)
{
    if (t->stopped)
        return;
    t->stopped = 1;
    uv_timer_stop(&t->retry);
    uv_timer_stop(&t->stop_timer);
    if (t->ch)
        grpc_channel_destroy(t->ch);
    t->ch = NULL;
    kopt_grpc_loop_free(t->gl);
    t->closing = 2;
    t->retry.data = t->stop_timer.data = t;
    uv_close((uv_handle_t *)&t->retry, on_timer_closed);
    uv_close((uv_handle_t *)&t->stop_timer, on_timer_closed);
    if (t->opts.creds)
        grpc_channel_credentials_release(t->opts.creds);
    free(t->ring);
    t->ring = NULL;
    if (t->done)
        t->done(t->done_arg);
}

/* The server's retry hint, if it sent one (rate limits). */
static uint64_t retry_hint_ms(const agent_transport_t *t)
{
    for (size_t i = 0; i < t->trailing_md.count; i++) {
        const grpc_metadata *md = &t->trailing_md.metadata[i];
        char v[24];
        size_t n = GRPC_SLICE_LENGTH(md->value);

        if (grpc_slice_str_cmp(md->key, "kopt-retry-after-ms") != 0 || n >= sizeof(v))
            continue;
        memcpy(v, GRPC_SLICE_START_PTR(md->value), n);
        v[n] = 0;
        return strtoull(v, NULL, 10);
    }
    return 0;
}

/* The oldest unacked batch failed the same way too often: drop it. */
static void drop_poison(agent_transport_t *t)
{
    agent_batch_ref_t b;

    t->src.rewind(t->src.data);
    if (t->src.next(t->src.data, &b) < 0)
        return;
    kopt_log_error("dropping a batch ingest refuses every time", KOPT_UINT("epoch", b.epoch),
                   KOPT_UINT("seq", b.seq), KOPT_UINT("attempts", t->strikes));
    t->src.rejected(t->src.data, b.epoch, b.seq, "poison");
    t->src.ack(t->src.data, b.epoch, b.seq);
    t->stats.poison++;
    t->strikes = 0;
}

static void on_retry(uv_timer_t *timer)
{
    connect_call(kopt_container_of(timer, agent_transport_t, retry));
}

/* The call is over and every batch on it came back: clean up, then stop or
 * reconnect. */
static void release_call(agent_transport_t *t)
{
    char details[256];
    uint64_t wait;
    int no_progress = t->acks_this_call == 0;

    if (!t->call_done || t->refs > 0)
        return;
    snprintf(details, sizeof(details), "%.*s", (int)GRPC_SLICE_LENGTH(t->details),
             (const char *)GRPC_SLICE_START_PTR(t->details));
    wait = retry_hint_ms(t);
    grpc_call_unref(t->call);
    t->call = NULL;
    grpc_slice_unref(t->details);
    grpc_metadata_array_destroy(&t->initial_md);
    grpc_metadata_array_destroy(&t->trailing_md);
    grpc_slice_unref(t->trace_md.value);
    t->stats.connected = 0;
    t->stats.ends_by_code[t->status <= 16 ? t->status : 2]++;
    if (t->stopping) {
        finish_stop(t);
        return;
    }
    /* Refused without progress, and not for a rate limit (that has a hint):
     * most likely the oldest batch itself; after a few tries it goes. */
    if ((t->status == GRPC_STATUS_INVALID_ARGUMENT ||
         (t->status == GRPC_STATUS_RESOURCE_EXHAUSTED && !wait)) &&
        no_progress && ++t->strikes >= t->opts.poison_after)
        drop_poison(t);
    /* A stream that got nowhere: the next try gets a new channel (to the
     * next address, if there are several). A kept channel has gRPC's own
     * reconnect backoff, which grows to 120 s and held the stream down for a
     * minute after ingest was back; a new channel connects at once, so the
     * agent's backoff, capped at backoff_max_ms, is the only wait. */
    if (no_progress) {
        grpc_channel_destroy(t->ch);
        t->ch = NULL;
        t->target = (t->target + 1) % t->opts.n_targets;
    }
    if (!wait)
        wait = kopt_backoff_next(&t->backoff);
    kopt_log_warn("Push stream ended, reconnecting", KOPT_INT("code", t->status),
                  KOPT_STR("detail", details), KOPT_UINT("retry_ms", wait),
                  KOPT_UINT("unacked", t->count));
    t->stats.reconnects++;
    uv_timer_start(&t->retry, on_retry, wait, 0);
}

static void on_status(kopt_grpc_tag_t *tag, int ok)
{
    agent_transport_t *t = kopt_container_of(tag, agent_transport_t, status_tag);

    (void)ok;
    t->refs--;
    t->call_done = 1;
    release_call(t);
}

static void on_start(kopt_grpc_tag_t *tag, int ok)
{
    agent_transport_t *t = kopt_container_of(tag, agent_transport_t, start_tag);

    t->established = ok != 0;
    t->refs--;
    release_call(t);
}

static void post_recv(agent_transport_t *t)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (t->first_recv) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &t->initial_md;
        t->first_recv = 0;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &t->recv_bb;
    start(t, ops, n, &t->recv_tag);
}

/* One acked batch's span, from its first send on this stream to the ack;
 * its ids derive from the batch identity (kopt_trace_batch_ctx), which is
 * how ingest finds it as the parent of its own span. */
static void trace_push(const agent_transport_t *t, const sent_t *s, const char *rejected)
{
    kopt_trace_ctx_t self;
    kopt_span_t span;
    char num[24];

    if (!kopt_trace_enabled())
        return;
    kopt_trace_batch_ctx(t->opts.agent_id, s->epoch, s->seq, &self);
    kopt_span_start_with(&span, "agent.push", KOPT_SPAN_PRODUCER, &self, NULL);
    span.start_ns = s->sent_ns;
    kopt_span_attr(&span, "kopt.agent_id", t->opts.agent_id);
    snprintf(num, sizeof(num), "%" PRIu64, s->epoch);
    kopt_span_attr(&span, "kopt.epoch", num);
    snprintf(num, sizeof(num), "%" PRIu64, s->seq);
    kopt_span_attr(&span, "kopt.seq", num);
    kopt_span_end(&span, rejected != NULL, rejected);
}

static const char *rejection_of(const Kopt__V1__PushAck *ack, const sent_t *s)
{
    for (size_t i = 0; i < ack->n_rejections; i++)
        if (ack->rejections[i]->epoch == s->epoch && ack->rejections[i]->seq == s->seq)
            return ack->rejections[i]->message ? ack->rejections[i]->message : "rejected";
    return NULL;
}

/* Hands one PushAck to the source and frees its window slots. */
static void apply_ack(agent_transport_t *t, const Kopt__V1__PushAck *ack)
{
    for (size_t i = 0; i < ack->n_rejections; i++) {
        const Kopt__V1__BatchRejection *r = ack->rejections[i];
        kopt_log_warn("ingest refused a batch", KOPT_UINT("epoch", r->epoch),
                      KOPT_UINT("seq", r->seq), KOPT_STR("detail", r->message));
        t->src.rejected(t->src.data, r->epoch, r->seq, r->message ? r->message : "");
        t->stats.rejected++;
    }
    while (t->count > 0) {
        const sent_t *s = &t->ring[t->head];
        if (s->epoch != ack->epoch || s->seq > ack->acked_through_seq)
            break;
        trace_push(t, s, rejection_of(ack, s));
        t->head = (t->head + 1) % t->opts.window;
        t->count--;
        t->stats.acked++;
    }
    t->src.ack(t->src.data, ack->epoch, ack->acked_through_seq);
    t->acks_this_call++;
    t->strikes = 0;
    kopt_backoff_reset(&t->backoff);
}

static void on_recv(kopt_grpc_tag_t *tag, int ok)
{
    agent_transport_t *t = kopt_container_of(tag, agent_transport_t, recv_tag);
    grpc_byte_buffer_reader rd;
    grpc_slice sl;
    Kopt__V1__PushAck *ack;

    t->refs--;
    if (ok && t->recv_bb) {
        grpc_byte_buffer_reader_init(&rd, t->recv_bb);
        sl = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        grpc_byte_buffer_destroy(t->recv_bb);
        t->recv_bb = NULL;
        ack = kopt__v1__push_ack__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
        grpc_slice_unref(sl);
        if (ack) {
            apply_ack(t, ack);
            kopt__v1__push_ack__free_unpacked(ack, NULL);
        } else {
            kopt_log_error("undecodable PushAck from ingest; ignoring it");
        }
        post_recv(t);
        pump(t);
    }
    release_call(t);
}

static void send_close(agent_transport_t *t)
{
    grpc_op op = {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT};

    if (t->closing_sent || !t->call || t->call_done)
        return;
    t->closing_sent = 1;
    start(t, &op, 1, &t->close_tag);
}

static void on_send(kopt_grpc_tag_t *tag, int ok)
{
    agent_transport_t *t = kopt_container_of(tag, agent_transport_t, send_tag);

    t->refs--;
    t->sending = 0;
    grpc_byte_buffer_destroy(t->send_bb);
    t->send_bb = NULL;
    if (ok) {
        if (t->stopping)
            send_close(t);
        else
            pump(t);
    }
    release_call(t);
}

static void on_close_sent(kopt_grpc_tag_t *tag, int ok)
{
    agent_transport_t *t = kopt_container_of(tag, agent_transport_t, close_tag);

    (void)ok;
    t->refs--;
    release_call(t);
}

/* Sends the next batch if the window and the stream allow. */
static void pump(agent_transport_t *t)
{
    agent_batch_ref_t b;
    grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
    grpc_slice sl;

    if (!t->call || t->call_done || t->sending || t->stopping || t->count >= t->opts.window)
        return;
    t->src_empty = t->src.next(t->src.data, &b) < 0;
    if (t->src_empty)
        return;
    sl = grpc_slice_from_copied_buffer((const char *)b.bytes, b.len);
    t->send_bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    op.data.send_message.send_message = t->send_bb;
    if (start(t, &op, 1, &t->send_tag) < 0) {
        grpc_byte_buffer_destroy(t->send_bb);
        t->send_bb = NULL;
        return;
    }
    t->sending = 1;
    t->ring[(t->head + t->count) % t->opts.window] = (sent_t){b.epoch, b.seq, kopt_trace_now_ns()};
    t->count++;
    t->stats.sent++;
}

/* With tracing on, the stream's metadata carries a traceparent (the
 * derivation for epoch 0, seq 0, which no batch has): its sampled flag tells
 * ingest that this agent records agent.push spans, whose ids ingest derives
 * per batch. gRPC metadata is per call and Push is one long stream, so no
 * per-batch value can ride in it (docs/observability.md, "Tracing"). */
static void trace_metadata(agent_transport_t *t, grpc_op *op)
{
    char tp[KOPT_TRACEPARENT_LEN + 1];
    kopt_trace_ctx_t c;

    t->trace_md.key = grpc_slice_from_static_string("traceparent");
    t->trace_md.value = grpc_empty_slice();
    if (!kopt_trace_enabled())
        return;
    kopt_trace_batch_ctx(t->opts.agent_id, 0, 0, &c);
    kopt_traceparent_format(&c, tp);
    t->trace_md.value = grpc_slice_from_copied_string(tp);
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = &t->trace_md;
}

static void connect_call(agent_transport_t *t)
{
    grpc_op ops[1];
    grpc_completion_queue *cq = kopt_grpc_loop_cq(t->gl);

    if (!t->ch)
        t->ch = make_channel(t);
    t->call = grpc_channel_create_call(t->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                       grpc_slice_from_static_string(PUSH_METHOD), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    t->refs = 0;
    t->first_recv = 1;
    t->sending = t->closing_sent = t->call_done = 0;
    t->established = t->src_empty = 0;
    t->acks_this_call = 0;
    t->details = grpc_empty_slice();
    grpc_metadata_array_init(&t->initial_md);
    grpc_metadata_array_init(&t->trailing_md);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &t->trailing_md;
    ops[0].data.recv_status_on_client.status = &t->status;
    ops[0].data.recv_status_on_client.status_details = &t->details;
    start(t, ops, 1, &t->status_tag);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    trace_metadata(t, &ops[0]);
    start(t, ops, 1, &t->start_tag);
    post_recv(t);
    /* Everything not acked goes again, oldest first. */
    t->stats.resent += t->count;
    t->head = t->count = 0;
    t->src.rewind(t->src.data);
    t->stats.connected = 1;
    pump(t);
}

/* FNV-1a of the agent id: stable across restarts and builds, and spread
 * evenly enough over a handful of addresses. */
size_t agent_transport_home(const char *agent_id, size_t n_targets)
{
    uint64_t h = 14695981039346656037ull;

    if (n_targets == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)(agent_id ? agent_id : ""); *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)(h % n_targets);
}

int agent_transport_new(uv_loop_t *loop, const agent_transport_opts_t *opts,
                        const agent_batch_source_t *source, agent_transport_t **out)
{
    agent_transport_t *t = calloc(1, sizeof(*t));
    int r;

    if (!t)
        return -ENOMEM;
    if (opts->n_targets == 0 || opts->window == 0) {
        free(t);
        return -EINVAL;
    }
    t->loop = loop;
    t->opts = *opts;
    /* A fleet spreads over the list; failing over moves on from here. */
    t->target = agent_transport_home(opts->agent_id, opts->n_targets);
    if (t->opts.poison_after == 0)
        t->opts.poison_after = 3;
    t->src = *source;
    t->ring = calloc(opts->window, sizeof(sent_t));
    r = t->ring ? kopt_grpc_loop_new(loop, &t->gl) : -ENOMEM;
    if (r < 0) {
        free(t->ring);
        free(t);
        return r;
    }
    kopt_backoff_init(&t->backoff, opts->backoff_base_ms ? opts->backoff_base_ms : 250,
                      opts->backoff_max_ms ? opts->backoff_max_ms : 30000, kopt_now_ns());
    uv_timer_init(loop, &t->retry);
    uv_timer_init(loop, &t->stop_timer);
    kopt_grpc_tag_init(&t->status_tag, on_status, 1);
    kopt_grpc_tag_init(&t->start_tag, on_start, 1);
    kopt_grpc_tag_init(&t->recv_tag, on_recv, 1);
    kopt_grpc_tag_init(&t->send_tag, on_send, 1);
    kopt_grpc_tag_init(&t->close_tag, on_close_sent, 1);
    *out = t;
    return 0;
}

int agent_transport_start(agent_transport_t *t)
{
    int r = kopt_grpc_loop_start(t->gl);

    if (r == 0)
        connect_call(t);
    return r;
}

void agent_transport_kick(agent_transport_t *t)
{
    t->src_empty = 0;
    pump(t);
}


int agent_transport_ready(const agent_transport_t *t, char *reason, size_t len)
{
    const sent_t *oldest = t->count ? &t->ring[t->head] : NULL;

    if (!t->call || t->call_done) {
        snprintf(reason, len, "no Push stream to ingest (reconnecting); batches wait in the spool");
        return -ENOTCONN;
    }
    if (!t->established) {
        snprintf(reason, len, "Push stream to ingest not established yet");
        return -ENOTCONN;
    }
    if (oldest) {
        snprintf(reason, len,
                 "%zu batch(es) sent and not acked by ingest yet, the oldest epoch %llu seq %llu",
                 t->count, (unsigned long long)oldest->epoch, (unsigned long long)oldest->seq);
        return -EAGAIN;
    }
    if (t->sending || !t->src_empty) {
        snprintf(reason, len, "batches wait in the spool to be sent");
        return -EAGAIN;
    }
    return 0;
}

void agent_transport_stats(const agent_transport_t *t, agent_transport_stats_t *out)
{
    *out = t->stats;
}

static void on_stop_deadline(uv_timer_t *timer)
{
    agent_transport_t *t = kopt_container_of(timer, agent_transport_t, stop_timer);

    if (t->call && !t->call_done)
        grpc_call_cancel(t->call, NULL);
}

void agent_transport_stop(agent_transport_t *t, uint64_t deadline_ms, void (*done)(void *),
                          void *arg)
{
    t->stopping = 1;
    t->done = done;
    t->done_arg = arg;
    uv_timer_stop(&t->retry);
    if (!t->call) {
        finish_stop(t);
        return;
    }
    if (!t->sending)
        send_close(t);
    uv_timer_start(&t->stop_timer, on_stop_deadline, deadline_ms, 0);
}
