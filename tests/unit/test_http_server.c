/* Unit tests for libkopt/http_server.c over real loopback sockets: the server
 * runs on a libuv loop in a second thread, the test talks to it with plain
 * sockets. Routing, JSON errors, limits, pipelining, deferred responses,
 * timeouts, the connection limit, graceful close and the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <kopt/http.h>
#include <kopt/log.h>
#include <kopt/metrics.h>

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t th;
    kopt_metrics_t *m;
    kopt_http_server_t *srv;
    int port;
    int closed;
    int gone; /* deferred sends that found the client gone */
} fx_t;

typedef struct {
    uv_timer_t t;
    kopt_http_response_t *res;
    fx_t *fx;
} later_t;

/* ---- handlers (loop thread) ---- */

static void h_hello(kopt_http_response_t *res, void *data)
{
    (void)data;
    kopt_http_response_header(res, "X-Test", "1");
    assert_int_equal(kopt_http_response_header(res, "Bad", "a\r\nb"), -EINVAL);
    kopt_http_response_send(res, 200, "text/plain", "hello\n", 6);
}

static void h_echo(kopt_http_response_t *res, void *data)
{
    const kopt_http_request_t *req = kopt_http_response_request(res);
    size_t len;
    const char *body = kopt_http_request_body(req, &len);

    (void)data;
    kopt_http_response_send(res, 200, kopt_http_request_header(req, "Content-Type"), body, len);
}

/* A body the server takes over: 6,000 bytes of a known pattern. */
static void h_owned(kopt_http_response_t *res, void *data)
{
    char *body = malloc(6000);

    (void)data;
    assert_non_null(body);
    for (int i = 0; i < 6000; i++)
        body[i] = (char)('a' + i % 26);
    kopt_http_response_send_owned(res, 200, "text/plain", body, 6000);
}

static void h_prefix(kopt_http_response_t *res, void *data)
{
    const char *path = kopt_http_request_path(kopt_http_response_request(res));

    (void)data;
    kopt_http_response_send(res, 200, "text/plain", path, strlen(path));
}

static void on_later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;

    if (kopt_http_response_send(l->res, 200, NULL, "{\"deferred\":true}", 17) == -ENOTCONN)
        l->fx->gone++;
    uv_close((uv_handle_t *)&l->t, on_later_closed);
}

/* Answers 150 ms later, as after a database call. */
static void h_slow(kopt_http_response_t *res, void *data)
{
    fx_t *fx = data;
    later_t *l = calloc(1, sizeof(*l));

    l->res = res;
    l->fx = fx;
    uv_timer_init(&fx->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_later, 150, 0);
}

/* ---- fixture ---- */

