/* Unit tests for libkopt/trace_export.c against the harness's OTLP receiver
 * on loopback: spans as OTLP JSON with their parent links, off by default,
 * and drops (counted) rather than waits when the endpoint is away, refuses,
 * or is too slow for the queue. The exporter is process-wide, so the tests
 * run in order and each sets it up and shuts it down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kopt/metrics.h>
#include <kopt/trace.h>

#include "harness.h"

/* The spans the receiver has once it has at least `n`, or after 10 s. */
static json_t *wait_spans(kopt_test_otlp_t *o, size_t n)
{
    double end = kopt_test_now() + 10;
    json_t *spans;

    for (;;) {
        spans = kopt_test_otlp_spans(o);
        if (json_array_size(spans) >= n || kopt_test_now() > end)
            return spans;
        json_decref(spans);
        kopt_test_sleep_ms(20);
    }
}

static json_t *find(json_t *spans, const char *name)
{
    size_t i;
    json_t *s;

    json_array_foreach(spans, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return s;
    }
    return NULL;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static double metric(kopt_metrics_t *m, const char *sample)
{
    char *text = NULL, *p;
    size_t len;
    double v = -1;

    assert_int_equal(kopt_metrics_expose(m, &text, &len), 0);
    for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, sample, strlen(sample)) == 0 && p[strlen(sample)] == ' ') {
            v = strtod(p + strlen(sample) + 1, NULL);
            break;
        }
    }
    free(text);
    return v;
}

static void off_by_default(void **state)
{
    kopt_span_t s;
    char tp[KOPT_TRACEPARENT_LEN + 1];

    (void)state;
    assert_false(kopt_trace_enabled());
    kopt_span_start(&s, "nothing", KOPT_SPAN_INTERNAL, NULL);
    assert_false(s.active);
    kopt_span_traceparent(&s, tp);
    assert_string_equal(tp, "");
    kopt_span_end(&s, 0, NULL);
    /* No endpoint: setup succeeds and leaves tracing off. */
    kopt_trace_opts_t o = {.endpoint = ""};
    assert_int_equal(kopt_trace_setup(&o, NULL), 0);
    assert_false(kopt_trace_enabled());
    kopt_trace_shutdown();
}

static void exports_spans_with_parent_links(void **state)
{
    kopt_test_otlp_t *rx = NULL;
    kopt_metrics_t *m = NULL;
    kopt_span_t root, child;
    kopt_trace_ctx_t remote;
    char tp[KOPT_TRACEPARENT_LEN + 1], hex[40];
    json_t *spans, *a, *b, *attr;

    (void)state;
    assert_int_equal(kopt_test_otlp_start(&rx), 0);
    assert_int_equal(kopt_metrics_new(&m), 0);
    kopt_trace_opts_t o = {
        .endpoint = kopt_test_otlp_url(rx), .service = "kopt-test", .flush_ms = 100};
    assert_int_equal(kopt_trace_setup(&o, m), 0);
    assert_true(kopt_trace_enabled());

    kopt_span_start(&root, "root.op", KOPT_SPAN_SERVER, NULL);
    assert_true(root.active);
    kopt_span_attr(&root, "k", "v");
    kopt_span_traceparent(&root, tp);
    assert_int_equal(kopt_traceparent_parse(tp, strlen(tp), &remote), 0); /* the next hop */
    kopt_span_start(&child, "child.op", KOPT_SPAN_CLIENT, &remote);
    kopt_span_end(&child, 1, "it broke");
    kopt_span_end(&root, 0, NULL);
    /* A parent that is not sampled: nothing recorded. */
    remote.flags = 0;
    kopt_span_start(&child, "unsampled", KOPT_SPAN_INTERNAL, &remote);
    assert_false(child.active);

    spans = wait_spans(rx, 2);
    assert_int_equal(json_array_size(spans), 2);
    a = find(spans, "root.op");
    b = find(spans, "child.op");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(str(a, "service"), "kopt-test");
    kopt_trace_hex(root.ctx.trace_id, KOPT_TRACE_ID_LEN, hex);
    assert_string_equal(str(a, "traceId"), hex);
    assert_string_equal(str(b, "traceId"), hex);
    kopt_trace_hex(root.ctx.span_id, KOPT_SPAN_ID_LEN, hex);
    assert_string_equal(str(a, "spanId"), hex);
    assert_string_equal(str(b, "parentSpanId"), hex);
    assert_null(json_object_get(a, "parentSpanId"));
    assert_int_equal(json_integer_value(json_object_get(a, "kind")), KOPT_SPAN_SERVER);
    assert_int_equal(json_integer_value(json_object_get(b, "kind")), KOPT_SPAN_CLIENT);
    /* Times are strings of Unix nanoseconds, end after start. */
    assert_non_null(str(a, "startTimeUnixNano"));
    assert_true(strtoull(str(a, "startTimeUnixNano"), NULL, 10) > 1600000000000000000ull);
    assert_true(strtoull(str(a, "endTimeUnixNano"), NULL, 10) >=
                strtoull(str(a, "startTimeUnixNano"), NULL, 10));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "status"), "code")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "status"), "code")), 2);
    assert_string_equal(str(json_object_get(b, "status"), "message"), "it broke");
    attr = json_array_get(json_object_get(a, "attributes"), 0);
    assert_string_equal(str(attr, "key"), "k");
    assert_string_equal(str(json_object_get(attr, "value"), "stringValue"), "v");
    json_decref(spans);

    kopt_trace_shutdown();
    assert_false(kopt_trace_enabled());
    assert_true(metric(m, "kopt_trace_spans_exported_total") >= 2);
    assert_true(metric(m, "kopt_trace_spans_dropped_total{reason=\"endpoint_error\"}") == 0);
    kopt_metrics_free(m);
    kopt_test_otlp_free(rx);
}

