/* A blocking kopt.v1.Ingest/Push client on gRPC C core (push_client.h).
 * Operations follow the client bidi recipe: SEND_INITIAL_METADATA and
 * RECV_STATUS_ON_CLIENT start with the call, one RECV_MESSAGE is always
 * re-armed, and at most one SEND_MESSAGE is in flight. The client's own
 * completion queue is driven by whichever call is waiting. */
#include "push_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define PUSH_METHOD "/kopt.v1.Ingest/Push"
#define MAX_EPOCHS 16

enum { TAG_START = 1, TAG_SEND, TAG_RECV, TAG_CLOSE, TAG_STATUS };

typedef struct {
    uint64_t epoch, acked;
} epoch_ack_t;

struct kopt_push_client {
    grpc_completion_queue *cq;
    grpc_channel *channel;
    grpc_call *call;
    int outstanding; /* batches started and not yet completed */
    int sending, send_failed, recv_done, close_sent, status_done;
    grpc_byte_buffer *out, *in;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details_slice;
    const char *error_string;
    char *details;
    epoch_ack_t epochs[MAX_EPOCHS];
    size_t n_epochs, n_acks;
    int ack_errors;
    kopt_push_rejection_t *rejections;
    size_t n_rejections;
    kopt_push_window_refusal_t *refusals;
    size_t n_refusals;
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0'; /* gRPC wants NUL-terminated PEM */
        }
    }
    fclose(f);
    return buf;
}

static gpr_timespec deadline_in(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int start(kopt_push_client_t *c, const grpc_op *ops, size_t n, intptr_t tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, (void *)tag, NULL);

    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "push_client: grpc_call_start_batch(tag %d) refused: %d\n", (int)tag, e);
        return -EIO;
    }
    c->outstanding++;
    return 0;
}

static int arm_recv(kopt_push_client_t *c, int with_initial_md)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (with_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->in;
    return start(c, ops, n, TAG_RECV);
}

static epoch_ack_t *epoch_slot(kopt_push_client_t *c, uint64_t epoch, int create)
{
    for (size_t i = 0; i < c->n_epochs; i++)
        if (c->epochs[i].epoch == epoch)
            return &c->epochs[i];
    if (!create || c->n_epochs == MAX_EPOCHS)
        return NULL;
    c->epochs[c->n_epochs] = (epoch_ack_t){.epoch = epoch};
    return &c->epochs[c->n_epochs++];
}

static void record_refusals(kopt_push_client_t *c, const Kopt__V1__PushAck *ack)
{
    kopt_push_window_refusal_t *more;

    if (ack->n_window_refusals == 0)
        return;
    more = realloc(c->refusals, (c->n_refusals + ack->n_window_refusals) * sizeof(*more));
    if (!more) {
        c->ack_errors++;
        return;
    }
    c->refusals = more;
    for (size_t i = 0; i < ack->n_window_refusals; i++) {
        kopt_push_window_refusal_t *r = &c->refusals[c->n_refusals++];
        const Kopt__V1__WindowRefusal *wr = ack->window_refusals[i];

        r->epoch = wr->epoch;
        r->seq = wr->seq;
        r->reason = wr->reason;
        r->windows_refused = wr->windows_refused;
        r->windows_stored = wr->windows_stored;
        snprintf(r->message, sizeof(r->message), "%s", wr->message ? wr->message : "");
        r->ack_epoch = ack->epoch;
        r->ack_through_seq = ack->acked_through_seq;
    }
}

static void record_ack(kopt_push_client_t *c, grpc_slice data)
{
    Kopt__V1__PushAck *ack =
        kopt__v1__push_ack__unpack(NULL, GRPC_SLICE_LENGTH(data), GRPC_SLICE_START_PTR(data));
    epoch_ack_t *e;
    kopt_push_rejection_t *more;

    c->n_acks++;
    if (!ack) {
        fprintf(stderr, "push_client: undecodable PushAck (%zu bytes)\n",
                (size_t)GRPC_SLICE_LENGTH(data));
        c->ack_errors++;
        return;
    }
    e = epoch_slot(c, ack->epoch, 1);
    if (!e || ack->acked_through_seq < e->acked) {
        fprintf(stderr, "push_client: ack for epoch %" PRIu64 " went back to %" PRIu64 "\n",
                ack->epoch, ack->acked_through_seq);
        c->ack_errors++;
    } else {
        e->acked = ack->acked_through_seq;
    }
    more = realloc(c->rejections, (c->n_rejections + ack->n_rejections + 1) * sizeof(*more));
    if (more) {
        c->rejections = more;
        for (size_t i = 0; i < ack->n_rejections; i++) {
            kopt_push_rejection_t *r = &c->rejections[c->n_rejections++];
            const Kopt__V1__BatchRejection *br = ack->rejections[i];

            r->epoch = br->epoch;
            r->seq = br->seq;
            r->reason = br->reason;
            snprintf(r->message, sizeof(r->message), "%s", br->message ? br->message : "");
        }
    }
    record_refusals(c, ack);
    kopt__v1__push_ack__free_unpacked(ack, NULL);
}

