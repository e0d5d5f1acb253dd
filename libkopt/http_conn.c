/* One HTTP/1.1 connection on the server's loop: reads with the pure request
 * layer, dispatches to a route, writes, times out and closes. One request at
 * a time: reading stops while a request is handled, and bytes of pipelined
 * requests wait in rbuf, so responses keep the order of requests. Over TLS
 * the socket's bytes go through an OpenSSL session on memory BIOs
 * (http_tls.c): the same parser reads the decrypted bytes, and responses are
 * encrypted a slice at a time. A connection is freed in its close callbacks;
 * a response still in a deferred handler's hands outlives it (res->conn is
 * then NULL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/util.h>

#include "http_internal.h"

#define LINGER_MS 2000 /* after an error reply: wait for the peer's FIN this long */
/* Plaintext encrypted per write, so a large body never sits twice in memory. */
#define TLS_SLICE_BYTES (128 * 1024)

/* A write of ciphertext (or of the plain-HTTP refusal); the bytes follow it. */
typedef struct {
    uv_write_t req;
    http_conn_t *c;
    int response; /* a slice of c->wbuf: its end moves the response on */
} tls_write_t;

static void conn_process(http_conn_t *c, char *data, size_t len);
static void tls_pump(http_conn_t *c);
static void goodbye(http_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void peer_name(http_conn_t *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[64] = "";

    snprintf(out, len, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, len, "%s:%d", ip, ntohs(a->sin_port));
    }
}

/* Counted and logged once per connection; `detail` is OpenSSL's reason. */
static void tls_failed(http_conn_t *c, const char *reason, const char *detail)
{
    kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_tls_fail, reason));
    kopt_log_warn("TLS handshake failed, closing the connection", KOPT_STR("server", c->srv->name),
                  KOPT_STR("peer", c->peer), KOPT_STR("reason", reason),
                  KOPT_STR("detail", detail));
}

static void on_timer(uv_timer_t *t)
{
    http_conn_t *c = t->data;

    switch (c->tmode) {
    case TM_HANDSHAKE: /* a client that connects and sends nothing is not counted */
        if (http_tls_conn_started(c->tls))
            tls_failed(c, "timeout", "no complete handshake within the header timeout");
        break;
    case TM_HEADER: /* a request begun but not finished in time: slowloris, or a stalled peer */
        if (c->req && kopt_http_request_started(c->req))
            kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "timeout"));
        break;
    case TM_IDLE:
        goodbye(c);
        return;
    default:
        break;
    }
    http_conn_close(c);
}

static void timer_set(http_conn_t *c, http_timer_mode_t mode, uint64_t ms)
{
    c->tmode = mode;
    if (mode == TM_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void response_free(kopt_http_response_t *res)
{
    kopt_http_request_free(res->req);
    free(res->headers);
    free(res);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    kopt_http_server_t *srv = c->srv;

    if (--c->open_handles > 0)
        return;
    kopt_http_request_free(c->req);
    http_tls_conn_free(c->tls);
    free(c->cbuf);
    free(c->wbuf);
    free(c->wbody);
    free(c);
    srv->nalloc--;
    http_server_maybe_finished(srv);
}

void http_conn_close(http_conn_t *c)
{
    kopt_http_server_t *srv = c->srv;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->res) { /* a deferred handler still holds it: answer into the void */
        c->res->conn = NULL;
        c->res = NULL;
    }
    if (c->counted) {
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        srv->nconns--;
        kopt_metric_gauge_add(srv->open, -1);
    }
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* ---- TLS writes ---- */

static void response_written(http_conn_t *c);
static int tls_write_slice(http_conn_t *c);

static void on_tls_write(uv_write_t *req, int status)
{
    tls_write_t *w = kopt_container_of(req, tls_write_t, req);
    http_conn_t *c = w->c;
    int response = w->response;

    free(w);
    if (c->closing || !response) {
        if (status < 0 && !c->closing)
            http_conn_close(c);
        return;
    }
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (c->woff < c->wlen) { /* slices go one at a time: this was not the last */
        if (tls_write_slice(c) < 0)
            http_conn_close(c);
        return;
    }
    free(c->wbuf);
    c->wbuf = NULL;
    c->writing = 0;
    response_written(c);
}

/* Queues w (len bytes after it); frees it when that fails. */
static int queue_write(http_conn_t *c, tls_write_t *w, size_t len, int response)
{
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)len);
    int r;

    w->c = c;
    w->response = response;
    r = c->closing ? UV_ECANCELED : uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tls_write);
    if (r < 0)
        free(w);
    return r;
}