static void on_server_closed(void *data)
{
    fx_t *fx = data;

    fx->closed = 1;
    kopt_http_server_free(fx->srv);
    uv_close((uv_handle_t *)&fx->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
    fx_t *fx = a->data;

    kopt_http_server_close(fx->srv, on_server_closed, fx);
}

static void *loop_thread(void *arg)
{
    fx_t *fx = arg;

    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static fx_t *fx_start_per_peer(uint64_t timeout_ms, int max_conns, int per_peer)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    kopt_http_server_options_t o;

    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_WARN, 2);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(kopt_metrics_new(&fx->m), 0);
    kopt_http_server_options_default(&o);
    o.header_timeout_ms = o.idle_timeout_ms = timeout_ms;
    o.max_connections = max_conns;
    if (per_peer >= 0)
        o.max_connections_per_peer = per_peer;
    assert_int_equal(kopt_http_server_new(&fx->loop, &o, fx->m, &fx->srv), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/hello", 0, "hello", h_hello, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "POST", "/echo", 0, "echo", h_echo, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/slow", 0, "slow", h_slow, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/owned", 0, "owned", h_owned, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, NULL, "/v1/", 1, "v1", h_prefix, fx), 0);
    assert_int_equal(kopt_http_server_port(fx->srv), -ENOTCONN);
    assert_int_equal(kopt_http_server_listen(fx->srv, "127.0.0.1:0"), 0);
    fx->port = kopt_http_server_port(fx->srv);
    assert_true(fx->port > 0);
    uv_async_init(&fx->loop, &fx->stop, on_stop);
    fx->stop.data = fx;
    assert_int_equal(pthread_create(&fx->th, NULL, loop_thread, fx), 0);
    return fx;
}

static fx_t *fx_start(uint64_t timeout_ms, int max_conns)
{
    return fx_start_per_peer(timeout_ms, max_conns, -1);
}

/* Drains the server and joins the loop; the metrics text is returned. */
static char *fx_stop(fx_t *fx)
{
    char *text = NULL;

    uv_async_send(&fx->stop);
    pthread_join(fx->th, NULL);
    assert_true(fx->closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    assert_int_equal(kopt_metrics_expose(fx->m, &text, NULL), 0);
    kopt_metrics_free(fx->m);
    return text;
}

/* ---- a plain-socket client ---- */

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} cli_t;

typedef struct {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} resp_t;

/* Connects to 127.0.0.1:port from `from` (NULL: any; 127.0.0.0/8 is all
 * loopback on Linux, so 127.0.0.2 is another client address). */
static void cli_open_from(cli_t *c, int port, const char *from)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = 5};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->len = 0;
    c->buf[0] = '\0';
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (from) {
        assert_int_equal(inet_pton(AF_INET, from, &src.sin_addr), 1);
        assert_int_equal(bind(c->fd, (struct sockaddr *)&src, sizeof(src)), 0);
    }
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void cli_open(cli_t *c, int port)
{
    cli_open_from(c, port, NULL);
}

