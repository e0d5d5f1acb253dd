/* RowBinary in both directions (kopt/rowbinary.h) and the aggregator's
 * container_windows rows built with it (aggregator/rows.h): one known row
 * byte for byte (the expected bytes were made independently with Python's
 * struct module) and read back field by field, the LEB128 string lengths,
 * all-or-nothing on bad input; the reader on every value it can meet, on
 * input cut at every byte and on garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/rowbinary.h>

#include "rows.h"

static const uint8_t known_row[] = {
    0x04, 0x70, 0x72, 0x6f, 0x64, 0x04, 0x73, 0x68, 0x6f, 0x70, 0x0a, 0x44, 0x65, 0x70, 0x6c, 0x6f,
    0x79, 0x6d, 0x65, 0x6e, 0x74, 0x03, 0x77, 0x65, 0x62, 0x08, 0x77, 0x65, 0x62, 0x2d, 0x37, 0x64,
    0x39, 0x66, 0x03, 0x61, 0x70, 0x70, 0x06, 0x6e, 0x6f, 0x64, 0x65, 0x2d, 0x31, 0x05, 0x75, 0x69,
    0x64, 0x2d, 0x31, 0x07, 0x63, 0x72, 0x69, 0x3a, 0x2f, 0x2f, 0x31, 0x00, 0xf1, 0x53, 0x65, 0x3c,
    0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xf8, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f, 0x03, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xe0, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x08, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x07,
    0x61, 0x67, 0x65, 0x6e, 0x74, 0x2d, 0x61, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17, 0x2a,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0xf1, 0x53, 0x65,
};

typedef struct {
    Kopt__V1__ContainerWindow w;
    Google__Protobuf__Timestamp start, end;
} window_t;

static void make_window(window_t *x)
{
    kopt__v1__container_window__init(&x->w);
    google__protobuf__timestamp__init(&x->start);
    google__protobuf__timestamp__init(&x->end);
    x->start.seconds = 1700000000;
    x->start.nanos = 999999999; /* truncated: DateTime holds seconds */
    x->end.seconds = 1700000060;
    x->w.namespace_ = "shop";
    x->w.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    x->w.workload_name = "web";
    x->w.pod = "web-7d9f";
    x->w.container = "app";
    x->w.pod_uid = "uid-1";
    x->w.container_id = "cri://1";
    x->w.window_start = &x->start;
    x->w.window_end = &x->end;
    x->w.cpu_usage_mean_cores = 0.25;
    x->w.cpu_usage_peak_cores = 1.5;
    x->w.cpu_throttled_seconds = 0.125;
    x->w.cpu_throttled_periods = 3;
    x->w.cpu_periods = 100;
    x->w.memory_working_set_peak_bytes = 268435456;
    x->w.memory_working_set_last_bytes = 201326592;
    x->w.memory_rss_peak_bytes = 150994944;
    x->w.oom_kills = 1;
    x->w.restarts = 2;
    x->w.cpu_request_cores = 0.5;
    x->w.cpu_limit_cores = 2.0;
    x->w.memory_request_bytes = 134217728;
    x->w.memory_limit_bytes = 536870912;
    x->w.sample_count = 12;
}

static const agg_rowbinary_batch_t batch_id = {
    .cluster = "prod",
    .node = "node-1",
    .agent_id = "agent-a",
    .epoch = 1700000000123456789ULL,
    .seq = 42,
    .inserted_at = 1700000100,
};

static void known_row_bytes(void **state)
{
    kopt_ch_buf_t b;
    window_t x;

    (void)state;
    kopt_ch_buf_init(&b);
    make_window(&x);
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), 0);
    assert_int_equal(b.len, sizeof(known_row));
    assert_memory_equal(b.data, known_row, sizeof(known_row));
    /* A second row is appended after the first, identical. */
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), 0);
    assert_int_equal(b.len, 2 * sizeof(known_row));
    assert_memory_equal(b.data + sizeof(known_row), known_row, sizeof(known_row));
    kopt_ch_buf_free(&b);
    assert_null(b.data);
    kopt_ch_buf_free(NULL);
}

static void string_lengths_are_leb128(void **state)
{
    kopt_ch_buf_t b = {0};
    char *s = malloc(20000);

    (void)state;
    memset(s, 'x', 300);
    s[300] = '\0';
    assert_int_equal(kopt_ch_put_string(&b, s), 0);
    assert_int_equal(b.len, 302);
    assert_int_equal(b.data[0], 0xac); /* 300 = 0b10_0101100 */
    assert_int_equal(b.data[1], 0x02);
    b.len = 0;
    memset(s, 'y', 16384);
    s[16384] = '\0';
    assert_int_equal(kopt_ch_put_string(&b, s), 0);
    assert_int_equal(b.len, 16387);
    assert_memory_equal(b.data, "\x80\x80\x01", 3);
    b.len = 0;
    assert_int_equal(kopt_ch_put_string(&b, ""), 0);
    assert_int_equal(kopt_ch_put_string(&b, NULL), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "\0\0", 2);
    free(s);
    kopt_ch_buf_free(&b);
}

