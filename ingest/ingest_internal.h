/* What service.c and push_stream.c share: the service object, its metrics,
 * and the stream entry points. Not for main.c. */
#ifndef INGEST_INTERNAL_H
#define INGEST_INTERNAL_H

#include "ingest.h"

typedef struct push_stream push_stream_t;

typedef struct {
    kopt_metric_counter_t *stored, *duplicate, *failed, *windows, *bytes, *rate_limited;
    kopt_metric_counter_t *windows_too_old; /* kopt_ingest_windows_refused_total{too_old} */
    kopt_metric_counter_t *idle_ended;      /* kopt_ingest_streams_idle_ended_total */
    kopt_metric_family_t *rejected;         /* {reason} */
    kopt_metric_family_t *streams_done;     /* {code} */
    kopt_metric_histogram_t *publish_seconds;
} ingest_metrics_t;

struct ingest {
    uv_loop_t *loop;
    kopt_nats_t *nats;
    ingest_publisher_t *pub;
    ingest_rate_limit_t *rate;
    ingest_stream_slots_t *slots; /* streams per client identity */
    uv_timer_t *idle_timer;       /* ends idle streams; closed (and freed) by ingest_free */
    ingest_opts_t opts;
    ingest_metrics_t m;
    push_stream_t *streams;     /* every open stream (push_stream.c) */
    push_stream_t *paused_head; /* waiting for publish capacity, FIFO */
    push_stream_t *paused_tail;
    uint32_t n_streams;
    size_t inflight_bytes;
    uint32_t inflight_batches;
    int draining;
    void (*drained)(void *arg);
    void *drained_arg;
};

/* push_stream.c */
void ingest_push_stream_start(kopt_grpc_call_t *call);
void ingest_push_streams_drain(ingest_t *ing);
void ingest_push_streams_resume(ingest_t *ing);
void ingest_push_published(void *ref, int status, int duplicate, const char *why, void *data);
/* Ends the streams that received nothing for opts.stream_idle_ms. */
void ingest_push_streams_end_idle(ingest_t *ing, uint64_t now_ns);

/* service.c */
int ingest_has_capacity(const ingest_t *ing);
void ingest_count_rejected(ingest_t *ing, const char *reason);
void ingest_count_stream_end(ingest_t *ing, grpc_status_code code);
/* Calls the drain callback once no stream and no publish is left. */
void ingest_check_drained(ingest_t *ing);

#endif