static void cli_send(cli_t *c, const char *s, size_t len)
{
    assert_int_equal(send(c->fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void cli_sends(cli_t *c, const char *s)
{
    cli_send(c, s, strlen(s));
}

/* More bytes into c->buf: >0, 0 on EOF, -1 on error or timeout. */
static ssize_t cli_fill(cli_t *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);

    if (n > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return n;
}

/* One response; 0, or -1 if the connection ended first. */
static int cli_response(cli_t *c, resp_t *r)
{
    char *end, *cl;
    size_t hlen, blen;

    while (!(end = strstr(c->buf, "\r\n\r\n")))
        if (cli_fill(c) <= 0)
            return -1;
    hlen = (size_t)(end - c->buf) + 4;
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    r->status = atoi(r->head + 9);
    cl = strcasestr(r->head, "Content-Length: ");
    blen = cl ? (size_t)atol(cl + 16) : 0;
    if (strncmp(r->head, "HTTP/1.1 ", 9) != 0 || blen >= sizeof(r->body))
        return -1;
    while (c->len < hlen + blen)
        if (cli_fill(c) <= 0)
            return -1;
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    c->buf[c->len] = '\0';
    return 0;
}

/* Whether the server closes the connection (EOF or reset) within the timeout. */
static int cli_closed(cli_t *c)
{
    ssize_t n;

    while ((n = cli_fill(c)) > 0)
        ;
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void cli_close(cli_t *c)
{
    close(c->fd);
}

/* Sends one request on a new connection and reads the response. */
static void roundtrip(fx_t *fx, const char *req, resp_t *r)
{
    cli_t c;

    cli_open(&c, fx->port);
    cli_sends(&c, req);
    assert_int_equal(cli_response(&c, r), 0);
    cli_close(&c);
}

/* ---- tests ---- */

static void http_server_routes_and_keep_alive(void **state)
{
    fx_t *fx = fx_start(2000, 16);
    cli_t c;
    resp_t r;
    char *text;

    (void)state;
    cli_open(&c, fx->port);
    cli_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello\n");
    assert_non_null(strstr(r.head, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(r.head, "X-Test: 1\r\n"));
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Type: application/x-test\r\n"
                  "Content-Length: 5\r\n\r\nabcde");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abcde");
    assert_non_null(strstr(r.head, "Content-Type: application/x-test\r\n"));
    /* A body handed over (written after the head, not copied), twice on one
     * connection, then HEAD: its length and no body. */
    for (int k = 0; k < 2; k++) {
        cli_sends(&c, "GET /owned HTTP/1.1\r\n\r\n");
        assert_int_equal(cli_response(&c, &r), 0);
        assert_int_equal(r.body_len, 6000);
        for (int i = 0; i < 6000; i++)
            assert_int_equal(r.body[i], 'a' + i % 26);
    }
    cli_sends(&c, "HEAD /owned HTTP/1.1\r\n\r\n");
    assert_true(cli_fill(&c) > 0);
    assert_non_null(strstr(c.buf, "Content-Length: 6000\r\n"));
    assert_non_null(strstr(c.buf, "\r\n\r\n"));
    assert_int_equal(strlen(strstr(c.buf, "\r\n\r\n")), 4); /* nothing after the head */
    c.len = 0;
    c.buf[0] = '\0';
    cli_sends(&c, "GET /v1/recommendations/x?y=1 HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "/v1/recommendations/x");
    cli_sends(&c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cli_closed(&c));
    cli_close(&c);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"hello\",code=\"200\"} 2\n"));
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"v1\",code=\"200\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_request_duration_seconds_count{handler=\"echo\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_connections_open 0\n"));
    free(text);
    free(fx);
}

static void http_server_head_404_405(void **state)
{
    fx_t *fx = fx_start(2000, 16);
    cli_t c;
    resp_t r;
    char *text;

    (void)state;
    cli_open(&c, fx->port);
    cli_sends(&c, "HEAD /hello HTTP/1.1\r\n\r\n");
    /* HEAD: the GET's Content-Length, no body; the next response follows at once. */
    assert_true(cli_fill(&c) > 0);
    assert_non_null(strstr(c.buf, "Content-Length: 6\r\n"));
    assert_non_null(strstr(c.buf, "\r\n\r\n"));
    assert_string_equal(strstr(c.buf, "\r\n\r\n"), "\r\n\r\n");
    c.len = 0;
    c.buf[0] = '\0';
    cli_sends(&c, "GET /nope?x=1 HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"not found\",\"path\":\"/nope\"}");
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    cli_sends(&c, "DELETE /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET\r\n"));
    assert_string_equal(r.body, "{\"error\":\"method not allowed\",\"path\":\"/hello\"}");
    cli_close(&c);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"none\",code=\"404\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"none\",code=\"405\"} 1\n"));
    free(text);
    free(fx);
}

static void http_server_bad_requests_get_json_and_close(void **state)
{
    fx_t *fx = fx_start(2000, 16);
    char *big = malloc(40000), *text;
    cli_t c;
    resp_t r;

    (void)state;
    roundtrip(fx, "POST /echo HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n", &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"content too large\",\"path\":\"/echo\"}");
    snprintf(big, 40000, "GET /hello HTTP/1.1\r\nX-Big: %0*d\r\n\r\n", 30000, 7);
    roundtrip(fx, big, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.body, "{\"error\":\"request header fields too large\"}");
    snprintf(big, 40000, "GET /%0*d HTTP/1.1\r\n\r\n", 10000, 7);
    roundtrip(fx, big, &r);
    assert_int_equal(r.status, 414);
    /* Garbage: 400 with a JSON body, Connection: close, then the server closes. */
    cli_open(&c, fx->port);
    cli_sends(&c, "\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"error\":\"bad request\"}");
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cli_closed(&c));
    cli_close(&c);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_bad_requests_total{reason=\"body_too_large\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_bad_requests_total{reason=\"headers_too_large\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_bad_requests_total{reason=\"syntax\"} 1\n"));
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"none\",code=\"413\"} 1\n"));
    free(text);
    free(big);
    free(fx);
}

