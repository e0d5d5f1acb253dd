/* proto3 JSON -> protobuf-c message, and single fields from URL text. The
 * message is built in protobuf-c's own layout so that
 * protobuf_c_message_free_unpacked() frees it, even half-built after an
 * error: repeated counts only ever cover initialised elements. */
#include <kopt/pbjson.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_internal.h"

typedef struct {
    char *err;
    size_t errlen;
    int lenient; /* URL text: numbers and bools may arrive as strings */
} ctx_t;

static int fill_message(ctx_t *c, ProtobufCMessage *m, json_t *obj);

static int fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A JSON integer, or a string of one (64-bit values arrive as strings). */
static int get_int(ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v, long long *out,
                   int is_unsigned)
{
    char *end;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_string(v) && *json_string_value(v)) {
        errno = 0;
        *out = is_unsigned ? (long long)strtoull(json_string_value(v), &end, 10)
                           : strtoll(json_string_value(v), &end, 10);
        if (*end || errno)
            return fail(c, "%s: \"%s\" is not an integer", f->name, json_string_value(v));
    } else {
        return fail(c, "%s: expected an integer", f->name);
    }
    if (is_unsigned && json_is_integer(v) && *out < 0)
        return fail(c, "%s: must not be negative", f->name);
    return 0;
}

static int get_double(ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v, double *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    char *end;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (s && strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (s && strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (s && strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else if (s && *s && (*out = strtod(s, &end), !*end))
        return 0;
    else
        return fail(c, "%s: expected a number", f->name);
    return 0;
}

/* An enum by name or, as the mapping requires parsers to accept, by number:
 * a JSON integer, or in URL text ("?kind=1") digits. Numbers the enum does
 * not define are refused like unknown names: the advisor would only have to
 * refuse them later, with a vaguer message. */
static int get_enum(ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v, int *out)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    const ProtobufCEnumValue *ev = NULL;
    const char *s = json_string_value(v);
    long long n = 0;
    char *end;
    int numeric = 0;

    if (json_is_integer(v)) {
        n = json_integer_value(v);
        numeric = 1;
    } else if (s) {
        ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
        if (!ev && c->lenient && (*s == '-' || (*s >= '0' && *s <= '9'))) {
            errno = 0;
            n = strtoll(s, &end, 10);
            numeric = !*end && !errno;
        }
    } else {
        return fail(c, "%s: expected the name or number of a %s value", f->name, ed->name);
    }
    if (numeric && n >= INT32_MIN && n <= INT32_MAX)
        ev = protobuf_c_enum_descriptor_get_value(ed, (int)n);
    if (!ev && numeric)
        return fail(c, "%s: %lld is not a value of %s", f->name, n, ed->name);
    if (!ev)
        return fail(c, "%s: not a value of %s", f->name, ed->name);
    *out = ev->value;
    return 0;
}

static int base64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

static int get_bytes(ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                     ProtobufCBinaryData *out)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (!s)
        return fail(c, "%s: expected base64 text", f->name);
    out->data = malloc(n * 3 / 4 + 1);
    if (!out->data)
        return -ENOMEM;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int d = base64_value((unsigned char)s[i]);
        if (d < 0) {
            free(out->data);
            out->data = NULL;
            return fail(c, "%s: not base64", f->name);
        }
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->len = o;
    return 0;
}

static int set_well_known(ctx_t *c, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                          json_t *v)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int64_t *seconds = pbjson_member(m, &d->fields[0]);
    int32_t *nanos = pbjson_member(m, &d->fields[1]);
    const char *s = json_string_value(v);

    if (!s)
        return fail(c, "%s: expected a string", f->name);
    if (pbjson_is_timestamp(d) ? pbjson_parse_timestamp(s, seconds, nanos) < 0
                               : pbjson_parse_duration(s, seconds, nanos) < 0)
        return fail(c, "%s: \"%s\" is not a %s", f->name, s,
                    pbjson_is_timestamp(d) ? "RFC 3339 time" : "duration like \"1.5s\"");
    return 0;
}

