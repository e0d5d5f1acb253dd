/* One RowBinary answer of the container_hourly query (hourly_read.c) into
 * engine inputs: rows grouped per container, containers in the table's
 * primary key order, each (container, hour) once. The query has no FINAL,
 * so a re-rolled hour whose parts are not merged yet comes twice; the row
 * with the newest rolled_at is kept, the one ReplacingMergeTree(rolled_at)
 * keeps. It has no ORDER BY either: ordering the 10,000 containers here is
 * cheaper than ClickHouse sorting 3.4M rows. Rows are decoded once, in
 * place: a container whose rows came together and in time order (most do:
 * a part is stored in key order) points into them; only the others are
 * sorted into a copy. Memory is touched once because page faults, not
 * parsing, were the cost. Decoded with kopt_clickhouse's RowBinary reader
 * (kopt/rowbinary.h). Pure: no I/O, no globals. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/rowbinary.h>
#include <kopt/util.h>

#include "advisor.h"

#define MAX_BUCKETS 65536    /* a histogram has far fewer: a bad answer */
#define MAX_KEY_BYTES 100000 /* five names */
/* The shortest row: five empty Strings (1 byte each), five 4-byte and
 * eleven 8-byte values, four empty arrays (1 byte each). */
#define MIN_ROW_BYTES (5 + 5 * 4 + 11 * 8 + 4)

/* ---- one answer ------------------------------------------------------------ */

typedef struct {
    char *key; /* the five names, still length-prefixed (a copy) */
    size_t key_len;
    uint32_t first, last, n_rows; /* rows; first and last in arrival order */
    bool in_order;                /* rows first..last are all its, hours rising */
    int64_t newest_hour;          /* and its rolled_at: whose requests are current */
    uint32_t newest_rolled;
    kopt_resources_t current;
    const kopt_engine_hour_t *hours; /* once arranged */
    size_t n_hours;
} ckey_t;

struct adv_hourly_part {
    kopt_engine_hour_t *h; /* every row, in arrival order (reserve()) */
    size_t n_h, cap_h;
    uint32_t *cid, *rolled, *cpu_off, *mem_off; /* per row, while arranging */
    kopt_engine_bucket_t *b;
    size_t n_b, cap_b;
    kopt_engine_hour_t *sorted_h; /* the containers that needed sorting */
    ckey_t *c;
    size_t n_c, cap_c;
    uint32_t *slots; /* hash table: container id + 1, 0 = empty */
    size_t n_slots;
    uint32_t *order; /* container ids in key order */
};

static uint64_t hash_key(const uint8_t *k, size_t n)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h;
}

static int rehash(adv_hourly_part_t *p)
{
    size_t n = p->n_slots ? 2 * p->n_slots : 1024;
    uint32_t *s = calloc(n, sizeof(*s));

    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_c; i++) {
        size_t j = hash_key((const uint8_t *)p->c[i].key, p->c[i].key_len) & (n - 1);

        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(p->slots);
    p->slots = s;
    p->n_slots = n;
    return 0;
}

/* The id of a container key, a new one when unseen. */
static int container_id(adv_hourly_part_t *p, const uint8_t *key, size_t len, uint32_t *cid)
{
    ckey_t *c;
    size_t j;

    if (2 * (p->n_c + 1) > p->n_slots && rehash(p) < 0)
        return -ENOMEM;
    j = hash_key(key, len) & (p->n_slots - 1);
    for (; p->slots[j]; j = (j + 1) & (p->n_slots - 1)) {
        c = &p->c[p->slots[j] - 1];
        if (c->key_len == len && memcmp(c->key, key, len) == 0) {
            *cid = p->slots[j] - 1;
            return 0;
        }
    }
    if (p->n_c >= UINT32_MAX - 1 ||
        kopt_grow_array((void **)&p->c, &p->cap_c, p->n_c + 1, sizeof(*p->c)) < 0)
        return -ENOMEM;
    c = &p->c[p->n_c];
    *c = (ckey_t){.key = malloc(len ? len : 1), .key_len = len, .in_order = true};
    if (!c->key)
        return -ENOMEM;
    memcpy(c->key, key, len);
    p->slots[j] = (uint32_t)p->n_c + 1;
    *cid = (uint32_t)p->n_c++;
    return 0;
}

