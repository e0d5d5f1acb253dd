/* Unit tests for libkopt/http_request.c, the pure parser: good requests,
 * pipelining, every split point, limits (413/414/431), garbage (400), EOF. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/http.h>

static const char post_req[] = "POST /v1/analyze?cluster=c1&dry=1 HTTP/1.1\r\n"
                               "Host: localhost\r\n"
                               "Content-Type: application/json\r\n"
                               "X-Empty:\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "{\"all\":true}\n";

/* Feeds all of s (in one go) to a fresh request; returns feed's result. */
static int parse_all(kopt_http_request_t *r, const char *s, size_t len, size_t *used)
{
    kopt_http_request_reset(r);
    return kopt_http_request_feed(r, s, len, used);
}

static void check_post(const kopt_http_request_t *r)
{
    size_t blen;
    const char *body = kopt_http_request_body(r, &blen);

    assert_string_equal(kopt_http_request_method(r), "POST");
    assert_string_equal(kopt_http_request_path(r), "/v1/analyze");
    assert_string_equal(kopt_http_request_query(r), "cluster=c1&dry=1");
    assert_string_equal(kopt_http_request_header(r, "content-TYPE"), "application/json");
    assert_string_equal(kopt_http_request_header(r, "x-empty"), "");
    assert_null(kopt_http_request_header(r, "Accept"));
    assert_int_equal(kopt_http_request_header_count(r), 4);
    assert_int_equal(blen, 13);
    assert_memory_equal(body, "{\"all\":true}\n", 13);
    assert_true(kopt_http_request_keep_alive(r));
}

static void http_request_parses_a_post(void **state)
{
    kopt_http_request_t *r;
    const char *n, *v;
    size_t used;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    assert_int_equal(parse_all(r, post_req, strlen(post_req), &used), 1);
    assert_int_equal(used, strlen(post_req));
    check_post(r);
    assert_int_equal(kopt_http_request_header_at(r, 0, &n, &v), 0);
    assert_string_equal(n, "Host");
    assert_string_equal(v, "localhost");
    assert_int_equal(kopt_http_request_header_at(r, 4, &n, &v), -ERANGE);
    kopt_http_request_free(r);
    kopt_http_request_free(NULL);
}

static void http_request_keep_alive_rules(void **state)
{
    static const struct {
        const char *req;
        int keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
    };
    kopt_http_request_t *r;
    size_t used;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_all(r, cases[i].req, strlen(cases[i].req), &used), 1);
        assert_int_equal(kopt_http_request_keep_alive(r), cases[i].keep);
        assert_string_equal(kopt_http_request_path(r), "/");
        assert_string_equal(kopt_http_request_query(r), "");
    }
    kopt_http_request_free(r);
}

static void http_request_chunked_and_absolute_url(void **state)
{
    static const char chunked[] = "PUT http://example.com:80/a/b?x=%20y#frag HTTP/1.1\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
    kopt_http_request_t *r;
    size_t used, blen;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    assert_int_equal(parse_all(r, chunked, strlen(chunked), &used), 1);
    assert_string_equal(kopt_http_request_method(r), "PUT");
    assert_string_equal(kopt_http_request_path(r), "/a/b");
    assert_string_equal(kopt_http_request_query(r), "x=%20y");
    assert_string_equal(kopt_http_request_body(r, &blen), "hello world");
    assert_null(kopt_http_request_header(r, "Trailer"));
    kopt_http_request_free(r);
}

static void http_request_pipelined(void **state)
{
    char buf[1024];
    kopt_http_request_t *r;
    size_t used, off = 0, len;

    (void)state;
    len = (size_t)snprintf(buf, sizeof(buf), "%sGET /two HTTP/1.1\r\n\r\n%s", post_req, post_req);
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    assert_int_equal(parse_all(r, buf, len, &used), 1);
    assert_int_equal(used, strlen(post_req));
    check_post(r);
    /* A complete request takes nothing more until reset. */
    assert_int_equal(kopt_http_request_feed(r, buf + used, len - used, &used), 1);
    assert_int_equal(used, 0);
    off = strlen(post_req);
    assert_int_equal(parse_all(r, buf + off, len - off, &used), 1);
    assert_string_equal(kopt_http_request_path(r), "/two");
    off += used;
    assert_int_equal(parse_all(r, buf + off, len - off, &used), 1);
    assert_int_equal(off + used, len);
    check_post(r);
    kopt_http_request_free(r);
}

