/* libkopt's pure batch checks, which kopt-ingest and kopt-aggregator share:
 * Kubernetes names, the agent identity from its certificate, batch
 * validation with a message naming the bad field (and quoting a bad name
 * printably), the split of windows too old to keep from the rest of their
 * batch, and the subject a batch travels on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include <kopt/batch_subject.h>
#include <kopt/batch_validate.h>
#include <kopt/identity.h>
#include <kopt/names.h>

#define NOW 1800000000

static Google__Protobuf__Timestamp ts_created, ts_start, ts_end;
static Kopt__V1__ContainerWindow win, *wins[1];
static Kopt__V1__MetricBatch batch;
static kopt_batch_limits_t lim;

static void stamp(Google__Protobuf__Timestamp *t, int64_t s)
{
    google__protobuf__timestamp__init(t);
    t->seconds = s;
}

static int setup(void **state)
{
    (void)state;
    kopt_batch_limits_default(&lim);
    stamp(&ts_created, NOW - 5);
    stamp(&ts_start, NOW - 65);
    stamp(&ts_end, NOW - 5);
    kopt__v1__container_window__init(&win);
    win.namespace_ = "shop";
    win.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    win.workload_name = "checkout";
    win.pod = "checkout-7d9f8-abcde";
    win.container = "app";
    win.window_start = &ts_start;
    win.window_end = &ts_end;
    win.cpu_usage_mean_cores = 0.25;
    win.cpu_usage_peak_cores = 0.8;
    win.memory_working_set_peak_bytes = 300 << 20;
    win.memory_working_set_last_bytes = 200 << 20;
    wins[0] = &win;
    kopt__v1__metric_batch__init(&batch);
    batch.cluster = "prod-eu";
    batch.node = "ip-10-0-0-1.eu-west-1.compute.internal";
    batch.agent_id = "agent-7";
    batch.epoch = 1799999000000000000ULL;
    batch.seq = 42;
    batch.created = &ts_created;
    batch.n_windows = 1;
    batch.windows = wins;
    return 0;
}

/* Validates and returns the problem message ("" when valid). */
static const char *problem(void)
{
    static kopt_batch_problem_t p;

    memset(&p, 0, sizeof(p));
    if (kopt_batch_validate(&batch, &lim, NOW, &p) == 0)
        return "";
    assert_non_null(p.reason);
    return p.message;
}

static void names_follow_kubernetes_rules(void **state)
{
    char tok[64];

    (void)state;
    assert_int_equal(kopt_name_check("kube-system", KOPT_NAME_LABEL), 0);
    assert_int_equal(kopt_name_check("Kube", KOPT_NAME_LABEL), -EINVAL);
    assert_int_equal(kopt_name_check("-a", KOPT_NAME_LABEL), -EINVAL);
    assert_int_equal(kopt_name_check("a.b", KOPT_NAME_LABEL), -EINVAL);
    assert_int_equal(kopt_name_check("node-1.example.com", KOPT_NAME_SUBDOMAIN), 0);
    assert_int_equal(kopt_name_check("a..b", KOPT_NAME_SUBDOMAIN), -EINVAL);
    assert_int_equal(kopt_name_check("", KOPT_NAME_SUBDOMAIN), -EINVAL);
    assert_int_equal(
        kopt_name_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                        KOPT_NAME_LABEL),
        -EINVAL);
    assert_int_equal(kopt_name_check("Agent_7.x-y", KOPT_NAME_AGENT_ID), 0);
    assert_int_equal(kopt_name_check("a/b", KOPT_NAME_AGENT_ID), -EINVAL);
    assert_int_equal(kopt_name_subject_token("node-1.example.com", tok, sizeof(tok)), 0);
    assert_string_equal(tok, "node-1_example_com");
    assert_int_equal(kopt_name_subject_token("node-1.example.com", tok, 5), -E2BIG);
}

static void identity_comes_from_the_spiffe_uri(void **state)
{
    kopt_identity_t id;

    (void)state;
    assert_int_equal(kopt_identity_parse("spiffe://kopt/cluster/prod-eu/agent/agent-7", &id), 0);
    assert_string_equal(id.cluster, "prod-eu");
    assert_string_equal(id.agent_id, "agent-7");
    assert_int_equal(kopt_identity_parse("spiffe://kopt/service/advisor", &id), -EINVAL);
    assert_int_equal(kopt_identity_parse("spiffe://kopt/cluster//agent/x", &id), -EINVAL);
    assert_int_equal(kopt_identity_parse("spiffe://kopt/cluster/Prod/agent/x", &id), -EINVAL);
    assert_int_equal(kopt_identity_parse("spiffe://kopt/cluster/prod/agent/", &id), -EINVAL);
    assert_int_equal(kopt_identity_parse("spiffe://other/cluster/prod/agent/x", &id), -EINVAL);
}

