/* kopt-advisor, the real binary, accepting OIDC bearer tokens (issue 21).
 * The harness's issuer (tests/harness/oidc_issuer.c) makes RSA 2048 and EC
 * P-256 keys at run time and serves the discovery document and the JWKS
 * over HTTPS (scripts/certs' server certificate; --oidc-ca its CA). Calls go
 * over HTTPS to the gateway (libcurl) and over gRPC with TLS through the
 * kopt CLI (--token-file, KOPT_TOKEN). Shown: a viewer token lists but
 * RunAnalysis is refused naming the operator role (403 / PERMISSION_DENIED,
 * CLI exit 3), an operator token runs an analysis; expired, not yet valid,
 * wrong issuer, wrong audience, unknown kid, another key's signature, alg
 * none, HS256 keyed with the public key and oversized tokens are each
 * refused (401 / UNAUTHENTICATED) and counted by result; while the issuer
 * is down or serves garbage (as discovery or as JWKS), API keys, service
 * certificates and tokens of the keys already held keep working; a rotated key is fetched on
 * its unknown kid; a flood of made-up kids fetches at most once per
 * --oidc-refresh-min-interval. ClickHouse is left unreachable: the analysis
 * an operator starts fails there, after authorization.
 *
 * usage: test_advisor_oidc SRCDIR KOPT_ADVISOR KOPT_CLI */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"

#define AUD "kopt"
#define VIEWER_KEY "viewer-key-0123456789"
#define OPERATOR_KEY "operator-key-0123456789"
#define MIN_REFRESH_S 2

static const char *src_root, *advisor_exe, *cli_exe;
/* No ClickHouse, no NATS; scripts/certs in w.certs (pki). */
static kopt_test_advisor_t w;
static char pki[1024], token_path[1024], cli_log[1024], admin_url[64];
static kopt_test_issuer_t *issuer;
static kopt_test_jwk_t *rsa, *ec, *other, *rotated;

static const char *file(const char *d, const char *name)
{
    static char buf[16][1200];
    static int i;

    i = (i + 1) % 16;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", d, name);
    return buf[i];
}

/* A token of `k` for `groups` (JSON array text), valid from now+nbf_in to
 * now+exp_in, for issuer iss (NULL: the harness issuer) and audience aud. */
static char *mint(const kopt_test_jwk_t *k, const char *groups, long exp_in, long nbf_in,
                  const char *iss, const char *aud)
{
    char claims[1024];
    long now = (long)time(NULL);

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"user@example.com\",\"aud\":\"%s\",\"exp\":%ld,\"nbf\":%ld,"
             "\"iat\":%ld,\"groups\":%s}",
             iss ? iss : kopt_test_issuer_url(issuer), aud ? aud : AUD, now + exp_in, now + nbf_in,
             now, groups);
    return kopt_test_jwt_sign(k, NULL, claims);
}

static const char *std_claims(void)
{
    static char buf[512];

    snprintf(buf, sizeof(buf),
             "{\"iss\":\"%s\",\"sub\":\"mallory\",\"aud\":\"" AUD
             "\",\"exp\":%ld,\"groups\":[\"kopt-operator\"]}",
             kopt_test_issuer_url(issuer), (long)time(NULL) + 600);
    return buf;
}

/* One HTTPS call to the gateway: GET, or POST with a JSON body. `cert`: a
 * client certificate name in pki (NULL: none). Returns the HTTP status; the
 * body's first 4 KB in `body`. */
static long http(const char *verb, const char *path, const char *token, const char *cert,
                 char *body)
{
    char url[256], pem[64], key[64];
    kopt_test_http_req_t q = {.method = verb, .url = url, .bearer = token, .timeout_ms = 20000};
    kopt_test_http_resp_t r;
    long status;

    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", w.http_port, path);
    q.ca = file(pki, "ca.pem");
    if (cert) {
        snprintf(pem, sizeof(pem), "%s.pem", cert);
        snprintf(key, sizeof(key), "%s-key.pem", cert);
        q.cert = file(pki, pem);
        q.key = file(pki, key);
    }
    if (strcmp(verb, "POST") == 0)
        q.body = "{\"dryRun\":true}";
    status = kopt_test_http_call(&q, &r);
    snprintf(body, 4096, "%s", r.body);
    kopt_test_http_resp_free(&r);
    return status;
}

/* The kopt CLI over gRPC with TLS, the token in --token-file (or, with
 * via_env, KOPT_TOKEN). Returns the exit code; out gets its output. */
