/* The SQL that rolls container_windows (1-minute windows) up into
 * container_hourly rows (docs/storage.md), shared by the aggregator, which
 * inserts into container_hourly, and the advisor, which re-rolls archived
 * windows into a session's temporary table (docs/operations.md, "Cold
 * archive"). The library kopt_rollup_sql; link kopt_rollup_sql_dep. Pure. */
#ifndef KOPT_ROLLUP_SQL_H
#define KOPT_ROLLUP_SQL_H

#include <stdbool.h>

/* The ClickHouse expression of the bucket index (UInt16) of the Float64
 * expression `value` in the scheme starting at `first` with `n` buckets: the
 * same index kopt_cpu_bucket()/kopt_memory_bucket() give, float edges
 * included. *out is malloc'd. */
int kopt_rollup_bucket_sql(const char *value, double first, int n, char **out);

typedef struct {
    const char *target; /* "db.container_hourly", or a temporary table of its columns */
    /* Where the windows are: "db.container_windows", or a subquery in
     * parentheses. final: read it with FINAL (a ReplacingMergeTree). */
    const char *source;
    bool final;
    const char *where;     /* condition on the windows' columns; required */
    const char *rolled_at; /* DateTime expression; NULL: now() */
} kopt_rollup_query_t;

/* INSERT INTO target (container_hourly's columns) SELECT ... FROM source
 * WHERE where GROUP BY container and UTC hour. -EINVAL without target,
 * source or where; *sql is malloc'd. */
int kopt_rollup_insert_sql(const kopt_rollup_query_t *q, char **sql);

#endif