/* Array(UInt16) of indexes then Array(UInt32) of counts: one histogram. */
static int read_hist(kopt_ch_reader_t *r, adv_hourly_part_t *p, uint32_t *off, size_t *len)
{
    uint64_t n = kopt_ch_get_array_len(r, 2), m;

    if (r->bad || n > MAX_BUCKETS || p->n_b + n > p->cap_b || p->n_b + n > UINT32_MAX)
        return -EBADMSG;
    for (uint64_t i = 0; i < n; i++)
        p->b[p->n_b + i].index = kopt_ch_get_u16(r);
    m = kopt_ch_get_array_len(r, 4);
    if (r->bad || m != n)
        return -EBADMSG;
    for (uint64_t i = 0; i < n; i++)
        p->b[p->n_b + i].count = kopt_ch_get_u32(r);
    if (r->bad)
        return -EBADMSG;
    *off = (uint32_t)p->n_b;
    *len = (size_t)n;
    p->n_b += (size_t)n;
    return 0;
}

/* The row's container, and whether its rows still come in one rising run. */
static void note_row(ckey_t *c, uint32_t i, const kopt_engine_hour_t *h, uint32_t rolled,
                     const kopt_resources_t *res)
{
    if (c->n_rows == 0)
        c->first = i;
    else if (c->last + 1 != i || h->start <= c->newest_hour)
        c->in_order = false;
    c->last = i;
    c->n_rows++;
    if (c->n_rows == 1 || h->start > c->newest_hour ||
        (h->start == c->newest_hour && rolled >= c->newest_rolled)) {
        c->newest_hour = h->start;
        c->newest_rolled = rolled;
        c->current = *res;
    }
}

static int read_row(kopt_ch_reader_t *r, adv_hourly_part_t *p, int64_t from, int64_t to,
                    uint32_t *last_cid, const uint8_t **last_key, size_t *last_len)
{
    const uint8_t *key = r->p;
    kopt_engine_hour_t *h;
    kopt_resources_t res;
    uint32_t cid, i = (uint32_t)p->n_h;
    size_t len;
    int e;

    for (int k = 0; k < 5; k++)
        kopt_ch_get_string(r, &len);
    len = (size_t)(r->p - key);
    if (r->bad || len > MAX_KEY_BYTES || p->n_h >= p->cap_h || p->n_h >= UINT32_MAX - 1)
        return -EBADMSG;
    /* Rows of one container mostly come together: the previous key first. */
    if (*last_key && len == *last_len && memcmp(key, *last_key, len) == 0)
        cid = *last_cid;
    else if (container_id(p, key, len, &cid) < 0)
        return -ENOMEM;
    *last_cid = cid;
    *last_key = key;
    *last_len = len;
    h = &p->h[i];
    h->start = kopt_ch_get_u32(r);
    h->windows = kopt_ch_get_u32(r);
    h->pods = kopt_ch_get_u32(r);
    h->cpu_mean_cores = kopt_ch_get_f64(r);
    h->cpu_peak_cores = kopt_ch_get_f64(r);
    h->cpu_throttled_seconds = kopt_ch_get_f64(r);
    h->cpu_throttled_periods = kopt_ch_get_u64(r);
    h->cpu_periods = kopt_ch_get_u64(r);
    h->cpu_hist = h->mem_hist = NULL; /* set when b stops growing */
    e = read_hist(r, p, &p->cpu_off[i], &h->cpu_hist_len);
    if (e < 0)
        return e;
    h->mem_peak_bytes = kopt_ch_get_u64(r);
    e = read_hist(r, p, &p->mem_off[i], &h->mem_hist_len);
    if (e < 0)
        return e;
    h->oom_kills = kopt_ch_get_u32(r);
    h->oom_usage_bytes = 0;
    h->cpu_request_cores = kopt_ch_get_f64(r);
    res.cpu_request_cores = h->cpu_request_cores;
    res.cpu_limit_cores = kopt_ch_get_f64(r);
    res.memory_request_bytes = kopt_ch_get_u64(r);
    res.memory_limit_bytes = kopt_ch_get_u64(r);
    p->rolled[i] = kopt_ch_get_u32(r);
    /* 0 in rows rolled before the column existed: the engine then counts
     * one minute per window. */
    h->covered_s = (double)kopt_ch_get_u64(r);
    p->cid[i] = cid;
    /* The hour check also catches an exception appended to a streamed
     * answer: its text does not read as an hour in the range. */
    if (r->bad || h->start < from || h->start >= to)
        return -EBADMSG;
    note_row(&p->c[cid], i, h, p->rolled[i], &res);
    p->n_h++;
    return 0;
}

