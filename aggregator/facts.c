/* Newest-row-per-key sets of workload and node facts; see facts.h. */
#include "facts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct agg_fact_slot {
    uint64_t hash; /* of the key; 0 = empty slot */
    size_t off;    /* the row in rows.data */
    size_t len;
    size_t key_len;
    uint32_t observed_at;
};

void agg_facts_init(agg_facts_t *f)
{
    memset(f, 0, sizeof(*f));
}

static void set_free(agg_fact_set_t *s)
{
    kopt_ch_buf_free(&s->rows);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

void agg_facts_free(agg_facts_t *f)
{
    set_free(&f->workloads);
    set_free(&f->nodes);
}

static void set_clear(agg_fact_set_t *s)
{
    s->rows.len = 0;
    s->used = 0;
    if (s->slots)
        memset(s->slots, 0, s->cap * sizeof(*s->slots));
}

void agg_facts_clear(agg_facts_t *f)
{
    set_clear(&f->workloads);
    set_clear(&f->nodes);
}

size_t agg_facts_count(const agg_facts_t *f)
{
    return f->workloads.used + f->nodes.used;
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t hash_key(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static struct agg_fact_slot *find(agg_fact_set_t *s, uint64_t h, const uint8_t *key, size_t key_len)
{
    size_t i = h & (s->cap - 1);

    for (;; i = (i + 1) & (s->cap - 1)) {
        struct agg_fact_slot *e = &s->slots[i];

        if (e->hash == 0 || (e->hash == h && e->key_len == key_len &&
                             memcmp(s->rows.data + e->off, key, key_len) == 0))
            return e;
    }
}

/* Keeps the load at most one half. */
static int grow(agg_fact_set_t *s)
{
    struct agg_fact_slot *old = s->slots;
    size_t old_cap = s->cap, cap = s->cap ? 2 * s->cap : 64;

    if (s->used + 1 <= s->cap / 2)
        return 0;
    s->slots = calloc(cap, sizeof(*s->slots));
    if (!s->slots) {
        s->slots = old;
        return -ENOMEM;
    }
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].hash)
            *find(s, old[i].hash, s->rows.data + old[i].off, old[i].key_len) = old[i];
    free(old);
    return 0;
}

/* The row just appended at rows[mark..] with a key of key_len bytes
 * replaces an older row of the same key, or is dropped if that one is
 * newer. */
static void keep_newest(agg_fact_set_t *s, size_t mark, size_t key_len, uint32_t observed_at)
{
    const uint8_t *row = s->rows.data + mark;
    uint64_t h = hash_key(row, key_len);
    struct agg_fact_slot *e = find(s, h, row, key_len);

    if (e->hash && e->observed_at > observed_at) {
        s->rows.len = mark;
        return;
    }
    if (!e->hash)
        s->used++;
    *e = (struct agg_fact_slot){h, mark, s->rows.len - mark, key_len, observed_at};
}

int agg_facts_add_batch(agg_facts_t *f, const Kopt__V1__MetricBatch *m)
{
    uint32_t t = m->created ? (uint32_t)m->created->seconds : 0;
    size_t mark, key_len;
    int r;

    for (size_t i = 0; i < m->n_workloads; i++) {
        if (grow(&f->workloads) < 0)
            return -ENOMEM;
        mark = f->workloads.rows.len;
        r = agg_rowbinary_workload_facts(&f->workloads.rows, m, m->workloads[i], &key_len);
        if (r == -EINVAL)
            return 0; /* no created time: nothing to version by */
        if (r < 0)
            return r;
        keep_newest(&f->workloads, mark, key_len, t);
    }
    if (!m->node_facts)
        return 0;
    if (grow(&f->nodes) < 0)
        return -ENOMEM;
    mark = f->nodes.rows.len;
    r = agg_rowbinary_node_facts(&f->nodes.rows, m, &key_len);
    if (r == -EINVAL)
        return 0;
    if (r < 0)
        return r;
    keep_newest(&f->nodes, mark, key_len, t);
    return 0;
}

/* The live rows of s, one after the other, in a new buffer. */
static int gather(const agg_fact_set_t *s, kopt_ch_buf_t *out)
{
    for (size_t i = 0; i < s->cap; i++) {
        const struct agg_fact_slot *e = &s->slots[i];

        if (!e->hash)
            continue;
        if (out->cap - out->len < e->len) {
            size_t cap = out->cap ? out->cap : 4096;
            uint8_t *p;

            while (cap - out->len < e->len)
                cap *= 2;
            p = realloc(out->data, cap);
            if (!p)
                return -ENOMEM;
            out->data = p;
            out->cap = cap;
        }
        memcpy(out->data + out->len, s->rows.data + e->off, e->len);
        out->len += e->len;
    }
    return 0;
}

static int insert_set(const agg_fact_set_t *s, kopt_ch_client_t *c, const char *table,
                      const char *columns, kopt_ch_error_t *err)
{
    kopt_ch_buf_t body;
    int r;

    if (s->used == 0)
        return 0;
    kopt_ch_buf_init(&body);
    r = gather(s, &body);
    if (r == 0)
        r = kopt_ch_insert(c, table, columns, "RowBinary", body.data, body.len, err);
    kopt_ch_buf_free(&body);
    return r;
}

int agg_facts_insert(const agg_facts_t *f, kopt_ch_client_t *c, kopt_ch_error_t *err)
{
    int r =
        insert_set(&f->workloads, c, "workload_facts", AGG_ROWBINARY_WORKLOAD_FACTS_COLUMNS, err);

    return r < 0 ? r
                 : insert_set(&f->nodes, c, "node_facts", AGG_ROWBINARY_NODE_FACTS_COLUMNS, err);
}
