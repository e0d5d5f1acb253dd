/* Exponential backoff with equal jitter. See kopt/backoff.h. */
#include <kopt/backoff.h>


static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}


void kopt_backoff_init(kopt_backoff_t *b, uint64_t base_ms, uint64_t max_ms, uint64_t seed)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}


uint64_t kopt_backoff_next(kopt_backoff_t *b)
{
    uint64_t d = b->base_ms;
    uint64_t half;

    /* Double without overflow until the cap. */
    for (uint32_t i = 0; i < b->attempt && d < b->max_ms; i++)
        d = d > b->max_ms / 2 ? b->max_ms : d * 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < UINT32_MAX)
        b->attempt++;
    half = d / 2;
    return d - half + xorshift64(&b->rng) % (half + 1);
}


void kopt_backoff_reset(kopt_backoff_t *b)
{
    b->attempt = 0;
}
