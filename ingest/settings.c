/* The settings table of kopt-ingest. Names are shared with the other
 * daemons where the meaning is the same (listen, tls-*, nats-url). */
#include "settings.h"

#include <stddef.h>

#define S ingest_settings_t

static const char *const storages[] = {"file", "memory", NULL};

static const kopt_config_setting_t settings[] = {
    KOPT_DAEMON_SETTINGS(S, ":7401"),
    {"listen", KOPT_CONFIG_ADDRESS, offsetof(S, listen), ":7400",
     "gRPC address for kopt.v1.Ingest, health and reflection", 0, 0, 0, NULL},
    {"tls-ca", KOPT_CONFIG_PATH, offsetof(S, tls_ca), NULL,
     "PEM CA bundle that signs agent client certificates (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"tls-cert", KOPT_CONFIG_PATH, offsetof(S, tls_cert), NULL,
     "PEM server certificate chain (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"tls-key", KOPT_CONFIG_PATH, offsetof(S, tls_key), NULL,
     "PEM server private key (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"insecure", KOPT_CONFIG_BOOL, offsetof(S, insecure), "false",
     "plaintext gRPC without client certificates (local development only)", 0, 0, 0, NULL},
    {"nats-url", KOPT_CONFIG_STRING, offsetof(S, nats_url), "nats://127.0.0.1:4222",
     "NATS server(s), comma-separated", 0, 0, 0, NULL},
    KOPT_NATS_AUTH_SETTINGS(S),
    {"stream-create", KOPT_CONFIG_BOOL, offsetof(S, stream_create), "true",
     "create or update the KOPT_METRICS stream at start", 0, 0, 0, NULL},
    {"stream-storage", KOPT_CONFIG_ENUM, offsetof(S, stream_storage), "file",
     "KOPT_METRICS storage", 0, 0, 0, storages},
    {"stream-replicas", KOPT_CONFIG_INT, offsetof(S, stream_replicas), "1",
     "KOPT_METRICS replicas (3 in production: a single server acks before fsync)", 0, 1, 5, NULL},
    {"stream-max-age", KOPT_CONFIG_DURATION, offsetof(S, stream_max_age_ms), "72h",
     "how long KOPT_METRICS keeps batches (0: forever)", 0, 0, 0, NULL},
    {"stream-max-bytes", KOPT_CONFIG_BYTES, offsetof(S, stream_max_bytes), "0",
     "KOPT_METRICS size limit (0: none)", 0, 0, 0, NULL},
    {"stream-duplicate-window", KOPT_CONFIG_DURATION, offsetof(S, stream_duplicate_window_ms),
     "10m", "how long JetStream remembers Nats-Msg-Id for de-duplication", 0, 0, 0, NULL},
    {"max-batch-bytes", KOPT_CONFIG_BYTES, offsetof(S, max_batch_bytes), "4MiB",
     "largest MetricBatch accepted", 0, 0, 0, NULL},
    {"max-windows", KOPT_CONFIG_INT, offsetof(S, max_windows), "20000",
     "most container windows in one batch", 0, 1, 1000000, NULL},
    {"max-streams", KOPT_CONFIG_INT, offsetof(S, max_streams), "10000",
     "most concurrent Push streams (one per agent)", 0, 1, 1000000, NULL},
    /* An agent needs one; a few more cover a reconnect whose old stream
     * has not ended yet, and pods sharing one certificate. */
    {"max-streams-per-agent", KOPT_CONFIG_INT, offsetof(S, max_streams_per_agent), "4",
     "most concurrent Push streams of one client certificate (cluster and agent id); raise it "
     "when many pods share a certificate",
     0, 1, 1000000, NULL},
    /* Well above kopt-agent's 1-minute batches and 30 s keepalive pings
     * (pings do not count: only batches do). */
    {"stream-idle-timeout", KOPT_CONFIG_DURATION, offsetof(S, stream_idle_timeout_ms), "5m",
     "a Push stream that sends no batch for this long is ended with UNAVAILABLE, freeing its "
     "slot (0: never)",
     0, 0, 0, NULL},
    {"max-inflight-bytes", KOPT_CONFIG_BYTES, offsetof(S, max_inflight_bytes), "64MiB",
     "bytes published and not yet acknowledged by JetStream; reads pause above", 0, 0, 0, NULL},
    {"publish-window", KOPT_CONFIG_INT, offsetof(S, publish_window), "4096",
     "JetStream publishes awaiting a PubAck, at most", 0, 1, 1000000, NULL},
    {"publish-timeout", KOPT_CONFIG_DURATION, offsetof(S, publish_timeout_ms), "5s",
     "a PubAck later than this fails the batch (the agent re-sends it)", 0, 0, 0, NULL},
    /* 14 days: the advisor's 8-day lookback plus 6 days of agent outage, well
     * inside the aggregator's 35-day container_windows retention. */
    {"max-batch-age", KOPT_CONFIG_DURATION, offsetof(S, max_batch_age_ms), "336h",
     "windows starting longer ago are left out of their batch and reported in the ack "
     "(agents replay their spool after outages)",
     0, 0, 0, NULL},
    {"max-clock-skew", KOPT_CONFIG_DURATION, offsetof(S, max_clock_skew_ms), "5m",
     "how far in the future a timestamp may be", 0, 0, 0, NULL},
    {"rate-batches", KOPT_CONFIG_INT, offsetof(S, rate_batches), "200",
     "batches per second per agent (0: unlimited)", KOPT_CONFIG_RELOADABLE, 0, 1000000000, NULL},
    {"rate-burst-batches", KOPT_CONFIG_INT, offsetof(S, rate_burst_batches), "2000",
     "batches an agent may send at once after a pause", KOPT_CONFIG_RELOADABLE, 0, 1000000000,
     NULL},
    {"rate-bytes", KOPT_CONFIG_BYTES, offsetof(S, rate_bytes), "32MiB",
     "bytes per second per agent (0: unlimited)", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"rate-burst-bytes", KOPT_CONFIG_BYTES, offsetof(S, rate_burst_bytes), "256MiB",
     "bytes an agent may send at once after a pause", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"keepalive-time", KOPT_CONFIG_DURATION, offsetof(S, keepalive_time_ms), "60s",
     "server pings an idle connection this often", 0, 0, 0, NULL},
    {"keepalive-min-ping", KOPT_CONFIG_DURATION, offsetof(S, keepalive_min_ping_ms), "10s",
     "clients pinging more often than this are disconnected", 0, 0, 0, NULL},
};

const kopt_config_spec_t ingest_settings_spec = {
    .program = "kopt-ingest",
    .version = KOPT_VERSION,
    .summary = "receives agents' metric batches over mutual-TLS gRPC and stores them in NATS "
               "JetStream",
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .size = sizeof(ingest_settings_t),
};
