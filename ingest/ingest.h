/* The Ingest service: kopt.v1.Ingest/Push streams on a kopt gRPC server,
 * validated batches published to JetStream, acks after PubAcks. main.c makes
 * one, and drains it on SIGTERM. Loop thread only. */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/batch_validate.h>
#include <kopt/grpc_server.h>
#include <kopt/metrics.h>
#include <kopt/nats.h>

#include "publish.h"
#include "rate_limit.h"
#include "stream_slots.h"

typedef struct {
    int insecure;                   /* no client certificates: trust the batch's own identity */
    size_t max_batch_bytes;         /* larger batches are refused (TOO_LARGE) */
    uint32_t max_streams;           /* concurrent Push streams */
    uint32_t max_streams_per_agent; /* of them, for one client identity (not with insecure) */
    uint64_t stream_idle_ms;        /* a stream that sends nothing this long ends; 0: never */
    size_t max_inflight_bytes;  /* published but not yet acked, all streams; reads pause above */
    const char *subject_prefix; /* "kopt.metrics" */
    kopt_batch_limits_t limits;
    ingest_rate_limit_opts_t rate;
    ingest_publisher_opts_t publish;
} ingest_opts_t;

typedef struct ingest ingest_t;

/* Registers Push on `srv` (before it starts) and the ingest metrics on `m`.
 * Publishes through `nats`; both must outlive the service. */
int ingest_new(uv_loop_t *loop, kopt_grpc_server_t *srv, kopt_nats_t *nats, kopt_metrics_t *m,
               const ingest_opts_t *opts, ingest_t **out);

/* Reload: new rate limits apply to every agent at once. */
void ingest_set_rate(ingest_t *ing, const ingest_rate_limit_opts_t *rate);

/* SIGTERM: refuse new streams, stop reading, let in-flight batches finish and
 * be acked, end each stream with UNAVAILABLE (the agent reconnects to
 * another replica), then call `done`. */
void ingest_drain(ingest_t *ing, void (*done)(void *arg), void *arg);

uint32_t ingest_streams(const ingest_t *ing);

/* After the drain finished and the gRPC server is gone. NULL ok. */
void ingest_free(ingest_t *ing);

#endif
