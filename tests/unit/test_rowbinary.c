/* RowBinary rows for container_windows: one known row byte for byte (the
 * expected bytes were made independently with Python's struct module), the
 * LEB128 string lengths, and all-or-nothing on bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static const kopt_rowbinary_batch_t batch_id = {
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
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), 0);
    assert_int_equal(b.len, sizeof(known_row));
    assert_memory_equal(b.data, known_row, sizeof(known_row));
    /* A second row is appended after the first, identical. */
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), 0);
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
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), 0);
    x.w.window_end = NULL;
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
    assert_int_equal(b.len, sizeof(known_row));
    x.w.window_end = &x.end;
    x.start.seconds = -1;
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
    x.start.seconds = 4294967296LL; /* 2106: past DateTime */
    assert_int_equal(kopt_rowbinary_window(&b, &batch_id, &x.w), -EINVAL);
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
    assert_int_equal(kopt_rowbinary_metric_batch(&b, &m, 1700000100, &rows), 0);
    assert_int_equal(rows, 3);
    assert_int_equal(b.len, 3 * sizeof(known_row));
    for (int i = 0; i < 3; i++)
        assert_memory_equal(b.data + i * sizeof(known_row), known_row, sizeof(known_row));
    x[2].w.window_start = NULL;
    assert_int_equal(kopt_rowbinary_metric_batch(&b, &m, 1700000100, &rows), -EINVAL);
    assert_int_equal(rows, 0);
    assert_int_equal(b.len, 3 * sizeof(known_row));
    kopt_ch_buf_free(&b);
}

static void kinds_and_columns(void **state)
{
    const char *p = KOPT_ROWBINARY_WINDOW_COLUMNS;
    int commas = 0;

    (void)state;
    assert_string_equal(kopt_rowbinary_workload_kind(1), "Deployment");
    assert_string_equal(kopt_rowbinary_workload_kind(2), "StatefulSet");
    assert_string_equal(kopt_rowbinary_workload_kind(3), "DaemonSet");
    assert_string_equal(kopt_rowbinary_workload_kind(4), "Job");
    assert_string_equal(kopt_rowbinary_workload_kind(5), "CronJob");
    assert_string_equal(kopt_rowbinary_workload_kind(6), "ReplicaSet");
    assert_string_equal(kopt_rowbinary_workload_kind(7), "Pod");
    assert_string_equal(kopt_rowbinary_workload_kind(8), "ProcessGroup");
    assert_string_equal(kopt_rowbinary_workload_kind(0), "");
    assert_string_equal(kopt_rowbinary_workload_kind(99), "");
    for (; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas + 1, KOPT_ROWBINARY_WINDOW_NCOLUMNS);
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
