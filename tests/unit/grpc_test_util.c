/* A minimal gRPC server on the kopt CQ bridge and a blocking client call, for
 * the unit tests of grpc_loop and grpc_tls. */
#include "grpc_test_util.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/util.h>

struct test_server {
    grpc_server *srv;
    kopt_grpc_loop_t *gl;
    pthread_t loop_thread;
    int port;
    kopt_grpc_tag_t shutdown_tag;
    uint64_t forwarded; /* read when the bridge stopped, before it is freed */
    _Atomic int calls, loop_tags_off_loop, cq_tags_on_loop;
};

typedef struct {
    test_server_t *s;
    kopt_grpc_tag_t request_tag; /* on the loop */
    kopt_grpc_tag_t done_tag;    /* on the CQ thread */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array metadata;
    grpc_slice status_details;
    int cancelled;
} call_ctx_t;

static int on_loop_thread(test_server_t *s)
{
    return pthread_equal(pthread_self(), s->loop_thread);
}

static void on_done(kopt_grpc_tag_t *tag, int ok)
{
    call_ctx_t *c = kopt_container_of(tag, call_ctx_t, done_tag);

    (void)ok;
    if (on_loop_thread(c->s))
        atomic_fetch_add(&c->s->cq_tags_on_loop, 1);
    atomic_fetch_add(&c->s->calls, 1);
    grpc_slice_unref(c->status_details);
    grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->metadata);
    free(c);
}

static void post_request(test_server_t *s);

static void on_request(kopt_grpc_tag_t *tag, int ok)
{
    call_ctx_t *c = kopt_container_of(tag, call_ctx_t, request_tag);
    grpc_op ops[3];

    if (!on_loop_thread(c->s))
        atomic_fetch_add(&c->s->loop_tags_off_loop, 1);
    if (!ok) { /* server shutting down */
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->metadata);
        free(c);
        return;
    }
    post_request(c->s);
    c->status_details = grpc_slice_from_static_string("served");
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[2].data.send_status_from_server.status_details = &c->status_details;
    kopt_grpc_tag_init(&c->done_tag, on_done, 0);
    grpc_call_start_batch(c->call, ops, 3, &c->done_tag, NULL);
}

static void post_request(test_server_t *s)
{
    call_ctx_t *c = calloc(1, sizeof(*c));
    grpc_completion_queue *cq = kopt_grpc_loop_cq(s->gl);

    c->s = s;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->metadata);
    kopt_grpc_tag_init(&c->request_tag, on_request, 1);
    grpc_server_request_call(s->srv, &c->call, &c->details, &c->metadata, cq, cq, &c->request_tag);
}

static void on_shutdown(kopt_grpc_tag_t *tag, int ok)
{
    test_server_t *s = kopt_container_of(tag, test_server_t, shutdown_tag);

    (void)ok;
    grpc_server_destroy(s->srv);
    kopt_grpc_loop_free(s->gl); /* joins the CQ thread and drains */
    /* Still allocated until the loop runs its close callback. */
    s->forwarded = kopt_grpc_loop_forwarded(s->gl);
    s->gl = NULL;
}

/* Loop thread: the loop ends once the bridge has closed. */
static void stop_server(void *arg)
{
    test_server_t *s = arg;

    kopt_grpc_tag_init(&s->shutdown_tag, on_shutdown, 1);
    grpc_server_shutdown_and_notify(s->srv, kopt_grpc_loop_cq(s->gl), &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->srv);
}

