/* Names, field lookup and the well-known types for pbjson. */
#include <kopt/pbjson.h>

#include "pbjson_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pbjson_camel(const char *proto_name, char *out, size_t len)
{
    size_t n = 0;
    int up = 0;

    for (const char *p = proto_name; *p && n + 1 < len; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = 0;
    }
    out[n] = 0;
}

const ProtobufCFieldDescriptor *pbjson_field(const ProtobufCMessageDescriptor *d, const char *name)
{
    char camel[128];

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (strcmp(f->name, name) == 0)
            return f;
        pbjson_camel(f->name, camel, sizeof(camel));
        if (strcmp(camel, name) == 0)
            return f;
    }
    return NULL;
}

const ProtobufCFieldDescriptor *kopt_pbjson_field(const ProtobufCMessageDescriptor *d,
                                                  const char *name)
{
    return pbjson_field(d, name);
}

size_t pbjson_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

int pbjson_is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->short_name);

    return d->n_fields == 2 && n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

int pbjson_is_timestamp(const ProtobufCMessageDescriptor *d)
{
    return strcmp(d->name, "google.protobuf.Timestamp") == 0;
}

int pbjson_is_duration(const ProtobufCMessageDescriptor *d)
{
    return strcmp(d->name, "google.protobuf.Duration") == 0;
}

/* Nanoseconds as the shortest of 0, 3, 6 or 9 fraction digits. */
static void fraction(int32_t nanos, char *out, size_t len)
{
    if (nanos == 0)
        out[0] = 0;
    else if (nanos % 1000000 == 0)
        snprintf(out, len, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(out, len, ".%06d", nanos / 1000);
    else
        snprintf(out, len, ".%09d", nanos);
}

int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *out, size_t len)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    char frac[16], date[32];

    /* 0001-01-01 .. 9999-12-31, as the mapping allows. */
    if (seconds < -62135596800LL || seconds > 253402300799LL || nanos < 0 || nanos > 999999999)
        return -EINVAL;
    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    fraction(nanos, frac, sizeof(frac));
    snprintf(out, len, "%s%sZ", date, frac);
    return 0;
}

/* Reads ".ddd" into nanoseconds; returns the characters consumed. */
static int parse_fraction(const char *s, int32_t *nanos)
{
    int n = 0;
    int32_t v = 0, scale = 100000000;

    *nanos = 0;
    if (*s != '.')
        return 0;
    for (n = 1; isdigit((unsigned char)s[n]) && n <= 9; n++) {
        v += (s[n] - '0') * scale;
        scale /= 10;
    }
    *nanos = v;
    return n;
}

int pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos)
{
    struct tm tm;
    const char *p;
    int off_h, off_m, sign;

    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    p += parse_fraction(p, nanos);
    *seconds = (int64_t)timegm(&tm);
    if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &off_h, &off_m) == 2 &&
        strlen(p) == 6) {
        sign = *p == '+' ? 1 : -1;
        *seconds -= sign * (off_h * 3600 + off_m * 60);
    } else if (*p != 'Z' || p[1] != 0) {
        return -EINVAL;
    }
    /* 0001-01-01 .. 9999-12-31, as the mapping allows (and the encoder writes). */
    return *seconds < -62135596800LL || *seconds > 253402300799LL ? -EINVAL : 0;
}

int pbjson_format_duration(int64_t seconds, int32_t nanos, char *out, size_t len)
{
    char frac[16];
    int neg = seconds < 0 || nanos < 0;

    fraction(nanos < 0 ? -nanos : nanos, frac, sizeof(frac));
    snprintf(out, len, "%s%" PRId64 "%ss", neg && seconds == 0 ? "-" : "", seconds, frac);
    return 0;
}

int pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos)
{
    char *end;
    int neg = *s == '-';
    long long v = strtoll(s, &end, 10);
    int used;

    if (end == s || (v < 0 && !neg))
        return -EINVAL;
    used = parse_fraction(end, nanos);
    end += used;
    if (*end != 's' || end[1] != 0)
        return -EINVAL;
    *seconds = v;
    if (neg)
        *nanos = -*nanos;
    return 0;
}

ProtobufCMessage *pbjson_new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);

    if (m)
        d->message_init(m);
    return m;
}
