/* gRPC completion queue thread and its hand-off to the libuv loop.
 * See kopt/grpc_loop.h for the threading rules. */
#include <kopt/grpc_loop.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <kopt/log.h>

struct kopt_grpc_loop {
    grpc_completion_queue *cq;
    uv_async_t wake;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    kopt_grpc_tag_t *head, *tail; /* FIFO of completions for the loop */
    _Atomic uint64_t forwarded;
};

/* Loop thread: run every completion queued so far, in order. */
static void drain(kopt_grpc_loop_t *gl)
{
    kopt_grpc_tag_t *t;

    pthread_mutex_lock(&gl->lock);
    t = gl->head;
    gl->head = gl->tail = NULL;
    pthread_mutex_unlock(&gl->lock);
    while (t) {
        kopt_grpc_tag_t *next = t->next; /* fn may free the tag */
        t->next = NULL;
        t->fn(t, t->ok);
        t = next;
    }
}

static void on_wake(uv_async_t *a)
{
    drain(a->data);
}

static void forward(kopt_grpc_loop_t *gl, kopt_grpc_tag_t *t, int ok)
{
    t->ok = ok;
    t->next = NULL;
    pthread_mutex_lock(&gl->lock);
    if (gl->tail)
        gl->tail->next = t;
    else
        gl->head = t;
    gl->tail = t;
    pthread_mutex_unlock(&gl->lock);
    atomic_fetch_add_explicit(&gl->forwarded, 1, memory_order_relaxed);
    uv_async_send(&gl->wake);
}

static void *cq_thread(void *arg)
{
    kopt_grpc_loop_t *gl = arg;

    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(gl->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        kopt_grpc_tag_t *t = ev.tag;
        if (t->on_loop)
            forward(gl, t, ev.success);
        else
            t->fn(t, ev.success);
    }
    return NULL;
}

void kopt_grpc_loop_post(kopt_grpc_loop_t *gl, kopt_grpc_tag_t *tag, int ok)
{
    forward(gl, tag, ok);
}

int kopt_grpc_loop_new(uv_loop_t *loop, kopt_grpc_loop_t **out)
{
    kopt_grpc_loop_t *gl = calloc(1, sizeof(*gl));
    int r;

    if (!gl)
        return -ENOMEM;
    pthread_mutex_init(&gl->lock, NULL);
    r = uv_async_init(loop, &gl->wake, on_wake);
    if (r < 0) {
        pthread_mutex_destroy(&gl->lock);
        free(gl);
        return r;
    }
    gl->wake.data = gl;
    gl->cq = grpc_completion_queue_create_for_next(NULL);
    *out = gl;
    return 0;
}

grpc_completion_queue *kopt_grpc_loop_cq(kopt_grpc_loop_t *gl)
{
    return gl->cq;
}

int kopt_grpc_loop_start(kopt_grpc_loop_t *gl)
{
    int r = pthread_create(&gl->thread, NULL, cq_thread, gl);

    if (r != 0)
        return -r;
    gl->thread_started = 1;
    return 0;
}

uint64_t kopt_grpc_loop_forwarded(kopt_grpc_loop_t *gl)
{
    return atomic_load_explicit(&gl->forwarded, memory_order_relaxed);
}

static void on_closed(uv_handle_t *h)
{
    kopt_grpc_loop_t *gl = h->data;

    grpc_completion_queue_destroy(gl->cq);
    pthread_mutex_destroy(&gl->lock);
    free(gl);
}

void kopt_grpc_loop_free(kopt_grpc_loop_t *gl)
{
    if (!gl)
        return;
    grpc_completion_queue_shutdown(gl->cq);
    if (gl->thread_started)
        pthread_join(gl->thread, NULL);
    else
        while (grpc_completion_queue_next(gl->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    drain(gl);
    uv_close((uv_handle_t *)&gl->wake, on_closed);
}
