/* The HTTP/1.1 server on a libuv loop: accepts, reads with the pure request
 * layer, routes, writes, times out and drains. One request at a time a
 * connection: reading stops while a request is handled, and bytes of pipelined
 * requests wait in the read buffer, so responses keep the order of requests.
 * A connection is freed in its close callbacks; a response still in a deferred
 * handler's hands outlives it (res->conn is then NULL). */
#include <kopt/http.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/util.h>

#define READ_BUF_BYTES (16 * 1024)
#define LINGER_MS 2000 /* after an error reply: wait for the peer's FIN this long */
#define CODE_CACHE 16

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
    } codes[CODE_CACHE];
    size_t ncodes;
    kopt_metric_histogram_t *duration;
} route_t;

typedef enum { TM_NONE, TM_HEADER, TM_IDLE, TM_WRITE, TM_LINGER } timer_mode_t;

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    kopt_http_server_t *srv;
    kopt_http_request_t *req;  /* NULL while a response holds it */
    kopt_http_response_t *res; /* the request being handled */
    char *wbuf;                /* the response being written */
    timer_mode_t tmode;
    int counted; /* in srv->nconns (not a refused one) */
    int writing;
    int closing;
    int close_after; /* answer with Connection: close, then close */
    int open_handles;
    size_t pend_off, pend_len; /* pipelined bytes in rbuf, not yet parsed */
    struct conn *prev, *next;
    char rbuf[READ_BUF_BYTES];
} conn_t;

struct kopt_http_response {
    conn_t *conn; /* NULL once the client is gone */
    kopt_http_request_t *req;
    route_t *route;
    char *headers; /* extra "Name: value\r\n" lines */
    size_t hlen;
    uint64_t start_ns;
};

struct kopt_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    kopt_http_server_options_t opts;
    char name[32];
    route_t **routes; /* pointers: responses hold routes while more are added */
    size_t nroutes, rcap;
    route_t none;  /* the metrics label for requests no route took */
    conn_t *conns; /* accepted and not closing */
    int nconns;
    int nalloc; /* connections not yet freed, closing ones included */
    int listener_open, listener_closing;
    int port;
    int draining, drained, freeing;
    void (*done)(void *data);
    void *done_data;
    kopt_metrics_t *own_metrics; /* when the caller gave none */
    kopt_metric_family_t *f_requests, *f_duration, *f_bad;
    kopt_metric_gauge_t *open;
    kopt_metric_counter_t *refused;
};

static void conn_close(conn_t *c);
static void conn_process(conn_t *c, char *data, size_t len);
static void maybe_finished(kopt_http_server_t *srv);

void kopt_http_server_options_default(kopt_http_server_options_t *o)
{
    memset(o, 0, sizeof(*o));
    kopt_http_limits_default(&o->limits);
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 10000;
    o->max_connections = 1024;
    o->name = "http";
}

static int register_metrics(kopt_http_server_t *srv, kopt_metrics_t *m)
{
    kopt_metric_family_t *f;
    const double *b;
    size_t nb;
    int r;

    b = kopt_metrics_latency_buckets(&nb);
    r = kopt_metrics_counter(m, "kopt_http_requests_total", "HTTP requests answered.",
                             "handler,code", &srv->f_requests);
    if (r == 0)
        r = kopt_metrics_histogram(m, "kopt_http_request_duration_seconds",
                                   "Time from a complete request to its response, in seconds.",
                                   "handler", b, nb, &srv->f_duration);
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_http_bad_requests_total",
                                 "Requests refused before routing, by reason.", "reason",
                                 &srv->f_bad);
    if (r == 0)
        r = kopt_metrics_gauge(m, "kopt_http_connections_open", "Open HTTP connections.", NULL, &f);
    if (r < 0)
        return r;
    srv->open = kopt_metric_gauge_with(f);
    r = kopt_metrics_counter(m, "kopt_http_connections_refused_total",
                             "Connections refused because max_connections were open.", NULL, &f);
    srv->refused = kopt_metric_counter_with(f);
    return r;
}

