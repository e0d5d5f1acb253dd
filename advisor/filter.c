/* The AIP-160 subset of ListRecommendationsRequest.filter: comparisons of
 * one field with one value, joined by AND (or by blanks, which AIP-160
 * reads as AND) and OR, where OR binds tighter, as in AIP-160. So a filter
 * is a conjunction of disjunctions and needs no tree: terms in order, each
 * marked whether OR joins it to the one before. Whatever else AIP-160 has
 * (parentheses, NOT, '-', ':', functions, wildcards) is refused with the
 * column, never read as something else. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "filter.h"
#include "quote.h"

typedef enum { V_STR, V_KIND, V_NUM, V_BOOL } value_type_t;

typedef enum {
    FLD_CLUSTER,
    FLD_NAMESPACE,
    FLD_NAME,
    FLD_KIND,
    FLD_SAVINGS,
    FLD_CPU,
    FLD_MEM,
    FLD_CONF,
    FLD_IDLE
} field_t;

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_HAS } op_t;

static const struct {
    const char *name, *alias; /* alias: the field's path in Recommendation */
    field_t field;
    value_type_t type;
} fields[] = {
    {"cluster", "workload.cluster", FLD_CLUSTER, V_STR},
    {"namespace", "workload.namespace", FLD_NAMESPACE, V_STR},
    {"name", "workload.name", FLD_NAME, V_STR},
    {"kind", "workload.kind", FLD_KIND, V_KIND},
    {"savings", "savings.monthly_cost", FLD_SAVINGS, V_NUM},
    {"cpu_savings", "savings.cpu_cores", FLD_CPU, V_NUM},
    {"memory_savings", "savings.memory_bytes", FLD_MEM, V_NUM},
    {"confidence", NULL, FLD_CONF, V_NUM},
    {"idle", NULL, FLD_IDLE, V_BOOL},
};

typedef struct {
    field_t field;
    op_t op;
    bool or_prev; /* OR joins it to the term before; otherwise AND */
    char *s;      /* V_STR */
    int kind;     /* V_KIND */
    double num;   /* V_NUM */
    bool b;       /* V_BOOL */
} term_t;

struct adv_filter {
    size_t n;
    term_t t[ADV_FILTER_MAX_TERMS];
};

typedef enum { T_END, T_WORD, T_STRING, T_OP, T_PAREN } tok_kind_t;

typedef struct {
    tok_kind_t kind;
    const char *p; /* T_WORD, T_STRING (inside the quotes, still escaped) */
    size_t len;
    op_t op;    /* T_OP */
    size_t col; /* 1-based */
} tok_t;

typedef struct {
    const char *text;
    size_t pos;
    char *err;
    size_t errlen;
} parser_t;

