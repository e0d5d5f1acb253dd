/* libkopt's object store client (kopt/objstore.h) against a real S3-protocol
 * server: s3rver behind the harness's SigV4-checking front, which rejects a
 * wrong signature, so these tests prove the requests are signed. Faults (5xx,
 * 403 mid-upload, slowness, a server that is down) come from the front. */
#include "harness.h"
#include "kopt/objstore.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const char *src_root = ".";

typedef struct {
    kopt_test_s3_t *s3;
    kopt_objstore_t *store;
} fixture_t;

/* A store for the harness server; path_style, tiny parts, quick retries. */
static kopt_objstore_t *open_store(kopt_test_s3_t *s3, bool path_style, size_t part_size,
                                   int max_attempts, uint32_t timeout_ms)
{
    char endpoint[96];
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t err;

    /* <bucket>.localhost resolves to loopback, so virtual-host style works. */
    snprintf(endpoint, sizeof(endpoint), "http://%s:%d", path_style ? "127.0.0.1" : "localhost",
             s3->port);
    kopt_objstore_options_t o = {
        .endpoint = endpoint,
        .bucket = s3->bucket,
        .credentials_file = s3->credentials_file,
        .path_style = path_style,
        .part_size = part_size,
        .max_attempts = max_attempts,
        .backoff_base_ms = 20,
        .timeout_ms = timeout_ms,
    };
    int r = kopt_objstore_new(&o, &st, &err);
    if (r < 0)
        fprintf(stderr, "objstore_new: %s\n", err.message);
    assert_int_equal(r, 0);
    return st;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    int r;

    if (!f)
        return -1;
    /* No s3rver (-ENOENT) fails too: scripts/test installs it (scripts/deps). */
    r = kopt_test_s3_start(&f->s3, src_root);
    if (r < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    if (f) {
        kopt_objstore_free(f->store);
        kopt_test_s3_free(f->s3);
        free(f);
    }
    return 0;
}

#define FIXTURE(f)                                                                                 \
    fixture_t *f = *state;                                                                         \
    kopt_test_s3_fault(f->s3, "{\"clear\":true}")

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
    return p;
}

static void roundtrip(fixture_t *f, bool path_style)
{
    kopt_objstore_t *st = open_store(f->s3, path_style, 0, 2, 10000);
    kopt_objstore_error_t err;
    const char *key = path_style ? "rt/path/a b+c.bin" : "rt/vhost/obj.bin";
    char *data = pattern(10000, 1), *back = NULL, sha[65];
    size_t len = 0;
    uint64_t size = 0;
    long bad0 = kopt_test_s3_stat(f->s3, "bad_signatures");

    assert_int_equal(kopt_objstore_put(st, key, data, 10000, &err), 0);
    assert_int_equal(kopt_objstore_get(st, key, &back, &len, &err), 0);
    assert_int_equal(len, 10000);
    assert_memory_equal(back, data, 10000);
    assert_int_equal(kopt_objstore_head(st, key, &size, sha, &err), 0);
    assert_int_equal(size, 10000);
    assert_int_equal(strlen(sha), 64);

    kopt_objstore_entry_t *e = NULL;
    size_t n = 0;
    assert_int_equal(kopt_objstore_list(st, path_style ? "rt/path/" : "rt/vhost/", &e, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].key, key);
    assert_int_equal(e[0].size, 10000);
    kopt_objstore_entries_free(e, n);

    assert_int_equal(kopt_objstore_delete(st, key, &err), 0);
    char *gone = NULL;
    assert_int_equal(kopt_objstore_get(st, key, &gone, &len, &err), -ENOENT);
    assert_null(gone);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "NoSuchKey");
    assert_int_equal(kopt_objstore_delete(st, key, &err), 0); /* already gone: fine */
    /* Every request was signed right: the front checked each one. */
    assert_int_equal(kopt_test_s3_stat(f->s3, "bad_signatures"), bad0);
    free(back);
    free(data);
    kopt_objstore_free(st);
}