int kopt_http_server_new(uv_loop_t *loop, const kopt_http_server_options_t *opts,
                         kopt_metrics_t *metrics, kopt_http_server_t **out)
{
    kopt_http_server_t *srv = calloc(1, sizeof(*srv));
    int r = 0;

    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    if (opts)
        srv->opts = *opts;
    else
        kopt_http_server_options_default(&srv->opts);
    snprintf(srv->name, sizeof(srv->name), "%s", srv->opts.name ? srv->opts.name : "http");
    srv->opts.name = srv->name;
    srv->port = -ENOTCONN;
    srv->none.handler = "none";
    if (!metrics)
        r = kopt_metrics_new(&srv->own_metrics);
    if (r == 0)
        r = register_metrics(srv, metrics ? metrics : srv->own_metrics);
    if (r < 0) {
        kopt_metrics_free(srv->own_metrics);
        free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

int kopt_http_server_route(kopt_http_server_t *srv, const char *method, const char *path,
                           int prefix, const char *handler, kopt_http_handler_fn fn, void *data)
{
    size_t ml = method ? strlen(method) + 1 : 0, pl, hl;
    route_t *rt;
    char *p;

    if (!path || !fn || !handler)
        return -EINVAL;
    pl = strlen(path) + 1;
    hl = strlen(handler) + 1;
    if (srv->nroutes == srv->rcap) {
        size_t cap = srv->rcap ? srv->rcap * 2 : 8;
        route_t **v = realloc(srv->routes, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        srv->routes = v;
        srv->rcap = cap;
    }
    rt = calloc(1, sizeof(*rt) + ml + pl + hl);
    if (!rt)
        return -ENOMEM;
    p = (char *)(rt + 1);
    rt->method = method ? memcpy(p, method, ml) : NULL;
    rt->path = memcpy(p + ml, path, pl);
    rt->handler = memcpy(p + ml + pl, handler, hl);
    rt->path_len = pl - 1;
    rt->prefix = prefix;
    rt->fn = fn;
    rt->data = data;
    srv->routes[srv->nroutes++] = rt;
    return 0;
}

static int method_matches(const route_t *rt, const char *method)
{
    if (!rt->method || strcmp(rt->method, method) == 0)
        return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* The route for path+method, or NULL with *path_known set when some route has
 * the path (405, with the methods in allow). */
static route_t *route_find(kopt_http_server_t *srv, const char *method, const char *path,
                           int *path_known, char *allow, size_t allow_len)
{
    route_t *best = NULL;
    size_t plen = strlen(path), best_len = 0;
    int best_exact = 0;

    *path_known = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < srv->nroutes; i++) {
        route_t *rt = srv->routes[i];
        int exact = !rt->prefix && plen == rt->path_len && memcmp(path, rt->path, plen) == 0;
        int pre = rt->prefix && plen >= rt->path_len && memcmp(path, rt->path, rt->path_len) == 0;

        if (!exact && !pre)
            continue;
        *path_known = 1;
        if (!method_matches(rt, method)) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", rt->method);
            continue;
        }
        if (!best || (exact && !best_exact) || (!exact && !best_exact && rt->path_len > best_len)) {
            best = rt;
            best_len = rt->path_len;
            best_exact = exact;
        }
    }
    return best;
}

static kopt_metric_counter_t *requests_child(kopt_http_server_t *srv, route_t *rt, int code)
{
    char num[16];
    kopt_metric_counter_t *c;

    for (size_t i = 0; i < rt->ncodes; i++)
        if (rt->codes[i].code == code)
            return rt->codes[i].c;
    snprintf(num, sizeof(num), "%d", code);
    c = kopt_metric_counter_with(srv->f_requests, rt->handler, num);
    if (rt->ncodes < CODE_CACHE) {
        rt->codes[rt->ncodes].code = code;
        rt->codes[rt->ncodes++].c = c;
    }
    return c;
}

static void count_response(kopt_http_server_t *srv, kopt_http_response_t *res, int status)
{
    route_t *rt = res->route ? res->route : &srv->none;

    kopt_metric_counter_inc(requests_child(srv, rt, status));
    if (!rt->duration)
        rt->duration = kopt_metric_histogram_with(srv->f_duration, rt->handler);
    kopt_metric_histogram_observe(rt->duration, (double)(kopt_now_ns() - res->start_ns) / 1e9);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;

    /* A request begun but not finished in time: slowloris, or a stalled peer. */
    if (c->tmode == TM_HEADER && c->req && kopt_http_request_started(c->req))
        kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "timeout"));
    conn_close(c);
}