/* Sends what the session has for the peer (handshake records, alerts,
 * tickets, close_notify). Failing to, the connection closes. */
static void tls_flush(http_conn_t *c)
{
    size_t len;
    tls_write_t *w = http_tls_conn_take_output(c->tls, sizeof(*w), &len);

    if (!w) {
        if (len)
            http_conn_close(c);
        return;
    }
    if (queue_write(c, w, len, 0) < 0)
        http_conn_close(c);
}

/* Encrypts and queues the next slice of the response in c->wbuf. */
static int tls_write_slice(http_conn_t *c)
{
    size_t n = c->wlen - c->woff, len;
    tls_write_t *w;

    if (n > TLS_SLICE_BYTES)
        n = TLS_SLICE_BYTES;
    if (http_tls_conn_write(c->tls, c->wbuf + c->woff, n) < 0)
        return -EPROTO;
    c->woff += n;
    w = http_tls_conn_take_output(c->tls, sizeof(*w), &len);
    if (!w)
        return -ENOMEM;
    return queue_write(c, w, len, 1);
}

/* ---- closing ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = kopt_container_of(req, http_conn_t, sreq);

    if (c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp); /* a TLS failure may still be reading */
    if (status < 0 || c->close_on_shutdown ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        http_conn_close(c);
}

/* After an error reply or Connection: close, send FIN (over TLS after
 * close_notify, or the alert of a failed handshake) and read until the
 * peer's, so unread request bytes do not turn our close into a RST that could
 * destroy the reply before the client read it. */
static void linger_close(http_conn_t *c)
{
    if (c->tls) {
        http_tls_conn_close_notify(c->tls);
        tls_flush(c);
    }
    if (c->closing || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        http_conn_close(c);
        return;
    }
    timer_set(c, TM_LINGER, LINGER_MS);
}

/* An idle connection ends: over TLS with close_notify then FIN, so the
 * client knows the stream was not cut; plain HTTP closes at once. */
static void goodbye(http_conn_t *c)
{
    if (!c->tls || !http_tls_conn_established(c->tls)) {
        http_conn_close(c);
        return;
    }
    http_tls_conn_close_notify(c->tls);
    tls_flush(c);
    c->close_on_shutdown = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->closing || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        http_conn_close(c);
        return;
    }
    timer_set(c, TM_WRITE, c->srv->opts.header_timeout_ms);
}

void http_conn_drain(http_conn_t *c)
{
    /* Idle ones go now; a request being read, handled or written finishes. */
    if (!c->res && !c->writing && !(c->req && kopt_http_request_started(c->req)))
        goodbye(c);
    else
        c->close_after = 1;
}

/* ---- responses ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = h->data;

    (void)suggested;
    /* Plain: reading runs only when no pipelined bytes wait in rbuf. TLS:
     * ciphertext goes to its own buffer and is decrypted into rbuf. */
    if (c->tls)
        *buf = uv_buf_init(c->cbuf, HTTP_READ_BUF_BYTES);
    else
        *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* The response is out: next request, pipelined or not yet read. */