static void on_recv(kopt_push_client_t *c, int ok)
{
    grpc_byte_buffer_reader rd;
    grpc_slice data;

    if (!ok || !c->in) {
        c->recv_done = 1; /* the server is done sending: the status follows */
        return;
    }
    if (grpc_byte_buffer_reader_init(&rd, c->in)) {
        data = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        record_ack(c, data);
        grpc_slice_unref(data);
    }
    grpc_byte_buffer_destroy(c->in);
    c->in = NULL;
    if (arm_recv(c, 0) < 0)
        c->recv_done = 1;
}

static void on_status(kopt_push_client_t *c)
{
    size_t n = GRPC_SLICE_LENGTH(c->details_slice);

    c->status_done = 1;
    free(c->details);
    c->details = malloc(n + 1);
    if (c->details) {
        memcpy(c->details, GRPC_SLICE_START_PTR(c->details_slice), n);
        c->details[n] = '\0';
    }
}

/* Handles one event, waiting until `deadline`. Returns 0 on a timeout. */
static int pump(kopt_push_client_t *c, gpr_timespec deadline)
{
    grpc_event ev = grpc_completion_queue_next(c->cq, deadline, NULL);

    if (ev.type != GRPC_OP_COMPLETE)
        return 0;
    c->outstanding--;
    switch ((intptr_t)ev.tag) {
    case TAG_SEND:
        c->sending = 0;
        grpc_byte_buffer_destroy(c->out);
        c->out = NULL;
        if (!ev.success)
            c->send_failed = 1;
        break;
    case TAG_RECV:
        on_recv(c, ev.success);
        break;
    case TAG_STATUS:
        on_status(c);
        break;
    default: /* TAG_START, TAG_CLOSE: nothing to do */
        break;
    }
    return 1;
}

int kopt_push_client_open(const kopt_push_client_opts_t *o, kopt_push_client_t **out)
{
    kopt_push_client_t *c = calloc(1, sizeof(*c));
    grpc_channel_credentials *creds = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                    .value.integer = 1}; /* a connection of its own: streams stay independent */
    grpc_channel_args args = {.num_args = 1, .args = &arg};
    grpc_slice method = grpc_slice_from_static_string(PUSH_METHOD);
    grpc_op ops[1];
    int r = 0;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->status = (grpc_status_code)-1;
    c->details_slice = grpc_empty_slice();
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (o->ca_path) {
        grpc_ssl_pem_key_cert_pair pair;

        ca = read_file(o->ca_path);
        if (o->cert_path) {
            cert = read_file(o->cert_path);
            key = read_file(o->key_path);
        }
        if (!ca || (o->cert_path && (!cert || !key))) {
            r = -ENOENT;
            goto out;
        }
        pair.private_key = key;
        pair.cert_chain = cert;
        creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    c->channel = grpc_channel_create(o->target, creds, &args);
    c->call =
        grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
                                 deadline_in(o->deadline_ms > 0 ? o->deadline_ms : 60000), NULL);
    if (!c->call) {
        r = -EIO;
        goto out;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[0].data.recv_status_on_client.status = &c->status;
    ops[0].data.recv_status_on_client.status_details = &c->details_slice;
    ops[0].data.recv_status_on_client.error_string = &c->error_string;
    r = start(c, ops, 1, TAG_STATUS);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (r == 0)
        r = start(c, ops, 1, TAG_START);
    if (r == 0)
        r = arm_recv(c, 1);
out:
    if (creds)
        grpc_channel_credentials_release(creds);
    free(ca);
    free(cert);
    free(key);
    if (r < 0) {
        kopt_push_client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* Waits for the send in flight, if any. 0, -EPIPE or -ETIMEDOUT. */
static int wait_send(kopt_push_client_t *c, gpr_timespec deadline)
{
    while (c->sending)
        if (!pump(c, deadline))
            return -ETIMEDOUT;
    return c->send_failed || c->status_done ? -EPIPE : 0;
}

int kopt_push_client_send(kopt_push_client_t *c, const void *data, size_t len, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);
    grpc_op op;
    grpc_slice s;
    int r;

    kopt_push_client_poll(c, 0);
    r = wait_send(c, deadline);
    if (r < 0 || c->close_sent)
        return r < 0 ? r : -EPIPE;
    s = grpc_slice_from_copied_buffer(data, len);
    c->out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->out;
    if (start(c, &op, 1, TAG_SEND) < 0) {
        grpc_byte_buffer_destroy(c->out);
        c->out = NULL;
        return -EPIPE;
    }
    c->sending = 1;
    return wait_send(c, deadline);
}

int kopt_push_client_send_batch(kopt_push_client_t *c, const Kopt__V1__MetricBatch *b,
                                int timeout_ms)
{
    size_t n = kopt__v1__metric_batch__get_packed_size(b);
    uint8_t *buf = malloc(n ? n : 1);
    int r;

    if (!buf)
        return -ENOMEM;
    kopt__v1__metric_batch__pack(b, buf);
    r = kopt_push_client_send(c, buf, n, timeout_ms);
    free(buf);
    return r;
}

int kopt_push_client_wait_acked(kopt_push_client_t *c, uint64_t epoch, uint64_t seq, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);

    for (;;) {
        if (kopt_push_client_acked(c, epoch) >= seq)
            return 0;
        if (c->status_done)
            return -EPIPE;
        if (!pump(c, deadline))
            return -ETIMEDOUT;
    }
}

