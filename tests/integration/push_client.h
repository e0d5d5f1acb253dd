/* A blocking client for one kopt.v1.Ingest/Push stream on gRPC C core: opens
 * the call over mutual TLS (or plaintext), sends MetricBatch bytes with one
 * SEND_MESSAGE in flight, collects the cumulative PushAcks, rejections and
 * window refusals as they arrive, and reads the final status with its
 * trailers. Each client owns
 * its channel and completion queue and is driven only by the thread that calls
 * it, so a test can interleave several streams from one thread. grpc_init()
 * is the caller's. */
#ifndef KOPT_TEST_PUSH_CLIENT_H
#define KOPT_TEST_PUSH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "kopt/v1/ingest.pb-c.h"
#include "kopt/v1/metrics.pb-c.h"

typedef struct kopt_push_client kopt_push_client_t;

typedef struct {
    const char *target;    /* "127.0.0.1:7400" */
    const char *ca_path;   /* PEM CA to trust; NULL: plaintext */
    const char *cert_path; /* PEM client certificate; NULL: present none */
    const char *key_path;  /* its key */
    int deadline_ms;       /* of the whole call; 0: 60 s */
} kopt_push_client_opts_t;

typedef struct {
    uint64_t epoch, seq;
    int reason; /* Kopt__V1__RejectReason */
    char message[256];
} kopt_push_rejection_t;

/* A PushAck.window_refusals entry, and the acked_through_seq of the ack
 * that carried it (the contract: the first ack that covers the batch). */
typedef struct {
    uint64_t epoch, seq;
    int reason; /* Kopt__V1__RejectReason */
    uint32_t windows_refused, windows_stored;
    char message[256];
    uint64_t ack_epoch, ack_through_seq;
} kopt_push_window_refusal_t;

/* Creates the channel and starts the call (the connection is made lazily, so
 * a refused handshake shows up in the status, not here). Returns 0, -ENOENT
 * if a PEM file cannot be read, -EIO if gRPC refuses. Free with
 * kopt_push_client_free(). */
int kopt_push_client_open(const kopt_push_client_opts_t *o, kopt_push_client_t **out);

/* Sends one message of any bytes (copied). Waits for the previous send and
 * then for this one to be written, handling acks meanwhile. Returns 0,
 * -EPIPE when the stream is over (see kopt_push_client_status), -ETIMEDOUT
 * when the server did not take it in time (flow control: the send stays in
 * flight and later sends wait for it). */
int kopt_push_client_send(kopt_push_client_t *c, const void *data, size_t len, int timeout_ms);

/* Packs `b` and sends it like kopt_push_client_send(). */
int kopt_push_client_send_batch(kopt_push_client_t *c, const Kopt__V1__MetricBatch *b,
                                int timeout_ms);

/* Handles events until an ack covers (epoch, seq), the stream ends or the
 * time is up. Returns 0, -EPIPE or -ETIMEDOUT. */
int kopt_push_client_wait_acked(kopt_push_client_t *c, uint64_t epoch, uint64_t seq,
                                int timeout_ms);

/* Handles whatever has arrived within `timeout_ms` (0: only what is ready). */
void kopt_push_client_poll(kopt_push_client_t *c, int timeout_ms);

/* Half-closes (no more batches) unless the stream already ended, then waits
 * for the status. Returns the gRPC status code, or -ETIMEDOUT. */
int kopt_push_client_finish(kopt_push_client_t *c, int timeout_ms);

/* Waits for the status without half-closing: the server ends the stream.
 * Returns the gRPC status code, or -ETIMEDOUT. */
int kopt_push_client_wait_status(kopt_push_client_t *c, int timeout_ms);

/* -1 until the status arrived, then its code. */
int kopt_push_client_status(const kopt_push_client_t *c);

/* The status message ("" before the status). Owned by the client. */
const char *kopt_push_client_details(const kopt_push_client_t *c);

/* A trailing metadata value ("" if absent), copied into buf. */
const char *kopt_push_client_trailer(const kopt_push_client_t *c, const char *key, char *buf,
                                     size_t len);

/* Highest acked_through_seq seen for `epoch` (0: none). */
uint64_t kopt_push_client_acked(const kopt_push_client_t *c, uint64_t epoch);

/* PushAcks received, and whether any lowered acked_through_seq of its epoch
 * (which the contract forbids) or could not be decoded. */
size_t kopt_push_client_n_acks(const kopt_push_client_t *c);
int kopt_push_client_ack_errors(const kopt_push_client_t *c);

/* Rejections received so far, in order. */
size_t kopt_push_client_n_rejections(const kopt_push_client_t *c);
const kopt_push_rejection_t *kopt_push_client_rejection(const kopt_push_client_t *c, size_t i);

/* Window refusals received so far, in order. */
size_t kopt_push_client_n_window_refusals(const kopt_push_client_t *c);
const kopt_push_window_refusal_t *kopt_push_client_window_refusal(const kopt_push_client_t *c,
                                                                  size_t i);

/* Cancels the call if it is still open, waits for gRPC to hand back every
 * operation, and frees everything. NULL is a no-op. */
void kopt_push_client_free(kopt_push_client_t *c);

#endif
