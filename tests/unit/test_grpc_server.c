/* kopt_grpc_server: unary replies now or later, UNIMPLEMENTED for unknown
 * methods, a missing or oversized request, a drain that waits for a call
 * still being answered, and the peer identity of a mutual-TLS call: the one
 * URI SAN of a CA-signed certificate, never a DNS or e-mail SAN that reads
 * like one; the call metrics by method and code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/grpc_server.h>
#include <kopt/grpc_tls.h>
#include <kopt/metrics.h>
#include <kopt/tls.h>

#include "grpc_test_util.h"
#include "harness.h"

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
    kopt_metrics_t *m;
    later_t later;
    results_t r;
    char *text;

    (void)state;
    memset(&r, 0, sizeof(r));
    uv_loop_init(&loop);
    uv_timer_init(&loop, &later.timer);
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(
        kopt_grpc_server_new(
            &loop, &(kopt_grpc_server_opts_t){.max_recv_bytes = 100000, .metrics = m}, &srv),
        0);
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

    /* The call metrics, as go-grpc-prometheus names them; the unknown method
     * is not counted (its name comes from the client), nor the oversized
     * request gRPC refuses before the server sees the call. */
    assert_int_equal(kopt_metrics_expose(m, &text, NULL), 0);
#define L(method) "grpc_type=\"unary\",grpc_service=\"kopt.test.T\",grpc_method=\"" method "\""
    assert_non_null(strstr(text, "grpc_server_handled_total{" L("Echo") ",grpc_code=\"OK\"} 1\n"));
    assert_non_null(
        strstr(text, "grpc_server_handled_total{" L("Echo") ",grpc_code=\"InvalidArgument\"} 1\n"));
    assert_non_null(strstr(text, "grpc_server_handled_total{" L("Later") ",grpc_code=\"OK\"} 1\n"));
    assert_non_null(strstr(text, "grpc_server_handling_seconds_count{" L("Later") "} 1\n"));
    assert_non_null(
        strstr(text, "grpc_server_handling_seconds_bucket{" L("Later") ",le=\"0.25\"} 0\n"));
    assert_non_null(
        strstr(text, "grpc_server_handling_seconds_bucket{" L("Later") ",le=\"0.5\"} 1\n"));
    assert_null(strstr(text, "Nope"));
#undef L
    free(text);
    kopt_metrics_free(m);
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

/* ---- peer identity over mutual TLS ---- */

static const char *source_root;

