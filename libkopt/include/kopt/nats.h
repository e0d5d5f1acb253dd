/* NATS for kopt daemons: one connection driven by the libuv loop (nats.c's
 * libuv adapter), reconnecting forever, with its up/down state reported on
 * the loop thread; and JetStream stream set-up, which uses blocking API calls
 * and so runs on a worker thread with a plain connection of its own
 * (docs/stack-facts.md, 'nats.c: libuv adapter set-up' and 'nats.c: blocking
 * calls on the loop'). */
#ifndef KOPT_NATS_H
#define KOPT_NATS_H

#include <stdint.h>
#include <uv.h>

#include <nats/nats.h>

#include <kopt/nats_auth.h>

typedef struct kopt_nats kopt_nats_t;

/* Called on the loop thread whenever the connection goes up or down. */
typedef void (*kopt_nats_state_fn)(void *data, int connected);

/* Connects to `url` (comma-separated list allowed) as `name`, with the TLS
 * and credentials of `auth` (NULL: none). If no server answers yet it keeps
 * trying in the background and still returns 0; `cb` reports the first
 * connect. Call on the loop thread, before or inside uv_run. -EINVAL for a
 * bad URL or auth settings, or a server that refused us (logged), -ENOMEM. */
int kopt_nats_connect(uv_loop_t *loop, const char *url, const char *name,
                      const kopt_nats_auth_t *auth, kopt_nats_state_fn cb, void *data,
                      kopt_nats_t **out);

natsConnection *kopt_nats_conn(kopt_nats_t *n);
int kopt_nats_connected(const kopt_nats_t *n);

/* Flushes what is buffered (up to `flush_ms`) and closes; the loop must run
 * once more to close the handle, and kopt_nats_shutdown() frees it. NULL ok. */
void kopt_nats_close(kopt_nats_t *n, int64_t flush_ms);

/* At exit, after the loop ended: waits up to `timeout_ms` for nats.c's
 * threads to finish, then frees the closed handles. kopt_daemon_run() calls
 * it; after it, nats.c may not be used again in the process. */
void kopt_nats_shutdown(int64_t timeout_ms);

/* A JetStream stream kopt owns. */
typedef struct {
    const char *name;    /* "KOPT_METRICS" */
    const char *subject; /* "kopt.metrics.>" */
    int memory;          /* 0: file storage */
    int replicas;
    uint64_t max_age_ms; /* 0: unlimited */
    int64_t max_bytes;   /* <= 0: unlimited */
    uint64_t duplicates_ms;
    const kopt_nats_auth_t *auth; /* how kopt_nats_ensure_stream connects; NULL: none */
} kopt_stream_spec_t;

/* On a worker thread: connects to `url`, creates the stream or updates it to
 * `spec`, disconnects. Then `done(data, status, message)` runs on the loop
 * thread with 0 or a negative errno and a sentence for the log. `spec` and
 * its strings must stay valid until then. */
int kopt_nats_ensure_stream(uv_loop_t *loop, const char *url, const kopt_stream_spec_t *spec,
                            void (*done)(void *data, int status, const char *message), void *data);

#endif
