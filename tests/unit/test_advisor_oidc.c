/* advisor/auth.c with advisor/oidc.c on a JWKS file (--oidc-jwks-file), keys
 * and tokens made at test time: roles from the groups claim (viewer reads,
 * operator also runs analyses, neither is refused with the missing role
 * named), a custom nested roles claim, API keys beside tokens, every
 * refusal counted in kopt_advisor_auth_total by result, and SIGHUP's re-read
 * of the file (a rotated key). Fetching over HTTPS is tested against the
 * real advisor in tests/integration/test_advisor_oidc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopt/log.h>

#include "advisor.h"
#include "harness.h"

#define ISS "https://idp.example/realms/k"
#define AUD "kopt-api"

typedef struct {
    char *dir;
    char jwks[512], keys[512];
    uv_loop_t loop;
    kopt_metrics_t *metrics;
    adv_auth_t *auth;
    adv_oidc_t *oidc;
    kopt_test_jwk_t *rsa, *ec;
} fx_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void publish_keys(fx_t *fx, kopt_test_jwk_t *const *k, size_t n)
{
    char *json = kopt_test_jwks_json(k, n);

    assert_non_null(json);
    write_file(fx->jwks, json);
    free(json);
}

static void start(fx_t *fx, const char *claim, const char *viewers)
{
    kopt_config_list_t v = {0}, o = {0};
    char *vi[1] = {(char *)viewers}, *op[1] = {"kopt-operator"};
    adv_oidc_opts_t oo = {.issuer = ISS,
                          .audience = AUD,
                          .jwks_file = fx->jwks,
                          .refresh_ms = 3600000,
                          .min_refresh_ms = 30000,
                          .skew_s = 60,
                          .max_token = 8192,
                          .roles_claim = claim};
    char err[512] = "";

    v.items = vi;
    v.n = 1;
    o.items = op;
    o.n = 1;
    oo.viewer_values = &v;
    oo.operator_values = &o;
    assert_int_equal(adv_auth_new(fx->keys, false, &fx->auth, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_set_metrics(fx->auth, fx->metrics), 0);
    assert_int_equal(adv_oidc_new(&fx->loop, fx->metrics, &oo, &fx->oidc, err, sizeof(err)), 0);
    adv_auth_set_oidc(fx->auth, fx->oidc);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    kopt_test_jwk_t *k[2];

    if (!fx || !(fx->dir = kopt_test_tmpdir("kopt-oidc-unit")))
        return -1;
    snprintf(fx->jwks, sizeof(fx->jwks), "%s/jwks.json", fx->dir);
    snprintf(fx->keys, sizeof(fx->keys), "%s/keys", fx->dir);
    write_file(fx->keys, "viewer-key-0123456789 viewer\n");
    fx->rsa = kopt_test_jwk_new("RS256", "r1");
    fx->ec = kopt_test_jwk_new("ES256", "e1");
    if (!fx->rsa || !fx->ec || uv_loop_init(&fx->loop) < 0 || kopt_metrics_new(&fx->metrics) < 0)
        return -1;
    k[0] = fx->rsa;
    k[1] = fx->ec;
    publish_keys(fx, k, 2);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    adv_oidc_close(fx->oidc);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_loop_close(&fx->loop);
    adv_auth_free(fx->auth);
    kopt_metrics_free(fx->metrics);
    kopt_test_jwk_free(fx->rsa);
    kopt_test_jwk_free(fx->ec);
    kopt_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* "Bearer <token>" for claims with `extra` members, signed by k. */
static char *bearer(const kopt_test_jwk_t *k, const char *extra, int64_t exp_in)
{
    char claims[1024], *tok, *h;
    long long now = (long long)time(NULL);

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
             "\",\"sub\":\"user-\\\"q\\\"\",\"exp\":%lld%s%s}",
             now + exp_in, extra ? "," : "", extra ? extra : "");
    tok = kopt_test_jwt_sign(k, NULL, claims);
    assert_non_null(tok);
    h = malloc(strlen(tok) + 8);
    assert_non_null(h);
    sprintf(h, "Bearer %s", tok);
    free(tok);
    return h;
}

static grpc_status_code call(fx_t *fx, const char *authz, const char *method, const char **why)
{
    return adv_auth_check(fx->auth, authz, NULL, method, why);
}

