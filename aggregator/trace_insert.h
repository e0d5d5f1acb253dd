/* The aggregator's hop of a batch's trace: one aggregator.insert span per
 * message stored, a child of the ingest.publish span named by the message's
 * traceparent header. */
#ifndef AGG_TRACE_INSERT_H
#define AGG_TRACE_INSERT_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "halving.h"

/* Ends a span from `start_ns` to now for each message whose state is
 * MSG_STORED (`start_ns` from kopt_trace_now_ns()); `n` messages went into
 * the insert(s) together. No-op with tracing off. */
void agg_trace_insert_done(natsMsg *const *msgs, const msg_state_t *state, size_t n,
                           uint64_t start_ns);

#endif
