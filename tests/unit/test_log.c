/* Unit tests for libkopt/log.c: JSON shape, text format, levels, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kopt/log.h>

/* Logs through a pipe and returns what one call wrote. */
static char captured[8192];

static const char *capture_begin(int *fds, kopt_log_format_t fmt)
{
    assert_int_equal(pipe(fds), 0);
    kopt_log_setup("test", fmt, KOPT_LOG_INFO, fds[1]);
    return captured;
}

static const char *capture_end(int *fds)
{
    ssize_t n;

    close(fds[1]);
    n = read(fds[0], captured, sizeof(captured) - 1);
    close(fds[0]);
    captured[n > 0 ? n : 0] = '\0';
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    return captured;
}

static void log_json_line_has_fields(void **state)
{
    int fds[2];
    json_error_t err;
    json_t *o;

    (void)state;
    capture_begin(fds, KOPT_LOG_FORMAT_JSON);
    kopt_log_info("listening \"now\"", KOPT_STR("addr", "127.0.0.1:7400"), KOPT_INT("port", -7),
                  KOPT_UINT("n", 4000000000ULL), KOPT_DBL("ratio", 0.5), KOPT_BOOL("tls", 1),
                  KOPT_ERR(-ECONNREFUSED));
    capture_end(fds);
    assert_non_null(strchr(captured, '\n'));
    assert_int_equal(strchr(captured, '\n')[1], '\0');
    o = json_loads(captured, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "component")), "test");
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "listening \"now\"");
    assert_string_equal(json_string_value(json_object_get(o, "addr")), "127.0.0.1:7400");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), -7);
    assert_true(json_is_true(json_object_get(o, "tls")));
    assert_string_equal(json_string_value(json_object_get(o, "error")), strerror(ECONNREFUSED));
    assert_non_null(json_object_get(o, "ts"));
    json_decref(o);
}

static void log_never_prints_secrets(void **state)
{
    int fds[2];

    (void)state;
    capture_begin(fds, KOPT_LOG_FORMAT_JSON);
    kopt_log_warn("auth", KOPT_SECRET("whatever"), KOPT_STR("clickhouse-password", "hunter2"),
                  KOPT_STR("authorization", "Bearer abc123"), KOPT_STR("tls-key", "PEMDATA"),
                  KOPT_STR("keepalive", "10s"));
    capture_end(fds);
    assert_null(strstr(captured, "hunter2"));
    assert_null(strstr(captured, "abc123"));
    assert_null(strstr(captured, "PEMDATA"));
    assert_non_null(strstr(captured, "\"keepalive\":\"10s\""));
    assert_non_null(strstr(captured, "[redacted]"));
}

static void log_below_level_is_silent(void **state)
{
    int fds[2];

    (void)state;
    capture_begin(fds, KOPT_LOG_FORMAT_JSON);
    kopt_log_debug("hidden");
    capture_end(fds);
    assert_string_equal(captured, "");
}

static void log_text_format_reads_as_a_sentence(void **state)
{
    int fds[2];

    (void)state;
    capture_begin(fds, KOPT_LOG_FORMAT_TEXT);
    kopt_log_error("publish failed", KOPT_STR("subject", "kopt.metrics.c1.n1"));
    capture_end(fds);
    assert_non_null(strstr(captured, " error test: publish failed subject=kopt.metrics.c1.n1\n"));
}

static void log_escapes_control_bytes_and_truncates_to_valid_json(void **state)
{
    static char big[6000];
    int fds[2];
    json_error_t err;
    json_t *o;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    capture_begin(fds, KOPT_LOG_FORMAT_JSON);
    kopt_log_info("bad\x01input\n", KOPT_STR("big", big));
    capture_end(fds);
    o = json_loads(captured, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "bad\x01input\n");
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}

/* A value from the outside (a workload name, a header) must not forge log
 * lines: text escapes control bytes and quotes values with spaces; JSON
 * escapes them too, and stays valid JSON with bytes that are not UTF-8. */
static void log_escapes_attacker_text_in_both_formats(void **state)
{
    const char *evil = "web\n2030-01-01T00:00:00.000Z info  test: admin login ok user=root "
                       "\x1b[2J\x1b[31mred\r\x9b"
                       "1m\xe2\x80\xa8"
                       "end\\";
    int fds[2];
    json_error_t err;
    json_t *o;

    (void)state;
    capture_begin(fds, KOPT_LOG_FORMAT_TEXT);
    kopt_log_warn("bad name\nforged", KOPT_STR("name", evil), KOPT_STR("ok", "plain-value"));
    capture_end(fds);
    /* One line, no raw control byte, no raw C1 or U+2028. */
    assert_non_null(strchr(captured, '\n'));
    assert_int_equal(strchr(captured, '\n')[1], '\0');
    for (const char *p = captured; *p != '\n'; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    assert_null(strstr(captured, "\x9b"));
    assert_null(strstr(captured, "\xe2\x80\xa8"));
    assert_non_null(strstr(captured, "bad name\\nforged"));
    assert_non_null(strstr(captured, " name=\"web\\n2030-01-01T00:00:00.000Z info  test: admin "
                                     "login ok user=root \\x1b[2J\\x1b[31mred\\r\\x9b1m"
                                     "\\u2028end\\\\\" ok=plain-value\n"));

    capture_begin(fds, KOPT_LOG_FORMAT_JSON);
    kopt_log_warn("bad name", KOPT_STR("name", evil));
    capture_end(fds);
    assert_int_equal(strchr(captured, '\n')[1], '\0');
    for (const char *p = captured; *p != '\n'; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    assert_null(strstr(captured, "\xe2\x80\xa8"));
    o = json_loads(captured, 0, &err);
    assert_non_null(o);
    assert_non_null(strstr(json_string_value(json_object_get(o, "name")), "\x1b[2J"));
    json_decref(o);
}

static void log_parses_levels_and_formats(void **state)
{
    kopt_log_level_t l;
    kopt_log_format_t f;

    (void)state;
    assert_int_equal(kopt_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, KOPT_LOG_WARN);
    assert_int_equal(kopt_log_level_parse("loud", &l), -EINVAL);
    assert_int_equal(kopt_log_format_parse("text", &f), 0);
    assert_int_equal(f, KOPT_LOG_FORMAT_TEXT);
    assert_int_equal(kopt_log_format_parse("xml", &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_json_line_has_fields),
        cmocka_unit_test(log_never_prints_secrets),
        cmocka_unit_test(log_below_level_is_silent),
        cmocka_unit_test(log_text_format_reads_as_a_sentence),
        cmocka_unit_test(log_escapes_control_bytes_and_truncates_to_valid_json),
        cmocka_unit_test(log_escapes_attacker_text_in_both_formats),
        cmocka_unit_test(log_parses_levels_and_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
