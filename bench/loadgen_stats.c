/* Latency histogram for ack latencies: log-linear buckets (exact below 64 ns,
 * then 32 buckets per power of two, so a quantile is within 3 %), cheap to
 * add to from a CQ thread and to merge at the end. */
#include <time.h>

#include "loadgen.h"

static unsigned bucket_of(uint64_t v)
{
    unsigned e;

    if (v < 64)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v); /* floor(log2 v), >= 6 */
    if (e >= 6 + 40)
        return LG_HIST_BUCKETS - 1;
    return 64 + (e - 6) * 32 + (unsigned)((v >> (e - 5)) & 31);
}

/* The largest value that falls into bucket b. */
static uint64_t bucket_top(unsigned b)
{
    unsigned e, sub;

    if (b < 64)
        return b;
    e = (b - 64) / 32 + 6;
    sub = (b - 64) % 32;
    return ((32ull + sub + 1) << (e - 5)) - 1;
}

void lg_hist_add(lg_hist_t *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->n++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void lg_hist_merge(lg_hist_t *into, const lg_hist_t *from)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->n += from->n;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->n == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n)
        rank = h->n - 1;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank) {
            uint64_t top = bucket_top(i);
            return top < h->max_ns ? top : h->max_ns;
        }
    }
    return h->max_ns;
}

uint64_t lg_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
