/* What the gRPC unit tests share: a tiny server on the kopt CQ bridge that
 * answers every call with a status, and a blocking client call to drive it. */
#ifndef KOPT_GRPC_TEST_UTIL_H
#define KOPT_GRPC_TEST_UTIL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <uv.h>

#include <kopt/grpc_loop.h>

typedef struct test_server test_server_t;

/* Starts a server on 127.0.0.1:<free> with `creds` (taken), driven by a
 * kopt_grpc_loop on `loop`. Each call is answered with status OK
 * and the details "served". */
test_server_t *test_server_start(uv_loop_t *loop, grpc_server_credentials *creds);
int test_server_port(const test_server_t *s);

/* Calls processed, and on which threads their tags ran. */
int test_server_calls(const test_server_t *s);
int test_server_loop_tags_off_loop(const test_server_t *s); /* must stay 0 */
int test_server_cq_tags_on_loop(const test_server_t *s);    /* must stay 0 */
uint64_t test_server_forwarded(const test_server_t *s);

typedef struct {
    grpc_status_code status;
    char details[256];
    char reply[4096]; /* the response message, NUL-terminated */
    size_t reply_len;
} test_call_result_t;

/* A unary call with an empty body to "/kopt.test.T/Echo" on 127.0.0.1:port,
 * blocking up to `deadline_ms`. `creds` NULL means plaintext. */
void test_unary_call(int port, grpc_channel_credentials *creds, int deadline_ms,
                     test_call_result_t *out);

/* The same to any method, sending `req` (NULL: no message). */
void test_unary_call_to(int port, grpc_channel_credentials *creds, const char *method,
                        const char *req, int deadline_ms, test_call_result_t *out);

/* Runs `client` on a thread while `loop` runs; when it returns, `stop` runs
 * on the loop thread and must let the loop end (close the server). */
void test_run_with_client(uv_loop_t *loop, void (*client)(void *), void *client_arg,
                          void (*stop)(void *), void *stop_arg);

/* Runs `n` test_unary_calls in turn on a thread while the loop runs, and
 * stops the server afterwards: the common shape of a test. `out` gets the
 * last call's result; the number of OK calls is returned. */
int test_calls_while_serving(uv_loop_t *loop, test_server_t *s, grpc_channel_credentials *creds,
                             int n, test_call_result_t *out);

void test_server_free(test_server_t *s);

#endif