static void refused_posts_are_dropped_and_counted(void **state)
{
    kopt_test_otlp_t *rx = NULL;
    kopt_metrics_t *m = NULL;
    uint64_t before = kopt_trace_dropped("endpoint_error");
    size_t posts = 0;
    kopt_span_t s;

    (void)state;
    assert_int_equal(kopt_test_otlp_start(&rx), 0);
    kopt_test_otlp_set_status(rx, 503);
    assert_int_equal(kopt_metrics_new(&m), 0);
    kopt_trace_opts_t o = {.endpoint = kopt_test_otlp_url(rx), .flush_ms = 50};
    assert_int_equal(kopt_trace_setup(&o, m), 0);
    for (int i = 0; i < 5; i++) {
        kopt_span_start(&s, "refused", KOPT_SPAN_INTERNAL, NULL);
        kopt_span_end(&s, 0, NULL);
    }
    for (int i = 0; i < 200 && kopt_trace_dropped("endpoint_error") < before + 5; i++)
        kopt_test_sleep_ms(20);
    kopt_test_otlp_counts(rx, &posts, NULL);
    assert_true(posts >= 1);
    assert_int_equal(kopt_trace_dropped("endpoint_error"), before + 5);
    assert_true(metric(m, "kopt_trace_spans_dropped_total{reason=\"endpoint_error\"}") == 5);
    kopt_trace_shutdown();
    kopt_metrics_free(m);
    kopt_test_otlp_free(rx);
}

/* A port that accepts connections and never answers: each POST waits for
 * its whole timeout, the worst case for a caller if export were inline. */
static int silent_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void a_stuck_endpoint_never_blocks_the_caller(void **state)
{
    uint64_t full0 = kopt_trace_dropped("queue_full"), err0 = kopt_trace_dropped("endpoint_error");
    char url[64];
    int port, fd = silent_listener(&port);
    double t0, took;
    kopt_span_t s;

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    kopt_trace_opts_t o = {
        .endpoint = url, .queue_max = 8, .batch_max = 4, .flush_ms = 10, .timeout_ms = 500};
    assert_int_equal(kopt_trace_setup(&o, NULL), 0);
    t0 = kopt_test_now();
    for (int i = 0; i < 1000; i++) {
        kopt_span_start(&s, "busy", KOPT_SPAN_INTERNAL, NULL);
        kopt_span_end(&s, 0, NULL);
    }
    took = kopt_test_now() - t0;
    fprintf(stderr,
            "1000 spans ended in %.1f ms with the endpoint stuck, %llu dropped as queue_full\n",
            took * 1000, (unsigned long long)(kopt_trace_dropped("queue_full") - full0));
    assert_true(took < 0.25); /* 500 ms per POST: no caller waited for one */
    /* At most queue_max + one batch in the thread's hands got through. */
    assert_true(kopt_trace_dropped("queue_full") - full0 >= 1000 - 8 - 4);
    t0 = kopt_test_now();
    kopt_trace_shutdown(); /* one failed POST, the rest dropped: bounded */
    took = kopt_test_now() - t0;
    fprintf(stderr, "shutdown took %.1f ms\n", took * 1000);
    assert_true(took < 3.0);
    assert_true(kopt_trace_dropped("endpoint_error") - err0 >= 1);
    /* Every span is accounted for: none reached the endpoint. */
    assert_int_equal(kopt_trace_dropped("queue_full") - full0 +
                         (kopt_trace_dropped("endpoint_error") - err0),
                     1000);
    close(fd);
}

