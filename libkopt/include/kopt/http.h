/* A small HTTP/1.1 server for admin endpoints and the advisor's JSON gateway.
 *
 * Two layers. kopt_http_request_* is pure: bytes in, one parsed request (or a
 * status like 400/413/431) out, no I/O and no globals, so it is fuzzed alone.
 * kopt_http_server_* runs on the caller's libuv loop: listen, route, respond
 * (at once or later), time out slow clients, drain, and count in a registry.
 * kopt_http_tls_* optionally puts TLS (1.2+, client certificates if asked)
 * under a server; the handlers see the same requests either way. */
#ifndef KOPT_HTTP_H
#define KOPT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/metrics.h>

/* ---- requests (http_request.c) ---- */

typedef struct kopt_http_request kopt_http_request_t;

typedef struct {
    size_t max_url_bytes;    /* request target; longer gives 414 */
    size_t max_header_bytes; /* request line + headers; more gives 431 */
    size_t max_headers;      /* header lines; more gives 431 */
    size_t max_body_bytes;   /* after de-chunking; more gives 413 */
} kopt_http_limits_t;

/* 8 KiB URL, 16 KiB of headers, 100 headers, 1 MiB body. */
void kopt_http_limits_default(kopt_http_limits_t *l);

/* `limits` is copied; NULL means the defaults. */
int kopt_http_request_new(const kopt_http_limits_t *limits, kopt_http_request_t **out);
void kopt_http_request_free(kopt_http_request_t *req);

/* Forgets the last request so the next bytes start a new one. */
void kopt_http_request_reset(kopt_http_request_t *req);

/* Parses bytes of a connection's stream, stopping at the end of one request:
 * returns 1 when a request is complete (*consumed tells how much of `data` it
 * used; the rest, if any, is the next pipelined request: reset, then feed it),
 * 0 when it needs more bytes (all were used), or a negative errno when the
 * request is bad: kopt_http_request_error() then gives the status to answer
 * with. Bytes are copied; `data` need not outlive the call. len 0 means the
 * peer closed: 0 if nothing had started, else -EBADMSG. */
int kopt_http_request_feed(kopt_http_request_t *req, const char *data, size_t len,
                           size_t *consumed);

/* After a failed feed: 400, 413, 414 or 431, and a short fixed reason for
 * logs and the kopt_http_bad_requests_total label ("syntax", "body_too_large",
 * "url_too_long", "headers_too_large"). */
int kopt_http_request_error(const kopt_http_request_t *req, const char **reason);

/* Whether any byte of a request arrived since the last reset. */
int kopt_http_request_started(const kopt_http_request_t *req);

/* The parts of a complete request; strings are NUL-terminated and live until
 * the next reset or free. The path is as sent (not %-decoded), without the
 * query; the query is the text after '?' without it, or "". */
const char *kopt_http_request_method(const kopt_http_request_t *req);
const char *kopt_http_request_path(const kopt_http_request_t *req);
const char *kopt_http_request_query(const kopt_http_request_t *req);
/* The first header of that name (ASCII case-insensitive), or NULL. */
const char *kopt_http_request_header(const kopt_http_request_t *req, const char *name);
size_t kopt_http_request_header_count(const kopt_http_request_t *req);
/* 0, or -ERANGE past the end. */
int kopt_http_request_header_at(const kopt_http_request_t *req, size_t i, const char **name,
                                const char **value);
/* The body (NUL-terminated for convenience; may hold NULs), or "" with *len 0. */
const char *kopt_http_request_body(const kopt_http_request_t *req, size_t *len);
/* HTTP/1.1 without "Connection: close", or 1.0 with "keep-alive". */
int kopt_http_request_keep_alive(const kopt_http_request_t *req);

/* ---- responses (http_response.c holds the pure helpers) ---- */

/* "Not Found" for 404; "Unknown" for codes it does not know. */
const char *kopt_http_status_text(int status);

/* {"error":"<message>","path":"<path>"} with JSON escaping (bytes that are not
 * UTF-8 become '?'); message NULL means the status text in lower case ("not
 * found"), path NULL leaves "path" out. malloc'd, or NULL. */
char *kopt_http_error_json(int status, const char *message, const char *path);

/* ---- TLS material for a server (http_tls.c) ---- */

typedef struct kopt_http_tls kopt_http_tls_t;

typedef enum {
    KOPT_HTTP_CLIENT_CERT_NONE = 0, /* not asked for */
    KOPT_HTTP_CLIENT_CERT_OPTIONAL, /* asked for, verified when sent: a bad one fails */
    KOPT_HTTP_CLIENT_CERT_REQUIRE,  /* mutual TLS: no verified certificate, no connection */
} kopt_http_client_cert_t;

typedef struct {
    const char *cert_file;      /* PEM: the leaf first, then intermediates */
    const char *key_file;       /* PEM, unencrypted */
    const char *client_ca_file; /* PEM CAs for client certificates; needed unless NONE */
    kopt_http_client_cert_t client_cert;
} kopt_http_tls_options_t;

/* Reads and checks the files (the key matches the certificate, the CA parses)
 * and builds an OpenSSL server context: TLS 1.2 and 1.3, ALPN http/1.1. The
 * paths are copied for reload. On error returns a negative errno and writes a
 * sentence naming the file to `err` (never key material). Loop thread. */
