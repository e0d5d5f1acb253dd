/* How a kopt daemon proves itself to NATS: TLS (a CA that verifies the
 * server, optionally a client certificate) and one kind of credentials (a
 * .creds file, or a user with a password read from a file). Secrets come from
 * files only: a --nats-url carrying credentials is refused, and nothing here
 * logs a password (docs/security.md, 'NATS authentication'). */
#ifndef KOPT_NATS_AUTH_H
#define KOPT_NATS_AUTH_H

#include <stddef.h>

#include <nats/nats.h>

#include <kopt/config.h>

/* Paths and the user name as the settings give them; NULL or "": not set. */
typedef struct {
    char *ca;            /* PEM CA bundle: turns TLS on and verifies the server */
    char *cert, *key;    /* PEM client certificate and key (both or neither) */
    char *creds;         /* NATS credentials file (user JWT + NKey seed) */
    char *user;          /* with password_file; not with creds */
    char *password_file; /* first line is the password */
} kopt_nats_auth_t;

/* The settings rows of every NATS client; the daemon's settings struct
 * `type` holds them in a kopt_nats_auth_t member named `nats`. */
#define KOPT_NATS_AUTH_SETTINGS(type)                                                              \
    {"nats-ca",                                                                                    \
     KOPT_CONFIG_PATH,                                                                             \
     offsetof(type, nats.ca),                                                                      \
     NULL,                                                                                         \
     "PEM CA bundle that verifies the NATS server; turns TLS on",                                  \
     0,                                                                                            \
     0,                                                                                            \
     0,                                                                                            \
     NULL},                                                                                        \
        {"nats-cert",                                                                              \
         KOPT_CONFIG_PATH,                                                                         \
         offsetof(type, nats.cert),                                                                \
         NULL,                                                                                     \
         "PEM client certificate for NATS (with --nats-key)",                                      \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"nats-key",                                                                               \
         KOPT_CONFIG_PATH,                                                                         \
         offsetof(type, nats.key),                                                                 \
         NULL,                                                                                     \
         "PEM private key of --nats-cert",                                                         \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"nats-creds",                                                                             \
         KOPT_CONFIG_PATH,                                                                         \
         offsetof(type, nats.creds),                                                               \
         NULL,                                                                                     \
         "NATS credentials file (user JWT and NKey seed)",                                         \
         KOPT_CONFIG_SECRET,                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"nats-user",                                                                              \
         KOPT_CONFIG_STRING,                                                                       \
         offsetof(type, nats.user),                                                                \
         NULL,                                                                                     \
         "NATS user name (with --nats-password-file)",                                             \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
    {                                                                                              \
        "nats-password-file", KOPT_CONFIG_PATH, offsetof(type, nats.password_file), NULL,          \
            "file whose first line is the NATS password of --nats-user", KOPT_CONFIG_SECRET, 0, 0, \
            NULL                                                                                   \
    }

/* Checks the combination without touching files: no credentials or token
 * in `url` (put them in files), a cert needs its key and the reverse, a user
 * needs a password file and the reverse, creds and user exclude each other.
 * 0, or -EINVAL with a sentence in `err` that holds no secret. */
int kopt_nats_auth_check(const char *url, const kopt_nats_auth_t *auth, char *err, size_t errlen);

/* kopt_nats_auth_check, then sets TLS and credentials on `o`: reads the CA
 * and the client certificate now (a bad file fails here, not at connect),
 * and the password file (trailing newline cut; a file open to group or
 * others is used with a warning). `auth` may be NULL (nothing to add).
 * 0, -EINVAL with the reason in `err`, or -ENOMEM. */
int kopt_nats_auth_apply(natsOptions *o, const char *url, const kopt_nats_auth_t *auth, char *err,
                         size_t errlen);

/* New options for a connection to `url` (a comma-separated list becomes
 * the server list) named `name` (NULL: none) with `auth` applied. The
 * caller adds the rest and destroys them. 0, -EINVAL with the reason in
 * `err` (a bad URL or auth setting), -ENOMEM. */
int kopt_nats_options_new(const char *url, const char *name, const kopt_nats_auth_t *auth,
                          natsOptions **out, char *err, size_t errlen);

/* A deep copy in `dst` (settings are freed on SIGHUP reloads; a daemon
 * keeps its own copy for connections made later). NULL src: empty. 0 or
 * -ENOMEM (then `dst` is empty). */
int kopt_nats_auth_copy(kopt_nats_auth_t *dst, const kopt_nats_auth_t *src);

/* Frees what kopt_nats_auth_copy made and empties `a`. */
void kopt_nats_auth_clear(kopt_nats_auth_t *a);

/* At start-up: builds and drops the options, logging "NATS settings
 * refused" with the reason, so a daemon exits on settings that can never
 * work instead of retrying them. 0 or the negative errno. */
int kopt_nats_auth_validate(const char *url, const kopt_nats_auth_t *auth);

/* 1 when `auth` asks for TLS or credentials. NULL: 0. */
int kopt_nats_auth_any(const kopt_nats_auth_t *auth);

#endif
