/* Who may call the Advisor API, gRPC and HTTP alike, and with which role:
 * "authorization: Bearer <credential>" holds an API key from --api-keys-file
 * (one a line, optionally followed by its role; '#' comments; re-read on
 * SIGHUP) or, with --oidc-issuer, a JWT the issuer signed (oidc.c; its role
 * from a claim). Only SHA-256 digests of keys are kept, and a presented key
 * is compared with every one of them in constant time, so neither memory
 * nor timing tells a key. Internal callers with a client certificate naming
 * a kopt service (spiffe://kopt/service/<name>, verified by TLS) need no
 * key and hold every role. A key shorter than MIN_KEY_LEN refuses the whole
 * file (a short key is guessed), and a file others may read is accepted
 * with a warning. Each decision is counted in kopt_advisor_auth_total and
 * refusals are logged (rate-limited) with the token's subject, never the
 * credential. A verified token is remembered by its digest (token_cache.c)
 * until its exp, 5 minutes at most, or a change of the issuer's keys, so
 * its signature is checked once. Loop thread only (both servers' handlers run there). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <kopt/log.h>
#include <kopt/token_bucket.h>

#include "advisor.h"
#include "token_cache.h"

#define DIGEST_LEN 32
#define MAX_KEYS 10000
#define MIN_KEY_LEN 16 /* characters; 16 random ones are ~95 bits in base64 */
#define SERVICE_PREFIX "spiffe://kopt/service/"
#define LOG_RATE 5.0 /* refusals logged per second (burst 20); the rest only counted */
#define MAX_SUBJECT 128

typedef struct {
    unsigned char d[DIGEST_LEN];
    int role;
} digest_t;

/* kopt_advisor_auth_total's labels: bounded sets. */
enum { M_API_KEY, M_JWT, M_SERVICE_CERT, M_NONE, N_METHODS };
static const char *const method_names[N_METHODS] = {"api_key", "jwt", "service_cert", "none"};
/* The results: KOPT_JWT_* (ok, malformed, ..., no_keys), then these. */
enum { R_DENIED = KOPT_JWT_N_RESULTS, R_INVALID, R_MISSING, N_RESULTS };

struct adv_auth {
    char *path;
    bool open;
    digest_t *keys;
    size_t n;
    adv_oidc_t *oidc;
    adv_token_cache_t *tokens; /* verified JWTs (token_cache.h) */
    bool no_cache;
    kopt_metric_family_t *family;
    kopt_metric_counter_t *count[N_METHODS][N_RESULTS];
    kopt_token_bucket_t log_bucket;
};

const char adv_auth_oversized[] = "oversized";

static const char *result_name(int r)
{
    switch (r) {
    case R_DENIED:
        return "denied";
    case R_INVALID:
        return "invalid";
    case R_MISSING:
        return "missing";
    default:
        return kopt_jwt_result_name((kopt_jwt_result_t)r);
    }
}

static int digest(const char *key, size_t len, digest_t *out)
{
    unsigned int n = 0;

    return EVP_Digest(key, len, out->d, &n, EVP_sha256(), NULL) == 1 && n == DIGEST_LEN ? 0 : -EIO;
}

static int read_keys(const char *path, digest_t **out, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, got = 0;
    digest_t *keys = NULL;
    size_t lineno = 0;
    struct stat st;
    ssize_t len;
    int r = 0;

    if (!f) {
        r = -errno;
        snprintf(err, errlen, "cannot read API keys file %s: %s", path, strerror(errno));
        return r;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
        char mode[8];

        snprintf(mode, sizeof(mode), "%03o", (unsigned)(st.st_mode & 0777));
        kopt_log_warn("API keys file is open to group or others; chmod 600 it",
                      KOPT_STR("path", path), KOPT_STR("mode", mode));
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e = line + len, *k;
        int role;
        digest_t *nk;

        lineno++;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        /* "key role": the last word names a role only when it is one, since
         * keys written before roles existed may hold spaces themselves. */
        role = ADV_ROLE_OPERATOR; /* a bare key: as before roles existed */
        for (k = e; k > s && !isspace((unsigned char)k[-1]); k--)
            ;
        if (k > s && ((e - k == 6 && strncmp(k, "viewer", 6) == 0) ||
                      (e - k == 8 && strncmp(k, "operator", 8) == 0))) {
            role = e - k == 6 ? ADV_ROLE_VIEWER : ADV_ROLE_OPERATOR;
            for (e = k; e > s && isspace((unsigned char)e[-1]); e--)
                ;
        }
        if ((size_t)(e - s) < MIN_KEY_LEN) {
            /* Neither the key nor its length: only where it is. */
            snprintf(err, errlen,
                     "API keys file %s, line %zu: key too short; keys need at least %d "
                     "characters (openssl rand -base64 24)",
                     path, lineno, MIN_KEY_LEN);
            r = -EINVAL;
            break;
        }
        if (got >= MAX_KEYS) {
            snprintf(err, errlen, "API keys file %s holds more than %d keys", path, MAX_KEYS);
            r = -E2BIG;
            break;
        }
        nk = realloc(keys, (got + 1) * sizeof(*keys));
        if (!nk) {
            r = -ENOMEM;
            break;
        }
        keys = nk;
        keys[got].role = role;
        r = digest(s, (size_t)(e - s), &keys[got++]);
        if (r < 0)
            break;
    }
    /* getline ends on an error as on the end of the file: a directory or an
     * I/O error must not read as an empty (or partial) list of keys. */
    if (r == 0 && ferror(f)) {
        r = -EIO;
        snprintf(err, errlen, "cannot read API keys file %s: %s", path, strerror(errno));
    }
    if (line) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    fclose(f);
    if (r < 0) {
        free(keys);
        return r;
    }
    *out = keys;
    *n = got;
    return 0;
}