static void response_written(http_conn_t *c)
{
    char *data;
    size_t len;

    if (c->close_after) {
        linger_close(c);
        return;
    }
    kopt_http_request_reset(c->req);
    timer_set(c, TM_IDLE, c->srv->opts.idle_timeout_ms);
    data = c->rbuf + c->pend_off;
    len = c->pend_len;
    c->pend_len = 0;
    if (len)
        conn_process(c, data, len);
    if (c->tls && !c->closing)
        tls_pump(c); /* records may wait decrypted or in the input BIO */
    if (!c->closing && !c->res && !c->writing && !c->close_on_shutdown &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        http_conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_conn_t *c = kopt_container_of(req, http_conn_t, wreq);

    free(c->wbuf);
    free(c->wbody);
    c->wbuf = c->wbody = NULL;
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    response_written(c);
}

static int append_header(kopt_http_response_t *res, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 4;
    char *p = realloc(res->headers, res->hlen + n + 1);

    if (!p)
        return -ENOMEM;
    res->headers = p;
    snprintf(p + res->hlen, n + 1, "%s: %s\r\n", name, value);
    res->hlen += n;
    return 0;
}

int kopt_http_response_header(kopt_http_response_t *res, const char *name, const char *value)
{
    if (!name || !value || !*name || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -EINVAL;
    return append_header(res, name, value);
}

const kopt_http_request_t *kopt_http_response_request(const kopt_http_response_t *res)
{
    return res->req;
}

const char *kopt_http_response_tls_peer(const kopt_http_response_t *res)
{
    return res->conn && res->conn->tls ? http_tls_conn_peer(res->conn->tls) : NULL;
}

/* Sends the head and body; `owned` (the body, or NULL) is kept and written
 * as it is on plain HTTP, else copied after the head and freed. */
static int send_response(kopt_http_response_t *res, int status, const char *content_type,
                         const void *body, size_t len, void *owned)
{
    http_conn_t *c = res->conn;
    char head[512];
    size_t n, total, inline_len;
    uv_buf_t bufs[2];
    int r;

    if (!c) {
        response_free(res);
        free(owned);
        return -ENOTCONN;
    }
    http_server_count(c->srv, res, status);
    if (!kopt_http_request_keep_alive(res->req) || c->srv->draining)
        c->close_after = 1;
    if (!body)
        len = 0;
    n = (size_t)snprintf(head, sizeof(head),
                         "HTTP/1.1 %d %s\r\nContent-Type: %.200s\r\nContent-Length: %zu\r\n"
                         "Connection: %s\r\n",
                         status, kopt_http_status_text(status),
                         content_type ? content_type : "application/json", len,
                         c->close_after ? "close" : "keep-alive");
    if (strcmp(kopt_http_request_method(res->req), "HEAD") == 0)
        len = 0; /* HEAD: the length a GET would have, and no body */
    /* TLS encrypts one contiguous buffer in slices: the body goes inline. */
    if (owned && !c->tls && len) {
        c->wbody = owned;
        owned = NULL;
    }
    inline_len = c->wbody ? 0 : len;
    total = n + res->hlen + 2 + inline_len;
    c->wbuf = malloc(total);
    if (!c->wbuf) {
        response_free(res);
        free(owned);
        http_conn_close(c);
        return -ENOMEM;
    }
    memcpy(c->wbuf, head, n);
    if (res->hlen)
        memcpy(c->wbuf + n, res->headers, res->hlen);
    memcpy(c->wbuf + n + res->hlen, "\r\n", 2);
    if (inline_len)
        memcpy(c->wbuf + n + res->hlen + 2, body, inline_len);
    free(owned);
    /* The request goes back to the connection, to be reset and reused. */
    c->req = res->req;
    res->req = NULL;
    c->res = NULL;
    response_free(res);
    c->writing = 1;
    if (c->tls) {
        c->wlen = total;
        c->woff = 0;
        r = tls_write_slice(c);
    } else {
        bufs[0] = uv_buf_init(c->wbuf, (unsigned int)total);
        if (c->wbody)
            bufs[1] = uv_buf_init(c->wbody, (unsigned int)len);
        r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, c->wbody ? 2 : 1, on_write);
    }
    if (r < 0) {
        c->writing = 0;
        http_conn_close(c);
        return r;
    }
    timer_set(c, TM_WRITE, c->srv->opts.header_timeout_ms);
    return 0;
}

int kopt_http_response_send(kopt_http_response_t *res, int status, const char *content_type,
                            const void *body, size_t len)
{
    return send_response(res, status, content_type, body, len, NULL);
}

int kopt_http_response_send_owned(kopt_http_response_t *res, int status, const char *content_type,
                                  void *body, size_t len)
{
    return send_response(res, status, content_type, body, len, body);
}

int kopt_http_response_error(kopt_http_response_t *res, int status, const char *message)
{
    const char *path = res->req ? kopt_http_request_path(res->req) : "";
    char *body = kopt_http_error_json(status, message, *path ? path : NULL);
    int r;

    if (!body)
        return kopt_http_response_send(res, 500, NULL, "{\"error\":\"out of memory\"}", 25);
    r = kopt_http_response_send(res, status, NULL, body, strlen(body));
    free(body);
    return r;
}

/* ---- requests ---- */

/* Hands the complete request in c->req to a response and its route. */
static void dispatch(http_conn_t *c, int bad_status)
{
    kopt_http_response_t *res = calloc(1, sizeof(*res));
    const char *method, *path;
    char allow[128];
    http_route_t *rt;
    int known;

    if (!res) {
        http_conn_close(c);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    timer_set(c, TM_NONE, 0);
    res->conn = c;
    res->req = c->req;
    res->start_ns = kopt_now_ns();
    c->req = NULL;
    c->res = res;
    if (bad_status) {
        kopt_http_response_error(res, bad_status, NULL);
        return;
    }
    method = kopt_http_request_method(res->req);
    path = kopt_http_request_path(res->req);
    rt = http_route_find(c->srv, method, path, &known, allow, sizeof(allow));
    if (!rt) {
        if (known && append_header(res, "Allow", allow) == 0)
            kopt_http_response_error(res, 405, NULL);
        else
            kopt_http_response_error(res, 404, NULL);
        return;
    }
    res->route = rt;
    rt->fn(res, rt->data);
}

static void bad_request(http_conn_t *c)
{
    const char *reason;
    int status = kopt_http_request_error(c->req, &reason);

    kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, reason));
    kopt_log_debug("bad http request", KOPT_STR("server", c->srv->name), KOPT_INT("status", status),
                   KOPT_STR("reason", reason));
    c->close_after = 1;
    c->pend_len = 0;
    dispatch(c, status ? status : 400);
}

