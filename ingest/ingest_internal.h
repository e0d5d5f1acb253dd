/* What service.c and push_stream.c share: the service object, its metrics,
 * and the stream entry points. Not for main.c. */
#ifndef KOPT_INGEST_INTERNAL_H
#define KOPT_INGEST_INTERNAL_H

#include "ingest.h"

typedef struct push_stream push_stream_t;

typedef struct {
    kopt_metric_counter_t *stored, *duplicate, *failed, *windows, *bytes, *rate_limited;
    kopt_metric_counter_t *windows_too_old; /* kopt_ingest_windows_refused_total{too_old} */
    kopt_metric_family_t *rejected;         /* {reason} */
    kopt_metric_family_t *streams_done;     /* {code} */
    kopt_metric_histogram_t *publish_seconds;
} ingest_metrics_t;

struct kopt_ingest {
    uv_loop_t *loop;
    kopt_nats_t *nats;
    kopt_publisher_t *pub;
    kopt_rate_limit_t *rate;
    kopt_ingest_opts_t opts;
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
void kopt_push_stream_start(kopt_grpc_call_t *call);
void kopt_push_streams_drain(kopt_ingest_t *ing);
void kopt_push_streams_resume(kopt_ingest_t *ing);
void kopt_push_published(void *ref, int status, int duplicate, const char *why, void *data);

/* service.c */
int kopt_ingest_has_capacity(const kopt_ingest_t *ing);
void kopt_ingest_count_rejected(kopt_ingest_t *ing, const char *reason);
void kopt_ingest_count_stream_end(kopt_ingest_t *ing, grpc_status_code code);
/* Calls the drain callback once no stream and no publish is left. */
void kopt_ingest_check_drained(kopt_ingest_t *ing);

#endif
