/* API keys for the Advisor API, gRPC and HTTP alike: "authorization: Bearer
 * <key>", keys read from --api-keys-file (one a line, '#' comments), re-read
 * on SIGHUP. Only SHA-256 digests are kept, and a presented key is compared
 * with every one of them in constant time, so neither memory nor timing
 * tells a key. Internal callers with a client certificate naming a kopt
 * service (spiffe://kopt/service/<name>, verified by TLS) need no key.
 * A key shorter than MIN_KEY_LEN refuses the whole file (a short key is
 * guessed), and a file others may read is accepted with a warning.
 * Loop thread only (both servers' handlers run there). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <kopt/log.h>

#include "advisor.h"

#define DIGEST_LEN 32
#define MAX_KEYS 10000
#define MIN_KEY_LEN 16 /* characters; 16 random ones are ~95 bits in base64 */
#define SERVICE_PREFIX "spiffe://kopt/service/"

typedef struct {
    unsigned char d[DIGEST_LEN];
} digest_t;

struct adv_auth {
    char *path;
    bool open;
    digest_t *keys;
    size_t n;
};

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
        char *s = line, *e = line + len;
        digest_t *nk;

        lineno++;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
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
    if (path) {
        a->path = strdup(path);
        r = a->path ? read_keys(path, &a->keys, &a->n, err, errlen) : -ENOMEM;
    }
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

grpc_status_code adv_auth_check(const adv_auth_t *a, const char *authorization,
                                const char *peer_uri, const char **why)
{
    digest_t d;
    int match = 0;
    size_t len;

    *why = NULL;
    if (a->open)
        return GRPC_STATUS_OK;
    if (peer_uri && strncmp(peer_uri, SERVICE_PREFIX, strlen(SERVICE_PREFIX)) == 0 &&
        peer_uri[strlen(SERVICE_PREFIX)] != '\0')
        return GRPC_STATUS_OK;
    if (!authorization || !*authorization) {
        *why = "missing API key: send \"authorization: Bearer <key>\"";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        *why = "the authorization must be \"Bearer <key>\"";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    authorization += 7;
    while (*authorization == ' ')
        authorization++;
    len = strlen(authorization);
    if (len == 0 || digest(authorization, len, &d) < 0) {
        *why = "invalid API key";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    /* Every key is compared, whichever matches: time does not depend on it. */
    for (size_t i = 0; i < a->n; i++)
        match |= CRYPTO_memcmp(d.d, a->keys[i].d, DIGEST_LEN) == 0;
    if (!match) {
        *why = "invalid API key";
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    return GRPC_STATUS_OK;
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
    free(a);
}