static void put_get_list_delete_path_style(void **state)
{
    FIXTURE(f);
    roundtrip(f, true);
}

static void put_get_list_delete_virtual_host(void **state)
{
    FIXTURE(f);
    roundtrip(f, false);
}

/* A wrong secret is a signature the server rejects: -EACCES, not retried. */
static void wrong_secret_is_rejected(void **state)
{
    FIXTURE(f);
    char endpoint[96], *dir = kopt_test_tmpdir("kopt-objstore"), path[512];
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t err;
    FILE *fp;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/creds", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=not-the-secret\n", f->s3->access_key);
    fclose(fp);
    snprintf(endpoint, sizeof(endpoint), "%s", f->s3->url);
    kopt_objstore_options_t o = {.endpoint = endpoint,
                                 .bucket = f->s3->bucket,
                                 .credentials_file = path,
                                 .path_style = true,
                                 .max_attempts = 3,
                                 .backoff_base_ms = 10};
    assert_int_equal(kopt_objstore_new(&o, &st, &err), 0);
    long bad0 = kopt_test_s3_stat(f->s3, "bad_signatures");
    assert_int_equal(kopt_objstore_put(st, "denied/x", "x", 1, &err), -EACCES);
    assert_int_equal(err.http_status, 403);
    assert_int_equal(err.attempts, 1);
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(kopt_objstore_get(st, "denied/x", &back, &len, &err), -EACCES);
    assert_string_equal(err.code, "SignatureDoesNotMatch"); /* HEAD answers have no body */
    assert_null(strstr(err.message, "not-the-secret"));
    assert_int_equal(kopt_test_s3_stat(f->s3, "bad_signatures"), bad0 + 2);
    kopt_objstore_free(st);
    kopt_test_rmtree(dir);
    free(dir);
}

static void credentials_from_environment_or_refused(void **state)
{
    FIXTURE(f);
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t err;
    kopt_objstore_options_t o = {
        .endpoint = f->s3->url, .bucket = f->s3->bucket, .path_style = true};

    unsetenv("KOPT_OBJECT_STORE_ACCESS_KEY_ID");
    unsetenv("KOPT_OBJECT_STORE_SECRET_ACCESS_KEY");
    assert_int_equal(kopt_objstore_new(&o, &st, &err), -EINVAL);
    assert_non_null(strstr(err.message, "KOPT_OBJECT_STORE_ACCESS_KEY_ID"));
    o.credentials_file = "/nonexistent/kopt-creds";
    assert_int_equal(kopt_objstore_new(&o, &st, &err), -EINVAL);
    assert_non_null(strstr(err.message, "/nonexistent/kopt-creds"));
    o.credentials_file = NULL;
    setenv("KOPT_OBJECT_STORE_ACCESS_KEY_ID", f->s3->access_key, 1);
    setenv("KOPT_OBJECT_STORE_SECRET_ACCESS_KEY", f->s3->secret_key, 1);
    assert_int_equal(kopt_objstore_new(&o, &st, &err), 0);
    assert_int_equal(kopt_objstore_put(st, "env/x", "hello", 5, &err), 0);
    unsetenv("KOPT_OBJECT_STORE_ACCESS_KEY_ID");
    unsetenv("KOPT_OBJECT_STORE_SECRET_ACCESS_KEY");
    kopt_objstore_free(st);

    o.endpoint = "ftp://127.0.0.1:1";
    o.credentials_file = f->s3->credentials_file;
    assert_int_equal(kopt_objstore_new(&o, &st, &err), -EINVAL);
    o.endpoint = f->s3->url;
    o.bucket = "Bad_Bucket";
    assert_int_equal(kopt_objstore_new(&o, &st, &err), -EINVAL);
}

/* Write-once: the same bytes again succeed without a write; other bytes are
 * refused and the stored object stays as it was. */
