/* A JSON Web Key Set (RFC 7517) into OpenSSL public keys: RSA from n and e,
 * EC P-256 from x and y (OpenSSL 3's EVP_PKEY_fromdata; the EC point is
 * checked to lie on the curve). Only signature keys for RS256 and ES256 are
 * kept; the rest is skipped, so an issuer that also lists encryption keys
 * or newer algorithms still works. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "jwt_internal.h"

#define MIN_RSA_BITS 2048
#define MAX_RSA_BYTES 2048 /* 16384-bit moduli at most */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A base64url member of o, decoded into buf (cap bytes): its length, or -1. */
static long member_b64(json_t *o, const char *name, unsigned char *buf, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, name));
    size_t len, n = 0;

    if (!s)
        return -1;
    len = strlen(s);
    if (len == 0 || len / 4 * 3 + 3 > cap || kopt_base64url_decode(s, len, buf, &n) < 0)
        return -1;
    return (long)n;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *o)
{
    unsigned char *n = malloc(MAX_RSA_BYTES + 4), e[16];
    long nl = n ? member_b64(o, "n", n, MAX_RSA_BYTES + 4) : -1;
    long el = member_b64(o, "e", e, sizeof(e));
    OSSL_PARAM_BLD *bld = NULL;
    BIGNUM *bn = NULL, *be = NULL;
    EVP_PKEY *pkey = NULL;

    if (nl <= 0 || el <= 0 || el > 8)
        goto out;
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    /* e = 1 makes every padded digest its own signature: anyone could sign. */
    if (!bn || !be || BN_num_bits(bn) < MIN_RSA_BITS || BN_is_zero(be) || BN_is_one(be) ||
        !BN_is_odd(be))
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = from_params("RSA", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *o)
{
    unsigned char x[40], y[40], point[65];
    long xl = member_b64(o, "x", x, sizeof(x)), yl = member_b64(o, "y", y, sizeof(y));
    const char *crv = json_string_value(json_object_get(o, "crv"));
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *check;

    /* RFC 7518 6.2.1.2: the coordinates are exactly the field size. */
    if (!crv || strcmp(crv, "P-256") != 0 || xl != 32 || yl != 32)
        return NULL;
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey)
        return NULL;
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    return pkey;
}

/* One key of the set: 1 kept, 0 skipped, -ENOMEM. */
static int add_key(kopt_jwks_t *set, json_t *o)
{
    const char *kty = json_string_value(json_object_get(o, "kty"));
    const char *use = json_string_value(json_object_get(o, "use"));
    const char *alg = json_string_value(json_object_get(o, "alg"));
    json_t *kid = json_object_get(o, "kid");
    jwk_t k = {0};

    if (!json_is_object(o) || !kty || (use && strcmp(use, "sig") != 0))
        return 0;
    /* A member that is there but not a string is not "absent": skip. */
    if ((kid && !json_is_string(kid)) || (json_object_get(o, "use") && !use) ||
        (json_object_get(o, "alg") && !alg))
        return 0;
    if (strcmp(kty, "RSA") == 0 && (!alg || strcmp(alg, "RS256") == 0)) {
        k.type = JWK_RSA;
        k.pkey = rsa_key(o);
    } else if (strcmp(kty, "EC") == 0 && (!alg || strcmp(alg, "ES256") == 0)) {
        k.type = JWK_EC_P256;
        k.pkey = ec_key(o);
    }
    if (!k.pkey)
        return 0;
    if (kid && !(k.kid = strdup(json_string_value(kid)))) {
        EVP_PKEY_free(k.pkey);
        return -ENOMEM;
    }
    set->keys[set->n++] = k;
    return 1;
}

int kopt_jwks_parse(const char *json, size_t len, kopt_jwks_t **out, size_t *skipped, char *err,
                    size_t errlen)
{
    json_error_t je;
    json_t *root, *keys;
    kopt_jwks_t *set = NULL;
    size_t n, skip = 0;
    int r = 0;

    *out = NULL;
    if (len > KOPT_JWKS_MAX_BYTES) {
        set_err(err, errlen, "the JWKS is larger than %d bytes", KOPT_JWKS_MAX_BYTES);
        return -EINVAL;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        set_err(err, errlen, "not a JWKS: no \"keys\" array (%s)", root ? "object" : je.text);
        json_decref(root);
        return -EINVAL;
    }
    n = json_array_size(keys);
    set = calloc(1, sizeof(*set));
    if (set)
        set->keys =
            calloc(n < KOPT_JWKS_MAX_KEYS ? (n ? n : 1) : KOPT_JWKS_MAX_KEYS, sizeof(*set->keys));
    if (!set || !set->keys) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && r >= 0; i++) {
        if (set->n == KOPT_JWKS_MAX_KEYS) {
            skip += n - i;
            break;
        }
        r = add_key(set, json_array_get(keys, i));
        if (r == 0)
            skip++;
    }
    if (r >= 0 && set->n == 0) {
        set_err(err, errlen,
                "the JWKS holds no usable key (RSA of 2048 bits or more, EC P-256; "
                "%zu skipped)",
                skip);
        r = -EINVAL;
    }
out:
    json_decref(root);
    if (r < 0) {
        kopt_jwks_free(set);
        return r;
    }
    if (skipped)
        *skipped = skip;
    *out = set;
    return 0;
}

size_t kopt_jwks_count(const kopt_jwks_t *k)
{
    return k ? k->n : 0;
}

int kopt_jwks_has_kid(const kopt_jwks_t *k, const char *kid)
{
    for (size_t i = 0; k && kid && i < k->n; i++)
        if (k->keys[i].kid && strcmp(k->keys[i].kid, kid) == 0)
            return 1;
    return 0;
}

void kopt_jwks_free(kopt_jwks_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; k->keys && i < k->n; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys[i].kid);
    }
    free(k->keys);
    free(k);
}
