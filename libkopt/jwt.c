/* Compact JWS verification for OIDC ID and access tokens: split, base64url,
 * header and claims with jansson, the signature with OpenSSL (RS256 as
 * PKCS #1 v1.5 over SHA-256; ES256's raw r||s turned into the DER ECDSA
 * signature OpenSSL takes), then exp, nbf, iss and aud. The algorithm must
 * agree with the key's type, so an "HS256" token cannot turn a public key
 * into an HMAC secret. Everything is parsed before anything is verified, so
 * the fuzzer reaches the claims parser with any key set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "jwt_internal.h"

#define DEFAULT_MAX_LEN (8 * 1024)
#define ES256_SIG_LEN 64

struct kopt_jwt {
    json_t *claims;
    const char *sub;
};

static const char *const result_names[KOPT_JWT_N_RESULTS] = {
    "ok",      "malformed",     "too_large",  "bad_alg",      "unknown_kid", "bad_signature",
    "expired", "not_yet_valid", "bad_issuer", "bad_audience", "no_keys",
};

const char *kopt_jwt_result_name(kopt_jwt_result_t r)
{
    return (unsigned)r < KOPT_JWT_N_RESULTS ? result_names[r] : "malformed";
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int kopt_base64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
    uint32_t acc = 0;
    size_t n = 0;
    int bits = 0;

    if (len % 4 == 1)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);

        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero (a canonical encoding). */
    if (acc != 0)
        return -EINVAL;
    *out_len = n;
    return 0;
}

/* Decodes one part into a malloc'd buffer, NUL-terminated. */
static unsigned char *decode_part(const char *s, size_t len, size_t *n)
{
    unsigned char *buf = malloc(len / 4 * 3 + 4);

    if (buf && kopt_base64url_decode(s, len, buf, n) == 0) {
        buf[*n] = '\0';
        return buf;
    }
    free(buf);
    return NULL;
}

static json_t *decode_object(const char *s, size_t len)
{
    size_t n = 0;
    unsigned char *buf = decode_part(s, len, &n);
    json_t *o = buf ? json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL) : NULL;

    free(buf);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* ES256: r||s (32 bytes each) into DER; *der malloc'd by OpenSSL. */
static int es256_der(const unsigned char *sig, size_t len, unsigned char **der, int *der_len)
{
    ECDSA_SIG *es;
    BIGNUM *r, *s;

    *der = NULL;
    if (len != ES256_SIG_LEN)
        return -EINVAL;
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return -ENOMEM;
    }
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return *der_len > 0 ? 0 : -ENOMEM;
}

