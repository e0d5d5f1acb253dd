/* Fuzz target: libkopt's JWKS parser (kopt/jwt.h), as an issuer's jwks_uri
 * or --oidc-jwks-file may hand it anything. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>

#include <kopt/jwt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kopt_jwks_t *k = NULL;
    size_t skipped = 0;
    char err[256];

    if (kopt_jwks_parse((const char *)data, size, &k, &skipped, err, sizeof(err)) == 0) {
        (void)kopt_jwks_has_kid(k, "fuzz-rsa");
        kopt_jwks_free(k);
    }
    return 0;
}
