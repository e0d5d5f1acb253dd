/* Unit tests for TLS under libkopt's HTTP server (http_tls.c, http_conn.c):
 * the server runs on a libuv loop in a second thread with certificates from
 * scripts/certs; clients are libcurl, an OpenSSL client and plain sockets.
 * GET with keep-alive, a body larger than the socket buffers, deferred and
 * pipelined requests, close_notify, TLS 1.2 in and 1.1 out, plain HTTP /
 * garbage / a stalled handshake refused and counted, a client that does not
 * trust us, mutual TLS with no and with a rogue client certificate, and
 * reload on a new cert.
 *
 * usage: test_http_tls SRCDIR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <kopt/http.h>
#include <kopt/log.h>
#include <kopt/metrics.h>

#include "harness.h"

#define BIG_BYTES (8u << 20) /* more than loopback's socket buffers hold */

static const char *src_root;
static char *dir_a, *dir_b, *dir_live; /* two dev CAs, and the files the server reads */

typedef struct {
    uv_loop_t loop;
    uv_async_t stop, reload;
    pthread_t th;
    kopt_metrics_t *m;
    kopt_http_tls_t *tls;
    kopt_http_server_t *srv;
    int port, closed, reload_result, reload_changed;
    volatile int reloaded;
    char *big;
} fx_t;