static int verify_with(EVP_PKEY *pkey, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static kopt_jwt_result_t check_signature(const kopt_jwks_t *keys, jwk_type_t type, const char *kid,
                                         const char *input, size_t input_len, const char *sig64,
                                         size_t sig64_len)
{
    unsigned char *sig, *der = NULL;
    size_t sig_len = 0;
    int der_len = 0, tried = 0, ok = 0;

    if (kid && !kopt_jwks_has_kid(keys, kid))
        return KOPT_JWT_UNKNOWN_KID;
    sig = decode_part(sig64, sig64_len, &sig_len);
    if (!sig)
        return KOPT_JWT_MALFORMED;
    if (type == JWK_EC_P256 && es256_der(sig, sig_len, &der, &der_len) < 0) {
        free(sig);
        return KOPT_JWT_BAD_SIGNATURE;
    }
    /* With a kid, its key(s); without, every key of the algorithm's type. */
    for (size_t i = 0; i < keys->n && !ok; i++) {
        const jwk_t *k = &keys->keys[i];

        if (k->type != type || (kid && (!k->kid || strcmp(k->kid, kid) != 0)))
            continue;
        tried++;
        ok = der ? verify_with(k->pkey, input, input_len, der, (size_t)der_len)
                 : verify_with(k->pkey, input, input_len, sig, sig_len);
    }
    OPENSSL_free(der);
    free(sig);
    return ok ? KOPT_JWT_OK : KOPT_JWT_BAD_SIGNATURE;
}

static int aud_has(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

static kopt_jwt_result_t check_claims(json_t *c, const kopt_jwt_policy_t *p)
{
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    const char *iss = json_string_value(json_object_get(c, "iss"));

    /* A token that never expires is not accepted from an identity provider;
     * RFC 7519 4.1.4: from exp on, it is not accepted. */
    if (!json_is_number(exp) || (double)p->now >= json_number_value(exp) + (double)p->skew_s)
        return KOPT_JWT_EXPIRED;
    if (nbf &&
        (!json_is_number(nbf) || (double)p->now + (double)p->skew_s < json_number_value(nbf)))
        return KOPT_JWT_NOT_YET_VALID;
    if (!p->issuer || !iss || strcmp(iss, p->issuer) != 0)
        return KOPT_JWT_BAD_ISSUER;
    if (p->audience && !aud_has(json_object_get(c, "aud"), p->audience))
        return KOPT_JWT_BAD_AUDIENCE;
    return KOPT_JWT_OK;
}

kopt_jwt_result_t kopt_jwt_verify(const char *token, size_t len, const kopt_jwks_t *keys,
                                  const kopt_jwt_policy_t *p, kopt_jwt_t **out, char *kid_out,
                                  size_t kid_len)
{
    size_t max = p->max_len ? p->max_len : DEFAULT_MAX_LEN;
    const char *d1, *d2, *alg, *kid;
    json_t *header = NULL, *claims = NULL, *kidv;
    kopt_jwt_result_t r;
    jwk_type_t type;

    *out = NULL;
    if (kid_out && kid_len)
        kid_out[0] = '\0';
    if (len > max)
        return KOPT_JWT_TOO_LARGE;
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return KOPT_JWT_MALFORMED;
    header = decode_object(token, (size_t)(d1 - token));
    claims = decode_object(d1 + 1, (size_t)(d2 - d1 - 1));
    kidv = json_object_get(header, "kid");
    alg = json_string_value(json_object_get(header, "alg"));
    if (!header || !claims || !alg || (kidv && !json_is_string(kidv)) ||
        json_object_get(header, "crit")) { /* no extension is understood */
        r = KOPT_JWT_MALFORMED;
        goto out;
    }
    kid = json_string_value(kidv);
    if (kid && kid_out && kid_len)
        snprintf(kid_out, kid_len, "%s", kid);
    if (strcmp(alg, "RS256") == 0)
        type = JWK_RSA;
    else if (strcmp(alg, "ES256") == 0)
        type = JWK_EC_P256;
    else {
        r = KOPT_JWT_BAD_ALG; /* none, HS256 and the rest */
        goto out;
    }
    if (!keys || keys->n == 0) {
        r = KOPT_JWT_NO_KEYS;
        goto out;
    }
    r = check_signature(keys, type, kid, token, (size_t)(d2 - token), d2 + 1,
                        len - (size_t)(d2 + 1 - token));
    if (r == KOPT_JWT_OK)
        r = check_claims(claims, p);
    if (r == KOPT_JWT_OK) {
        kopt_jwt_t *t = malloc(sizeof(*t));

        if (!t) {
            r = KOPT_JWT_MALFORMED;
            goto out;
        }
        t->claims = claims;
        t->sub = json_string_value(json_object_get(claims, "sub"));
        if (!t->sub)
            t->sub = "";
        claims = NULL;
        *out = t;
    }
out:
    json_decref(header);
    json_decref(claims);
    return r;
}

const char *kopt_jwt_subject(const kopt_jwt_t *t)
{
    return t->sub;
}

static int words_have(const char *s, const char *want)
{
    size_t wl = strlen(want);

    while (*s) {
        size_t n;

        while (*s == ' ')
            s++;
        n = strcspn(s, " ");
        if (n == wl && n > 0 && memcmp(s, want, n) == 0)
            return 1;
        s += n;
    }
    return 0;
}

int kopt_jwt_claim_has(const kopt_jwt_t *t, const char *path, const char *value)
{
    json_t *v = t->claims, *e;
    char name[256];
    size_t i;

    while (v && *path) {
        size_t n = strcspn(path, ".");

        if (n >= sizeof(name))
            return 0;
        memcpy(name, path, n);
        name[n] = '\0';
        v = json_object_get(v, name);
        path += n + (path[n] == '.');
    }
    if (json_is_string(v))
        return strcmp(json_string_value(v), value) == 0 || words_have(json_string_value(v), value);
    json_array_foreach(v, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), value) == 0)
            return 1;
    }
    return 0;
}

int64_t kopt_jwt_expires(const kopt_jwt_t *t)
{
    double exp = json_number_value(json_object_get(t->claims, "exp"));

    /* Clamped before the cast: a double beyond int64_t is undefined. */
    if (!(exp > 0))
        return 0;
    return exp >= 9.0e18 ? INT64_MAX : (int64_t)exp;
}

void kopt_jwt_free(kopt_jwt_t *t)
{
    if (!t)
        return;
    json_decref(t->claims);
    free(t);
}