test_server_t *test_server_start(uv_loop_t *loop, grpc_server_credentials *creds)
{
    test_server_t *s = calloc(1, sizeof(*s));

    s->loop_thread = pthread_self();
    if (kopt_grpc_loop_new(loop, &s->gl) < 0)
        abort(); /* test setup */
    s->srv = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(s->srv, kopt_grpc_loop_cq(s->gl), NULL);
    s->port = grpc_server_add_http2_port(s->srv, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    grpc_server_start(s->srv);
    kopt_grpc_loop_start(s->gl);
    post_request(s);
    return s;
}

int test_server_port(const test_server_t *s)
{
    return s->port;
}

int test_server_calls(const test_server_t *s)
{
    return atomic_load(&s->calls);
}

int test_server_loop_tags_off_loop(const test_server_t *s)
{
    return atomic_load(&s->loop_tags_off_loop);
}

int test_server_cq_tags_on_loop(const test_server_t *s)
{
    return atomic_load(&s->cq_tags_on_loop);
}

uint64_t test_server_forwarded(const test_server_t *s)
{
    return s->gl ? kopt_grpc_loop_forwarded(s->gl) : s->forwarded;
}

void test_unary_call(int port, grpc_channel_credentials *creds, int deadline_ms,
                     test_call_result_t *out)
{
    test_unary_call_to(port, creds, "/kopt.test.T/Echo", NULL, deadline_ms, out);
}

void test_unary_call_to(int port, grpc_channel_credentials *creds, const char *method,
                        const char *req, int deadline_ms, test_call_result_t *out)
{
    char target[64];
    grpc_channel *ch;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    grpc_byte_buffer *send = NULL, *recv = NULL;
    size_t n = 0;
    int tag;

    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    if (creds)
        ch = grpc_channel_create(target, creds, NULL);
    else {
        grpc_channel_credentials *insecure = grpc_insecure_credentials_create();
        ch = grpc_channel_create(target, insecure, NULL);
        grpc_channel_credentials_release(insecure);
    }
    call = grpc_channel_create_call(
        ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, grpc_slice_from_static_string(method), NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN)),
        NULL);
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    memset(ops, 0, sizeof(ops));
    memset(out, 0, sizeof(*out));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (req) {
        grpc_slice sl = grpc_slice_from_copied_string(req);
        send = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = send;
    }
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &recv;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[n].data.recv_status_on_client.status = &out->status;
    ops[n++].data.recv_status_on_client.status_details = &details;
    grpc_call_start_batch(call, ops, n, &tag, NULL);
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (recv) {
        grpc_byte_buffer_reader r;
        grpc_slice sl;

        grpc_byte_buffer_reader_init(&r, recv);
        sl = grpc_byte_buffer_reader_readall(&r);
        out->reply_len = GRPC_SLICE_LENGTH(sl) < sizeof(out->reply) - 1 ? GRPC_SLICE_LENGTH(sl)
                                                                        : sizeof(out->reply) - 1;
        memcpy(out->reply, GRPC_SLICE_START_PTR(sl), out->reply_len);
        grpc_slice_unref(sl);
        grpc_byte_buffer_reader_destroy(&r);
        grpc_byte_buffer_destroy(recv);
    }
    if (send)
        grpc_byte_buffer_destroy(send);
    snprintf(out->details, sizeof(out->details), "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

typedef struct {
    uv_async_t done;
    void (*client)(void *);
    void *client_arg;
    void (*stop)(void *);
    void *stop_arg;
} runner_t;

static void *client_thread(void *arg)
{
    runner_t *r = arg;

    r->client(r->client_arg);
    uv_async_send(&r->done);
    return NULL;
}

static void on_client_done(uv_async_t *a)
{
    runner_t *r = a->data;

    r->stop(r->stop_arg);
    uv_close((uv_handle_t *)a, NULL);
}

void test_run_with_client(uv_loop_t *loop, void (*client)(void *), void *client_arg,
                          void (*stop)(void *), void *stop_arg)
{
    runner_t r = {.client = client, .client_arg = client_arg, .stop = stop, .stop_arg = stop_arg};
    pthread_t t;

    uv_async_init(loop, &r.done, on_client_done);
    r.done.data = &r;
    pthread_create(&t, NULL, client_thread, &r);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
}

typedef struct {
    test_server_t *s;
    grpc_channel_credentials *creds;
    int n, ok;
    test_call_result_t *out;
} calls_job_t;

static void make_calls(void *arg)
{
    calls_job_t *j = arg;

    for (int i = 0; i < j->n; i++) {
        test_unary_call(j->s->port, j->creds, 5000, j->out);
        j->ok += j->out->status == GRPC_STATUS_OK;
    }
}

int test_calls_while_serving(uv_loop_t *loop, test_server_t *s, grpc_channel_credentials *creds,
                             int n, test_call_result_t *out)
{
    calls_job_t job = {s, creds, n, 0, out};

    test_run_with_client(loop, make_calls, &job, stop_server, s);
    return job.ok;
}

void test_server_free(test_server_t *s)
{
    free(s);
}
