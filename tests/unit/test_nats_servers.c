/* kopt_nats_servers_split: one URL or a cluster's comma-separated list,
 * blanks trimmed; empty entries, blanks inside and too many entries refused;
 * kopt_nats_servers hands the list to natsOptions_SetServers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kopt/nats_servers.h>

static void one_url(void **state)
{
    char **l = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(kopt_nats_servers_split("nats://127.0.0.1:4222", &l, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0], "nats://127.0.0.1:4222");
    kopt_nats_servers_free(l, n);
}

static void list_trimmed(void **state)
{
    char **l = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(
        kopt_nats_servers_split(" nats://a:4222,nats://b:4222 ,\tnats://c:4222", &l, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(l[0], "nats://a:4222");
    assert_string_equal(l[1], "nats://b:4222");
    assert_string_equal(l[2], "nats://c:4222");
    kopt_nats_servers_free(l, n);
}

static void refused(void **state)
{
    static const char *const bad[] = {
        "", " ", ",", "nats://a:1,", ",nats://a:1", "nats://a:1,,nats://b:2", "nats://a :1"};
    char **l = NULL, many[40 * 16] = "";
    size_t n = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kopt_nats_servers_split(bad[i], &l, &n), -EINVAL);
        assert_null(l);
        assert_int_equal(n, 0);
    }
    assert_int_equal(kopt_nats_servers_split(NULL, &l, &n), -EINVAL);
    for (int i = 0; i < KOPT_NATS_MAX_SERVERS + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%snats://h%d:1", i ? "," : "",
                 i);
    assert_int_equal(kopt_nats_servers_split(many, &l, &n), -EINVAL);
    *strrchr(many, ',') = '\0'; /* exactly the most allowed */
    assert_int_equal(kopt_nats_servers_split(many, &l, &n), 0);
    assert_int_equal(n, KOPT_NATS_MAX_SERVERS);
    kopt_nats_servers_free(l, n);
}

static void into_options(void **state)
{
    natsOptions *o = NULL;

    (void)state;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(kopt_nats_servers(o, "nats://a:4222,nats://b:4222"), NATS_OK);
    assert_int_equal(kopt_nats_servers(o, "nats://a:4222,,"), NATS_INVALID_ARG);
    natsOptions_Destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_url),
        cmocka_unit_test(list_trimmed),
        cmocka_unit_test(refused),
        cmocka_unit_test(into_options),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
