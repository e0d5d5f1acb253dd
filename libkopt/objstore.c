/* The object store client: options and credentials, one signed request with
 * retries, and the single-object calls (put, get, head, delete, list).
 * kopt/objstore.h documents the contract; objstore_multipart.c does large
 * uploads, objstore_xml.c reads S3's XML. */
#include "objstore_internal.h"

#include "kopt/backoff.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void objstore_err_set(kopt_objstore_error_t *err, int r, long status, const char *code,
                      const char *msg)
{
    if (!err)
        return;
    err->r = r;
    err->http_status = status;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "");
    snprintf(err->message, sizeof err->message, "%s", msg ? msg : "");
}

void objstore_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data ? data : (const void *)"", len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void kopt_objstore_sha256_hex(const void *data, size_t len, char hex[65])
{
    objstore_sha256_hex(data, len, hex);
}

char *objstore_encode(const char *s, bool keep_slash)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/'))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

/* ---- credentials: a file or the environment, never a flag */

static void free_secret(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}


static char *trim_dup(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

static int load_credentials(kopt_objstore_t *s, const char *file, kopt_objstore_error_t *err)
{
    if (!file) {
        const char *k = getenv("KOPT_OBJECT_STORE_ACCESS_KEY_ID"),
                   *x = getenv("KOPT_OBJECT_STORE_SECRET_ACCESS_KEY");
        if (!k || !*k || !x || !*x) {
            objstore_err_set(err, -EINVAL, 0, "",
                             "no object store credentials: set KOPT_OBJECT_STORE_ACCESS_KEY_ID "
                             "and KOPT_OBJECT_STORE_SECRET_ACCESS_KEY or give a credentials "
                             "file");
            return -EINVAL;
        }
        s->access_key = strdup(k);
        s->secret_key = strdup(x);
        return s->access_key && s->secret_key ? 0 : -ENOMEM;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read S3 credentials file %s: %s", file, strerror(errno));
        objstore_err_set(err, -EINVAL, 0, "", msg);
        return -EINVAL;
    }
    char line[1024];
    char *plain[2] = {NULL, NULL};
    int nplain = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        char *t = trim_dup(line, n);
        if (!t)
            break;
        if (strncmp(t, "AWS_ACCESS_KEY_ID=", 18) == 0) {
            free(s->access_key);
            s->access_key = trim_dup(t + 18, strlen(t + 18));
        } else if (strncmp(t, "AWS_SECRET_ACCESS_KEY=", 22) == 0) {
            free_secret(s->secret_key);
            s->secret_key = trim_dup(t + 22, strlen(t + 22));
        } else if (*t && t[0] != '#' && nplain < 2) {
            plain[nplain++] = t;
            t = NULL; /* kept */
        }
        if (t)
            explicit_bzero(t, strlen(t));
        free(t);
    }
    fclose(f);
    if (!s->access_key && !s->secret_key && nplain == 2) {
        s->access_key = plain[0];
        s->secret_key = plain[1];
        plain[0] = plain[1] = NULL;
    }
    free_secret(plain[0]);
    free_secret(plain[1]);
    explicit_bzero(line, sizeof line);
    if (!s->access_key || !*s->access_key || !s->secret_key || !*s->secret_key) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "S3 credentials file %s: want two lines (access key id, secret) or "
                 "AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY=",
                 file);
        objstore_err_set(err, -EINVAL, 0, "", msg);
        return -EINVAL;
    }
    return 0;
}

/* ---- options */