static int cli(const char *cmd, const char *token, bool via_env, char *out, size_t outlen)
{
    char *argv[16];
    int n = 0, rc;
    FILE *f;

    argv[n++] = (char *)cli_exe;
    argv[n++] = (char *)cmd;
    argv[n++] = "--address";
    argv[n++] = w.target;
    argv[n++] = "--ca-file";
    argv[n++] = (char *)file(pki, "ca.pem");
    argv[n++] = "--timeout";
    argv[n++] = "20";
    if (token && !via_env) {
        f = fopen(token_path, "w");
        assert_non_null(f);
        fputs(token, f);
        fclose(f);
        chmod(token_path, 0600);
        argv[n++] = "--token-file";
        argv[n++] = token_path;
    }
    if (strcmp(cmd, "analyze") == 0)
        argv[n++] = "--dry-run";
    argv[n] = NULL;
    if (token && via_env)
        setenv("KOPT_TOKEN", token, 1);
    unlink(cli_log);
    rc = kopt_test_proc_run(argv, cli_log, 30000);
    unsetenv("KOPT_TOKEN");
    out[0] = '\0';
    f = fopen(cli_log, "r");
    if (f) {
        size_t got = fread(out, 1, outlen - 1, f);

        out[got] = '\0';
        fclose(f);
    }
    return rc;
}

static double metric(const char *sample)
{
    double v = kopt_test_metric(admin_url, sample);

    return v < 0 ? 0 : v;
}

static double auth_count(const char *method, const char *result)
{
    char s[160];

    snprintf(s, sizeof(s), "kopt_advisor_auth_total{method=\"%s\",result=\"%s\"}", method, result);
    return metric(s);
}

static void viewer_reads_and_operator_runs_analyses(void **state)
{
    char *viewer = mint(rsa, "[\"staff\",\"kopt-viewer\"]", 600, -10, NULL, NULL);
    char *op = mint(ec, "[\"kopt-operator\"]", 600, -10, NULL, NULL);
    char *nobody = mint(rsa, "[\"staff\"]", 600, -10, NULL, NULL);
    char body[4096], out[8192];
    double ok0 = auth_count("jwt", "ok"), denied0 = auth_count("jwt", "denied");
    double runs0 = metric("kopt_advisor_analysis_runs_total{result=\"error\"}");
    long st;
    int rc;

    (void)state;
    assert_non_null(viewer);
    assert_non_null(op);
    /* Viewer: reads over HTTP and gRPC, RunAnalysis refused naming the role. */
    assert_int_equal(http("GET", "/v1/recommendations", viewer, NULL, body), 200);
    assert_int_equal(http("GET", "/v1/clusters", viewer, NULL, body), 200);
    assert_int_equal(http("POST", "/v1/analyses", viewer, NULL, body), 403);
    assert_non_null(strstr(body, "operator role"));
    assert_non_null(strstr(body, "\"code\":7"));
    rc = cli("recommendations", viewer, false, out, sizeof(out));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    rc = cli("analyze", viewer, true, out, sizeof(out)); /* KOPT_TOKEN */
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out, "operator role"));
    /* Without a kopt group: not even reading. */
    assert_int_equal(http("GET", "/v1/recommendations", nobody, NULL, body), 403);
    assert_non_null(strstr(body, "viewer role"));
    /* Operator: RunAnalysis gets through to the analysis (which then finds
     * no ClickHouse). */
    st = http("POST", "/v1/analyses", op, NULL, body);
    assert_true(st != 401 && st != 403);
    rc = cli("analyze", op, false, out, sizeof(out));
    assert_true(rc != 0 && rc != 3);
    assert_true(metric("kopt_advisor_analysis_runs_total{result=\"error\"}") >= runs0 + 2);
    assert_true(auth_count("jwt", "ok") >= ok0 + 5);
    assert_true(auth_count("jwt", "denied") >= denied0 + 3);
    /* Logs name the subject and the decision, never the token. */
    assert_true(kopt_test_log_contains(w.log, "user@example.com"));
    assert_false(kopt_test_log_contains(w.log, viewer));
    assert_false(kopt_test_log_contains(w.log, op));
    free(viewer);
    free(op);
    free(nobody);
}

typedef struct {
    const char *name; /* the result label */
    char *token;
} bad_t;

