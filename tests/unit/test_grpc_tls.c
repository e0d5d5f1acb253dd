/* TLS material checks, reload, and mutual TLS through gRPC with the
 * certificates scripts/certs makes: the agent's spiffe identity reaches the
 * server, a rogue CA's client and a client without a certificate do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/grpc_server.h>
#include <kopt/grpc_tls.h>
#include <kopt/tls.h>

#include "grpc_test_util.h"
#include "harness.h"

static const char *source_root;
static char *dir;
static char err[512];

static const char *path(const char *name)
{
    static char buf[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1200];

    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static char *read_text(const char *file)
{
    FILE *f = fopen(file, "r");
    char *buf = calloc(1, 65536);
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    char cmd[1024];

    (void)state;
    dir = kopt_test_tmpdir("kopt-tls");
    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' '%s' >/dev/null", source_root, dir);
    return dir && system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kopt_test_rmtree(dir);
    free(dir);
    return 0;
}

static void loads_agent_material(void **state)
{
    kopt_tls_material_t m;

    (void)state;
    assert_int_equal(kopt_tls_material_load(path("ca.pem"), path("agent-local.pem"),
                                            path("agent-local-key.pem"), &m, err, sizeof(err)),
                     0);
    assert_string_equal(m.uri_san, "spiffe://kopt/cluster/local/agent/dev-agent");
    assert_true(m.not_after_unix > 1700000000);
    kopt_tls_material_clear(&m);
}

static void rejects_bad_material(void **state)
{
    kopt_tls_material_t m;

    (void)state;
    /* A key that belongs to another certificate. */
    assert_true(kopt_tls_material_load(path("ca.pem"), path("server.pem"),
                                       path("agent-local-key.pem"), &m, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "agent-local-key.pem"));
    /* A certificate from another CA. */
    assert_true(kopt_tls_material_load(path("ca.pem"), path("rogue-client.pem"),
                                       path("rogue-client-key.pem"), &m, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "rogue-client.pem"));
    /* A missing file, and a file that is not PEM. */
    assert_true(kopt_tls_material_load(NULL, path("nope.pem"), path("server-key.pem"), &m, err,
                                       sizeof(err)) < 0);
    assert_non_null(strstr(err, "nope.pem"));
    copy_file("/etc/hostname", path("garbage.pem"));
    assert_true(kopt_tls_material_load(path("garbage.pem"), path("server.pem"),
                                       path("server-key.pem"), &m, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "garbage.pem"));
    assert_null(strstr(err, "PRIVATE KEY"));
}

static void source_reloads_only_on_change(void **state)
{
    kopt_tls_source_t *src;
    int changed = -1;

    (void)state;
    copy_file(path("server.pem"), path("live.pem"));
    copy_file(path("server-key.pem"), path("live-key.pem"));
    assert_int_equal(kopt_tls_source_new(path("ca.pem"), path("live.pem"), path("live-key.pem"),
                                         &src, err, sizeof(err)),
                     0);
    assert_int_equal(kopt_tls_source_generation(src), 1);
    assert_int_equal(kopt_tls_source_reload(src, &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 0);
    /* A half-written rotation fails and keeps the old material. */
    copy_file(path("agent-local.pem"), path("live.pem"));
    assert_true(kopt_tls_source_reload(src, &changed, err, sizeof(err)) < 0);
    assert_int_equal(kopt_tls_source_generation(src), 1);
    copy_file(path("agent-local-key.pem"), path("live-key.pem"));
    assert_int_equal(kopt_tls_source_reload(src, &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(kopt_tls_source_generation(src), 2);
    kopt_tls_source_free(src);
    kopt_tls_source_free(NULL);
}

static void who_am_i(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    char uri[256] = "-";

    (void)req;
    (void)len;
    kopt_grpc_call_peer_uri(call, uri, sizeof(uri));
    kopt_grpc_call_reply(call, GRPC_STATUS_OK, NULL, (const uint8_t *)uri, strlen(uri));
}

typedef struct {
    int port;
    grpc_channel_credentials *creds;
    test_call_result_t *res;
} client_t;

static void client_call(void *arg)
{
    client_t *c = arg;

    test_unary_call_to(c->port, c->creds, "/kopt.test.T/WhoAmI", "", 5000, c->res);
}

static void stop_server(void *arg)
{
    kopt_grpc_server_shutdown(arg, 1000, NULL, NULL);
}

/* One mutual-TLS server, one client with the given certificate (or none). */
static void call_with(const char *cert, const char *key, test_call_result_t *res)
{
    uv_loop_t loop;
    kopt_tls_source_t *src;
    kopt_grpc_tls_fetcher_t *fetcher;
    grpc_server_credentials *creds;
    kopt_grpc_server_t *srv;
    kopt_tls_material_t m;
    client_t client = {.res = res};

    uv_loop_init(&loop);
    assert_int_equal(kopt_tls_source_new(path("ca.pem"), path("server.pem"), path("server-key.pem"),
                                         &src, err, sizeof(err)),
                     0);
    assert_int_equal(
        kopt_grpc_server_credentials_new(src, KOPT_CLIENT_CERT_REQUIRED, &creds, &fetcher), 0);
    assert_int_equal(kopt_grpc_server_new(&loop, NULL, &srv), 0);
    assert_int_equal(kopt_grpc_server_add_unary(srv, "/kopt.test.T/WhoAmI", who_am_i, NULL), 0);
    assert_int_equal(kopt_grpc_server_listen(srv, "127.0.0.1:0", creds, &client.port), 0);
    assert_int_equal(kopt_grpc_server_start(srv), 0);
    /* The client trusts our CA, whatever certificate it presents. */
    memset(&m, 0, sizeof(m));
    if (cert)
        assert_int_equal(kopt_tls_material_load(NULL, path(cert), path(key), &m, err, sizeof(err)),
                         0);
    m.ca_pem = read_text(path("ca.pem"));
    client.creds = kopt_grpc_channel_credentials_new(&m);
    test_run_with_client(&loop, client_call, &client, stop_server, srv);
    grpc_channel_credentials_release(client.creds);
    kopt_tls_material_clear(&m);
    assert_int_equal(uv_loop_close(&loop), 0);
    kopt_grpc_tls_fetcher_free(fetcher);
    kopt_tls_source_free(src);
}

static void mutual_tls_passes_the_agent_identity(void **state)
{
    test_call_result_t res;

    (void)state;
    call_with("agent-local.pem", "agent-local-key.pem", &res);
    assert_int_equal(res.status, GRPC_STATUS_OK);
    assert_string_equal(res.reply, "spiffe://kopt/cluster/local/agent/dev-agent");
}

static void mutual_tls_refuses_rogue_and_anonymous_clients(void **state)
{
    test_call_result_t res;

    (void)state;
    call_with("rogue-client.pem", "rogue-client-key.pem", &res);
    assert_int_equal(res.status, GRPC_STATUS_UNAVAILABLE);
    call_with(NULL, NULL, &res);
    assert_int_equal(res.status, GRPC_STATUS_UNAVAILABLE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_agent_material),
        cmocka_unit_test(rejects_bad_material),
        cmocka_unit_test(source_reloads_only_on_change),
        cmocka_unit_test(mutual_tls_passes_the_agent_identity),
        cmocka_unit_test(mutual_tls_refuses_rogue_and_anonymous_clients),
    };
    int failed;

    source_root = argc > 1 ? argv[1] : ".";
    grpc_init();
    failed = cmocka_run_group_tests(tests, setup, teardown);
    grpc_shutdown();
    return failed;
}