static void http_server_pipelined_with_deferred(void **state)
{
    fx_t *fx = fx_start(2000, 16);
    cli_t c;
    resp_t r;

    (void)state;
    cli_open(&c, fx->port);
    /* Three requests in one write: the deferred one must still come first. */
    cli_sends(&c, "GET /slow HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"
                  "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "{\"deferred\":true}");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "hello\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "xyz");
    /* Split across writes, byte by byte. */
    for (const char *p = "GET /hello HTTP/1.1\r\n\r\n"; *p; p++)
        cli_send(&c, p, 1);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "hello\n");
    cli_close(&c);
    free(fx_stop(fx));
    free(fx);
}

static void http_server_deferred_after_client_left(void **state)
{
    fx_t *fx = fx_start(2000, 16);
    cli_t c;
    resp_t r;

    (void)state;
    cli_open(&c, fx->port);
    cli_sends(&c, "GET /slow HTTP/1.1\r\n\r\n");
    cli_close(&c);
    usleep(300 * 1000);
    roundtrip(fx, "GET /hello HTTP/1.1\r\n\r\n", &r); /* still serving */
    assert_int_equal(r.status, 200);
    free(fx_stop(fx));
    /* The close was seen only if the server read the FIN; either way no crash. */
    assert_true(fx->gone <= 1);
    free(fx);
}

static void http_server_slowloris_is_closed(void **state)
{
    fx_t *fx = fx_start(300, 16);
    struct timeval t0, t1;
    cli_t slow, idle;
    char *text;

    (void)state;
    gettimeofday(&t0, NULL);
    cli_open(&idle, fx->port);
    cli_open(&slow, fx->port);
    cli_sends(&slow, "GET /hello HTTP/1.1\r\n");
    usleep(100 * 1000);
    cli_sends(&slow, "X-A: 1\r\n"); /* trickling bytes does not extend the deadline */
    usleep(100 * 1000);
    cli_sends(&slow, "X-B: 1\r\n");
    assert_true(cli_closed(&slow));
    assert_true(cli_closed(&idle));
    gettimeofday(&t1, NULL);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000 < 2000);
    cli_close(&slow);
    cli_close(&idle);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_bad_requests_total{reason=\"timeout\"} 1\n"));
    free(text);
    free(fx);
}

static void http_server_connection_limit(void **state)
{
    fx_t *fx = fx_start(5000, 2);
    cli_t a, b, c;
    resp_t r;
    char *text;

    (void)state;
    cli_open(&a, fx->port);
    cli_open(&b, fx->port);
    cli_sends(&a, "GET /hello HTTP/1.1\r\n\r\n"); /* both are accepted by now */
    assert_int_equal(cli_response(&a, &r), 0);
    cli_sends(&b, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_response(&b, &r), 0);
    cli_open(&c, fx->port);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"too many connections\"}");
    assert_true(cli_closed(&c));
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_connections_refused_total 1\n"));
    free(text);
    free(fx);
}

/* One client holding half-sent requests on every connection it may open
 * cannot lock others out: past its per-address share it gets 503 while a
 * client from another address is served, and a half-sent body times out
 * like half-sent headers. */
