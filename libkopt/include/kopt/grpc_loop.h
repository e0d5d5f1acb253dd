/* The bridge between gRPC's completion queue and the libuv loop.
 *
 * gRPC exposes no fd to poll, so one thread of ours sits in
 * grpc_completion_queue_next(). Each tag says where its callback runs: on that
 * CQ thread (cheap work that touches only the call, such as decoding a
 * received message) or on the libuv loop thread (anything that touches
 * loop-owned state). docs/stack-facts.md, 'gRPC: threads and the completion
 * queue' and 'gRPC: splitting receive and send', has the measurements.
 * Loop-bound completions cross through one mutex-protected list and a
 * uv_async, drained whole per wake-up because sends coalesce.
 *
 * Tags are intrusive: embed a kopt_grpc_tag_t in the call's context and find
 * the context back with kopt_container_of(). */
#ifndef KOPT_GRPC_LOOP_H
#define KOPT_GRPC_LOOP_H

#include <grpc/grpc.h>
#include <uv.h>

typedef struct kopt_grpc_tag kopt_grpc_tag_t;

/* `ok` is gRPC's success flag for the completed operation. */
typedef void (*kopt_grpc_tag_fn)(kopt_grpc_tag_t *tag, int ok);

struct kopt_grpc_tag {
    kopt_grpc_tag_fn fn;
    int on_loop; /* 1: fn runs on the loop thread; 0: on the CQ thread */
    /* Owned by the bridge while the completion waits for the loop. */
    int ok;
    kopt_grpc_tag_t *next;
};

static inline void kopt_grpc_tag_init(kopt_grpc_tag_t *t, kopt_grpc_tag_fn fn, int on_loop)
{
    t->fn = fn;
    t->on_loop = on_loop;
    t->ok = 0;
    t->next = NULL;
}

typedef struct kopt_grpc_loop kopt_grpc_loop_t;

/* Creates the completion queue (for a server: register it with
 * grpc_server_register_completion_queue before grpc_server_start). */
int kopt_grpc_loop_new(uv_loop_t *loop, kopt_grpc_loop_t **out);

grpc_completion_queue *kopt_grpc_loop_cq(kopt_grpc_loop_t *gl);

/* Starts the CQ thread. */
int kopt_grpc_loop_start(kopt_grpc_loop_t *gl);

/* Runs `tag` on the loop thread with `ok`, from any thread: the way a
 * CQ-thread callback hands its result over (decode there, act here). */
void kopt_grpc_loop_post(kopt_grpc_loop_t *gl, kopt_grpc_tag_t *tag, int ok);

/* Completions forwarded to the loop so far; for metrics and tests. */
uint64_t kopt_grpc_loop_forwarded(kopt_grpc_loop_t *gl);

/* Shuts the queue down and joins the CQ thread; call on the loop thread after
 * the server's shutdown tag arrived (or, for a client, after every call
 * finished). Completions still queued for the loop run before it returns, so
 * their contexts are freed. Closes the async handle: run the loop once more,
 * then grpc_completion_queue_destroy happens in the close callback. */
void kopt_grpc_loop_free(kopt_grpc_loop_t *gl);

#endif
