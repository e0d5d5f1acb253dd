/* Per-agent rate limits: a batches/s and a bytes/s token bucket for each
 * client identity, in a fixed-size table (least recently seen agent evicted
 * when full, so memory is bounded whatever the number of agents). Pure; one
 * owner thread (the loop). */
#ifndef KOPT_INGEST_RATE_LIMIT_H
#define KOPT_INGEST_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct kopt_rate_limit kopt_rate_limit_t;

typedef struct {
    double batches_per_s, batch_burst; /* 0: unlimited */
    double bytes_per_s, byte_burst;    /* 0: unlimited */
    size_t max_agents;                 /* table size */
} kopt_rate_limit_opts_t;

int kopt_rate_limit_new(const kopt_rate_limit_opts_t *opts, kopt_rate_limit_t **out);
void kopt_rate_limit_free(kopt_rate_limit_t *rl);

/* New rates for every agent (config reload); tokens already earned stay. */
void kopt_rate_limit_set(kopt_rate_limit_t *rl, const kopt_rate_limit_opts_t *opts,
                         uint64_t now_ns);

/* Charges one batch of `bytes` to `agent` ("cluster/agent-id"). 0, or
 * -EAGAIN with *retry_after_ns. A batch larger than the byte burst can never
 * pass: -E2BIG. */
int kopt_rate_limit_take(kopt_rate_limit_t *rl, const char *agent, size_t bytes, uint64_t now_ns,
                         uint64_t *retry_after_ns);

#endif
