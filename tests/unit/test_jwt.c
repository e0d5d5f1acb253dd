/* libkopt/jwt.c and jwks.c with keys made at test time (tests/harness's
 * oidc_issuer.c mints the tokens with OpenSSL): RS256 and ES256 tokens
 * verify; every way a token can be wrong is refused with its own result
 * (expired, not yet valid, issuer, audience, unknown kid, another key's
 * signature, alg none, HS256 keyed with the public key, malformed parts,
 * too large); JWKS documents that are garbage or hold no usable key are
 * refused, unusable keys skipped; roles claims as arrays, scope strings and
 * nested objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include <kopt/jwt.h>

#include "harness.h"

#define ISS "https://issuer.example"
#define AUD "kopt"

static kopt_test_jwk_t *rsa, *ec, *other;
static kopt_jwks_t *keys; /* rsa and ec, not other */
static int64_t now;

static int group_setup(void **state)
{
    kopt_test_jwk_t *both[2];
    char *json, err[256];

    (void)state;
    now = (int64_t)time(NULL);
    rsa = kopt_test_jwk_new("RS256", "rsa-1");
    ec = kopt_test_jwk_new("ES256", "ec-1");
    other = kopt_test_jwk_new("RS256", "rsa-1"); /* the same kid, another key */
    if (!rsa || !ec || !other)
        return -1;
    both[0] = rsa;
    both[1] = ec;
    json = kopt_test_jwks_json(both, 2);
    if (!json || kopt_jwks_parse(json, strlen(json), &keys, NULL, err, sizeof(err)) < 0)
        return -1;
    free(json);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kopt_jwks_free(keys);
    kopt_test_jwk_free(rsa);
    kopt_test_jwk_free(ec);
    kopt_test_jwk_free(other);
    return 0;
}

/* Claims with exp and nbf relative to now, and extra members. */
static const char *claims(int64_t exp_in, int64_t nbf_in, const char *iss, const char *aud_json,
                          const char *extra)
{
    static char buf[2048];

    snprintf(buf, sizeof(buf),
             "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":%s,\"exp\":%lld,\"nbf\":%lld,"
             "\"iat\":%lld%s%s}",
             iss, aud_json, (long long)(now + exp_in), (long long)(now + nbf_in), (long long)now,
             extra ? "," : "", extra ? extra : "");
    return buf;
}

/* base64url without padding of n bytes into out; its length. */
static size_t b64url(const char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 8 | s[i + 1];

        out[o++] = a[v >> 10];
        out[o++] = a[(v >> 4) & 63];
        out[o++] = a[(v & 15) << 2];
    }
    return o;
}

static kopt_jwt_result_t verify(const char *tok, kopt_jwt_t **t)
{
    kopt_jwt_policy_t p = {.issuer = ISS, .audience = AUD, .now = now, .skew_s = 60};
    kopt_jwt_t *tmp = NULL;
    kopt_jwt_result_t r = kopt_jwt_verify(tok, strlen(tok), keys, &p, t ? t : &tmp, NULL, 0);

    kopt_jwt_free(tmp);
    return r;
}

static kopt_jwt_result_t signed_with(const kopt_test_jwk_t *k, const char *c)
{
    char *tok = kopt_test_jwt_sign(k, NULL, c);
    kopt_jwt_result_t r;

    assert_non_null(tok);
    r = verify(tok, NULL);
    free(tok);
    return r;
}

static void jwt_rs256_and_es256_verify(void **state)
{
    char *tok = kopt_test_jwt_sign(rsa, NULL, claims(300, -10, ISS, "\"" AUD "\"", NULL));
    kopt_jwt_t *t = NULL;

    (void)state;
    assert_int_equal(verify(tok, &t), KOPT_JWT_OK);
    assert_string_equal(kopt_jwt_subject(t), "alice");
    kopt_jwt_free(t);
    free(tok);
    assert_int_equal(signed_with(ec, claims(300, -10, ISS, "[\"x\",\"" AUD "\"]", NULL)),
                     KOPT_JWT_OK);
    /* Without a kid, every key of the algorithm's type is tried. */
    tok = kopt_test_jwt_sign(ec, "{\"alg\":\"ES256\"}", claims(300, 0, ISS, "\"" AUD "\"", NULL));
    assert_int_equal(verify(tok, NULL), KOPT_JWT_OK);
    free(tok);
}

