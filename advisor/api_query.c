/* Query strings and path parameters into request messages (api_query.h).
 * A singular field named twice is never "last one wins": a caller who
 * writes ?namespace=a&namespace=b expects both, and serving b alone would
 * be a wrong answer that looks right. Where the request has a filter the
 * values become "namespace = a OR namespace = b" in it; elsewhere the
 * request is refused. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "advisor.h"
#include "api_query.h"
#include "filter.h"
#include "quote.h"

#define MAX_PARAMS 64

int adv_query_unescape(char *s, bool plus)
{
    char *w = s;

    for (; *s; s++) {
        if (*s == '%') {
            unsigned v;

            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
                sscanf(s + 1, "%2x", &v) != 1 || v == 0)
                return -EINVAL;
            *w++ = (char)v;
            s += 2;
        } else {
            *w++ = plus && *s == '+' ? ' ' : *s;
        }
    }
    *w = '\0';
    return 0;
}

int adv_query_set(ProtobufCMessage *m, const char *name, const char *value, char *err,
                  size_t errlen)
{
    int kind = strcmp(name, "kind") == 0 ? adv_kind_parse(value) : 0;

    if (kind > 0) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&kopt__v1__workload_kind__descriptor, kind);

        if (v)
            value = v->name;
    }
    return kopt_pbjson_set_field(m, name, value, err, errlen);
}

/* The fields several values of which a filter can say: "namespace = a OR
 * namespace = b" (filter.c). */
static bool filterable(const ProtobufCFieldDescriptor *f)
{
    return !strcmp(f->name, "cluster") || !strcmp(f->name, "namespace") ||
           !strcmp(f->name, "name") || !strcmp(f->name, "kind");
}

/* The request's `filter` field when it has one (ListRecommendations). */
static const ProtobufCFieldDescriptor *filter_field(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = kopt_pbjson_field(m->descriptor, "filter");

    return f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED ? f
                                                                                           : NULL;
}

/* A singular field given twice where no filter can take both. */
static int twice(const char *name, const char *first, char *err, size_t errlen)
{
    char qn[ADV_QUOTE_LEN], qf[ADV_QUOTE_LEN];

    adv_quote(name, strlen(name), qn, sizeof(qn));
    adv_quote(first, strlen(first), qf, sizeof(qf));
    if (strcmp(name, first) == 0)
        snprintf(err, errlen, "query parameter \"%s\" is given more than once but takes one value",
                 qn);
    else
        snprintf(err, errlen,
                 "query parameters \"%s\" and \"%s\" are the same field, which takes one value", qf,
                 qn);
    return -EINVAL;
}

/* A singular field set from the path or the query. */
typedef struct {
    const ProtobufCFieldDescriptor *f; /* top-level field */
    const char *rest;                  /* the rest of a dotted name, or "" */
    const char *name;                  /* as given */
    bool path;                         /* set by the path */
    size_t n_values;                   /* filterable fields: how many values */
} param_t;

/* One value of a filterable field, as filter.c reads it. */
typedef struct {
    const param_t *p;
    const char *text;
} value_t;

/* The value just set in field `f`, as the filter reads it: a kind by its
 * enum name (so "2" and "statefulset" work too), anything else as given;
 * "" for WORKLOAD_KIND_UNSPECIFIED, which means "any", as "" does. */
static const char *filter_value(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                                const char *given)
{
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
        int v = *(const int *)((const char *)m + f->offset);
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

        return v == 0 ? "" : ev ? ev->name : given;
    }
    return given;
}

/* Appends "text" to *s (malloc'd, grown), quoting it for filter.c when
 * `quote`. -ENOMEM. */
static int append(char **s, size_t *len, const char *text, bool quote)
{
    size_t n = strlen(text), o = *len;
    char *g = realloc(*s, o + 2 * n + 3);

    if (!g)
        return -ENOMEM;
    *s = g;
    if (quote)
        g[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (quote && (text[i] == '"' || text[i] == '\\'))
            g[o++] = '\\';
        g[o++] = text[i];
    }
    if (quote)
        g[o++] = '"';
    g[o] = 0;
    *len = o;
    return 0;
}

/* Several values of one field: the field goes back to its default and the
 * filter gains "AND field = "a" OR field = "b"" (OR binds tighter, so this
 * is the caller's filter AND (a OR b)). The caller's filter is checked
 * alone first, so that its errors name its own columns and nothing it
 * leaves open (a quote) runs into what is added. */