void kopt_push_client_poll(kopt_push_client_t *c, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);

    while (pump(c, deadline))
        deadline = gpr_inf_past(GPR_CLOCK_MONOTONIC);
}

int kopt_push_client_wait_status(kopt_push_client_t *c, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);

    while (!c->status_done)
        if (!pump(c, deadline))
            return -ETIMEDOUT;
    return (int)c->status;
}

int kopt_push_client_finish(kopt_push_client_t *c, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);
    grpc_op op;

    if (!c->status_done && !c->close_sent && wait_send(c, deadline) != -ETIMEDOUT &&
        !c->status_done) {
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        if (start(c, &op, 1, TAG_CLOSE) == 0)
            c->close_sent = 1;
    }
    while (!c->status_done)
        if (!pump(c, deadline))
            return -ETIMEDOUT;
    return (int)c->status;
}

int kopt_push_client_status(const kopt_push_client_t *c)
{
    return c->status_done ? (int)c->status : -1;
}

const char *kopt_push_client_details(const kopt_push_client_t *c)
{
    if (!c->status_done)
        return "";
    if (c->details && c->details[0])
        return c->details;
    return c->error_string ? c->error_string : "";
}

const char *kopt_push_client_trailer(const kopt_push_client_t *c, const char *key, char *buf,
                                     size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < c->trailing_md.count; i++) {
        const grpc_metadata *m = &c->trailing_md.metadata[i];

        if (grpc_slice_str_cmp(m->key, key) == 0) {
            snprintf(buf, len, "%.*s", (int)GRPC_SLICE_LENGTH(m->value),
                     (const char *)GRPC_SLICE_START_PTR(m->value));
            break;
        }
    }
    return buf;
}

uint64_t kopt_push_client_acked(const kopt_push_client_t *c, uint64_t epoch)
{
    for (size_t i = 0; i < c->n_epochs; i++)
        if (c->epochs[i].epoch == epoch)
            return c->epochs[i].acked;
    return 0;
}

size_t kopt_push_client_n_acks(const kopt_push_client_t *c)
{
    return c->n_acks;
}

int kopt_push_client_ack_errors(const kopt_push_client_t *c)
{
    return c->ack_errors;
}

size_t kopt_push_client_n_rejections(const kopt_push_client_t *c)
{
    return c->n_rejections;
}

const kopt_push_rejection_t *kopt_push_client_rejection(const kopt_push_client_t *c, size_t i)
{
    return i < c->n_rejections ? &c->rejections[i] : NULL;
}

size_t kopt_push_client_n_window_refusals(const kopt_push_client_t *c)
{
    return c->n_refusals;
}

const kopt_push_window_refusal_t *kopt_push_client_window_refusal(const kopt_push_client_t *c,
                                                                  size_t i)
{
    return i < c->n_refusals ? &c->refusals[i] : NULL;
}

void kopt_push_client_free(kopt_push_client_t *c)
{
    grpc_event ev;

    if (!c)
        return;
    if (c->call) {
        if (!c->status_done)
            grpc_call_cancel(c->call, NULL);
        /* Every started batch completes after a cancel; bounded all the same. */
        while (c->outstanding > 0 && pump(c, deadline_in(10000)))
            ;
        if (c->outstanding > 0)
            fprintf(stderr, "push_client: %d operations never completed\n", c->outstanding);
        grpc_call_unref(c->call);
    }
    if (c->channel)
        grpc_channel_destroy(c->channel);
    grpc_completion_queue_shutdown(c->cq);
    do
        ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    while (ev.type != GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(c->cq);
    if (c->out)
        grpc_byte_buffer_destroy(c->out);
    if (c->in)
        grpc_byte_buffer_destroy(c->in);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details_slice);
    gpr_free((void *)c->error_string);
    free(c->details);
    free(c->rejections);
    free(c->refusals);
    free(c);
}
