/* Fuzz target: kopt/rowbinary.h's reader on any bytes, as a ClickHouse
 * answer may arrive (cut anywhere, or ending in an exception's text). The
 * first byte picks a row shape of up to eight columns; the rest is read as
 * rows of that shape until it ends or turns bad. Each value read is written
 * again with the encoder and read back, so the two directions must agree.
 * Must never crash, hang, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/rowbinary.h>

enum { VARUINT, U16, U32, U64, F64, STRING, ARRAY_U16, ARRAY_STRING };

/* One value of type t from r into the scratch buffer b (emptied first). */
static void copy_value(int t, kopt_ch_reader_t *r, kopt_ch_buf_t *b)
{
    uint64_t n;
    size_t len;
    const uint8_t *s;

    b->len = 0;
    switch (t) {
    case VARUINT:
        kopt_ch_put_varuint(b, kopt_ch_get_varuint(r));
        break;
    case U16:
        kopt_ch_put_u16(b, kopt_ch_get_u16(r));
        break;
    case U32:
        kopt_ch_put_u32(b, kopt_ch_get_u32(r));
        break;
    case U64:
        kopt_ch_put_u64(b, kopt_ch_get_u64(r));
        break;
    case F64:
        kopt_ch_put_f64(b, kopt_ch_get_f64(r));
        break;
    case STRING:
        s = kopt_ch_get_string(r, &len);
        kopt_ch_put_string_n(b, s, len);
        break;
    case ARRAY_U16:
        n = kopt_ch_get_array_len(r, 2);
        kopt_ch_put_varuint(b, n);
        for (uint64_t i = 0; i < n; i++)
            kopt_ch_put_u16(b, kopt_ch_get_u16(r));
        break;
    default: {
        char *dup = NULL;

        n = kopt_ch_get_array_len(r, 1);
        kopt_ch_put_varuint(b, n);
        for (uint64_t i = 0; i < n && kopt_ch_get_strdup(r, &dup) == 0; i++) {
            kopt_ch_put_string(b, dup);
            free(dup);
        }
        break;
    }
    }
}

/* The copy must read back whole, and the same again. */
static void check_copy(int t, const kopt_ch_buf_t *b)
{
    kopt_ch_buf_t again = {0};
    kopt_ch_reader_t r;

    kopt_ch_reader_init(&r, b->data, b->len);
    if (t == ARRAY_STRING) { /* strdup stops at a NUL: compare lengths only */
        copy_value(t, &r, &again);
        if (kopt_ch_reader_status(&r) != 0 || kopt_ch_reader_left(&r) != 0)
            abort();
    } else {
        copy_value(t, &r, &again);
        if (kopt_ch_reader_status(&r) != 0 || kopt_ch_reader_left(&r) != 0 || again.len != b->len ||
            memcmp(again.data, b->data, b->len) != 0)
            abort();
    }
    kopt_ch_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kopt_ch_buf_t b = {0};
    kopt_ch_reader_t r;
    int shape[8], cols;

    if (size < 1)
        return 0;
    /* Bits 0-2: columns - 1; the columns' types come from the next bytes. */
    cols = (data[0] & 7) + 1;
    if (size < 1 + (size_t)cols)
        return 0;
    for (int i = 0; i < cols; i++)
        shape[i] = data[1 + i] & 7;
    kopt_ch_reader_init(&r, data + 1 + cols, size - 1 - (size_t)cols);
    while (kopt_ch_reader_left(&r) > 0) {
        for (int i = 0; i < cols; i++) {
            const uint8_t *before = r.p;

            copy_value(shape[i], &r, &b);
            if (r.p < before || r.p > r.end)
                abort();
            if (kopt_ch_reader_status(&r) == 0)
                check_copy(shape[i], &b);
        }
    }
    kopt_ch_buf_free(&b);
    return 0;
}