/* ---- ordering and de-duplication --------------------------------------------- */

/* The i-th name of a key: 0 cluster, 1 namespace, 2 kind, 3 name, 4 container. */
static void key_field(const ckey_t *c, int i, const uint8_t **s, size_t *n)
{
    kopt_ch_reader_t r;

    kopt_ch_reader_init(&r, c->key, c->key_len);
    for (int k = 0; k < i; k++)
        kopt_ch_get_string(&r, n);
    *s = kopt_ch_get_string(&r, n);
}

/* ClickHouse's String order: bytes, then length. */
static int name_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);

    return c ? c : (na > nb) - (na < nb);
}

static int fields_cmp(const ckey_t *x, const ckey_t *y, int n_fields)
{
    for (int i = 0; i < n_fields; i++) {
        const uint8_t *a, *b;
        size_t na, nb;
        int c;

        key_field(x, i, &a, &na);
        key_field(y, i, &b, &nb);
        c = name_cmp(a, na, b, nb);
        if (c)
            return c;
    }
    return 0;
}

static int cid_cmp(const void *a, const void *b, void *data)
{
    const adv_hourly_part_t *p = data;

    return fields_cmp(&p->c[*(const uint32_t *)a], &p->c[*(const uint32_t *)b], 5);
}

/* Hours ascending; for one hour the newest rolled_at first, then the row
 * read last (equal rolled_at: two rollups in one second, either is the
 * hour's one row). */
static int hour_cmp(const void *a, const void *b, void *data)
{
    const adv_hourly_part_t *p = data;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;

    if (p->h[i].start != p->h[j].start)
        return p->h[i].start < p->h[j].start ? -1 : 1;
    if (p->rolled[i] != p->rolled[j])
        return p->rolled[i] > p->rolled[j] ? -1 : 1;
    return (i < j) - (i > j);
}

/* The containers whose rows did not come in one rising run: their rows
 * gathered (a counting sort over those containers), sorted by hour, each
 * hour once, copied into sorted_h. */
