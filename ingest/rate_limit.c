/* The per-agent token bucket table. Linear probing over a power-of-two table
 * with a bounded probe; when every probed slot is taken, the least recently
 * used of them is reused for the new agent (it starts with full buckets,
 * which errs towards letting data in). */
#include "rate_limit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/token_bucket.h>

#define PROBE 16
#define KEY_MAX 512

typedef struct {
    char key[KEY_MAX]; /* "" = free */
    uint64_t last_ns;
    kopt_token_bucket_t batches, bytes;
} entry_t;

struct ingest_rate_limit {
    ingest_rate_limit_opts_t opts;
    entry_t *table;
    size_t cap;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

int ingest_rate_limit_new(const ingest_rate_limit_opts_t *opts, ingest_rate_limit_t **out)
{
    ingest_rate_limit_t *rl = calloc(1, sizeof(*rl));

    if (!rl)
        return -ENOMEM;
    rl->opts = *opts;
    for (rl->cap = 64; rl->cap < opts->max_agents; rl->cap *= 2)
        ;
    rl->table = calloc(rl->cap, sizeof(entry_t));
    if (!rl->table) {
        free(rl);
        return -ENOMEM;
    }
    *out = rl;
    return 0;
}

void ingest_rate_limit_free(ingest_rate_limit_t *rl)
{
    if (!rl)
        return;
    free(rl->table);
    free(rl);
}

static void reset(const ingest_rate_limit_t *rl, entry_t *e, const char *key, uint64_t now)
{
    snprintf(e->key, sizeof(e->key), "%s", key);
    kopt_token_bucket_init(&e->batches, rl->opts.batches_per_s, rl->opts.batch_burst, now);
    kopt_token_bucket_init(&e->bytes, rl->opts.bytes_per_s, rl->opts.byte_burst, now);
}

static entry_t *lookup(ingest_rate_limit_t *rl, const char *key, uint64_t now)
{
    size_t i = hash(key) & (rl->cap - 1);
    entry_t *oldest = NULL;

    for (int n = 0; n < PROBE; n++, i = (i + 1) & (rl->cap - 1)) {
        entry_t *e = &rl->table[i];
        if (!e->key[0]) {
            reset(rl, e, key, now);
            return e;
        }
        if (strcmp(e->key, key) == 0)
            return e;
        if (!oldest || e->last_ns < oldest->last_ns)
            oldest = e;
    }
    reset(rl, oldest, key, now);
    return oldest;
}

void ingest_rate_limit_set(ingest_rate_limit_t *rl, const ingest_rate_limit_opts_t *opts,
                           uint64_t now_ns)
{
    rl->opts.batches_per_s = opts->batches_per_s;
    rl->opts.batch_burst = opts->batch_burst;
    rl->opts.bytes_per_s = opts->bytes_per_s;
    rl->opts.byte_burst = opts->byte_burst;
    for (size_t i = 0; i < rl->cap; i++) {
        entry_t *e = &rl->table[i];
        if (!e->key[0])
            continue;
        kopt_token_bucket_set(&e->batches, opts->batches_per_s, opts->batch_burst, now_ns);
        kopt_token_bucket_set(&e->bytes, opts->bytes_per_s, opts->byte_burst, now_ns);
    }
}

int ingest_rate_limit_take(ingest_rate_limit_t *rl, const char *agent, size_t bytes,
                           uint64_t now_ns, uint64_t *retry_after_ns)
{
    entry_t *e = lookup(rl, agent, now_ns);
    uint64_t wait_batches = 0, wait_bytes = 0;
    int rb, ry;

    e->last_ns = now_ns;
    rb = kopt_token_bucket_take(&e->batches, 1, now_ns, &wait_batches);
    if (rb < 0) {
        *retry_after_ns = wait_batches;
        return rb;
    }
    ry = kopt_token_bucket_take(&e->bytes, (double)bytes, now_ns, &wait_bytes);
    if (ry < 0) {
        e->batches.tokens += 1; /* a refusal costs nothing: give it back */
        *retry_after_ns = wait_bytes;
        return ry;
    }
    return 0;
}
