/* What the files of the HTTP server share: the server, connection and
 * response structs, routing and counting (http_server.c), the connection
 * life (http_conn.c) and one TLS session over memory BIOs (http_tls.c).
 * Loop thread only. */
#ifndef KOPT_HTTP_INTERNAL_H
#define KOPT_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/http.h>
#include <kopt/metrics.h>

#define HTTP_READ_BUF_BYTES (16 * 1024)
#define HTTP_CODE_CACHE 16

/* ---- one TLS session (http_tls.c) ---- */

typedef struct http_tls_conn http_tls_conn_t;

/* A session with the context current now (reload does not touch it). */
int http_tls_conn_new(kopt_http_tls_t *t, http_tls_conn_t **out);
void http_tls_conn_free(http_tls_conn_t *tc);

/* Ciphertext from the socket, kept until read. 0 or -ENOMEM. */
int http_tls_conn_feed(http_tls_conn_t *tc, const char *data, size_t len);

/* Whether any ciphertext arrived, and whether the handshake finished. */
int http_tls_conn_started(const http_tls_conn_t *tc);
int http_tls_conn_established(const http_tls_conn_t *tc);

/* Drives the handshake: 1 done, 0 needs more ciphertext, -EPROTO failed with
 * *reason a bounded metric label ("plain_http", "client_cert", "peer_alert",
 * "protocol", "other") and *detail OpenSSL's words for the log. */
int http_tls_conn_handshake(http_tls_conn_t *tc, const char **reason, char *detail,
                            size_t detail_len);

/* Plaintext out after the handshake: bytes, 0 when more ciphertext is needed,
 * -EPIPE when the peer sent close_notify, -EPROTO on a broken stream. */
int http_tls_conn_read(http_tls_conn_t *tc, char *buf, size_t len);

/* Plaintext in: encrypted into the output. 0 or -EPROTO. */
int http_tls_conn_write(http_tls_conn_t *tc, const void *data, size_t len);

/* Queues close_notify (after the handshake only; a no-op before). */
void http_tls_conn_close_notify(http_tls_conn_t *tc);

/* The ciphertext waiting to be sent, moved into `dst` (malloc'd `extra`
 * bytes after a header of `hdr` bytes, so a write request can sit in front):
 * NULL when nothing waits or without memory; *len the ciphertext length. */
void *http_tls_conn_take_output(http_tls_conn_t *tc, size_t hdr, size_t *len);

/* "TLSv1.3", the cipher, and the verified client's URI SAN or NULL. */
const char *http_tls_conn_version(const http_tls_conn_t *tc);
const char *http_tls_conn_cipher(const http_tls_conn_t *tc);
const char *http_tls_conn_peer(const http_tls_conn_t *tc);

/* ---- routes (http_server.c) ---- */

typedef struct {
    const char *method; /* NULL: any; strings live after the struct */
    const char *path;
    size_t path_len;
    int prefix;
    const char *handler;
    kopt_http_handler_fn fn;
    void *data;
    /* Metric children, looked up once each (loop thread only). */
    struct {
        int code;
        kopt_metric_counter_t *c;
    } codes[HTTP_CODE_CACHE];
    size_t ncodes;
    kopt_metric_histogram_t *duration;
} http_route_t;

/* ---- connections (http_conn.c) ---- */

typedef enum { TM_NONE, TM_HANDSHAKE, TM_HEADER, TM_IDLE, TM_WRITE, TM_LINGER } http_timer_mode_t;

typedef struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    kopt_http_server_t *srv;
    kopt_http_request_t *req;   /* NULL while a response holds it */
    kopt_http_response_t *res;  /* the request being handled */
    char *wbuf;                 /* the response being written */
    char *wbody;                /* plain HTTP: its body, when written from the caller's buffer */
    size_t wlen, woff;          /* TLS: how much of wbuf is encrypted and queued */
    http_tls_conn_t *tls;       /* NULL: plain HTTP */
    char *cbuf;                 /* TLS: ciphertext read buffer */
    char peer[64];              /* TLS: "ip:port" for handshake failure logs */
    unsigned char peer_key[16]; /* the client address (IPv4 as ::ffff:a.b.c.d, IPv6 its /64),
                                   for max_connections_per_peer */
    http_timer_mode_t tmode;
    int counted; /* in srv->nconns (not a refused one) */
    int writing;
    int closing;
    int close_after;       /* answer with Connection: close, then close */
    int close_on_shutdown; /* TLS goodbye: close once close_notify and FIN are out */
    int open_handles;
    size_t pend_off, pend_len; /* pipelined bytes in rbuf, not yet parsed */
    struct http_conn *prev, *next;
    char rbuf[HTTP_READ_BUF_BYTES];
} http_conn_t;

struct kopt_http_response {
    http_conn_t *conn; /* NULL once the client is gone */
    kopt_http_request_t *req;
    http_route_t *route;
    char *headers; /* extra "Name: value\r\n" lines */
    size_t hlen;
    uint64_t start_ns;
};

struct kopt_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    kopt_http_server_options_t opts;
    char name[32];
    http_route_t **routes; /* pointers: responses hold routes while more are added */
    size_t nroutes, rcap;
    http_route_t none;  /* the metrics label for requests no route took */
    http_conn_t *conns; /* accepted and not closing */
    int nconns;
    int nalloc; /* connections not yet freed, closing ones included */
    int listener_open, listener_closing;
    int port;
    int draining, drained, freeing;
    void (*done)(void *data);
    void *done_data;
    kopt_metrics_t *own_metrics; /* when the caller gave none */
    kopt_metric_family_t *f_requests, *f_duration, *f_bad, *f_tls_fail;
    kopt_metric_gauge_t *open;
    kopt_metric_counter_t *refused, *peer_refused, *tls_ok;
};

/* http_server.c, for the connections. */
http_route_t *http_route_find(kopt_http_server_t *srv, const char *method, const char *path,
                              int *path_known, char *allow, size_t allow_len);
void http_server_count(kopt_http_server_t *srv, kopt_http_response_t *res, int status);
void http_server_maybe_finished(kopt_http_server_t *srv);

/* http_conn.c, for the server. */
void http_conn_accept(kopt_http_server_t *srv, uv_stream_t *listener);
void http_conn_close(http_conn_t *c);
/* Server drain: idle connections go now (over TLS with close_notify), busy
 * ones finish their request and close. */
void http_conn_drain(http_conn_t *c);

#endif