static void jwt_times_with_skew(void **state)
{
    (void)state;
    assert_int_equal(signed_with(rsa, claims(-61, -600, ISS, "\"" AUD "\"", NULL)),
                     KOPT_JWT_EXPIRED);
    assert_int_equal(signed_with(rsa, claims(-30, -600, ISS, "\"" AUD "\"", NULL)), KOPT_JWT_OK);
    assert_int_equal(signed_with(rsa, claims(600, 61, ISS, "\"" AUD "\"", NULL)),
                     KOPT_JWT_NOT_YET_VALID);
    assert_int_equal(signed_with(rsa, claims(600, 30, ISS, "\"" AUD "\"", NULL)), KOPT_JWT_OK);
    /* No exp at all: refused as expired (a token must end). */
    assert_int_equal(signed_with(rsa, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}"),
                     KOPT_JWT_EXPIRED);
    /* RFC 7519 4.1.4, 4.1.5: not accepted on or after exp, nor before nbf;
     * at the edges, without skew. */
    {
        kopt_jwt_policy_t p = {.issuer = ISS, .audience = AUD, .now = now, .skew_s = 0};
        struct {
            int64_t exp_in, nbf_in;
            kopt_jwt_result_t want;
        } edge[] = {{0, -600, KOPT_JWT_EXPIRED},
                    {1, -600, KOPT_JWT_OK},
                    {600, 0, KOPT_JWT_OK},
                    {600, 1, KOPT_JWT_NOT_YET_VALID}};

        for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
            char *tok = kopt_test_jwt_sign(
                rsa, NULL, claims(edge[i].exp_in, edge[i].nbf_in, ISS, "\"" AUD "\"", NULL));
            kopt_jwt_t *t = NULL;

            assert_non_null(tok);
            assert_int_equal(kopt_jwt_verify(tok, strlen(tok), keys, &p, &t, NULL, 0),
                             edge[i].want);
            kopt_jwt_free(t);
            free(tok);
        }
    }
}

static void jwt_issuer_and_audience(void **state)
{
    (void)state;
    assert_int_equal(signed_with(rsa, claims(300, 0, "https://evil.example", "\"" AUD "\"", NULL)),
                     KOPT_JWT_BAD_ISSUER);
    assert_int_equal(signed_with(rsa, claims(300, 0, ISS "/", "\"" AUD "\"", NULL)),
                     KOPT_JWT_BAD_ISSUER);
    assert_int_equal(signed_with(rsa, claims(300, 0, ISS, "\"other\"", NULL)),
                     KOPT_JWT_BAD_AUDIENCE);
    assert_int_equal(signed_with(rsa, claims(300, 0, ISS, "[\"a\",\"b\"]", NULL)),
                     KOPT_JWT_BAD_AUDIENCE);
    assert_int_equal(signed_with(rsa, claims(300, 0, ISS, "null", NULL)), KOPT_JWT_BAD_AUDIENCE);
}

static void jwt_keys_and_algorithms(void **state)
{
    const char *c = claims(300, 0, ISS, "\"" AUD "\"", NULL);
    kopt_test_jwk_t *stranger = kopt_test_jwk_new("ES256", "unknown-kid");
    char *tok, kid[64];
    kopt_jwt_policy_t p = {.issuer = ISS, .audience = AUD, .now = now, .skew_s = 60};
    kopt_jwt_t *t = NULL;

    (void)state;
    assert_non_null(stranger);
    /* Another key under a known kid: the signature fails. */
    assert_int_equal(signed_with(other, c), KOPT_JWT_BAD_SIGNATURE);
    /* A kid the set lacks: told apart, and the kid is handed back. */
    tok = kopt_test_jwt_sign(stranger, NULL, c);
    assert_int_equal(kopt_jwt_verify(tok, strlen(tok), keys, &p, &t, kid, sizeof(kid)),
                     KOPT_JWT_UNKNOWN_KID);
    assert_null(t);
    assert_string_equal(kid, "unknown-kid");
    free(tok);
    /* An ES256 header on an RSA kid: no key of that type has it. */
    tok = kopt_test_jwt_sign(ec, "{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", c);
    assert_int_equal(verify(tok, NULL), KOPT_JWT_BAD_SIGNATURE);
    free(tok);
    /* alg none, with and without a signature part. */
    tok = kopt_test_jwt_unsigned("{\"alg\":\"none\"}", c);
    assert_int_equal(verify(tok, NULL), KOPT_JWT_BAD_ALG);
    free(tok);
    tok = kopt_test_jwt_unsigned("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", c);
    assert_int_equal(verify(tok, NULL), KOPT_JWT_BAD_ALG);
    free(tok);
    /* HS256 with the RSA public key as the secret. */
    tok = kopt_test_jwt_hs256_public(rsa, c);
    assert_non_null(tok);
    assert_int_equal(verify(tok, NULL), KOPT_JWT_BAD_ALG);
    free(tok);
    /* No keys yet. */
    tok = kopt_test_jwt_sign(rsa, NULL, c);
    assert_int_equal(kopt_jwt_verify(tok, strlen(tok), NULL, &p, &t, NULL, 0), KOPT_JWT_NO_KEYS);
    /* A flipped byte of the signature. */
    tok[strlen(tok) - 5] = tok[strlen(tok) - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok, NULL), KOPT_JWT_BAD_SIGNATURE);
    free(tok);
    kopt_test_jwk_free(stranger);
}

