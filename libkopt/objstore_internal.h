/* Shared between objstore.c (requests, single objects) and
 * objstore_multipart.c (multipart upload). Not a public header. */
#ifndef KOPT_OBJSTORE_INTERNAL_H
#define KOPT_OBJSTORE_INTERNAL_H

#include "kopt/objstore.h"

#include <curl/curl.h>

struct kopt_objstore {
    CURL *curl;
    char *endpoint; /* without a trailing slash */
    char *scheme;   /* "http" or "https" */
    char *hostport; /* "host[:port]" of the endpoint */
    char *bucket;
    char *sigv4; /* "aws:amz:<region>:s3" */
    char *access_key;
    char *secret_key;
    char *ca_file;
    bool path_style;
    uint32_t connect_timeout_ms, timeout_ms, backoff_base_ms;
    int max_attempts;
    size_t part_size, max_object_bytes;
    uint64_t seed;
    kopt_objstore_stats_t stats;
};

/* One request. query: already encoded and sorted by name (SigV4 signs the
 * canonical query and libcurl 7.88 signs it as given). */
typedef struct {
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    const char *key;    /* NULL or "": the bucket itself */
    const char *query;  /* NULL or "a=1&b=2" */
    const void *body;   /* PUT/POST body, may be NULL */
    size_t body_len;
    const char *sha256_meta; /* sent as x-amz-meta-kopt-sha256, or NULL */
} objstore_req_t;

typedef struct {
    long status;
    char *body; /* malloc'd, NUL-terminated; NULL when empty */
    size_t len;
    char sha256_meta[65];
    char etag[128];
    uint64_t content_length;
} objstore_resp_t;

/* Sends req with retries (transport errors, 5xx, 429), fills resp on a 2xx.
 * Errors as documented in kopt/objstore.h, with err filled in. */
int objstore_request(kopt_objstore_t *s, const objstore_req_t *req, objstore_resp_t *resp,
                     kopt_objstore_error_t *err);
void objstore_resp_free(objstore_resp_t *resp);

/* s percent-encoded for a URL path (keep_slash) or a query value. NULL on ENOMEM. */
char *objstore_encode(const char *s, bool keep_slash);

/* Lowercase hex SHA-256 of data into hex[65]. */
void objstore_sha256_hex(const void *data, size_t len, char hex[65]);

void objstore_err_set(kopt_objstore_error_t *err, int r, long status, const char *code,
                      const char *msg);

/* The multipart path of kopt_objstore_put (objstore_multipart.c). */
int objstore_put_multipart(kopt_objstore_t *s, const char *key, const void *data, size_t len,
                           const char *sha256_hex, kopt_objstore_error_t *err);

#endif
