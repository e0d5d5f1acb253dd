/* The cold archive of container_windows (docs/operations.md, "Cold
 * archive"): `kopt-aggregator archive`, the daemon's schedule, and the gate
 * that lets retention drop a partition only once it is safely archived.
 *
 * A partition is archived under <prefix>/archive/container_windows/<pid>/
 * as <stamp>-<checksum>.native.gz (ClickHouse Native, gzip'd, what 18.16
 * reads back with INSERT ... FORMAT Native) and, beside it, the same name
 * with .manifest.json (rows, checksum, schema version, key range, SHA-256).
 * Both are read back and the data loaded into a scratch table and counted
 * before the partition is recorded in <db>.archive; only a recorded
 * partition that still matches its record, with both objects intact, is
 * dropped by retention. A partition that changed after it was archived is
 * archived again under a new name (its checksum and time differ). */
#ifndef AGG_ARCHIVE_H
#define AGG_ARCHIVE_H

#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/metrics.h>
#include <kopt/objstore.h>

#define AGG_ARCHIVE_TABLE "container_windows"
#define AGG_ARCHIVE_FORMAT 1

typedef struct {
    const char *prefix;  /* object key prefix; NULL: "kopt" */
    uint32_t after_days; /* partitions whose newest window_start is older; 0: 30 */
    int64_t now;         /* Unix seconds; 0: time(NULL) */
} agg_archive_options_t;

typedef struct {
    uint64_t partitions, rows, bytes; /* archived by this run */
    uint64_t unchanged;               /* old enough, archived before and unchanged */
    uint64_t rearchived;              /* archived before, changed since: archived again */
    double seconds;
} agg_archive_result_t;

/* Archives every partition of <db>.container_windows older than after_days
 * that has no record matching its current rows and checksum. Stops at the
 * first failure, after removing the objects that partition wrote (a
 * partition is recorded only when whole and verified), and says why.
 * Errors: those of kopt_ch_query / kopt_objstore_*, -EBADMSG when the
 * read-back disagrees with what was written. */
int agg_archive_run(kopt_ch_client_t *c, kopt_objstore_t *st, const agg_archive_options_t *opts,
                    agg_archive_result_t *res, char *why, size_t why_len);

/* Why retention kept partitions it would have dropped, since the gate was
 * made. Read by the daemon's metrics. */
typedef struct {
    kopt_objstore_t *st; /* kept, not owned */
    uint64_t dropped;
    uint64_t unarchived; /* no record: wait for the archive */
    uint64_t changed;    /* rows or checksum differ from the record */
    uint64_t unverified; /* an object missing, corrupt, or the store failing */
    /* The same, as metrics; NULL: none. */
    kopt_metric_counter_t *kept_unarchived, *kept_changed, *kept_unverified;
} agg_archive_gate_t;

/* An agg_retention_gate_fn (schema.h) for container_windows: 0 when the
 * partition may be dropped, -EAGAIN (and a counter in the gate) when not. */
int agg_archive_gate(void *gate, kopt_ch_client_t *c, const char *table, const char *pid);

#endif
