/* ClickHouse's RowBinary format in both directions: the encoder the inserts
 * use and the bounds-checked decoder for SELECT ... FORMAT RowBinary
 * answers. Part of kopt_clickhouse (libkopt/clickhouse/rowbinary.c).
 *
 * The format, as 18.16 and newer servers write and read it: a row is its
 * columns back to back, no header, no separators. UInt16/32/64 are
 * little-endian; Float64 is IEEE 754 binary64, little-endian; DateTime is
 * UInt32 Unix seconds; String is a LEB128 length and the bytes (no NUL);
 * Array(T) is a LEB128 count and the elements. Which columns come in which
 * order is the caller's business (the INSERT's or SELECT's column list).
 *
 * Pure: no I/O, no globals. The encoder's only allocation is the caller's
 * growable buffer; the decoder allocates nothing (kopt_ch_get_strdup
 * excepted) and points into the caller's bytes. The decoder is all inline
 * (below); rowbinary.c holds the encoder. */
#ifndef KOPT_ROWBINARY_H
#define KOPT_ROWBINARY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ------------------------------------------------------------- */

/* A growable byte buffer. Zero-initialise it (or _init); _free releases it
 * and leaves it empty; _free(NULL) is a no-op. Rows are appended at len;
 * a caller may cut len back to drop what it appended (the row encoders do,
 * to be all or nothing). */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} kopt_ch_buf_t;

void kopt_ch_buf_init(kopt_ch_buf_t *b);
void kopt_ch_buf_free(kopt_ch_buf_t *b);

/* Each appends one value; 0, or -ENOMEM with the buffer as it was. */
int kopt_ch_put_varuint(kopt_ch_buf_t *b, uint64_t v); /* LEB128: lengths, counts */
int kopt_ch_put_u16(kopt_ch_buf_t *b, uint16_t v);
int kopt_ch_put_u32(kopt_ch_buf_t *b, uint32_t v); /* also DateTime */
int kopt_ch_put_u64(kopt_ch_buf_t *b, uint64_t v);
int kopt_ch_put_f64(kopt_ch_buf_t *b, double v);
/* A String: s up to its NUL (NULL is ""), or n bytes of s. */
int kopt_ch_put_string(kopt_ch_buf_t *b, const char *s);
int kopt_ch_put_string_n(kopt_ch_buf_t *b, const void *s, size_t n);
/* An Array(String) of n strings. An array of other elements is its count
 * (kopt_ch_put_varuint) followed by them. On error the buffer may hold a
 * part of the array: callers cut len back, as for any partial row. */
int kopt_ch_put_strings(kopt_ch_buf_t *b, char *const *s, size_t n);

/* ---- decoding ------------------------------------------------------------- */

/* A cursor over an answer. Every get reads at p and advances it. A read
 * past `end` (a truncated answer) or a malformed varint makes the reader
 * bad: that get returns 0 (or NULL) and so do all later ones, so a row is
 * read field by field and checked once (kopt_ch_reader_status). p never
 * passes end. Callers may look at p (where a field began) but not move it. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} kopt_ch_reader_t;

/* The getters are inline so that the advisor's decoding of millions of
 * values per analysis (advisor/hourly.c) costs what its private static
 * copy of them did. */

static inline void kopt_ch_reader_init(kopt_ch_reader_t *r, const void *data, size_t len)
{
    const uint8_t *p = data;

    r->p = p;
    r->end = p ? p + len : p; /* no data: nothing to read */
    r->bad = false;
}

/* 0 while every read fitted; -EBADMSG once one did not. */
static inline int kopt_ch_reader_status(const kopt_ch_reader_t *r)
{
    return r->bad ? -EBADMSG : 0;
}

/* Bytes not read yet (0 once bad). */
static inline size_t kopt_ch_reader_left(const kopt_ch_reader_t *r)
{
    return r->bad ? 0 : (size_t)(r->end - r->p);
}

/* n raw bytes, or NULL (and bad) when fewer are left. */
static inline const uint8_t *kopt_ch_get_bytes(kopt_ch_reader_t *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    return p;
}

/* LEB128, at most 10 bytes (64 bits); longer or cut short is bad. */
static inline uint64_t kopt_ch_get_varuint(kopt_ch_reader_t *r)
{
    uint64_t v = 0;

    for (int shift = 0; !r->bad && r->p < r->end && shift < 64; shift += 7) {
        uint8_t byte = *r->p++;

        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* n (<= 8) little-endian bytes as a number; 0 past the end (r->bad set). */
static inline uint64_t kopt_ch_get_le(kopt_ch_reader_t *r, size_t n)
{
    const uint8_t *p = kopt_ch_get_bytes(r, n);
    uint64_t v = 0;

    for (size_t i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint16_t kopt_ch_get_u16(kopt_ch_reader_t *r)
{
    return (uint16_t)kopt_ch_get_le(r, 2);
}

static inline uint32_t kopt_ch_get_u32(kopt_ch_reader_t *r)
{
    return (uint32_t)kopt_ch_get_le(r, 4);
}

static inline uint64_t kopt_ch_get_u64(kopt_ch_reader_t *r)
{
    return kopt_ch_get_le(r, 8);
}

static inline double kopt_ch_get_f64(kopt_ch_reader_t *r)
{
    uint64_t u = kopt_ch_get_u64(r);
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* A String: its bytes inside the answer (not NUL-terminated) and *n their
 * number; NULL and *n = 0 when bad. */
static inline const uint8_t *kopt_ch_get_string(kopt_ch_reader_t *r, size_t *n)
{
    uint64_t len = kopt_ch_get_varuint(r);
    const uint8_t *s = NULL;

    if (!r->bad)
        s = kopt_ch_get_bytes(r, len > SIZE_MAX ? SIZE_MAX : (size_t)len);
    *n = s ? (size_t)len : 0;
    return s;
}

/* The count of an Array whose elements take at least elem_min bytes each
 * (2 for UInt16, 1 for String): bad when the bytes left cannot hold that
 * many, so a garbage count never sizes an allocation. */
static inline uint64_t kopt_ch_get_array_len(kopt_ch_reader_t *r, size_t elem_min)
{
    uint64_t n = kopt_ch_get_varuint(r);

    if (!r->bad && elem_min && n > (uint64_t)(r->end - r->p) / elem_min) {
        r->bad = true;
        return 0;
    }
    return r->bad ? 0 : n;
}

/* A String as a new NUL-terminated string in *out (the caller frees it).
 * 0; -EBADMSG when bad (*out NULL); -ENOMEM. A NUL inside the value ends
 * the C string early: use kopt_ch_get_string for bytes. */
static inline int kopt_ch_get_strdup(kopt_ch_reader_t *r, char **out)
{
    size_t n;
    const uint8_t *s = kopt_ch_get_string(r, &n);

    *out = NULL;
    if (r->bad)
        return -EBADMSG;
    *out = malloc(n + 1);
    if (!*out)
        return -ENOMEM;
    if (n)
        memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

#endif