static const char *in_dir(const char *dir, const char *name)
{
    static char buf[4][600];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void make_client_cert(const char *dir, const char *name, const char *san)
{
    assert_int_equal(kopt_test_make_client_cert(dir, name, san), 0);
}

/* Answers "<kopt_grpc_call_peer_uri's result> <uri>". */
static void who_am_i(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    char uri[256] = "-", out[300];
    int r;

    (void)req;
    (void)len;
    r = kopt_grpc_call_peer_uri(call, uri, sizeof(uri));
    snprintf(out, sizeof(out), "%d %s", r, r == 0 ? uri : "-");
    kopt_grpc_call_reply(call, GRPC_STATUS_OK, NULL, (const uint8_t *)out, strlen(out));
}

#define N_PEERS 7

typedef struct {
    const char *dir;
    int port;
    const char *certs[N_PEERS];
    test_call_result_t res[N_PEERS];
} peers_t;

static void peers_client(void *arg)
{
    peers_t *p = arg;
    char err[256];

    for (int i = 0; i < N_PEERS; i++) {
        kopt_tls_material_t m;
        grpc_channel_credentials *creds;
        char key[128];

        memset(&m, 0, sizeof(m));
        snprintf(key, sizeof(key), "%.*s-key.pem", (int)strlen(p->certs[i]) - 4, p->certs[i]);
        assert_int_equal(kopt_tls_material_load(NULL, in_dir(p->dir, p->certs[i]),
                                                in_dir(p->dir, key), &m, err, sizeof(err)),
                         0);
        assert_int_equal(kopt_tls_read_pem(in_dir(p->dir, "ca.pem"), &m.ca_pem, err, sizeof(err)),
                         0);
        creds = kopt_grpc_channel_credentials_new(&m);
        test_unary_call_to(p->port, creds, "/kopt.test.T/WhoAmI", "", 5000, &p->res[i]);
        grpc_channel_credentials_release(creds);
        kopt_tls_material_clear(&m);
    }
}

static void peer_uri_is_the_one_uri_san(void **state)
{
    char *dir = kopt_test_tmpdir("kopt-grpc-peer");
    char cmd[1024], err[256], want[64];
    peers_t p = {.certs = {"agent-local.pem", "dns-service.pem", "email-service.pem",
                           "dns-first.pem", "two-uris.pem", "dns-and-https.pem", "client.pem"}};
    kopt_tls_source_t *src;
    kopt_grpc_tls_fetcher_t *fetcher;
    grpc_server_credentials *creds;
    kopt_grpc_server_t *srv;
    uv_loop_t loop;

    (void)state;
    assert_non_null(dir);
    p.dir = dir;
    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' '%s' >/dev/null", source_root, dir);
    assert_int_equal(system(cmd), 0);
    /* What the attack run used: a spiffe identity in a SAN that is not a URI. */
    make_client_cert(dir, "dns-service", "DNS:spiffe://kopt/service/kopt-cli");
    make_client_cert(dir, "email-service", "email:spiffe://kopt/service/kopt-cli");
    make_client_cert(dir, "dns-first",
                     "DNS:spiffe://kopt/cluster/other-cluster/agent/x,"
                     "URI:spiffe://kopt/cluster/local/agent/real");
    make_client_cert(dir, "two-uris",
                     "URI:spiffe://kopt/cluster/local/agent/a,"
                     "URI:spiffe://kopt/cluster/other-cluster/agent/b");
    make_client_cert(dir, "dns-and-https",
                     "DNS:spiffe://kopt/service/kopt-cli,URI:https://kopt.example/x");

    uv_loop_init(&loop);
    assert_int_equal(kopt_tls_source_new(in_dir(dir, "ca.pem"), in_dir(dir, "server.pem"),
                                         in_dir(dir, "server-key.pem"), &src, err, sizeof(err)),
                     0);
    assert_int_equal(
        kopt_grpc_server_credentials_new(src, KOPT_CLIENT_CERT_REQUIRED, &creds, &fetcher), 0);
    assert_int_equal(kopt_grpc_server_new(&loop, NULL, &srv), 0);
    assert_int_equal(kopt_grpc_server_add_unary(srv, "/kopt.test.T/WhoAmI", who_am_i, NULL), 0);
    assert_int_equal(kopt_grpc_server_listen(srv, "127.0.0.1:0", creds, &p.port), 0);
    assert_int_equal(kopt_grpc_server_start(srv), 0);
    test_run_with_client(&loop, peers_client, &p, stop, srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    kopt_grpc_tls_fetcher_free(fetcher);
    kopt_tls_source_free(src);

    for (int i = 0; i < N_PEERS; i++) {
        fprintf(stderr, "  %-20s -> %d %s\n", p.certs[i], p.res[i].status, p.res[i].reply);
        assert_int_equal(p.res[i].status, GRPC_STATUS_OK);
    }
    /* The normal agent and service certificates still work. */
    assert_string_equal(p.res[0].reply, "0 spiffe://kopt/cluster/local/agent/dev-agent");
    assert_string_equal(p.res[6].reply, "0 spiffe://kopt/service/kopt-cli");
    /* A DNS or e-mail SAN is no identity, wherever it stands. */
    snprintf(want, sizeof(want), "%d -", -ENOENT);
    assert_string_equal(p.res[1].reply, want);
    assert_string_equal(p.res[2].reply, want);
    assert_string_equal(p.res[3].reply, "0 spiffe://kopt/cluster/local/agent/real");
    assert_string_equal(p.res[5].reply, want);
    /* Two URI SANs: no identity at all (an X.509-SVID has exactly one). */
    snprintf(want, sizeof(want), "%d -", -ENOTUNIQ);
    assert_string_equal(p.res[4].reply, want);
    kopt_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_calls_and_errors),
        cmocka_unit_test(drain_waits_for_calls_in_flight),
        cmocka_unit_test(peer_uri_is_the_one_uri_san),
    };
    int failed;

    source_root = argc > 1 ? argv[1] : ".";
    grpc_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return failed;
}
