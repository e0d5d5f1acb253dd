/* What every kopt daemon does the same way: read its settings, set up the
 * logger, the metrics registry, the admin HTTP server and the signal
 * lifecycle, run the loop, and tear it all down. A daemon's main.c embeds
 * kopt_daemon_settings_t as the member `common` of its settings struct, puts
 * KOPT_DAEMON_SETTINGS() in its table, and builds only its own parts. */
#ifndef KOPT_DAEMON_H
#define KOPT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/admin.h>
#include <kopt/config.h>
#include <kopt/lifecycle.h>
#include <kopt/metrics.h>

typedef struct {
    int log_format; /* index into kopt_daemon_log_formats: json, text */
    int log_level;  /* index into kopt_daemon_log_levels: debug, info, warn, error */
    kopt_config_addr_t admin_listen;
    uint64_t drain_timeout_ms;
    char *otlp_endpoint; /* tracing (kopt/trace.h); NULL: off */
} kopt_daemon_settings_t;

extern const char *const kopt_daemon_log_formats[];
extern const char *const kopt_daemon_log_levels[];

/* The common rows of a settings table; `type` is the daemon's struct. */
#define KOPT_DAEMON_SETTINGS(type, admin_default)                                                  \
    {"log-format",                                                                                 \
     KOPT_CONFIG_ENUM,                                                                             \
     offsetof(type, common.log_format),                                                            \
     "json",                                                                                       \
     "log lines as one JSON object each, or text for people",                                      \
     KOPT_CONFIG_RELOADABLE,                                                                       \
     0,                                                                                            \
     0,                                                                                            \
     kopt_daemon_log_formats},                                                                     \
        {"log-level",                                                                              \
         KOPT_CONFIG_ENUM,                                                                         \
         offsetof(type, common.log_level),                                                         \
         "info",                                                                                   \
         "least severe level logged",                                                              \
         KOPT_CONFIG_RELOADABLE,                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         kopt_daemon_log_levels},                                                                  \
        {"admin-listen",                                                                           \
         KOPT_CONFIG_ADDRESS,                                                                      \
         offsetof(type, common.admin_listen),                                                      \
         admin_default,                                                                            \
         "address of the admin HTTP server (/healthz, /readyz, /metrics)",                         \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"drain-timeout",                                                                          \
         KOPT_CONFIG_DURATION,                                                                     \
         offsetof(type, common.drain_timeout_ms),                                                  \
         "30s",                                                                                    \
         "on SIGTERM, how long in-flight work may take before the process exits anyway",           \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
    {                                                                                              \
        "otlp-endpoint", KOPT_CONFIG_STRING, offsetof(type, common.otlp_endpoint), NULL,           \
            "OTLP/HTTP base URL for trace spans (POST <url>/v1/traces); unset: tracing off", 0, 0, \
            0, NULL                                                                                \
    }

typedef struct {
    const char *component; /* "ingest": logs and kopt_build_info */
    uv_loop_t *loop;       /* the default loop */
    kopt_config_t *cfg;
    kopt_metrics_t *metrics;
    kopt_admin_t *admin;
    kopt_lifecycle_t *lifecycle;
    int exit_code; /* set by the stop hook: kopt_lifecycle_exit_code(), or 1 */
} kopt_daemon_t;

/* Loads settings from argv, environ and the config file, then sets up the
 * logger, metrics, admin server and lifecycle with `hooks`. Returns 0 to go
 * on, or -1 when main() should return *exit_code at once: 0 after --help or
 * --version, 2 for bad usage or config (the error is printed), 1 when a part
 * failed to start (logged). */
int kopt_daemon_init(kopt_daemon_t *d, const char *component, const kopt_config_spec_t *spec,
                     int argc, char **argv, const kopt_lifecycle_hooks_t *hooks, int *exit_code);

/* Decides, once the settings are loaded, whether the admin HTTP server
 * starts (a one-shot command may run without listening). */
typedef bool (*kopt_daemon_admin_fn)(const kopt_config_t *cfg);

/* kopt_daemon_init() that asks `want_admin` (NULL: always serve); when it
 * says false, d->admin stays NULL and nothing listens. */
int kopt_daemon_init_with(kopt_daemon_t *d, const char *component, const kopt_config_spec_t *spec,
                          int argc, char **argv, const kopt_lifecycle_hooks_t *hooks,
                          kopt_daemon_admin_fn want_admin, int *exit_code);

/* The daemon's settings struct (the spec's type). */
const void *kopt_daemon_settings(const kopt_daemon_t *d);

/* Runs the loop until the lifecycle's stop hook closed every handle, frees
 * the common parts, and returns the process exit code. */
int kopt_daemon_run(kopt_daemon_t *d);

/* SIGHUP: re-reads the settings. Applies the common reloadable ones (log
 * format and level), logs each change and each setting that needs a
 * restart, then calls `apply(data, new settings)` for the daemon's own
 * before swapping the config in. On error logs it and keeps the old one. */
void kopt_daemon_reload(kopt_daemon_t *d, void (*apply)(void *data, const void *settings),
                        void *data);

/* A part failed to start: exit code 1, and a drain that closes what did
 * start (`reason` is logged). */
void kopt_daemon_fail(kopt_daemon_t *d, const char *reason);

/* Closes the admin server and the signal handles (the stop hook calls this
 * after the daemon's own closes); the loop ends once every handle is closed. */
void kopt_daemon_close(kopt_daemon_t *d);

#endif