static int sort_scattered(adv_hourly_part_t *p)
{
    size_t n = 0, at = 0, out = 0;
    uint32_t *start = NULL, *idx = NULL;
    int r = -ENOMEM;

    for (size_t i = 0; i < p->n_c; i++)
        n += p->c[i].in_order ? 0 : p->c[i].n_rows;
    if (n == 0)
        return 0;
    start = calloc(p->n_c + 1, sizeof(*start));
    idx = malloc(n * sizeof(*idx));
    p->sorted_h = malloc(n * sizeof(*p->sorted_h));
    if (!start || !idx || !p->sorted_h)
        goto out;
    for (size_t i = 0; i < p->n_c; i++) {
        start[i] = (uint32_t)at;
        at += p->c[i].in_order ? 0 : p->c[i].n_rows;
    }
    for (size_t i = 0; i < p->n_h; i++)
        if (!p->c[p->cid[i]].in_order)
            idx[start[p->cid[i]]++] = (uint32_t)i;
    for (size_t i = 0, first = 0; i < p->n_c; i++) {
        ckey_t *c = &p->c[i];

        if (c->in_order)
            continue;
        qsort_r(idx + first, c->n_rows, sizeof(*idx), hour_cmp, p);
        c->hours = p->sorted_h + out;
        c->n_hours = 0;
        for (size_t k = first; k < first + c->n_rows; k++)
            if (c->n_hours == 0 || p->h[idx[k]].start != p->sorted_h[out - 1].start) {
                p->sorted_h[out++] = p->h[idx[k]];
                c->n_hours++;
            }
        first += c->n_rows;
    }
    r = 0;
out:
    free(start);
    free(idx);
    return r;
}

static int arrange(adv_hourly_part_t *p)
{
    int r;

    /* b has stopped growing: the hours can point at their buckets. */
    for (size_t i = 0; i < p->n_h; i++) {
        p->h[i].cpu_hist = p->b + p->cpu_off[i];
        p->h[i].mem_hist = p->b + p->mem_off[i];
    }
    for (size_t i = 0; i < p->n_c; i++) {
        ckey_t *c = &p->c[i];

        if (c->in_order) {
            c->hours = p->h + c->first;
            c->n_hours = c->n_rows;
        }
    }
    r = sort_scattered(p);
    p->order = malloc((p->n_c ? p->n_c : 1) * sizeof(*p->order));
    if (r < 0 || !p->order)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_c; i++)
        p->order[i] = (uint32_t)i;
    qsort_r(p->order, p->n_c, sizeof(*p->order), cid_cmp, p);
    /* Only h, b, sorted_h and the keys are needed from here on. */
    free(p->cid);
    free(p->rolled);
    free(p->cpu_off);
    free(p->mem_off);
    free(p->slots);
    p->cid = p->rolled = p->cpu_off = p->mem_off = p->slots = NULL;
    return 0;
}

void adv_hourly_part_free(adv_hourly_part_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_c; i++)
        free(p->c[i].key);
    free(p->h);
    free(p->cid);
    free(p->rolled);
    free(p->cpu_off);
    free(p->mem_off);
    free(p->b);
    free(p->sorted_h);
    free(p->c);
    free(p->slots);
    free(p->order);
    free(p);
}

/* Room for the most rows and buckets `len` bytes can hold, so nothing is
 * copied to grow: the pages a smaller answer leaves untouched cost nothing.
 * (Page faults, not parsing, are the largest cost here; transparent huge
 * pages through madvise made it slower: compaction on fault.) */
static int reserve(adv_hourly_part_t *p, size_t len)
{
    size_t rows = len / MIN_ROW_BYTES + 1, buckets = len / 6 + 1; /* UInt16 + UInt32 each */

    p->h = malloc(rows * sizeof(*p->h));
    p->cid = malloc(rows * sizeof(*p->cid));
    p->rolled = malloc(rows * sizeof(*p->rolled));
    p->cpu_off = malloc(rows * sizeof(*p->cpu_off));
    p->mem_off = malloc(rows * sizeof(*p->mem_off));
    p->b = malloc(buckets * sizeof(*p->b));
    if (!p->h || !p->cid || !p->rolled || !p->cpu_off || !p->mem_off || !p->b)
        return -ENOMEM;
    p->cap_h = rows;
    p->cap_b = buckets;
    return 0;
}

