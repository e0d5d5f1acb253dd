/* kopt-aggregator's settings: the table behind its flags, KOPT_ variables
 * and YAML keys (see --help and docs/configuration.md). */
#ifndef AGG_SETTINGS_H
#define AGG_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <kopt/config.h>
#include <kopt/daemon.h>
#include <kopt/nats_auth.h>
#include <kopt/objstore_settings.h>

typedef struct {
    kopt_daemon_settings_t common; /* first: see kopt/daemon.h */
    char *nats_url;
    kopt_nats_auth_t nats;
    char *clickhouse_url;
    char *clickhouse_user;
    char *clickhouse_password_file;
    char *clickhouse_database;
    char *clickhouse_ca;
    uint64_t clickhouse_timeout_ms;
    char *clickhouse_cluster;
    int64_t insert_quorum;
    uint64_t insert_quorum_timeout_ms;
    char *stream;
    char *consumer;
    int64_t fetch_batch;
    uint64_t fetch_timeout_ms;
    uint64_t ack_wait_ms;
    int64_t max_ack_pending;
    int64_t max_deliver;
    int64_t insert_max_rows;
    uint64_t insert_max_delay_ms;
    int64_t workers;
    uint64_t rollup_interval_ms;
    uint64_t rollup_lateness_ms;
    int64_t retention_days;
    int64_t hourly_retention_days;
    char *deadletter_prefix;
    int64_t max_windows;
    uint64_t max_clock_skew_ms;
    /* backup / restore (backup.h): the object store, never its credentials */
    kopt_object_store_settings_t store;
    char *backup_id;
    /* the cold archive (archive.h) and the daemon's schedule */
    int64_t archive_after_days;
    uint64_t archive_interval_ms;
    uint64_t backup_interval_ms;
    /* the schedule's lease in kopt_leases (archive_schedule.h) */
    bool schedule_lease;
    uint64_t lease_ttl_ms;
    int64_t lease_replicas;
} agg_settings_t;

extern const kopt_config_spec_t agg_settings_spec;

#endif
