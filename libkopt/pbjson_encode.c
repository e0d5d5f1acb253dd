/* protobuf-c message -> proto3 JSON, through a jansson tree written out by
 * pbjson_write. */
#include <kopt/pbjson.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_internal.h"

static json_t *message_json(const ProtobufCMessage *m);

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64(const ProtobufCBinaryData *b)
{
    size_t n = 4 * ((b->len + 2) / 3), o = 0;
    char *s = malloc(n + 1);
    json_t *j;

    if (!s)
        return NULL;
    for (size_t i = 0; i < b->len; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        if (i + 1 < b->len)
            v |= (uint32_t)b->data[i + 1] << 8;
        if (i + 2 < b->len)
            v |= b->data[i + 2];
        s[o++] = b64[(v >> 18) & 63];
        s[o++] = b64[(v >> 12) & 63];
        s[o++] = i + 1 < b->len ? b64[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < b->len ? b64[v & 63] : '=';
    }
    s[o] = 0;
    j = json_string(s);
    free(s);
    return j;
}

static json_t *number(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* A float as the double its shortest text reads as, so that it is written
 * with float precision: 0.1f as 0.1, not 0.10000000149011612. */
static json_t *float_number(float v)
{
    char s[32];

    if (!isfinite(v) || kopt_pbjson_format_float(v, s, sizeof(s)) < 0)
        return number(v);
    return json_real(strtod(s, NULL));
}

static json_t *u64(uint64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%" PRIu64, v);
    return json_string(s);
}

static json_t *i64(int64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

static json_t *well_known(const ProtobufCMessage *m)
{
    /* Timestamp and Duration share the layout {seconds = 1, nanos = 2}. */
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int64_t seconds = *(const int64_t *)pbjson_member(m, &d->fields[0]);
    int32_t nanos = *(const int32_t *)pbjson_member(m, &d->fields[1]);
    char s[64];

    if (pbjson_is_timestamp(d) ? pbjson_format_timestamp(seconds, nanos, s, sizeof(s)) < 0
                               : pbjson_format_duration(seconds, nanos, s, sizeof(s)) < 0)
        return NULL;
    return json_string(s);
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return i64(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return u64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return float_number(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return number(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        return ev ? json_string(ev->name) : json_integer(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING:
        return json_string(*(char *const *)p ? *(char *const *)p : "");
    case PROTOBUF_C_TYPE_BYTES:
        return base64(p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub)
            return json_null();
        if (pbjson_is_timestamp(sub->descriptor) || pbjson_is_duration(sub->descriptor))
            return well_known(sub);
        return message_json(sub);
    }
    }
    return NULL;
}

/* proto3 leaves default values out. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return !*(char *const *)p || !**(char *const *)p;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return !*(void *const *)p;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    default:
        break;
    }
    for (size_t i = 0; i < pbjson_elem_size(f); i++)
        if (((const unsigned char *)p)[i])
            return 0;
    return 1;
}

/* A repeated field or map; NULL when any element cannot be written (an
 * element is never silently left out). */
static json_t *repeated_json(const ProtobufCFieldDescriptor *f, const void *array, size_t n)
{
    size_t size = pbjson_elem_size(f);
    int map = f->type == PROTOBUF_C_TYPE_MESSAGE && pbjson_is_map_entry(f->descriptor);
    json_t *out = map ? json_object() : json_array();

    for (size_t i = 0; out && i < n; i++) {
        const void *p = (const char *)array + i * size;
        int r = -1;

        if (map) {
            const ProtobufCMessage *e = *(ProtobufCMessage *const *)p;
            const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
            const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
            json_t *k = value_json(kf, pbjson_member(e, kf));
            json_t *v = value_json(vf, pbjson_member(e, vf));
            /* Map keys are strings in JSON, whatever their proto type. */
            char *ks = k && json_is_string(k) ? strdup(json_string_value(k))
                                              : (k ? json_dumps(k, JSON_ENCODE_ANY) : NULL);
            if (ks && v)
                r = json_object_set_new(out, ks, v);
            else
                json_decref(v);
            json_decref(k);
            free(ks);
        } else {
            r = json_array_append_new(out, value_json(f, p));
        }
        if (r < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    char name[128];

    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = pbjson_member(m, f);
        json_t *v;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            if (n == 0)
                continue;
            v = repeated_json(f, *(void *const *)p, n);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
                continue;
            v = value_json(f, p);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
                continue;
            v = value_json(f, p);
        } else {
            if (is_default(f, p))
                continue;
            v = value_json(f, p);
        }
        if (!v) {
            json_decref(o);
            return NULL;
        }
        pbjson_camel(f->name, name, sizeof(name));
        json_object_set_new(o, name, v);
    }
    return o;
}

int kopt_pbjson_encode(const ProtobufCMessage *m, char **out, size_t *len)
{
    json_t *o = message_json(m);
    int r;

    if (!o)
        return -EINVAL;
    /* Not json_dumps: it writes 0.286 as 0.28600000000000003 (pbjson_write.c). */
    r = pbjson_write(o, out, len);
    json_decref(o);
    return r;
}
