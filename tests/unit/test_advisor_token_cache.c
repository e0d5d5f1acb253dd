/* advisor/token_cache.c alone (hit, miss, expiry at exp and at the cap,
 * eviction from a full set, a key set change emptying it, the counters),
 * then through adv_auth_check with tokens signed at test time: the second
 * call with a token is a hit, and a re-read JWKS file without the token's
 * key refuses it although it was cached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "advisor.h"
#include "harness.h"
#include "token_cache.h"

#define ISS "https://idp.example/realms/k"
#define AUD "kopt-api"
#define NOW 1800000000 /* unix s */

static double counter(kopt_metrics_t *m, const char *result)
{
    char *text = NULL, want[128], *p;
    size_t len;
    double v = 0;

    assert_int_equal(kopt_metrics_expose(m, &text, &len), 0);
    snprintf(want, sizeof(want), "kopt_advisor_token_cache_total{result=\"%s\"} ", result);
    p = strstr(text, want);
    if (p)
        v = strtod(p + strlen(want), NULL);
    free(text);
    return v;
}

static bool get(adv_token_cache_t *c, const char *tok, uint64_t gen, int64_t now, int *roles,
                char *sub)
{
    return adv_token_cache_get(c, tok, strlen(tok), gen, now, roles, sub, 64);
}

static void put(adv_token_cache_t *c, const char *tok, uint64_t gen, int64_t now, int64_t exp,
                int roles)
{
    adv_token_cache_put(c, tok, strlen(tok), gen, now, exp, "alice", roles);
}

static void hit_and_miss(void **state)
{
    adv_token_cache_t *c = NULL;
    kopt_metrics_t *m = NULL;
    int roles = 0;
    char sub[64] = "";

    (void)state;
    assert_int_equal(adv_token_cache_new(16, 300, &c), 0);
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(adv_token_cache_set_metrics(c, m), 0);
    assert_false(get(c, "aaa.bbb.ccc", 1, NOW, &roles, sub));
    put(c, "aaa.bbb.ccc", 1, NOW, NOW + 60, ADV_ROLE_OPERATOR);
    assert_true(get(c, "aaa.bbb.ccc", 1, NOW + 1, &roles, sub));
    assert_int_equal(roles, ADV_ROLE_OPERATOR);
    assert_string_equal(sub, "alice");
    /* Another token, even one byte longer, is a miss. */
    assert_false(get(c, "aaa.bbb.cccd", 1, NOW + 1, &roles, sub));
    assert_int_equal(counter(m, "hit"), 1);
    assert_int_equal(counter(m, "miss"), 2);
    adv_token_cache_free(c);
    kopt_metrics_free(m);
}

static void expires_at_exp(void **state)
{
    adv_token_cache_t *c = NULL;
    int roles = 0;
    char sub[64];

    (void)state;
    assert_int_equal(adv_token_cache_new(16, 300, &c), 0);
    put(c, "t.exp.soon", 1, NOW, NOW + 10, ADV_ROLE_VIEWER);
    assert_true(get(c, "t.exp.soon", 1, NOW + 9, &roles, sub));
    /* exp passed while cached: refused from the cache (verify again, which
     * refuses an expired token), and the entry is gone. */
    assert_false(get(c, "t.exp.soon", 1, NOW + 10, &roles, sub));
    assert_int_equal(adv_token_cache_count(c), 0);
    assert_false(get(c, "t.exp.soon", 1, NOW + 9, &roles, sub));
    /* A token already expired is not kept at all. */
    put(c, "t.exp.past", 1, NOW, NOW, ADV_ROLE_VIEWER);
    put(c, "t.exp.past2", 1, NOW, NOW - 5, ADV_ROLE_VIEWER);
    assert_int_equal(adv_token_cache_count(c), 0);
    adv_token_cache_free(c);
}

static void expires_at_the_cap(void **state)
{
    adv_token_cache_t *c = NULL;
    int roles = 0;
    char sub[64];

    (void)state;
    assert_int_equal(adv_token_cache_new(16, 300, &c), 0);
    put(c, "t.long.lived", 1, NOW, NOW + 86400, ADV_ROLE_VIEWER);
    assert_true(get(c, "t.long.lived", 1, NOW + 299, &roles, sub));
    assert_false(get(c, "t.long.lived", 1, NOW + 300, &roles, sub));
    adv_token_cache_free(c);
}

static void evicts_when_full(void **state)
{
    adv_token_cache_t *c = NULL;
    int roles = 0, hits = 0;
    char sub[64], tok[32];

    (void)state;
    /* One set of 8: the ninth token evicts the one expiring first. */
    assert_int_equal(adv_token_cache_new(8, 300, &c), 0);
    for (int i = 0; i < 8; i++) {
        snprintf(tok, sizeof(tok), "tok.%d.x", i);
        put(c, tok, 1, NOW, NOW + 100 + i, ADV_ROLE_VIEWER);
    }
    assert_int_equal(adv_token_cache_count(c), 8);
    put(c, "tok.new.x", 1, NOW, NOW + 200, ADV_ROLE_VIEWER);
    assert_int_equal(adv_token_cache_count(c), 8);
    assert_true(get(c, "tok.new.x", 1, NOW, &roles, sub));
    assert_false(get(c, "tok.0.x", 1, NOW, &roles, sub));
    for (int i = 1; i < 8; i++) {
        snprintf(tok, sizeof(tok), "tok.%d.x", i);
        hits += get(c, tok, 1, NOW, &roles, sub);
    }
    assert_int_equal(hits, 7);
    /* A bigger table stays bounded too. */
    adv_token_cache_free(c);
    assert_int_equal(adv_token_cache_new(64, 300, &c), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "many.%d.x", i);
        put(c, tok, 1, NOW, NOW + 100, ADV_ROLE_VIEWER);
    }
    assert_true(adv_token_cache_count(c) <= 64);
    adv_token_cache_free(c);
}