static void bad_tokens_are_refused_and_counted(void **state)
{
    kopt_test_jwk_t *stranger = kopt_test_jwk_new("ES256", "stranger");
    const char *g = "[\"kopt-operator\"]";
    char big[6 * 1024], body[4096], out[8192];
    bad_t bad[] = {
        {"expired", mint(rsa, g, -3600, -7200, NULL, NULL)},
        {"not_yet_valid", mint(rsa, g, 7200, 600, NULL, NULL)},
        {"bad_issuer", mint(rsa, g, 600, -10, "https://evil.example", NULL)},
        {"bad_audience", mint(ec, g, 600, -10, NULL, "another-service")},
        {"unknown_kid", mint(stranger, g, 600, -10, NULL, NULL)},
        {"bad_signature", mint(other, g, 600, -10, NULL, NULL)},
        {"bad_alg", kopt_test_jwt_unsigned("{\"alg\":\"none\",\"typ\":\"JWT\"}", std_claims())},
        {"bad_alg", kopt_test_jwt_hs256_public(rsa, std_claims())},
        {"too_large", NULL},
    };
    size_t n = sizeof(bad) / sizeof(bad[0]);

    (void)state;
    assert_non_null(stranger);
    /* 6 KiB: over --oidc-max-token-size (4 KiB here), under the header limits of
     * HTTP (16 KiB) and gRPC (docs/stack-facts.md). */
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[100] = '.';
    big[200] = '.';
    bad[n - 1].token = big;
    for (size_t i = 0; i < n; i++) {
        double before = auth_count("jwt", bad[i].name);
        int rc;

        assert_non_null(bad[i].token);
        fprintf(stderr, "# %s\n", bad[i].name);
        assert_int_equal(http("GET", "/v1/recommendations", bad[i].token, NULL, body), 401);
        assert_non_null(strstr(body, "\"code\":16"));
        rc = cli("recommendations", bad[i].token, false, out, sizeof(out));
        if (rc != 3)
            fprintf(stderr, "%s\n", out);
        assert_int_equal(rc, 3);
        assert_int_equal(auth_count("jwt", bad[i].name), before + 2);
    }
    for (size_t i = 0; i + 1 < n; i++)
        free(bad[i].token);
    kopt_test_jwk_free(stranger);
    /* API keys still work. */
    assert_int_equal(http("GET", "/v1/recommendations", VIEWER_KEY, NULL, body), 200);
}

/* ListClusters on gRPC C core over TLS with "authorization: Bearer <token>",
 * for sizes the CLI refuses to send. Returns the status; details filled. */
static int grpc_list_clusters(const char *token, char *details, size_t dlen)
{
    Kopt__V1__ListClustersRequest req = KOPT__V1__LIST_CLUSTERS_REQUEST__INIT;
    int status;

    /* No descriptor: the answer (there is none when refused) is not read. */
    assert_null(kopt_test_grpc_unary_bearer(w.target, file(pki, "ca.pem"), token,
                                            "/kopt.v1.Advisor/ListClusters", &req.base, NULL,
                                            &status, details, dlen));
    return status;
}

/* 100 KB: refused by the transports' header limits before auth runs; the
 * advisor keeps serving. */
static void a_100kb_token_is_refused(void **state)
{
    size_t n = 100 * 1024;
    char *huge = malloc(n + 1), body[4096], out[8192];
    double bad0 = metric("kopt_http_bad_requests_total{reason=\"headers_too_large\"}");
    int rc;

    (void)state;
    assert_non_null(huge);
    memset(huge, 'A', n);
    huge[n] = '\0';
    huge[10] = '.';
    huge[20] = '.';
    assert_int_equal(http("GET", "/v1/recommendations", huge, NULL, body), 431);
    assert_true(metric("kopt_http_bad_requests_total{reason=\"headers_too_large\"}") >= bad0 + 1);
    /* The CLI does not even send it (over 15 KiB); gRPC core's own limit
     * refuses it on the wire (docs/stack-facts.md). */
    rc = cli("recommendations", huge, false, out, sizeof(out));
    assert_int_equal(rc, 2);
    rc = grpc_list_clusters(huge, out, sizeof(out));
    fprintf(stderr, "# gRPC with a 100 KB token: status %d: %.300s\n", rc, out);
    assert_int_not_equal(rc, GRPC_STATUS_OK);
    huge[12 * 1024] = '\0';
    rc = grpc_list_clusters(huge, out, sizeof(out));
    fprintf(stderr, "# gRPC with a 12 KiB token: status %d: %.300s\n", rc, out);
    assert_int_not_equal(rc, GRPC_STATUS_OK);
    free(huge);
    assert_int_equal(http("GET", "/v1/recommendations", VIEWER_KEY, NULL, body), 200);
    assert_int_equal(cli("recommendations", OPERATOR_KEY, false, out, sizeof(out)), 0);
}

