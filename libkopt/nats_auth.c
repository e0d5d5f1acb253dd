/* TLS and credentials for NATS connections; see kopt/nats_auth.h. */
#include <kopt/nats_auth.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include <kopt/log.h>
#include <kopt/nats_servers.h>
#include <kopt/url.h>

#define MAX_PASSWORD_BYTES 1024

/* Before anything initialises OpenSSL: no OpenSSL clean-up at exit. In a
 * process that initialised libcurl (ClickHouse) and made a TLS connection
 * with nats.c, nats_Close() (kopt_nats_shutdown) leaves OpenSSL's exit
 * handler a freed stack to free again: SIGSEGV or abort at every exit
 * (docs/stack-facts.md, 'nats.c + libcurl: crash at exit'). The OS frees
 * what the handler would have. */
__attribute__((constructor)) static void openssl_no_atexit(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

static int set(const char *s)
{
    return s && *s;
}

int kopt_nats_auth_any(const kopt_nats_auth_t *a)
{
    return a && (set(a->ca) || set(a->cert) || set(a->key) || set(a->creds) || set(a->user) ||
                 set(a->password_file));
}

/* A URL whose redacted copy differs carries userinfo (user:password@ or a
 * token@) or a secret query parameter. */
static int url_has_secret(const char *url)
{
    char copy[KOPT_URL_PRINT_MAX];

    if (!url)
        return 0;
    if (kopt_url_redact(url, copy, sizeof(copy)) < 0)
        return strchr(url, '@') != NULL;
    return strcmp(copy, url) != 0;
}

int kopt_nats_auth_check(const char *url, const kopt_nats_auth_t *a, char *err, size_t errlen)
{
    const char *why = NULL;

    if (url_has_secret(url))
        why = "--nats-url carries credentials; put them in --nats-password-file or --nats-creds "
              "instead";
    else if (!a)
        return 0;
    else if (set(a->cert) != set(a->key))
        why = "--nats-cert and --nats-key go together";
    else if (set(a->user) != set(a->password_file))
        why = "--nats-user and --nats-password-file go together";
    else if (set(a->creds) && set(a->user))
        why = "--nats-creds and --nats-user exclude each other";
    if (!why)
        return 0;
    snprintf(err, errlen, "%s", why);
    return -EINVAL;
}

/* The first line of `path`, without its line end, in `out`. */
static int read_password(const char *path, char *out, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    int r = 0;

    if (!f) {
        r = -errno;
        snprintf(err, errlen, "cannot read NATS password file %s: %s", path, strerror(errno));
        return r == -ENOMEM ? r : -EINVAL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
        char mode[8];

        snprintf(mode, sizeof(mode), "%03o", (unsigned)(st.st_mode & 0777));
        kopt_log_warn("NATS password file is open to group or others; chmod 600 it",
                      KOPT_STR("path", path), KOPT_STR("mode", mode));
    }
    if (!fgets(out, (int)len, f))
        out[0] = '\0';
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read NATS password file %s", path);
        r = -EINVAL;
    } else if (!strchr(out, '\n') && fgetc(f) != EOF) {
        /* The line did not fit: a cut password would fail at the server
         * with no hint why. */
        snprintf(err, errlen, "NATS password file %s: the password is longer than %zu bytes", path,
                 len - 1);
        r = -EINVAL;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (r == 0 && !out[0]) {
        snprintf(err, errlen, "NATS password file %s is empty", path);
        r = -EINVAL;
    }
    return r;
}

static int failed(natsStatus s, const char *what, const char *path, char *err, size_t errlen)
{
    const char *last = nats_GetLastError(NULL);

    snprintf(err, errlen, "%s %s: %s", what, path ? path : "",
             last && *last ? last : natsStatus_GetText(s));
    return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
}

int kopt_nats_auth_apply(natsOptions *o, const char *url, const kopt_nats_auth_t *a, char *err,
                         size_t errlen)
{
    char pw[MAX_PASSWORD_BYTES];
    natsStatus s;
    int r = kopt_nats_auth_check(url, a, err, errlen);

    if (r < 0 || !a)
        return r;
    if (set(a->ca) || set(a->cert)) {
        s = natsOptions_SetSecure(o, true);
        if (s != NATS_OK)
            return failed(s, "NATS TLS", NULL, err, errlen);
    }
    if (set(a->ca) && (s = natsOptions_LoadCATrustedCertificates(o, a->ca)) != NATS_OK)
        return failed(s, "NATS CA", a->ca, err, errlen);
    if (set(a->cert) && (s = natsOptions_LoadCertificatesChain(o, a->cert, a->key)) != NATS_OK)
        return failed(s, "NATS client certificate", a->cert, err, errlen);
    if (set(a->creds)) {
        /* nats.c reads the file at each connect; check now that it can. */
        FILE *f = fopen(a->creds, "r");

        if (!f) {
            snprintf(err, errlen, "cannot read NATS credentials file %s: %s", a->creds,
                     strerror(errno));
            return -EINVAL;
        }
        fclose(f);
        s = natsOptions_SetUserCredentialsFromFiles(o, a->creds, NULL);
        if (s != NATS_OK)
            return failed(s, "NATS credentials file", a->creds, err, errlen);
    }
    if (set(a->user)) {
        r = read_password(a->password_file, pw, sizeof(pw), err, errlen);
        if (r == 0 && (s = natsOptions_SetUserInfo(o, a->user, pw)) != NATS_OK)
            r = failed(s, "NATS user", a->user, err, errlen);
        explicit_bzero(pw, sizeof(pw));
    }
    return r;
}

/* Replies (PubAcks, fetched messages, API answers) come to _INBOX.<user>.…
 * rather than _INBOX.…, so the server can let each user subscribe to its own
 * inboxes only, and one component cannot read another's replies. Only for a
 * user name that is one subject token. */
static natsStatus set_inbox_prefix(natsOptions *o, const kopt_nats_auth_t *a)
{
    char prefix[200];

    if (!a || !set(a->user) || strlen(a->user) > sizeof(prefix) - 8 ||
        strpbrk(a->user, ".*> \t\r\n"))
        return NATS_OK;
    snprintf(prefix, sizeof(prefix), "_INBOX.%s", a->user);
    return natsOptions_SetCustomInboxPrefix(o, prefix);
}

int kopt_nats_options_new(const char *url, const char *name, const kopt_nats_auth_t *auth,
                          natsOptions **out, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    int r;

    *out = NULL;
    if (s != NATS_OK) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r = kopt_nats_auth_apply(o, url, auth, err, errlen);
    if (r == 0 && (!url || !*url)) {
        snprintf(err, errlen, "no NATS URL");
        r = -EINVAL;
    }
    if (r == 0 && (s = kopt_nats_servers(o, url)) != NATS_OK) {
        snprintf(err, errlen, "bad NATS URL %s: %s", KOPT_URL_REDACTED(url), natsStatus_GetText(s));
        r = s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    if (r == 0 && (s = set_inbox_prefix(o, auth)) != NATS_OK) {
        snprintf(err, errlen, "NATS inbox prefix: %s", natsStatus_GetText(s));
        r = s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    if (r == 0 && name && natsOptions_SetName(o, name) != NATS_OK) {
        snprintf(err, errlen, "out of memory");
        r = -ENOMEM;
    }
    if (r < 0) {
        natsOptions_Destroy(o);
        return r;
    }
    *out = o;
    return 0;
}

static int copy_one(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int kopt_nats_auth_copy(kopt_nats_auth_t *dst, const kopt_nats_auth_t *src)
{
    int r = 0;

    memset(dst, 0, sizeof(*dst));
    if (!src)
        return 0;
    r |= copy_one(&dst->ca, src->ca);
    r |= copy_one(&dst->cert, src->cert);
    r |= copy_one(&dst->key, src->key);
    r |= copy_one(&dst->creds, src->creds);
    r |= copy_one(&dst->user, src->user);
    r |= copy_one(&dst->password_file, src->password_file);
    if (r) {
        kopt_nats_auth_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

void kopt_nats_auth_clear(kopt_nats_auth_t *a)
{
    free(a->ca);
    free(a->cert);
    free(a->key);
    free(a->creds);
    free(a->user);
    free(a->password_file);
    memset(a, 0, sizeof(*a));
}

int kopt_nats_auth_validate(const char *url, const kopt_nats_auth_t *auth)
{
    natsOptions *o = NULL;
    char err[300];
    int r = kopt_nats_options_new(url, NULL, auth, &o, err, sizeof(err));

    natsOptions_Destroy(o);
    if (r < 0)
        kopt_log_error("NATS settings refused", KOPT_STR("url", KOPT_URL_REDACTED(url)),
                       KOPT_STR("reason", err));
    return r;
}
