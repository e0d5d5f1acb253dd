/* The object store settings a daemon takes (--s3-endpoint and the rest;
 * docs/operations.md), one table for every daemon that reads or writes the
 * store, and the kopt_objstore options they make. Credentials only from
 * --s3-credentials-file or KOPT_S3_ACCESS_KEY_ID/KOPT_S3_SECRET_ACCESS_KEY. */
#ifndef KOPT_OBJSTORE_SETTINGS_H
#define KOPT_OBJSTORE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <kopt/config.h>
#include <kopt/objstore.h>

typedef struct {
    char *endpoint, *bucket, *region, *ca, *credentials_file;
    bool path_style;
    char *prefix; /* object key prefix: backups and archives go under it */
} kopt_s3_settings_t;

#define KOPT_S3_SETTING(type, m, name, t, field, def, help)                                        \
    {                                                                                              \
        name, t, offsetof(type, m.field), def, help, 0, 0, 0, NULL                                 \
    }

/* The settings of a kopt_s3_settings_t member m of the struct type. */
#define KOPT_S3_SETTINGS(type, m)                                                                  \
    KOPT_S3_SETTING(type, m, "s3-endpoint", KOPT_CONFIG_STRING, endpoint, NULL,                    \
                    "object store for backups and the cold archive: http(s)://host[:port] (S3, "   \
                    "MinIO, Ceph RGW, GCS XML API)"),                                              \
        KOPT_S3_SETTING(type, m, "s3-bucket", KOPT_CONFIG_STRING, bucket, NULL,                    \
                        "bucket of the backups and the cold archive"),                             \
        KOPT_S3_SETTING(type, m, "s3-region", KOPT_CONFIG_STRING, region, "us-east-1",             \
                        "region the SigV4 signature names"),                                       \
        KOPT_S3_SETTING(type, m, "s3-ca", KOPT_CONFIG_PATH, ca, NULL,                              \
                        "PEM CA certificates that verify an https:// object store (default: the "  \
                        "system's)"),                                                              \
        KOPT_S3_SETTING(type, m, "s3-path-style", KOPT_CONFIG_BOOL, path_style, "true",            \
                        "address objects as <endpoint>/<bucket>/<key> (false: "                    \
                        "<bucket>.<host>/<key>)"),                                                 \
        KOPT_S3_SETTING(type, m, "s3-credentials-file", KOPT_CONFIG_PATH, credentials_file, NULL,  \
                        "file with the access key id and secret (or KOPT_S3_ACCESS_KEY_ID and "    \
                        "KOPT_S3_SECRET_ACCESS_KEY)"),                                             \
        KOPT_S3_SETTING(type, m, "s3-prefix", KOPT_CONFIG_STRING, prefix, "kopt",                  \
                        "key prefix: backups under <prefix>/backups/, the archive under "          \
                        "<prefix>/archive/")

/* The options of kopt_objstore_new; the strings stay the settings'.
 * timeout_ms: one request (0: the store's default). */
void kopt_s3_objstore_options(const kopt_s3_settings_t *s, uint32_t timeout_ms,
                              kopt_objstore_options_t *o);

/* Whether the store is configured (endpoint and bucket). */
bool kopt_s3_configured(const kopt_s3_settings_t *s);

#endif