static void numbers_are_little_endian(void **state)
{
    kopt_ch_buf_t b = {0};

    (void)state;
    assert_int_equal(kopt_ch_put_u32(&b, 0x01020304), 0);
    assert_int_equal(kopt_ch_put_u64(&b, 0x0102030405060708ULL), 0);
    assert_int_equal(kopt_ch_put_f64(&b, -2.0), 0);
    assert_int_equal(b.len, 20);
    assert_memory_equal(b.data, "\x04\x03\x02\x01\x08\x07\x06\x05\x04\x03\x02\x01", 12);
    assert_memory_equal(b.data + 12, "\0\0\0\0\0\0\0\xc0", 8);
    kopt_ch_buf_free(&b);
}

static void bad_times_leave_buffer_unchanged(void **state)
{
    kopt_ch_buf_t b = {0};
    window_t x;

    (void)state;
    make_window(&x);
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), 0);
    x.w.window_end = NULL;
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
    assert_int_equal(b.len, sizeof(known_row));
    x.w.window_end = &x.end;
    x.start.seconds = -1;
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
    x.start.seconds = 4294967296LL; /* 2106: past DateTime */
    assert_int_equal(agg_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
    assert_int_equal(b.len, sizeof(known_row));
    kopt_ch_buf_free(&b);
}

static void metric_batch_is_all_or_nothing(void **state)
{
    kopt_ch_buf_t b = {0};
    Kopt__V1__MetricBatch m;
    Kopt__V1__ContainerWindow *ws[3];
    window_t x[3];
    size_t rows = 99;

    (void)state;
    kopt__v1__metric_batch__init(&m);
    m.cluster = "prod";
    m.node = "node-1";
    m.agent_id = "agent-a";
    m.epoch = batch_id.epoch;
    m.seq = 42;
    for (int i = 0; i < 3; i++) {
        make_window(&x[i]);
        ws[i] = &x[i].w;
    }
    m.windows = ws;
    m.n_windows = 3;
    assert_int_equal(agg_rowbinary_metric_batch(&b, &m, 1700000100, &rows), 0);
    assert_int_equal(rows, 3);
    assert_int_equal(b.len, 3 * sizeof(known_row));
    for (int i = 0; i < 3; i++)
        assert_memory_equal(b.data + i * sizeof(known_row), known_row, sizeof(known_row));
    x[2].w.window_start = NULL;
    assert_int_equal(agg_rowbinary_metric_batch(&b, &m, 1700000100, &rows), -EINVAL);
    assert_int_equal(rows, 0);
    assert_int_equal(b.len, 3 * sizeof(known_row));
    kopt_ch_buf_free(&b);
}

static void kinds_and_columns(void **state)
{
    const char *p = AGG_ROWBINARY_WINDOW_COLUMNS;
    int commas = 0;

    (void)state;
    assert_string_equal(agg_rowbinary_workload_kind(1), "Deployment");
    assert_string_equal(agg_rowbinary_workload_kind(2), "StatefulSet");
    assert_string_equal(agg_rowbinary_workload_kind(3), "DaemonSet");
    assert_string_equal(agg_rowbinary_workload_kind(4), "Job");
    assert_string_equal(agg_rowbinary_workload_kind(5), "CronJob");
    assert_string_equal(agg_rowbinary_workload_kind(6), "ReplicaSet");
    assert_string_equal(agg_rowbinary_workload_kind(7), "Pod");
    assert_string_equal(agg_rowbinary_workload_kind(8), "ProcessGroup");
    assert_string_equal(agg_rowbinary_workload_kind(0), "");
    assert_string_equal(agg_rowbinary_workload_kind(99), "");
    for (; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas + 1, AGG_ROWBINARY_WINDOW_NCOLUMNS);
}

/* ---- the reader ---------------------------------------------------------- */

static void read_string_is(kopt_ch_reader_t *r, const char *want)
{
    size_t n;
    const uint8_t *s = kopt_ch_get_string(r, &n);

    assert_non_null(s);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
}

