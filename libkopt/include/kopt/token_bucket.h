/* Token bucket rate limiter (batches/s, bytes/s, ...).
 *
 * Pure: the caller passes the monotonic time, so tests need no sleeping and one
 * clock read can serve several buckets. Not thread-safe: one owner thread. */
#ifndef KOPT_TOKEN_BUCKET_H
#define KOPT_TOKEN_BUCKET_H

#include <stdint.h>

typedef struct {
    double rate;   /* tokens added per second; 0 means unlimited */
    double burst;  /* bucket size, in tokens */
    double tokens; /* tokens available now */
    uint64_t last_ns;
} kopt_token_bucket_t;

/* Starts full. */
void kopt_token_bucket_init(kopt_token_bucket_t *tb, double rate, double burst, uint64_t now_ns);

/* Takes `n` tokens: 0, or -EAGAIN with *retry_after_ns set to when they would
 * be there (n larger than the burst can never pass: -E2BIG). */
int kopt_token_bucket_take(kopt_token_bucket_t *tb, double n, uint64_t now_ns,
                           uint64_t *retry_after_ns);

/* Changes the rate and burst (config reload) keeping the tokens already earned. */
void kopt_token_bucket_set(kopt_token_bucket_t *tb, double rate, double burst, uint64_t now_ns);

#endif