static void http_server_per_peer_limit(void **state)
{
    enum { PER_PEER = 8, TOTAL = 12 };
    fx_t *fx = fx_start_per_peer(1500, TOTAL, PER_PEER);
    cli_t hog[TOTAL], other, body;
    resp_t r;
    char *text;

    (void)state;
    for (int i = 0; i < TOTAL; i++) {
        cli_open_from(&hog[i], fx->port, "127.0.0.1");
        if (i < PER_PEER) {
            cli_sends(&hog[i], "GET /hello HTTP/1.1\r\nX-Slow: 1\r\n");
            continue;
        }
        assert_int_equal(cli_response(&hog[i], &r), 0);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body, "{\"error\":\"too many connections from this address\"}");
        assert_true(cli_closed(&hog[i]));
    }
    cli_open_from(&other, fx->port, "127.0.0.2");
    cli_sends(&other, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_response(&other, &r), 0);
    assert_int_equal(r.status, 200);
    /* Headers whole, the body never: closed at the same deadline. */
    cli_open_from(&body, fx->port, "127.0.0.3");
    cli_sends(&body, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
    assert_true(cli_closed(&body));
    assert_true(cli_closed(&hog[0]));
    for (int i = 0; i < TOTAL; i++)
        cli_close(&hog[i]);
    cli_close(&other);
    cli_close(&body);
    text = fx_stop(fx);
    assert_non_null(strstr(text, "kopt_http_peer_connections_refused_total 4\n"));
    assert_non_null(strstr(text, "kopt_http_connections_refused_total 0\n"));
    assert_non_null(strstr(text, "kopt_http_bad_requests_total{reason=\"timeout\"} 9\n"));
    free(text);
    free(fx);
}

static void http_server_graceful_close(void **state)
{
    fx_t *fx = fx_start(5000, 16);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    cli_t busy, idle;
    resp_t r;
    char *text;
    int fd;

    (void)state;
    cli_open(&idle, fx->port);
    cli_open(&busy, fx->port);
    cli_sends(&busy, "GET /slow HTTP/1.1\r\n\r\n");
    usleep(50 * 1000); /* the request is in the handler now */
    uv_async_send(&fx->stop);
    assert_true(cli_closed(&idle));               /* idle: closed at once */
    assert_int_equal(cli_response(&busy, &r), 0); /* in flight: finished */
    assert_string_equal(r.body, "{\"deferred\":true}");
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cli_closed(&busy));
    cli_close(&busy); /* our FIN ends the server's lingering close */
    pthread_join(fx->th, NULL);
    assert_true(fx->closed);
    /* Nobody listens any more. */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    cli_close(&idle);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    assert_int_equal(kopt_metrics_expose(fx->m, &text, NULL), 0);
    assert_non_null(strstr(text, "kopt_http_requests_total{handler=\"slow\",code=\"200\"} 1\n"));
    free(text);
    kopt_metrics_free(fx->m);
    free(fx);
}

static void http_server_listen_addresses(void **state)
{
    uv_loop_t loop;
    kopt_http_server_t *srv;
    static const char *const bad[] = {"",       "7401",   "host:",   ":x",
                                      ":99999", "::1:80", "[::1]80", "no.such.host.invalid:80"};
    int r;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kopt_http_server_new(&loop, NULL, NULL, &srv), 0);
        assert_int_equal(kopt_http_server_listen(srv, bad[i]), -EINVAL);
        kopt_http_server_free(srv);
    }
    assert_int_equal(kopt_http_server_new(&loop, NULL, NULL, &srv), 0);
    assert_int_equal(kopt_http_server_listen(srv, ":0"), 0);
    assert_true(kopt_http_server_port(srv) > 0);
    kopt_http_server_free(srv);
    assert_int_equal(kopt_http_server_new(&loop, NULL, NULL, &srv), 0);
    r = kopt_http_server_listen(srv, "[::1]:0"); /* no IPv6 in some containers */
    assert_true(r == 0 || r == UV_EADDRNOTAVAIL || r == UV_EAFNOSUPPORT);
    assert_true(r < 0 || kopt_http_server_port(srv) > 0);
    kopt_http_server_free(srv);
    kopt_http_server_free(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_server_routes_and_keep_alive),
        cmocka_unit_test(http_server_head_404_405),
        cmocka_unit_test(http_server_bad_requests_get_json_and_close),
        cmocka_unit_test(http_server_pipelined_with_deferred),
        cmocka_unit_test(http_server_deferred_after_client_left),
        cmocka_unit_test(http_server_slowloris_is_closed),
        cmocka_unit_test(http_server_connection_limit),
        cmocka_unit_test(http_server_per_peer_limit),
        cmocka_unit_test(http_server_graceful_close),
        cmocka_unit_test(http_server_listen_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