/* known_row, read back as the advisor reads its answers. */
static void reader_reads_known_row(void **state)
{
    static const char *const names[] = {"prod", "shop",   "Deployment", "web",    "web-7d9f",
                                        "app",  "node-1", "uid-1",      "cri://1"};
    kopt_ch_reader_t r;

    (void)state;
    kopt_ch_reader_init(&r, known_row, sizeof(known_row));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        read_string_is(&r, names[i]);
    assert_int_equal(kopt_ch_get_u32(&r), 1700000000);
    assert_int_equal(kopt_ch_get_u32(&r), 1700000060);
    assert_true(kopt_ch_get_f64(&r) == 0.25);
    assert_true(kopt_ch_get_f64(&r) == 1.5);
    assert_true(kopt_ch_get_f64(&r) == 0.125);
    assert_int_equal(kopt_ch_get_u64(&r), 3);
    assert_int_equal(kopt_ch_get_u64(&r), 100);
    assert_int_equal(kopt_ch_get_u64(&r), 268435456);
    assert_int_equal(kopt_ch_get_u64(&r), 201326592);
    assert_int_equal(kopt_ch_get_u64(&r), 150994944);
    assert_int_equal(kopt_ch_get_u32(&r), 1);
    assert_int_equal(kopt_ch_get_u32(&r), 2);
    assert_true(kopt_ch_get_f64(&r) == 0.5);
    assert_true(kopt_ch_get_f64(&r) == 2.0);
    assert_int_equal(kopt_ch_get_u64(&r), 134217728);
    assert_int_equal(kopt_ch_get_u64(&r), 536870912);
    assert_int_equal(kopt_ch_get_u32(&r), 12);
    read_string_is(&r, "agent-a");
    assert_int_equal(kopt_ch_get_u64(&r), 1700000000123456789ULL);
    assert_int_equal(kopt_ch_get_u64(&r), 42);
    assert_int_equal(kopt_ch_get_u32(&r), 1700000100);
    assert_int_equal(kopt_ch_reader_status(&r), 0);
    assert_int_equal(kopt_ch_reader_left(&r), 0);
}

static const uint64_t varuints[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
static char *const strings[] = {"", "a", "two words", "tab\there"};

/* One value of every kind the encoder writes, in a fixed order. */
static void encode_all(kopt_ch_buf_t *b)
{
    for (size_t i = 0; i < sizeof(varuints) / sizeof(varuints[0]); i++)
        assert_int_equal(kopt_ch_put_varuint(b, varuints[i]), 0);
    assert_int_equal(kopt_ch_put_u16(b, 0xbeef), 0);
    assert_int_equal(kopt_ch_put_u32(b, 0xdeadbeef), 0);
    assert_int_equal(kopt_ch_put_u64(b, 0x0102030405060708ULL), 0);
    assert_int_equal(kopt_ch_put_f64(b, -0.0), 0);
    assert_int_equal(kopt_ch_put_f64(b, INFINITY), 0);
    assert_int_equal(kopt_ch_put_string_n(b, "a\0b", 3), 0); /* a NUL inside a String */
    assert_int_equal(kopt_ch_put_strings(b, strings, 4), 0);
    assert_int_equal(kopt_ch_put_varuint(b, 3), 0); /* Array(UInt16) */
    for (uint16_t i = 1; i <= 3; i++)
        assert_int_equal(kopt_ch_put_u16(b, (uint16_t)(i * 1000)), 0);
    assert_int_equal(kopt_ch_put_string(b, "end"), 0);
}

/* Reads what encode_all wrote; returns the reader's status. With check,
 * every value must be the one written. */
static int decode_all(const uint8_t *data, size_t len, bool check)
{
    kopt_ch_reader_t r;
    uint64_t n;
    size_t sn;
    const uint8_t *s;
    char *dup = NULL;
    double d;
    int e;

    kopt_ch_reader_init(&r, data, len);
    for (size_t i = 0; i < sizeof(varuints) / sizeof(varuints[0]); i++) {
        n = kopt_ch_get_varuint(&r);
        if (check)
            assert_true(n == varuints[i]);
    }
    if (check) {
        assert_int_equal(kopt_ch_get_u16(&r), 0xbeef);
        assert_int_equal(kopt_ch_get_u32(&r), 0xdeadbeef);
        assert_true(kopt_ch_get_u64(&r) == 0x0102030405060708ULL);
        d = kopt_ch_get_f64(&r);
        assert_true(d == 0.0 && signbit(d));
        assert_true(isinf(kopt_ch_get_f64(&r)));
    } else {
        kopt_ch_get_u16(&r);
        kopt_ch_get_u32(&r);
        kopt_ch_get_u64(&r);
        kopt_ch_get_f64(&r);
        kopt_ch_get_f64(&r);
    }
    s = kopt_ch_get_string(&r, &sn);
    if (check) {
        assert_int_equal(sn, 3);
        assert_memory_equal(s, "a\0b", 3);
    }
    n = kopt_ch_get_array_len(&r, 1);
    if (check)
        assert_int_equal(n, 4);
    for (uint64_t i = 0; i < 4; i++) {
        e = kopt_ch_get_strdup(&r, &dup);
        if (check) {
            assert_int_equal(e, 0);
            assert_string_equal(dup, strings[i]);
        } else if (e < 0) {
            assert_null(dup);
        }
        free(dup);
    }
    n = kopt_ch_get_array_len(&r, 2);
    if (check)
        assert_int_equal(n, 3);
    for (uint16_t i = 1; i <= 3; i++) {
        uint16_t v = kopt_ch_get_u16(&r);

        if (check)
            assert_int_equal(v, i * 1000);
    }
    s = kopt_ch_get_string(&r, &sn);
    if (check) {
        assert_int_equal(sn, 3);
        assert_memory_equal(s, "end", 3);
        assert_int_equal(kopt_ch_reader_left(&r), 0);
    }
    /* Never past the end, bad or not. */
    assert_true(r.p <= r.end);
    assert_true(r.p >= data || len == 0);
    return kopt_ch_reader_status(&r);
}

static void reader_round_trips_every_kind(void **state)
{
    kopt_ch_buf_t b = {0};

    (void)state;
    encode_all(&b);
    assert_int_equal(decode_all(b.data, b.len, true), 0);
    kopt_ch_buf_free(&b);
}

/* Cut at every byte: always -EBADMSG, never a read past the cut (ASan
 * sees the copy's end). */
static void reader_truncated_at_every_byte(void **state)
{
    kopt_ch_buf_t b = {0};

    (void)state;
    encode_all(&b);
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);

        memcpy(copy, b.data, cut);
        assert_int_equal(decode_all(copy, cut, false), -EBADMSG);
        free(copy);
    }
    kopt_ch_buf_free(&b);
}

