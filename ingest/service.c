/* The Ingest service object: its metrics, publisher and rate limits, the
 * capacity rule that pauses reads, and the drain. Streams are in
 * push_stream.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <kopt/log.h>
#include <kopt/util.h>

#include "ingest_internal.h"

#define PUSH_METHOD "/kopt.v1.Ingest/Push"

static double gauge_streams(void *data)
{
    return ((ingest_t *)data)->n_streams;
}

static double gauge_inflight_batches(void *data)
{
    return ((ingest_t *)data)->inflight_batches;
}

static double gauge_inflight_bytes(void *data)
{
    return (double)((ingest_t *)data)->inflight_bytes;
}

static int register_metrics(ingest_t *ing, kopt_metrics_t *m)
{
    kopt_metric_family_t *batches, *windows, *refused, *bytes, *limited, *publish, *idle;
    const double *lat;
    size_t n_lat;
    int r = 0;

    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_batches_total",
                                 "Batches settled, by result (stored, duplicate, failed).",
                                 "result", &batches);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_windows_total",
                                 "Container windows stored in JetStream.", NULL, &windows);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_windows_refused_total",
                                 "Container windows left out of their batch for good, by reason "
                                 "(too_old: older than --max-batch-age); the stream goes on.",
                                 "reason", &refused);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_received_bytes_total",
                                 "Bytes of MetricBatch messages received.", NULL, &bytes);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_rate_limited_total",
                                 "Streams ended because an agent exceeded its rate limit.", NULL,
                                 &limited);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_rejected_total",
                                 "Batches or streams refused, by reason.", "reason",
                                 &ing->m.rejected);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_streams_ended_total",
                                 "Push streams ended, by gRPC status code.", "code",
                                 &ing->m.streams_done);
    r = r ? r
          : kopt_metrics_counter(m, "kopt_ingest_streams_idle_ended_total",
                                 "Push streams ended because they sent no batch for "
                                 "--stream-idle-timeout.",
                                 NULL, &idle);
    lat = kopt_metrics_latency_buckets(&n_lat);
    r = r ? r
          : kopt_metrics_histogram(m, "kopt_ingest_publish_duration_seconds",
                                   "Time from publish to JetStream PubAck.", NULL, lat, n_lat,
                                   &publish);
    r = r ? r
          : kopt_metrics_gauge_func(m, "kopt_ingest_streams_open", "Push streams open now.",
                                    gauge_streams, ing);
    r = r ? r
          : kopt_metrics_gauge_func(m, "kopt_ingest_inflight_batches",
                                    "Batches published and awaiting their PubAck.",
                                    gauge_inflight_batches, ing);
    r = r ? r
          : kopt_metrics_gauge_func(m, "kopt_ingest_inflight_bytes",
                                    "Bytes published and awaiting their PubAck.",
                                    gauge_inflight_bytes, ing);
    if (r < 0)
        return r;
    ing->m.stored = kopt_metric_counter_with(batches, "stored");
    ing->m.duplicate = kopt_metric_counter_with(batches, "duplicate");
    ing->m.failed = kopt_metric_counter_with(batches, "failed");
    ing->m.windows = kopt_metric_counter_with(windows);
    ing->m.windows_too_old = kopt_metric_counter_with(refused, "too_old"); /* 0 from the start */
    ing->m.bytes = kopt_metric_counter_with(bytes);
    ing->m.rate_limited = kopt_metric_counter_with(limited);
    ing->m.idle_ended = kopt_metric_counter_with(idle);
    /* 0 from the start, like every reason a refusal of a stream can have. */
    kopt_metric_counter_with(ing->m.rejected, "agent_streams");
    kopt_metric_counter_with(ing->m.rejected, "too_many_streams");
    ing->m.publish_seconds = kopt_metric_histogram_with(publish);
    return 0;
}

static void on_idle_timer(uv_timer_t *t)
{
    ingest_push_streams_end_idle(t->data, kopt_now_ns());
}

/* A sweep every quarter of the timeout (within 0.1-10 s): a stream ends at
 * most that much later than its timeout. */