/* A file of a cert dir; eight results live at once (test thread only). */
static char *path(const char *dir, const char *name)
{
    static char buf[8][1024];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* ---- server (loop thread) ---- */

static void h_hello(kopt_http_response_t *res, void *data)
{
    (void)data;
    kopt_http_response_send(res, 200, "text/plain", "hello\n", 6);
}

static void h_big(kopt_http_response_t *res, void *data)
{
    fx_t *fx = data;

    kopt_http_response_send(res, 200, "application/octet-stream", fx->big, BIG_BYTES);
}

static void h_peer(kopt_http_response_t *res, void *data)
{
    const char *peer = kopt_http_response_tls_peer(res);

    (void)data;
    kopt_http_response_send(res, 200, "text/plain", peer ? peer : "none",
                            strlen(peer ? peer : "none"));
}

static void on_later(uv_timer_t *t)
{
    kopt_http_response_send(t->data, 200, "text/plain", "later", 5);
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

/* Answers 100 ms later, as after a database call. */
static void h_slow(kopt_http_response_t *res, void *data)
{
    fx_t *fx = data;
    uv_timer_t *t = malloc(sizeof(*t));

    uv_timer_init(&fx->loop, t);
    t->data = res;
    uv_timer_start(t, on_later, 100, 0);
}

static void on_server_closed(void *data)
{
    fx_t *fx = data;

    fx->closed = 1;
    kopt_http_server_free(fx->srv);
    uv_close((uv_handle_t *)&fx->stop, NULL);
    uv_close((uv_handle_t *)&fx->reload, NULL);
}

static void on_stop(uv_async_t *a)
{
    fx_t *fx = a->data;

    kopt_http_server_close(fx->srv, on_server_closed, fx);
}

static void on_reload(uv_async_t *a)
{
    fx_t *fx = a->data;
    char err[512] = "";

    fx->reload_result = kopt_http_tls_reload(fx->tls, &fx->reload_changed, err, sizeof(err));
    if (fx->reload_result < 0)
        fprintf(stderr, "reload refused (expected in one test): %s\n", err);
    fx->reloaded = 1;
}

static void *loop_thread(void *arg)
{
    fx_t *fx = arg;

    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static fx_t *fx_start(const char *dir, kopt_http_client_cert_t mode, uint64_t timeout_ms)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    kopt_http_tls_options_t to = {.cert_file = path(dir, "server.pem"),
                                  .key_file = path(dir, "server-key.pem"),
                                  .client_ca_file = path(dir, "ca.pem"),
                                  .client_cert = mode};
    kopt_http_server_options_t o;
    char err[512] = "";

    kopt_log_setup("test", KOPT_LOG_FORMAT_TEXT, KOPT_LOG_WARN, 2);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(kopt_metrics_new(&fx->m), 0);
    if (kopt_http_tls_new(&to, &fx->tls, err, sizeof(err)) < 0)
        fail_msg("kopt_http_tls_new: %s", err);
    fx->big = malloc(BIG_BYTES);
    for (size_t i = 0; i < BIG_BYTES; i++)
        fx->big[i] = (char)('a' + i % 26);
    kopt_http_server_options_default(&o);
    o.header_timeout_ms = o.idle_timeout_ms = timeout_ms;
    o.tls = fx->tls;
    o.name = "tls-test";
    assert_int_equal(kopt_http_server_new(&fx->loop, &o, fx->m, &fx->srv), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/hello", 0, "hello", h_hello, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/big", 0, "big", h_big, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/slow", 0, "slow", h_slow, fx), 0);
    assert_int_equal(kopt_http_server_route(fx->srv, "GET", "/peer", 0, "peer", h_peer, fx), 0);
    assert_int_equal(kopt_http_server_listen(fx->srv, "127.0.0.1:0"), 0);
    fx->port = kopt_http_server_port(fx->srv);
    uv_async_init(&fx->loop, &fx->stop, on_stop);
    uv_async_init(&fx->loop, &fx->reload, on_reload);
    fx->stop.data = fx->reload.data = fx;
    assert_int_equal(pthread_create(&fx->th, NULL, loop_thread, fx), 0);
    return fx;
}

/* Begins the drain; fx_end joins the loop and frees everything. */
static void fx_stop(fx_t *fx)
{
    uv_async_send(&fx->stop);
}

static void fx_end(fx_t *fx)
{
    pthread_join(fx->th, NULL);
    assert_true(fx->closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    kopt_http_tls_free(fx->tls);
    kopt_metrics_free(fx->m);
    free(fx->big);
    free(fx);
}

/* The value of one series in the metrics text (0 when absent); polls up to
 * 2 s for `want` since the server counts on its own thread. */
static double metric(fx_t *fx, const char *series, double want)
{
    double v = 0;

    for (int i = 0; i < 200; i++) {
        char *text = NULL, *p;

        assert_int_equal(kopt_metrics_expose(fx->m, &text, NULL), 0);
        p = strstr(text, series);
        while (p && p != text && p[-1] != '\n') /* a sample line, not # HELP */
            p = strstr(p + 1, series);
        v = p ? strtod(p + strlen(series), NULL) : 0;
        free(text);
        if (v == want)
            break;
        usleep(10000);
    }
    return v;
}

#define FAILURES(reason) "kopt_http_tls_handshake_failures_total{reason=\"" reason "\"} "

/* ---- clients ---- */

typedef struct {
    char *data;
    size_t len, cap;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    body_t *b = data;

    if (b->len + size * n + 1 > b->cap) { /* doubling: 8 MiB in 16 KiB pieces stays cheap */
        b->cap = (b->len + size * n + 1) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET https://localhost:port/path on a (reused) handle; curl's result. */
static CURLcode get(CURL *c, int port, const char *urlpath, const char *ca, const char *cert,
                    const char *key, long *status, body_t *b)
{
    char url[256];
    CURLcode rc;

    snprintf(url, sizeof(url), "https://localhost:%d%s", port, urlpath);
    free(b->data);
    memset(b, 0, sizeof(*b));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
    curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    *status = 0;
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

static int sock_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads until EOF (or an error); returns the bytes read. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    while (len + 1 < cap && (n = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} tcli_t;

/* An OpenSSL client trusting `ca`, speaking TLS versions min..max (0: any);
 * returns SSL_connect's result. */
static int tcli_open_versions(tcli_t *t, int port, const char *ca, int min, int max)
{
    t->fd = sock_open(port);
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (min) { /* older than the system's default minimum: allow it here */
        SSL_CTX_set_security_level(t->ctx, 0);
        SSL_CTX_set_min_proto_version(t->ctx, min);
    }
    SSL_CTX_set_max_proto_version(t->ctx, max);
    assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->ssl = SSL_new(t->ctx);
    SSL_set_fd(t->ssl, t->fd);
    SSL_set_tlsext_host_name(t->ssl, "localhost");
    SSL_set1_host(t->ssl, "localhost");
    return SSL_connect(t->ssl);
}

static int tcli_open(tcli_t *t, int port, const char *ca)
{
    return tcli_open_versions(t, port, ca, 0, 0);
}

static void tcli_close(tcli_t *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
    ERR_clear_error();
}

static void tcli_write(tcli_t *t, const char *s)
{
    assert_int_equal(SSL_write(t->ssl, s, (int)strlen(s)), (int)strlen(s));
}

/* Reads until the server's close_notify; returns SSL_get_error of the end. */
static int tcli_read_all(tcli_t *t, char *buf, size_t cap, size_t *len)
{
    int n;

    *len = 0;
    while ((n = SSL_read(t->ssl, buf + *len, (int)(cap - 1 - *len))) > 0)
        *len += (size_t)n;
    buf[*len] = '\0';
    return SSL_get_error(t->ssl, n);
}

/* Reads one response with a short body; returns it in buf. */
static void tcli_read_response(tcli_t *t, char *buf, size_t cap)
{
    size_t len = 0;
    int n;

    while (!strstr(buf, "\r\n\r\n") || strlen(strstr(buf, "\r\n\r\n")) < 4 + 6) {
        n = SSL_read(t->ssl, buf + len, (int)(cap - 1 - len));
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* The leaf's serial number, printed, of the certificate the server sent. */
static void tcli_serial(tcli_t *t, char *out, size_t len)
{
    X509 *x = SSL_get1_peer_certificate(t->ssl);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);

    snprintf(out, len, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
}

/* ---- tests ---- */

static void get_keep_alive_big_body_and_deferred(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_NONE, 30000);
    CURL *c = curl_easy_init();
    body_t b = {0};
    long status, conns;
    const char *ca = path(dir_a, "ca.pem");

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get(c, fx->port, "/hello", ca, NULL, NULL, &status, &b), CURLE_OK);
        assert_int_equal(status, 200);
        assert_string_equal(b.data, "hello\n");
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
        assert_int_equal(conns, i == 0 ? 1 : 0); /* one connection, kept alive */
    }
    assert_int_equal(get(c, fx->port, "/big", ca, NULL, NULL, &status, &b), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(b.len, BIG_BYTES);
    assert_memory_equal(b.data, fx->big, BIG_BYTES);
    assert_int_equal(get(c, fx->port, "/slow", ca, NULL, NULL, &status, &b), CURLE_OK);
    assert_string_equal(b.data, "later");
    assert_int_equal(get(c, fx->port, "/nope", ca, NULL, NULL, &status, &b), CURLE_OK);
    assert_int_equal(status, 404);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 0);
    assert_true(metric(fx, "kopt_http_tls_handshakes_total ", 1) == 1);
    free(b.data);
    curl_easy_cleanup(c);
    fx_stop(fx);
    fx_end(fx);
}

/* Three requests in one write: the second and third wait decrypted while the
 * first is answered (one deferred); then close_notify ends the stream. */
static void pipelined_requests_and_close_notify(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_NONE, 30000);
    static char buf[65536];
    tcli_t t;
    size_t len;
    int n = 0;

    (void)state;
    assert_int_equal(tcli_open(&t, fx->port, path(dir_a, "ca.pem")), 1);
    assert_string_equal(SSL_get_version(t.ssl), "TLSv1.3");
    tcli_write(&t, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(tcli_read_all(&t, buf, sizeof(buf), &len), SSL_ERROR_ZERO_RETURN);
    for (const char *p = buf; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        n++;
    assert_int_equal(n, 3);
    assert_true(strstr(buf, "later") < strstr(buf, "hello"));
    tcli_close(&t);

    /* An idle kept-alive connection gets close_notify when the server drains. */
    assert_int_equal(tcli_open(&t, fx->port, path(dir_a, "ca.pem")), 1);
    tcli_write(&t, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    buf[0] = '\0';
    tcli_read_response(&t, buf, sizeof(buf));
    assert_non_null(strstr(buf, "Connection: keep-alive"));
    fx_stop(fx);
    assert_int_equal(tcli_read_all(&t, buf, sizeof(buf), &len), SSL_ERROR_ZERO_RETURN);
    tcli_close(&t);
    fx_end(fx);
}

static void plain_http_garbage_and_stalls_are_refused_and_counted(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_NONE, 300);
    static const char hello[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char garbage[] = "hello, this is not TLS at all\r\n\r\n";
    char buf[4096];
    double t0;
    int fd;

    (void)state;
    fd = sock_open(fx->port);
    assert_int_equal(send(fd, hello, sizeof(hello) - 1, 0), (ssize_t)sizeof(hello) - 1);
    read_all(fd, buf, sizeof(buf));
    close(fd);
    assert_memory_equal(buf, "HTTP/1.1 400 ", 13);
    assert_non_null(strstr(buf, "https://"));
    assert_true(metric(fx, FAILURES("plain_http"), 1) == 1);

    fd = sock_open(fx->port);
    assert_int_equal(send(fd, garbage, sizeof(garbage) - 1, 0), (ssize_t)sizeof(garbage) - 1);
    assert_int_equal(read_all(fd, buf, sizeof(buf)), 0); /* closed, nothing said */
    close(fd);
    assert_true(metric(fx, FAILURES("protocol"), 1) == 1);

    /* A record header promising a ClientHello that never comes. */
    t0 = kopt_test_now();
    fd = sock_open(fx->port);
    assert_int_equal(send(fd, "\x16\x03\x01\x01\x00\x01", 6, 0), 6);
    assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
    close(fd);
    assert_true(kopt_test_now() - t0 < 3.0);
    assert_true(metric(fx, FAILURES("timeout"), 1) == 1);

    /* Connecting and saying nothing (a TCP probe) is dropped, not counted;
     * closing mid-handshake is. */
    fd = sock_open(fx->port);
    assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
    close(fd);
    fd = sock_open(fx->port);
    assert_int_equal(send(fd, "\x16\x03\x01\x01\x00\x01", 6, 0), 6);
    close(fd);
    assert_true(metric(fx, FAILURES("closed"), 1) == 1);
    assert_true(metric(fx, FAILURES("timeout"), 1) == 1);
    assert_true(metric(fx, "kopt_http_tls_handshakes_total ", 0) == 0);

    /* A kept-alive connection that idles past the timeout ends with close_notify. */
    {
        static char resp[8192];
        tcli_t t;
        size_t len;

        assert_int_equal(tcli_open(&t, fx->port, path(dir_a, "ca.pem")), 1);
        tcli_write(&t, hello);
        assert_int_equal(tcli_read_all(&t, resp, sizeof(resp), &len), SSL_ERROR_ZERO_RETURN);
        assert_memory_equal(resp, "HTTP/1.1 200 OK", 15);
        tcli_close(&t);
    }
    fx_stop(fx);
    fx_end(fx);
}

static void tls12_works_and_tls11_is_refused(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_NONE, 30000);
    char buf[4096] = "";
    tcli_t t;

    (void)state;
    assert_int_equal(
        tcli_open_versions(&t, fx->port, path(dir_a, "ca.pem"), TLS1_2_VERSION, TLS1_2_VERSION), 1);
    assert_string_equal(SSL_get_version(t.ssl), "TLSv1.2");
    tcli_write(&t, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    tcli_read_response(&t, buf, sizeof(buf));
    assert_memory_equal(buf, "HTTP/1.1 200 OK", 15);
    tcli_close(&t);
    assert_int_not_equal(
        tcli_open_versions(&t, fx->port, path(dir_a, "ca.pem"), TLS1_1_VERSION, TLS1_1_VERSION), 1);
    tcli_close(&t);
    assert_true(metric(fx, FAILURES("protocol"), 1) == 1);
    fx_stop(fx);
    fx_end(fx);
}

static void client_with_the_wrong_ca_fails(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_NONE, 30000);
    CURL *c = curl_easy_init();
    body_t b = {0};
    long status;

    (void)state;
    assert_int_equal(get(c, fx->port, "/hello", path(dir_b, "ca.pem"), NULL, NULL, &status, &b),
                     CURLE_PEER_FAILED_VERIFICATION);
    assert_true(metric(fx, FAILURES("peer_alert"), 1) == 1);
    free(b.data);
    curl_easy_cleanup(c);
    fx_stop(fx);
    fx_end(fx);
}

static void mutual_tls_requires_a_verified_client(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_REQUIRE, 30000);
    char ca[1024];
    body_t b = {0};
    long status;
    CURL *c;

    (void)state;
    snprintf(ca, sizeof(ca), "%s", path(dir_a, "ca.pem"));
    c = curl_easy_init();
    assert_int_equal(get(c, fx->port, "/peer", ca, path(dir_a, "client.pem"),
                         path(dir_a, "client-key.pem"), &status, &b),
                     CURLE_OK);
    assert_int_equal(status, 200);
    assert_string_equal(b.data, "spiffe://kopt/service/kopt-cli");
    curl_easy_cleanup(c);
    c = curl_easy_init();
    assert_int_not_equal(get(c, fx->port, "/peer", ca, NULL, NULL, &status, &b), CURLE_OK);
    curl_easy_cleanup(c);
    c = curl_easy_init();
    assert_int_not_equal(get(c, fx->port, "/peer", ca, path(dir_a, "rogue-client.pem"),
                             path(dir_a, "rogue-client-key.pem"), &status, &b),
                         CURLE_OK);
    curl_easy_cleanup(c);
    assert_int_equal(status, 0);
    assert_true(metric(fx, FAILURES("client_cert"), 2) == 2);
    assert_true(metric(fx, "kopt_http_tls_handshakes_total ", 1) == 1);
    free(b.data);
    fx_stop(fx);
    fx_end(fx);
}

/* Optional: no certificate is fine, a rogue one is not. */
static void optional_client_certificates_are_verified_when_sent(void **state)
{
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_OPTIONAL, 30000);
    char ca[1024];
    body_t b = {0};
    long status;
    CURL *c;

    (void)state;
    snprintf(ca, sizeof(ca), "%s", path(dir_a, "ca.pem"));
    c = curl_easy_init();
    assert_int_equal(get(c, fx->port, "/peer", ca, NULL, NULL, &status, &b), CURLE_OK);
    assert_string_equal(b.data, "none");
    curl_easy_cleanup(c);
    c = curl_easy_init();
    assert_int_equal(get(c, fx->port, "/peer", ca, path(dir_a, "agent-local.pem"),
                         path(dir_a, "agent-local-key.pem"), &status, &b),
                     CURLE_OK);
    assert_string_equal(b.data, "spiffe://kopt/cluster/local/agent/dev-agent");
    curl_easy_cleanup(c);
    c = curl_easy_init();
    assert_int_not_equal(get(c, fx->port, "/peer", ca, path(dir_a, "rogue-client.pem"),
                             path(dir_a, "rogue-client-key.pem"), &status, &b),
                         CURLE_OK);
    curl_easy_cleanup(c);
    assert_true(metric(fx, FAILURES("client_cert"), 1) == 1);
    free(b.data);
    fx_stop(fx);
    fx_end(fx);
}

/* The peer is the one URI SAN: not a DNS SAN that reads like one, and none
 * at all from a certificate with two URI SANs (an X.509-SVID has one). */
static void peer_is_the_one_uri_san(void **state)
{
    static const char *const names[] = {"dns-only", "two-uris", "dns-first"};
    static const char *const want[] = {"none", "none", "spiffe://kopt/cluster/local/agent/real"};
    fx_t *fx = fx_start(dir_a, KOPT_HTTP_CLIENT_CERT_OPTIONAL, 30000);
    char ca[1024], cert[1024], key[1024];
    body_t b = {0};
    long status;

    (void)state;
    assert_int_equal(
        kopt_test_make_client_cert(dir_a, "dns-only", "DNS:spiffe://kopt/service/kopt-cli"), 0);
    assert_int_equal(kopt_test_make_client_cert(dir_a, "two-uris",
                                                "URI:spiffe://kopt/service/kopt-cli,"
                                                "URI:spiffe://kopt/cluster/local/agent/b"),
                     0);
    assert_int_equal(kopt_test_make_client_cert(dir_a, "dns-first",
                                                "DNS:spiffe://kopt/service/kopt-cli,"
                                                "URI:spiffe://kopt/cluster/local/agent/real"),
                     0);
    snprintf(ca, sizeof(ca), "%s", path(dir_a, "ca.pem"));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        CURL *c = curl_easy_init();

        snprintf(cert, sizeof(cert), "%s/%s.pem", dir_a, names[i]);
        snprintf(key, sizeof(key), "%s/%s-key.pem", dir_a, names[i]);
        assert_int_equal(get(c, fx->port, "/peer", ca, cert, key, &status, &b), CURLE_OK);
        curl_easy_cleanup(c);
        assert_int_equal(status, 200);
        assert_string_equal(b.data, want[i]);
    }
    free(b.data);
    fx_stop(fx);
    fx_end(fx);
}

static void copy_file(const char *from, const char *to)
{
    char tmp[1100], *buf = malloc(1 << 20);
    FILE *in = fopen(from, "rb"), *out;
    size_t n;

    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    out = fopen(tmp, "wb");
    assert_non_null(in);
    assert_non_null(out);
    n = fread(buf, 1, 1 << 20, in);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    free(buf);
    assert_int_equal(rename(tmp, to), 0); /* whole files, as a Secret update does */
}

static void use_certs(const char *from)
{
    copy_file(path(from, "server.pem"), path(dir_live, "server.pem"));
    copy_file(path(from, "server-key.pem"), path(dir_live, "server-key.pem"));
    copy_file(path(from, "ca.pem"), path(dir_live, "ca.pem"));
}

static void reload(fx_t *fx, int result, int changed)
{
    fx->reloaded = 0;
    uv_async_send(&fx->reload);
    for (int i = 0; i < 500 && !fx->reloaded; i++)
        usleep(10000);
    assert_true(fx->reloaded);
    assert_int_equal(fx->reload_result, result);
    if (result == 0)
        assert_int_equal(fx->reload_changed, changed);
}

static void reload_serves_the_new_certificate_to_new_connections(void **state)
{
    char serial_a[128], serial_b[128], serial[128], buf[4096];
    tcli_t old, t;
    fx_t *fx;

    (void)state;
    use_certs(dir_a);
    fx = fx_start(dir_live, KOPT_HTTP_CLIENT_CERT_NONE, 30000);
    assert_int_equal(tcli_open(&old, fx->port, path(dir_a, "ca.pem")), 1);
    tcli_serial(&old, serial_a, sizeof(serial_a));
    reload(fx, 0, 0); /* same files: nothing changes */

    use_certs(dir_b);
    reload(fx, 0, 1);
    assert_int_equal(tcli_open(&t, fx->port, path(dir_b, "ca.pem")), 1);
    tcli_serial(&t, serial_b, sizeof(serial_b));
    assert_string_not_equal(serial_a, serial_b);
    tcli_close(&t);
    /* The connection from before keeps its session. */
    tcli_write(&old, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    buf[0] = '\0';
    tcli_read_response(&old, buf, sizeof(buf));
    assert_memory_equal(buf, "HTTP/1.1 200 OK", 15);
    tcli_close(&old);

    /* A key that does not match is refused; the certificate in use stays. */
    copy_file(path(dir_a, "server-key.pem"), path(dir_live, "server-key.pem"));
    reload(fx, -EINVAL, 0);
    assert_int_equal(tcli_open(&t, fx->port, path(dir_b, "ca.pem")), 1);
    tcli_serial(&t, serial, sizeof(serial));
    assert_string_equal(serial, serial_b);
    tcli_close(&t);
    fx_stop(fx);
    fx_end(fx);
}

static void bad_settings_are_refused_with_a_sentence(void **state)
{
    kopt_http_tls_options_t o = {.cert_file = path(dir_a, "server.pem"),
                                 .key_file = path(dir_a, "client-key.pem")};
    kopt_http_tls_t *t = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(kopt_http_tls_new(&o, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    o.key_file = path(dir_a, "server-key.pem");
    o.client_cert = KOPT_HTTP_CLIENT_CERT_REQUIRE;
    assert_int_equal(kopt_http_tls_new(&o, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "CA"));
    o.client_ca_file = path(dir_a, "missing.pem");
    assert_true(kopt_http_tls_new(&o, &t, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "missing.pem"));
    o.client_ca_file = path(dir_a, "server-key.pem");
    assert_int_equal(kopt_http_tls_new(&o, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no PEM certificate"));
    assert_null(t);
    kopt_http_tls_free(NULL);
}

static int group_setup(void **state)
{
    (void)state;
    dir_a = kopt_test_tmpdir("kopt-http-tls-a");
    dir_b = kopt_test_tmpdir("kopt-http-tls-b");
    dir_live = kopt_test_tmpdir("kopt-http-tls-live");
    if (!dir_a || !dir_b || !dir_live || kopt_test_make_certs(src_root, dir_a) < 0 ||
        kopt_test_make_certs(src_root, dir_b) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kopt_test_rmtree(dir_a);
    kopt_test_rmtree(dir_b);
    kopt_test_rmtree(dir_live);
    free(dir_a);
    free(dir_b);
    free(dir_live);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_keep_alive_big_body_and_deferred),
        cmocka_unit_test(pipelined_requests_and_close_notify),
        cmocka_unit_test(plain_http_garbage_and_stalls_are_refused_and_counted),
        cmocka_unit_test(tls12_works_and_tls11_is_refused),
        cmocka_unit_test(client_with_the_wrong_ca_fails),
        cmocka_unit_test(mutual_tls_requires_a_verified_client),
        cmocka_unit_test(optional_client_certificates_are_verified_when_sent),
        cmocka_unit_test(peer_is_the_one_uri_san),
        cmocka_unit_test(reload_serves_the_new_certificate_to_new_connections),
        cmocka_unit_test(bad_settings_are_refused_with_a_sentence),
    };
    int failed;

    if (argc < 2) {
        fprintf(stderr, "usage: %s SRCDIR\n", argv[0]);
        return 2;
    }
    src_root = argv[1];
    /* Both ends write to peers that may have gone (a refused handshake): as in the
     * daemons (lifecycle.c), EPIPE is an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return failed;
}