int kopt_objstore_new(const kopt_objstore_options_t *opts, kopt_objstore_t **out,
                      kopt_objstore_error_t *err)
{
    objstore_err_set(err, 0, 0, "", "");
    *out = NULL;
    if (!opts || !opts->endpoint || !opts->bucket || !*opts->bucket) {
        objstore_err_set(err, -EINVAL, 0, "", "object store: endpoint and bucket are required");
        return -EINVAL;
    }
    const char *sep = strstr(opts->endpoint, "://");
    if (!sep || (strncmp(opts->endpoint, "http://", 7) != 0 &&
                 strncmp(opts->endpoint, "https://", 8) != 0)) {
        objstore_err_set(err, -EINVAL, 0, "",
                         "object store: endpoint must be http(s)://host[:port]");
        return -EINVAL;
    }
    const char *host = sep + 3;
    size_t hl = strcspn(host, "/");
    if (hl == 0 || strchr(host, '@') || (host[hl] == '/' && host[hl + 1] != '\0')) {
        objstore_err_set(err, -EINVAL, 0, "",
                         "object store: endpoint must be http(s)://host[:port] without a path "
                         "or user");
        return -EINVAL;
    }
    for (const char *b = opts->bucket; *b; b++) {
        if (!(islower((unsigned char)*b) || isdigit((unsigned char)*b) || *b == '-' || *b == '.')) {
            objstore_err_set(err, -EINVAL, 0, "",
                             "object store: bucket names are lowercase letters, digits, '-', '.'");
            return -EINVAL;
        }
    }
    kopt_objstore_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int r = load_credentials(s, opts->credentials_file, err);
    if (r < 0) {
        kopt_objstore_free(s);
        return r;
    }
    s->scheme = strndup(opts->endpoint, (size_t)(sep - opts->endpoint));
    s->hostport = strndup(host, hl);
    s->endpoint = strndup(opts->endpoint, (size_t)(host - opts->endpoint) + hl);
    s->bucket = strdup(opts->bucket);
    const char *region = opts->region && *opts->region ? opts->region : "us-east-1";
    size_t sl = strlen(region) + 16;
    s->sigv4 = malloc(sl);
    if (s->sigv4)
        snprintf(s->sigv4, sl, "aws:amz:%s:s3", region);
    s->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    s->path_style = opts->path_style;
    s->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 5000;
    s->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 60000;
    s->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 4;
    s->backoff_base_ms = opts->backoff_base_ms ? opts->backoff_base_ms : 200;
    s->part_size = opts->part_size ? opts->part_size : (size_t)16 << 20;
    s->max_object_bytes = opts->max_object_bytes ? opts->max_object_bytes : (size_t)1 << 30;
    s->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s->curl = curl_easy_init();
    if (!s->scheme || !s->hostport || !s->endpoint || !s->bucket || !s->sigv4 || !s->curl ||
        (opts->ca_file && !s->ca_file)) {
        kopt_objstore_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void kopt_objstore_free(kopt_objstore_t *s)
{
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free(s->endpoint);
    free(s->scheme);
    free(s->hostport);
    free(s->bucket);
    free(s->sigv4);
    free_secret(s->access_key);
    free_secret(s->secret_key);
    free(s->ca_file);
    free(s);
}

void kopt_objstore_stats(const kopt_objstore_t *s, kopt_objstore_stats_t *out)
{
    *out = s->stats;
}

/* ---- one request */

typedef struct {
    objstore_resp_t *resp;
    size_t cap, limit;
    bool too_big;
} sink_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sink_t *k = ud;
    size_t len = size * n;
    objstore_resp_t *r = k->resp;
    if (r->len + len > k->limit) {
        k->too_big = true;
        return 0;
    }
    if (r->len + len + 1 > k->cap) {
        size_t nc = k->cap ? k->cap : 4096;
        while (nc < r->len + len + 1)
            nc *= 2;
        char *g = realloc(r->body, nc);
        if (!g)
            return 0;
        r->body = g;
        k->cap = nc;
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* Copies the value of header `name` (lowercase) from line into out. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl > 0 && isspace((unsigned char)*v)) {
        v++;
        vl--;
    }
    while (vl > 0 && isspace((unsigned char)v[vl - 1]))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    objstore_resp_t *r = ud;
    size_t len = size * n;
    char cl[32] = "";
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        r->sha256_meta[0] = r->etag[0] = '\0';
        r->content_length = 0;
    }
    header_value(p, len, "x-amz-meta-kopt-sha256", r->sha256_meta, sizeof r->sha256_meta);
    header_value(p, len, "etag", r->etag, sizeof r->etag);
    header_value(p, len, "content-length", cl, sizeof cl);
    if (cl[0])
        r->content_length = strtoull(cl, NULL, 10);
    return len;
}

typedef struct {
    const char *p;
    size_t left;
} source_t;

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    source_t *src = ud;
    size_t k = size * n < src->left ? size * n : src->left;
    memcpy(buf, src->p, k);
    src->p += k;
    src->left -= k;
    return k;
}

static char *build_url(kopt_objstore_t *s, const char *key, const char *query)
{
    char *ek = objstore_encode(key ? key : "", true);
    if (!ek)
        return NULL;
    size_t n =
        strlen(s->endpoint) + strlen(s->bucket) + strlen(ek) + (query ? strlen(query) : 0) + 8;
    char *url = malloc(n);
    if (url) {
        if (s->path_style)
            snprintf(url, n, "%s/%s/%s%s%s", s->endpoint, s->bucket, ek, query ? "?" : "",
                     query ? query : "");
        else
            snprintf(url, n, "%s://%s.%s/%s%s%s", s->scheme, s->bucket, s->hostport, ek,
                     query ? "?" : "", query ? query : "");
    }
    free(ek);
    return url;
}

