/* Unit tests for libkopt/metrics.c and metrics_process.c: exact exposition text,
 * escaping, validation, concurrent updates, the child bound, collectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/metrics.h>

static char *expose(kopt_metrics_t *m)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(kopt_metrics_expose(m, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void metrics_counter_and_gauge_exact_text(void **state)
{
    kopt_metrics_t *m;
    kopt_metric_family_t *c, *g;
    char *text;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(
        kopt_metrics_counter(m, "kopt_test_events_total", "Events,\nby \\kind.", "kind,result", &c),
        0);
    assert_int_equal(kopt_metrics_gauge(m, "kopt_test_depth", "Queue depth.", NULL, &g), 0);
    kopt_metric_counter_inc(kopt_metric_counter_with(c, "b", "ok"));
    kopt_metric_counter_add(kopt_metric_counter_with(c, "a\"q\\x\ny", "err"), 2.5);
    kopt_metric_counter_add(kopt_metric_counter_with(c, "b", "ok"), 1);
    kopt_metric_counter_add(kopt_metric_counter_with(c, "b", "ok"), -5); /* ignored */
    kopt_metric_gauge_set(kopt_metric_gauge_with(g), -3);
    kopt_metric_gauge_add(kopt_metric_gauge_with(g), 0.125);
    text = expose(m);
    assert_string_equal(text,
                        "# HELP kopt_metrics_dropped_series_total Label sets refused "
                        "because a family reached its child limit.\n"
                        "# TYPE kopt_metrics_dropped_series_total counter\n"
                        "kopt_metrics_dropped_series_total 0\n"
                        "# HELP kopt_test_depth Queue depth.\n"
                        "# TYPE kopt_test_depth gauge\n"
                        "kopt_test_depth -2.875\n"
                        "# HELP kopt_test_events_total Events,\\nby \\\\kind.\n"
                        "# TYPE kopt_test_events_total counter\n"
                        "kopt_test_events_total{kind=\"a\\\"q\\\\x\\ny\",result=\"err\"} 2.5\n"
                        "kopt_test_events_total{kind=\"b\",result=\"ok\"} 2\n");
    free(text);
    kopt_metrics_free(m);
}