static void reader_refuses_garbage(void **state)
{
    /* A varint that never ends within 64 bits: ten continuation bytes. */
    static const uint8_t long_varint[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x80, 0x01};
    /* A String claiming 2^63 bytes, and an Array claiming 1000 UInt32s. */
    static const uint8_t huge_string[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x01, 'x',  'y'};
    static const uint8_t big_array[] = {0xe8, 0x07, 1, 0, 0, 0};
    kopt_ch_reader_t r;
    char *dup = (char *)"untouched";
    size_t n = 99;
    bool was_null;
    int e;

    (void)state;
    kopt_ch_reader_init(&r, long_varint, sizeof(long_varint));
    assert_int_equal(kopt_ch_get_varuint(&r), 0);
    assert_int_equal(kopt_ch_reader_status(&r), -EBADMSG);
    assert_int_equal(kopt_ch_reader_left(&r), 0);

    kopt_ch_reader_init(&r, huge_string, sizeof(huge_string));
    assert_null(kopt_ch_get_string(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(kopt_ch_reader_status(&r), -EBADMSG);
    /* Bad is sticky: later reads give nothing, even ones that would fit. */
    assert_int_equal(kopt_ch_get_u16(&r), 0);
    assert_null(kopt_ch_get_bytes(&r, 0));
    e = kopt_ch_get_strdup(&r, &dup);
    was_null = dup == NULL;
    free(dup);
    assert_int_equal(e, -EBADMSG);
    assert_true(was_null);

    kopt_ch_reader_init(&r, big_array, sizeof(big_array));
    assert_int_equal(kopt_ch_get_array_len(&r, 4), 0);
    assert_int_equal(kopt_ch_reader_status(&r), -EBADMSG);
    kopt_ch_reader_init(&r, big_array, sizeof(big_array));
    assert_int_equal(kopt_ch_get_array_len(&r, 0), 1000); /* no bound asked for */
    assert_int_equal(kopt_ch_reader_status(&r), 0);

    /* An empty answer is no rows, not an error. */
    kopt_ch_reader_init(&r, NULL, 0);
    assert_int_equal(kopt_ch_reader_left(&r), 0);
    assert_int_equal(kopt_ch_reader_status(&r), 0);
    assert_int_equal(kopt_ch_get_u32(&r), 0);
    assert_int_equal(kopt_ch_reader_status(&r), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_row_bytes),
        cmocka_unit_test(string_lengths_are_leb128),
        cmocka_unit_test(numbers_are_little_endian),
        cmocka_unit_test(bad_times_leave_buffer_unchanged),
        cmocka_unit_test(metric_batch_is_all_or_nothing),
        cmocka_unit_test(kinds_and_columns),
        cmocka_unit_test(reader_reads_known_row),
        cmocka_unit_test(reader_round_trips_every_kind),
        cmocka_unit_test(reader_truncated_at_every_byte),
        cmocka_unit_test(reader_refuses_garbage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
