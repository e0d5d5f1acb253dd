/* The object store settings a daemon takes (docs/configuration.md,
 * "Object store"): one table for every daemon that reads or writes the store,
 * the URL that says where (--object-store-url), and the kopt_objstore options
 * they make. Credentials only from --object-store-credentials-file or
 * KOPT_OBJECT_STORE_ACCESS_KEY_ID / KOPT_OBJECT_STORE_SECRET_ACCESS_KEY. */
#ifndef KOPT_OBJSTORE_SETTINGS_H
#define KOPT_OBJSTORE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/config.h>
#include <kopt/objstore.h>

typedef struct {
    char *url, *region, *ca, *credentials_file;
    bool path_style;
} kopt_object_store_settings_t;

/* offsetof takes a member designator, which cannot be parenthesised. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define KOPT_OBJECT_STORE_SETTING(type, m, name, t, field, def, help)                              \
    {                                                                                              \
        name, t, offsetof(type, m.field), def, help, 0, 0, 0, NULL                                 \
    }
/* NOLINTEND(bugprone-macro-parentheses) */

/* The settings of a kopt_object_store_settings_t member m of the struct type. */
#define KOPT_OBJECT_STORE_SETTINGS(type, m)                                                        \
    KOPT_OBJECT_STORE_SETTING(type, m, "object-store-url", KOPT_CONFIG_STRING, url, NULL,          \
                              "object store of the backups and the cold archive: "                 \
                              "http(s)://host[:port]/BUCKET[/PREFIX] (S3, MinIO, Ceph RGW, GCS "   \
                              "XML API) or s3://BUCKET[/PREFIX] (AWS); PREFIX defaults to kopt"),  \
        KOPT_OBJECT_STORE_SETTING(type, m, "object-store-region", KOPT_CONFIG_STRING, region,      \
                                  "us-east-1", "region the SigV4 signature names"),                \
        KOPT_OBJECT_STORE_SETTING(type, m, "object-store-ca", KOPT_CONFIG_PATH, ca, NULL,          \
                                  "PEM CA certificates that verify an https:// object store "      \
                                  "(default: the system's)"),                                      \
        KOPT_OBJECT_STORE_SETTING(type, m, "object-store-path-style", KOPT_CONFIG_BOOL,            \
                                  path_style, "true",                                              \
                                  "http(s) URLs: address objects as <host>/<bucket>/<key> "        \
                                  "(false: <bucket>.<host>/<key>); s3:// is always virtual-host"), \
        KOPT_OBJECT_STORE_SETTING(type, m, "object-store-credentials-file", KOPT_CONFIG_PATH,      \
                                  credentials_file, NULL,                                          \
                                  "file with the access key id and secret (or "                    \
                                  "KOPT_OBJECT_STORE_ACCESS_KEY_ID and "                           \
                                  "KOPT_OBJECT_STORE_SECRET_ACCESS_KEY)")

/* What --object-store-url names. */
typedef struct {
    char endpoint[256]; /* scheme://host[:port] */
    char bucket[64];
    char prefix[256]; /* object key prefix, no slash at either end: "kopt" by default */
    bool path_style;
} kopt_object_store_location_t;

/* Whether --object-store-url is set. */
bool kopt_object_store_configured(const kopt_object_store_settings_t *s);

/* Reads s->url into *loc. 0; -ENOENT when it is not set; -EINVAL, with a
 * sentence in err, for a URL that is not one of the two forms, a bucket name
 * S3 would refuse, a query or fragment, or credentials in the URL (they
 * belong in the credentials file or the environment). Pure. */
int kopt_object_store_locate(const kopt_object_store_settings_t *s,
                             kopt_object_store_location_t *loc, char *err, size_t errlen);

/* The options of kopt_objstore_new; the strings stay s's and loc's.
 * timeout_ms: one request (0: the store's default). */
void kopt_object_store_options(const kopt_object_store_settings_t *s,
                               const kopt_object_store_location_t *loc, uint32_t timeout_ms,
                               kopt_objstore_options_t *o);

#endif
