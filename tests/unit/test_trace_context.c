/* Unit tests for libkopt/trace_context.c: traceparent parsing and writing,
 * ids, the batch derivation, and trace ids in log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include <kopt/log.h>
#include <kopt/trace.h>

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, kopt_trace_ctx_t *c)
{
    return kopt_traceparent_parse(s, strlen(s), c);
}

static void parses_the_spec_example(void **state)
{
    kopt_trace_ctx_t c;
    char out[KOPT_TRACEPARENT_LEN + 1];

    (void)state;
    assert_int_equal(parse(GOOD, &c), 0);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[0], 0x00);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, KOPT_TRACE_FLAG_SAMPLED);
    kopt_traceparent_format(&c, out);
    assert_string_equal(out, GOOD);
}

static void refuses_what_the_spec_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "00",
        /* upper-case hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        /* all-zero ids */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* lengths */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        /* version ff, separators, non-hex */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* a later version may only append "-..." */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
    };
    kopt_trace_ctx_t c;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &c) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(kopt_traceparent_parse(NULL, 0, &c), -EINVAL);
}

static void later_versions_and_flags(void **state)
{
    kopt_trace_ctx_t c;

    (void)state;
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_int_equal(c.flags, 0);
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what", &c), 0);
    assert_int_equal(c.flags, 3);
    /* A length that is not the string's: only `len` bytes count. */
    assert_int_equal(kopt_traceparent_parse(GOOD "junk", KOPT_TRACEPARENT_LEN, &c), 0);
}

static void random_ids_are_nonzero_and_differ(void **state)
{
    uint8_t a[KOPT_TRACE_ID_LEN], b[KOPT_TRACE_ID_LEN], zero[KOPT_TRACE_ID_LEN] = {0};

    (void)state;
    assert_int_equal(kopt_trace_random_id(a, sizeof(a)), 0);
    assert_int_equal(kopt_trace_random_id(b, sizeof(b)), 0);
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
}

static void batch_ids_derive_from_identity(void **state)
{
    kopt_trace_ctx_t a, again, other_seq, other_agent;
    char tp[KOPT_TRACEPARENT_LEN + 1];

    (void)state;
    kopt_trace_batch_ctx("agent-1", 1700000000000000000ull, 7, &a);
    kopt_trace_batch_ctx("agent-1", 1700000000000000000ull, 7, &again);
    kopt_trace_batch_ctx("agent-1", 1700000000000000000ull, 8, &other_seq);
    kopt_trace_batch_ctx("agent-2", 1700000000000000000ull, 7, &other_agent);
    assert_memory_equal(&a, &again, sizeof(a));
    assert_memory_not_equal(a.trace_id, other_seq.trace_id, KOPT_TRACE_ID_LEN);
    assert_memory_not_equal(a.trace_id, other_agent.trace_id, KOPT_TRACE_ID_LEN);
    assert_int_equal(a.flags, KOPT_TRACE_FLAG_SAMPLED);
    /* A valid traceparent, as ingest would see it. */
    kopt_traceparent_format(&a, tp);
    assert_int_equal(parse(tp, &again), 0);
    assert_memory_equal(&a, &again, sizeof(a));
    /* Pinned (computed with Python's hashlib from the documented input,
     * docs/observability.md): a change would split the trace of a batch
     * that an upgraded agent replays from its spool. */
    kopt_trace_batch_ctx("a", 1, 2, &a);
    kopt_traceparent_format(&a, tp);
    assert_string_equal(tp, "00-0b88d57bc371fe5c17230b161738b470-a107976900e7eb0c-01");
}

static void log_lines_carry_the_current_span(void **state)
{
    char buf[4096];
    int fds[2];
    ssize_t n;
    kopt_trace_ctx_t c;
    json_t *j;

    (void)state;
    assert_int_equal(parse(GOOD, &c), 0);
    assert_int_equal(pipe(fds), 0);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, fds[1]);
    assert_null(kopt_trace_set_current(&c));
    kopt_log_info("inside", KOPT_INT("n", 1));
    assert_ptr_equal(kopt_trace_set_current(NULL), &c);
    kopt_log_info("outside");
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    assert_true(n > 0);
    buf[n] = '\0';
    *strchr(buf, '\n') = '\0';
    j = json_loads(buf, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(j, "span_id")), "00f067aa0ba902b7");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 1);
    json_decref(j);
    j = json_loads(buf + strlen(buf) + 1, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j);
    assert_null(json_object_get(j, "trace_id"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_spec_example),
        cmocka_unit_test(refuses_what_the_spec_refuses),
        cmocka_unit_test(later_versions_and_flags),
        cmocka_unit_test(random_ids_are_nonzero_and_differ),
        cmocka_unit_test(batch_ids_derive_from_identity),
        cmocka_unit_test(log_lines_carry_the_current_span),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
