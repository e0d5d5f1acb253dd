/* A gRPC server on the libuv loop: unary methods answered by handlers, bidi
 * streaming methods handed over whole, UNIMPLEMENTED for everything else, and
 * a drain that lets in-flight calls finish before a deadline.
 *
 * Threads: handlers run on the loop thread (completions cross through
 * kopt_grpc_loop); a stream handler may run its own tags on the CQ thread
 * and hand results back with kopt_grpc_server_post(). A handler owns the
 * kopt_grpc_call_t it is given until it replies (unary) or releases it
 * (stream); after that it must not touch it. */
#ifndef KOPT_GRPC_SERVER_H
#define KOPT_GRPC_SERVER_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/grpc_loop.h>

typedef struct kopt_grpc_server kopt_grpc_server_t;

typedef struct kopt_grpc_call kopt_grpc_call_t;

/* Unary: `req` is the request message, valid during the call only. Reply
 * with kopt_grpc_call_reply(), now or later, from the loop thread. */
typedef void (*kopt_grpc_unary_fn)(kopt_grpc_call_t *call, const uint8_t *req, size_t len);

/* Bidi stream: the handler drives the call and ends with
 * kopt_grpc_call_release() once its final status was sent. */
typedef void (*kopt_grpc_stream_fn)(kopt_grpc_call_t *call);

typedef struct {
    size_t max_recv_bytes;          /* one received message (0: gRPC's 4 MiB) */
    uint64_t keepalive_time_ms;     /* ping idle connections this often (0: gRPC's 2 h) */
    uint64_t keepalive_min_ping_ms; /* clients pinging more often are cut off (0: 5 min) */
    /* Where the server counts its calls (NULL: nowhere): grpc_server_started_total,
     * grpc_server_handled_total{...,grpc_code} and the grpc_server_handling_seconds
     * histogram, labelled grpc_type, grpc_service, grpc_method as
     * go-grpc-prometheus does, so existing dashboards work. */
    struct kopt_metrics *metrics;
} kopt_grpc_server_opts_t;

/* `opts` NULL: gRPC's defaults. */
int kopt_grpc_server_new(uv_loop_t *loop, const kopt_grpc_server_opts_t *opts,
                         kopt_grpc_server_t **out);

/* Register methods before start; `path` must outlive the server (a literal). */
int kopt_grpc_server_add_unary(kopt_grpc_server_t *s, const char *path, kopt_grpc_unary_fn fn,
                               void *user);
int kopt_grpc_server_add_stream(kopt_grpc_server_t *s, const char *path, kopt_grpc_stream_fn fn,
                                void *user);

/* Binds "host:port" with `creds` (taken). *port gets the bound port, which
 * is the point of "host:0" in tests. -EADDRINUSE or -EINVAL on failure. */
int kopt_grpc_server_listen(kopt_grpc_server_t *s, const char *addr, grpc_server_credentials *creds,
                            int *port);

int kopt_grpc_server_start(kopt_grpc_server_t *s);

/* Sends the final status with an optional serialized message (OK only) and
 * frees the call afterwards. `details` may be NULL. */
void kopt_grpc_call_reply(kopt_grpc_call_t *c, grpc_status_code status, const char *details,
                          const uint8_t *msg, size_t len);

/* For stream handlers: the status the handler sent, for the call metrics;
 * a stream released without one counts as CANCELLED (the client left). */
void kopt_grpc_call_set_status(kopt_grpc_call_t *c, grpc_status_code status);

/* For stream handlers: drops the call once the handler is done with it. */
void kopt_grpc_call_release(kopt_grpc_call_t *c);

/* Copies the value of request metadata `key` (lower case) into `out`;
 * 0, or -ENOENT, or -E2BIG when it does not fit. */
int kopt_grpc_call_metadata(const kopt_grpc_call_t *c, const char *key, char *out, size_t len);

/* The peer certificate's URI SAN when it is a spiffe:// URI: 0 and `out`.
 * Only a URI SAN counts (a DNS or e-mail SAN reading spiffe://... is no
 * identity). -ENOENT without a spiffe URI SAN, -ENOTUNIQ when the certificate
 * has more than one URI SAN (an X.509-SVID has exactly one), -E2BIG when
 * `out` is too small. */
int kopt_grpc_call_peer_uri(const kopt_grpc_call_t *c, char *out, size_t len);

/* What a stream handler needs to drive its call: the raw call (its batches
 * use kopt_grpc_server_cq() and kopt_grpc_tag_t tags), the method path, the
 * deadline, and the user data given at registration. */
grpc_call *kopt_grpc_call_raw(kopt_grpc_call_t *c);
const char *kopt_grpc_call_method(const kopt_grpc_call_t *c);
void *kopt_grpc_call_user(const kopt_grpc_call_t *c);
grpc_completion_queue *kopt_grpc_server_cq(kopt_grpc_server_t *s);

/* Hands `tag` to the loop thread from a CQ-thread callback (see
 * kopt_grpc_loop_post). */
void kopt_grpc_server_post(kopt_grpc_server_t *s, kopt_grpc_tag_t *tag, int ok);
kopt_grpc_server_t *kopt_grpc_call_server(const kopt_grpc_call_t *c);

/* "OK", "INVALID_ARGUMENT", ...: a status code's name, for logs and metric
 * labels ("UNKNOWN" for codes outside gRPC's list). */
const char *kopt_grpc_status_name(grpc_status_code code);

/* Calls answered, by final status, since start; for metrics and tests. */
uint64_t kopt_grpc_server_calls(kopt_grpc_server_t *s, grpc_status_code status);

/* Stops accepting calls, lets in-flight ones finish, cancels whatever is
 * left after `deadline_ms`, then frees the server and calls `done` on the
 * loop thread. The loop keeps running until then. Called again while
 * stopping, it cancels the open calls at once and `done` replaces the
 * first one. */
void kopt_grpc_server_shutdown(kopt_grpc_server_t *s, uint64_t deadline_ms, void (*done)(void *arg),
                               void *arg);

#endif