static void http_request_split_at_every_byte(void **state)
{
    size_t len = strlen(post_req), used;
    kopt_http_request_t *r;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    for (size_t cut = 0; cut <= len; cut++) {
        kopt_http_request_reset(r);
        assert_int_equal(kopt_http_request_feed(r, post_req, cut, &used), cut == len ? 1 : 0);
        if (cut < len) {
            assert_int_equal(used, cut);
            assert_int_equal(kopt_http_request_feed(r, post_req + cut, len - cut, &used), 1);
            assert_int_equal(used, len - cut);
        }
        check_post(r);
    }
    /* And one byte at a time. */
    kopt_http_request_reset(r);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(kopt_http_request_feed(r, post_req + i, 1, &used), i + 1 == len);
    check_post(r);
    kopt_http_request_free(r);
}

static void expect_error(kopt_http_request_t *r, const char *s, size_t len, int err, int status,
                         const char *reason)
{
    const char *got;
    size_t used;

    assert_int_equal(parse_all(r, s, len, &used), err);
    assert_int_equal(kopt_http_request_error(r, &got), status);
    assert_string_equal(got, reason);
    /* The error sticks. */
    assert_int_equal(kopt_http_request_feed(r, "x", 1, &used), err);
}

static void http_request_limits(void **state)
{
    static char s[20200];
    size_t big = 20000;
    kopt_http_request_t *r;
    size_t n;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    n = (size_t)sprintf(s, "GET / HTTP/1.1\r\nX-Big: ");
    memset(s + n, 'a', big);
    strcpy(s + n + big, "\r\n\r\n");
    expect_error(r, s, strlen(s), -EMSGSIZE, 431, "headers_too_large");
    n = (size_t)sprintf(s, "GET /");
    memset(s + n, 'u', 9000);
    strcpy(s + n + 9000, " HTTP/1.1\r\n\r\n");
    expect_error(r, s, strlen(s), -ENAMETOOLONG, 414, "url_too_long");
    n = 0;
    n += (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)sprintf(s + n, "H%d: v\r\n", i);
    strcpy(s + n, "\r\n");
    expect_error(r, s, strlen(s), -EMSGSIZE, 431, "headers_too_large");
    /* Refused from the header alone: the body is never read. */
    strcpy(s, "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n");
    expect_error(r, s, strlen(s), -EFBIG, 413, "body_too_large");
    kopt_http_request_free(r);
}

static void http_request_small_limits_and_chunked_overflow(void **state)
{
    static const char chunked[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
    kopt_http_limits_t l;
    kopt_http_request_t *r;

    (void)state;
    kopt_http_limits_default(&l);
    l.max_body_bytes = 10;
    assert_int_equal(kopt_http_request_new(&l, &r), 0);
    expect_error(r, chunked, strlen(chunked), -EFBIG, 413, "body_too_large");
    kopt_http_request_free(r);
}

static void http_request_garbage_is_400(void **state)
{
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    };
    kopt_http_request_t *r;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(r, bad[i], strlen(bad[i]), -EBADMSG, 400, "syntax");
    kopt_http_request_free(r);
}

static void http_request_eof(void **state)
{
    kopt_http_request_t *r;
    const char *reason;
    size_t used;

    (void)state;
    assert_int_equal(kopt_http_request_new(NULL, &r), 0);
    assert_int_equal(kopt_http_request_feed(r, "", 0, &used), 0);
    assert_false(kopt_http_request_started(r));
    assert_int_equal(kopt_http_request_feed(r, "GET / HT", 8, &used), 0);
    assert_true(kopt_http_request_started(r));
    assert_int_equal(kopt_http_request_feed(r, "", 0, &used), -EBADMSG);
    assert_int_equal(kopt_http_request_error(r, &reason), 400);
    assert_string_equal(reason, "incomplete");
    kopt_http_request_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_request_parses_a_post),
        cmocka_unit_test(http_request_keep_alive_rules),
        cmocka_unit_test(http_request_chunked_and_absolute_url),
        cmocka_unit_test(http_request_pipelined),
        cmocka_unit_test(http_request_split_at_every_byte),
        cmocka_unit_test(http_request_limits),
        cmocka_unit_test(http_request_small_limits_and_chunked_overflow),
        cmocka_unit_test(http_request_garbage_is_400),
        cmocka_unit_test(http_request_eof),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
