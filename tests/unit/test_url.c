/* kopt_url_redact: userinfo and secret query parameters never printed, in
 * single URLs and comma-separated lists, whatever the scheme or its absence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <kopt/url.h>

static const char *redact(const char *in)
{
    static char out[512];

    assert_int_equal(kopt_url_redact(in, out, sizeof(out)), 0);
    return out;
}

static void url_without_credentials_is_unchanged(void **state)
{
    (void)state;
    assert_string_equal(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    assert_string_equal(redact("http://ch:8123/?database=kopt"), "http://ch:8123/?database=kopt");
    assert_string_equal(redact("/var/lib/kopt/a@b"), "/var/lib/kopt/a@b"); /* a path */
    assert_string_equal(redact(""), "");
    assert_string_equal(redact(NULL), "");
}

static void userinfo_is_redacted(void **state)
{
    (void)state;
    assert_string_equal(redact("nats://natsuser:NatsPw123@127.0.0.1:4222"),
                        "nats://[redacted]@127.0.0.1:4222");
    /* A NATS token is the user part alone. */
    assert_string_equal(redact("tls://s3cr3tT0ken@nats:4222"), "tls://[redacted]@nats:4222");
    /* '@', '/', ':' and '?' unencoded in the password: up to the last '@'. */
    assert_string_equal(redact("http://u:p@ss/w?rd@ch:8123/x"), "http://[redacted]@ch:8123/x");
    assert_string_equal(redact("http://u:p,w@ch:8123"), "http://[redacted]@ch:8123");
    assert_string_equal(redact("user:pw@host:4222"), "[redacted]@host:4222");
    assert_string_equal(redact("https://[::1]:8443"), "https://[::1]:8443");
    assert_string_equal(redact("https://u:p@[::1]:8443"), "https://[redacted]@[::1]:8443");
}

static void secret_query_parameters_are_redacted(void **state)
{
    (void)state;
    assert_string_equal(redact("http://ch:8123/?user=kopt&password=hunter2&database=kopt"),
                        "http://ch:8123/?user=kopt&password=[redacted]&database=kopt");
    assert_string_equal(redact("http://ch/?access_token=abc#frag"),
                        "http://ch/?access_token=[redacted]#frag");
    assert_string_equal(redact("http://a:b@ch/?api_key=k1&keepalive=1"),
                        "http://[redacted]@ch/?api_key=[redacted]&keepalive=1");
}

static void lists_are_redacted_url_by_url(void **state)
{
    (void)state;
    assert_string_equal(redact("nats://a:b@n1:4222,nats://n2:4222, nats://c:d@n3:4222"),
                        "nats://[redacted]@n1:4222,nats://n2:4222, nats://[redacted]@n3:4222");
    assert_string_equal(redact("a:b@n1:4222,n2:4222,nats://c:d@n3"),
                        "[redacted]@n1:4222,n2:4222,nats://[redacted]@n3");
}

static void a_short_buffer_cuts_but_never_leaks(void **state)
{
    const char *in = "nats://natsuser:NatsPw123@127.0.0.1:4222";
    char out[64];

    (void)state;
    for (size_t len = 1; len < 48; len++) {
        int r = kopt_url_redact(in, out, len);

        assert_true(r == 0 || r == -ENOSPC);
        assert_true(strlen(out) < len);
        assert_null(strstr(out, "Nats"));
        assert_null(strstr(out, "natsuser"));
    }
    assert_int_equal(kopt_url_redact(in, out, 8), -ENOSPC);
    assert_int_equal(kopt_url_redact(in, out, 0), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_without_credentials_is_unchanged),
        cmocka_unit_test(userinfo_is_redacted),
        cmocka_unit_test(secret_query_parameters_are_redacted),
        cmocka_unit_test(lists_are_redacted_url_by_url),
        cmocka_unit_test(a_short_buffer_cuts_but_never_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