static void a_good_batch_passes(void **state)
{
    (void)state;
    assert_string_equal(problem(), "");
}

static void bad_identity_fields_are_named(void **state)
{
    (void)state;
    batch.cluster = "";
    assert_string_equal(problem(), "cluster: missing");
    setup(NULL);
    batch.node = "Node_1";
    assert_non_null(strstr(problem(), "node: \"Node_1\" is not a valid name"));
    setup(NULL);
    batch.seq = 0;
    assert_string_equal(problem(), "seq: must not be 0");
    setup(NULL);
    batch.epoch = 0;
    assert_string_equal(problem(), "epoch: must not be 0");
    setup(NULL);
    batch.created = NULL;
    assert_string_equal(problem(), "created: missing");
}

/* A refused name is quoted with everything that could break a header, a
 * log line or a page (quotes, backslashes, control bytes, UTF-8) as \xHH,
 * and at most its first 64 bytes. */
static void bad_names_are_quoted_printably(void **state)
{
    char longname[200];

    (void)state;
    batch.windows[0]->pod = "<script>alert(1)</script>";
    assert_string_equal(problem(), "windows[0].pod: \"<script>alert(1)</script>\" is not a valid "
                                   "name: must start and end with a lower-case letter or digit");
    assert_string_equal(batch.windows[0]->pod, "<script>alert(1)</script>");
    setup(NULL);
    batch.cluster = "a\"b\\c\r\nd\xc3\xa9";
    assert_non_null(strstr(problem(), "cluster: \"a\\x22b\\x5cc\\x0d\\x0ad\\xc3\\xa9\" is not"));
    setup(NULL);
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    batch.node = longname;
    assert_non_null(strstr(
        problem(), "node: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" "));
}

/* One definition of a batch's subject for ingest (publishing) and the
 * aggregator (checking): names as subject tokens, so a dotted cluster or
 * node cannot pose as another one's subject. */
static void the_subject_of_a_batch(void **state)
{
    char subject[600];

    (void)state;
    assert_int_equal(kopt_batch_subject(KOPT_BATCH_SUBJECT_PREFIX, "prod-eu", "node-1.example.com",
                                        subject, sizeof(subject)),
                     0);
    assert_string_equal(subject, "kopt.metrics.prod-eu.node-1_example_com");
    assert_int_equal(kopt_batch_subject("kopt.metrics", "a.b", "n", subject, sizeof(subject)), 0);
    assert_string_equal(subject, "kopt.metrics.a_b.n");
    assert_int_equal(kopt_batch_subject("kopt.metrics", "prod", "n", subject, 19), -E2BIG);
    assert_int_equal(kopt_batch_subject("kopt.metrics", "prod", "n", subject, 20), 0);
    assert_int_equal(
        kopt_batch_subject_check("kopt.metrics.prod.node-1_x", "kopt.metrics", "prod", "node-1.x"),
        0);
    /* another cluster's subject, another node's, a dotted name split up, a
     * prefix of the right one, and junk around it */
    assert_int_equal(
        kopt_batch_subject_check("kopt.metrics.dev.node-1_x", "kopt.metrics", "prod", "node-1.x"),
        -EINVAL);
    assert_int_equal(
        kopt_batch_subject_check("kopt.metrics.prod.node-2", "kopt.metrics", "prod", "node-1.x"),
        -EINVAL);
    assert_int_equal(kopt_batch_subject_check("kopt.metrics.a.b.n", "kopt.metrics", "a.b", "n"),
                     -EINVAL);
    assert_int_equal(kopt_batch_subject_check("kopt.metrics.prod", "kopt.metrics", "prod", "n"),
                     -EINVAL);
    assert_int_equal(kopt_batch_subject_check("kopt.metrics.prod.n.x", "kopt.metrics", "prod", "n"),
                     -EINVAL);
    assert_int_equal(kopt_batch_subject_check("", "kopt.metrics", "prod", "n"), -EINVAL);
    /* '.' becomes '_', so "a.b" and "a_b" share a token. That is safe only
     * because '_' is no part of a valid cluster or node name: a batch
     * claiming cluster "a_b" is refused before its subject is compared
     * (the aggregator validates first). */
    assert_int_equal(kopt_batch_subject_check("kopt.metrics.a_b.n", "kopt.metrics", "a_b", "n"), 0);
    batch.cluster = "a_b";
    assert_non_null(strstr(problem(), "cluster: \"a_b\" is not a valid name"));
    setup(NULL);
    batch.node = "n_1";
    assert_non_null(strstr(problem(), "node: \"n_1\" is not a valid name"));
    setup(NULL);
}

static void times_must_be_sane(void **state)
{
    (void)state;
    ts_created.seconds = NOW + 3600;
    assert_string_equal(problem(), "created: 3600 s in the future (clock skew?)");
    setup(NULL);
    /* Ahead by more than the 300 s of skew: the agent's clock is wrong, and
     * that makes the whole batch invalid (unlike age, below). */
    ts_start.seconds = NOW + 301;
    ts_end.seconds = NOW + 361;
    assert_string_equal(problem(), "windows[0].window_start: 301 s in the future (clock skew?)");
    setup(NULL);
    ts_start.seconds = -60;
    ts_end.seconds = 0;
    assert_string_equal(problem(), "windows[0].window_start: -60 s is before 1970");
    setup(NULL);
    ts_end.seconds = ts_start.seconds;
    assert_string_equal(problem(), "windows[0]: window_end is not after window_start");
    setup(NULL);
    ts_start.seconds = NOW - 7200;
    assert_string_equal(problem(), "windows[0]: window of 7195 s is longer than 3600 s");
    setup(NULL);
    ts_end.nanos = -1;
    assert_string_equal(problem(), "windows[0].window_end: nanos -1 out of range");
}

static void numbers_must_be_finite_and_plausible(void **state)
{
    (void)state;
    win.cpu_usage_mean_cores = NAN;
    assert_non_null(strstr(problem(), "windows[0].cpu_usage_mean_cores: nan"));
    setup(NULL);
    win.cpu_limit_cores = -1;
    assert_non_null(strstr(problem(), "windows[0].cpu_limit_cores: -1"));
    setup(NULL);
    win.cpu_usage_peak_cores = 0.1;
    assert_string_equal(problem(), "windows[0]: cpu_usage_peak_cores 0.1 below mean 0.25");
    setup(NULL);
    win.memory_working_set_last_bytes = 1ULL << 40;
    assert_string_equal(problem(), "windows[0]: memory_working_set_last_bytes above peak");
    setup(NULL);
    win.workload_kind = 99;
    assert_string_equal(problem(), "windows[0].workload_kind: unknown kind 99");
}

/* Age is not validation's business: a window (or a whole batch) older than
 * max_age is valid, and kopt_batch_split_old() leaves it out. */
static void old_times_are_valid(void **state)
{
    (void)state;
    ts_start.seconds = NOW - 30 * 24 * 3600;
    ts_end.seconds = ts_start.seconds + 60;
    assert_string_equal(problem(), "");
    ts_created.seconds = NOW - 30 * 24 * 3600 + 65;
    assert_string_equal(problem(), "");
}

/* The default accepts the advisor's 8-day lookback (192 h) with 6 days to
 * spare and stays well inside the aggregator's 35 days of container_windows:
 * 14 d = 1209600 s. */
static void default_age_covers_the_lookback(void **state)
{
    (void)state;
    assert_int_equal(lim.max_age_seconds, 14 * 86400);
    assert_true(lim.max_age_seconds > 8 * 86400);
    assert_true(lim.max_age_seconds < 35 * 86400);
}

/* Four windows a minute long; OLD marks those that start too long ago. */
static Google__Protobuf__Timestamp w4_ts[8];
static Kopt__V1__ContainerWindow w4[4], *w4p[4];

static void four_windows(const int64_t start[4])
{
    for (int i = 0; i < 4; i++) {
        w4[i] = win;
        stamp(&w4_ts[2 * i], start[i]);
        stamp(&w4_ts[2 * i + 1], start[i] + 60);
        w4[i].window_start = &w4_ts[2 * i];
        w4[i].window_end = &w4_ts[2 * i + 1];
        w4p[i] = &w4[i];
    }
    batch.n_windows = 4;
    batch.windows = w4p;
}

#define AGE (14 * 86400) /* the default max_age_seconds */

static void split_leaves_old_windows_behind(void **state)
{
    /* Windows 1 and 3 start 1 s and 1 day before the limit, NOW - 1209600:
     * too old. Window 2 starts exactly on it: kept (the limit is inclusive). */
    const int64_t start[4] = {NOW - 65, NOW - AGE - 1, NOW - AGE, NOW - AGE - 86400};
    kopt_batch_split_t sp;
    uint8_t buf[4096];
    size_t len;
    Kopt__V1__MetricBatch *u;

    (void)state;
    four_windows(start);
    assert_string_equal(problem(), "");
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_int_equal(sp.kept, 2);
    assert_int_equal(sp.too_old, 2);
    assert_int_equal(sp.oldest_seconds, AGE + 86400); /* 1296000 s: window 3 */
    assert_false(sp.batch_too_old);
    assert_false(sp.store_nothing);
    /* Young ones first, in their order; every window still in the array. */
    assert_int_equal(batch.n_windows, 4);
    assert_ptr_equal(batch.windows[0], &w4[0]);
    assert_ptr_equal(batch.windows[1], &w4[2]);
    assert_true((batch.windows[2] == &w4[1] && batch.windows[3] == &w4[3]) ||
                (batch.windows[2] == &w4[3] && batch.windows[3] == &w4[1]));

    /* Packed with n_windows = kept, it carries the two young windows only. */
    batch.n_windows = sp.kept;
    len = kopt__v1__metric_batch__get_packed_size(&batch);
    assert_true(len <= sizeof(buf));
    kopt__v1__metric_batch__pack(&batch, buf);
    batch.n_windows = 4;
    u = kopt__v1__metric_batch__unpack(NULL, len, buf);
    assert_non_null(u);
    assert_int_equal(u->n_windows, 2);
    assert_int_equal(u->windows[0]->window_start->seconds, NOW - 65);
    assert_int_equal(u->windows[1]->window_start->seconds, NOW - AGE);
    assert_int_equal(u->seq, 42);
    kopt__v1__metric_batch__free_unpacked(u, NULL);
}

static void split_of_young_or_all_old_batches(void **state)
{
    const int64_t young[4] = {NOW - 65, NOW - 125, NOW - 185, NOW - 245};
    const int64_t old[4] = {NOW - AGE - 60, NOW - AGE - 120, NOW - AGE - 1, NOW - 40 * 86400};
    kopt_batch_split_t sp;

    (void)state;
    four_windows(young);
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_int_equal(sp.kept, 4);
    assert_int_equal(sp.too_old, 0);
    assert_int_equal(sp.oldest_seconds, 0);
    assert_false(sp.store_nothing);
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(batch.windows[i], &w4[i]);

    /* Every window too old: nothing to publish. */
    four_windows(old);
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_int_equal(sp.kept, 0);
    assert_int_equal(sp.too_old, 4);
    assert_int_equal(sp.oldest_seconds, 40 * 86400);
    assert_false(sp.batch_too_old);
    assert_true(sp.store_nothing);

    /* A batch without windows is stored as it is... */
    batch.n_windows = 0;
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_int_equal(sp.kept, 0);
    assert_int_equal(sp.too_old, 0);
    assert_false(sp.store_nothing);
}

/* A batch created before the limit is too old as a whole, even if a window
 * claims to be younger (it cannot have been measured after the batch was
 * made): nothing of it is stored, not even its facts. */
static void split_of_a_batch_created_too_long_ago(void **state)
{
    const int64_t start[4] = {NOW - 65, NOW - AGE - 1, NOW - AGE, NOW - AGE - 60};
    kopt_batch_split_t sp;

    (void)state;
    ts_created.seconds = NOW - AGE - 30;
    four_windows(start);
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_true(sp.batch_too_old);
    assert_true(sp.store_nothing);
    assert_int_equal(sp.kept, 0);
    assert_int_equal(sp.too_old, 4);
    assert_int_equal(sp.oldest_seconds, AGE + 60); /* window 3, older than created */

    batch.n_windows = 0;
    kopt_batch_split_old(&batch, &lim, NOW, &sp);
    assert_true(sp.store_nothing);
    assert_int_equal(sp.too_old, 0);
    assert_int_equal(sp.oldest_seconds, AGE + 30);
}

static void counts_are_capped(void **state)
{
    (void)state;
    lim.max_windows = 0;
    assert_string_equal(problem(), "windows: 1 windows, at most 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_follow_kubernetes_rules),
        cmocka_unit_test(identity_comes_from_the_spiffe_uri),
        cmocka_unit_test_setup(a_good_batch_passes, setup),
        cmocka_unit_test_setup(bad_identity_fields_are_named, setup),
        cmocka_unit_test_setup(bad_names_are_quoted_printably, setup),
        cmocka_unit_test(the_subject_of_a_batch),
        cmocka_unit_test_setup(times_must_be_sane, setup),
        cmocka_unit_test_setup(numbers_must_be_finite_and_plausible, setup),
        cmocka_unit_test_setup(counts_are_capped, setup),
        cmocka_unit_test_setup(old_times_are_valid, setup),
        cmocka_unit_test_setup(default_age_covers_the_lookback, setup),
        cmocka_unit_test_setup(split_leaves_old_windows_behind, setup),
        cmocka_unit_test_setup(split_of_young_or_all_old_batches, setup),
        cmocka_unit_test_setup(split_of_a_batch_created_too_long_ago, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
