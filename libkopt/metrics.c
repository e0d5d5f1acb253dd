/* The metrics registry: families, bounded children with atomic values, and the
 * Prometheus text exposition. One mutex guards the family and child lists (taken
 * on registration, child lookup and scrape); values are C11 atomics, so the hot
 * path (inc, set, observe) never locks. Doubles live in _Atomic uint64_t bits. */
#include <kopt/metrics.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_COUNTER, T_GAUGE, T_HISTOGRAM } mtype_t;

static const char *const type_names[] = {"counter", "gauge", "histogram"};

typedef struct child {
    const char **values;  /* nlabels strings, in the same allocation */
    const double *bounds; /* histogram: the family's, which outlives the child */
    size_t nbounds;
    _Atomic uint64_t value;     /* counter, gauge: double bits */
    _Atomic uint64_t sum;       /* histogram: double bits */
    _Atomic uint64_t buckets[]; /* histogram: per bucket (not cumulative), +Inf last */
} child_t;

struct kopt_metric_family {
    mtype_t type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[KOPT_METRICS_MAX_LABELS];
    double bounds[KOPT_METRICS_MAX_BUCKETS];
    size_t nbounds;
    kopt_metrics_value_fn fn; /* callback families: no children */
    void *fn_data;
    int collected; /* samples come from collectors at scrape time: no children */
    child_t **children;
    size_t nchildren;
    size_t cap;
    child_t *sink; /* handed out on overflow; never exposed */
    kopt_metrics_t *m;
};

struct kopt_metrics {
    pthread_mutex_t mu;
    kopt_metric_family_t **fams; /* sorted by name */
    size_t n;
    size_t cap;
    kopt_metric_counter_t *dropped;
    struct {
        kopt_metrics_collect_fn fn;
        void *data;
    } * collectors;
    size_t n_collectors, cap_collectors;
};

static uint64_t dbits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static child_t *child_alloc(const kopt_metric_family_t *f, const char *const *values)
{
    size_t nb = f->type == T_HISTOGRAM ? f->nbounds + 1 : 0;
    size_t head = sizeof(child_t) + nb * sizeof(_Atomic uint64_t);
    size_t strs = 0;
    child_t *c;
    char *p;

    for (size_t i = 0; i < f->nlabels; i++)
        strs += strlen(values[i]) + 1;
    c = calloc(1, head + f->nlabels * sizeof(char *) + strs);
    if (!c)
        return NULL;
    c->values = (const char **)((char *)c + head);
    p = (char *)(c->values + f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t l = strlen(values[i]) + 1;
        memcpy(p, values[i], l);
        c->values[i] = p;
        p += l;
    }
    c->bounds = f->bounds;
    c->nbounds = nb ? f->nbounds : 0;
    atomic_init(&c->value, dbits(0.0));
    atomic_init(&c->sum, dbits(0.0));
    for (size_t i = 0; i < nb; i++)
        atomic_init(&c->buckets[i], 0);
    return c;
}

static void family_free(kopt_metric_family_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nchildren; i++)
        free(f->children[i]);
    free(f->children);
    free(f->sink);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