int adv_auth_new(const char *path, bool open, adv_auth_t **out, char *err, size_t errlen)
{
    adv_auth_t *a = calloc(1, sizeof(*a));
    int r = 0;

    if (!a)
        return -ENOMEM;
    a->open = open && !path;
    kopt_token_bucket_init(&a->log_bucket, LOG_RATE, 20, 0);
    if (path) {
        a->path = strdup(path);
        r = a->path ? read_keys(path, &a->keys, &a->n, err, errlen) : -ENOMEM;
    }
    if (r == 0)
        r = adv_token_cache_new(ADV_TOKEN_CACHE_CAPACITY, ADV_TOKEN_CACHE_MAX_AGE, &a->tokens);
    if (r < 0) {
        adv_auth_free(a);
        return r;
    }
    *out = a;
    return 0;
}

int adv_auth_reload(adv_auth_t *a, char *err, size_t errlen)
{
    digest_t *keys = NULL;
    size_t n = 0;
    int r;

    if (!a->path)
        return 0;
    r = read_keys(a->path, &keys, &n, err, errlen);
    if (r < 0)
        return r;
    OPENSSL_cleanse(a->keys, a->n * sizeof(*a->keys));
    free(a->keys);
    a->keys = keys;
    a->n = n;
    return 0;
}

void adv_auth_set_oidc(adv_auth_t *a, adv_oidc_t *oidc)
{
    a->oidc = oidc;
}

void adv_auth_cache_tokens(adv_auth_t *a, bool on)
{
    a->no_cache = !on;
}

int adv_auth_set_metrics(adv_auth_t *a, kopt_metrics_t *m)
{
    int r = kopt_metrics_counter(m, "kopt_advisor_auth_total",
                                 "Advisor API authentication decisions, by credential and result",
                                 "method,result", &a->family);

    return r < 0 ? r : adv_token_cache_set_metrics(a->tokens, m);
}

