/* Health Check over a real loopback call, and the descriptor index that
 * reflection answers from, built on the FileDescriptorSet in the binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <grpc/grpc_security.h>
#include <string.h>

#include <kopt/grpc_services.h>

#include "../../libkopt/descriptor_index.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_test_util.h"
#include "kopt_descriptors.h"

static void index_finds_symbols_and_imports(void **state)
{
    kopt_descriptor_index_t *idx;
    int files[64], n, ingest, ts;
    size_t len;

    (void)state;
    assert_int_equal(kopt_descriptor_index_new(kopt_descriptor_set, kopt_descriptor_set_len, &idx),
                     0);
    ingest = kopt_descriptor_index_by_symbol(idx, "kopt.v1.Ingest");
    assert_true(ingest >= 0);
    assert_int_equal(kopt_descriptor_index_by_symbol(idx, "kopt.v1.Ingest.Push"), ingest);
    assert_int_equal(kopt_descriptor_index_by_name(idx, "kopt/v1/ingest.proto"), ingest);
    assert_true(kopt_descriptor_index_by_symbol(idx, ".kopt.v1.MetricBatch") >= 0);
    assert_true(kopt_descriptor_index_by_symbol(idx, "grpc.health.v1.Health") >= 0);
    assert_true(kopt_descriptor_index_by_symbol(idx, "kopt.v1.Advisor") >= 0);
    assert_int_equal(kopt_descriptor_index_by_symbol(idx, "kopt.v1.Nope"), -ENOENT);
    /* ingest.proto imports metrics.proto, which imports timestamp.proto. */
    n = kopt_descriptor_index_closure(idx, ingest, files, 64);
    ts = kopt_descriptor_index_by_name(idx, "google/protobuf/timestamp.proto");
    assert_true(n >= 3);
    assert_int_equal(files[0], ingest);
    {
        int seen = 0;
        for (int i = 0; i < n; i++)
            seen |= files[i] == ts;
        assert_true(seen);
    }
    assert_non_null(kopt_descriptor_index_bytes(idx, ingest, &len));
    assert_true(len > 100);
    assert_int_equal(kopt_descriptor_index_closure(idx, ingest, files, 1), -E2BIG);
    kopt_descriptor_index_free(idx);
    assert_int_equal(kopt_descriptor_index_new((const uint8_t *)"\xff\xff", 2, &idx), -EINVAL);
}

typedef struct {
    int port;
    kopt_grpc_health_t *health;
    test_call_result_t all, known, unknown, garbage;
} health_run_t;

static void ask(int port, const char *service, test_call_result_t *res)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    char buf[256] = {0};

    req.service = (char *)service;
    grpc__health__v1__health_check_request__pack(&req, (uint8_t *)buf);
    /* An empty service packs to zero bytes: the empty message. */
    test_unary_call_to(port, NULL, "/grpc.health.v1.Health/Check", buf, 5000, res);
}

static void health_client(void *arg)
{
    health_run_t *h = arg;

    ask(h->port, "", &h->all);
    ask(h->port, "kopt.v1.Ingest", &h->known);
    ask(h->port, "kopt.v1.Other", &h->unknown);
    test_unary_call_to(h->port, NULL, "/grpc.health.v1.Health/Check", "\xff\x01", 5000,
                       &h->garbage);
}

static void stop(void *arg)
{
    kopt_grpc_server_shutdown(arg, 1000, NULL, NULL);
}

static int status_of(const test_call_result_t *res)
{
    Grpc__Health__V1__HealthCheckResponse *r = grpc__health__v1__health_check_response__unpack(
        NULL, res->reply_len, (const uint8_t *)res->reply);
    int s;

    assert_non_null(r);
    s = r->status;
    grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    return s;
}

static void health_check_answers_per_service(void **state)
{
    uv_loop_t loop;
    kopt_grpc_server_t *srv;
    kopt_grpc_reflection_t *refl;
    health_run_t h;
    static const char *const services[] = {"kopt.v1.Ingest", "grpc.health.v1.Health", NULL};

    (void)state;
    memset(&h, 0, sizeof(h));
    uv_loop_init(&loop);
    assert_int_equal(kopt_grpc_server_new(&loop, NULL, &srv), 0);
    assert_int_equal(kopt_grpc_health_register(srv, &h.health), 0);
    assert_int_equal(kopt_grpc_reflection_register(srv, kopt_descriptor_set,
                                                   kopt_descriptor_set_len, services, &refl),
                     0);
    assert_int_equal(kopt_grpc_health_set(h.health, "kopt.v1.Ingest", 1), 0);
    assert_int_equal(kopt_grpc_server_listen(srv, "127.0.0.1:0",
                                             grpc_insecure_server_credentials_create(), &h.port),
                     0);
    assert_int_equal(kopt_grpc_server_start(srv), 0);
    test_run_with_client(&loop, health_client, &h, stop, srv);
    assert_int_equal(h.all.status, GRPC_STATUS_OK);
    assert_int_equal(status_of(&h.all),
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    assert_int_equal(status_of(&h.known),
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    assert_int_equal(h.unknown.status, GRPC_STATUS_NOT_FOUND);
    assert_int_equal(h.garbage.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kopt_grpc_health_free(h.health);
    kopt_grpc_reflection_free(refl);
}

static void reflection_refuses_unknown_services(void **state)
{
    uv_loop_t loop;
    kopt_grpc_server_t *srv;
    kopt_grpc_reflection_t *refl = NULL;
    static const char *const services[] = {"kopt.v1.Missing", NULL};

    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(kopt_grpc_server_new(&loop, NULL, &srv), 0);
    assert_int_equal(kopt_grpc_reflection_register(srv, kopt_descriptor_set,
                                                   kopt_descriptor_set_len, services, &refl),
                     -EINVAL);
    kopt_grpc_server_shutdown(srv, 100, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_finds_symbols_and_imports),
        cmocka_unit_test(health_check_answers_per_service),
        cmocka_unit_test(reflection_refuses_unknown_services),
    };
    int failed;

    grpc_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return failed;
}
