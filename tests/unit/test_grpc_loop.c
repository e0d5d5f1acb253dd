/* The CQ bridge: loop-bound tags run on the libuv thread, the rest on the CQ
 * thread, and shutdown drains every pending context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <grpc/grpc_security.h>

#include "grpc_test_util.h"

static void serves_calls_across_threads(void **state)
{
    uv_loop_t loop;
    test_server_t *s;
    test_call_result_t res;
    int ok;

    (void)state;
    uv_loop_init(&loop);
    s = test_server_start(&loop, grpc_insecure_server_credentials_create());
    assert_true(test_server_port(s) > 0);
    ok = test_calls_while_serving(&loop, s, NULL, 20, &res);
    assert_int_equal(ok, 20);
    assert_int_equal(res.status, GRPC_STATUS_OK);
    assert_string_equal(res.details, "served");
    assert_int_equal(test_server_calls(s), 20);
    assert_int_equal(test_server_loop_tags_off_loop(s), 0);
    assert_int_equal(test_server_cq_tags_on_loop(s), 0);
    /* 20 requests, the request still pending at shutdown, the shutdown tag. */
    assert_int_equal(test_server_forwarded(s), 22);
    test_server_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void free_without_start_is_clean(void **state)
{
    uv_loop_t loop;
    kopt_grpc_loop_t *gl;

    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(kopt_grpc_loop_new(&loop, &gl), 0);
    kopt_grpc_loop_free(gl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kopt_grpc_loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves_calls_across_threads),
        cmocka_unit_test(free_without_start_is_clean),
    };
    int failed;

    grpc_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return failed;
}
