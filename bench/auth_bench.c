/* kopt-auth-bench: the advisor's authentication of one call, through
 * adv_auth_check() as api.c calls it for ListRecommendations: an API key
 * (SHA-256 of the presented key, compared in constant time with every key
 * of the file: the baseline), and bearer tokens verified against a JWKS file
 * (RS256, RSA 2048; ES256, P-256) with their claims and roles checked,
 * with the cache of verified tokens off (every call verifies) and on (the
 * same token again: a digest and a lookup, advisor/token_cache.c). The
 * keys are made at run time by the test harness (tests/harness/oidc_issuer.c).
 * docs/performance.md, "Advisor authentication". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include <uv.h>

#include "advisor.h"
#include "harness.h"
#include "microbench.h"

#define ISS "https://idp.bench/realms/kopt"
#define AUD "kopt-api"
#define N_KEYS_SMALL 1
#define N_KEYS 100

static const char usage[] = "Usage: kopt-auth-bench [--quick] [--seconds S]\n"
                            "Times adv_auth_check per call: API key (1 and 100 keys in the file,\n"
                            "the baseline: 100), JWT RS256 and ES256 from a JWKS file, each\n"
                            "verified every call and then from the cache of verified tokens.\n";

typedef struct {
    adv_auth_t *auth;
    const char *authorization;
    bool cached;
} call_t;

static int check(void *arg, uint64_t i)
{
    call_t *c = arg;
    const char *why = NULL;

    (void)i;
    adv_auth_cache_tokens(c->auth, c->cached);
    return adv_auth_check(c->auth, c->authorization, NULL, "ListRecommendations", &why) ==
                   GRPC_STATUS_OK
               ? 0
               : -EACCES;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int r;

    if (!f)
        return -1;
    r = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? r : -1;
}

/* A keys file of n keys of 40 characters; the presented key is the last. */
static int write_keys(const char *path, int n, char *last, size_t len)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(last, len, "bench-key-%06d-0123456789abcdefghijklm", i);
        fprintf(f, "%s viewer\n", last);
    }
    /* Owner only, as the advisor asks of a keys file. */
    return fclose(f) == 0 && chmod(path, 0600) == 0 ? 0 : -1;
}

static char *bearer(const kopt_test_jwk_t *k)
{
    char claims[512], *tok, *h;

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"bench-user\",\"exp\":%lld,"
             "\"groups\":[\"staff\",\"kopt-viewer\"]}",
             (long long)time(NULL) + 3600);
    tok = kopt_test_jwt_sign(k, NULL, claims);
    if (!tok)
        return NULL;
    h = malloc(strlen(tok) + sizeof("Bearer "));
    if (h)
        sprintf(h, "Bearer %s", tok);
    free(tok);
    return h;
}

int main(int argc, char **argv)
{
    double seconds;
    int quick, rc = 1;
    char *dir = NULL, keys1[512], keysn[512], jwks[512], key1[64], keyn[64], err[512] = "";
    char bkey1[80], bkeyn[80], *rs = NULL, *es = NULL, *jwks_json = NULL;
    kopt_test_jwk_t *k[2] = {NULL, NULL};
    adv_auth_t *a1 = NULL, *an = NULL;
    adv_oidc_t *oidc = NULL;
    kopt_metrics_t *metrics = NULL;
    uv_loop_t loop;
    char *viewers[1] = {"kopt-viewer"}, *operators[1] = {"kopt-operator"};
    kopt_config_list_t vl = {viewers, 1}, ol = {operators, 1};
    adv_oidc_opts_t oo = {.issuer = ISS,
                          .audience = AUD,
                          .refresh_ms = 3600000,
                          .min_refresh_ms = 30000,
                          .skew_s = 60,
                          .max_token = 8192,
                          .roles_claim = "groups",
                          .viewer_values = &vl,
                          .operator_values = &ol};
    mb_result_t res[6];
    call_t calls[6];
    const char *names[6] = {"api key, 100 keys", "api key, 1 key",    "jwt RS256 (RSA 2048)",
                            "jwt ES256 (P-256)", "jwt RS256, cached", "jwt ES256, cached"};

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    if (uv_loop_init(&loop) < 0)
        return 1;
    dir = kopt_test_tmpdir("kopt-auth-bench");
    k[0] = kopt_test_jwk_new("RS256", "r1");
    k[1] = kopt_test_jwk_new("ES256", "e1");
    if (!dir || !k[0] || !k[1] || !(jwks_json = kopt_test_jwks_json(k, 2)) ||
        kopt_metrics_new(&metrics) < 0) {
        fprintf(stderr, "kopt-auth-bench: setup failed (keys, temp dir)\n");
        goto out;
    }
    snprintf(keys1, sizeof(keys1), "%s/keys1", dir);
    snprintf(keysn, sizeof(keysn), "%s/keysn", dir);
    snprintf(jwks, sizeof(jwks), "%s/jwks.json", dir);
    oo.jwks_file = jwks;
    if (write_keys(keys1, N_KEYS_SMALL, key1, sizeof(key1)) < 0 ||
        write_keys(keysn, N_KEYS, keyn, sizeof(keyn)) < 0 || write_file(jwks, jwks_json) < 0) {
        fprintf(stderr, "kopt-auth-bench: cannot write files in %s\n", dir);
        goto out;
    }
    if (adv_auth_new(keys1, false, &a1, err, sizeof(err)) < 0 ||
        adv_auth_new(keysn, false, &an, err, sizeof(err)) < 0 ||
        adv_auth_set_metrics(an, metrics) < 0 ||
        adv_oidc_new(&loop, metrics, &oo, &oidc, err, sizeof(err)) < 0) {
        fprintf(stderr, "kopt-auth-bench: %s\n", err);
        goto out;
    }
    /* As serve.c: one adv_auth_t for keys and tokens, counting decisions. */
    adv_auth_set_oidc(an, oidc);
    snprintf(bkey1, sizeof(bkey1), "Bearer %s", key1);
    snprintf(bkeyn, sizeof(bkeyn), "Bearer %s", keyn);
    rs = bearer(k[0]);
    es = bearer(k[1]);
    if (!rs || !es) {
        fprintf(stderr, "kopt-auth-bench: signing a token failed\n");
        goto out;
    }
    calls[0] = (call_t){an, bkeyn, true};
    calls[1] = (call_t){a1, bkey1, true};
    calls[2] = (call_t){an, rs, false};
    calls[3] = (call_t){an, es, false};
    calls[4] = (call_t){an, rs, true};
    calls[5] = (call_t){an, es, true};
    for (size_t i = 0; i < 6; i++) {
        if (mb_run(names[i], check, &calls[i], quick ? 10 : 100, seconds, &res[i]) < 0)
            goto out;
    }
    mb_print("kopt-auth-bench: adv_auth_check per call (ListRecommendations, viewer role)", res, 6,
             0);
    rc = 0;
out:
    free(rs);
    free(es);
    free(jwks_json);
    adv_oidc_close(oidc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    adv_auth_free(an);
    adv_auth_free(a1);
    kopt_metrics_free(metrics);
    kopt_test_jwk_free(k[0]);
    kopt_test_jwk_free(k[1]);
    if (dir)
        kopt_test_rmtree(dir);
    free(dir);
    return rc;
}
