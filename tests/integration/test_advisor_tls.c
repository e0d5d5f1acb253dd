/* kopt-advisor, the real binary, serving its HTTP/JSON gateway over TLS
 * (--http-tls on, the gRPC port's certificates from scripts/certs) with API
 * keys, seen with libcurl: a key is still needed over HTTPS (but not with a
 * kopt service's client certificate, as on gRPC), plain HTTP and a client
 * that does not trust the server are refused, a rogue client certificate is
 * refused, SIGHUP serves new certificates, SIGTERM exits 0. ClickHouse is left unreachable: the
 * gateway answers from (empty) memory, which is all this test needs.
 *
 * usage: test_advisor_tls SRCDIR KOPT_ADVISOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define KEY "tls-itest-key-0123456789"

static const char *src_root, *advisor_exe;
/* No ClickHouse, no NATS: the gateway answers from (empty) memory. */
static kopt_test_advisor_t w;
static char pki[1024], pki2[1024]; /* the advisor's certificates (w.certs); new ones */

/* d/name; sixteen results live at once (test thread only). */
static const char *file(const char *d, const char *name)
{
    static char buf[16][1200];
    static int i;

    i = (i + 1) % 16;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", d, name);
    return buf[i];
}

typedef struct {
    const char *scheme; /* "https" or "http" */
    const char *ca;
    const char *cert, *key; /* client certificate, or NULL */
    const char *api_key;    /* or NULL */
} req_t;

/* GET /v1/recommendations; curl's result, the status and the body's first
 * 4 KB. */
static CURLcode get(const req_t *q, long *status, char *body)
{
    char url[256];
    kopt_test_http_req_t r = {.url = url,
                              .bearer = q->api_key,
                              .ca = q->ca,
                              .cert = q->cert,
                              .key = q->key,
                              .timeout_ms = 10000};
    kopt_test_http_resp_t a;
    CURLcode rc;

    snprintf(url, sizeof(url), "%s://localhost:%d/v1/recommendations", q->scheme, w.http_port);
    *status = kopt_test_http_call(&r, &a);
    rc = (CURLcode)a.curl;
    snprintf(body, 4096, "%s", a.body);
    kopt_test_http_resp_free(&a);
    return rc;
}

static void gateway_serves_https_with_api_keys(void **state)
{
    req_t q = {.scheme = "https", .ca = file(pki, "ca.pem"), .api_key = KEY};
    char body[4096];
    long status;

    (void)state;
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{}"); /* nothing analysed: ClickHouse is away */
    q.api_key = "wrong-key";
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 401);
    q.api_key = NULL;
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 401);
}

static void plain_http_and_untrusting_clients_are_refused(void **state)
{
    req_t q = {.scheme = "http", .ca = file(pki, "ca.pem"), .api_key = KEY};
    char body[4096];
    long status;

    (void)state;
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 400);
    assert_non_null(strstr(body, "https://"));
    q.scheme = "https";
    q.ca = file(pki, "rogue-ca.pem");
    assert_int_equal(get(&q, &status, body), CURLE_PEER_FAILED_VERIFICATION);
}

/* Client certificates are optional, as on the gRPC port, and verified. */
static void client_certificates_are_verified_when_sent(void **state)
{
    req_t q = {.scheme = "https",
               .ca = file(pki, "ca.pem"),
               .cert = file(pki, "client.pem"),
               .key = file(pki, "client-key.pem"),
               .api_key = KEY};
    char body[4096];
    long status;

    (void)state;
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 200);
    /* A kopt service identity (spiffe://kopt/service/...) needs no key, as on gRPC; an
     * agent's does. */
    q.api_key = NULL;
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 200);
    q.cert = file(pki, "agent-local.pem");
    q.key = file(pki, "agent-local-key.pem");
    assert_int_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 401);
    q.api_key = KEY;
    q.cert = file(pki, "rogue-client.pem");
    q.key = file(pki, "rogue-client-key.pem");
    assert_int_not_equal(get(&q, &status, body), CURLE_OK);
    assert_int_equal(status, 0);
}

static void sighup_serves_new_certificates(void **state)
{
    req_t q = {.scheme = "https", .ca = file(pki2, "ca.pem"), .api_key = KEY};
    char body[4096], cmd[8192];
    long status = 0;

    (void)state;
    assert_int_not_equal(get(&q, &status, body), CURLE_OK); /* not yet trusted */
    snprintf(cmd, sizeof(cmd), "cp '%s/server.pem' '%s/server-key.pem' '%s/ca.pem' '%s/'", pki2,
             pki2, pki2, pki);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(kopt_test_proc_signal(&w.proc, SIGHUP), 0);
    for (int i = 0; i < 100 && status != 200; i++) {
        usleep(50 * 1000);
        get(&q, &status, body);
    }
    assert_int_equal(status, 200);
    assert_true(kopt_test_log_contains(w.log, "HTTPS certificates re-read"));
}

static int group_setup(void **state)
{
    static char *const env[] = {"KOPT_HTTP_TLS=on", NULL}; /* the environment form of --http-tls */
    const char *const extra[] = {"--log-format", "text", NULL};
    kopt_test_advisor_opts_t o = {.src_dir = src_root,
                                  .advisor_exe = advisor_exe,
                                  .name = "advisor-tls",
                                  .keys = KEY "\n",
                                  .tls = true,
                                  .no_nats = true,
                                  .no_clickhouse = true,
                                  .env = env};

    (void)state;
    assert_int_equal(kopt_test_advisor_setup(&w, &o), 0);
    snprintf(pki, sizeof(pki), "%s", w.certs);
    snprintf(pki2, sizeof(pki2), "%s/pki2", w.dir);
    assert_int_equal(mkdir(pki2, 0700), 0);
    assert_int_equal(kopt_test_make_certs(src_root, pki2), 0);
    return kopt_test_advisor_start(&w, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    return kopt_test_advisor_teardown(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gateway_serves_https_with_api_keys),
        cmocka_unit_test(plain_http_and_untrusting_clients_are_refused),
        cmocka_unit_test(client_certificates_are_verified_when_sent),
        cmocka_unit_test(sighup_serves_new_certificates),
    };
    int failed;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_ADVISOR\n", argv[0]);
        return 2;
    }
    src_root = argv[1];
    advisor_exe = argv[2];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return failed;
}
