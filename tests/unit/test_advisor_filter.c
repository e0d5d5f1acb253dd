/* ListRecommendationsRequest.filter (advisor/filter.c): which workloads each
 * filter keeps, AND/OR precedence, and the refusals with their columns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* Three workloads to match against. */
static const adv_filter_item_t items[] = {
    {.cluster = "prod",
     .namespace_ = "shop",
     .name = "web",
     .kind = 1, /* Deployment */
     .savings = 12.5,
     .cpu_savings = 0.5,
     .memory_savings = 1 << 30,
     .confidence = 0.9},
    {.cluster = "prod",
     .namespace_ = "kube-system",
     .name = "dns",
     .kind = 3, /* DaemonSet */
     .savings = -4,
     .cpu_savings = -0.1,
     .confidence = 0.3,
     .idle = true},
    {.cluster = "dev",
     .namespace_ = "my ns \"q\"",
     .name = "db",
     .kind = 2, /* StatefulSet */
     .savings = 40,
     .confidence = 0.5},
};

/* The items `text` keeps, as a bit mask (1 = items[0]). */
static int kept(const char *text)
{
    adv_filter_t *f;
    char err[300];
    int mask = 0;

    if (adv_filter_parse(text, &f, err, sizeof(err)) < 0)
        fail_msg("%s: %s", text, err);
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
        if (adv_filter_match(f, &items[i]))
            mask |= 1 << i;
    adv_filter_free(f);
    return mask;
}

static void filters_keep_the_matching_workloads(void **state)
{
    static const struct {
        const char *filter;
        int mask;
    } table[] = {
        {"", 7},
        {"   ", 7},
        {"namespace = shop", 1},
        {"namespace=\"shop\"", 1},
        {"namespace = \"my ns \\\"q\\\"\"", 4},
        {"namespace != shop", 6},
        {"workload.namespace = kube-system", 2},
        {"kind = Deployment", 1},
        {"kind = statefulset", 4},
        {"kind = WORKLOAD_KIND_DAEMON_SET", 2},
        {"kind != Deployment", 6},
        {"name = web", 1},
        {"cluster = dev", 4},
        {"savings > 12.5", 4},
        {"savings >= 12.5", 5},
        {"savings.monthly_cost < 0", 2},
        {"savings <= -4", 2},
        {"savings = 40", 4},
        {"savings != 40", 3},
        {"savings > 1e1", 5},
        {"cpu_savings > 0", 1},
        {"memory_savings >= 1073741824", 1},
        {"confidence >= 0.5", 5},
        {"confidence < 0.5", 2},
        {"idle = true", 2},
        {"idle != true", 5},
        {"idle = false", 5},
        /* AND, OR and blanks */
        {"namespace = shop OR namespace = kube-system", 3},
        {"cluster = prod AND savings > 0", 1},
        {"cluster = prod savings > 0", 1}, /* a blank is AND */
        {"cluster = prod AND namespace = shop OR namespace = kube-system", 3},
        /* OR binds tighter: dev AND (shop OR db) */
        {"cluster = dev AND namespace = shop OR name = db", 4},
        {"namespace = shop OR name = db AND confidence > 0.6", 1},
        {"kind = Deployment OR kind = StatefulSet AND cluster = prod AND savings > 10", 1},
        {" \tnamespace\n=\rshop ", 1},
        {"name = nothing", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int m = kept(table[i].filter);

        if (m != table[i].mask)
            fail_msg("\"%s\" kept %d, expected %d", table[i].filter, m, table[i].mask);
    }
}

static void refusals_name_the_column(void **state)
{
    static const struct {
        const char *filter, *err;
    } table[] = {
        {"(namespace = a)", "filter: column 1: parentheses are not supported"},
        {"namespace = a AND (kind = Job)", "filter: column 19: parentheses are not supported"},
        {"namespace = a)", "filter: column 14: parentheses are not supported"},
        {"NOT idle = true", "filter: column 1: NOT and '-' are not supported"},
        {"-idle = true", "filter: column 1: NOT and '-' are not supported"},
        {"namespace:shop", "filter: column 10: the has operator ':' is not supported"},
        {"owner = x", "filter: column 1: unknown field \"owner\""},
        {"Namespace = x", "filter: column 1: unknown field \"Namespace\""},
        {"namespace shop", "filter: column 11: expected an operator"},
        {"namespace", "filter: column 10: expected an operator"},
        {"namespace > shop", "filter: column 11: namespace can only be compared with = or !="},
        {"kind >= Job", "filter: column 6: kind can only be compared with = or !="},
        {"namespace =", "filter: column 12: expected a value"},
        {"namespace = AND", "filter: column 13: expected a value"},
        {"namespace = \"shop", "filter: column 13: the string has no closing quote"},
        {"savings > lots", "filter: column 11: savings needs a number, not \"lots\""},
        {"savings > 1e999", "filter: column 11: savings needs a number"},
        {"savings > nan", "filter: column 11: savings needs a number"},
        {"kind = Ship", "filter: column 8: \"Ship\" is not a workload kind"},
        {"kind = WORKLOAD_KIND_UNSPECIFIED", "filter: column 8: \"WORKLOAD_KIND_UNSPECIFIED\""},
        {"idle = yes", "filter: column 8: idle is true or false, not \"yes\""},
        {"idle ! true", "filter: column 6: '!' must be followed by '='"},
        {"namespace = a AND", "filter: column 18: expected a comparison"},
        {"namespace = a OR OR", "filter: column 18: unknown field \"OR\""},
        {"AND namespace = a", "filter: column 1: unknown field \"AND\""},
        {"= a", "filter: column 1: expected a field name"},
        /* A client's bytes come back printable (valid UTF-8 for the HTTP
         * gateway's JSON, one log line): '"', '\\', controls and non-ASCII
         * as \xHH. */
        {"\xff\xfe = x", "filter: column 1: unknown field \"\\xff\\xfe\""},
        {"na\x01me = x", "filter: column 1: unknown field \"na\\x01me\""},
        {"kind = \"Sh\xc3\\\"p\"", "filter: column 8: \"Sh\\xc3\\x22p\" is not a workload kind"},
        {"savings > \"1\\\\\"", "filter: column 11: savings needs a number, not \"1\\x5c\""},
        {"idle = \"\xe2\x80\x8b\"",
         "filter: column 8: idle is true or false, not \"\\xe2\\x80\\x8b\""},
    };
    adv_filter_t *f;
    char err[300], big[ADV_FILTER_MAX_LEN + 2], *p = big;

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        f = (adv_filter_t *)1;
        if (adv_filter_parse(table[i].filter, &f, err, sizeof(err)) != -EINVAL)
            fail_msg("\"%s\" was not refused", table[i].filter);
        assert_null(f);
        if (strncmp(err, table[i].err, strlen(table[i].err)) != 0)
            fail_msg("\"%s\": \"%s\", expected \"%s...\"", table[i].filter, err, table[i].err);
    }
    /* limits */
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(adv_filter_parse(big, &f, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "filter: longer than 2048 bytes");
    for (int i = 0; i < ADV_FILTER_MAX_TERMS + 1; i++)
        p += sprintf(p, "%sname = n%d", i ? " OR " : "", i);
    assert_int_equal(adv_filter_parse(big, &f, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than 64 comparisons"));
    /* a short error buffer still ends in a NUL */
    assert_int_equal(adv_filter_parse("(", &f, err, 10), -EINVAL);
    assert_string_equal(err, "filter: c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filters_keep_the_matching_workloads),
        cmocka_unit_test(refusals_name_the_column),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