/* Splits "a,b" into f->labels, validating each name. */
static int parse_labels(kopt_metric_family_t *f, const char *labels)
{
    const char *p = labels;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *name;

        if (f->nlabels == KOPT_METRICS_MAX_LABELS)
            return -EINVAL;
        name = strndup(p, len);
        if (!name)
            return -ENOMEM;
        f->labels[f->nlabels++] = name;
        if (!valid_name(name, 0) || strncmp(name, "__", 2) == 0)
            return -EINVAL;
        if (f->type == T_HISTOGRAM && strcmp(name, "le") == 0)
            return -EINVAL;
        for (size_t i = 0; i + 1 < f->nlabels; i++)
            if (strcmp(f->labels[i], name) == 0)
                return -EINVAL;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int family_make(mtype_t type, const char *name, const char *help, const char *labels,
                       const double *bounds, size_t n_bounds, kopt_metric_family_t **out)
{
    kopt_metric_family_t *f;
    const char *none[KOPT_METRICS_MAX_LABELS] = {0};
    int r;

    if (!valid_name(name, 1))
        return -EINVAL;
    if (type == T_HISTOGRAM && (!bounds || n_bounds == 0 || n_bounds > KOPT_METRICS_MAX_BUCKETS))
        return -EINVAL;
    for (size_t i = 0; type == T_HISTOGRAM && i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return -EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (type == T_HISTOGRAM) {
        memcpy(f->bounds, bounds, n_bounds * sizeof(double));
        f->nbounds = n_bounds;
    }
    r = (!f->name || !f->help) ? -ENOMEM : parse_labels(f, labels);
    for (size_t i = 0; i < KOPT_METRICS_MAX_LABELS; i++)
        none[i] = "";
    if (r == 0 && !(f->sink = child_alloc(f, none)))
        r = -ENOMEM;
    if (r < 0) {
        family_free(f);
        return r;
    }
    *out = f;
    return 0;
}

static int same_definition(const kopt_metric_family_t *a, const kopt_metric_family_t *b)
{
    if (a->type != b->type || a->nlabels != b->nlabels || a->nbounds != b->nbounds || a->fn ||
        b->fn || a->collected != b->collected)
        return 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0)
            return 0;
    for (size_t i = 0; i < a->nbounds; i++)
        if (a->bounds[i] != b->bounds[i])
            return 0;
    return 1;
}

/* Inserts f keeping the list sorted by name, or returns the twin already there
 * (and frees f). Called with the mutex held. */
static int registry_insert(kopt_metrics_t *m, kopt_metric_family_t *f, kopt_metric_family_t **out)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->fams[mid]->name, f->name);

        if (c == 0) {
            int same = same_definition(m->fams[mid], f);

            family_free(f);
            if (!same)
                return -EEXIST;
            *out = m->fams[mid];
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        kopt_metric_family_t **p = realloc(m->fams, cap * sizeof(*p));

        if (!p) {
            family_free(f);
            return -ENOMEM;
        }
        m->fams = p;
        m->cap = cap;
    }
    memmove(m->fams + lo + 1, m->fams + lo, (m->n - lo) * sizeof(*m->fams));
    m->fams[lo] = f;
    m->n++;
    f->m = m;
    *out = f;
    return 0;
}