/* Waits until the fetch counter of `result` passes `above`; 0 or -1. */
static int wait_fetch(const char *result, double above)
{
    char s[128];

    snprintf(s, sizeof(s), "kopt_advisor_oidc_key_fetches_total{result=\"%s\"}", result);
    for (int i = 0; i < 200; i++) {
        if (metric(s) > above)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

static void issuer_down_or_garbage_then_a_rotated_key(void **state)
{
    char *held = mint(rsa, "[\"kopt-viewer\"]", 600, -10, NULL, NULL);
    char *fresh = mint(rotated, "[\"kopt-viewer\"]", 600, -10, NULL, NULL);
    char body[4096], out[8192], *jwks;
    kopt_test_jwk_t *all[3] = {rsa, ec, rotated};
    double err0 = metric("kopt_advisor_oidc_key_fetches_total{result=\"error\"}");
    double ok0;
    long st = 0;

    (void)state;
    kopt_test_issuer_set_mode(issuer, KOPT_TEST_ISSUER_DOWN);
    sleep(MIN_REFRESH_S); /* past the rate limit: the next unknown kid fetches */
    assert_int_equal(http("GET", "/v1/recommendations", fresh, NULL, body), 401);
    assert_non_null(strstr(body, "unknown key"));
    assert_int_equal(wait_fetch("error", err0), 0);
    /* Down: API keys, service certificates and held keys' tokens work. */
    assert_int_equal(http("GET", "/v1/recommendations", VIEWER_KEY, NULL, body), 200);
    assert_int_equal(http("POST", "/v1/analyses", VIEWER_KEY, NULL, body), 403);
    assert_int_equal(http("GET", "/v1/recommendations", NULL, "client", body), 200);
    assert_int_equal(http("GET", "/v1/recommendations", held, NULL, body), 200);
    assert_int_equal(cli("recommendations", held, false, out, sizeof(out)), 0);
    /* Garbage: the same. */
    err0 = metric("kopt_advisor_oidc_key_fetches_total{result=\"error\"}");
    kopt_test_issuer_set_mode(issuer, KOPT_TEST_ISSUER_GARBAGE);
    sleep(MIN_REFRESH_S);
    assert_int_equal(http("GET", "/v1/recommendations", fresh, NULL, body), 401);
    assert_int_equal(wait_fetch("error", err0), 0);
    assert_true(kopt_test_log_contains(w.log, "not a discovery document"));
    assert_int_equal(http("GET", "/v1/recommendations", held, NULL, body), 200);
    assert_int_equal(http("GET", "/v1/recommendations", OPERATOR_KEY, NULL, body), 200);
    /* A good discovery document, but the JWKS is garbage: the same. */
    err0 = metric("kopt_advisor_oidc_key_fetches_total{result=\"error\"}");
    kopt_test_issuer_set_jwks(issuer, "<html>502 Bad Gateway</html>");
    kopt_test_issuer_set_mode(issuer, KOPT_TEST_ISSUER_UP);
    sleep(MIN_REFRESH_S);
    assert_int_equal(http("GET", "/v1/recommendations", fresh, NULL, body), 401);
    assert_int_equal(wait_fetch("error", err0), 0);
    assert_true(kopt_test_log_contains(w.log, "not a JWKS"));
    assert_int_equal(http("GET", "/v1/recommendations", held, NULL, body), 200);
    assert_true(metric("kopt_advisor_oidc_keys") == 2);
    /* Back, with the rotated key: its kid makes the advisor fetch again. */
    jwks = kopt_test_jwks_json(all, 3);
    kopt_test_issuer_set_jwks(issuer, jwks);
    free(jwks);
    ok0 = metric("kopt_advisor_oidc_key_fetches_total{result=\"ok\"}");
    kopt_test_issuer_set_mode(issuer, KOPT_TEST_ISSUER_UP);
    sleep(MIN_REFRESH_S);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = http("GET", "/v1/recommendations", fresh, NULL, body);
        if (st != 200)
            usleep(100 * 1000);
    }
    assert_int_equal(st, 200);
    assert_true(metric("kopt_advisor_oidc_key_fetches_total{result=\"ok\"}") > ok0);
    assert_true(metric("kopt_advisor_oidc_keys") == 3);
    free(held);
    free(fresh);
}

static void a_flood_of_unknown_kids_is_rate_limited(void **state)
{
    kopt_test_jwk_t *k = kopt_test_jwk_new("ES256", "x");
    char header[128], body[4096];
    int hits0, hits;
    double t0, elapsed;

    (void)state;
    assert_non_null(k);
    sleep(MIN_REFRESH_S);
    hits0 = kopt_test_issuer_jwks_hits(issuer);
    t0 = kopt_test_now();
    for (int i = 0; i < 100; i++) {
        char *tok;

        snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"random-%d-%ld\"}", i,
                 random());
        tok = kopt_test_jwt_sign(k, header, std_claims());
        assert_int_equal(http("GET", "/v1/recommendations", tok, NULL, body), 401);
        free(tok);
    }
    usleep(500 * 1000); /* a fetch started last lands */
    elapsed = kopt_test_now() - t0;
    hits = kopt_test_issuer_jwks_hits(issuer) - hits0;
    fprintf(stderr, "# 100 unknown kids in %.2f s: %d JWKS fetches\n", elapsed, hits);
    assert_true(hits >= 1);
    assert_true(hits <= (int)(elapsed / MIN_REFRESH_S) + 1);
    kopt_test_jwk_free(k);
}

