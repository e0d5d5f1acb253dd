/* Query strings and path parameters into request messages (api_query.h).
 * A singular field named twice is an error, not "last one wins": a caller
 * who writes ?namespace=a&namespace=b expects both, and silently serving b
 * alone would be a wrong answer that looks right. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "advisor.h"
#include "api_query.h"

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

/* A singular field given twice: the error, with a hint when the request
 * has a filter that can say "several". */
static int twice(const ProtobufCMessage *m, const char *name, const char *first,
                 const ProtobufCFieldDescriptor *f, char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor *filter = kopt_pbjson_field(m->descriptor, "filter");
    bool hint = filter && filter->type == PROTOBUF_C_TYPE_STRING &&
                (!strcmp(f->name, "cluster") || !strcmp(f->name, "namespace") ||
                 !strcmp(f->name, "name") || !strcmp(f->name, "kind"));

    if (strcmp(name, first) == 0)
        snprintf(err, errlen, "query parameter \"%s\" is given more than once but takes one value",
                 name);
    else
        snprintf(err, errlen,
                 "query parameters \"%s\" and \"%s\" are the same field, which takes one value",
                 first, name);
    if (hint) {
        size_t n = strlen(err);

        snprintf(err + n, errlen - n, "; for several, use filter=%s = a OR %s = b", f->name,
                 f->name);
    }
    return -EINVAL;
}

int adv_query_params(ProtobufCMessage *m, char *query, char *const *path_names, int n_path,
                     char *err, size_t errlen)
{
    /* The singular fields set so far: top-level field and the rest of a
     * dotted name ("window.seconds"), and the name as given. */
    const ProtobufCFieldDescriptor *seen[MAX_PARAMS];
    const char *seen_rest[MAX_PARAMS], *seen_name[MAX_PARAMS];
    int n_from_path = 0;
    size_t n_seen = 0;
    char *save = NULL;

    for (int i = 0; i < n_path && n_seen < MAX_PARAMS; i++) {
        const ProtobufCFieldDescriptor *f = kopt_pbjson_field(m->descriptor, path_names[i]);

        if (f) {
            seen[n_seen] = f;
            seen_rest[n_seen] = "";
            seen_name[n_seen++] = path_names[i];
        }
    }
    n_from_path = (int)n_seen;

    for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        const ProtobufCFieldDescriptor *f;
        const char *dot;
        char top[128];
        int r;

        if (v)
            *v++ = '\0';
        if (adv_query_unescape(kv, true) < 0 || (v && adv_query_unescape(v, true) < 0)) {
            snprintf(err, errlen, "bad %%-escape in the query string");
            return -EINVAL;
        }
        if (!*kv)
            continue;
        dot = strchr(kv, '.');
        snprintf(top, sizeof(top), "%.*s", dot ? (int)(dot - kv) : (int)strlen(kv), kv);
        f = kopt_pbjson_field(m->descriptor, top);
        if (f && (dot || f->label != PROTOBUF_C_LABEL_REPEATED)) {
            for (size_t i = 0; i < n_seen; i++)
                if (seen[i] == f && strcmp(seen_rest[i], dot ? dot : "") == 0) {
                    if ((int)i < n_from_path) {
                        snprintf(err, errlen, "query parameter \"%s\" is already in the path", kv);
                        return -EINVAL;
                    }
                    return twice(m, kv, seen_name[i], f, err, errlen);
                }
            if (n_seen == MAX_PARAMS) {
                snprintf(err, errlen, "more than %d query parameters", MAX_PARAMS);
                return -EINVAL;
            }
            seen[n_seen] = f;
            seen_rest[n_seen] = dot ? dot : "";
            seen_name[n_seen++] = kv;
        }
        r = adv_query_set(m, kv, v ? v : "", err, errlen);
        if (r == -ENOENT) {
            snprintf(err, errlen, "unknown query parameter \"%s\"", kv);
            r = -EINVAL;
        }
        if (r < 0)
            return r;
    }
    return 0;
}
