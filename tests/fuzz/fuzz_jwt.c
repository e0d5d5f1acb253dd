/* Fuzz target: libkopt's JWT verification (kopt/jwt.h) on any bearer token,
 * with a fixed key set (one RSA and one P-256 key, public halves made once
 * for this file), so the header, claims, base64url and signature paths all
 * run. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <kopt/jwt.h>

static const char jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"fuzz-rsa\",\"n\":"
    "\"mhv67pBPuUtl55L5VJ_GghJfVs3tYGK_pVFtSVl1FBAECu9EtPJHugHCp__"
    "vTGgbbmXr6vqyspxfR6Hj4fCQGBGbkpHdjDyXYbHw_SgApQW6k-A537dcicbw-wLoeUWb-"
    "HKW3wwELG6HX3PFQ0MWYSy6PTivxlspKnJUwvmAQ0yOkaXwoTX3UgeRvhy42ATHA-"
    "OrGRvIrAN70MyFML3XQNG53d7jHku2YCB-OcMz_s8YYq3qNwGAI1Qlnj4O-YPiA5DlawQAj1QXcnkjHzhRHYnY-"
    "LI5oVU1eCJW53MvL0f5ewkWi1Ps7AsR2mYsybz8QH_0vB7hi728Jy1z8RYczw\",\"e\":\"AQAB\"},{\"kty\":"
    "\"EC\",\"use\":\"sig\",\"alg\":\"ES256\",\"kid\":\"fuzz-ec\",\"crv\":\"P-256\",\"x\":"
    "\"xt18qIJ3fx1nszpSbm8X4ELVs6RG7GTKkoZSji8blk4\",\"y\":\"LTQ56-n7Avmd-AnyrRMKqTezLgzFxG-"
    "68l37sGWOxas\"}]}";

static kopt_jwks_t *keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kopt_jwt_policy_t p = {
        .issuer = "https://issuer", .audience = "kopt", .now = 1700000000, .skew_s = 60};
    kopt_jwt_t *t = NULL;
    char kid[64];

    if (!keys && kopt_jwks_parse(jwks, strlen(jwks), &keys, NULL, NULL, 0) < 0)
        return 0;
    if (kopt_jwt_verify((const char *)data, size, keys, &p, &t, kid, sizeof(kid)) == KOPT_JWT_OK) {
        (void)kopt_jwt_subject(t);
        (void)kopt_jwt_claim_has(t, "groups", "kopt-viewer");
        kopt_jwt_free(t);
    }
    return 0;
}
