/* The aggregator's engine: a durable JetStream pull consumer drained into
 * ClickHouse by worker threads, plus one control thread for set-up
 * (migrations, NATS, the consumer), consumer lag, max-deliver advisories,
 * hourly rollups and retention.
 *
 * Threads (none is the libuv loop; every call here may block):
 *   control: migrate -> connect NATS (plain connection, shared: nats.c
 *            connections are thread-safe) -> create/update the durable ->
 *            start the workers -> every tick: advisories, lag, rollups,
 *            retention. Has its own ClickHouse client.
 *   worker i: its own pull subscription bound to the durable and its own
 *            ClickHouse client. Fetch (blocking) -> decode -> RowBinary ->
 *            ONE insert for everything it holds -> ack only after HTTP 200.
 *   health:  SELECT 1 every second for /readyz (health.h), which also
 *            hears from every worker whose inserts fail.
 * The only shared state is the set of touched hours (mutex), the ready
 * flags (atomics) and the metrics (lock-free). */
#ifndef AGG_CONSUMER_H
#define AGG_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/batch_validate.h>
#include <kopt/clickhouse.h>
#include <kopt/metrics.h>
#include <kopt/nats_auth.h>

#include "schema.h"

typedef struct agg agg_t;

/* Strings are kept, not copied: they must outlive the aggregator. */
typedef struct {
    const char *nats_url;
    const kopt_nats_auth_t *nats_auth; /* TLS and credentials; NULL: none */
    const char *stream;                /* "KOPT_METRICS" */
    const char *consumer;              /* "kopt-aggregator" */
    const char *deadletter_prefix;     /* "kopt.deadletter" */
    kopt_ch_options_t ch;              /* one client per thread is made from it */
    uint32_t fetch_batch;              /* messages a worker holds at most */
    uint64_t fetch_timeout_ms;
    uint64_t ack_wait_ms;
    int64_t max_ack_pending;
    int64_t max_deliver;
    uint64_t insert_max_rows;
    uint64_t insert_max_delay_ms;
    uint32_t workers;
    uint64_t rollup_interval_ms; /* 0: no rollups */
    uint64_t rollup_lateness_ms;
    uint32_t retention_days; /* container_windows; 0: keep */
    uint32_t hourly_retention_days;
    /* Asked before retention drops a partition (archive.h's gate); NULL: none. */
    agg_retention_gate_fn retention_gate;
    void *retention_gate_ctx;
    kopt_batch_limits_t limits; /* what kopt-ingest checks, checked again */
} agg_options_t;

/* Registers the metrics in `m` (kept) and checks the options. -EINVAL with
 * the reason logged (bad ClickHouse options), -ENOMEM. */
int agg_new(const agg_options_t *o, kopt_metrics_t *m, agg_t **out);

/* Starts the control thread, which sets up the rest and retries every step
 * with backoff until it works or the aggregator stops. */
int agg_start(agg_t *a);

/* Blocking: stops fetching, lets every worker finish its insert and acks
 * (a worker whose insert cannot succeed now naks its messages so another
 * replica gets them at once), joins the threads and closes NATS. */
void agg_stop(agg_t *a);

/* Stops if needed, then frees. NULL ok. */
void agg_free(agg_t *a);

/* For /readyz: 0 when migrations are done, NATS is connected, the consumer
 * exists and ClickHouse answers; otherwise -EAGAIN and why. Non-blocking. */
int agg_ready(const agg_t *a, char *reason, size_t len);

#endif
