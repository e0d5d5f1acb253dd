/* Writes the encoder's jansson tree as compact JSON text. jansson prints a
 * real with "%.17g" and appends ".0" to whole numbers (0.28600000000000003,
 * 730.0); proto3 JSON wants the number, so doubles go out here as the
 * shortest text that reads back to the same bits (0.286, 730). */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "pbjson_internal.h"

/* The fewest significant digits, from `from` up to `to`, whose "%.*g" reads
 * back as `v` through `same`. From DBL_DIG (FLT_DIG) up is enough for
 * normal numbers: every decimal of that many digits or fewer reads back as
 * a distinct value, so the first precision that round-trips, with "%g"
 * dropping trailing zeros, is the shortest text. Subnormals have fewer
 * digits of precision and start at 1 (5e-324, not 4.94065645841247e-324). */
static int shortest(double v, int from, int to, int (*same)(double v, const char *s), char *out,
                    size_t len)
{
    for (int p = from; p <= to; p++) {
        int n = snprintf(out, len, "%.*g", p, v);

        if (n < 0 || (size_t)n >= len)
            return -ENOSPC;
        if (same(v, out))
            return n;
    }
    return -EINVAL; /* not reached for finite values: to digits always round-trip */
}

/* The same bits, for finite values: equal, and the same sign for zeros. */
static int same_double(double v, const char *s)
{
    double r = strtod(s, NULL);

    return r == v && !signbit(r) == !signbit(v);
}

static int same_float(double v, const char *s)
{
    float r = strtof(s, NULL), f = (float)v;

    return r == f && !signbit(r) == !signbit(f);
}

int kopt_pbjson_format_double(double v, char *out, size_t len)
{
    if (!isfinite(v))
        return -EINVAL;
    return shortest(v, v != 0 && fabs(v) < DBL_MIN ? 1 : DBL_DIG, DBL_DECIMAL_DIG, same_double, out,
                    len);
}

int kopt_pbjson_format_float(float v, char *out, size_t len)
{
    if (!isfinite(v))
        return -EINVAL;
    return shortest(v, v != 0 && fabsf(v) < FLT_MIN ? 1 : FLT_DIG, FLT_DECIMAL_DIG, same_float, out,
                    len);
}

typedef struct {
    char *s;
    size_t n, cap;
    int err; /* the first error: -ENOMEM, or -EINVAL for a real JSON cannot hold */
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *g;

        while (cap < b->n + n + 1)
            cap *= 2;
        g = realloc(b->s, cap);
        if (!g) {
            b->err = -ENOMEM;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control characters escaped, UTF-8
 * (which jansson has already checked) passed through as jansson does. */
static void put_string(buf_t *b, const char *s, size_t n)
{
    size_t run = 0;

    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            puts_(b, "\\\"");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        case '\b':
            puts_(b, "\\b");
            break;
        case '\f':
            puts_(b, "\\f");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(b, esc);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_json(buf_t *b, const json_t *j)
{
    char num[40];
    const char *key;
    json_t *v;
    size_t i;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        put(b, "{", 1);
        i = 0;
        /* jansson keeps insertion order, which is field number order here. */
        json_object_foreach((json_t *)j, key, v)
        {
            if (i++)
                put(b, ",", 1);
            put_string(b, key, strlen(key));
            put(b, ":", 1);
            put_json(b, v);
        }
        put(b, "}", 1);
        break;
    case JSON_ARRAY:
        put(b, "[", 1);
        json_array_foreach(j, i, v)
        {
            if (i)
                put(b, ",", 1);
            put_json(b, v);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        puts_(b, num);
        break;
    case JSON_REAL:
        /* The encoder turns NaN and infinities into strings first. */
        if (kopt_pbjson_format_double(json_real_value(j), num, sizeof(num)) < 0)
            b->err = b->err ? b->err : -EINVAL;
        else
            puts_(b, num);
        break;
    case JSON_TRUE:
        puts_(b, "true");
        break;
    case JSON_FALSE:
        puts_(b, "false");
        break;
    case JSON_NULL:
        puts_(b, "null");
        break;
    }
}

int pbjson_write(const json_t *j, char **out, size_t *len)
{
    buf_t b = {0};

    put_json(&b, j);
    if (b.err) {
        free(b.s);
        return b.err;
    }
    *out = b.s;
    if (len)
        *len = b.n;
    return 0;
}