static int values_to_filter(ProtobufCMessage *m, const ProtobufCFieldDescriptor *filter,
                            const param_t *ps, size_t n, const value_t *vs, size_t nv, char *err,
                            size_t errlen)
{
    const char *given = *(char *const *)((const char *)m + filter->offset);
    adv_filter_t *check = NULL;
    char *text = NULL;
    size_t len = 0;
    int r = adv_filter_parse(given, &check, err, errlen);
    bool has = check != NULL;

    adv_filter_free(check);
    if (r == 0 && has)
        r = append(&text, &len, given, false);
    for (size_t i = 0; r == 0 && i < n; i++) {
        bool first = true;

        if (ps[i].n_values < 2)
            continue;
        r = kopt_pbjson_set_field(m, ps[i].f->name,
                                  ps[i].f->type == PROTOBUF_C_TYPE_ENUM ? "0" : "", err, errlen);
        for (size_t k = 0; r == 0 && k < nv; k++) {
            if (vs[k].p != &ps[i])
                continue;
            if (!*vs[k].text) {
                snprintf(err, errlen,
                         "query parameter \"%s\" is empty or unspecified among several values",
                         ps[i].name);
                r = -EINVAL;
                break;
            }
            r = append(&text, &len, !first ? " OR " : len ? " AND " : "", false);
            if (r == 0)
                r = append(&text, &len, ps[i].f->name, false);
            if (r == 0)
                r = append(&text, &len, " = ", false);
            if (r == 0)
                r = append(&text, &len, vs[k].text, true);
            first = false;
        }
    }
    if (r == 0)
        r = kopt_pbjson_set_field(m, filter->name, text ? text : "", err, errlen);
    free(text);
    return r;
}

int adv_query_params(ProtobufCMessage *m, char *query, char *const *path_names, int n_path,
                     char *err, size_t errlen)
{
    /* The singular fields set so far, from the path, then from the query. */
    param_t ps[MAX_PARAMS];
    value_t vs[MAX_PARAMS];
    const ProtobufCFieldDescriptor *filter = filter_field(m);
    size_t n = 0, nv = 0;
    bool several = false;
    char *save = NULL;
    int r = 0;

    for (int i = 0; i < n_path && n < MAX_PARAMS; i++) {
        const ProtobufCFieldDescriptor *f = kopt_pbjson_field(m->descriptor, path_names[i]);

        if (f)
            ps[n++] = (param_t){.f = f, .rest = "", .name = path_names[i], .path = true};
    }
    for (char *kv = strtok_r(query, "&", &save); r == 0 && kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '='), top[128], q[ADV_QUOTE_LEN];
        const ProtobufCFieldDescriptor *f;
        const char *dot;
        param_t *p = NULL;

        if (v)
            *v++ = '\0';
        if (adv_query_unescape(kv, true) < 0 || (v && adv_query_unescape(v, true) < 0)) {
            snprintf(err, errlen, "bad %%-escape in the query string");
            r = -EINVAL;
            break;
        }
        if (!*kv)
            continue;
        dot = strchr(kv, '.');
        snprintf(top, sizeof(top), "%.*s", dot ? (int)(dot - kv) : (int)strlen(kv), kv);
        f = kopt_pbjson_field(m->descriptor, top);
        if (f && (dot || f->label != PROTOBUF_C_LABEL_REPEATED)) {
            for (size_t i = 0; i < n && !p; i++)
                if (ps[i].f == f && strcmp(ps[i].rest, dot ? dot : "") == 0)
                    p = &ps[i];
            if (p && p->path) {
                snprintf(err, errlen, "query parameter \"%s\" is already in the path",
                         adv_quote(kv, strlen(kv), q, sizeof(q)));
                r = -EINVAL;
                break;
            }
            if (p && (!filter || dot || !filterable(f))) {
                r = twice(kv, p->name, err, errlen);
                break;
            }
            if (!p && n == MAX_PARAMS) {
                snprintf(err, errlen, "more than %d query parameters", MAX_PARAMS);
                r = -EINVAL;
                break;
            }
            if (!p) {
                p = &ps[n++];
                *p = (param_t){.f = f, .rest = dot ? dot : "", .name = kv};
            }
        }
        /* Every value is set, so each is checked with the usual message. */
        r = adv_query_set(m, kv, v ? v : "", err, errlen);
        if (r == -ENOENT) {
            snprintf(err, errlen, "unknown query parameter \"%s\"",
                     adv_quote(kv, strlen(kv), q, sizeof(q)));
            r = -EINVAL;
        }
        if (r == 0 && p && filter && !dot && filterable(f)) {
            if (nv == MAX_PARAMS) {
                snprintf(err, errlen, "more than %d query parameters", MAX_PARAMS);
                r = -EINVAL;
                break;
            }
            vs[nv++] = (value_t){p, filter_value(m, f, v ? v : "")};
            p->n_values++;
            several = several || p->n_values > 1;
        }
    }
    if (r == 0 && several)
        r = values_to_filter(m, filter, ps, n, vs, nv, err, errlen);
    return r;
}
