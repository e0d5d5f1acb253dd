/* An S3-protocol object store client on libcurl, for backups and the cold
 * archive (docs/operations.md): put, get, head, list, delete and multipart
 * upload, signed with AWS SigV4 by libcurl (CURLOPT_AWS_SIGV4), retried with
 * backoff on transport errors, 5xx and 429. Path-style or virtual-host
 * addressing, so AWS S3, MinIO, Ceph RGW and GCS's XML API all work.
 * The library kopt_objstore (libkopt/objstore*.c); link kopt_objstore_dep.
 *
 * Credentials come from a file or the environment only, never from flags,
 * and are never logged or copied into an error. Calls are synchronous and
 * block: run them on a worker thread. A store is one curl handle: one store
 * per thread. */
#ifndef KOPT_OBJSTORE_H
#define KOPT_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kopt_objstore kopt_objstore_t;

typedef struct {
    /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000": scheme,
     * host, optional port, no path. Required. */
    const char *endpoint;
    const char *bucket;  /* required */
    const char *region;  /* NULL: "us-east-1" (MinIO's and s3rver's default) */
    const char *ca_file; /* https: trust these CAs instead of the system's */
    /* true: <endpoint>/<bucket>/<key>; false: <bucket>.<endpoint host>/<key>. */
    bool path_style;
    /* The access key id and secret come from the first that is set:
     * credentials_file (two lines: access key id, then secret; or the lines
     * AWS_ACCESS_KEY_ID=... / AWS_SECRET_ACCESS_KEY=...), else the
     * environment variables KOPT_OBJECT_STORE_ACCESS_KEY_ID and
     * KOPT_OBJECT_STORE_SECRET_ACCESS_KEY. */
    const char *credentials_file;
    uint32_t connect_timeout_ms; /* 0: 5000 */
    uint32_t timeout_ms;         /* one request; 0: 60000 */
    int max_attempts;            /* per request, first try included; 0: 4 */
    uint32_t backoff_base_ms;    /* 0: 200 (doubling, capped at 5 s, jittered) */
    /* Objects larger than this go up in parts of this size; 0: 16 MiB.
     * S3 wants parts of at least 5 MiB (but the last); tests use less. */
    size_t part_size;
    size_t max_object_bytes; /* get refuses larger objects (-EFBIG); 0: 1 GiB */
} kopt_objstore_options_t;

/* What went wrong with one call. No credential is ever copied into it. */
typedef struct {
    int r;             /* the negative errno the call returned */
    long http_status;  /* last answer's status; 0 when none arrived */
    int attempts;      /* requests made for the failing step */
    char code[64];     /* S3's <Code> ("AccessDenied", "NoSuchKey"), or "" */
    char message[256]; /* S3's <Message> or curl's text */
} kopt_objstore_error_t;

/* Counters since the store was made, for metrics. */
typedef struct {
    uint64_t requests, retries, failures;
    uint64_t bytes_up, bytes_down;
    uint64_t multipart_uploads, multipart_aborts;
    uint64_t overwrite_refusals;
} kopt_objstore_stats_t;

/* Errors: -EINVAL (bad options or unreadable/incomplete credentials; the
 * reason in err->message), -ENOMEM. */
int kopt_objstore_new(const kopt_objstore_options_t *opts, kopt_objstore_t **out,
                      kopt_objstore_error_t *err);
void kopt_objstore_free(kopt_objstore_t *s);

/* Stores data under key. Write-once: when key already holds an object this
 * store wrote with the same content (same SHA-256, kept in the object's
 * x-amz-meta-kopt-sha256), it succeeds without writing; when it holds
 * anything else, -EEXIST and nothing is written. Larger than part_size:
 * multipart upload, aborted on any failure so no partial object remains.
 * Errors (all calls): -ECONNREFUSED, -ETIMEDOUT, -EIO (transport, after the
 * retries), -EACCES (401/403), -ENOENT (404), -EREMOTEIO (other S3 error,
 * after the retries for 5xx/429), -EPROTO (an answer that does not parse),
 * -ENOMEM, -EINVAL (bad key). The check is a HEAD before the PUT, not an
 * atomic condition (S3 had none until 2024): two writers racing for one key
 * can both write. kopt's keys are unique per backup, so it has one writer. */
int kopt_objstore_put(kopt_objstore_t *s, const char *key, const void *data, size_t len,
                      kopt_objstore_error_t *err);

/* The object's bytes in *data (malloc'd, NUL-terminated for convenience),
 * its length in *len. -ENOENT when there is none, -EFBIG above
 * max_object_bytes. */
int kopt_objstore_get(kopt_objstore_t *s, const char *key, char **data, size_t *len,
                      kopt_objstore_error_t *err);

/* Size and the SHA-256 this client recorded (hex, "" when the object has
 * none). -ENOENT when there is no such object. sha256_hex needs 65 bytes. */
int kopt_objstore_head(kopt_objstore_t *s, const char *key, uint64_t *size, char *sha256_hex,
                       kopt_objstore_error_t *err);

/* Deletes key; 0 also when it did not exist (S3 answers 204 either way). */
int kopt_objstore_delete(kopt_objstore_t *s, const char *key, kopt_objstore_error_t *err);

typedef struct {
    char *key;
    uint64_t size;
} kopt_objstore_entry_t;

/* Every key under prefix (ListObjectsV2, following continuation tokens), in
 * the store's order (lexicographic). The caller frees with
 * kopt_objstore_entries_free. */
int kopt_objstore_list(kopt_objstore_t *s, const char *prefix, kopt_objstore_entry_t **out,
                       size_t *n, kopt_objstore_error_t *err);
void kopt_objstore_entries_free(kopt_objstore_entry_t *e, size_t n);

void kopt_objstore_stats(const kopt_objstore_t *s, kopt_objstore_stats_t *out);

/* Lowercase hex SHA-256 of data into hex[65], as put records it. */
void kopt_objstore_sha256_hex(const void *data, size_t len, char hex[65]);

/* ---- Pure helpers (objstore_xml.c), exposed for tests and the fuzzer. */

/* One page of a ListObjectsV2 answer: appends its <Contents> to *entries
 * (realloc'd; *n counts them), sets *truncated and *next_token (malloc'd or
 * NULL). 0, -EPROTO when the XML is not a ListBucketResult or an element is
 * malformed (then the entries of this page are not appended), -ENOMEM. */
int kopt_objstore_parse_list(const char *xml, size_t len, kopt_objstore_entry_t **entries,
                             size_t *n, bool *truncated, char **next_token);

/* The text of the first <name>...</name> in xml, entities decoded, into
 * out (NUL-terminated, truncated to out_size). 0, -ENOENT when absent,
 * -EPROTO when malformed. */
int kopt_objstore_xml_text(const char *xml, size_t len, const char *name, char *out,
                           size_t out_size);

#endif
