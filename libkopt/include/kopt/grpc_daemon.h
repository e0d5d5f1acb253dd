/* The skeleton of a kopt daemon that serves gRPC (ingest, advisor), on top
 * of kopt_daemon_t: TLS from files re-read on SIGHUP, the gRPC server with
 * the daemon's services plus health and reflection, a JetStream stream set
 * up in the background with retries, and the stop order (gRPC first, then
 * the daemon's parts, then the common ones). The daemon passes in what is
 * its own through kopt_grpc_daemon_hooks_t.
 *
 * Lives in the caller's memory (a static or main()'s frame); one a process.
 * Everything runs on the loop thread. */
#ifndef KOPT_GRPC_DAEMON_H
#define KOPT_GRPC_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/backoff.h>
#include <kopt/daemon.h>
#include <kopt/grpc_server.h>
#include <kopt/grpc_services.h>
#include <kopt/grpc_tls.h>
#include <kopt/nats.h>
#include <kopt/tls.h>

typedef struct kopt_grpc_daemon kopt_grpc_daemon_t;

typedef struct {
    /* Registers the daemon's own methods on `s` (before it listens). */
    int (*add_services)(void *data, kopt_grpc_server_t *s);
    /* Whether the daemon's service can serve; the skeleton adds "and not
     * draining". NULL: always. */
    bool (*ready)(void *data);
    /* SIGTERM: stop taking work, finish what is in flight, then call
     * kopt_grpc_daemon_drained() (or kopt_lifecycle_drained() when there is
     * no gRPC server to wait for). NULL: drained at once. */
    void (*drain)(void *data);
    /* Free or close the daemon's parts; the gRPC server is gone by then. */
    void (*close)(void *data);
    /* SIGHUP with settings that parsed: apply the daemon's own (they become
     * kopt_daemon_settings() after the call). The server certificates are
     * re-read right after. NULL: none. */
    void (*apply)(void *data, const void *settings);
    void *data;
} kopt_grpc_daemon_hooks_t;

/* What the server serves and how it is reached. Pointers are kept, not
 * copied: literals and the descriptor set built into the binary. */
typedef struct {
    const char *service;          /* the daemon's own, for health: "kopt.v1.Ingest" */
    const char *const *reflected; /* every service listed by reflection; NULL-terminated */
    const uint8_t *descriptors;   /* serialized FileDescriptorSet */
    size_t descriptors_len;
    kopt_client_cert_t client_cert; /* REQUIRED: mutual TLS */
    const char *insecure_warning;   /* logged once with --insecure */
} kopt_grpc_daemon_spec_t;

/* The listening side of a daemon's settings (read at start only). */
typedef struct {
    const char *listen; /* "host:port" */
    bool insecure;      /* plaintext, for local development */
    const char *tls_ca, *tls_cert, *tls_key;
    const kopt_grpc_server_opts_t *server; /* NULL: gRPC's defaults */
} kopt_grpc_daemon_listen_t;

struct kopt_grpc_daemon {
    kopt_daemon_t d; /* the common parts: loop, metrics, admin, lifecycle */
    /* Read-only for the daemon: */
    kopt_grpc_server_t *grpc; /* NULL before start and once it stopped */
    bool stream_ready;        /* the stream was set up (or needs none) */
    /* Private: */
    kopt_grpc_daemon_spec_t spec;
    kopt_grpc_daemon_hooks_t hooks;
    kopt_tls_source_t *tls;
    kopt_grpc_tls_fetcher_t *fetcher;
    kopt_grpc_health_t *health;
    kopt_grpc_reflection_t *reflection;
    bool grpc_down;
    char *nats_url;
    kopt_stream_spec_t stream;
    kopt_backoff_t stream_backoff;
    uv_timer_t stream_retry;
};

/* kopt_daemon_init() with the skeleton's lifecycle hooks, then grpc_init().
 * `spec` and `hooks` are copied. Returns as kopt_daemon_init() does. */
int kopt_grpc_daemon_init(kopt_grpc_daemon_t *g, const char *component,
                          const kopt_config_spec_t *settings, int argc, char **argv,
                          const kopt_grpc_daemon_spec_t *spec,
                          const kopt_grpc_daemon_hooks_t *hooks, int *exit_code);

/* Builds the credentials (TLS unless insecure), the server, the daemon's
 * services, health and reflection; listens and starts. 0, or a negative
 * errno (logged). */
int kopt_grpc_daemon_start(kopt_grpc_daemon_t *g, const kopt_grpc_daemon_listen_t *l);

/* Sets the health status from the ready hook; call when readiness changed. */
void kopt_grpc_daemon_update_health(kopt_grpc_daemon_t *g);

/* Creates or updates the stream on a worker thread, retrying with backoff
 * until it works or the daemon drains; stream_ready is then set and health
 * updated. `url` is copied; `spec`'s strings must be literals. `spec` NULL:
 * the daemon needs no stream set up, stream_ready at once. 0 or -ENOMEM. */
int kopt_grpc_daemon_ensure_stream(kopt_grpc_daemon_t *g, const char *url,
                                   const kopt_stream_spec_t *spec);

/* For the drain hook: the daemon's in-flight work is done; lets the gRPC
 * calls finish (1 s at most), then ends the drain. */
void kopt_grpc_daemon_drained(kopt_grpc_daemon_t *g);

/* Runs the loop until everything closed, frees the skeleton, calls
 * grpc_shutdown() and returns the exit code. */
int kopt_grpc_daemon_run(kopt_grpc_daemon_t *g);

#endif