static void unreachable_endpoint_drops(void **state)
{
    uint64_t err0 = kopt_trace_dropped("endpoint_error");
    char url[64];
    int port = kopt_test_free_port();
    kopt_span_t s;

    (void)state;
    assert_true(port > 0);
    snprintf(url, sizeof(url), "http://user:hunter2@127.0.0.1:%d", port); /* nobody listens */
    kopt_trace_opts_t o = {.endpoint = url, .flush_ms = 20, .timeout_ms = 500};
    assert_int_equal(kopt_trace_setup(&o, NULL), 0);
    for (int i = 0; i < 3; i++) {
        kopt_span_start(&s, "lost", KOPT_SPAN_INTERNAL, NULL);
        kopt_span_end(&s, 0, NULL);
    }
    for (int i = 0; i < 200 && kopt_trace_dropped("endpoint_error") < err0 + 3; i++)
        kopt_test_sleep_ms(20);
    assert_int_equal(kopt_trace_dropped("endpoint_error"), err0 + 3);
    kopt_trace_shutdown();
}

/* Span text is not always valid UTF-8: an error message may quote a
 * client's bytes, and the fixed-size copies may cut a character in two.
 * jansson refuses such strings, so the span used to vanish from the batch
 * while being counted as exported. Now the bad bytes become '?'. */
static void spans_with_invalid_utf8_are_exported(void **state)
{
    kopt_test_otlp_t *rx = NULL;
    char long_msg[200];
    kopt_span_t a, b;
    json_t *spans, *sa, *sb, *attr;
    uint64_t exported0 = kopt_trace_exported();

    (void)state;
    assert_int_equal(kopt_test_otlp_start(&rx), 0);
    kopt_trace_opts_t o = {.endpoint = kopt_test_otlp_url(rx), .flush_ms = 50};
    assert_int_equal(kopt_trace_setup(&o, NULL), 0);
    kopt_span_start(&a, "bad.\xff.name", KOPT_SPAN_SERVER, NULL);
    kopt_span_attr(&a, "k", "v\xc3");
    kopt_span_end(&a, 1, "unknown field \"\xfe\xff\"");
    /* "é" (2 bytes) across the end of the 96-byte status copy. */
    memset(long_msg, 'x', sizeof(long_msg));
    memcpy(long_msg + 94, "\xc3\xa9", 2);
    long_msg[120] = '\0';
    kopt_span_start(&b, "cut", KOPT_SPAN_SERVER, NULL);
    kopt_span_end(&b, 1, long_msg);

    spans = wait_spans(rx, 2);
    assert_int_equal(json_array_size(spans), 2);
    sa = find(spans, "bad.?.name");
    sb = find(spans, "cut");
    assert_non_null(sa);
    assert_non_null(sb);
    assert_string_equal(str(json_object_get(sa, "status"), "message"), "unknown field \"??\"");
    attr = json_array_get(json_object_get(sa, "attributes"), 0);
    assert_string_equal(str(json_object_get(attr, "value"), "stringValue"), "v?");
    assert_int_equal(strlen(str(json_object_get(sb, "status"), "message")), 95);
    json_decref(spans);
    kopt_trace_shutdown();
    assert_int_equal(kopt_trace_exported() - exported0, 2);
    kopt_test_otlp_free(rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(off_by_default),
        cmocka_unit_test(exports_spans_with_parent_links),
        cmocka_unit_test(spans_with_invalid_utf8_are_exported),
        cmocka_unit_test(refused_posts_are_dropped_and_counted),
        cmocka_unit_test(a_stuck_endpoint_never_blocks_the_caller),
        cmocka_unit_test(unreachable_endpoint_drops),
    };

    return cmocka_run_group_tests(tests, NULL, kopt_test_teardown_all);
}