int adv_hourly_parse(char *body, size_t len, int64_t from, int64_t to, adv_hourly_part_t **out)
{
    adv_hourly_part_t *p = calloc(1, sizeof(*p));
    kopt_ch_reader_t r;
    const uint8_t *last_key = NULL;
    size_t last_len = 0;
    uint32_t last_cid = 0;
    int e = 0;

    *out = NULL;
    kopt_ch_reader_init(&r, body, len);
    if (!p || reserve(p, len) < 0) {
        adv_hourly_part_free(p);
        return -ENOMEM;
    }
    while (e == 0 && r.p < r.end)
        e = read_row(&r, p, from, to, &last_cid, &last_key, &last_len);
    if (e == 0)
        e = arrange(p);
    if (e < 0) {
        adv_hourly_part_free(p);
        return e;
    }
    free(body);
    *out = p;
    return 0;
}

/* ---- into the engine inputs ------------------------------------------------------ */

static char *name_dup(const ckey_t *c, int i)
{
    const uint8_t *s;
    size_t n;

    key_field(c, i, &s, &n);
    return kopt_bytes_dup(s, n);
}

static double mean_pods(const ckey_t *c)
{
    double pods = 0;

    for (size_t k = 0; k < c->n_hours; k++)
        pods += c->hours[k].pods ? c->hours[k].pods : 1;
    return c->n_hours ? pods / (double)c->n_hours : 1;
}

static int emit_container(const ckey_t *c, const ckey_t *prev, adv_input_t *in)
{
    adv_workload_in_t *w = in->n_w ? &in->w[in->n_w - 1] : NULL;
    adv_container_in_t *ci;

    if (!prev || !w || fields_cmp(prev, c, 4) != 0) {
        if (kopt_grow_array((void **)&in->w, &in->cap_w, in->n_w + 1, sizeof(*in->w)) < 0)
            return -ENOMEM;
        w = &in->w[in->n_w++];
        /* Replicas: the mean pods per hour of its first container. */
        *w = (adv_workload_in_t){.cluster = name_dup(c, 0),
                                 .namespace_ = name_dup(c, 1),
                                 .kind = name_dup(c, 2),
                                 .name = name_dup(c, 3),
                                 .first_container = in->n_c,
                                 .replicas = mean_pods(c)};
        if (!w->cluster || !w->namespace_ || !w->kind || !w->name)
            return -ENOMEM;
    }
    if (kopt_grow_array((void **)&in->c, &in->cap_c, in->n_c + 1, sizeof(*in->c)) < 0)
        return -ENOMEM;
    ci = &in->c[in->n_c++];
    *ci = (adv_container_in_t){
        .name = name_dup(c, 4), .current = c->current, .hours = c->hours, .n_hours = c->n_hours};
    if (!ci->name)
        return -ENOMEM;
    w->n_containers++;
    in->n_hours += c->n_hours;
    return 0;
}

int adv_hourly_emit(adv_hourly_part_t *p, adv_input_t *in)
{
    const ckey_t *prev = NULL;

    if (kopt_grow_array((void **)&in->parts, &in->cap_parts, in->n_parts + 1, sizeof(*in->parts)) <
        0) {
        adv_hourly_part_free(p);
        return -ENOMEM;
    }
    in->parts[in->n_parts++] = p;
    for (size_t i = 0; i < p->n_c; i++) {
        const ckey_t *c = &p->c[p->order[i]];
        int e = emit_container(c, prev, in);

        if (e < 0)
            return e;
        prev = c;
    }
    return 0;
}

void adv_input_free(adv_input_t *in)
{
    for (size_t i = 0; i < in->n_w; i++) {
        free(in->w[i].cluster);
        free(in->w[i].namespace_);
        free(in->w[i].kind);
        free(in->w[i].name);
    }
    for (size_t i = 0; i < in->n_c; i++)
        free(in->c[i].name);
    for (size_t i = 0; i < in->n_parts; i++)
        adv_hourly_part_free(in->parts[i]);
    free(in->w);
    free(in->c);
    free(in->parts);
    memset(in, 0, sizeof(*in));
}