static int cmp_values(const char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i], b[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Finds or makes the child for `values`; children stay sorted by their values,
 * which is both the lookup order and the exposition order. Mutex held. */
static child_t *child_lookup(kopt_metric_family_t *f, const char *const *values)
{
    size_t lo = 0, hi = f->nchildren;
    child_t *c;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = cmp_values(f->children[mid]->values, values, f->nlabels);

        if (cmp == 0)
            return f->children[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (f->nchildren >= KOPT_METRICS_MAX_CHILDREN)
        return NULL;
    if (f->nchildren == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        child_t **p = realloc(f->children, cap * sizeof(*p));

        if (!p)
            return NULL;
        f->children = p;
        f->cap = cap;
    }
    c = child_alloc(f, values);
    if (!c)
        return NULL;
    memmove(f->children + lo + 1, f->children + lo, (f->nchildren - lo) * sizeof(*f->children));
    f->children[lo] = c;
    f->nchildren++;
    return c;
}

static int do_register(kopt_metrics_t *m, mtype_t type, const char *name, const char *help,
                       const char *labels, const double *bounds, size_t n_bounds,
                       kopt_metrics_value_fn fn, void *data, int collected,
                       kopt_metric_family_t **out)
{
    kopt_metric_family_t *f = NULL, *got = NULL;
    int r;

    if (!m)
        return -EINVAL;
    r = family_make(type, name, help, labels, bounds, n_bounds, &f);
    if (r < 0)
        return r;
    f->fn = fn;
    f->fn_data = data;
    f->collected = collected;
    pthread_mutex_lock(&m->mu);
    r = registry_insert(m, f, &got);
    /* An unlabeled family shows its 0 from the start, as client libraries do. */
    if (r == 0 && got->nlabels == 0 && !got->fn && !got->collected && got->nchildren == 0)
        child_lookup(got, NULL);
    pthread_mutex_unlock(&m->mu);
    if (r == 0 && out)
        *out = got;
    return r;
}

int kopt_metrics_counter(kopt_metrics_t *m, const char *name, const char *help, const char *labels,
                         kopt_metric_family_t **out)
{
    return do_register(m, T_COUNTER, name, help, labels, NULL, 0, NULL, NULL, 0, out);
}

int kopt_metrics_gauge(kopt_metrics_t *m, const char *name, const char *help, const char *labels,
                       kopt_metric_family_t **out)
{
    return do_register(m, T_GAUGE, name, help, labels, NULL, 0, NULL, NULL, 0, out);
}

int kopt_metrics_histogram(kopt_metrics_t *m, const char *name, const char *help,
                           const char *labels, const double *bounds, size_t n_bounds,
                           kopt_metric_family_t **out)
{
    return do_register(m, T_HISTOGRAM, name, help, labels, bounds, n_bounds, NULL, NULL, 0, out);
}

int kopt_metrics_gauge_func(kopt_metrics_t *m, const char *name, const char *help,
                            kopt_metrics_value_fn fn, void *data)
{
    if (!fn)
        return -EINVAL;
    return do_register(m, T_GAUGE, name, help, NULL, NULL, 0, fn, data, 0, NULL);
}

int kopt_metrics_counter_func(kopt_metrics_t *m, const char *name, const char *help,
                              kopt_metrics_value_fn fn, void *data)
{
    if (!fn)
        return -EINVAL;
    return do_register(m, T_COUNTER, name, help, NULL, NULL, 0, fn, data, 0, NULL);
}

int kopt_metrics_gauge_collected(kopt_metrics_t *m, const char *name, const char *help,
                                 const char *labels, kopt_metric_family_t **out)
{
    return do_register(m, T_GAUGE, name, help, labels, NULL, 0, NULL, NULL, 1, out);
}

int kopt_metrics_add_collector(kopt_metrics_t *m, kopt_metrics_collect_fn fn, void *data)
{
    int r = 0;

    if (!m || !fn)
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    if (m->n_collectors == m->cap_collectors) {
        size_t cap = m->cap_collectors ? m->cap_collectors * 2 : 4;
        void *p = realloc(m->collectors, cap * sizeof(*m->collectors));

        if (p) {
            m->collectors = p;
            m->cap_collectors = cap;
        } else {
            r = -ENOMEM;
        }
    }
    if (r == 0) {
        m->collectors[m->n_collectors].fn = fn;
        m->collectors[m->n_collectors].data = data;
        m->n_collectors++;
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

int kopt_metrics_new(kopt_metrics_t **out)
{
    kopt_metrics_t *m = calloc(1, sizeof(*m));
    kopt_metric_family_t *f;
    int r;

    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    r = kopt_metrics_counter(m, "kopt_metrics_dropped_series_total",
                             "Label sets refused because a family reached its child limit.", NULL,
                             &f);
    if (r < 0) {
        kopt_metrics_free(m);
        return r;
    }
    m->dropped = kopt_metric_counter_with(f);
    *out = m;
    return 0;
}

void kopt_metrics_free(kopt_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->fams[i]);
    free(m->fams);
    free(m->collectors);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static child_t *child_with(kopt_metric_family_t *f, mtype_t type, va_list ap)
{
    const char *values[KOPT_METRICS_MAX_LABELS];
    child_t *c;

    if (!f)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        values[i] = va_arg(ap, const char *);
        if (!values[i])
            values[i] = "";
    }
    if (f->type != type || f->fn || f->collected)
        return f->sink;
    pthread_mutex_lock(&f->m->mu);
    c = child_lookup(f, values);
    pthread_mutex_unlock(&f->m->mu);
    if (c)
        return c;
    if (f->m->dropped)
        kopt_metric_counter_inc(f->m->dropped);
    return f->sink;
}

/* Handed out for a NULL family, so callers never test for NULL. Not exposed. */
static _Alignas(child_t) unsigned char null_sink[sizeof(child_t) + sizeof(_Atomic uint64_t)];

#define DEFINE_WITH(fn, rtype, type)                                                               \
    rtype *fn(kopt_metric_family_t *f, ...)                                                        \
    {                                                                                              \
        va_list ap;                                                                                \
        child_t *c;                                                                                \
                                                                                                   \
        va_start(ap, f);                                                                           \
        c = child_with(f, type, ap);                                                               \
        va_end(ap);                                                                                \
        return (rtype *)(c ? c : (child_t *)null_sink);                                            \
    }

DEFINE_WITH(kopt_metric_counter_with, kopt_metric_counter_t, T_COUNTER)
DEFINE_WITH(kopt_metric_gauge_with, kopt_metric_gauge_t, T_GAUGE)
DEFINE_WITH(kopt_metric_histogram_with, kopt_metric_histogram_t, T_HISTOGRAM)

void kopt_metric_counter_inc(kopt_metric_counter_t *c)
{
    kopt_metric_counter_add(c, 1.0);
}

void kopt_metric_counter_add(kopt_metric_counter_t *c, double v)
{
    if (!(v > 0)) /* also refuses NaN */
        return;
    atomic_add_double(&((child_t *)c)->value, v);
}

double kopt_metric_counter_value(const kopt_metric_counter_t *c)
{
    return bitsd(atomic_load_explicit(&((child_t *)c)->value, memory_order_relaxed));
}

void kopt_metric_gauge_set(kopt_metric_gauge_t *g, double v)
{
    atomic_store_explicit(&((child_t *)g)->value, dbits(v), memory_order_relaxed);
}

void kopt_metric_gauge_add(kopt_metric_gauge_t *g, double v)
{
    atomic_add_double(&((child_t *)g)->value, v);
}

double kopt_metric_gauge_value(const kopt_metric_gauge_t *g)
{
    return bitsd(atomic_load_explicit(&((child_t *)g)->value, memory_order_relaxed));
}

void kopt_metric_histogram_observe(kopt_metric_histogram_t *h, double v)
{
    child_t *c = (child_t *)h;
    size_t lo = 0, hi = c->nbounds;

    if (isnan(v))
        return;
    while (lo < hi) { /* first bound >= v; past the end means +Inf */
        size_t mid = (lo + hi) / 2;

        if (c->bounds[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    atomic_fetch_add_explicit(&c->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&c->sum, v);
}

const double *kopt_metrics_latency_buckets(size_t *n)
{
    static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

    *n = sizeof(b) / sizeof(b[0]);
    return b;
}

int kopt_metrics_exponential_buckets(double start, double factor, size_t count, double *out)
{
    if (!(start > 0) || !(factor > 1) || count == 0 || count > KOPT_METRICS_MAX_BUCKETS ||
        !isfinite(start * pow(factor, (double)count)))
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        out[i] = start * pow(factor, (double)i);
    return 0;
}

/* Exposition. Every registered family is listed, with HELP and TYPE even
 * before it has a sample (a labelled family nobody used yet, a collected one
 * with nothing to show): the format allows it, and so one scrape names every
 * metric a binary can emit (tests/deploy checks alert and dashboard queries
 * against that). */

/* A growing buffer that remembers an allocation failure. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
    int err;
} buf_t;

static void buf_put(buf_t *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (b->len + n + 1 > cap)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Label values escape \\, \" and \n; HELP text escapes \\ and \n only. */
static void buf_escaped(buf_t *b, const char *s, int quotes)
{
    const char *stop = quotes ? "\\\n\"" : "\\\n";

    while (*s) {
        size_t run = strcspn(s, stop); /* copied as is, in one go */

        buf_put(b, s, run);
        s += run;
        if (*s == '\\')
            buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            buf_put(b, "\\n", 2);
        else if (*s == '"')
            buf_put(b, "\\\"", 2);
        if (*s)
            s++;
    }
}

/* Shortest text that reads back as the same double; integers without ".0". */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, n, "%.0f", v + 0.0); /* + 0.0 turns -0 into 0 */
    else /* 15 digits usually; 16 or 17 only when needed to read back the same */
        for (int prec = 15; prec <= 17; prec++)
            if (snprintf(out, n, "%.*g", prec, v) > 0 && strtod(out, NULL) == v)
                break;
}

/* name{l1="v1",...,extra="x"} value\n */
static void buf_sample_values(buf_t *b, const kopt_metric_family_t *f, const char *suffix,
                              const char *const *values, const char *le, double v)
{
    char num[40];
    int open = 0;

    buf_str(b, f->name);
    buf_str(b, suffix);
    for (size_t i = 0; values && i < f->nlabels; i++) {
        buf_str(b, open++ ? "," : "{");
        buf_str(b, f->labels[i]);
        buf_str(b, "=\"");
        buf_escaped(b, values[i], 1);
        buf_str(b, "\"");
    }
    if (le) {
        buf_str(b, open++ ? ",le=\"" : "{le=\"");
        buf_str(b, le);
        buf_str(b, "\"");
    }
    if (open)
        buf_str(b, "}");
    fmt_double(num, sizeof(num), v);
    buf_str(b, " ");
    buf_str(b, num);
    buf_str(b, "\n");
}

static void buf_sample(buf_t *b, const kopt_metric_family_t *f, const char *suffix,
                       const child_t *c, const char *le, double v)
{
    buf_sample_values(b, f, suffix, c ? c->values : NULL, le, v);
}

/* What the collectors emitted in one scrape: a text buffer per family. */
struct kopt_metrics_emitter {
    struct {
        const kopt_metric_family_t *f;
        buf_t b;
    } * out;
    size_t n, cap;
};

static buf_t *emitter_buf(kopt_metrics_emitter_t *e, const kopt_metric_family_t *f)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->out[i].f == f)
            return &e->out[i].b;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        void *p = realloc(e->out, cap * sizeof(*e->out));

        if (!p)
            return NULL;
        e->out = p;
        e->cap = cap;
    }
    e->out[e->n].f = f;
    memset(&e->out[e->n].b, 0, sizeof(buf_t));
    return &e->out[e->n++].b;
}

void kopt_metrics_emit(kopt_metrics_emitter_t *e, kopt_metric_family_t *f, double v, ...)
{
    const char *values[KOPT_METRICS_MAX_LABELS];
    va_list ap;
    buf_t *b;

    if (!e || !f || !f->collected)
        return;
    va_start(ap, v);
    for (size_t i = 0; i < f->nlabels; i++) {
        values[i] = va_arg(ap, const char *);
        if (!values[i])
            values[i] = "";
    }
    va_end(ap);
    b = emitter_buf(e, f);
    if (b)
        buf_sample_values(b, f, "", values, NULL, v);
}

static void emitter_free(kopt_metrics_emitter_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->out[i].b.p);
    free(e->out);
}

