/* The agent's link to ingest: one kopt.v1.Ingest/Push stream over mutual TLS
 * at a time, fed from a batch source (the spool), with a window of unacked
 * batches, cumulative acks handed back to the source, reconnects with
 * backoff across several ingest addresses, and re-sending from the oldest
 * unacked batch after every reconnect (ingest de-duplicates by
 * agent_id/epoch/seq). Runs on the libuv loop; gRPC completions cross over
 * through kopt_grpc_loop. */
#ifndef AGENT_TRANSPORT_H
#define AGENT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <grpc/grpc.h>

typedef struct {
    const uint8_t *bytes; /* a serialized MetricBatch; valid until the next source call */
    size_t len;
    uint64_t epoch, seq;
} agent_batch_ref_t;

/* What the transport reads from and reports to (the spool, or a test). */
typedef struct {
    /* The next batch after the last one returned, or -EAGAIN when none. */
    int (*next)(void *data, agent_batch_ref_t *out);
    /* Start again from the oldest batch not yet acked (after a reconnect). */
    void (*rewind)(void *data);
    /* Everything of `epoch` up to `seq` is settled: stored or refused. */
    void (*ack)(void *data, uint64_t epoch, uint64_t seq);
    /* Ingest refused this batch for good (`reason` for logs and metrics). */
    void (*rejected)(void *data, uint64_t epoch, uint64_t seq, const char *reason);
    void *data;
} agent_batch_source_t;

typedef struct {
    const char *const *targets; /* "host:port", from agent_transport_home on; kept */
    size_t n_targets;
    grpc_channel_credentials *creds; /* NULL: plaintext (--insecure); taken */
    const char *server_name;         /* TLS name override, or NULL */
    uint32_t window;                 /* unacked batches in flight */
    uint64_t backoff_base_ms, backoff_max_ms;
    uint32_t poison_after; /* same INVALID_ARGUMENT this often without progress:
                              the oldest batch is dropped as poison */
    const char *agent_id;  /* the batches' agent_id: their trace ids derive from it; kept */
} agent_transport_opts_t;

typedef struct {
    uint64_t sent, acked, rejected, poison, reconnects, resent;
    uint64_t ends_by_code[17]; /* stream ends by gRPC status */
    int connected;
} agent_transport_stats_t;

typedef struct agent_transport agent_transport_t;

/* The address an agent starts at: its id hashed over the list, so agents
 * spread over ingest replicas. A stream that gets nowhere moves to the next
 * address and stays there until that one fails too (docs/deploy.md). */
size_t agent_transport_home(const char *agent_id, size_t n_targets);

int agent_transport_new(uv_loop_t *loop, const agent_transport_opts_t *opts,
                        const agent_batch_source_t *source, agent_transport_t **out);

/* Connects and starts streaming. */
int agent_transport_start(agent_transport_t *t);

/* A new batch is in the source: send it if the window allows. */
void agent_transport_kick(agent_transport_t *t);

void agent_transport_stats(const agent_transport_t *t, agent_transport_stats_t *out);

/* Readiness for /readyz: 0 when a Push stream is established (ingest took
 * our headers), every batch sent on it has been acked, and the source has
 * nothing more to send; so before anything was sent, a stream is up and the
 * spool holds nothing unacked. Otherwise -ENOTCONN (no stream) or -EAGAIN
 * (batches unacked or waiting), with the reason written to `reason`. */
int agent_transport_ready(const agent_transport_t *t, char *reason, size_t len);

/* Half-closes the stream, waits up to `deadline_ms` for the last acks, then
 * frees everything and calls `done` on the loop thread. */
void agent_transport_stop(agent_transport_t *t, uint64_t deadline_ms, void (*done)(void *),
                          void *arg);

#endif
