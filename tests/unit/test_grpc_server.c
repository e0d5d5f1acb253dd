/* kopt_grpc_server: unary replies now or later, UNIMPLEMENTED for unknown
 * methods, a missing or oversized request, and a drain that waits for a
 * call still being answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <grpc/grpc_security.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/grpc_server.h>

#include "grpc_test_util.h"

typedef struct {
    kopt_grpc_call_t *call;
    uv_timer_t timer;
} later_t;

static void echo(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    kopt_grpc_call_reply(call, GRPC_STATUS_OK, NULL, req, len);
}

static void reply_later_fire(uv_timer_t *t)
{
    later_t *l = t->data;

    kopt_grpc_call_reply(l->call, GRPC_STATUS_OK, NULL, (const uint8_t *)"later", 5);
    uv_close((uv_handle_t *)t, NULL);
}

/* Answers 300 ms later from a timer, as a handler waiting on a database would. */
static void reply_later(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    later_t *l = kopt_grpc_call_user(call);

    (void)req;
    (void)len;
    l->call = call;
    l->timer.data = l;
    uv_timer_start(&l->timer, reply_later_fire, 300, 0);
}

typedef struct {
    int port;
    test_call_result_t echo, later, unknown, empty, big;
} results_t;

static void client(void *arg)
{
    results_t *r = arg;
    char *big = malloc(200000);

    test_unary_call_to(r->port, NULL, "/kopt.test.T/Echo", "hello", 5000, &r->echo);
    test_unary_call_to(r->port, NULL, "/kopt.test.T/Nope", "x", 5000, &r->unknown);
    test_unary_call_to(r->port, NULL, "/kopt.test.T/Echo", NULL, 5000, &r->empty);
    memset(big, 'a', 199999);
    big[199999] = 0;
    test_unary_call_to(r->port, NULL, "/kopt.test.T/Echo", big, 5000, &r->big);
    free(big);
    test_unary_call_to(r->port, NULL, "/kopt.test.T/Later", "x", 5000, &r->later);
}

static void stop(void *arg)
{
    kopt_grpc_server_shutdown(arg, 5000, NULL, NULL);
}

static void unary_calls_and_errors(void **state)
{
    uv_loop_t loop;
    kopt_grpc_server_t *srv;
    later_t later;
    results_t r;

    (void)state;
    memset(&r, 0, sizeof(r));
    uv_loop_init(&loop);
    uv_timer_init(&loop, &later.timer);
    assert_int_equal(
        kopt_grpc_server_new(&loop, &(kopt_grpc_server_opts_t){.max_recv_bytes = 100000}, &srv), 0);
    assert_int_equal(kopt_grpc_server_add_unary(srv, "/kopt.test.T/Echo", echo, NULL), 0);
    assert_int_equal(kopt_grpc_server_add_unary(srv, "/kopt.test.T/Later", reply_later, &later), 0);
    assert_int_equal(kopt_grpc_server_listen(srv, "127.0.0.1:0",
                                             grpc_insecure_server_credentials_create(), &r.port),
                     0);
    assert_int_equal(kopt_grpc_server_start(srv), 0);
    test_run_with_client(&loop, client, &r, stop, srv);

    assert_int_equal(r.echo.status, GRPC_STATUS_OK);
    assert_string_equal(r.echo.reply, "hello");
    assert_int_equal(r.unknown.status, GRPC_STATUS_UNIMPLEMENTED);
    assert_string_equal(r.unknown.details, "unknown method /kopt.test.T/Nope");
    assert_int_equal(r.empty.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(r.big.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(r.later.status, GRPC_STATUS_OK);
    assert_string_equal(r.later.reply, "later");
    assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct {
    kopt_grpc_server_t *srv;
    int port;
    test_call_result_t res;
} drain_t;

static void drain_client(void *arg)
{
    drain_t *d = arg;

    test_unary_call_to(d->port, NULL, "/kopt.test.T/Later", "x", 5000, &d->res);
}

/* Shutdown begins while the slow call is in flight; it still gets its reply. */
static void shutdown_now(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    reply_later(call, req, len);
    kopt_grpc_server_shutdown(kopt_grpc_call_server(call), 5000, NULL, NULL);
}

static void nothing(void *arg)
{
    (void)arg;
}

static void drain_waits_for_calls_in_flight(void **state)
{
    uv_loop_t loop;
    later_t later;
    drain_t d;

    (void)state;
    memset(&d, 0, sizeof(d));
    uv_loop_init(&loop);
    uv_timer_init(&loop, &later.timer);
    assert_int_equal(kopt_grpc_server_new(&loop, NULL, &d.srv), 0);
    assert_int_equal(kopt_grpc_server_add_unary(d.srv, "/kopt.test.T/Later", shutdown_now, &later),
                     0);
    assert_int_equal(kopt_grpc_server_listen(d.srv, "127.0.0.1:0",
                                             grpc_insecure_server_credentials_create(), &d.port),
                     0);
    assert_int_equal(kopt_grpc_server_start(d.srv), 0);
    test_run_with_client(&loop, drain_client, &d, nothing, NULL);
    assert_int_equal(d.res.status, GRPC_STATUS_OK);
    assert_string_equal(d.res.reply, "later");
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_calls_and_errors),
        cmocka_unit_test(drain_waits_for_calls_in_flight),
    };
    int failed;

    grpc_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return failed;
}