static double count(fx_t *fx, const char *method, const char *result)
{
    char *text = NULL, want[160], *p;
    size_t len;
    double v = 0;

    assert_int_equal(kopt_metrics_expose(fx->metrics, &text, &len), 0);
    snprintf(want, sizeof(want), "kopt_advisor_auth_total{method=\"%s\",result=\"%s\"} ", method,
             result);
    p = strstr(text, want);
    if (p)
        v = strtod(p + strlen(want), NULL);
    free(text);
    return v;
}

static void oidc_roles_from_groups(void **state)
{
    fx_t *fx = *state;
    char *viewer = bearer(fx->rsa, "\"groups\":[\"staff\",\"kopt-viewer\"]", 300);
    char *op = bearer(fx->ec, "\"groups\":[\"kopt-operator\"]", 300);
    char *none = bearer(fx->rsa, "\"groups\":[\"staff\"]", 300);
    const char *why = NULL;

    start(fx, "groups", "kopt-viewer");
    assert_int_equal(call(fx, viewer, "ListRecommendations", &why), GRPC_STATUS_OK);
    assert_int_equal(call(fx, viewer, "RunAnalysis", &why), GRPC_STATUS_PERMISSION_DENIED);
    assert_non_null(strstr(why, "operator role"));
    assert_int_equal(call(fx, op, "RunAnalysis", &why), GRPC_STATUS_OK);
    assert_int_equal(call(fx, op, "GetWorkloadUsage", &why), GRPC_STATUS_OK);
    assert_int_equal(call(fx, none, "ListClusters", &why), GRPC_STATUS_PERMISSION_DENIED);
    assert_non_null(strstr(why, "viewer role"));
    /* API keys keep working beside tokens, with their own role. */
    assert_int_equal(call(fx, "Bearer viewer-key-0123456789", "ListClusters", &why),
                     GRPC_STATUS_OK);
    assert_int_equal(call(fx, "Bearer viewer-key-0123456789", "RunAnalysis", &why),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(call(fx, "Bearer wrong-key-0123456789", "ListClusters", &why),
                     GRPC_STATUS_UNAUTHENTICATED);
    assert_true(count(fx, "jwt", "ok") == 3);
    assert_true(count(fx, "jwt", "denied") == 2);
    assert_true(count(fx, "api_key", "ok") == 1);
    assert_true(count(fx, "api_key", "denied") == 1);
    assert_true(count(fx, "api_key", "invalid") == 1);
    free(viewer);
    free(op);
    free(none);
}

static void oidc_nested_claim(void **state)
{
    fx_t *fx = *state;
    char *t = bearer(fx->rsa, "\"realm_access\":{\"roles\":[\"readers\"]}", 300);
    const char *why = NULL;

    start(fx, "realm_access.roles", "readers");
    assert_int_equal(call(fx, t, "GetClusterSummary", &why), GRPC_STATUS_OK);
    assert_int_equal(call(fx, t, "RunAnalysis", &why), GRPC_STATUS_PERMISSION_DENIED);
    free(t);
}

static void oidc_refusals_are_counted(void **state)
{
    fx_t *fx = *state;
    char *expired = bearer(fx->rsa, "\"groups\":[\"kopt-viewer\"]", -3600);
    kopt_test_jwk_t *stranger = kopt_test_jwk_new("RS256", "nobody");
    char *unknown = bearer(stranger, "\"groups\":[\"kopt-viewer\"]", 300);
    char *big = malloc(9000 + 8);
    const char *why = NULL;

    start(fx, "groups", "kopt-viewer");
    assert_int_equal(call(fx, expired, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(why, "expired"));
    assert_int_equal(call(fx, unknown, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(why, "unknown key"));
    memset(big, 'a', 9000 + 7);
    memcpy(big, "Bearer ", 7);
    big[9000 + 7] = '\0';
    assert_int_equal(call(fx, big, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(why, "too large"));
    assert_int_equal(call(fx, adv_auth_oversized, "ListClusters", &why),
                     GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(fx, "Bearer a.b.c", "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(fx, NULL, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_true(count(fx, "jwt", "expired") == 1);
    assert_true(count(fx, "jwt", "unknown_kid") == 1);
    assert_true(count(fx, "jwt", "too_large") == 2);
    assert_true(count(fx, "jwt", "malformed") == 1);
    assert_true(count(fx, "none", "missing") == 1);
    free(expired);
    free(unknown);
    free(big);
    kopt_test_jwk_free(stranger);
}

static void oidc_jwks_file_reload(void **state)
{
    fx_t *fx = *state;
    kopt_test_jwk_t *next = kopt_test_jwk_new("ES256", "e2");
    char *t = bearer(next, "\"groups\":[\"kopt-viewer\"]", 300);
    const char *why = NULL;
    char err[512];

    start(fx, "groups", "kopt-viewer");
    assert_int_equal(call(fx, t, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    publish_keys(fx, &next, 1);
    assert_int_equal(adv_oidc_reload(fx->oidc, err, sizeof(err)), 0);
    assert_int_equal(call(fx, t, "ListClusters", &why), GRPC_STATUS_OK);
    /* A bad file: an error, and the keys read last stay. */
    write_file(fx->jwks, "{\"keys\":[]}");
    assert_int_equal(adv_oidc_reload(fx->oidc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no usable key"));
    assert_int_equal(call(fx, t, "ListClusters", &why), GRPC_STATUS_OK);
    free(t);
    kopt_test_jwk_free(next);
}

/* Every decision logged at debug (passes) or info (refusals): the log names
 * the subject and the call, never a token, a part of one, or an API key. */
static void oidc_log_never_holds_a_credential(void **state)
{
    fx_t *fx = *state;
    char *ok = bearer(fx->rsa, "\"groups\":[\"kopt-viewer\"]", 300);
    char *expired = bearer(fx->ec, "\"groups\":[\"kopt-viewer\"]", -3600);
    char *forged = strdup(ok), logpath[600], *buf = malloc(1 << 16), *dot;
    const char *why = NULL, *toks[] = {ok, expired, forged};
    FILE *f;
    int fd;

    assert_non_null(forged);
    assert_non_null(buf);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    snprintf(logpath, sizeof(logpath), "%s/log", fx->dir);
    fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_DEBUG, fd);
    start(fx, "groups", "kopt-viewer");
    assert_int_equal(call(fx, ok, "ListClusters", &why), GRPC_STATUS_OK);
    assert_int_equal(call(fx, ok, "RunAnalysis", &why), GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(call(fx, expired, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(fx, forged, "ListClusters", &why), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(fx, "Bearer viewer-key-0123456789", "RunAnalysis", &why),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(call(fx, "Bearer wrong-key-0123456789", "ListClusters", &why),
                     GRPC_STATUS_UNAUTHENTICATED);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    close(fd);
    f = fopen(logpath, "r");
    assert_non_null(f);
    buf[fread(buf, 1, (1 << 16) - 1, f)] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "API call allowed"));
    assert_non_null(strstr(buf, "API call refused"));
    assert_non_null(strstr(buf, "user-")); /* the subject */
    assert_null(strstr(buf, "viewer-key-0123456789"));
    assert_null(strstr(buf, "wrong-key-0123456789"));
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        const char *t = toks[i] + strlen("Bearer ");
        char part[32];

        /* Neither the header, the claims nor the signature, even in part. */
        for (const char *p = t; p; p = (dot = strchr(p, '.')) ? dot + 1 : NULL) {
            snprintf(part, sizeof(part), "%.16s", p);
            assert_null(strstr(buf, part));
        }
    }
    free(buf);
    free(ok);
    free(expired);
    free(forged);
}

static void oidc_options_are_checked(void **state)
{
    fx_t *fx = *state;
    adv_oidc_opts_t o = {.issuer = "http://idp", .audience = AUD, .max_token = 8192};
    adv_oidc_t *oidc = NULL;
    char err[512];

    assert_int_equal(adv_oidc_new(&fx->loop, NULL, &o, &oidc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "https://"));
    o.issuer = "https://idp";
    o.audience = NULL;
    assert_int_equal(adv_oidc_new(&fx->loop, NULL, &o, &oidc, err, sizeof(err)), -EINVAL);
    o.audience = AUD;
    o.max_token = 100 * 1024;
    assert_int_equal(adv_oidc_new(&fx->loop, NULL, &o, &oidc, err, sizeof(err)), -EINVAL);
    o.max_token = 8192;
    o.jwks_file = "/nonexistent/jwks.json";
    assert_int_equal(adv_oidc_new(&fx->loop, NULL, &o, &oidc, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/jwks.json"));
    assert_null(oidc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(oidc_roles_from_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(oidc_nested_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(oidc_refusals_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(oidc_jwks_file_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(oidc_log_never_holds_a_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(oidc_options_are_checked, setup, teardown),
    };

    kopt_log_setup("test", KOPT_LOG_FORMAT_TEXT, KOPT_LOG_ERROR, 2);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