static void refuses_to_overwrite_with_different_content(void **state)
{
    FIXTURE(f);
    kopt_objstore_t *st = open_store(f->s3, true, 0, 2, 10000);
    kopt_objstore_error_t err;
    kopt_objstore_stats_t stats;
    char *back = NULL;
    size_t len = 0;

    assert_int_equal(kopt_objstore_put(st, "once/a", "first", 5, &err), 0);
    long puts0 = kopt_test_s3_stat(f->s3, "requests");
    assert_int_equal(kopt_objstore_put(st, "once/a", "first", 5, &err), 0);
    /* only the HEAD went out */
    assert_int_equal(kopt_test_s3_stat(f->s3, "requests"), puts0 + 1);
    assert_int_equal(kopt_objstore_put(st, "once/a", "other", 5, &err), -EEXIST);
    assert_non_null(strstr(err.message, "refusing to overwrite"));
    assert_int_equal(kopt_objstore_get(st, "once/a", &back, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(back, "first", 5);
    kopt_objstore_stats(st, &stats);
    assert_int_equal(stats.overwrite_refusals, 1);
    free(back);
    kopt_objstore_free(st);
}

static void multipart_upload_roundtrip(void **state)
{
    FIXTURE(f);
    const size_t n = 300 * 1024 + 17, part = 64 * 1024;
    kopt_objstore_t *st = open_store(f->s3, true, part, 3, 10000);
    kopt_objstore_error_t err;
    kopt_objstore_stats_t stats;
    char *data = pattern(n, 2), *back = NULL;
    size_t len = 0;

    /* The second part fails once with a 500: retried, the upload completes. */
    assert_int_equal(kopt_test_s3_fault(f->s3, "{\"method\":\"PUT\",\"query\":\"partNumber=2\","
                                               "\"status\":500}"),
                     0);
    assert_int_equal(kopt_objstore_put(st, "mp/big.bin", data, n, &err), 0);
    assert_int_equal(kopt_objstore_get(st, "mp/big.bin", &back, &len, &err), 0);
    assert_int_equal(len, n);
    assert_memory_equal(back, data, n);
    kopt_objstore_stats(st, &stats);
    assert_int_equal(stats.multipart_uploads, 1);
    assert_int_equal(stats.multipart_aborts, 0);
    assert_true(stats.retries >= 1);
    assert_int_equal(kopt_test_s3_stat(f->s3, "faults"), 1);
    /* The same bytes again: recognised by the recorded SHA-256. */
    assert_int_equal(kopt_objstore_put(st, "mp/big.bin", data, n, &err), 0);
    free(back);
    free(data);
    kopt_objstore_free(st);
}

/* A 403 in the middle of a multipart upload: the error, the upload aborted,
 * no object under the key. */
static void multipart_403_mid_upload_leaves_nothing(void **state)
{
    FIXTURE(f);
    const size_t n = 200 * 1024, part = 64 * 1024;
    kopt_objstore_t *st = open_store(f->s3, true, part, 3, 10000);
    kopt_objstore_error_t err;
    kopt_objstore_stats_t stats;
    char *data = pattern(n, 3);

    assert_int_equal(kopt_test_s3_fault(f->s3, "{\"method\":\"PUT\",\"query\":\"partNumber\","
                                               "\"skip\":1,\"status\":403,\"count\":100}"),
                     0);
    assert_int_equal(kopt_objstore_put(st, "mp/denied.bin", data, n, &err), -EACCES);
    assert_int_equal(err.http_status, 403);
    assert_string_equal(err.code, "AccessDenied");
    kopt_objstore_stats(st, &stats);
    assert_int_equal(stats.multipart_aborts, 1);
    kopt_test_s3_fault(f->s3, "{\"clear\":true}");
    assert_int_equal(kopt_objstore_head(st, "mp/denied.bin", NULL, NULL, &err), -ENOENT);
    free(data);
    kopt_objstore_free(st);
}

/* 500 on every try: retried max_attempts times, then -EREMOTEIO with S3's code. */
static void server_errors_are_retried_then_reported(void **state)
{
    FIXTURE(f);
    kopt_objstore_t *st = open_store(f->s3, true, 0, 3, 10000);
    kopt_objstore_error_t err;
    kopt_objstore_stats_t stats;

    assert_int_equal(kopt_test_s3_fault(f->s3, "{\"method\":\"PUT\",\"status\":500,\"count\":3}"),
                     0);
    assert_int_equal(kopt_objstore_put(st, "err/x", "abc", 3, &err), -EREMOTEIO);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(err.http_status, 500);
    assert_string_equal(err.code, "InternalError");
    kopt_objstore_stats(st, &stats);
    assert_int_equal(stats.retries, 2);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(kopt_objstore_head(st, "err/x", NULL, NULL, &err), -ENOENT);
    /* The fault is used up: the next try works. */
    assert_int_equal(kopt_objstore_put(st, "err/x", "abc", 3, &err), 0);
    kopt_objstore_free(st);
}

/* Slow answers hit the timeout; a server that is down refuses connections. */
static void slow_and_down_servers(void **state)
{
    FIXTURE(f);
    kopt_objstore_t *st = open_store(f->s3, true, 0, 2, 400);
    kopt_objstore_error_t err;
    double t0 = kopt_test_now();

    assert_int_equal(kopt_test_s3_fault(f->s3, "{\"method\":\"GET\",\"delay_ms\":1500,"
                                               "\"count\":2}"),
                     0);
    assert_int_equal(kopt_objstore_get(st, "env/x", &(char *){NULL}, &(size_t){0}, &err),
                     -ETIMEDOUT);
    assert_int_equal(err.attempts, 2);
    assert_true(kopt_test_now() - t0 < 5.0);
    kopt_objstore_free(st);

    assert_int_equal(kopt_test_s3_kill9(f->s3), 0);
    st = open_store(f->s3, true, 0, 3, 2000);
    assert_int_equal(kopt_objstore_put(st, "down/x", "abc", 3, &err), -ECONNREFUSED);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(kopt_test_s3_restart(f->s3), 0);
    /* Back up, with the objects it held. */
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(kopt_objstore_get(st, "once/a", &back, &len, &err), 0);
    assert_int_equal(len, 5);
    free(back);
    kopt_objstore_free(st);
}

static void oversized_get_is_refused(void **state)
{
    FIXTURE(f);
    char endpoint[96];
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t err;
    char *back = NULL;
    size_t len = 0;

    snprintf(endpoint, sizeof(endpoint), "%s", f->s3->url);
    kopt_objstore_options_t o = {.endpoint = endpoint,
                                 .bucket = f->s3->bucket,
                                 .credentials_file = f->s3->credentials_file,
                                 .path_style = true,
                                 .max_object_bytes = 1000};
    assert_int_equal(kopt_objstore_new(&o, &st, &err), 0);
    char *data = pattern(5000, 4);
    assert_int_equal(kopt_objstore_put(st, "big/x", data, 5000, &err), 0);
    assert_int_equal(kopt_objstore_get(st, "big/x", &back, &len, &err), -EFBIG);
    assert_null(back);
    free(data);
    kopt_objstore_free(st);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_list_delete_path_style),
        cmocka_unit_test(put_get_list_delete_virtual_host),
        cmocka_unit_test(wrong_secret_is_rejected),
        cmocka_unit_test(credentials_from_environment_or_refused),
        cmocka_unit_test(refuses_to_overwrite_with_different_content),
        cmocka_unit_test(multipart_upload_roundtrip),
        cmocka_unit_test(multipart_403_mid_upload_leaves_nothing),
        cmocka_unit_test(server_errors_are_retried_then_reported),
        cmocka_unit_test(slow_and_down_servers),
        cmocka_unit_test(oversized_get_is_refused),
    };
    int failed;

    if (argc > 1)
        src_root = argv[1];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, setup, teardown);
    kopt_test_cleanup_all();
    return failed;
}
