/* The RowBinary encoder; see kopt/rowbinary.h (the decoder is inline
 * there). Byte order is written out explicitly (not memcpy of host
 * integers) so the encoding is little-endian whatever the host is. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/rowbinary.h"

void kopt_ch_buf_init(kopt_ch_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kopt_ch_buf_free(kopt_ch_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    kopt_ch_buf_init(b);
}

static int reserve(kopt_ch_buf_t *b, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int put_le(kopt_ch_buf_t *b, uint64_t v, size_t width)
{
    int r = reserve(b, width);

    if (r < 0)
        return r;
    for (size_t i = 0; i < width; i++)
        b->data[b->len++] = (uint8_t)(v >> (8 * i));
    return 0;
}

int kopt_ch_put_u16(kopt_ch_buf_t *b, uint16_t v)
{
    return put_le(b, v, 2);
}

int kopt_ch_put_u32(kopt_ch_buf_t *b, uint32_t v)
{
    return put_le(b, v, 4);
}

int kopt_ch_put_u64(kopt_ch_buf_t *b, uint64_t v)
{
    return put_le(b, v, 8);
}

int kopt_ch_put_f64(kopt_ch_buf_t *b, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits)); /* IEEE 754 binary64, as ClickHouse's Float64 */
    return put_le(b, bits, 8);
}

int kopt_ch_put_varuint(kopt_ch_buf_t *b, uint64_t v)
{
    int r = reserve(b, 10); /* a 64-bit LEB128 takes at most 10 bytes */

    if (r < 0)
        return r;
    do {
        uint8_t byte = v & 0x7f;

        v >>= 7;
        b->data[b->len++] = byte | (v ? 0x80 : 0);
    } while (v);
    return 0;
}

int kopt_ch_put_string_n(kopt_ch_buf_t *b, const void *s, size_t n)
{
    int r = n > SIZE_MAX - 10 ? -ENOMEM : reserve(b, n + 10);

    if (r == 0)
        r = kopt_ch_put_varuint(b, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

int kopt_ch_put_string(kopt_ch_buf_t *b, const char *s)
{
    return kopt_ch_put_string_n(b, s, s ? strlen(s) : 0);
}

int kopt_ch_put_strings(kopt_ch_buf_t *b, char *const *s, size_t n)
{
    int r = kopt_ch_put_varuint(b, n);

    for (size_t i = 0; i < n && r == 0; i++)
        r = kopt_ch_put_string(b, s[i]);
    return r;
}
