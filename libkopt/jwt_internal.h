/* What jwt.c and jwks.c share: the parsed key set. */
#ifndef KOPT_JWT_INTERNAL_H
#define KOPT_JWT_INTERNAL_H

#include <openssl/evp.h>

#include <kopt/jwt.h>

typedef enum { JWK_RSA, JWK_EC_P256 } jwk_type_t;

typedef struct {
    char *kid; /* NULL when the key has none */
    jwk_type_t type;
    EVP_PKEY *pkey;
} jwk_t;

struct kopt_jwks {
    jwk_t *keys;
    size_t n;
};

#endif