static int fail(parser_t *ps, size_t col, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(ps->err, ps->errlen, "filter: column %zu: ", col);

    if (n >= 0 && (size_t)n < ps->errlen) {
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A bare word runs to a blank or a character with a meaning of its own. */
static bool word_char(char c)
{
    return c && !blank(c) && !strchr("()\"=<>!:", c);
}

static int next(parser_t *ps, tok_t *t)
{
    const char *s = ps->text;
    size_t i;

    while (blank(s[ps->pos]))
        ps->pos++;
    i = ps->pos;
    memset(t, 0, sizeof(*t));
    t->col = i + 1;
    if (!s[i])
        return 0;
    if (s[i] == '(' || s[i] == ')') {
        t->kind = T_PAREN;
        ps->pos++;
        return 0;
    }
    if (s[i] == '"') {
        for (i++; s[i] && s[i] != '"'; i++)
            if (s[i] == '\\' && s[i + 1])
                i++;
        if (!s[i])
            return fail(ps, t->col, "the string has no closing quote");
        t->kind = T_STRING;
        t->p = s + ps->pos + 1;
        t->len = i - ps->pos - 1;
        ps->pos = i + 1;
        return 0;
    }
    if (strchr("=<>!:", s[i])) {
        bool eq = s[i + 1] == '=';

        t->kind = T_OP;
        switch (s[i]) {
        case '=':
            t->op = OP_EQ;
            break;
        case '<':
            t->op = eq ? OP_LE : OP_LT;
            break;
        case '>':
            t->op = eq ? OP_GE : OP_GT;
            break;
        case ':':
            t->op = OP_HAS;
            break;
        default: /* '!' */
            if (!eq)
                return fail(ps, t->col, "'!' must be followed by '=' (NOT is not supported)");
            t->op = OP_NE;
        }
        ps->pos += (s[i] != '=' && s[i] != ':' && eq) ? 2 : 1;
        return 0;
    }
    while (word_char(s[i]))
        i++;
    t->kind = T_WORD;
    t->p = s + ps->pos;
    t->len = i - ps->pos;
    ps->pos = i;
    return 0;
}

static bool is_word(const tok_t *t, const char *w)
{
    return t->kind == T_WORD && t->len == strlen(w) && memcmp(t->p, w, t->len) == 0;
}

static int refuse_paren(parser_t *ps, const tok_t *t)
{
    return fail(ps, t->col,
                "parentheses are not supported; OR binds tighter than AND, so "
                "\"kind = Job AND namespace = a OR namespace = b\" needs none");
}

/* The value of a T_WORD or T_STRING, unescaped ("\\" and "\""), malloc'd. */
static char *value_text(const tok_t *t)
{
    char *v = malloc(t->len + 1), *w = v;

    if (!v)
        return NULL;
    for (size_t i = 0; i < t->len; i++) {
        if (t->kind == T_STRING && t->p[i] == '\\' && i + 1 < t->len)
            i++;
        *w++ = t->p[i];
    }
    *w = 0;
    return v;
}

static int kind_value(const char *v)
{
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value_by_name(&kopt__v1__workload_kind__descriptor, v);

    if (ev && ev->value > 0)
        return ev->value;
    return adv_kind_parse(v);
}

/* Sets term `t`'s value from `v` (taken); fails naming the column `col`. */
static int set_value(parser_t *ps, term_t *t, value_type_t type, const char *fname, char *v,
                     size_t col)
{
    char *end, q[ADV_QUOTE_LEN];
    int r = 0;

    switch (type) {
    case V_STR:
        t->s = v;
        return 0;
    case V_KIND:
        t->kind = kind_value(v);
        if (t->kind <= 0)
            r = fail(ps, col,
                     "\"%s\" is not a workload kind (Deployment, StatefulSet, DaemonSet, Job, "
                     "CronJob, ReplicaSet, Pod, ProcessGroup, or WORKLOAD_KIND_...)",
                     adv_quote(v, strlen(v), q, sizeof(q)));
        break;
    case V_NUM:
        t->num = strtod(v, &end);
        if (!*v || *end || !isfinite(t->num))
            r = fail(ps, col, "%s needs a number, not \"%s\"", fname,
                     adv_quote(v, strlen(v), q, sizeof(q)));
        break;
    case V_BOOL:
        t->b = strcmp(v, "true") == 0;
        if (!t->b && strcmp(v, "false") != 0)
            r = fail(ps, col, "%s is true or false, not \"%s\"", fname,
                     adv_quote(v, strlen(v), q, sizeof(q)));
        break;
    }
    free(v);
    return r;
}

/* One comparison: field, operator, value. */
static int comparison(parser_t *ps, term_t *t)
{
    char q[ADV_QUOTE_LEN];
    tok_t f, op, val;
    size_t i;
    char *v;
    int r;

    if ((r = next(ps, &f)) < 0)
        return r;
    if (f.kind == T_END)
        return fail(ps, f.col, "expected a comparison such as namespace = shop");
    if (f.kind == T_PAREN)
        return refuse_paren(ps, &f);
    if (is_word(&f, "NOT") || (f.kind == T_WORD && f.p[0] == '-'))
        return fail(ps, f.col, "NOT and '-' are not supported; use != or the opposite comparison");
    if (f.kind != T_WORD)
        return fail(ps, f.col, "expected a field name");
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (is_word(&f, fields[i].name) || (fields[i].alias && is_word(&f, fields[i].alias)))
            break;
    if (i == sizeof(fields) / sizeof(fields[0]))
        return fail(ps, f.col,
                    "unknown field \"%s\"; a filter may name cluster, namespace, name, kind, "
                    "savings, cpu_savings, memory_savings, confidence and idle",
                    adv_quote(f.p, f.len, q, sizeof(q)));
    t->field = fields[i].field;
    if ((r = next(ps, &op)) < 0)
        return r;
    if (op.kind != T_OP)
        return fail(ps, op.col, "expected an operator (=, !=, <, <=, >, >=) after %s",
                    fields[i].name);
    if (op.op == OP_HAS)
        return fail(ps, op.col, "the has operator ':' is not supported; use =");
    if (fields[i].type != V_NUM && op.op != OP_EQ && op.op != OP_NE)
        return fail(ps, op.col, "%s can only be compared with = or !=", fields[i].name);
    t->op = op.op;
    if ((r = next(ps, &val)) < 0)
        return r;
    if (val.kind == T_PAREN)
        return refuse_paren(ps, &val);
    if ((val.kind != T_WORD && val.kind != T_STRING) || is_word(&val, "AND") || is_word(&val, "OR"))
        return fail(ps, val.col, "expected a value after the operator");
    if (!(v = value_text(&val)))
        return -ENOMEM;
    return set_value(ps, t, fields[i].type, fields[i].name, v, val.col);
}

static int parse(parser_t *ps, adv_filter_t *f)
{
    tok_t t;
    size_t at;
    int r;

    for (bool or_prev = false;;) {
        if (f->n == ADV_FILTER_MAX_TERMS)
            return fail(ps, ps->pos + 1, "more than %d comparisons", ADV_FILTER_MAX_TERMS);
        f->t[f->n].or_prev = or_prev;
        r = comparison(ps, &f->t[f->n]);
        f->n++; /* counted even on error, so that its string is freed */
        if (r < 0)
            return r;
        at = ps->pos;
        if ((r = next(ps, &t)) < 0)
            return r;
        if (t.kind == T_END)
            return 0;
        if (t.kind == T_PAREN)
            return refuse_paren(ps, &t);
        or_prev = is_word(&t, "OR");
        /* Anything else starts the next comparison: AIP-160 reads a blank
         * between two comparisons as AND. */
        if (!or_prev && !is_word(&t, "AND"))
            ps->pos = at;
    }
}

int adv_filter_parse(const char *text, adv_filter_t **out, char *err, size_t errlen)
{
    parser_t ps = {text, 0, err, errlen};
    adv_filter_t *f;
    int r;

    *out = NULL;
    if (errlen)
        *err = 0;
    if (strlen(text) > ADV_FILTER_MAX_LEN) {
        snprintf(err, errlen, "filter: longer than %d bytes", ADV_FILTER_MAX_LEN);
        return -EINVAL;
    }
    if (!text[strspn(text, " \t\r\n")])
        return 0;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    r = parse(&ps, f);
    if (r < 0) {
        adv_filter_free(f);
        return r;
    }
    *out = f;
    return 0;
}

static bool compare_num(double a, op_t op, double b)
{
    switch (op) {
    case OP_EQ:
        return a == b;
    case OP_NE:
        return a != b;
    case OP_LT:
        return a < b;
    case OP_LE:
        return a <= b;
    case OP_GT:
        return a > b;
    case OP_GE:
        return a >= b;
    case OP_HAS:
        break;
    }
    return false;
}

static bool term_match(const term_t *t, const adv_filter_item_t *it)
{
    const char *s = NULL;
    bool eq;

    switch (t->field) {
    case FLD_CLUSTER:
        s = it->cluster;
        break;
    case FLD_NAMESPACE:
        s = it->namespace_;
        break;
    case FLD_NAME:
        s = it->name;
        break;
    case FLD_KIND:
        return (it->kind == t->kind) == (t->op == OP_EQ);
    case FLD_IDLE:
        return (it->idle == t->b) == (t->op == OP_EQ);
    case FLD_SAVINGS:
        return compare_num(it->savings, t->op, t->num);
    case FLD_CPU:
        return compare_num(it->cpu_savings, t->op, t->num);
    case FLD_MEM:
        return compare_num(it->memory_savings, t->op, t->num);
    case FLD_CONF:
        return compare_num(it->confidence, t->op, t->num);
    }
    eq = strcmp(s ? s : "", t->s) == 0;
    return eq == (t->op == OP_EQ);
}

bool adv_filter_match(const adv_filter_t *f, const adv_filter_item_t *it)
{
    if (!f)
        return true;
    /* Each run of OR-joined terms must hold one true term. */
    for (size_t i = 0; i < f->n;) {
        bool any = false;
        size_t j = i;

        do
            any = any || term_match(&f->t[j], it);
        while (++j < f->n && f->t[j].or_prev);
        if (!any)
            return false;
        i = j;
    }
    return true;
}

void adv_filter_free(adv_filter_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->t[i].s);
    free(f);
}