static void metrics_histogram_exact_text(void **state)
{
    static const double bounds[] = {0.125, 1, 10};
    kopt_metrics_t *m;
    kopt_metric_family_t *h;
    kopt_metric_histogram_t *hc;
    char *text;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(
        kopt_metrics_histogram(m, "kopt_test_latency_seconds", "Latency.", "op", bounds, 3, &h), 0);
    hc = kopt_metric_histogram_with(h, "get");
    kopt_metric_histogram_observe(hc, 0.25);
    kopt_metric_histogram_observe(hc, 0.125); /* le is inclusive */
    kopt_metric_histogram_observe(hc, 4);
    kopt_metric_histogram_observe(hc, 64);
    kopt_metric_histogram_observe(hc, NAN); /* ignored */
    text = expose(m);
    assert_non_null(strstr(text, "# HELP kopt_test_latency_seconds Latency.\n"
                                 "# TYPE kopt_test_latency_seconds histogram\n"
                                 "kopt_test_latency_seconds_bucket{op=\"get\",le=\"0.125\"} 1\n"
                                 "kopt_test_latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                                 "kopt_test_latency_seconds_bucket{op=\"get\",le=\"10\"} 3\n"
                                 "kopt_test_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                                 "kopt_test_latency_seconds_sum{op=\"get\"} 68.375\n"
                                 "kopt_test_latency_seconds_count{op=\"get\"} 4\n"));
    free(text);
    kopt_metrics_free(m);
}

static void metrics_validates_names_and_reuses_families(void **state)
{
    static const double good[] = {1, 2}, bad[] = {2, 1};
    kopt_metrics_t *m;
    kopt_metric_family_t *a, *b;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_metrics_counter(m, "1bad", "", NULL, &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "bad-name", "", NULL, &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "", "", NULL, &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "ok_total", "", "a,a", &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "ok_total", "", "__x", &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "ok_total", "", "a:b", &a), -EINVAL);
    assert_int_equal(kopt_metrics_histogram(m, "h_seconds", "", "le", good, 2, &a), -EINVAL);
    assert_int_equal(kopt_metrics_histogram(m, "h_seconds", "", NULL, bad, 2, &a), -EINVAL);
    assert_int_equal(kopt_metrics_histogram(m, "h_seconds", "", NULL, good, 0, &a), -EINVAL);
    assert_int_equal(kopt_metrics_counter(m, "ns:ok_total", "x", "a,b", &a), 0);
    assert_int_equal(kopt_metrics_counter(m, "ns:ok_total", "x", "a,b", &b), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(kopt_metrics_counter(m, "ns:ok_total", "x", "a", &b), -EEXIST);
    assert_int_equal(kopt_metrics_gauge(m, "ns:ok_total", "x", "a,b", &b), -EEXIST);
    /* A family of the wrong type still hands out a usable handle. */
    kopt_metric_gauge_set(kopt_metric_gauge_with(a, "x", "y"), 1);
    kopt_metric_counter_inc(kopt_metric_counter_with(NULL));
    kopt_metrics_free(m);
    kopt_metrics_free(NULL);
}

typedef struct {
    kopt_metric_counter_t *c;
    kopt_metric_gauge_t *g;
    kopt_metric_histogram_t *h;
} shared_t;

#define THREADS 4
#define ROUNDS 100000

static void *hammer(void *arg)
{
    shared_t *s = arg;

    for (int i = 0; i < ROUNDS; i++) {
        kopt_metric_counter_inc(s->c);
        kopt_metric_gauge_add(s->g, 1);
        kopt_metric_histogram_observe(s->h, (double)(i % 3));
    }
    return NULL;
}

static void metrics_concurrent_updates_are_exact(void **state)
{
    static const double bounds[] = {0.5, 1.5};
    kopt_metrics_t *m;
    kopt_metric_family_t *c, *g, *h;
    pthread_t t[THREADS];
    shared_t s;
    char *text, want[256];

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_metrics_counter(m, "c_total", "", "k", &c), 0);
    assert_int_equal(kopt_metrics_gauge(m, "g", "", NULL, &g), 0);
    assert_int_equal(kopt_metrics_histogram(m, "h", "", NULL, bounds, 2, &h), 0);
    s.c = kopt_metric_counter_with(c, "v");
    s.g = kopt_metric_gauge_with(g);
    s.h = kopt_metric_histogram_with(h);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(kopt_metric_counter_value(s.c) == THREADS * ROUNDS);
    assert_true(kopt_metric_gauge_value(s.g) == THREADS * ROUNDS);
    text = expose(m);
    snprintf(want, sizeof(want), "h_count %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "h_bucket{le=\"0.5\"} %d\n", THREADS * (ROUNDS / 3 + 1));
    assert_non_null(strstr(text, want));
    free(text);
    kopt_metrics_free(m);
}

static void metrics_children_are_bounded(void **state)
{
    kopt_metrics_t *m;
    kopt_metric_family_t *f, *d;
    char v[32], *text;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_metrics_counter(m, "pods_total", "", "pod", &f), 0);
    for (int i = 0; i < KOPT_METRICS_MAX_CHILDREN + 5; i++) {
        snprintf(v, sizeof(v), "pod-%05d", i);
        kopt_metric_counter_inc(kopt_metric_counter_with(f, v));
    }
    /* Existing children are still found after the bound was reached. */
    kopt_metric_counter_inc(kopt_metric_counter_with(f, "pod-00000"));
    assert_int_equal(kopt_metrics_counter(m, "kopt_metrics_dropped_series_total",
                                          "Label sets refused because a family reached its "
                                          "child limit.",
                                          NULL, &d),
                     0);
    assert_true(kopt_metric_counter_value(kopt_metric_counter_with(d)) == 5);
    text = expose(m);
    assert_non_null(strstr(text, "pods_total{pod=\"pod-00000\"} 2\n"));
    assert_non_null(strstr(text, "pods_total{pod=\"pod-00999\"} 1\n"));
    assert_null(strstr(text, "pod-01000"));
    assert_non_null(strstr(text, "kopt_metrics_dropped_series_total 5\n"));
    free(text);
    kopt_metrics_free(m);
}

static double forty_two(void *data)
{
    return *(double *)data;
}

static void metrics_callbacks_and_process_collector(void **state)
{
    kopt_metrics_t *m;
    double v = 42;
    char *text;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_metrics_gauge_func(m, "kopt_test_queue_depth", "Depth.", forty_two, &v),
                     0);
    assert_int_equal(kopt_metrics_gauge_func(m, "kopt_test_queue_depth", "Depth.", forty_two, &v),
                     -EEXIST);
    assert_int_equal(kopt_metrics_process_register(m, "test"), 0);
    assert_int_equal(kopt_metrics_process_register(m, "test"), 0);
    v = 7;
    text = expose(m);
    assert_non_null(strstr(text, "# TYPE kopt_test_queue_depth gauge\nkopt_test_queue_depth 7\n"));
    assert_non_null(
        strstr(text, "kopt_build_info{version=\"" KOPT_VERSION "\",component=\"test\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_non_null(strstr(text, "\nprocess_max_fds "));
    assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(text, "\nprocess_virtual_memory_bytes "));
    assert_non_null(strstr(text, "\nprocess_start_time_seconds 1"));
    assert_null(strstr(text, "process_resident_memory_bytes 0\n"));
    free(text);
    kopt_metrics_free(m);
}

static void metrics_bucket_helpers(void **state)
{
    double b[4];
    size_t n;
    const double *lat = kopt_metrics_latency_buckets(&n);

    (void)state;
    assert_int_equal(n, 11);
    assert_true(lat[0] == 0.005 && lat[10] == 10);
    assert_int_equal(kopt_metrics_exponential_buckets(1024, 4, 4, b), 0);
    assert_true(b[0] == 1024 && b[3] == 65536);
    assert_int_equal(kopt_metrics_exponential_buckets(0, 2, 4, b), -EINVAL);
    assert_int_equal(kopt_metrics_exponential_buckets(1, 1, 4, b), -EINVAL);
}

/* A collector that emits into two collected families, and a counter it bumps
 * at each scrape (as the advisor counts what its cap drops). */
typedef struct {
    kopt_metric_family_t *a, *b;
    kopt_metric_counter_t *scrapes;
    int emit_b;
} coll_t;

static void collect_two(void *data, kopt_metrics_emitter_t *e)
{
    coll_t *c = data;

    kopt_metrics_emit(e, c->a, 1.5, "x\"y\\z\nw", "2");
    kopt_metrics_emit(e, c->a, 0, "a", "1");
    if (c->emit_b)
        kopt_metrics_emit(e, c->b, 7);
    kopt_metrics_emit(e, NULL, 1);       /* ignored */
    kopt_metric_counter_inc(c->scrapes); /* takes the registry mutex: not held here */
}

static void metrics_collected_families(void **state)
{
    kopt_metrics_t *m;
    kopt_metric_family_t *f, *twin;
    coll_t c = {0};
    char *text;

    (void)state;
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(kopt_metrics_gauge_collected(m, "kopt_test_a", "A.", "k,n", &c.a), 0);
    assert_int_equal(kopt_metrics_gauge_collected(m, "kopt_test_b", "B.", NULL, &c.b), 0);
    assert_int_equal(kopt_metrics_gauge_collected(m, "kopt_test_a", "A.", "k,n", &twin), 0);
    assert_ptr_equal(twin, c.a);
    /* The same name as a stored gauge is a different definition. */
    assert_int_equal(kopt_metrics_gauge(m, "kopt_test_a", "A.", "k,n", &twin), -EEXIST);
    assert_int_equal(kopt_metrics_counter(m, "kopt_test_scrapes_total", "S.", NULL, &f), 0);
    c.scrapes = kopt_metric_counter_with(f);
    /* Children of a collected family count nowhere. */
    kopt_metric_gauge_set(kopt_metric_gauge_with(c.a, "q", "r"), 5);
    assert_int_equal(kopt_metrics_add_collector(m, NULL, NULL), -EINVAL);
    assert_int_equal(kopt_metrics_add_collector(m, collect_two, &c), 0);
    text = expose(m);
    assert_string_equal(text, "# HELP kopt_metrics_dropped_series_total Label sets refused "
                              "because a family reached its child limit.\n"
                              "# TYPE kopt_metrics_dropped_series_total counter\n"
                              "kopt_metrics_dropped_series_total 0\n"
                              "# HELP kopt_test_a A.\n"
                              "# TYPE kopt_test_a gauge\n"
                              "kopt_test_a{k=\"x\\\"y\\\\z\\nw\",n=\"2\"} 1.5\n"
                              "kopt_test_a{k=\"a\",n=\"1\"} 0\n"
                              "# HELP kopt_test_b B.\n" /* no sample yet: named all the same */
                              "# TYPE kopt_test_b gauge\n"
                              "# HELP kopt_test_scrapes_total S.\n"
                              "# TYPE kopt_test_scrapes_total counter\n"
                              "kopt_test_scrapes_total 1\n");
    free(text);
    c.emit_b = 1;
    text = expose(m);
    assert_non_null(strstr(text, "# TYPE kopt_test_b gauge\nkopt_test_b 7\n"));
    assert_non_null(strstr(text, "kopt_test_scrapes_total 2\n"));
    free(text);
    kopt_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_counter_and_gauge_exact_text),
        cmocka_unit_test(metrics_histogram_exact_text),
        cmocka_unit_test(metrics_validates_names_and_reuses_families),
        cmocka_unit_test(metrics_concurrent_updates_are_exact),
        cmocka_unit_test(metrics_children_are_bounded),
        cmocka_unit_test(metrics_callbacks_and_process_collector),
        cmocka_unit_test(metrics_bucket_helpers),
        cmocka_unit_test(metrics_collected_families),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