/* Claims an attacker can shape in a token the issuer signed (or a
 * confused issuer signs): a second "iss" (jansson would keep the last one),
 * a NUL inside a claim (strcmp would stop there), numbers beyond int64,
 * exp written as a string or out at the end of time, and audiences of
 * every JSON type. */
static void jwt_hostile_claims(void **state)
{
    char c[1024];
    long long exp = (long long)now + 600;

    (void)state;
    snprintf(c, sizeof(c), "{\"iss\":\"https://evil\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}",
             ISS, AUD, exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_MALFORMED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\\u0000.evil\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_MALFORMED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\\u0000x\",\"exp\":%lld}", ISS, AUD, exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_MALFORMED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":99999999999999999999}", ISS,
             AUD);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_MALFORMED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":\"%lld\"}", ISS, AUD, exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_EXPIRED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":-9223372036854775807}", ISS,
             AUD);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_EXPIRED);
    snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":null}", ISS, AUD,
             exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_NOT_YET_VALID);
    snprintf(c, sizeof(c),
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":9223372036854775807}", ISS, AUD,
             exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_NOT_YET_VALID);
    /* iss is matched exactly: no prefix, no trailing slash, no case fold. */
    snprintf(c, sizeof(c), "{\"iss\":\"%s/\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD, exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_BAD_ISSUER);
    snprintf(c, sizeof(c), "{\"iss\":\"HTTPS://issuer.example\",\"aud\":\"%s\",\"exp\":%lld}", AUD,
             exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_BAD_ISSUER);
    snprintf(c, sizeof(c), "{\"iss\":[\"%s\"],\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD, exp);
    assert_int_equal(signed_with(rsa, c), KOPT_JWT_BAD_ISSUER);
    /* aud: a string, or an array holding it; nothing else. */
    {
        const char *ok[] = {"\"" AUD "\"", "[\"x\",\"" AUD "\"]", NULL};
        const char *no[] = {"[]",      "[[\"" AUD "\"]]", "{\"" AUD "\":1}", "5", "null",
                            "\"kop\"", "\"" AUD " \"",    "[\"x\",1]",       NULL};

        for (int i = 0; ok[i]; i++) {
            snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lld}", ISS, ok[i], exp);
            assert_int_equal(signed_with(rsa, c), KOPT_JWT_OK);
        }
        for (int i = 0; no[i]; i++) {
            snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lld}", ISS, no[i], exp);
            assert_int_equal(signed_with(rsa, c), KOPT_JWT_BAD_AUDIENCE);
        }
    }
}

static void jwt_malformed_and_too_large(void **state)
{
    const char *bad[] = {"",
                         "abc",
                         "a.b",
                         "a.b.c.d",
                         "!!!.e30.sig",
                         "e30.e30.sig",                                     /* {} header: no alg */
                         "WzFd.e30.sig",                                    /* [1] header */
                         "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",           /* claims not JSON */
                         "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsieCJdfQ.e30.c2ln", /* crit */
                         "eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.c2ln",        /* kid a number */
                         NULL};
    char *big;
    size_t n = 9000;

    (void)state;
    for (int i = 0; bad[i]; i++)
        assert_int_equal(verify(bad[i], NULL), KOPT_JWT_MALFORMED);
    big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    big[10] = '.';
    big[20] = '.';
    assert_int_equal(verify(big, NULL), KOPT_JWT_TOO_LARGE);
    free(big);
    assert_string_equal(kopt_jwt_result_name(KOPT_JWT_UNKNOWN_KID), "unknown_kid");
    assert_string_equal(kopt_jwt_result_name(KOPT_JWT_N_RESULTS), "malformed");
}

