/* The proto3 JSON mapping over protobuf-c descriptors: exact output for the
 * rules that trip SDKs (64-bit as strings, enums by name, timestamps, maps,
 * defaults left out), round trips, errors naming the field, URL fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "kopt/v1/advisor.pb-c.h"
#include "kopt/v1/metrics.pb-c.h"

static char err[256];

static void encodes_the_mapping_rules(void **state)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Kopt__V1__NodeFacts nf = KOPT__V1__NODE_FACTS__INIT;
    Kopt__V1__NodeFacts__LabelsEntry zone = KOPT__V1__NODE_FACTS__LABELS_ENTRY__INIT,
                                     *labels[1] = {&zone};
    Kopt__V1__ContainerWindow w = KOPT__V1__CONTAINER_WINDOW__INIT, *ws[1] = {&w};
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char *out;

    (void)state;
    b.cluster = "prod";
    b.epoch = 18446744073709551615ULL;
    b.seq = 7;
    t.seconds = 1800000000;
    t.nanos = 500000000;
    b.created = &t;
    zone.key = "zone";
    zone.value = "eu-1a";
    nf.n_labels = 1;
    nf.labels = labels;
    nf.metric_source = KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_PROC;
    b.node_facts = &nf;
    w.namespace_ = "shop";
    w.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    w.cpu_usage_mean_cores = 0.25;
    b.n_windows = 1;
    b.windows = ws;
    assert_int_equal(kopt_pbjson_encode(&b.base, &out, NULL), 0);
    assert_string_equal(out, "{\"cluster\":\"prod\",\"epoch\":\"18446744073709551615\","
                             "\"seq\":\"7\",\"created\":\"2027-01-15T08:00:00.500Z\","
                             "\"nodeFacts\":{\"metricSource\":\"METRIC_SOURCE_PROC\","
                             "\"labels\":{\"zone\":\"eu-1a\"}},"
                             "\"windows\":[{\"namespace\":\"shop\","
                             "\"workloadKind\":\"WORKLOAD_KIND_DEPLOYMENT\","
                             "\"cpuUsageMeanCores\":0.25}]}");
    free(out);
}

static void round_trips_through_json(void **state)
{
    const char *json = "{\"cluster\":\"prod\",\"node\":\"n1\",\"epoch\":\"12\",\"seq\":3,"
                       "\"created\":\"2026-11-25T20:00:00+01:00\","
                       "\"windows\":[{\"pod\":\"p\",\"memory_working_set_peak_bytes\":\"1024\"}],"
                       "\"nodeFacts\":{\"labels\":{\"a\":\"b\",\"c\":\"d\"}}}";
    ProtobufCMessage *m;
    Kopt__V1__MetricBatch *b;
    char *out;

    (void)state;
    assert_int_equal(kopt_pbjson_decode(&kopt__v1__metric_batch__descriptor, json, strlen(json), &m,
                                        err, sizeof(err)),
                     0);
    b = (Kopt__V1__MetricBatch *)m;
    assert_string_equal(b->cluster, "prod");
    assert_int_equal(b->epoch, 12);
    assert_int_equal(b->seq, 3);
    assert_int_equal(b->created->seconds, 1795633200); /* 19:00 UTC */
    assert_int_equal(b->n_windows, 1);
    assert_int_equal(b->windows[0]->memory_working_set_peak_bytes, 1024);
    assert_int_equal(b->node_facts->n_labels, 2);
    assert_int_equal(kopt_pbjson_encode(m, &out, NULL), 0);
    assert_non_null(strstr(out, "\"created\":\"2026-11-25T19:00:00Z\""));
    assert_non_null(strstr(out, "\"labels\":{\"a\":\"b\",\"c\":\"d\"}"));
    free(out);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void errors_name_the_field(void **state)
{
    const ProtobufCMessageDescriptor *d = &kopt__v1__list_recommendations_request__descriptor;
    ProtobufCMessage *m;

    (void)state;
    assert_int_equal(kopt_pbjson_decode(d, "{\"nope\":1}", 10, &m, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown field \"nope\" in kopt.v1.ListRecommendationsRequest");
    assert_int_equal(kopt_pbjson_decode(d, "{\"kind\":\"SHIP\"}", 15, &m, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "kind: not a value of kopt.v1.WorkloadKind");
    assert_int_equal(kopt_pbjson_decode(d, "{\"pageSize\":\"x\"}", 16, &m, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "page_size: \"x\" is not an integer");
    assert_int_equal(kopt_pbjson_decode(d, "{\"pageSize\":4294967296}", 22, &m, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(kopt_pbjson_decode(d, "[1]", 3, &m, err, sizeof(err)), -EINVAL);
    assert_int_equal(kopt_pbjson_decode(d, "{\"cluster\":", 11, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "invalid JSON"));
}

/* The shortest text that reads back to the same double, never jansson's
 * "%.17g" (0.28600000000000003) or its ".0" on whole numbers (730.0). */
static void doubles_print_shortest_round_trip(void **state)
{
    static const struct {
        double v;
        const char *text;
    } table[] = {
        {0.1, "0.1"},
        {0.286, "0.286"},
        {730, "730"},
        {0.1 + 0.2, "0.30000000000000004"}, /* needs all 17 digits */
        {1e21, "1e+21"},
        {5e-324, "5e-324"},                                   /* the smallest subnormal */
        {2.2250738585072014e-308, "2.2250738585072014e-308"}, /* DBL_MIN */
        {1.7976931348623157e308, "1.7976931348623157e+308"},  /* DBL_MAX */
        {-0.0, "-0"},
        {0, "0"},
        {-2.5, "-2.5"},
        {123456789012345680, "1.2345678901234568e+17"},
        {9007199254740993.0, "9007199254740992"}, /* 2^53 + 1 is not a double */
        {0.235, "0.235"},
        {3.7600000000000002, "3.7600000000000002"},
    };
    char s[32];
    Kopt__V1__WorkloadSavings sv = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    char *out;

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int n = kopt_pbjson_format_double(table[i].v, s, sizeof(s));

        assert_int_equal(n, (int)strlen(table[i].text));
        assert_string_equal(s, table[i].text);
        assert_true(strtod(s, NULL) == table[i].v);
    }
    assert_int_equal(kopt_pbjson_format_double(NAN, s, sizeof(s)), -EINVAL);
    assert_int_equal(kopt_pbjson_format_double(-INFINITY, s, sizeof(s)), -EINVAL);
    assert_int_equal(kopt_pbjson_format_double(0.286, s, 4), -ENOSPC);
    /* floats with float precision */
    assert_int_equal(kopt_pbjson_format_float(0.1f, s, sizeof(s)), 3);
    assert_string_equal(s, "0.1");
    assert_int_equal(kopt_pbjson_format_float(16777217.0f, s, sizeof(s)), 8);
    assert_string_equal(s, "16777216");
    kopt_pbjson_format_float(1.4e-45f, s, sizeof(s));
    assert_string_equal(s, "1e-45");

    /* The same through the encoder, NaN and infinities as the mapping's strings. */
    sv.cpu_cores = 0.286;
    sv.monthly_cost = 730;
    assert_int_equal(kopt_pbjson_encode(&sv.base, &out, NULL), 0);
    assert_string_equal(out, "{\"cpuCores\":0.286,\"monthlyCost\":730}");
    free(out);
    sv.cpu_cores = NAN;
    sv.monthly_cost = -INFINITY;
    assert_int_equal(kopt_pbjson_encode(&sv.base, &out, NULL), 0);
    assert_string_equal(out, "{\"cpuCores\":\"NaN\",\"monthlyCost\":\"-Infinity\"}");
    free(out);
}

/* Strings keep jansson's escaping: quotes, backslashes, control characters. */
static void strings_are_escaped(void **state)
{
    Kopt__V1__WorkloadSavings sv = KOPT__V1__WORKLOAD_SAVINGS__INIT;
    char *out;

    (void)state;
    sv.currency = "a\"b\\c\n\t\x01\x7f/\xc3\xa9";
    assert_int_equal(kopt_pbjson_encode(&sv.base, &out, NULL), 0);
    assert_string_equal(out, "{\"currency\":\"a\\\"b\\\\c\\n\\t\\u0001\x7f/\xc3\xa9\"}");
    free(out);
    sv.currency = "\xff"; /* not UTF-8: JSON cannot hold it */
    assert_int_equal(kopt_pbjson_encode(&sv.base, &out, NULL), -EINVAL);
}

/* proto3 JSON parsers accept an enum's number as well as its name. */
static int dec(const ProtobufCMessageDescriptor *d, const char *json, ProtobufCMessage **m)
{
    return kopt_pbjson_decode(d, json, strlen(json), m, err, sizeof(err));
}

static void enums_decode_by_name_or_number(void **state)
{
    const ProtobufCMessageDescriptor *d = &kopt__v1__list_recommendations_request__descriptor;
    Kopt__V1__ListRecommendationsRequest *req;
    ProtobufCMessage *m;

    (void)state;
    assert_int_equal(dec(d, "{\"kind\":2,\"order\":\"RECOMMENDATION_ORDER_NAME_ASC\"}", &m), 0);
    req = (Kopt__V1__ListRecommendationsRequest *)m;
    assert_int_equal(req->kind, 2);
    assert_int_equal(req->order, KOPT__V1__RECOMMENDATION_ORDER__RECOMMENDATION_ORDER_NAME_ASC);
    protobuf_c_message_free_unpacked(m, NULL);
    /* numbers the enum does not define, and a number in a JSON string */
    assert_int_equal(dec(d, "{\"kind\":42}", &m), -EINVAL);
    assert_string_equal(err, "kind: 42 is not a value of kopt.v1.WorkloadKind");
    assert_int_equal(dec(d, "{\"kind\":-1}", &m), -EINVAL);
    assert_string_equal(err, "kind: -1 is not a value of kopt.v1.WorkloadKind");
    assert_int_equal(dec(d, "{\"kind\":4294967298}", &m), -EINVAL);
    assert_string_equal(err, "kind: 4294967298 is not a value of kopt.v1.WorkloadKind");
    assert_int_equal(dec(d, "{\"kind\":\"2\"}", &m), -EINVAL);
    assert_string_equal(err, "kind: not a value of kopt.v1.WorkloadKind");
    assert_int_equal(dec(d, "{\"kind\":2.5}", &m), -EINVAL);
    assert_string_equal(err, "kind: expected the name or number of a kopt.v1.WorkloadKind value");

    /* URL text: digits are the number */
    req = calloc(1, sizeof(*req));
    kopt__v1__list_recommendations_request__init(req);
    assert_int_equal(kopt_pbjson_set_field(&req->base, "view", "2", err, sizeof(err)), 0);
    assert_int_equal(req->view, KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL);
    assert_int_equal(kopt_pbjson_set_field(&req->base, "order", "0", err, sizeof(err)), 0);
    assert_int_equal(req->order, 0);
    assert_int_equal(kopt_pbjson_set_field(&req->base, "order", "9", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "order: 9 is not a value of kopt.v1.RecommendationOrder");
    assert_int_equal(kopt_pbjson_set_field(&req->base, "order", "1x", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "order: not a value of kopt.v1.RecommendationOrder");
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* A value JSON cannot hold fails the whole message, even inside a list:
 * never an element silently left out. Timestamps stay in 0001..9999. */
static void unwritable_values_fail_the_message(void **state)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Kopt__V1__ContainerWindow w = KOPT__V1__CONTAINER_WINDOW__INIT, *ws[1] = {&w};
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ProtobufCMessage *m;
    char *out;

    (void)state;
    t.seconds = -62135596801LL; /* 0000-12-31T23:59:59Z */
    w.window_end = &t;
    b.n_windows = 1;
    b.windows = ws;
    assert_int_equal(kopt_pbjson_encode(&b.base, &out, NULL), -EINVAL);
    assert_int_equal(
        dec(&kopt__v1__metric_batch__descriptor, "{\"created\":\"0000-12-31T23:59:59Z\"}", &m),
        -EINVAL);
    assert_int_equal(
        dec(&kopt__v1__metric_batch__descriptor, "{\"created\":\"0001-01-01T00:30:00+01:00\"}", &m),
        -EINVAL);
    assert_int_equal(
        dec(&kopt__v1__metric_batch__descriptor, "{\"created\":\"0001-01-01T00:00:00Z\"}", &m), 0);
    assert_int_equal(((Kopt__V1__MetricBatch *)m)->created->seconds, -62135596800LL);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void url_parameters_set_fields(void **state)
{
    Kopt__V1__ListRecommendationsRequest *req =
        (Kopt__V1__ListRecommendationsRequest *)calloc(1, sizeof(*req));
    ProtobufCMessage *m = &req->base;

    (void)state;
    kopt__v1__list_recommendations_request__init(req);
    assert_int_equal(kopt_pbjson_set_field(m, "cluster", "prod", err, sizeof(err)), 0);
    assert_int_equal(kopt_pbjson_set_field(m, "pageSize", "50", err, sizeof(err)), 0);
    assert_int_equal(kopt_pbjson_set_field(m, "idle_only", "true", err, sizeof(err)), 0);
    assert_int_equal(
        kopt_pbjson_set_field(m, "kind", "WORKLOAD_KIND_STATEFUL_SET", err, sizeof(err)), 0);
    assert_int_equal(kopt_pbjson_set_field(m, "cluster", "dev", err, sizeof(err)), 0);
    /* an empty string set before is freed when replaced (ASan's leak check) */
    assert_int_equal(kopt_pbjson_set_field(m, "name", "", err, sizeof(err)), 0);
    assert_int_equal(kopt_pbjson_set_field(m, "name", "web", err, sizeof(err)), 0);
    assert_string_equal(req->name, "web");
    assert_string_equal(req->cluster, "dev");
    assert_int_equal(req->page_size, 50);
    assert_true(req->idle_only);
    assert_int_equal(req->kind, KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET);
    assert_int_equal(kopt_pbjson_set_field(m, "bogus", "1", err, sizeof(err)), -ENOENT);
    assert_int_equal(kopt_pbjson_set_field(m, "idleOnly", "maybe", err, sizeof(err)), -EINVAL);
    protobuf_c_message_free_unpacked(m, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_the_mapping_rules),
        cmocka_unit_test(round_trips_through_json),
        cmocka_unit_test(errors_name_the_field),
        cmocka_unit_test(url_parameters_set_fields),
        cmocka_unit_test(doubles_print_shortest_round_trip),
        cmocka_unit_test(strings_are_escaped),
        cmocka_unit_test(enums_decode_by_name_or_number),
        cmocka_unit_test(unwritable_values_fail_the_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
