/* Exponential backoff with jitter, for reconnects and retries.
 *
 * Pure: no clock, no global random state. Each delay is drawn uniformly from
 * [d/2, d] where d = min(max, base * 2^attempt) ("equal jitter"): it never
 * collapses to zero, so a herd of agents restarted together still spreads out. */
#ifndef KOPT_BACKOFF_H
#define KOPT_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t base_ms; /* first delay, before jitter */
    uint64_t max_ms;  /* cap, before jitter */
    uint32_t attempt; /* failures since the last success */
    uint64_t rng;     /* xorshift64 state; never 0 */
} kopt_backoff_t;

/* `seed` may be anything (0 is mapped to a fixed odd value). */
void kopt_backoff_init(kopt_backoff_t *b, uint64_t base_ms, uint64_t max_ms, uint64_t seed);

/* The delay before the next attempt, in milliseconds; counts one failure. */
uint64_t kopt_backoff_next(kopt_backoff_t *b);

/* Call after a success: the next failure starts again from base_ms. */
void kopt_backoff_reset(kopt_backoff_t *b);

#endif
