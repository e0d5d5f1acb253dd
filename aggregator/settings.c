/* The settings table of kopt-aggregator. Names are shared with the other
 * daemons where the meaning is the same (nats-url, clickhouse-*). */
#include "settings.h"

#include <stddef.h>

#define S agg_settings_t

static const kopt_config_setting_t settings[] = {
    KOPT_DAEMON_SETTINGS(S, ":7421"),
    {"nats-url", KOPT_CONFIG_STRING, offsetof(S, nats_url), "nats://127.0.0.1:4222",
     "NATS server(s), comma-separated", 0, 0, 0, NULL},
    KOPT_NATS_AUTH_SETTINGS(S),
    {"clickhouse-url", KOPT_CONFIG_STRING, offsetof(S, clickhouse_url), "http://127.0.0.1:8123",
     "ClickHouse HTTP interface (http:// or https://); replicas comma-separated, the local one "
     "first (the others are failed over to, and migrated with --clickhouse-cluster)",
     0, 0, 0, NULL},
    {"clickhouse-user", KOPT_CONFIG_STRING, offsetof(S, clickhouse_user), NULL,
     "ClickHouse user (default: the server's \"default\")", 0, 0, 0, NULL},
    {"clickhouse-password-file", KOPT_CONFIG_PATH, offsetof(S, clickhouse_password_file), NULL,
     "file whose first line is the ClickHouse password (or KOPT_CLICKHOUSE_PASSWORD)",
     KOPT_CONFIG_SECRET, 0, 0, NULL},
    {"clickhouse-database", KOPT_CONFIG_STRING, offsetof(S, clickhouse_database), "kopt",
     "ClickHouse database kopt creates and writes", 0, 0, 0, NULL},
    {"clickhouse-ca", KOPT_CONFIG_PATH, offsetof(S, clickhouse_ca), NULL,
     "PEM CA certificates that verify an https:// ClickHouse (default: the system's)", 0, 0, 0,
     NULL},
    {"clickhouse-timeout", KOPT_CONFIG_DURATION, offsetof(S, clickhouse_timeout_ms), "60s",
     "longest ClickHouse request (insert or rollup)", 0, 0, 0, NULL},
    {"clickhouse-cluster", KOPT_CONFIG_STRING, offsetof(S, clickhouse_cluster), NULL,
     "ClickHouse cluster (remote_servers) name: create Replicated tables on every URL", 0, 0, 0,
     NULL},
    {"insert-quorum", KOPT_CONFIG_INT, offsetof(S, insert_quorum), "0",
     "replicas that must have an insert before it counts (0 or 1: the local one)", 0, 0, 16, NULL},
    {"insert-quorum-timeout", KOPT_CONFIG_DURATION, offsetof(S, insert_quorum_timeout_ms), "60s",
     "longest wait for --insert-quorum replicas", 0, 0, 0, NULL},
    {"stream", KOPT_CONFIG_STRING, offsetof(S, stream), "KOPT_METRICS",
     "JetStream stream holding the metric batches", 0, 0, 0, NULL},
    {"consumer", KOPT_CONFIG_STRING, offsetof(S, consumer), "kopt-aggregator",
     "durable pull consumer shared by every aggregator replica", 0, 0, 0, NULL},
    {"fetch-batch", KOPT_CONFIG_INT, offsetof(S, fetch_batch), "1024",
     "most messages a worker fetches and inserts at once", 0, 1, 100000, NULL},
    {"fetch-timeout", KOPT_CONFIG_DURATION, offsetof(S, fetch_timeout_ms), "1s",
     "longest wait of one fetch when the stream is idle", 0, 0, 0, NULL},
    {"ack-wait", KOPT_CONFIG_DURATION, offsetof(S, ack_wait_ms), "60s",
     "JetStream redelivers a message not acked within this", 0, 0, 0, NULL},
    {"max-ack-pending", KOPT_CONFIG_INT, offsetof(S, max_ack_pending), "20000",
     "messages delivered and not yet acked, across all replicas", 0, 1, 10000000, NULL},
    {"max-deliver", KOPT_CONFIG_INT, offsetof(S, max_deliver), "20",
     "deliveries of one message before it is dead-lettered", 0, 2, 1000000, NULL},
    {"insert-max-rows", KOPT_CONFIG_INT, offsetof(S, insert_max_rows), "100000",
     "a worker inserts once it holds this many rows", 0, 1, 100000000, NULL},
    {"insert-max-delay", KOPT_CONFIG_DURATION, offsetof(S, insert_max_delay_ms), "1s",
     "a worker inserts rows it holds at the latest after this", 0, 0, 0, NULL},
    {"workers", KOPT_CONFIG_INT, offsetof(S, workers), "2",
     "parallel fetch-and-insert workers (one ClickHouse connection each)", 0, 1, 64, NULL},
    {"rollup-interval", KOPT_CONFIG_DURATION, offsetof(S, rollup_interval_ms), "1m",
     "how often touched hours are rolled up into container_hourly", 0, 0, 0, NULL},
    {"rollup-lateness", KOPT_CONFIG_DURATION, offsetof(S, rollup_lateness_ms), "2h",
     "every rollup also re-rolls the hours this far back", 0, 0, 0, NULL},
    {"retention-days", KOPT_CONFIG_INT, offsetof(S, retention_days), "35",
     "days of container_windows kept (0: forever)", 0, 0, 100000, NULL},
    {"hourly-retention-days", KOPT_CONFIG_INT, offsetof(S, hourly_retention_days), "400",
     "days of container_hourly kept (0: forever)", 0, 0, 100000, NULL},
    {"deadletter-prefix", KOPT_CONFIG_STRING, offsetof(S, deadletter_prefix), "kopt.deadletter",
     "messages that can never be stored go to <prefix>.<reason>", 0, 0, 0, NULL},
    /* The same names and defaults as kopt-ingest's: every consumed batch is
     * validated again, and one ingest accepted must pass here too. */
    {"max-windows", KOPT_CONFIG_INT, offsetof(S, max_windows), "20000",
     "most container windows in one batch; as kopt-ingest's --max-windows", 0, 1, 1000000, NULL},
    {"max-clock-skew", KOPT_CONFIG_DURATION, offsetof(S, max_clock_skew_ms), "5m",
     "how far in the future a timestamp may be; as kopt-ingest's --max-clock-skew", 0, 0, 0, NULL},
    /* backup and restore (docs/operations.md). Credentials only from
     * --object-store-credentials-file or KOPT_OBJECT_STORE_ACCESS_KEY_ID /
     * KOPT_OBJECT_STORE_SECRET_ACCESS_KEY. */
    KOPT_OBJECT_STORE_SETTINGS(S, store),
    {"backup-id", KOPT_CONFIG_STRING, offsetof(S, backup_id), "latest",
     "the backup `restore` restores (an id such as 20261207T010000Z, or latest)", 0, 0, 0, NULL},
    /* The cold archive and the daemon's schedule (docs/operations.md). */
    {"archive-after", KOPT_CONFIG_INT, offsetof(S, archive_after_days), "30",
     "days after which a container_windows partition is archived to the object store", 0, 1, 100000,
     NULL},
    {"archive-interval", KOPT_CONFIG_DURATION, offsetof(S, archive_interval_ms), "24h",
     "how often `run` archives (with --object-store-url; 0: never, and retention drops as without "
     "a store)",
     0, 0, 0, NULL},
    {"backup-interval", KOPT_CONFIG_DURATION, offsetof(S, backup_interval_ms), "24h",
     "how often `run` takes a backup (with --object-store-url; 0: never)", 0, 0, 0, NULL},
    /* Replicas share the schedule through a lease (docs/operations.md). */
    {"schedule-lease", KOPT_CONFIG_BOOL, offsetof(S, schedule_lease), "true",
     "with NATS: the scheduled archive and backup run only on the replica holding the lease "
     "aggregator.schedule in the kopt_leases bucket (false: on every replica)",
     0, 0, 0, NULL},
    {"lease-ttl", KOPT_CONFIG_DURATION, offsetof(S, lease_ttl_ms), "2m",
     "how long the schedule's lease outlives its holder's last renewal (at least 1s; as "
     "kopt-advisor's --lease-ttl)",
     0, 0, 0, NULL},
    {"lease-replicas", KOPT_CONFIG_INT, offsetof(S, lease_replicas), "1",
     "replicas of the kopt_leases bucket if this daemon creates it (as kopt-advisor's "
     "--stream-replicas)",
     0, 1, 5, NULL},
};

const kopt_config_spec_t agg_settings_spec = {
    .program = "kopt-aggregator",
    .version = KOPT_VERSION,
    .summary = "drains NATS JetStream KOPT_METRICS into ClickHouse and rolls windows up by "
               "hour; subcommands: run (default), migrate, backup, restore, archive, replay",
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .size = sizeof(agg_settings_t),
};
