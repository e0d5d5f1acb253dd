/* Is ClickHouse usable right now? The answer behind /readyz. A probe thread
 * asks `SELECT 1` every interval with short timeouts, so an outage shows
 * while the aggregator is idle too; each worker reports how its inserts
 * end. Every reporter owns one slot, and ClickHouse counts as up only when
 * the probe's last answer was good and no worker is retrying a failed
 * insert: a success in one thread never hides a failure in another. */
#ifndef AGG_HEALTH_H
#define AGG_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/metrics.h>

typedef struct agg_ch_health agg_ch_health_t;

/* Copies what it needs from `ch` (its strings must outlive the health);
 * probes every `every_ms`, each with at most `timeout_ms`; `workers` slots.
 * Registers kopt_aggregator_clickhouse_up and
 * kopt_aggregator_clickhouse_probe_failures_total{error} in m (kept).
 * -ENOMEM, or -EINVAL for bad ClickHouse options (logged). */
int agg_ch_health_new(const kopt_ch_options_t *ch, unsigned workers, uint32_t every_ms,
                      uint32_t timeout_ms, kopt_metrics_t *m, agg_ch_health_t **out);

/* Starts the probe thread; the first probe runs at once. */
int agg_ch_health_start(agg_ch_health_t *h);

/* Stops and joins the probe thread (at most one probe's timeout). */
void agg_ch_health_stop(agg_ch_health_t *h);

/* Stops if needed, then frees. NULL ok. */
void agg_ch_health_free(agg_ch_health_t *h);

/* A worker's insert ended: err NULL for success (or for nothing held any
 * more), otherwise the failure it is retrying. Thread-safe. */
void agg_ch_health_report(agg_ch_health_t *h, unsigned worker, const kopt_ch_error_t *err);

/* 0 when ClickHouse is up; -EAGAIN and why (URL and error, never a secret)
 * when it is not, or before the first probe answered. Non-blocking. */
int agg_ch_health_check(agg_ch_health_t *h, char *reason, size_t len);

#endif
