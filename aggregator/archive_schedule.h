/* `kopt-aggregator run`'s scheduled archive and backup (docs/operations.md):
 * one thread that runs agg_archive_run and agg_backup_run every interval,
 * each first soon after start, with the outcomes as metrics on the admin
 * server. The metrics are registered whether or not an object store is
 * configured, so their names are always there to alert on. */
#ifndef AGG_ARCHIVE_SCHEDULE_H
#define AGG_ARCHIVE_SCHEDULE_H

#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/metrics.h>
#include <kopt/objstore.h>

#include "archive.h"

typedef struct agg_schedule agg_schedule_t;

/* Strings are kept, not copied. */
typedef struct {
    kopt_ch_options_t ch;
    kopt_objstore_options_t store; /* endpoint NULL: no object store, nothing scheduled */
    const char *prefix;
    uint32_t archive_after_days;
    uint64_t archive_interval_ms; /* 0: no archive, and retention is not gated */
    uint64_t backup_interval_ms;  /* 0: no backups */
    uint64_t first_delay_ms;      /* before the first runs */
} agg_schedule_options_t;

/* Registers the metrics in m; makes the object stores when configured.
 * -EINVAL (logged) on bad object store settings. */
int agg_schedule_new(const agg_schedule_options_t *o, kopt_metrics_t *m, agg_schedule_t **out);

/* The gate retention must pass for container_windows, with its own object
 * store and counters, for the control thread only; NULL when archiving is
 * off (retention drops as without an object store). */
agg_archive_gate_t *agg_schedule_gate(agg_schedule_t *s);

/* Starts the thread when something is scheduled; 0 otherwise too. */
int agg_schedule_start(agg_schedule_t *s);

/* Stops (waits for a run in progress to finish) and frees. NULL ok. */
void agg_schedule_free(agg_schedule_t *s);

#endif
