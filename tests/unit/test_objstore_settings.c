/* --object-store-url (libkopt/objstore_settings.c): the two forms, the
 * default prefix, and what is refused with a sentence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <kopt/objstore_settings.h>

static int locate(const char *url, bool path_style, kopt_object_store_location_t *loc, char *err,
                  size_t len)
{
    kopt_object_store_settings_t s = {
        .url = (char *)url, .region = "eu-west-1", .path_style = path_style};

    return kopt_object_store_locate(&s, loc, err, len);
}

static void http_url_with_bucket_and_prefix(void **state)
{
    kopt_object_store_location_t loc;
    char err[256] = "";

    (void)state;
    assert_int_equal(locate("https://s3.example.internal:9000/kopt-backups/team/kopt/", true, &loc,
                            err, sizeof(err)),
                     0);
    assert_string_equal(loc.endpoint, "https://s3.example.internal:9000");
    assert_string_equal(loc.bucket, "kopt-backups");
    assert_string_equal(loc.prefix, "team/kopt");
    assert_true(loc.path_style);
    /* Without a prefix: kopt's; virtual-host addressing when asked. */
    assert_int_equal(locate("http://[::1]:8080/b.1-x", false, &loc, err, sizeof(err)), 0);
    assert_string_equal(loc.endpoint, "http://[::1]:8080");
    assert_string_equal(loc.bucket, "b.1-x");
    assert_string_equal(loc.prefix, "kopt");
    assert_false(loc.path_style);
}

static void s3_url_is_aws_in_the_region(void **state)
{
    kopt_object_store_location_t loc;
    char err[256] = "";

    (void)state;
    assert_int_equal(locate("s3://my-bucket/archive", true, &loc, err, sizeof(err)), 0);
    assert_string_equal(loc.endpoint, "https://s3.eu-west-1.amazonaws.com");
    assert_string_equal(loc.bucket, "my-bucket");
    assert_string_equal(loc.prefix, "archive");
    assert_false(loc.path_style);
}

static void unset_is_not_an_error(void **state)
{
    kopt_object_store_location_t loc;
    kopt_object_store_settings_t s = {0};
    char err[64] = "";

    (void)state;
    assert_false(kopt_object_store_configured(&s));
    assert_int_equal(kopt_object_store_locate(&s, &loc, err, sizeof(err)), -ENOENT);
    s.url = "";
    assert_int_equal(kopt_object_store_locate(&s, &loc, err, sizeof(err)), -ENOENT);
}

static void bad_urls_are_said(void **state)
{
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"ftp://host/bucket", "not http(s)://"},
        {"https://host", "no bucket"},
        {"https://host/", "the bucket must be"},
        {"https://host/Bucket", "the bucket must be"},
        {"https://host/ab", "the bucket must be"},
        {"https://host/-ab", "the bucket must be"},
        {"https://key:secret@host/bucket", "credentials do not belong"},
        {"s3://key@bucket", "credentials do not belong"},
        {"https://host/bucket?x=1", "query or fragment"},
        {"https://host:0/bucket", "host[:port]"},
        {"https://host:99999/bucket", "host[:port]"},
        {"https://ho st/bucket", "host[:port]"},
        {"https://host/bucket//x", "path segments"},
        {"https://host/bucket/../x", "path segments"},
        {"https://host/bucket/a b", "path segments"},
    };
    kopt_object_store_location_t loc;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";

        assert_int_equal(locate(bad[i].url, true, &loc, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].url, err, bad[i].says);
        /* The secret of a URL with credentials is not repeated. */
        assert_null(strstr(err, "secret"));
    }
}

static void options_point_at_the_location(void **state)
{
    kopt_object_store_settings_t s = {.url = "https://h/bkt/p",
                                      .region = "r1",
                                      .ca = "/ca.pem",
                                      .credentials_file = "/creds",
                                      .path_style = true};
    kopt_object_store_location_t loc;
    kopt_objstore_options_t o;
    char err[64];

    (void)state;
    assert_int_equal(kopt_object_store_locate(&s, &loc, err, sizeof(err)), 0);
    kopt_object_store_options(&s, &loc, 1234, &o);
    assert_string_equal(o.endpoint, "https://h");
    assert_string_equal(o.bucket, "bkt");
    assert_string_equal(o.region, "r1");
    assert_string_equal(o.ca_file, "/ca.pem");
    assert_string_equal(o.credentials_file, "/creds");
    assert_true(o.path_style);
    assert_int_equal(o.timeout_ms, 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_url_with_bucket_and_prefix),
        cmocka_unit_test(s3_url_is_aws_in_the_region),
        cmocka_unit_test(unset_is_not_an_error),
        cmocka_unit_test(bad_urls_are_said),
        cmocka_unit_test(options_point_at_the_location),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