/* Runs every collector outside the mutex: they may take their own locks, and
 * a thread holding one of those may be waiting for ours. */
static void run_collectors(kopt_metrics_t *m, kopt_metrics_emitter_t *e)
{
    size_t n;

    pthread_mutex_lock(&m->mu);
    n = m->n_collectors;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        kopt_metrics_collect_fn fn;
        void *data;

        pthread_mutex_lock(&m->mu);
        fn = m->collectors[i].fn;
        data = m->collectors[i].data;
        pthread_mutex_unlock(&m->mu);
        fn(data, e);
    }
}

static void expose_histogram(buf_t *b, const kopt_metric_family_t *f, const child_t *c)
{
    uint64_t cum = 0;
    char le[40];

    /* _count is the bucket total, so a scrape racing observe() stays consistent. */
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
        if (i < f->nbounds)
            fmt_double(le, sizeof(le), f->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        buf_sample(b, f, "_bucket", c, le, (double)cum);
    }
    buf_sample(b, f, "_sum", c, NULL, bitsd(atomic_load_explicit(&c->sum, memory_order_relaxed)));
    buf_sample(b, f, "_count", c, NULL, (double)cum);
}

static void expose_family(buf_t *b, kopt_metric_family_t *f, const buf_t *collected)
{
    buf_str(b, "# HELP ");
    buf_str(b, f->name);
    buf_str(b, " ");
    buf_escaped(b, f->help, 0);
    buf_str(b, "\n# TYPE ");
    buf_str(b, f->name);
    buf_str(b, " ");
    buf_str(b, type_names[f->type]);
    buf_str(b, "\n");
    if (f->fn) {
        buf_sample(b, f, "", NULL, NULL, f->fn(f->fn_data));
        return;
    }
    if (collected) {
        if (collected->err)
            b->err = collected->err;
        if (collected->len)
            buf_put(b, collected->p, collected->len);
        return;
    }
    for (size_t i = 0; i < f->nchildren; i++) {
        const child_t *c = f->children[i];

        if (f->type == T_HISTOGRAM)
            expose_histogram(b, f, c);
        else
            buf_sample(b, f, "", c, NULL,
                       bitsd(atomic_load_explicit(&c->value, memory_order_relaxed)));
    }
}

int kopt_metrics_expose(kopt_metrics_t *m, char **out, size_t *len)
{
    buf_t b = {0};
    kopt_metrics_emitter_t e = {0};
    static const buf_t no_samples = {0};

    run_collectors(m, &e);
    buf_put(&b, "", 0);
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        kopt_metric_family_t *f = m->fams[i];
        const buf_t *col = NULL;

        if (f->collected) {
            for (size_t j = 0; j < e.n && !col; j++)
                if (e.out[j].f == f && (e.out[j].b.len > 0 || e.out[j].b.err))
                    col = &e.out[j].b;
            expose_family(&b, f, col ? col : &no_samples);
        } else {
            expose_family(&b, f, NULL);
        }
    }
    pthread_mutex_unlock(&m->mu);
    emitter_free(&e);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}
