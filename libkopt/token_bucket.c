/* Token bucket. See kopt/token_bucket.h. */
#include <kopt/token_bucket.h>

#include <errno.h>


static void refill(kopt_token_bucket_t *tb, uint64_t now_ns)
{
    if (now_ns > tb->last_ns) {
        tb->tokens += tb->rate * (double)(now_ns - tb->last_ns) / 1e9;
        if (tb->tokens > tb->burst)
            tb->tokens = tb->burst;
        tb->last_ns = now_ns;
    }
}


void kopt_token_bucket_init(kopt_token_bucket_t *tb, double rate, double burst, uint64_t now_ns)
{
    tb->rate = rate > 0 ? rate : 0;
    tb->burst = burst > 0 ? burst : 0;
    tb->tokens = tb->burst;
    tb->last_ns = now_ns;
}


int kopt_token_bucket_take(kopt_token_bucket_t *tb, double n, uint64_t now_ns,
                           uint64_t *retry_after_ns)
{
    if (tb->rate == 0)
        return 0;
    if (n > tb->burst)
        return -E2BIG;
    refill(tb, now_ns);
    if (tb->tokens >= n) {
        tb->tokens -= n;
        return 0;
    }
    if (retry_after_ns)
        *retry_after_ns = (uint64_t)((n - tb->tokens) / tb->rate * 1e9) + 1;
    return -EAGAIN;
}


void kopt_token_bucket_set(kopt_token_bucket_t *tb, double rate, double burst, uint64_t now_ns)
{
    refill(tb, now_ns);
    tb->rate = rate > 0 ? rate : 0;
    tb->burst = burst > 0 ? burst : 0;
    if (tb->tokens > tb->burst)
        tb->tokens = tb->burst;
}
