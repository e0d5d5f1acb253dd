/* A bounded cache of bearer tokens the advisor has verified (auth.c), so a
 * client sending the same JWT on every call pays the signature check once:
 * keyed by the token's SHA-256 (the token itself is never kept), holding
 * its subject and roles until the token's exp or a cap, whichever is first,
 * and emptied whenever the issuer's key set changes. Loop thread only. */
#ifndef ADV_TOKEN_CACHE_H
#define ADV_TOKEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/metrics.h>

#define ADV_TOKEN_CACHE_CAPACITY 4096 /* entries, ~200 B each */
#define ADV_TOKEN_CACHE_MAX_AGE 300   /* seconds an entry lives at most */
#define ADV_TOKEN_CACHE_MAX_SUBJECT 128

typedef struct adv_token_cache adv_token_cache_t;

/* `capacity` entries (rounded up to a multiple of 8; 0 refused), each kept
 * at most max_age_s seconds. -EINVAL, -ENOMEM. */
int adv_token_cache_new(size_t capacity, int64_t max_age_s, adv_token_cache_t **out);
/* Counts lookups in kopt_advisor_token_cache_total{result="hit|miss"}. */
int adv_token_cache_set_metrics(adv_token_cache_t *c, kopt_metrics_t *m);

/* A hit: true with *roles and the subject (truncated to sub_len - 1) of a
 * token verified while the key set was `keys_gen` and still fresh at `now`
 * (unix s). An entry of another key set generation, or past its expiry, is
 * a miss (and is dropped). */
bool adv_token_cache_get(adv_token_cache_t *c, const char *token, size_t len, uint64_t keys_gen,
                         int64_t now, int *roles, char *sub, size_t sub_len);
/* Remembers a token just verified with key set `keys_gen`, until
 * min(exp, now + max age); a token already at or past exp is not kept.
 * When its slots are full, the entry expiring soonest gives way. */
void adv_token_cache_put(adv_token_cache_t *c, const char *token, size_t len, uint64_t keys_gen,
                         int64_t now, int64_t exp, const char *sub, int roles);
/* Entries held now (tests). */
size_t adv_token_cache_count(const adv_token_cache_t *c);
/* NULL is fine. */
void adv_token_cache_free(adv_token_cache_t *c);

#endif