static void timer_set(conn_t *c, timer_mode_t mode, uint64_t ms)
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

static void server_free_now(kopt_http_server_t *srv)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        free(srv->routes[i]);
    free(srv->routes);
    kopt_metrics_free(srv->own_metrics);
    free(srv);
}

/* Called whenever something closed: frees or reports a finished drain. */
static void maybe_finished(kopt_http_server_t *srv)
{
    if (srv->nalloc > 0 || srv->listener_open)
        return;
    if (srv->freeing) {
        server_free_now(srv);
        return;
    }
    if (srv->draining && !srv->drained) {
        srv->drained = 1;
        kopt_log_info("http server closed", KOPT_STR("server", srv->name));
        if (srv->done)
            srv->done(srv->done_data);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    kopt_http_server_t *srv = c->srv;

    if (--c->open_handles > 0)
        return;
    kopt_http_request_free(c->req);
    free(c->wbuf);
    free(c);
    srv->nalloc--;
    maybe_finished(srv);
}

static void conn_close(conn_t *c)
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

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = kopt_container_of(req, conn_t, sreq);

    if (c->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* After an error reply or Connection: close, send FIN and read until the
 * peer's, so unread request bytes do not turn our close into a RST that could
 * destroy the reply before the client read it. */
static void linger_close(conn_t *c)
{
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    timer_set(c, TM_LINGER, LINGER_MS);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;

    (void)suggested;
    /* Reading runs only when no pipelined bytes wait in rbuf. */
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = kopt_container_of(req, conn_t, wreq);
    char *data;
    size_t len;

    free(c->wbuf);
    c->wbuf = NULL;
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
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
    if (!c->closing && !c->res && !c->writing &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
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

int kopt_http_response_send(kopt_http_response_t *res, int status, const char *content_type,
                            const void *body, size_t len)
{
    conn_t *c = res->conn;
    char head[512];
    size_t n, total;
    int r;

    if (!c) {
        response_free(res);
        return -ENOTCONN;
    }
    count_response(c->srv, res, status);
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
    total = n + res->hlen + 2 + len;
    c->wbuf = malloc(total);
    if (!c->wbuf) {
        response_free(res);
        conn_close(c);
        return -ENOMEM;
    }
    memcpy(c->wbuf, head, n);
    if (res->hlen)
        memcpy(c->wbuf + n, res->headers, res->hlen);
    memcpy(c->wbuf + n + res->hlen, "\r\n", 2);
    if (len)
        memcpy(c->wbuf + n + res->hlen + 2, body, len);
    /* The request goes back to the connection, to be reset and reused. */
    c->req = res->req;
    res->req = NULL;
    c->res = NULL;
    response_free(res);
    c->writing = 1;
    r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &(uv_buf_t){.base = c->wbuf, .len = total}, 1,
                 on_write);
    if (r < 0) {
        c->writing = 0;
        conn_close(c);
        return r;
    }
    timer_set(c, TM_WRITE, c->srv->opts.header_timeout_ms);
    return 0;
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

/* Hands the complete request in c->req to a response and its route. */
static void dispatch(conn_t *c, int bad_status)
{
    kopt_http_response_t *res = calloc(1, sizeof(*res));
    const char *method, *path;
    char allow[128];
    route_t *rt;
    int known;

    if (!res) {
        conn_close(c);
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
    rt = route_find(c->srv, method, path, &known, allow, sizeof(allow));
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

static void bad_request(conn_t *c)
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

static void conn_process(conn_t *c, char *data, size_t len)
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

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;

    if (c->closing)
        return;
    if (c->tmode == TM_LINGER) { /* discarding until the peer's FIN */
        if (n < 0)
            conn_close(c);
        return;
    }
    if (n < 0) {
        if (c->req && kopt_http_request_started(c->req))
            kopt_metric_counter_inc(kopt_metric_counter_with(c->srv->f_bad, "incomplete"));
        conn_close(c);
        return;
    }
    conn_process(c, buf->base, (size_t)n);
}

static void refuse(conn_t *c)
{
    static const char body[] = "{\"error\":\"too many connections\"}";
    char msg[256];
    int n;

    kopt_metric_counter_inc(c->srv->refused);
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 sizeof(body) - 1, body);
    /* Best effort: a fresh socket's send buffer takes this at once. */
    uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = msg, .len = (size_t)n}, 1);
    conn_close(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    kopt_http_server_t *srv = l->data;
    conn_t *c;

    if (status < 0) {
        kopt_log_warn("http accept failed", KOPT_STR("server", srv->name), KOPT_ERR(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return; /* the connection waits in the backlog */
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    srv->nalloc++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (srv->draining || srv->nconns >= srv->opts.max_connections) {
        refuse(c);
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
    /* A new connection gets the header timeout for its first request. */
    timer_set(c, TM_HEADER, srv->opts.header_timeout_ms);
    if (kopt_http_request_new(&srv->opts.limits, &c->req) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* "host:port", ":port", "[v6]:port" -> a socket address (getaddrinfo, so a
 * name such as localhost works too; it runs once, at startup). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char host[256];
    const char *port, *end;
    size_t hlen;

    if (!addr)
        return -EINVAL;
    if (addr[0] == '[') {
        end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        hlen = (size_t)(end - addr - 1);
        memcpy(host, addr + 1, hlen < sizeof(host) ? hlen : 0);
        port = end + 2;
    } else {
        end = strrchr(addr, ':');
        if (!end || memchr(addr, ':', (size_t)(end - addr)))
            return -EINVAL;
        hlen = (size_t)(end - addr);
        memcpy(host, addr, hlen < sizeof(host) ? hlen : 0);
        port = end + 1;
    }
    if (hlen >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port) ||
        strtol(port, NULL, 10) > 65535)
        return -EINVAL;
    host[hlen] = '\0';
    if (getaddrinfo(hlen ? host : "0.0.0.0", port, &hints, &ai) != 0 || !ai)
        return -EINVAL;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    kopt_http_server_t *srv = h->data;

    srv->listener_open = 0;
    maybe_finished(srv);
}

static void close_listener(kopt_http_server_t *srv)
{
    if (srv->listener_open && !srv->listener_closing) {
        srv->listener_closing = 1;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    }
}

int kopt_http_server_listen(kopt_http_server_t *srv, const char *addr)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int r;

    if (srv->listener_open)
        return -EALREADY;
    r = parse_addr(addr, &ss);
    if (r < 0) {
        kopt_log_error("bad listen address", KOPT_STR("server", srv->name), KOPT_STR("addr", addr));
        return r;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->listener_open = 1;
    r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (r == 0)
        r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    if (r < 0) {
        kopt_log_error("http listen failed", KOPT_STR("server", srv->name), KOPT_STR("addr", addr),
                       KOPT_ERR(r));
        close_listener(srv);
        return r;
    }
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    kopt_log_info("http listening", KOPT_STR("server", srv->name), KOPT_STR("addr", addr),
                  KOPT_INT("port", srv->port));
    return 0;
}

int kopt_http_server_port(const kopt_http_server_t *srv)
{
    return srv->listener_open && !srv->listener_closing ? srv->port : -ENOTCONN;
}

void kopt_http_server_close(kopt_http_server_t *srv, void (*done)(void *data), void *data)
{
    conn_t *c, *next;

    if (srv->draining || srv->freeing)
        return;
    srv->draining = 1;
    srv->done = done;
    srv->done_data = data;
    close_listener(srv);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        /* Idle ones go now; a request being read, handled or written finishes. */
        if (!c->res && !c->writing && !(c->req && kopt_http_request_started(c->req)))
            conn_close(c);
        else
            c->close_after = 1;
    }
    maybe_finished(srv);
}

void kopt_http_server_free(kopt_http_server_t *srv)
{
    conn_t *c, *next;

    if (!srv || srv->freeing)
        return;
    srv->freeing = 1;
    close_listener(srv);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    maybe_finished(srv);
}
