/* The HTTP gateway's URL text into requests (advisor/api_query.c): decoding,
 * Kubernetes kinds, enum numbers, a singular field given twice (never "last
 * one wins": several values into the filter, or refused), filter text with
 * its escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "api_query.h"
#include "filter.h"

static char err[400];

static Kopt__V1__ListRecommendationsRequest *list_req(void)
{
    Kopt__V1__ListRecommendationsRequest *q = malloc(sizeof(*q));

    assert_non_null(q);
    kopt__v1__list_recommendations_request__init(q);
    return q;
}

/* Applies `query` (copied: it is decoded in place) to a new request. */
static int apply(Kopt__V1__ListRecommendationsRequest **out, const char *query)
{
    char *q = strdup(query);
    int r;

    *out = list_req();
    r = adv_query_params(&(*out)->base, q, NULL, 0, err, sizeof(err));
    free(q);
    return r;
}

static void query_parameters_set_the_request(void **state)
{
    Kopt__V1__ListRecommendationsRequest *q;

    (void)state;
    assert_int_equal(apply(&q, "cluster=prod&namespace=kube-system&kind=statefulset&pageSize=5&"
                               "min_monthly_savings=12.5&order=2&view=RECOMMENDATION_VIEW_FULL&"
                               "filter=savings+%3E%3D+1+AND+name+%3D+%22a%26b%22&&=x"),
                     0);
    assert_string_equal(q->cluster, "prod");
    assert_string_equal(q->namespace_, "kube-system");
    assert_int_equal(q->kind, KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET);
    assert_int_equal(q->page_size, 5);
    assert_true(q->min_monthly_savings == 12.5);
    assert_int_equal(q->order, KOPT__V1__RECOMMENDATION_ORDER__RECOMMENDATION_ORDER_NAME_ASC);
    assert_int_equal(q->view, KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_FULL);
    assert_string_equal(q->filter, "savings >= 1 AND name = \"a&b\"");
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void repeated_singular_parameters_are_refused(void **state)
{
    static const struct {
        const char *query, *err;
    } table[] = {
        {"page_size=1&cluster=x&pageSize=2",
         "query parameters \"page_size\" and \"pageSize\" are the same field, which takes one "
         "value"},
        {"filter=a&filter=b", "query parameter \"filter\" is given more than once but takes one "
                              "value"},
        {"view=1&view=1", "query parameter \"view\" is given more than once but takes one value"},
        {"nope=1", "unknown query parameter \"nope\""},
        /* a client's bytes come back printable: valid UTF-8 for the JSON */
        {"%FF%FE=1", "unknown query parameter \"\\xff\\xfe\""},
        {"na%0Ame%22=1", "unknown query parameter \"na\\x0ame\\x22\""},
        {"kind=%FF", "kind: not valid UTF-8"},
        {"kind=42", "kind: 42 is not a value of kopt.v1.WorkloadKind"},
        {"kind=Job&kind=42", "kind: 42 is not a value of kopt.v1.WorkloadKind"},
        {"namespace=%zz", "bad %-escape in the query string"},
        {"namespace=&namespace=b",
         "query parameter \"namespace\" is empty or unspecified among several values"},
        {"kind=Job&kind=0",
         "query parameter \"kind\" is empty or unspecified among several values"},
        /* the caller's own filter is checked alone, its columns its own */
        {"filter=(x&namespace=a&namespace=b",
         "filter: column 1: parentheses are not supported; OR binds tighter than AND, so "
         "\"kind = Job AND namespace = a OR namespace = b\" needs none"},
        {"namespace=a&namespace=b&filter=name+%3D+%22x",
         "filter: column 8: the string has no closing quote"},
    };
    Kopt__V1__ListRecommendationsRequest *q;
    Kopt__V1__GetRecommendationRequest *g;
    char twice[] = "namespace=a&namespace=b";

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (apply(&q, table[i].query) != -EINVAL)
            fail_msg("%s was not refused", table[i].query);
        assert_string_equal(err, table[i].err);
        protobuf_c_message_free_unpacked(&q->base, NULL);
    }
    /* Without a filter to hold several values, a repeat is refused. */
    g = malloc(sizeof(*g));
    kopt__v1__get_recommendation_request__init(g);
    assert_int_equal(adv_query_params(&g->base, twice, NULL, 0, err, sizeof(err)), -EINVAL);
    assert_string_equal(
        err, "query parameter \"namespace\" is given more than once but takes one value");
    protobuf_c_message_free_unpacked(&g->base, NULL);
}