static int start_idle_timer(ingest_t *ing)
{
    uint64_t every = ing->opts.stream_idle_ms / 4;

    if (ing->opts.stream_idle_ms == 0)
        return 0;
    ing->idle_timer = malloc(sizeof(*ing->idle_timer));
    if (!ing->idle_timer)
        return -ENOMEM;
    uv_timer_init(ing->loop, ing->idle_timer);
    ing->idle_timer->data = ing;
    every = every < 100 ? 100 : every > 10000 ? 10000 : every;
    uv_timer_start(ing->idle_timer, on_idle_timer, every, every);
    uv_unref((uv_handle_t *)ing->idle_timer); /* never what keeps the loop running */
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int ingest_new(uv_loop_t *loop, kopt_grpc_server_t *srv, kopt_nats_t *nats, kopt_metrics_t *m,
               const ingest_opts_t *opts, ingest_t **out)
{
    ingest_t *ing = calloc(1, sizeof(*ing));
    int r;

    if (!ing)
        return -ENOMEM;
    ing->loop = loop;
    ing->nats = nats;
    ing->opts = *opts;
    r = register_metrics(ing, m);
    if (r == 0)
        r = ingest_rate_limit_new(&opts->rate, &ing->rate);
    if (r == 0)
        r = ingest_stream_slots_new(&ing->slots);
    if (r == 0)
        r = start_idle_timer(ing);
    if (r == 0)
        r = ingest_publisher_new(loop, nats, &opts->publish, ingest_push_published, ing, &ing->pub);
    if (r == 0)
        r = kopt_grpc_server_add_stream(srv, PUSH_METHOD, ingest_push_stream_start, ing);
    if (r < 0) {
        ingest_free(ing);
        return r;
    }
    *out = ing;
    return 0;
}

int ingest_has_capacity(const ingest_t *ing)
{
    return ing->inflight_bytes < ing->opts.max_inflight_bytes &&
           ingest_publisher_has_room(ing->pub);
}

void ingest_count_rejected(ingest_t *ing, const char *reason)
{
    /* Reasons are a fixed set of literals, so the label stays bounded. */
    kopt_metric_counter_inc(kopt_metric_counter_with(ing->m.rejected, reason));
}

void ingest_count_stream_end(ingest_t *ing, grpc_status_code code)
{
    kopt_metric_counter_inc(
        kopt_metric_counter_with(ing->m.streams_done, kopt_grpc_status_name(code)));
}

void ingest_set_rate(ingest_t *ing, const ingest_rate_limit_opts_t *rate)
{
    ing->opts.rate = *rate;
    ingest_rate_limit_set(ing->rate, rate, kopt_now_ns());
}

void ingest_check_drained(ingest_t *ing)
{
    void (*done)(void *) = ing->drained;

    if (!ing->draining || !done || ing->n_streams > 0 || ing->inflight_batches > 0)
        return;
    ing->drained = NULL;
    kopt_log_info("ingest drained: every stream ended, every batch settled");
    done(ing->drained_arg);
}

void ingest_drain(ingest_t *ing, void (*done)(void *arg), void *arg)
{
    ing->draining = 1;
    if (ing->idle_timer)
        uv_timer_stop(ing->idle_timer);
    ing->drained = done;
    ing->drained_arg = arg;
    kopt_log_info("draining ingest", KOPT_UINT("streams", ing->n_streams),
                  KOPT_UINT("inflight_batches", ing->inflight_batches));
    ingest_push_streams_drain(ing);
    ingest_check_drained(ing);
}

uint32_t ingest_streams(const ingest_t *ing)
{
    return ing->n_streams;
}

void ingest_free(ingest_t *ing)
{
    if (!ing)
        return;
    ingest_publisher_free(ing->pub);
    ingest_rate_limit_free(ing->rate);
    ingest_stream_slots_free(ing->slots);
    if (ing->idle_timer)
        uv_close((uv_handle_t *)ing->idle_timer, free_handle);
    free(ing);
}
