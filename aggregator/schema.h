/* kopt's ClickHouse schema: versioned migrations recorded in
 * <db>.schema_migrations, and retention by dropping old partitions.
 * docs/storage.md describes the tables, their keys and why. */
#ifndef AGG_SCHEMA_H
#define AGG_SCHEMA_H

#include <stdint.h>

#include <kopt/clickhouse.h>

/* container_hourly keeps CPU and memory distributions as sparse exponential
 * histograms (cpu_hist_index/cpu_hist_count, mem_hist_index/mem_hist_count)
 * in the one bucket scheme of <kopt/usage_buckets.h> (CPU from 0.001 core,
 * memory from 1 MiB, growth 1.05), which the advisor reads too. Counts are
 * windows (one per container-minute). Hours merge by adding counts for
 * equal indexes (sumMap), and a decaying merge multiplies each hour's counts
 * first. rollup.c computes them. */

typedef struct {
    /* On servers with TTL (19.6 and later), a TTL on window_start /
     * hour as a safety net behind the partition janitor. 0: no TTL. A
     * gated migration that does not apply is not recorded, so it applies
     * later once the server is upgraded (or the days are set). */
    uint32_t windows_ttl_days;
    uint32_t hourly_ttl_days;
} agg_schema_options_t;

/* Creates the database and schema_migrations if needed, then applies, in
 * order, every migration not yet recorded whose server-version gate the
 * server meets, recording each one after it succeeded. Every statement is
 * idempotent (IF NOT EXISTS), so two replicas migrating at once are safe.
 * opts may be NULL. *applied (may be NULL) gets how many were applied now
 * (0 on a second run). Errors as kopt_ch_query; err says which. */
int agg_schema_migrate(kopt_ch_client_t *c, const agg_schema_options_t *opts, unsigned *applied,
                       kopt_ch_error_t *err);

/* The highest migration version kopt knows. */
uint32_t agg_schema_latest(void);

/* Pure: the SQL of migration `version` for a server of version `server`, in
 * database `db`. *sql is malloc'd. -ENOENT: no such migration; -EOPNOTSUPP:
 * the server lacks what it needs, or opts make it moot (TTL of 0 days). */
int agg_schema_sql(uint32_t version, const kopt_ch_version_t *server, const char *db,
                   const agg_schema_options_t *opts, char **sql, const char **name);

/* Drops the partitions of <db>.<table> whose every row is older than `days`
 * days before `now` (Unix seconds; 0 = the current time), going by the
 * partition key's time column in system.parts. Only for time-partitioned
 * tables (container_windows, container_hourly): others hold no partition
 * with a time and are left alone. *dropped (may be NULL) gets the count. */
int agg_schema_retention(kopt_ch_client_t *c, const char *table, uint32_t days, int64_t now,
                         unsigned *dropped, kopt_ch_error_t *err);

/* Asked before each drop: 0 lets partition pid go, anything else keeps it
 * (the archive's gate, archive.h). */
typedef int (*agg_retention_gate_fn)(void *ctx, kopt_ch_client_t *c, const char *table,
                                     const char *pid);

/* agg_schema_retention() with a gate; gate NULL: every old partition goes. */
int agg_schema_retention_gated(kopt_ch_client_t *c, const char *table, uint32_t days, int64_t now,
                               agg_retention_gate_fn gate, void *ctx, unsigned *dropped,
                               kopt_ch_error_t *err);

#endif