/* ListRecommendations has a filter: several namespaces (names, clusters,
 * kinds) become an OR in it, ANDed with the caller's filter. */
static void several_values_become_a_filter(void **state)
{
    static const adv_filter_item_t web = {
        .cluster = "prod", .namespace_ = "b\"c", .name = "web", .kind = 1, .savings = 2};
    adv_filter_item_t other = web;
    Kopt__V1__ListRecommendationsRequest *q;
    adv_filter_t *f;

    (void)state;
    assert_int_equal(apply(&q, "namespace=a&kind=Deployment&cluster=prod&namespace=b%22c&"
                               "filter=savings+%3E+1&kind=2"),
                     0);
    assert_string_equal(q->namespace_, "");
    assert_int_equal(q->kind, 0);
    assert_string_equal(q->cluster, "prod"); /* once: stays a field */
    assert_string_equal(q->filter, "savings > 1 AND namespace = \"a\" OR namespace = \"b\\\"c\" "
                                   "AND kind = \"WORKLOAD_KIND_DEPLOYMENT\" OR "
                                   "kind = \"WORKLOAD_KIND_STATEFUL_SET\"");
    assert_int_equal(adv_filter_parse(q->filter, &f, err, sizeof(err)), 0);
    assert_true(adv_filter_match(f, &web));
    other.savings = 0.5;
    assert_false(adv_filter_match(f, &other));
    other = web;
    other.kind = 3;
    assert_false(adv_filter_match(f, &other));
    other = web;
    other.namespace_ = "c";
    assert_false(adv_filter_match(f, &other));
    adv_filter_free(f);
    protobuf_c_message_free_unpacked(&q->base, NULL);

    assert_int_equal(apply(&q, "name=x&name=y"), 0);
    assert_string_equal(q->name, "");
    assert_string_equal(q->filter, "name = \"x\" OR name = \"y\"");
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* Path parameters are fields too: the query may not set them again. */
static void query_may_not_repeat_the_path(void **state)
{
    Kopt__V1__GetRecommendationRequest *g = malloc(sizeof(*g));
    char *names[] = {"cluster", "namespace", "kind", "name"};
    char q1[] = "view=RECOMMENDATION_VIEW_BASIC", q2[] = "cluster=other";

    (void)state;
    kopt__v1__get_recommendation_request__init(g);
    assert_int_equal(adv_query_set(&g->base, "kind", "Deployment", err, sizeof(err)), 0);
    assert_int_equal(g->kind, KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT);
    assert_int_equal(adv_query_params(&g->base, q1, names, 4, err, sizeof(err)), 0);
    assert_int_equal(g->view, KOPT__V1__RECOMMENDATION_VIEW__RECOMMENDATION_VIEW_BASIC);
    assert_int_equal(adv_query_params(&g->base, q2, names, 4, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "query parameter \"cluster\" is already in the path");
    protobuf_c_message_free_unpacked(&g->base, NULL);
}

/* A field that is repeated in the proto takes every value, in order. */
static void repeated_fields_take_every_value(void **state)
{
    Kopt__V1__ContainerRecommendation *c = malloc(sizeof(*c));
    char q[] = "reasons=1&reasons=2&container=a";

    (void)state;
    kopt__v1__container_recommendation__init(c);
    assert_int_equal(adv_query_params(&c->base, q, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(c->n_reasons, 2);
    assert_int_equal(c->reasons[0], 1);
    assert_int_equal(c->reasons[1], 2);
    assert_string_equal(c->container, "a");
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_parameters_set_the_request),
        cmocka_unit_test(repeated_singular_parameters_are_refused),
        cmocka_unit_test(several_values_become_a_filter),
        cmocka_unit_test(query_may_not_repeat_the_path),
        cmocka_unit_test(repeated_fields_take_every_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