static int curl_errno(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* One attempt. Returns 0 with resp->status set when an answer arrived. */
static int attempt(kopt_objstore_t *s, const objstore_req_t *req, const char *url,
                   objstore_resp_t *resp, kopt_objstore_error_t *err)
{
    CURL *c = s->curl;
    char payload_hdr[96], meta_hdr[96];
    char payload[65];
    struct curl_slist *h = NULL;
    sink_t sink = {.resp = resp, .limit = s->max_object_bytes};
    source_t src = {.p = req->body, .left = req->body ? req->body_len : 0};
    bool upload = strcmp(req->method, "PUT") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    curl_easy_reset(c);
    objstore_sha256_hex(req->body, req->body ? req->body_len : 0, payload);
    /* libcurl 7.88 signs but does not send the payload hash S3 requires; given
     * as a header it is both sent and used as the canonical payload hash. */
    snprintf(payload_hdr, sizeof payload_hdr, "x-amz-content-sha256: %s", payload);
    h = curl_slist_append(h, payload_hdr);
    h = curl_slist_append(h, "Expect:");
    if (upload || post)
        h = curl_slist_append(h, "Content-Type: application/octet-stream");
    if (req->sha256_meta) {
        snprintf(meta_hdr, sizeof meta_hdr, "x-amz-meta-kopt-sha256: %s", req->sha256_meta);
        h = curl_slist_append(h, meta_hdr);
    }
    if (!h)
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src.left);
    } else if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)src.left);
    } else if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }

    s->stats.requests++;
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (cc != CURLE_OK) {
        int r = sink.too_big ? -EFBIG : curl_errno(cc);
        objstore_err_set(err, r, 0, "",
                         sink.too_big ? "object larger than max_object_bytes"
                                      : curl_easy_strerror(cc));
        return r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    s->stats.bytes_up += req->body ? req->body_len : 0;
    s->stats.bytes_down += resp->len;
    return 0;
}

