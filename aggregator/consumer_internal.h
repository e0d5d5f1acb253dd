/* What consumer.c (the control thread and the lifecycle) and worker.c (the
 * worker threads) share: the aggregator's state, a worker's state and the
 * stop-aware sleep. Private to the aggregator library. */
#ifndef AGG_CONSUMER_INTERNAL_H
#define AGG_CONSUMER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include <kopt/backoff.h>
#include <kopt/clickhouse.h>
#include <kopt/metrics.h>

#include "consumer.h"
#include "facts.h"
#include "halving.h"
#include "health.h"
#include "rollup.h"
#include "rollup_state.h"
#include "rows.h"

#define MS 1000000ULL /* ns */

typedef struct worker {
    struct agg *a;
    int idx;
    pthread_t thread;
    kopt_ch_client_t *ch;
    natsSubscription *sub;
    kopt_backoff_t backoff;
    /* What the worker holds: n messages, their rows in buf from off[i] to
     * off[i + 1], not acked yet. */
    natsMsg **msgs;
    size_t *off, *rows;
    msg_state_t *state;
    size_t n, total_rows;
    uint64_t first_ns, progress_ns;
    kopt_ch_buf_t buf, scratch;
    agg_hourset_t hours;
    agg_facts_t facts; /* newest per workload and node, inserted after the windows */
} worker_t;

struct agg {
    agg_options_t o;
    atomic_int stop;
    atomic_int migrated, nats_ok, consumer_ok;
    agg_ch_health_t *health; /* ClickHouse's state for /readyz */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    agg_hourset_t touched;     /* under mu */
    agg_rollup_state_t rstate; /* the control thread's */
    pthread_t control;
    bool control_started;
    natsConnection *nc;
    jsCtx *js;
    worker_t *workers;
    uint32_t n_workers;
    kopt_metric_family_t *f_errors, *f_dead;
    kopt_metric_counter_t *consumed, *inserted_rows, *inserts, *redeliveries, *rollups,
        *rollup_errors, *dropped_partitions;
    kopt_metric_histogram_t *insert_seconds, *rollup_seconds;
    kopt_metric_gauge_t *lag, *ack_pending, *held, *rollup_lag, *rollup_pending;
};

static inline bool agg_stopping(struct agg *a)
{
    return atomic_load(&a->stop) != 0;
}

/* Sleeps up to ms, waking at once on stop. */
void agg_nap(struct agg *a, uint64_t ms);

/* A worker thread: fetch, decode, insert, ack until stop (worker.c). */
void *agg_worker_main(void *arg);

#endif
