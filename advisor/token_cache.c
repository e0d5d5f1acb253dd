/* Verified bearer tokens by SHA-256 digest (token_cache.h). The table is
 * set-associative: a digest picks a set of WAYS slots and only that set is
 * searched, so a lookup costs the digest and at most WAYS compares, and a
 * full set evicts its entry that expires first (no list to maintain). A
 * change of the key set (a rotation, a removed key, a SIGHUP re-read)
 * empties the whole table, so a token never outlives the key that
 * verified it. Digests are table keys only: never logged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "token_cache.h"

#define DIGEST_LEN 32
#define WAYS 8

typedef struct {
    unsigned char d[DIGEST_LEN];
    int64_t until; /* unix s; 0: the slot is free */
    int roles;
    char sub[ADV_TOKEN_CACHE_MAX_SUBJECT + 1];
} slot_t;

struct adv_token_cache {
    slot_t *slots; /* n_sets * WAYS, allocated on the first put */
    size_t n_sets, held;
    int64_t max_age;
    uint64_t keys_gen;
    kopt_metric_family_t *family;
    kopt_metric_counter_t *hit, *miss;
};

int adv_token_cache_new(size_t capacity, int64_t max_age_s, adv_token_cache_t **out)
{
    adv_token_cache_t *c;

    *out = NULL;
    if (capacity == 0 || max_age_s <= 0)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->n_sets = (capacity + WAYS - 1) / WAYS;
    c->max_age = max_age_s;
    *out = c;
    return 0;
}

int adv_token_cache_set_metrics(adv_token_cache_t *c, kopt_metrics_t *m)
{
    int r = kopt_metrics_counter(m, "kopt_advisor_token_cache_total",
                                 "Lookups of verified bearer tokens in the advisor's cache, by "
                                 "result",
                                 "result", &c->family);

    if (r < 0)
        return r;
    c->hit = kopt_metric_counter_with(c->family, "hit");
    c->miss = kopt_metric_counter_with(c->family, "miss");
    return c->hit && c->miss ? 0 : -ENOMEM;
}

static void clear(adv_token_cache_t *c)
{
    if (c->slots)
        OPENSSL_cleanse(c->slots, c->n_sets * WAYS * sizeof(*c->slots));
    c->held = 0;
}

/* A new key set generation makes every entry stale at once. */
static void follow_keys(adv_token_cache_t *c, uint64_t keys_gen)
{
    if (keys_gen != c->keys_gen) {
        clear(c);
        c->keys_gen = keys_gen;
    }
}

static slot_t *set_of(adv_token_cache_t *c, const unsigned char *d)
{
    uint64_t h;

    memcpy(&h, d, sizeof(h)); /* a SHA-256 digest is already uniform */
    return &c->slots[(h % c->n_sets) * WAYS];
}

static void drop(adv_token_cache_t *c, slot_t *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
    c->held--;
}

static int digest(const char *token, size_t len, unsigned char *d)
{
    unsigned int n = 0;

    return EVP_Digest(token, len, d, &n, EVP_sha256(), NULL) == 1 && n == DIGEST_LEN ? 0 : -EIO;
}

static bool lookup(adv_token_cache_t *c, const char *token, size_t len, uint64_t keys_gen,
                   int64_t now, int *roles, char *sub, size_t sub_len)
{
    unsigned char d[DIGEST_LEN];
    slot_t *set;

    follow_keys(c, keys_gen);
    if (!c->slots || c->held == 0 || digest(token, len, d) < 0)
        return false;
    set = set_of(c, d);
    for (int i = 0; i < WAYS; i++) {
        slot_t *s = &set[i];

        if (s->until == 0 || memcmp(s->d, d, DIGEST_LEN) != 0)
            continue;
        if (now >= s->until) { /* past exp or the cap: verify again */
            drop(c, s);
            return false;
        }
        *roles = s->roles;
        snprintf(sub, sub_len, "%s", s->sub);
        return true;
    }
    return false;
}

bool adv_token_cache_get(adv_token_cache_t *c, const char *token, size_t len, uint64_t keys_gen,
                         int64_t now, int *roles, char *sub, size_t sub_len)
{
    bool hit = lookup(c, token, len, keys_gen, now, roles, sub, sub_len);

    if (c->family)
        kopt_metric_counter_inc(hit ? c->hit : c->miss);
    return hit;
}

void adv_token_cache_put(adv_token_cache_t *c, const char *token, size_t len, uint64_t keys_gen,
                         int64_t now, int64_t exp, const char *sub, int roles)
{
    int64_t until = exp < now + c->max_age ? exp : now + c->max_age;
    unsigned char d[DIGEST_LEN];
    slot_t *set, *s = NULL;

    follow_keys(c, keys_gen);
    if (until <= now || until <= 0)
        return;
    if (!c->slots && !(c->slots = calloc(c->n_sets * WAYS, sizeof(*c->slots))))
        return; /* out of memory: tokens are verified every time, still correct */
    if (digest(token, len, d) < 0)
        return;
    set = set_of(c, d);
    /* The same token again, else a free or expired slot, else the one
     * expiring soonest. */
    for (int i = 0; i < WAYS && !s; i++)
        if (set[i].until != 0 && memcmp(set[i].d, d, DIGEST_LEN) == 0)
            s = &set[i];
    for (int i = 0; i < WAYS && !s; i++)
        if (set[i].until == 0 || now >= set[i].until)
            s = &set[i];
    if (!s) {
        s = &set[0];
        for (int i = 1; i < WAYS; i++)
            if (set[i].until < s->until)
                s = &set[i];
    }
    if (s->until != 0)
        drop(c, s);
    memcpy(s->d, d, DIGEST_LEN);
    s->until = until;
    s->roles = roles;
    snprintf(s->sub, sizeof(s->sub), "%s", sub ? sub : "");
    c->held++;
}

size_t adv_token_cache_count(const adv_token_cache_t *c)
{
    return c->held;
}

void adv_token_cache_free(adv_token_cache_t *c)
{
    if (!c)
        return;
    clear(c);
    free(c->slots);
    free(c);
}