static int set_value(ctx_t *c, const ProtobufCFieldDescriptor *f, void *p, json_t *v)
{
    long long i = 0;
    double d = 0;
    int r = 0;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((r = get_int(c, f, v, &i, 0)) == 0 && (i < INT32_MIN || i > INT32_MAX))
            return fail(c, "%s: out of range", f->name);
        *(int32_t *)p = (int32_t)i;
        return r;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((r = get_int(c, f, v, &i, 1)) == 0 && (i < 0 || i > (long long)UINT32_MAX))
            return fail(c, "%s: out of range", f->name);
        *(uint32_t *)p = (uint32_t)i;
        return r;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        r = get_int(c, f, v, &i, 0);
        *(int64_t *)p = i;
        return r;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        r = get_int(c, f, v, &i, 1);
        *(uint64_t *)p = (uint64_t)i;
        return r;
    case PROTOBUF_C_TYPE_FLOAT:
        r = get_double(c, f, v, &d);
        *(float *)p = (float)d;
        return r;
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(c, f, v, (double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        if (json_is_boolean(v))
            *(protobuf_c_boolean *)p = json_is_true(v);
        else if (c->lenient && json_is_string(v) &&
                 (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false")))
            *(protobuf_c_boolean *)p = !strcmp(json_string_value(v), "true");
        else
            return fail(c, "%s: expected true or false", f->name);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(c, f, v, (int *)p);
    case PROTOBUF_C_TYPE_STRING:
        if (!json_is_string(v))
            return fail(c, "%s: expected a string", f->name);
        *(char **)p = strdup(json_string_value(v));
        return *(char **)p ? 0 : -ENOMEM;
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(c, f, v, p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = *(ProtobufCMessage **)p;
        if (!sub && !(sub = *(ProtobufCMessage **)p = pbjson_new_message(sd)))
            return -ENOMEM;
        if (pbjson_is_timestamp(sd) || pbjson_is_duration(sd))
            return set_well_known(c, f, sub, v);
        if (!json_is_object(v))
            return fail(c, "%s: expected an object", f->name);
        return fill_message(c, sub, v);
    }
    }
    return fail(c, "%s: unsupported type", f->name);
}

/* Appends one element to a repeated field, growing its array. */
static int append(ctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *v)
{
    size_t *n = (size_t *)((char *)m + f->quantifier_offset);
    void **array = pbjson_member(m, f);
    size_t size = pbjson_elem_size(f);
    char *grown = realloc(*array, (*n + 1) * size);
    int r;

    if (!grown)
        return -ENOMEM;
    *array = grown;
    memset(grown + *n * size, 0, size);
    r = set_value(c, f, grown + *n * size, v);
    /* Counted even on error: a half-set element still frees cleanly. */
    (*n)++;
    return r;
}

static int fill_map(ctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *obj)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return fail(c, "%s: expected an object (a map)", f->name);
    json_object_foreach(obj, key, v)
    {
        json_t *entry = json_pack("{s:s, s:O}", "key", key, "value", v);
        int r;
        if (!entry)
            return -ENOMEM;
        r = append(c, m, f, entry);
        json_decref(entry);
        if (r < 0)
            return r;
    }
    return 0;
}

static int fill_field(ctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *v)
{
    if (json_is_null(v))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t i;
        json_t *e;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && pbjson_is_map_entry(f->descriptor))
            return fill_map(c, m, f, v);
        if (!json_is_array(v))
            return fail(c, "%s: expected an array", f->name);
        json_array_foreach(v, i, e)
        {
            int r = append(c, m, f, e);
            if (r < 0)
                return r;
        }
        return 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
             f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    if (f->type == PROTOBUF_C_TYPE_STRING) { /* replace, do not leak, a value set before */
        char **s = pbjson_member(m, f);
        if (*s && *s != (char *)f->default_value) /* as free_unpacked decides */
            free(*s);
        *s = NULL;
    }
    return set_value(c, f, pbjson_member(m, f), v);
}

static int fill_message(ctx_t *c, ProtobufCMessage *m, json_t *obj)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        const ProtobufCFieldDescriptor *f = pbjson_field(m->descriptor, key);
        int r;
        if (!f)
            return fail(c, "unknown field \"%s\" in %s", key, m->descriptor->name);
        r = fill_field(c, m, f, v);
        if (r < 0)
            return r;
    }
    return 0;
}

int kopt_pbjson_decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                       ProtobufCMessage **out, char *err, size_t errlen)
{
    ctx_t c = {err, errlen, 0};
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    ProtobufCMessage *m;
    int r;

    if (!root) {
        snprintf(err, errlen, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, errlen, "expected a JSON object");
        return -EINVAL;
    }
    m = pbjson_new_message(d);
    r = m ? fill_message(&c, m, root) : -ENOMEM;
    json_decref(root);
    if (r < 0) {
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        return r;
    }
    *out = m;
    return 0;
}

int kopt_pbjson_set_field(ProtobufCMessage *m, const char *path, const char *value, char *err,
                          size_t errlen)
{
    ctx_t c = {err, errlen, 1};
    char name[128];
    const char *dot = strchr(path, '.');
    const ProtobufCFieldDescriptor *f;
    json_t *v;
    int r;

    snprintf(name, sizeof(name), "%.*s", dot ? (int)(dot - path) : (int)strlen(path), path);
    f = pbjson_field(m->descriptor, name);
    if (!f) {
        snprintf(err, errlen, "unknown field \"%s\" in %s", name, m->descriptor->name);
        return -ENOENT;
    }
    if (dot) {
        ProtobufCMessage **sub = pbjson_member(m, f);
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
            return fail(&c, "%s: not a message field", f->name);
        if (!*sub && !(*sub = pbjson_new_message(f->descriptor)))
            return -ENOMEM;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        return kopt_pbjson_set_field(*sub, dot + 1, value, err, errlen);
    }
    v = json_string(value);
    if (!v)
        return fail(&c, "%s: not valid UTF-8", f->name);
    /* A repeated query parameter gives one element each time it appears. */
    r = f->label == PROTOBUF_C_LABEL_REPEATED ? append(&c, m, f, v) : fill_field(&c, m, f, v);
    json_decref(v);
    return r;
}