void objstore_resp_free(objstore_resp_t *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

int objstore_request(kopt_objstore_t *s, const objstore_req_t *req, objstore_resp_t *resp,
                     kopt_objstore_error_t *err)
{
    kopt_backoff_t bo;
    char *url = build_url(s, req->key, req->query);
    int r = -EIO;
    if (!url)
        return -ENOMEM;
    kopt_backoff_init(&bo, s->backoff_base_ms, 5000, s->seed++);
    for (int i = 1; i <= s->max_attempts; i++) {
        memset(resp, 0, sizeof *resp);
        r = attempt(s, req, url, resp, err);
        bool retry;
        if (r == 0) {
            long st = resp->status;
            if (st >= 200 && st < 300) {
                free(url);
                if (err)
                    err->attempts = i;
                return 0;
            }
            char code[64] = "", msg[256] = "";
            if (resp->body) {
                kopt_objstore_xml_text(resp->body, resp->len, "Code", code, sizeof code);
                kopt_objstore_xml_text(resp->body, resp->len, "Message", msg, sizeof msg);
            }
            if (!msg[0])
                snprintf(msg, sizeof msg, "HTTP %ld from the object store", st);
            r = st == 401 || st == 403 ? -EACCES : st == 404 ? -ENOENT : -EREMOTEIO;
            objstore_err_set(err, r, st, code, msg);
            retry = st >= 500 || st == 429;
            objstore_resp_free(resp);
        } else {
            retry = r != -ENOMEM && r != -EFBIG;
            objstore_resp_free(resp);
        }
        if (err)
            err->attempts = i;
        if (!retry || i == s->max_attempts)
            break;
        s->stats.retries++;
        sleep_ms(kopt_backoff_next(&bo));
    }
    if (r != -ENOENT) /* "no such key" is an answer, not a failure */
        s->stats.failures++;
    free(url);
    return r;
}

/* ---- single objects */

static int check_key(const char *key, kopt_objstore_error_t *err)
{
    if (!key || !*key || key[0] == '/' || strlen(key) > 1024) {
        objstore_err_set(err, -EINVAL, 0, "", "object key must be 1..1024 bytes, not start with /");
        return -EINVAL;
    }
    return 0;
}

int kopt_objstore_head(kopt_objstore_t *s, const char *key, uint64_t *size, char *sha256_hex,
                       kopt_objstore_error_t *err)
{
    objstore_resp_t resp;
    objstore_req_t req = {.method = "HEAD", .key = key};
    int r = check_key(key, err);
    if (r < 0)
        return r;
    r = objstore_request(s, &req, &resp, err);
    if (r < 0)
        return r;
    if (size)
        *size = resp.content_length;
    if (sha256_hex)
        snprintf(sha256_hex, 65, "%s", resp.sha256_meta);
    objstore_resp_free(&resp);
    return 0;
}

int kopt_objstore_put(kopt_objstore_t *s, const char *key, const void *data, size_t len,
                      kopt_objstore_error_t *err)
{
    char sha[65], have[65];
    uint64_t have_size = 0;
    int r = check_key(key, err);
    if (r < 0)
        return r;
    objstore_sha256_hex(data, len, sha);
    r = kopt_objstore_head(s, key, &have_size, have, err);
    if (r == 0) {
        if (strcmp(have, sha) == 0 && have_size == len)
            return 0; /* already there, same bytes: a retried upload */
        s->stats.overwrite_refusals++;
        char msg[256];
        snprintf(msg, sizeof msg, "refusing to overwrite %s: it holds different content", key);
        objstore_err_set(err, -EEXIST, 0, "", msg);
        return -EEXIST;
    }
    if (r != -ENOENT)
        return r;
    if (len > s->part_size)
        return objstore_put_multipart(s, key, data, len, sha, err);
    objstore_resp_t resp;
    objstore_req_t req = {
        .method = "PUT", .key = key, .body = data, .body_len = len, .sha256_meta = sha};
    r = objstore_request(s, &req, &resp, err);
    if (r == 0)
        objstore_resp_free(&resp);
    return r;
}

int kopt_objstore_get(kopt_objstore_t *s, const char *key, char **data, size_t *len,
                      kopt_objstore_error_t *err)
{
    objstore_resp_t resp;
    objstore_req_t req = {.method = "GET", .key = key};
    int r = check_key(key, err);
    if (r < 0)
        return r;
    r = objstore_request(s, &req, &resp, err);
    if (r < 0)
        return r;
    if (!resp.body) {
        resp.body = calloc(1, 1);
        if (!resp.body)
            return -ENOMEM;
    }
    *data = resp.body;
    *len = resp.len;
    return 0;
}

int kopt_objstore_delete(kopt_objstore_t *s, const char *key, kopt_objstore_error_t *err)
{
    objstore_resp_t resp;
    objstore_req_t req = {.method = "DELETE", .key = key};
    int r = check_key(key, err);
    if (r < 0)
        return r;
    r = objstore_request(s, &req, &resp, err);
    if (r == -ENOENT)
        return 0;
    if (r == 0)
        objstore_resp_free(&resp);
    return r;
}

int kopt_objstore_list(kopt_objstore_t *s, const char *prefix, kopt_objstore_entry_t **out,
                       size_t *n, kopt_objstore_error_t *err)
{
    char *token = NULL;
    int r = 0;
    *out = NULL;
    *n = 0;
    char *ep = objstore_encode(prefix ? prefix : "", false);
    if (!ep)
        return -ENOMEM;
    for (int page = 0; page < 100000; page++) {
        char *et = token ? objstore_encode(token, false) : NULL;
        size_t ql = strlen(ep) + (et ? strlen(et) : 0) + 64;
        char *q = malloc(ql);
        if (!q || (token && !et)) {
            free(q);
            free(et);
            r = -ENOMEM;
            break;
        }
        /* Sorted by name: libcurl 7.88 signs the query as given. */
        if (et)
            snprintf(q, ql, "continuation-token=%s&list-type=2&prefix=%s", et, ep);
        else
            snprintf(q, ql, "list-type=2&prefix=%s", ep);
        free(et);
        objstore_resp_t resp;
        objstore_req_t req = {.method = "GET", .key = NULL, .query = q};
        r = objstore_request(s, &req, &resp, err);
        free(q);
        if (r < 0)
            break;
        bool truncated = false;
        free(token);
        token = NULL;
        r = kopt_objstore_parse_list(resp.body ? resp.body : "", resp.len, out, n, &truncated,
                                     &token);
        objstore_resp_free(&resp);
        if (r < 0) {
            objstore_err_set(err, r, 200, "", "object store: a list answer that does not parse");
            break;
        }
        if (!truncated)
            break;
    }
    free(token);
    free(ep);
    if (r < 0) {
        kopt_objstore_entries_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}
