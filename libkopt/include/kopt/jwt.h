/* JSON Web Tokens signed by an OpenID Connect issuer (RFC 7519, 7515, 7517):
 * a key set parsed from a JWKS document (RSA and P-256 EC public keys), and
 * a compact JWS verified against it, RS256 or ES256 only ("none" and the
 * HMAC algorithms are refused, so a public key can never serve as a shared
 * secret), then its iss, aud, exp and nbf checked. Pure: no I/O, the caller
 * passes the time. OpenSSL does the cryptography, jansson the JSON. */
#ifndef KOPT_JWT_H
#define KOPT_JWT_H

#include <stddef.h>
#include <stdint.h>

#define KOPT_JWKS_MAX_BYTES (1024 * 1024) /* a larger document is refused */
#define KOPT_JWKS_MAX_KEYS 64

typedef struct kopt_jwks kopt_jwks_t;

/* Parses {"keys":[...]}: RSA keys (n, e; 2048 bits or more) and EC P-256
 * keys (x, y, checked on the curve). Keys for another use than "sig", of
 * another type or curve, or with an "alg" other than RS256/ES256 are
 * skipped (counted in *skipped when not NULL). A document that is not such
 * JSON, or holds no usable key: -EINVAL with a sentence in err. -ENOMEM. */
int kopt_jwks_parse(const char *json, size_t len, kopt_jwks_t **out, size_t *skipped, char *err,
                    size_t errlen);
size_t kopt_jwks_count(const kopt_jwks_t *k);
/* 1 if a key has this kid. */
int kopt_jwks_has_kid(const kopt_jwks_t *k, const char *kid);
void kopt_jwks_free(kopt_jwks_t *k);

/* Why a token was refused; names are metric labels (kopt_jwt_result_name). */
typedef enum {
    KOPT_JWT_OK = 0,
    KOPT_JWT_MALFORMED,     /* not three base64url parts of JSON objects */
    KOPT_JWT_TOO_LARGE,     /* longer than the policy's max_len */
    KOPT_JWT_BAD_ALG,       /* none, HS*, or anything but RS256/ES256 */
    KOPT_JWT_UNKNOWN_KID,   /* no key of the set has the header's kid */
    KOPT_JWT_BAD_SIGNATURE, /* no key of the set verifies it */
    KOPT_JWT_EXPIRED,       /* exp (plus the skew) is past, or exp is missing */
    KOPT_JWT_NOT_YET_VALID, /* nbf (minus the skew) is ahead */
    KOPT_JWT_BAD_ISSUER,
    KOPT_JWT_BAD_AUDIENCE,
    KOPT_JWT_NO_KEYS, /* the key set is not there (yet) */
    KOPT_JWT_N_RESULTS
} kopt_jwt_result_t;

typedef struct {
    const char *issuer;   /* iss must equal it; required */
    const char *audience; /* aud (a string or an array) must hold it; NULL: not checked */
    int64_t now;          /* unix seconds */
    int64_t skew_s;       /* allowance on exp and nbf */
    size_t max_len;       /* bytes of the compact token; 0: 8 KiB */
} kopt_jwt_policy_t;

typedef struct kopt_jwt kopt_jwt_t;

/* Verifies `token` (len bytes, not NUL-terminated necessarily) with `keys`
 * (NULL: KOPT_JWT_NO_KEYS after parsing). On KOPT_JWT_OK *out holds the
 * claims (free with kopt_jwt_free); otherwise *out is NULL. `kid` (when not
 * NULL, kid_len bytes) receives the header's kid whenever it was read, so a
 * caller can refresh its keys on KOPT_JWT_UNKNOWN_KID. */
kopt_jwt_result_t kopt_jwt_verify(const char *token, size_t len, const kopt_jwks_t *keys,
                                  const kopt_jwt_policy_t *p, kopt_jwt_t **out, char *kid,
                                  size_t kid_len);
/* "ok", "malformed", "too_large", "bad_alg", "unknown_kid", "bad_signature",
 * "expired", "not_yet_valid", "bad_issuer", "bad_audience", "no_keys". */
const char *kopt_jwt_result_name(kopt_jwt_result_t r);

/* The sub claim, or "" if absent. Valid until kopt_jwt_free. */
const char *kopt_jwt_subject(const kopt_jwt_t *t);
/* 1 if the claim at `path` (dots walk into objects: "realm_access.roles")
 * is `value`, holds it as a space-separated word (an OAuth scope string),
 * or is an array holding it as an element; else 0. */
int kopt_jwt_claim_has(const kopt_jwt_t *t, const char *path, const char *value);
/* The exp claim in unix seconds (a verified token always has one; a
 * fraction is dropped), 0 if absent or not positive. */
int64_t kopt_jwt_expires(const kopt_jwt_t *t);
void kopt_jwt_free(kopt_jwt_t *t);

/* base64url without padding (RFC 4648 section 5), as JWS uses it. Decodes
 * into out (room for len * 3 / 4 + 1 bytes), *out_len set: 0 or -EINVAL on
 * a character outside the alphabet or an impossible length. */
int kopt_base64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

#endif
