/* Unit tests for libkopt/admin.c over a real loopback socket: /healthz,
 * /readyz flipping with a check, /metrics content, 405/404, an extra route. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <kopt/admin.h>
#include <kopt/log.h>

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t th;
    kopt_metrics_t *m;
    kopt_admin_t *admin;
    atomic_int nats_up;
} fx_t;

static int check_nats(void *data, char *reason, size_t len)
{
    fx_t *fx = data;

    if (atomic_load(&fx->nats_up))
        return 0;
    snprintf(reason, len, "not connected to nats://127.0.0.1:4222");
    return -ENOTCONN;
}

static int check_always(void *data, char *reason, size_t len)
{
    (void)data;
    (void)reason;
    (void)len;
    return 0;
}

static void h_extra(kopt_http_response_t *res, void *data)
{
    (void)data;
    kopt_http_response_send(res, 200, "text/plain", "extra", 5);
}

static void on_closed(void *data)
{
    fx_t *fx = data;

    kopt_admin_free(fx->admin);
    uv_close((uv_handle_t *)&fx->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
    fx_t *fx = a->data;

    kopt_admin_close(fx->admin, on_closed, fx);
}

static void *loop_thread(void *arg)
{
    uv_run(&((fx_t *)arg)->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* GET-style exchange on a new connection; returns the status, fills body. */
static int fetch(int port, const char *req, char *out, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char *body;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    while (len + 1 < cap && (n = recv(fd, out + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fd);
    body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    return atoi(out + 9);
}

static void admin_endpoints(void **state)
{
    static char buf[1 << 20];
    fx_t fx = {0};
    int port;

    (void)state;
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_WARN, 2);
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    assert_int_equal(kopt_metrics_new(&fx.m), 0);
    assert_int_equal(kopt_admin_new(&fx.loop, "127.0.0.1:0", fx.m, "ingest", NULL, &fx.admin), 0);
    assert_int_equal(kopt_admin_add_check(fx.admin, "nats", check_nats, &fx), 0);
    assert_int_equal(kopt_admin_add_check(fx.admin, "spool", check_always, NULL), 0);
    assert_int_equal(kopt_http_server_route(kopt_admin_server(fx.admin), "GET", "/debug/extra", 0,
                                            "extra", h_extra, NULL),
                     0);
    uv_async_init(&fx.loop, &fx.stop, on_stop);
    fx.stop.data = &fx;
    assert_int_equal(pthread_create(&fx.th, NULL, loop_thread, &fx), 0);

    port = kopt_admin_port(fx.admin);
    assert_true(port > 0);
    assert_int_equal(fetch(port, "GET /healthz HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "\r\n\r\n{\"status\":\"ok\"}"));
    assert_int_equal(fetch(port, "GET /readyz HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 503);
    assert_non_null(strstr(buf, "\r\n\r\n{\"status\":\"unavailable\",\"checks\":{\"nats\":\"not "
                                "connected to nats://127.0.0.1:4222\",\"spool\":\"ok\"},"
                                "\"failed\":[\"nats\"]}"));
    atomic_store(&fx.nats_up, 1);
    assert_int_equal(fetch(port, "GET /readyz HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "{\"status\":\"ok\",\"checks\":{\"nats\":\"ok\",\"spool\":\"ok\"},"
                                "\"failed\":[]}"));
    assert_int_equal(
        fetch(port, "POST /healthz HTTP/1.0\r\nContent-Length: 0\r\n\r\n", buf, sizeof(buf)), 405);
    assert_non_null(strstr(buf, "{\"error\":\"method not allowed\",\"path\":\"/healthz\"}"));
    assert_int_equal(fetch(port, "GET /other HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 404);
    assert_int_equal(fetch(port, "GET /debug/extra HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 200);
    assert_int_equal(fetch(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(
        strstr(buf, "kopt_build_info{version=\"" KOPT_VERSION "\",component=\"ingest\"} 1\n"));
    assert_non_null(strstr(buf, "\nprocess_cpu_seconds_total "));
    assert_non_null(strstr(buf, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(buf, "\nprocess_open_fds "));
    assert_non_null(strstr(buf, "kopt_http_requests_total{handler=\"/readyz\",code=\"503\"} 1\n"));
    assert_non_null(strstr(buf, "kopt_http_requests_total{handler=\"/healthz\",code=\"200\"} 1\n"));
    assert_non_null(strstr(buf, "kopt_http_connections_open 1\n"));

    uv_async_send(&fx.stop);
    pthread_join(fx.th, NULL);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    kopt_metrics_free(fx.m);
}

static void admin_bad_address_fails_cleanly(void **state)
{
    uv_loop_t loop;
    kopt_metrics_t *m;
    kopt_admin_t *a = NULL;

    (void)state;
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_ERROR + 1, 2);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_admin_new(&loop, "nonsense", m, "x", NULL, &a), -EINVAL);
    assert_int_equal(kopt_admin_new(&loop, ":0", NULL, "x", NULL, &a), -EINVAL);
    kopt_admin_free(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kopt_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(admin_endpoints),
        cmocka_unit_test(admin_bad_address_fails_cleanly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
