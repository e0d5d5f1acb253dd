/* Asynchronous JetStream publishing with a bounded window. PubAcks arrive on
 * a nats.c thread (docs/stack-facts.md, 'nats.c: PubAck handler thread') and
 * are handed to the loop, where each publish's `ref` comes back with its
 * result, so callers never lock. */
#ifndef INGEST_PUBLISH_H
#define INGEST_PUBLISH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/nats.h>

typedef struct ingest_publisher ingest_publisher_t;

/* On the loop thread: 0 stored (`duplicate`: JetStream already had this
 * Nats-Msg-Id), or -ETIMEDOUT / -EIO with JetStream's text in `why`. */
typedef void (*ingest_publish_done_fn)(void *ref, int status, int duplicate, const char *why,
                                       void *data);

typedef struct {
    uint32_t window;    /* publishes awaiting a PubAck, at most */
    int64_t timeout_ms; /* a PubAck later than this is a failure */
} ingest_publisher_opts_t;

int ingest_publisher_new(uv_loop_t *loop, kopt_nats_t *nats, const ingest_publisher_opts_t *opts,
                         ingest_publish_done_fn done, void *data, ingest_publisher_t **out);

/* Publishes a copy of `data` to `subject` with header Nats-Msg-Id: `msg_id`
 * and, unless NULL or "", header traceparent: `traceparent`.
 * 0: `ref` will come back through `done`, exactly once. -EAGAIN: the window
 * is full (retry after a completion); -ENOBUFS: disconnected and the
 * reconnect buffer is full; -ENOTCONN, -ENOMEM, -EIO. Loop thread. */
int ingest_publisher_send(ingest_publisher_t *p, const char *subject, const char *msg_id,
                          const char *traceparent, const uint8_t *data, size_t len, void *ref);

uint32_t ingest_publisher_inflight(const ingest_publisher_t *p);
int ingest_publisher_has_room(const ingest_publisher_t *p);

/* Fails every publish still waiting (their `done` runs with -ECANCELED)
 * and frees the publisher; the NATS connection stays. Loop thread. */
void ingest_publisher_free(ingest_publisher_t *p);

#endif