static void conn_process(http_conn_t *c, char *data, size_t len)
{
    while (len > 0 && !c->closing) {
        int was_started = kopt_http_request_started(c->req);
        size_t used = 0;
        int r = kopt_http_request_feed(c->req, data, len, &used);

        /* The header timeout runs from a request's first byte, not its last. */
        if (!was_started && kopt_http_request_started(c->req))
            timer_set(c, TM_HEADER, c->srv->opts.header_timeout_ms);
        data += used;
        len -= used;
        if (r == 1) {
            c->pend_off = (size_t)(data - c->rbuf);
            c->pend_len = len;
            dispatch(c, 0);
            return;
        }
        if (r < 0) {
            bad_request(c);
            return;
        }
        if (used == 0)
            break;
    }
}

/* ---- TLS reads ---- */

/* Plain HTTP on the TLS port: answered in plain HTTP, so curl and browsers
 * show why, then closed. */
static void refuse_plain_http(http_conn_t *c)
{
    static const char body[] = "{\"error\":\"this port speaks HTTPS: use an https:// URL\"}";
    tls_write_t *w = malloc(sizeof(*w) + 256);
    size_t len;
    int n;

    free(http_tls_conn_take_output(c->tls, 0, &len)); /* nothing of TLS goes out */
    if (!w)
        return;
    n = snprintf((char *)(w + 1), 256,
                 "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 sizeof(body) - 1, body);
    if (queue_write(c, w, (size_t)n, 0) < 0)
        http_conn_close(c);
}

/* Decrypts what the session holds and parses it, until a request is being
 * handled or more ciphertext is needed. */
static void tls_pump(http_conn_t *c)
{
    const char *reason = "other";
    char detail[256];
    int r;

    if (!http_tls_conn_established(c->tls)) {
        r = http_tls_conn_handshake(c->tls, &reason, detail, sizeof(detail));
        if (r < 0) {
            tls_failed(c, reason, detail);
            if (strcmp(reason, "plain_http") == 0)
                refuse_plain_http(c);
            linger_close(c); /* sends the alert, if any, first */
            return;
        }
        tls_flush(c);
        if (r == 0 || c->closing)
            return;
        kopt_metric_counter_inc(c->srv->tls_ok);
        kopt_log_debug("TLS handshake done", KOPT_STR("server", c->srv->name),
                       KOPT_STR("version", http_tls_conn_version(c->tls)),
                       KOPT_STR("cipher", http_tls_conn_cipher(c->tls)));
        timer_set(c, TM_IDLE, c->srv->opts.idle_timeout_ms);
    }
    while (!c->closing && !c->res && !c->writing && c->pend_len == 0) {
        r = http_tls_conn_read(c->tls, c->rbuf, sizeof(c->rbuf));
        if (r == 0)
            break;
        if (r < 0) { /* the peer's close_notify (-EPIPE), or a broken record */
            if (c->req && kopt_http_request_started(c->req))
                kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "incomplete"));
            if (r == -EPIPE)
                goodbye(c);
            else
                http_conn_close(c);
            return;
        }
        conn_process(c, c->rbuf, (size_t)r);
    }
    if (!c->closing)
        tls_flush(c); /* what reading produced, e.g. a key update's answer */
}