static void key_change_empties_it(void **state)
{
    adv_token_cache_t *c = NULL;
    int roles = 0;
    char sub[64];

    (void)state;
    assert_int_equal(adv_token_cache_new(16, 300, &c), 0);
    put(c, "a.b.c", 1, NOW, NOW + 60, ADV_ROLE_VIEWER);
    put(c, "d.e.f", 1, NOW, NOW + 60, ADV_ROLE_VIEWER);
    assert_false(get(c, "a.b.c", 2, NOW, &roles, sub));
    assert_int_equal(adv_token_cache_count(c), 0);
    /* Back to the older generation number: still nothing. */
    assert_false(get(c, "d.e.f", 1, NOW, &roles, sub));
    assert_int_equal(adv_token_cache_new(0, 300, &(adv_token_cache_t *){NULL}), -EINVAL);
    adv_token_cache_free(c);
    adv_token_cache_free(NULL);
}

/* ---- through adv_auth_check with real tokens ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void publish_keys(const char *path, kopt_test_jwk_t *const *k, size_t n)
{
    char *json = kopt_test_jwks_json(k, n);

    assert_non_null(json);
    write_file(path, json);
    free(json);
}

static char *bearer(const kopt_test_jwk_t *k, const char *group)
{
    char claims[512], *tok, *h;

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
             "\",\"sub\":\"carol\",\"exp\":%lld,\"groups\":[\"%s\"]}",
             (long long)time(NULL) + 600, group);
    tok = kopt_test_jwt_sign(k, NULL, claims);
    assert_non_null(tok);
    h = malloc(strlen(tok) + 8);
    assert_non_null(h);
    sprintf(h, "Bearer %s", tok);
    free(tok);
    return h;
}

static void auth_uses_the_cache(void **state)
{
    char *dir = kopt_test_tmpdir("kopt-token-cache"), jwks[512], err[512] = "";
    kopt_test_jwk_t *k[2] = {kopt_test_jwk_new("RS256", "r1"), kopt_test_jwk_new("ES256", "e1")};
    char *vi[1] = {"kopt-viewer"}, *op[1] = {"kopt-operator"};
    kopt_config_list_t v = {vi, 1}, o = {op, 1};
    adv_oidc_opts_t oo = {.issuer = ISS,
                          .audience = AUD,
                          .refresh_ms = 3600000,
                          .min_refresh_ms = 30000,
                          .skew_s = 60,
                          .max_token = 8192,
                          .roles_claim = "groups",
                          .viewer_values = &v,
                          .operator_values = &o};
    kopt_metrics_t *m = NULL;
    adv_auth_t *auth = NULL;
    adv_oidc_t *oidc = NULL;
    uv_loop_t loop;
    const char *why = NULL;
    char *rs, *es;

    (void)state;
    assert_non_null(dir);
    assert_non_null(k[0]);
    assert_non_null(k[1]);
    snprintf(jwks, sizeof(jwks), "%s/jwks.json", dir);
    publish_keys(jwks, k, 2);
    oo.jwks_file = jwks;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kopt_metrics_new(&m), 0);
    assert_int_equal(adv_auth_new(NULL, false, &auth, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_set_metrics(auth, m), 0);
    assert_int_equal(adv_oidc_new(&loop, m, &oo, &oidc, err, sizeof(err)), 0);
    adv_auth_set_oidc(auth, oidc);
    rs = bearer(k[0], "kopt-viewer");
    es = bearer(k[1], "kopt-viewer");

    assert_int_equal(adv_auth_check(auth, rs, NULL, "ListClusters", &why), GRPC_STATUS_OK);
    assert_int_equal(adv_auth_check(auth, rs, NULL, "ListClusters", &why), GRPC_STATUS_OK);
    assert_int_equal(counter(m, "miss"), 1);
    assert_int_equal(counter(m, "hit"), 1);
    /* The cached roles still gate: a viewer cannot run an analysis. */
    assert_int_equal(adv_auth_check(auth, rs, NULL, "RunAnalysis", &why),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(counter(m, "hit"), 2);
    assert_int_equal(adv_auth_check(auth, es, NULL, "ListClusters", &why), GRPC_STATUS_OK);
    assert_int_equal(adv_auth_check(auth, es, NULL, "ListClusters", &why), GRPC_STATUS_OK);
    assert_int_equal(counter(m, "hit"), 3);

    /* The RSA key removed (SIGHUP re-read): its cached token is refused. */
    publish_keys(jwks, &k[1], 1);
    assert_int_equal(adv_oidc_reload(oidc, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_check(auth, rs, NULL, "ListClusters", &why),
                     GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(adv_auth_check(auth, es, NULL, "ListClusters", &why), GRPC_STATUS_OK);

    free(rs);
    free(es);
    adv_oidc_close(oidc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    adv_auth_free(auth);
    kopt_metrics_free(m);
    kopt_test_jwk_free(k[0]);
    kopt_test_jwk_free(k[1]);
    kopt_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_and_miss),          cmocka_unit_test(expires_at_exp),
        cmocka_unit_test(expires_at_the_cap),    cmocka_unit_test(evicts_when_full),
        cmocka_unit_test(key_change_empties_it), cmocka_unit_test(auth_uses_the_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
