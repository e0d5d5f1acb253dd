/* advisor/hourly.c: RowBinary answers of the container_hourly query become
 * engine inputs in the table's key order, each (container, hour) once with
 * the newest rolled_at (a re-rolled hour is not counted twice), whatever
 * order the rows came in; answers that are not ours are refused; the
 * seconds the windows cover reach the engine (0 from rows rolled before
 * the column existed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"

#define H0 1800000000 /* an hour start */
#define FROM (H0 - 3600)
#define TO (H0 + 100 * 3600)

typedef struct {
    char *data;
    size_t len;
    FILE *f;
} body_t;

static void put(body_t *b, const void *p, size_t n)
{
    fwrite(p, 1, n, b->f);
}

static void put_leb(body_t *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));

        put(b, &c, 1);
        v >>= 7;
    } while (v);
}

static void put_str(body_t *b, const char *s)
{
    put_leb(b, strlen(s));
    put(b, s, strlen(s));
}

static void put_u32(body_t *b, uint32_t v)
{
    put(b, &v, 4); /* little-endian hosts only, like the x86-64 and arm64 we build for */
}

static void put_u64(body_t *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_f64(body_t *b, double v)
{
    put(b, &v, 8);
}

/* One row of the hourly query; `tag` marks the values (CPU mean, the CPU
 * bucket count) so a test can tell which copy of an hour was kept. */
static void row(body_t *b, const char *ns, const char *kind, const char *name, const char *ctr,
                int hour, uint32_t rolled, double tag, uint32_t pods)
{
    put_str(b, "prod");
    put_str(b, ns);
    put_str(b, kind);
    put_str(b, name);
    put_str(b, ctr);
    put_u32(b, (uint32_t)(H0 + hour * 3600));
    put_u32(b, 60);
    put_u32(b, pods);
    put_f64(b, tag);     /* cpu_usage_mean_cores */
    put_f64(b, tag * 2); /* peak */
    put_f64(b, 0.5);     /* throttled seconds */
    put_u64(b, 3);       /* throttled periods */
    put_u64(b, 600);     /* periods */
    put_leb(b, 2);       /* cpu_hist_index */
    put(b, "\x05\x00\x06\x00", 4);
    put_leb(b, 2); /* cpu_hist_count */
    put_u32(b, (uint32_t)(tag * 100));
    put_u32(b, 1);
    put_u64(b, 1000 + (uint64_t)hour); /* memory peak */
    put_leb(b, 1);                     /* mem_hist_index */
    put(b, "\x07\x00", 2);
    put_leb(b, 1);
    put_u32(b, 60);
    put_u32(b, hour == 3 ? 1 : 0);        /* oom kills */
    put_f64(b, 0.25 + hour);              /* cpu request: tells the latest hour */
    put_f64(b, 1);                        /* cpu limit */
    put_u64(b, 1000000 + (uint64_t)hour); /* memory request */
    put_u64(b, 0);
    put_u32(b, rolled);
    put_u64(b, hour == 2 ? 0 : 600 * (uint64_t)pods); /* covered_seconds; 0: rolled before it */
}

static void open_body(body_t *b)
{
    memset(b, 0, sizeof(*b));
    b->f = open_memstream(&b->data, &b->len);
    assert_non_null(b->f);
}

static void close_body(body_t *b)
{
    assert_int_equal(fclose(b->f), 0);
}

static void parse_into(body_t *b, adv_input_t *in)
{
    adv_hourly_part_t *p = NULL;

    close_body(b);
    assert_int_equal(adv_hourly_parse(b->data, b->len, FROM, TO, &p), 0);
    assert_int_equal(adv_hourly_emit(p, in), 0);
}

static void rows_come_out_in_key_and_hour_order(void **state)
{
    body_t b;
    adv_input_t in = {0};
    const adv_container_in_t *c;

    (void)state;
    open_body(&b);
    /* Arrival order as ClickHouse gives it without ORDER BY: parts and
     * threads interleaved. */
    row(&b, "shop", "StatefulSet", "db", "pg", 1, 10, 0.1, 1);
    row(&b, "shop", "Deployment", "web", "sidecar", 0, 10, 0.1, 2);
    row(&b, "shop", "Deployment", "web", "app", 2, 10, 0.3, 4);
    row(&b, "shop", "StatefulSet", "db", "pg", 0, 10, 0.2, 1);
    row(&b, "shop", "Deployment", "web", "app", 0, 10, 0.1, 2);
    row(&b, "shop", "Deployment", "web", "app", 1, 10, 0.2, 3);
    row(&b, "batch", "Deployment", "web", "app", 0, 10, 0.9, 1);
    parse_into(&b, &in);

    assert_int_equal(in.n_w, 3);
    assert_int_equal(in.n_c, 4);
    assert_int_equal(in.n_hours, 7);
    assert_string_equal(in.w[0].namespace_, "batch");
    assert_string_equal(in.w[1].kind, "Deployment");
    assert_string_equal(in.w[1].name, "web");
    assert_int_equal(in.w[1].n_containers, 2);
    assert_string_equal(in.w[2].kind, "StatefulSet");
    /* web: app before sidecar, hours rising, buckets where they belong. */
    c = &in.c[in.w[1].first_container];
    assert_string_equal(c[0].name, "app");
    assert_string_equal(c[1].name, "sidecar");
    assert_int_equal(c[0].n_hours, 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(c[0].hours[k].start, H0 + k * 3600);
        assert_int_equal(c[0].hours[k].cpu_hist_len, 2);
        assert_int_equal(c[0].hours[k].cpu_hist[0].index, 5);
        assert_int_equal(c[0].hours[k].cpu_hist[0].count, (uint32_t)((0.1 * (k + 1)) * 100));
        assert_int_equal(c[0].hours[k].mem_hist[0].index, 7);
        assert_int_equal(c[0].hours[k].mem_peak_bytes, 1000 + (uint64_t)k);
    }
    /* The latest hour's requests are the current ones; replicas = mean pods. */
    assert_float_equal(c[0].current.cpu_request_cores, 2.25, 0);
    assert_int_equal(c[0].current.memory_request_bytes, 1000002);
    assert_float_equal(in.w[1].replicas, 3.0, 1e-12);
    /* db's two hours came in the wrong order. */
    c = &in.c[in.w[2].first_container];
    assert_int_equal(c->n_hours, 2);
    assert_int_equal(c->hours[0].start, H0);
    assert_float_equal(c->hours[0].cpu_mean_cores, 0.2, 0);
    assert_float_equal(c->current.cpu_request_cores, 1.25, 0);
    adv_input_free(&in); /* parsing freed b.data */
}

static void a_re_rolled_hour_counts_once_with_the_newest_rollup(void **state)
{
    body_t b;
    adv_input_t in = {0};
    const adv_container_in_t *c;

    (void)state;
    open_body(&b);
    /* Hour 1 rolled three times (parts not merged yet), hour 3 twice; the
     * copies arrive in any order, some in a run with other hours. */
    row(&b, "shop", "Deployment", "web", "app", 0, 100, 0.1, 1);
    row(&b, "shop", "Deployment", "web", "app", 1, 100, 0.4, 1);
    row(&b, "shop", "Deployment", "web", "app", 3, 300, 0.7, 1);
    row(&b, "shop", "Deployment", "web", "app", 1, 300, 0.5, 1); /* newest hour 1 */
    row(&b, "shop", "Deployment", "web", "app", 2, 100, 0.2, 1);
    row(&b, "shop", "Deployment", "web", "app", 1, 200, 0.45, 1);
    row(&b, "shop", "Deployment", "web", "app", 3, 200, 0.6, 1);
    parse_into(&b, &in);

    assert_int_equal(in.n_c, 1);
    c = &in.c[0];
    assert_int_equal(c->n_hours, 4);
    assert_int_equal(in.n_hours, 4);
    for (int k = 0; k < 4; k++)
        assert_int_equal(c->hours[k].start, H0 + k * 3600);
    assert_float_equal(c->hours[1].cpu_mean_cores, 0.5, 0);
    assert_int_equal(c->hours[1].cpu_hist[0].count, 50);
    assert_float_equal(c->hours[3].cpu_mean_cores, 0.7, 0);
    assert_int_equal(c->hours[3].oom_kills, 1); /* once, not twice */
    assert_float_equal(c->current.cpu_request_cores, 3.25, 0);
    adv_input_free(&in); /* parsing freed b.data */
}

static void covered_seconds_reach_the_engine(void **state)
{
    body_t b;
    adv_input_t in = {0};
    const adv_container_in_t *c;

    (void)state;
    open_body(&b);
    row(&b, "shop", "Deployment", "web", "app", 2, 10, 0.1, 3);
    row(&b, "shop", "Deployment", "web", "app", 0, 10, 0.1, 3);
    row(&b, "shop", "Deployment", "web", "app", 1, 10, 0.1, 2);
    parse_into(&b, &in);
    assert_int_equal(in.n_c, 1);
    c = &in.c[0];
    assert_int_equal(c->n_hours, 3);
    assert_true(c->hours[0].covered_s == 1800.0); /* 3 pods x 600 s */
    assert_true(c->hours[1].covered_s == 1200.0);
    assert_true(c->hours[2].covered_s == 0.0); /* engine: windows x 60 */
    adv_input_free(&in);                       /* parsing freed b.data */
}

static void parts_append_in_order(void **state)
{
    body_t b1, b2;
    adv_input_t in = {0};

    (void)state;
    open_body(&b1);
    row(&b1, "a", "Deployment", "x", "main", 0, 1, 0.1, 1);
    parse_into(&b1, &in);
    open_body(&b2);
    row(&b2, "b", "Deployment", "x", "main", 0, 1, 0.2, 1);
    row(&b2, "b", "Deployment", "x", "main", 1, 1, 0.3, 1);
    parse_into(&b2, &in);
    assert_int_equal(in.n_w, 2);
    assert_int_equal(in.n_parts, 2);
    assert_string_equal(in.w[0].namespace_, "a");
    assert_string_equal(in.w[1].namespace_, "b");
    assert_int_equal(in.w[1].first_container, 1);
    assert_int_equal(in.c[1].n_hours, 2);
    assert_float_equal(in.c[1].hours[1].cpu_mean_cores, 0.3, 0);
    adv_input_free(&in);
}

/* Parses the body less its last `cut` bytes. */
static int parse_status(body_t *b, size_t cut)
{
    adv_hourly_part_t *p = NULL;
    int r;

    close_body(b);
    r = adv_hourly_parse(b->data, b->len - cut, FROM, TO, &p);
    if (r == 0) {
        adv_hourly_part_free(p); /* the body was freed */
        return 0;
    }
    assert_null(p);
    free(b->data);
    return r;
}

static void answers_that_are_not_ours_are_refused(void **state)
{
    body_t b;

    (void)state;
    open_body(&b); /* an hour outside the range asked for */
    row(&b, "shop", "Deployment", "web", "app", 200, 1, 0.1, 1);
    assert_int_equal(parse_status(&b, 0), -EBADMSG);

    open_body(&b); /* cut short */
    row(&b, "shop", "Deployment", "web", "app", 0, 1, 0.1, 1);
    assert_int_equal(parse_status(&b, 3), -EBADMSG);

    open_body(&b); /* a mid-stream exception appended after the first rows */
    row(&b, "shop", "Deployment", "web", "app", 0, 1, 0.1, 1);
    fputs("Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded: "
          "would use 9.31 GiB, e.what() = DB::Exception\n",
          b.f);
    assert_int_equal(parse_status(&b, 0), -EBADMSG);

    open_body(&b); /* index and count arrays of different lengths */
    put_str(&b, "prod");
    for (int i = 0; i < 4; i++)
        put_str(&b, "x");
    for (int i = 0; i < 3; i++)
        put_u32(&b, (uint32_t)H0);
    for (int i = 0; i < 5; i++)
        put_u64(&b, 0);
    put_leb(&b, 1);
    put(&b, "\x01\x00", 2);
    put_leb(&b, 2);
    put_u64(&b, 0);
    assert_int_equal(parse_status(&b, 0), -EBADMSG);

    open_body(&b); /* empty: no rows, no error */
    assert_int_equal(parse_status(&b, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_come_out_in_key_and_hour_order),
        cmocka_unit_test(a_re_rolled_hour_counts_once_with_the_newest_rollup),
        cmocka_unit_test(covered_seconds_reach_the_engine),
        cmocka_unit_test(parts_append_in_order),
        cmocka_unit_test(answers_that_are_not_ours_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