static void jwt_claim_values(void **state)
{
    const char *extra = "\"groups\":[\"devs\",\"kopt-viewer\"],\"scope\":\"openid kopt-operator\","
                        "\"realm_access\":{\"roles\":[\"admin\"]},\"n\":5";
    char *tok = kopt_test_jwt_sign(rsa, NULL, claims(300, 0, ISS, "\"" AUD "\"", extra));
    kopt_jwt_t *t = NULL;

    (void)state;
    assert_int_equal(verify(tok, &t), KOPT_JWT_OK);
    assert_true(kopt_jwt_claim_has(t, "groups", "kopt-viewer"));
    assert_false(kopt_jwt_claim_has(t, "groups", "kopt"));
    assert_true(kopt_jwt_claim_has(t, "scope", "kopt-operator"));
    assert_true(kopt_jwt_claim_has(t, "scope", "openid"));
    assert_false(kopt_jwt_claim_has(t, "scope", "kopt"));
    assert_true(kopt_jwt_claim_has(t, "realm_access.roles", "admin"));
    assert_false(kopt_jwt_claim_has(t, "realm_access", "admin"));
    assert_false(kopt_jwt_claim_has(t, "n", "5"));
    assert_false(kopt_jwt_claim_has(t, "missing.path", "x"));
    kopt_jwt_free(t);
    free(tok);
}