int kopt_http_tls_new(const kopt_http_tls_options_t *o, kopt_http_tls_t **out, char *err,
                      size_t errlen);

/* Re-reads the files (SIGHUP). Connections accepted from then on use the new
 * material, open ones keep theirs. *changed says whether any file's bytes
 * differ. On failure the old material stays in use. */
int kopt_http_tls_reload(kopt_http_tls_t *t, int *changed, char *err, size_t errlen);

/* Free only after every server using it is freed. NULL is a no-op. */
void kopt_http_tls_free(kopt_http_tls_t *t);

/* ---- server (http_server.c, http_conn.c) ---- */

typedef struct kopt_http_server kopt_http_server_t;
typedef struct kopt_http_response kopt_http_response_t;

/* Handlers run on the loop thread. Answer with kopt_http_response_send*()
 * before returning, or keep `res` and answer later on the same loop thread
 * (after a database call): the request stays valid until then. Every `res`
 * must be answered exactly once, even if the client went away meanwhile. */
typedef void (*kopt_http_handler_fn)(kopt_http_response_t *res, void *data);

typedef struct {
    kopt_http_limits_t limits;
    uint64_t header_timeout_ms;   /* a request must arrive whole within this after its
                                     first byte (slowloris); also the write timeout */
    uint64_t idle_timeout_ms;     /* a kept-alive or new connection may idle this long */
    int max_connections;          /* more are answered 503 and closed */
    int max_connections_per_peer; /* from one client address (IPv6: one /64); more are
                                     answered 503 and closed, so one client cannot take
                                     all of max_connections. 0: no such limit */
    const char *name;             /* for logs: "admin", "gateway" */
    kopt_http_tls_t *tls;         /* NULL: plain HTTP. Kept: it must outlive the server. A
                                     handshake must finish within header_timeout_ms; failures
                                     are logged and counted in
                                     kopt_http_tls_handshake_failures_total{reason} */
} kopt_http_server_options_t;

/* 10 s header timeout, 10 s idle timeout, 1024 connections, 64 of them per
 * client address, no TLS. */
void kopt_http_server_options_default(kopt_http_server_options_t *o);

/* `opts` is copied (NULL: defaults). The server registers its counters in
 * `metrics` (kept; it must outlive the server; NULL: no metrics). */
int kopt_http_server_new(uv_loop_t *loop, const kopt_http_server_options_t *opts,
                         kopt_metrics_t *metrics, kopt_http_server_t **out);

/* Adds a route: `method` ("GET"; NULL for any) and `path`, matched exactly, or
 * as a prefix when `prefix` is set ("/v1/"). Exact routes win, then the longest
 * prefix. HEAD is served by GET routes without the body. A path that matches
 * but not its method gets 405 with Allow. `handler` names the route in metrics
 * (a bounded label: "/metrics", "recommendations"). Strings are copied. */
int kopt_http_server_route(kopt_http_server_t *srv, const char *method, const char *path,
                           int prefix, const char *handler, kopt_http_handler_fn fn, void *data);

/* "host:port", ":port" (all interfaces), "[::1]:port"; port 0 picks a free
 * one. -EINVAL for a bad address; libuv's negative errors otherwise. */
int kopt_http_server_listen(kopt_http_server_t *srv, const char *addr);

/* The bound port after listen (useful with port 0), or -ENOTCONN. */
int kopt_http_server_port(const kopt_http_server_t *srv);

/* Graceful close: stops accepting, closes idle connections (over TLS after
 * close_notify), lets requests in flight finish (answered with Connection:
 * close), then calls done(data) once everything is closed. */
void kopt_http_server_close(kopt_http_server_t *srv, void (*done)(void *data), void *data);

/* Closes everything now (deferred responses still pending are answered into
 * the void). Memory is released in close callbacks, so run the loop once more
 * before uv_loop_close(). NULL is a no-op. */
void kopt_http_server_free(kopt_http_server_t *srv);

/* The request behind `res`: valid until the response is sent. */
const kopt_http_request_t *kopt_http_response_request(const kopt_http_response_t *res);

/* Over TLS, the URI SAN (spiffe://...) of the client certificate that the
 * handshake verified; NULL without one, with more than one (an X.509-SVID has
 * exactly one), on plain HTTP or once the client left. Valid until the
 * response is sent. */
const char *kopt_http_response_tls_peer(const kopt_http_response_t *res);

/* Adds a response header (copied). -EINVAL for CR/LF in it, -ENOMEM. */
int kopt_http_response_header(kopt_http_response_t *res, const char *name, const char *value);

/* Sends the response and frees `res`; the body is copied. content_type NULL
 * means application/json. Returns 0, or -ENOTCONN if the client is gone (the
 * response is dropped and `res` still freed). */
int kopt_http_response_send(kopt_http_response_t *res, int status, const char *content_type,
                            const void *body, size_t len);
/* The same, taking the malloc'd body: plain HTTP writes it as it is, without
 * the copy (for large bodies built per request). It is freed in every case. */
int kopt_http_response_send_owned(kopt_http_response_t *res, int status, const char *content_type,
                                  void *body, size_t len);
/* A JSON error body: {"error":"<message>","path":"<request path>"}; message
 * NULL: the status text in lower case. */
int kopt_http_response_error(kopt_http_response_t *res, int status, const char *message);

#endif
