/* Per-agent rate limits: a batches/s and a bytes/s token bucket for each
 * client identity, in a fixed-size table (least recently seen agent evicted
 * when full, so memory is bounded whatever the number of agents). Pure; one
 * owner thread (the loop). */
#ifndef INGEST_RATE_LIMIT_H
#define INGEST_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ingest_rate_limit ingest_rate_limit_t;

typedef struct {
    double batches_per_s, batch_burst; /* 0: unlimited */
    double bytes_per_s, byte_burst;    /* 0: unlimited */
    size_t max_agents;                 /* table size */
} ingest_rate_limit_opts_t;

int ingest_rate_limit_new(const ingest_rate_limit_opts_t *opts, ingest_rate_limit_t **out);
void ingest_rate_limit_free(ingest_rate_limit_t *rl);

/* New rates for every agent (config reload); tokens already earned stay. */
void ingest_rate_limit_set(ingest_rate_limit_t *rl, const ingest_rate_limit_opts_t *opts,
                           uint64_t now_ns);

/* Charges one batch of `bytes` to `agent` ("cluster/agent-id" of the
 * client certificate, never the batch's own agent_id, which the client
 * chooses: push_stream.c). 0, or
 * -EAGAIN with *retry_after_ns. A batch larger than the byte burst can never
 * pass: -E2BIG. */
int ingest_rate_limit_take(ingest_rate_limit_t *rl, const char *agent, size_t bytes,
                           uint64_t now_ns, uint64_t *retry_after_ns);

#endif