static void jwks_refuses_garbage_and_skips_unusable_keys(void **state)
{
    kopt_jwks_t *k = NULL;
    size_t skipped = 0;
    char err[256], *json, doc[4096];
    kopt_test_jwk_t *one[1] = {ec};

    (void)state;
    assert_int_equal(kopt_jwks_parse("<html>", 6, &k, NULL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a JWKS"));
    assert_int_equal(kopt_jwks_parse("{\"keys\":{}}", 11, &k, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(kopt_jwks_parse("{\"keys\":[]}", 11, &k, NULL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no usable key"));
    /* An HMAC key, an encryption key, a small RSA key, a point off the
     * curve, a P-384 key: all skipped, and then nothing is usable. */
    snprintf(
        doc, sizeof(doc), "%s",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
        "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
        "{\"kty\":\"RSA\",\"n\":\"wXyz\",\"e\":\"AQAB\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"RSA\",\"alg\":\"RS512\",\"n\":\"AQAB\",\"e\":\"AQAB\"},\"junk\"]}");
    assert_int_equal(kopt_jwks_parse(doc, strlen(doc), &k, &skipped, err, sizeof(err)), -EINVAL);
    assert_null(k);
    /* "use" or "alg" that is not a string is no "sig" nor "RS256"/"ES256":
     * the key is skipped, not read as if they were absent. */
    {
        kopt_test_jwk_t *r1[1] = {rsa};
        const char *bad[] = {"\"use\":\"sig\"",   "\"use\":[1]  ",     "\"use\":5    ",
                             "\"alg\":\"RS256\"", "\"alg\":[\"x\"]  ", "\"alg\":null   "};
        char *rj = kopt_test_jwks_json(r1, 1), *at;

        assert_non_null(rj);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 3) {
            for (size_t j = 1; j < 3; j++) {
                snprintf(doc, sizeof(doc), "%s", rj);
                at = strstr(doc, bad[i]);
                assert_non_null(at);
                memcpy(at, bad[i + j], strlen(bad[i])); /* same length */
                assert_int_equal(kopt_jwks_parse(doc, strlen(doc), &k, NULL, err, sizeof(err)),
                                 -EINVAL);
                assert_null(k);
            }
        }
        free(rj);
    }
    /* With one good key among them: it is kept, the rest counted. */
    json = kopt_test_jwks_json(one, 1);
    assert_non_null(json);
    /* The generated document's "[" on: its key, then "]}". */
    snprintf(doc, sizeof(doc), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},%s",
             strstr(json, "[") + 1);
    free(json);
    assert_int_equal(kopt_jwks_parse(doc, strlen(doc), &k, &skipped, err, sizeof(err)), 0);
    assert_int_equal(kopt_jwks_count(k), 1);
    assert_int_equal(skipped, 1);
    assert_true(kopt_jwks_has_kid(k, "ec-1"));
    assert_false(kopt_jwks_has_kid(k, "rsa-1"));
    kopt_jwks_free(k);
    kopt_jwks_free(NULL);
}

/* An RSA key with e = 1 makes a signature of any token its own padded
 * digest: s^1 mod n = EM. Such a key (a broken or hostile JWKS) must not be
 * kept, or anyone could mint tokens that verify. Here the forgery is built
 * and must not pass; the key itself is skipped. */
static void jwks_refuses_rsa_exponent_one(void **state)
{
    static const unsigned char sha256_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                0x01, 0x05, 0x00, 0x04, 0x20};
    kopt_test_jwk_t *one[1] = {rsa};
    char *json = kopt_test_jwks_json(one, 1), *e, err[256], head[128], input[1024], tok[2048];
    unsigned char em[256], digest[32];
    kopt_jwks_t *k = NULL;
    kopt_jwt_t *t = NULL;
    size_t hl, il;
    kopt_jwt_policy_t p = {.issuer = ISS, .audience = AUD, .now = now, .skew_s = 60};
    kopt_jwt_result_t r;
    int rc;

    (void)state;
    assert_non_null(json);
    e = strstr(json, "\"e\":\"AQAB\"");
    assert_non_null(e);
    memcpy(e, "\"e\":\"AQ\"  ", 10); /* 1, and JSON blanks where "AB" was */
    rc = kopt_jwks_parse(json, strlen(json), &k, NULL, err, sizeof(err));
    free(json);
    if (rc == 0) {
        /* Kept: forge RS256 with EM = 00 01 FF.. 00 DigestInfo hash. */
        snprintf(head, sizeof(head), "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}");
        hl = b64url(head, strlen(head), input);
        input[hl] = '.';
        il = hl + 1 +
             b64url(claims(600, -10, ISS, "\"" AUD "\"", NULL),
                    strlen(claims(600, -10, ISS, "\"" AUD "\"", NULL)), input + hl + 1);
        SHA256((const unsigned char *)input, il, digest);
        memset(em, 0xff, sizeof(em));
        em[0] = 0;
        em[1] = 1;
        em[sizeof(em) - 32 - sizeof(sha256_info) - 1] = 0;
        memcpy(em + sizeof(em) - 32 - sizeof(sha256_info), sha256_info, sizeof(sha256_info));
        memcpy(em + sizeof(em) - 32, digest, 32);
        memcpy(tok, input, il);
        tok[il] = '.';
        tok[il + 1 + b64url((const char *)em, sizeof(em), tok + il + 1)] = '\0';
        r = kopt_jwt_verify(tok, strlen(tok), k, &p, &t, NULL, 0);
        kopt_jwt_free(t);
        kopt_jwks_free(k);
        fail_msg("a JWKS key with e = 1 was kept; a forged token gave \"%s\"",
                 kopt_jwt_result_name(r));
    }
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "no usable key"));
}

static void base64url_is_strict(void **state)
{
    unsigned char out[16];
    size_t n = 0;

    (void)state;
    assert_int_equal(kopt_base64url_decode("aGk", 3, out, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(kopt_base64url_decode("aGk=", 4, out, &n), -EINVAL); /* no padding */
    assert_int_equal(kopt_base64url_decode("aGl", 3, out, &n), -EINVAL);  /* stray bits */
    assert_int_equal(kopt_base64url_decode("a+/b", 4, out, &n), -EINVAL); /* not url-safe */
    assert_int_equal(kopt_base64url_decode("abcde", 5, out, &n), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jwt_rs256_and_es256_verify),
        cmocka_unit_test(jwt_times_with_skew),
        cmocka_unit_test(jwt_issuer_and_audience),
        cmocka_unit_test(jwt_keys_and_algorithms),
        cmocka_unit_test(jwt_hostile_claims),
        cmocka_unit_test(jwt_malformed_and_too_large),
        cmocka_unit_test(jwt_claim_values),
        cmocka_unit_test(jwks_refuses_garbage_and_skips_unusable_keys),
        cmocka_unit_test(jwks_refuses_rsa_exponent_one),
        cmocka_unit_test(base64url_is_strict),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
