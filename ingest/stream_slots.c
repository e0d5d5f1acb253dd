/* The per-identity stream counts: separate chaining over a power-of-two
 * bucket array that doubles when it holds more identities than buckets.
 * An identity's node goes when its last stream ends. */
#include "stream_slots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *next;
    uint32_t held;
    char key[]; /* NUL-terminated */
} node_t;

struct ingest_stream_slots {
    node_t **buckets;
    size_t cap, n;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

int ingest_stream_slots_new(ingest_stream_slots_t **out)
{
    ingest_stream_slots_t *sl = calloc(1, sizeof(*sl));

    if (!sl)
        return -ENOMEM;
    sl->cap = 64;
    sl->buckets = calloc(sl->cap, sizeof(*sl->buckets));
    if (!sl->buckets) {
        free(sl);
        return -ENOMEM;
    }
    *out = sl;
    return 0;
}

void ingest_stream_slots_free(ingest_stream_slots_t *sl)
{
    if (!sl)
        return;
    for (size_t i = 0; i < sl->cap; i++)
        for (node_t *n = sl->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    free(sl->buckets);
    free(sl);
}

static node_t **find(const ingest_stream_slots_t *sl, const char *key)
{
    node_t **at = &sl->buckets[hash(key) & (sl->cap - 1)];

    while (*at && strcmp((*at)->key, key) != 0)
        at = &(*at)->next;
    return at;
}

/* Doubles the buckets; on failure the table stays as it is (only slower). */
static void grow(ingest_stream_slots_t *sl)
{
    size_t cap = sl->cap * 2;
    node_t **b = calloc(cap, sizeof(*b));

    if (!b)
        return;
    for (size_t i = 0; i < sl->cap; i++)
        for (node_t *n = sl->buckets[i], *next; n; n = next) {
            size_t j = hash(n->key) & (cap - 1);

            next = n->next;
            n->next = b[j];
            b[j] = n;
        }
    free(sl->buckets);
    sl->buckets = b;
    sl->cap = cap;
}

int ingest_stream_slots_take(ingest_stream_slots_t *sl, const char *key, uint32_t max)
{
    node_t **at = find(sl, key);
    size_t len;

    if (*at) {
        if ((*at)->held >= max)
            return -EBUSY;
        (*at)->held++;
        return 0;
    }
    if (max == 0)
        return -EBUSY;
    len = strlen(key) + 1;
    *at = malloc(sizeof(node_t) + len);
    if (!*at)
        return -ENOMEM;
    (*at)->next = NULL;
    (*at)->held = 1;
    memcpy((*at)->key, key, len);
    if (++sl->n > sl->cap)
        grow(sl);
    return 0;
}

void ingest_stream_slots_put(ingest_stream_slots_t *sl, const char *key)
{
    node_t **at = find(sl, key), *n = *at;

    if (!n)
        return;
    if (--n->held > 0)
        return;
    *at = n->next;
    free(n);
    sl->n--;
}

uint32_t ingest_stream_slots_held(const ingest_stream_slots_t *sl, const char *key)
{
    node_t *n = *find(sl, key);

    return n ? n->held : 0;
}