static int group_setup(void **state)
{
    static char *const env[] = {"KOPT_HTTP_TLS=on", NULL};
    kopt_test_advisor_opts_t o = {.src_dir = src_root,
                                  .advisor_exe = advisor_exe,
                                  .name = "advisor-oidc",
                                  .keys = VIEWER_KEY " viewer\n" OPERATOR_KEY "\n",
                                  .tls = true,
                                  .no_nats = true,
                                  .no_clickhouse = true,
                                  .env = env};
    char *jwks, min_refresh[16];

    (void)state;
    assert_int_equal(kopt_test_advisor_setup(&w, &o), 0);
    snprintf(pki, sizeof(pki), "%s", w.certs);
    snprintf(token_path, sizeof(token_path), "%s/token", w.dir);
    snprintf(cli_log, sizeof(cli_log), "%s/cli.log", w.dir);
    rsa = kopt_test_jwk_new("RS256", "rsa-1");
    ec = kopt_test_jwk_new("ES256", "ec-1");
    other = kopt_test_jwk_new("RS256", "rsa-1"); /* signed by another key, same kid */
    rotated = kopt_test_jwk_new("RS256", "rsa-2");
    assert_true(rsa && ec && other && rotated);
    assert_int_equal(kopt_test_issuer_start(&issuer, w.cert, w.key), 0);
    {
        kopt_test_jwk_t *both[2] = {rsa, ec};

        jwks = kopt_test_jwks_json(both, 2);
        assert_non_null(jwks);
        kopt_test_issuer_set_jwks(issuer, jwks);
        free(jwks);
    }
    snprintf(min_refresh, sizeof(min_refresh), "%ds", MIN_REFRESH_S);
    {
        const char *const extra[] = {"--oidc-issuer",
                                     kopt_test_issuer_url(issuer),
                                     "--oidc-audience",
                                     AUD,
                                     "--oidc-ca",
                                     w.ca,
                                     "--oidc-max-token-size",
                                     "4KiB",
                                     "--oidc-refresh-min-interval",
                                     min_refresh,
                                     "--log-format",
                                     "text",
                                     "--log-level",
                                     "debug",
                                     NULL};

        if (kopt_test_advisor_start(&w, extra) != 0)
            return -1;
    }
    snprintf(admin_url, sizeof(admin_url), "http://127.0.0.1:%d", w.admin_port);
    for (int i = 0; i < 200 && metric("kopt_advisor_oidc_keys") != 2; i++)
        usleep(50 * 1000);
    if (metric("kopt_advisor_oidc_keys") != 2) {
        kopt_test_log_tail(w.log, 40);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int r = kopt_test_advisor_stop_checked(&w.proc, w.log);

    (void)state;
    kopt_test_issuer_free(issuer);
    kopt_test_jwk_free(rsa);
    kopt_test_jwk_free(ec);
    kopt_test_jwk_free(other);
    kopt_test_jwk_free(rotated);
    if (kopt_test_advisor_teardown(&w) != 0)
        r = -1;
    return r;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(viewer_reads_and_operator_runs_analyses),
        cmocka_unit_test(bad_tokens_are_refused_and_counted),
        cmocka_unit_test(a_100kb_token_is_refused),
        cmocka_unit_test(issuer_down_or_garbage_then_a_rotated_key),
        cmocka_unit_test(a_flood_of_unknown_kids_is_rate_limited),
    };
    int failed;

    if (argc < 4) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_ADVISOR KOPT_CLI\n", argv[0]);
        return 2;
    }
    src_root = argv[1];
    advisor_exe = argv[2];
    cli_exe = argv[3];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    grpc_init();
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    grpc_shutdown();
    curl_global_cleanup();
    return failed;
}