int adv_auth_required_role(const char *method)
{
    static const char *const reads[] = {"ListRecommendations", "GetRecommendation",
                                        "GetWorkloadUsage", "GetClusterSummary", "ListClusters"};

    /* Anything not known to only read needs the operator: a method added
     * later is not open to viewers by mistake. */
    for (size_t i = 0; method && i < sizeof(reads) / sizeof(reads[0]); i++)
        if (strcmp(method, reads[i]) == 0)
            return ADV_ROLE_VIEWER;
    return ADV_ROLE_OPERATOR;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts the decision; logs a refusal (rate-limited) or, at debug, a pass. */
static void record(adv_auth_t *a, int method, int result, const char *subject, const char *call)
{
    char sub[MAX_SUBJECT + 1];
    uint64_t wait;

    if (a->family) {
        if (!a->count[method][result])
            a->count[method][result] =
                kopt_metric_counter_with(a->family, method_names[method], result_name(result));
        kopt_metric_counter_inc(a->count[method][result]);
    }
    /* The subject is the token's, so bounded here; the log escapes it. */
    snprintf(sub, sizeof(sub), "%s", subject ? subject : "");
    if (result == KOPT_JWT_OK)
        kopt_log_debug("API call allowed", KOPT_STR("method", method_names[method]),
                       KOPT_STR("subject", sub), KOPT_STR("call", call));
    else if (kopt_token_bucket_take(&a->log_bucket, 1, mono_ns(), &wait) == 0)
        kopt_log_info("API call refused", KOPT_STR("method", method_names[method]),
                      KOPT_STR("decision", result_name(result)), KOPT_STR("subject", sub),
                      KOPT_STR("call", call));
}

static const char *jwt_why(kopt_jwt_result_t r)
{
    switch (r) {
    case KOPT_JWT_TOO_LARGE:
        return "bearer token too large";
    case KOPT_JWT_BAD_ALG:
        return "token refused: only RS256 and ES256 signatures are accepted";
    case KOPT_JWT_UNKNOWN_KID:
        return "token refused: signed with an unknown key (kid); the issuer's keys are being "
               "fetched again";
    case KOPT_JWT_BAD_SIGNATURE:
        return "token refused: bad signature";
    case KOPT_JWT_EXPIRED:
        return "token refused: expired";
    case KOPT_JWT_NOT_YET_VALID:
        return "token refused: not valid yet (nbf)";
    case KOPT_JWT_BAD_ISSUER:
        return "token refused: wrong issuer";
    case KOPT_JWT_BAD_AUDIENCE:
        return "token refused: wrong audience";
    case KOPT_JWT_NO_KEYS:
        return "token refused: the issuer's signing keys are not available";
    default:
        return "token refused: malformed";
    }
}

static grpc_status_code role_check(adv_auth_t *a, int method, int held, int need,
                                   const char *subject, const char *call, const char **why)
{
    if ((held & need) == need) {
        record(a, method, KOPT_JWT_OK, subject, call);
        return GRPC_STATUS_OK;
    }
    record(a, method, R_DENIED, subject, call);
    *why = need == ADV_ROLE_OPERATOR ? "permission denied: this call needs the operator role"
                                     : "permission denied: this call needs the viewer role";
    return GRPC_STATUS_PERMISSION_DENIED;
}

/* A JWT is three base64url parts: two dots, no spaces. */
static bool looks_like_jwt(const char *s)
{
    const char *d1 = strchr(s, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

    return d2 && !strchr(d2 + 1, '.') && !strchr(s, ' ');
}

grpc_status_code adv_auth_check(adv_auth_t *a, const char *authorization, const char *peer_uri,
                                const char *method, const char **why)
{
    int need = adv_auth_required_role(method), role = 0;
    digest_t d;
    int match = 0;
    size_t len;

    *why = NULL;
    if (a->open && !a->oidc)
        return GRPC_STATUS_OK;
    if (peer_uri && strncmp(peer_uri, SERVICE_PREFIX, strlen(SERVICE_PREFIX)) == 0 &&
        peer_uri[strlen(SERVICE_PREFIX)] != '\0') {
        record(a, M_SERVICE_CERT, KOPT_JWT_OK, peer_uri, method);
        return GRPC_STATUS_OK;
    }
    if (authorization == adv_auth_oversized) {
        record(a, a->oidc ? M_JWT : M_API_KEY, KOPT_JWT_TOO_LARGE, NULL, method);
        *why = "bearer token too large";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    if (!authorization || !*authorization) {
        record(a, M_NONE, R_MISSING, NULL, method);
        *why = "missing API key: send \"authorization: Bearer <key>\"";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        record(a, M_NONE, R_INVALID, NULL, method);
        *why = "the authorization must be \"Bearer <key>\"";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    authorization += 7;
    while (*authorization == ' ')
        authorization++;
    len = strlen(authorization);
    if (a->oidc && (looks_like_jwt(authorization) || len > adv_oidc_max_token(a->oidc))) {
        kopt_jwt_t *t = NULL;
        uint64_t gen = adv_oidc_keys_generation(a->oidc);
        int64_t now = (int64_t)time(NULL);
        adv_token_cache_t *tc = a->no_cache ? NULL : a->tokens;
        char sub[ADV_TOKEN_CACHE_MAX_SUBJECT + 1];
        kopt_jwt_result_t r;
        grpc_status_code code;

        if (tc && len <= adv_oidc_max_token(a->oidc) &&
            adv_token_cache_get(tc, authorization, len, gen, now, &role, sub, sizeof(sub)))
            return role_check(a, M_JWT, role, need, sub, method, why);
        r = adv_oidc_verify(a->oidc, authorization, len, &t, &role);
        if (r != KOPT_JWT_OK) {
            record(a, M_JWT, (int)r, NULL, method);
            *why = jwt_why(r);
            return GRPC_STATUS_UNAUTHENTICATED;
        }
        if (tc)
            adv_token_cache_put(tc, authorization, len, gen, now, kopt_jwt_expires(t),
                                kopt_jwt_subject(t), role);
        code = role_check(a, M_JWT, role, need, kopt_jwt_subject(t), method, why);
        kopt_jwt_free(t);
        return code;
    }
    if (len == 0 || digest(authorization, len, &d) < 0) {
        record(a, M_API_KEY, R_INVALID, NULL, method);
        *why = "invalid API key";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    /* Every key is compared, whichever matches: time does not depend on it. */
    for (size_t i = 0; i < a->n; i++) {
        int m = CRYPTO_memcmp(d.d, a->keys[i].d, DIGEST_LEN) == 0;

        match |= m;
        role |= -m & a->keys[i].role;
    }
    if (!match) {
        record(a, M_API_KEY, R_INVALID, NULL, method);
        *why = "invalid API key";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    return role_check(a, M_API_KEY, role, need, "api_key", method, why);
}

size_t adv_auth_count(const adv_auth_t *a)
{
    return a->n;
}

void adv_auth_free(adv_auth_t *a)
{
    if (!a)
        return;
    if (a->keys)
        OPENSSL_cleanse(a->keys, a->n * sizeof(*a->keys));
    free(a->keys);
    free(a->path);
    adv_token_cache_free(a->tokens);
    free(a);
}
