/* The rollup watermark: how far this aggregator replica has rolled its
 * stored windows up into container_hourly, per cluster, written after every
 * rollup pass to <db>.rollup_state (one row per cluster and replica) for
 * the advisor, and the lag behind it for /metrics. docs/storage.md
 * ("Rollup state") has the promise:
 *   watermark W: every window this replica stored before W is in
 *                container_hourly;
 *   pending:     the hours of windows it stored after W, not rolled up yet.
 * Not thread-safe: the control thread owns it. */
#ifndef AGG_ROLLUP_STATE_H
#define AGG_ROLLUP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>

#include "rollup.h"

#define AGG_ROLLUP_STATE_CLUSTERS 1024 /* clusters one replica keeps a watermark for */

typedef struct {
    char cluster[AGG_HOURSET_CLUSTER];
    int64_t watermark; /* Unix seconds */
} agg_rollup_mark_t;

typedef struct {
    char replica[128];   /* host/pid */
    uint32_t interval_s; /* --rollup-interval, for readers to judge staleness */
    int64_t started;     /* the watermark of a cluster whose first pass failed */
    agg_rollup_mark_t *marks;
    size_t n, cap;
    uint64_t dropped; /* clusters beyond AGG_ROLLUP_STATE_CLUSTERS, not tracked */
} agg_rollup_state_t;

/* replica: NULL makes "<hostname>/<pid>". */
void agg_rollup_state_init(agg_rollup_state_t *st, const char *replica, uint32_t interval_s,
                           int64_t started);
void agg_rollup_state_free(agg_rollup_state_t *st);

/* After a pass that took its hours (`taken`) at `snapshot`: the clusters of
 * those hours become known, and every known cluster with no failed statement (none
 * of its own, none for every cluster) moves its watermark to snapshot. */
void agg_rollup_state_update(agg_rollup_state_t *st, const agg_hourset_t *taken,
                             const agg_hourset_t *failed, int64_t snapshot);

/* Seconds from the oldest watermark to now (from `started` while no
 * cluster is known); never negative. */
int64_t agg_rollup_state_lag(const agg_rollup_state_t *st, int64_t now);

/* Pure: the INSERT of one rollup_state row per known cluster, with its
 * pending hours from `pending` (pairs of its own and of "", every cluster),
 * updated_at = now. -ENODATA when no cluster is known; *sql is malloc'd. */
int agg_rollup_state_sql(const char *db, const agg_rollup_state_t *st, const agg_hourset_t *pending,
                         int64_t now, char **sql);

/* Writes it. 0 when there is nothing to write. Errors as kopt_ch_query. */
int agg_rollup_state_write(kopt_ch_client_t *c, const agg_rollup_state_t *st,
                           const agg_hourset_t *pending, int64_t now, kopt_ch_error_t *err);

#endif
