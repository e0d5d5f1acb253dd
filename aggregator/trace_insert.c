/* aggregator.insert spans (trace_insert.h). A worker inserts the rows of many
 * messages at once, so each stored message gets its own span over the same
 * insert, parented to its own ingest.publish span, and an attribute saying
 * how many messages shared it. */
#include "trace_insert.h"

#include <stdio.h>
#include <string.h>

#include <kopt/trace.h>

void agg_trace_insert_done(natsMsg *const *msgs, const msg_state_t *state, size_t n,
                           uint64_t start_ns)
{
    char shared[24];

    if (!kopt_trace_enabled())
        return;
    snprintf(shared, sizeof(shared), "%zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *tp = NULL, *id = NULL;
        kopt_trace_ctx_t parent;
        int has_parent;
        kopt_span_t span;

        if (state[i] != MSG_STORED)
            continue;
        /* A missing or bad header starts a trace here (W3C: ignore it). */
        has_parent = natsMsgHeader_Get(msgs[i], "traceparent", &tp) == NATS_OK && tp &&
                     kopt_traceparent_parse(tp, strlen(tp), &parent) == 0;
        kopt_span_start(&span, "aggregator.insert", KOPT_SPAN_CONSUMER,
                        has_parent ? &parent : NULL);
        span.start_ns = start_ns;
        kopt_span_attr(&span, "db.system", "clickhouse");
        kopt_span_attr(&span, "db.sql.table", "container_windows");
        if (natsMsgHeader_Get(msgs[i], "Nats-Msg-Id", &id) == NATS_OK && id)
            kopt_span_attr(&span, "messaging.message.id", id);
        kopt_span_attr(&span, "kopt.insert.messages", shared);
        kopt_span_end(&span, 0, NULL);
    }
}
