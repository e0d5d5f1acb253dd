/* The HTTP/1.1 server on a libuv loop: options, metrics, routes, the
 * listener, drain and free. Each accepted connection lives in http_conn.c
 * (reads, dispatch, writes, timeouts, TLS); a connection is freed in its
 * close callbacks and the server once the last one and the listener are. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/util.h>

#include "http_internal.h"

void kopt_http_server_options_default(kopt_http_server_options_t *o)
{
    memset(o, 0, sizeof(*o));
    kopt_http_limits_default(&o->limits);
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 10000;
    o->max_connections = 1024;
    o->max_connections_per_peer = 64;
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
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_http_peer_connections_refused_total",
                                 "Connections refused because their client address had "
                                 "max_connections_per_peer open.",
                                 NULL, &f);
    if (r == 0)
        srv->peer_refused = kopt_metric_counter_with(f);
    if (r < 0 || !srv->opts.tls)
        return r;
    r = kopt_metrics_counter(m, "kopt_http_tls_handshakes_total",
                             "TLS handshakes completed on HTTP servers.", NULL, &f);
    if (r < 0)
        return r;
    srv->tls_ok = kopt_metric_counter_with(f);
    return kopt_metrics_counter(m, "kopt_http_tls_handshake_failures_total",
                                "TLS handshakes that failed, by reason (plain_http, client_cert, "
                                "peer_alert, protocol, timeout, closed, other).",
                                "reason", &srv->f_tls_fail);
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
    http_route_t *rt;
    char *p;

    if (!path || !fn || !handler)
        return -EINVAL;
    pl = strlen(path) + 1;
    hl = strlen(handler) + 1;
    if (srv->nroutes == srv->rcap) {
        size_t cap = srv->rcap ? srv->rcap * 2 : 8;
        http_route_t **v = realloc(srv->routes, cap * sizeof(*v));

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

static int method_matches(const http_route_t *rt, const char *method)
{
    if (!rt->method || strcmp(rt->method, method) == 0)
        return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* The route for path+method, or NULL with *path_known set when some route has
 * the path (405, with the methods in allow). */
http_route_t *http_route_find(kopt_http_server_t *srv, const char *method, const char *path,
                              int *path_known, char *allow, size_t allow_len)
{
    http_route_t *best = NULL;
    size_t plen = strlen(path), best_len = 0;
    int best_exact = 0;

    *path_known = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < srv->nroutes; i++) {
        http_route_t *rt = srv->routes[i];
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

static kopt_metric_counter_t *requests_child(kopt_http_server_t *srv, http_route_t *rt, int code)
{
    char num[16];
    kopt_metric_counter_t *c;

    for (size_t i = 0; i < rt->ncodes; i++)
        if (rt->codes[i].code == code)
            return rt->codes[i].c;
    snprintf(num, sizeof(num), "%d", code);
    c = kopt_metric_counter_with(srv->f_requests, rt->handler, num);
    if (rt->ncodes < HTTP_CODE_CACHE) {
        rt->codes[rt->ncodes].code = code;
        rt->codes[rt->ncodes++].c = c;
    }
    return c;
}

void http_server_count(kopt_http_server_t *srv, kopt_http_response_t *res, int status)
{
    http_route_t *rt = res->route ? res->route : &srv->none;

    kopt_metric_counter_inc(requests_child(srv, rt, status));
    if (!rt->duration)
        rt->duration = kopt_metric_histogram_with(srv->f_duration, rt->handler);
    kopt_metric_histogram_observe(rt->duration, (double)(kopt_now_ns() - res->start_ns) / 1e9);
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
void http_server_maybe_finished(kopt_http_server_t *srv)
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

static void on_connection(uv_stream_t *l, int status)
{
    kopt_http_server_t *srv = l->data;

    if (status < 0) {
        kopt_log_warn("http accept failed", KOPT_STR("server", srv->name), KOPT_ERR(status));
        return;
    }
    http_conn_accept(srv, l);
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
    http_server_maybe_finished(srv);
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
    http_conn_t *c, *next;

    if (srv->draining || srv->freeing)
        return;
    srv->draining = 1;
    srv->done = done;
    srv->done_data = data;
    close_listener(srv);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        http_conn_drain(c);
    }
    http_server_maybe_finished(srv);
}

void kopt_http_server_free(kopt_http_server_t *srv)
{
    http_conn_t *c, *next;

    if (!srv || srv->freeing)
        return;
    srv->freeing = 1;
    close_listener(srv);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        http_conn_close(c);
    }
    http_server_maybe_finished(srv);
}
