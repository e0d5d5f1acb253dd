/* The admin HTTP server every binary runs: GET /healthz, GET /readyz (from
 * registered readiness checks), GET /metrics (the registry in Prometheus text).
 * Wrong methods get 405, other paths 404; a daemon adds its own routes to the
 * same server through kopt_admin_server(). */
#ifndef KOPT_ADMIN_H
#define KOPT_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include <kopt/http.h>
#include <kopt/metrics.h>

typedef struct kopt_admin kopt_admin_t;

/* A readiness check, run on the loop thread at each GET /readyz, so it must
 * not block (report state kept by the daemon). 0 when ready; otherwise a
 * negative errno with a short reason written to `reason` (shown in the 503 body:
 * never a secret). */
typedef int (*kopt_admin_check_fn)(void *data, char *reason, size_t reason_len);

/* Listens on `listen_addr` (see kopt_http_server_listen) on `loop`, serving
 * `metrics` (kept: it must outlive the admin server) and registering the
 * process collector and kopt_build_info{component} in it. `opts` NULL: the
 * defaults, named "admin". */
int kopt_admin_new(uv_loop_t *loop, const char *listen_addr, kopt_metrics_t *metrics,
                   const char *component, const kopt_http_server_options_t *opts,
                   kopt_admin_t **out);

/* Adds a readiness check; `name` is copied, `data` kept. /readyz is 503 while
 * any check fails, naming each failing one with its reason. */
int kopt_admin_add_check(kopt_admin_t *a, const char *name, kopt_admin_check_fn fn, void *data);

/* The HTTP server behind it, to add routes (kopt_http_server_route). */
kopt_http_server_t *kopt_admin_server(kopt_admin_t *a);

/* The bound port (useful with ":0"), or -ENOTCONN. */
int kopt_admin_port(const kopt_admin_t *a);

/* Graceful close of the server; done(data) once it is closed. */
void kopt_admin_close(kopt_admin_t *a, void (*done)(void *data), void *data);

/* Closes the server now (run the loop once more afterwards). NULL: no-op. */
void kopt_admin_free(kopt_admin_t *a);

#endif
