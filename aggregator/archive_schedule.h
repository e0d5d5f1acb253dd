/* `kopt-aggregator run`'s scheduled archive and backup (docs/operations.md):
 * one thread that runs agg_archive_run and agg_backup_run every interval,
 * each first soon after start, with the outcomes as metrics on the admin
 * server. The metrics are registered whether or not an object store is
 * configured, so their names are always there to alert on.
 *
 * Replicas share the schedule through the lease aggregator.schedule in the
 * kopt_leases bucket (kopt/lease.h): each run first takes or renews it and
 * only the holder runs; a keeper thread renews it between and during runs.
 * Without the lease (NATS unreachable) nothing runs: both jobs are
 * idempotent, so a run missed now is done by the next holder. */
#ifndef AGG_ARCHIVE_SCHEDULE_H
#define AGG_ARCHIVE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/lease.h>
#include <kopt/metrics.h>
#include <kopt/nats_auth.h>
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
    /* The lease; nats_url NULL or "" or lease false: every replica runs. */
    bool lease;
    const char *nats_url;
    const kopt_nats_auth_t *nats_auth;
    uint64_t lease_ttl_ms; /* at least 1 s */
    int lease_replicas;    /* of the bucket, when this replica creates it */
} agg_schedule_options_t;

#define AGG_SCHEDULE_LEASE_KEY "aggregator.schedule"

/* Registers the metrics in m; makes the object stores and the lease when
 * configured. -EINVAL (logged) on bad object store or lease settings. */
int agg_schedule_new(const agg_schedule_options_t *o, kopt_metrics_t *m, agg_schedule_t **out);

/* The gate retention must pass for container_windows, with its own object
 * store and counters, for the control thread only; NULL when archiving is
 * off (retention drops as without an object store). */
agg_archive_gate_t *agg_schedule_gate(agg_schedule_t *s);

/* Starts the thread (and the lease's keeper) when something is scheduled;
 * 0 otherwise too. */
int agg_schedule_start(agg_schedule_t *s);

/* Stops (waits for a run in progress to finish), gives the lease up if
 * held, and frees. NULL ok. */
void agg_schedule_free(agg_schedule_t *s);

#endif