static void tls_read(http_conn_t *c, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        if (!http_tls_conn_established(c->tls)) {
            if (http_tls_conn_started(c->tls))
                tls_failed(c, "closed", "the client closed the connection during the handshake");
        } else if (c->req && kopt_http_request_started(c->req)) {
            kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "incomplete"));
        }
        http_conn_close(c);
        return;
    }
    if (http_tls_conn_feed(c->tls, buf->base, (size_t)n) < 0) {
        http_conn_close(c);
        return;
    }
    tls_pump(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    http_conn_t *c = s->data;

    if (c->closing)
        return;
    if (c->tmode == TM_LINGER) { /* discarding until the peer's FIN */
        if (n < 0)
            http_conn_close(c);
        return;
    }
    if (c->tls) {
        tls_read(c, n, buf);
        return;
    }
    if (n < 0) {
        if (c->req && kopt_http_request_started(c->req))
            kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "incomplete"));
        http_conn_close(c);
        return;
    }
    conn_process(c, buf->base, (size_t)n);
}

/* ---- accepting ---- */

/* The address a per-peer limit counts by: IPv4 as its IPv4-mapped IPv6
 * form (so a dual-stack listener sees one client once), IPv6 by its /64, the
 * block a single site or host usually holds. All zero when unknown. */
static void peer_key(http_conn_t *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);

    memset(c->peer_key, 0, sizeof(c->peer_key));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        c->peer_key[10] = c->peer_key[11] = 0xff;
        memcpy(c->peer_key + 12, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;

        memcpy(c->peer_key, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
    }
}

/* Whether the peer of `c` already has max_connections_per_peer open. A
 * scan of the open connections (at most max_connections of them): cheap
 * next to an accept, and nothing to keep in step. */
static int peer_full(kopt_http_server_t *srv, const http_conn_t *c)
{
    int n = 0;

    if (srv->opts.max_connections_per_peer <= 0)
        return 0;
    for (const http_conn_t *o = srv->conns; o; o = o->next)
        if (memcmp(o->peer_key, c->peer_key, sizeof(c->peer_key)) == 0 &&
            ++n >= srv->opts.max_connections_per_peer)
            return 1;
    return 0;
}

static void refuse(http_conn_t *c, int per_peer)
{
    static const char all[] = "{\"error\":\"too many connections\"}";
    static const char peer[] = "{\"error\":\"too many connections from this address\"}";
    const char *body = per_peer ? peer : all;
    char msg[256];
    int n;

    kopt_metric_counter_inc(per_peer ? c->srv->peer_refused : c->srv->refused);
    if (c->srv->opts.tls) { /* plain bytes would be noise to a TLS client */
        http_conn_close(c);
        return;
    }
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
    /* Best effort: a fresh socket's send buffer takes this at once. */
    uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = msg, .len = (size_t)n}, 1);
    http_conn_close(c);
}

void http_conn_accept(kopt_http_server_t *srv, uv_stream_t *l)
{
    http_conn_t *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return; /* the connection waits in the backlog */
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    srv->nalloc++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        http_conn_close(c);
        return;
    }
    if (srv->draining || srv->nconns >= srv->opts.max_connections) {
        refuse(c, 0);
        return;
    }
    peer_key(c);
    if (peer_full(srv, c)) {
        refuse(c, 1);
        return;
    }
    c->counted = 1;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    kopt_metric_gauge_add(srv->open, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    /* The TLS handshake, or else the first request, within the header timeout. */
    timer_set(c, srv->opts.tls ? TM_HANDSHAKE : TM_HEADER, srv->opts.header_timeout_ms);
    r = kopt_http_request_new(&srv->opts.limits, &c->req);
    if (r == 0 && srv->opts.tls) {
        peer_name(c, c->peer, sizeof(c->peer)); /* while the peer is surely there */
        r = http_tls_conn_new(srv->opts.tls, &c->tls);
        c->cbuf = r == 0 ? malloc(HTTP_READ_BUF_BYTES) : NULL;
        if (!c->cbuf)
            r = -ENOMEM;
    }
    if (r < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        http_conn_close(c);
}
