/* kopt-ingest's settings: the table behind its flags, KOPT_ variables and
 * YAML keys (see --help and docs/configuration.md). */
#ifndef INGEST_SETTINGS_H
#define INGEST_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <kopt/config.h>
#include <kopt/daemon.h>
#include <kopt/nats_auth.h>

typedef struct {
    kopt_daemon_settings_t common; /* first: see kopt/daemon.h */
    kopt_config_addr_t listen;
    char *tls_ca, *tls_cert, *tls_key;
    bool insecure;
    char *nats_url;
    kopt_nats_auth_t nats;
    bool stream_create;
    int stream_storage; /* 0 file, 1 memory */
    int64_t stream_replicas;
    uint64_t stream_max_age_ms;
    uint64_t stream_max_bytes;
    uint64_t stream_duplicate_window_ms;
    uint64_t max_batch_bytes;
    int64_t max_windows;
    int64_t max_streams;
    int64_t max_streams_per_agent;
    uint64_t stream_idle_timeout_ms;
    uint64_t max_inflight_bytes;
    int64_t publish_window;
    uint64_t publish_timeout_ms;
    uint64_t max_batch_age_ms;
    uint64_t max_clock_skew_ms;
    int64_t rate_batches;
    int64_t rate_burst_batches;
    uint64_t rate_bytes;
    uint64_t rate_burst_bytes;
    uint64_t keepalive_time_ms;
    uint64_t keepalive_min_ping_ms;
} ingest_settings_t;

extern const kopt_config_spec_t ingest_settings_spec;

#endif
