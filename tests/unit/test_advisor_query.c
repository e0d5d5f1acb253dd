/* The HTTP gateway's URL text into requests (advisor/api_query.c): decoding,
 * Kubernetes kinds, enum numbers, repeated parameters refused for singular
 * fields (never "last one wins"), filter text with its escapes. */
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
        {"namespace=a&namespace=b",
         "query parameter \"namespace\" is given more than once but takes one value; for "
         "several, use filter=namespace = a OR namespace = b"},
        {"page_size=1&cluster=x&pageSize=2",
         "query parameters \"page_size\" and \"pageSize\" are the same field, which takes one "
         "value"},
        {"kind=Job&kind=CronJob", "query parameter \"kind\" is given more than once but takes one "
                                  "value; for several, use filter=kind = a OR kind = b"},
        {"filter=a&filter=b", "query parameter \"filter\" is given more than once but takes one "
                              "value"},
        {"view=1&view=1", "query parameter \"view\" is given more than once but takes one value"},
        {"nope=1", "unknown query parameter \"nope\""},
        {"kind=42", "kind: 42 is not a value of kopt.v1.WorkloadKind"},
        {"namespace=%zz", "bad %-escape in the query string"},
    };
    Kopt__V1__ListRecommendationsRequest *q;

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (apply(&q, table[i].query) != -EINVAL)
            fail_msg("%s was not refused", table[i].query);
        assert_string_equal(err, table[i].err);
        protobuf_c_message_free_unpacked(&q->base, NULL);
    }
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
        cmocka_unit_test(query_may_not_repeat_the_path),
        cmocka_unit_test(repeated_fields_take_every_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
