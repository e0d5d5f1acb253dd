/* Hourly rollups: container_windows (1-minute windows) -> container_hourly,
 * one row per workload container and hour, with the CPU and memory
 * distributions as sparse histograms in the kopt/usage_buckets.h scheme.
 * A rollup is one INSERT ... SELECT ... FROM container_windows FINAL, and
 * container_hourly is a ReplacingMergeTree(rolled_at), so re-rolling an hour
 * (late data, two replicas) replaces it. Also the set of hours that received
 * data, which tells the aggregator what to roll up next. */
#ifndef AGG_ROLLUP_H
#define AGG_ROLLUP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/metrics.h>

#include "schema.h"

/* Hours one rollup statement takes at most: a UTC day, the partition of
 * container_windows. */
#define AGG_ROLLUP_MAX_HOURS 24

/* Pure: ONE INSERT ... SELECT into <db>.container_hourly of the hours
 * `hours` (n of them, 1..AGG_ROLLUP_MAX_HOURS, Unix seconds, multiples of
 * 3600, any order, repeats allowed) of one cluster (NULL: every cluster),
 * grouped by container and hour. It reads container_windows once over the
 * span of the hours. -EINVAL for an hour not on the hour or a bad n; *sql
 * is malloc'd. */
int agg_rollup_sql_hours(const char *db, const char *cluster, const int64_t *hours, size_t n,
                         char **sql);

/* The same for one hour. */
int agg_rollup_sql(const char *db, const char *cluster, int64_t hour, char **sql);

/* Run them: block, on a worker thread. Errors as kopt_ch_query. */
int agg_rollup_hours(kopt_ch_client_t *c, const char *cluster, const int64_t *hours, size_t n,
                     kopt_ch_error_t *err);
int agg_rollup_hour(kopt_ch_client_t *c, const char *cluster, int64_t hour, kopt_ch_error_t *err);

typedef struct agg_hourset agg_hourset_t;

/* Where a rollup pass counts (any may be NULL): hours rolled, failed
 * statements, and the time of each statement. */
typedef struct {
    kopt_metric_counter_t *rollups, *errors;
    kopt_metric_histogram_t *seconds;
} agg_rollup_stats_t;

/* One pass, blocking: rolls up every hour of the window [now - lateness,
 * now] for all clusters, and every (cluster, hour) of `taken` outside it,
 * in one statement per cluster and UTC day. The pairs of a failed statement
 * are added to `failed` (logged). Returns early once *stop is set. */
void agg_rollup_pass(kopt_ch_client_t *c, const agg_hourset_t *taken, uint64_t lateness_ms,
                     int64_t now, const atomic_int *stop, const agg_rollup_stats_t *st,
                     agg_hourset_t *failed);

/* The retention janitor: drops container_windows partitions older than
 * windows_days, and container_hourly, workload_facts and node_facts ones
 * older than hourly_days (0: keep). Every drop asks gate first (NULL: none;
 * the archive's, archive.h, when archiving is on). Returns the partitions
 * dropped; failures are logged. */
unsigned agg_rollup_retention(kopt_ch_client_t *c, uint32_t windows_days, uint32_t hourly_days,
                              agg_retention_gate_fn gate, void *gate_ctx);

/* A bounded set of (cluster, hour) pairs. Not thread-safe: the caller locks. */
#define AGG_HOURSET_MAX 4096
#define AGG_HOURSET_CLUSTER 128

typedef struct {
    char cluster[AGG_HOURSET_CLUSTER]; /* "" means every cluster */
    int64_t hour;
} agg_hour_t;

struct agg_hourset {
    agg_hour_t *items;
    size_t n, cap;
    uint64_t dropped; /* pairs refused because the set was full */
};

void agg_hourset_init(agg_hourset_t *s);
void agg_hourset_free(agg_hourset_t *s);

/* Adds the hour holding `t` (Unix seconds). A cluster name too long to keep
 * is stored as "" (every cluster). 0, or -ENOSPC when full (counted). */
int agg_hourset_add(agg_hourset_t *s, const char *cluster, int64_t t);

/* Adds every pair of `from` to `s`. */
void agg_hourset_merge(agg_hourset_t *s, const agg_hourset_t *from);

void agg_hourset_clear(agg_hourset_t *s);

#endif
