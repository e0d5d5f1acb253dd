/* ClickHouse over HTTP with libcurl; see kopt/clickhouse.h for the contract.
 *
 * One easy handle per client: curl keeps the connection open between
 * performs on the same handle (keep-alive), which matters because every
 * insert is a POST. ClickHouse protocol facts used here, seen on 18.16:
 * errors are "Code: N, e.displayText() = DB::Exception: ..." bodies (no
 * X-ClickHouse-Exception-Code header before 19.x), gzip request bodies are
 * accepted, enable_http_compression=1 gzips answers, and X-ClickHouse-User /
 * X-ClickHouse-Key authenticate. */
#include "kopt/clickhouse.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "kopt/log.h"

#define DEFAULT_DATABASE "kopt"
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MAX_RESPONSE (64u << 20) /* bytes */
#define GZIP_MIN_BYTES 1024              /* smaller bodies are not worth a gzip header */
#define MAX_SECRET_BYTES 4096
#define MAX_URLS 16 /* replicas in one --clickhouse-url list */

struct kopt_ch_client {
    CURL *easy;
    char *url;     /* urls[current]: the one in use */
    char **urls;   /* each without credentials, without a trailing '?' */
    size_t n_urls; /* 1 unless the option listed replicas */
    size_t current;
    bool pinned;        /* kopt_ch_pin(): no failover */
    uint64_t failovers; /* switches to another URL */
    uint32_t insert_quorum, insert_quorum_timeout_ms;
    char *cluster; /* NULL: not replicated */
    char *database;
    char *user;
    char *password;                  /* wiped on free */
    struct curl_slist *headers;      /* auth + "Expect:" */
    struct curl_slist *headers_gzip; /* the same + Content-Encoding: gzip */
    size_t max_response;
    bool compress;
    uint64_t connections;
    kopt_ch_version_t version;
    bool have_version;
    unsigned char *gz; /* reused compression buffer */
    size_t gz_cap;
    char *session; /* "session_id=..&session_timeout=.." or NULL */
};

typedef struct {
    char *data;
    size_t len, cap, max;
    bool too_big;
    int header_code; /* X-ClickHouse-Exception-Code (19.x and later) */
} response_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
}

static void set_error(kopt_ch_error_t *err, int r, int code, long status, kopt_ch_class_t cls,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_error(kopt_ch_error_t *err, int r, int code, long status, kopt_ch_class_t cls,
                      const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    err->r = r;
    err->code = code;
    err->http_status = status;
    err->cls = cls;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static void clear_error(kopt_ch_error_t *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

/* --- client -------------------------------------------------------------- */

static int read_secret_file(const char *path, char **out)
{
    char buf[MAX_SECRET_BYTES];
    FILE *f = fopen(path, "r");
    int r = 0;

    if (!f)
        return -errno;
    if (!fgets(buf, sizeof(buf), f)) {
        buf[0] = '\0';
        if (ferror(f))
            r = -EIO;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (r == 0 && !(*out = strdup(buf)))
        r = -ENOMEM;
    explicit_bzero(buf, sizeof(buf));
    return r;
}

/* Takes user:password out of the URL; keeps the rest for requests and logs. */
static int split_url(char **out, const char *url, char **url_user, char **url_pass,
                     kopt_ch_error_t *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *clean = NULL;
    int r = -EINVAL;

    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        /* The URL may hold a password: never echo it. */
        set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT,
                  "clickhouse url: not an http:// or https:// URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_USER, url_user, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, url_pass, CURLU_URLDECODE);
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK) {
        r = -ENOMEM;
        goto out;
    }
    *out = strdup(clean);
    r = *out ? 0 : -ENOMEM;
out:
    curl_free(scheme);
    curl_free(clean);
    curl_url_cleanup(u);
    return r;
}

/* A comma-separated list of replicas' URLs: each is split_url'd; user and
 * password come from the first that carries them. */
static int split_urls(kopt_ch_client_t *c, const char *list, char **url_user, char **url_pass,
                      kopt_ch_error_t *err)
{
    char *copy = strdup(list), *tok, *save = NULL;
    int r = 0;

    if (!copy || !(c->urls = calloc(MAX_URLS, sizeof(*c->urls)))) {
        free(copy);
        return -ENOMEM;
    }
    for (tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
        char *u = NULL, *p = NULL;

        tok += strspn(tok, " \t");
        tok[strcspn(tok, " \t")] = '\0';
        if (!*tok)
            continue;
        if (c->n_urls == MAX_URLS) {
            set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "clickhouse url: more than %d URLs",
                      MAX_URLS);
            r = -EINVAL;
            break;
        }
        r = split_url(&c->urls[c->n_urls], tok, &u, &p, err);
        if (r == 0) {
            c->n_urls++;
            if (u && !*url_user) {
                *url_user = u;
                u = NULL;
            }
            if (p && !*url_pass) {
                *url_pass = p;
                p = NULL;
            }
        }
        if (p)
            explicit_bzero(p, strlen(p));
        curl_free(u);
        curl_free(p);
    }
    explicit_bzero(copy, strlen(list));
    free(copy);
    if (r == 0 && c->n_urls == 0) {
        set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "clickhouse url: not set");
        r = -EINVAL;
    }
    if (r == 0)
        c->url = c->urls[0];
    return r;
}

static int take_password(kopt_ch_client_t *c, const kopt_ch_options_t *o, char *url_pass,
                         kopt_ch_error_t *err)
{
    const char *env;
    int r;

    if (o->password)
        c->password = strdup(o->password);
    else if (url_pass)
        c->password = strdup(url_pass);
    else if (o->password_file) {
        r = read_secret_file(o->password_file, &c->password);
        if (r < 0) {
            set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "clickhouse password file %s: %s",
                      o->password_file, strerror(-r));
            return -EINVAL;
        }
    } else if (o->password_env && (env = getenv(o->password_env)))
        c->password = strdup(env);
    else
        return 0;
    return c->password ? 0 : -ENOMEM;
}

static int build_headers(kopt_ch_client_t *c)
{
    char *line = NULL;
    struct curl_slist *l;
    int r = 0;

    /* "Expect:" stops curl from waiting for 100-continue on large POSTs. */
    c->headers = curl_slist_append(NULL, "Expect:");
    if (!c->headers)
        return -ENOMEM;
    if (c->user || c->password) {
        if (asprintf(&line, "X-ClickHouse-User: %s", c->user ? c->user : "default") < 0)
            return -ENOMEM;
        l = curl_slist_append(c->headers, line);
        free(line);
        if (!l)
            return -ENOMEM;
        if (asprintf(&line, "X-ClickHouse-Key: %s", c->password ? c->password : "") < 0)
            return -ENOMEM;
        l = curl_slist_append(c->headers, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!l)
            return -ENOMEM;
    }
    for (l = c->headers; l && r == 0; l = l->next) {
        struct curl_slist *n = curl_slist_append(c->headers_gzip, l->data);

        if (!n)
            r = -ENOMEM;
        else
            c->headers_gzip = n;
    }
    /* headers_gzip is not empty here ("Expect:"), so the head stays the same. */
    if (r == 0 && !curl_slist_append(c->headers_gzip, "Content-Encoding: gzip"))
        r = -ENOMEM;
    return r;
}

static void wipe_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

void kopt_ch_client_free(kopt_ch_client_t *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    wipe_slist(c->headers);
    wipe_slist(c->headers_gzip);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    for (size_t i = 0; i < c->n_urls; i++)
        free(c->urls[i]);
    free(c->urls);
    free(c->cluster);
    free(c->session);
    free(c->database);
    free(c->user);
    free(c->gz);
    free(c);
}

static int setup_easy(kopt_ch_client_t *c, const kopt_ch_options_t *o)
{
    CURL *e = curl_easy_init();
    CURLcode res = CURLE_OK;

    if (!e)
        return -ENOMEM;
    c->easy = e;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (res == CURLE_OK)                                                                       \
            res = curl_easy_setopt(e, opt, val);                                                   \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for DNS timeouts */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS));
    SET(CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS));
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_POST, 1L);
    if (o->ca_file)
        SET(CURLOPT_CAINFO, o->ca_file);
    if (o->compress)
        SET(CURLOPT_ACCEPT_ENCODING, "gzip"); /* curl decodes the answer */
#undef SET
    return res == CURLE_OK ? 0 : -EINVAL;
}

int kopt_ch_client_new(const kopt_ch_options_t *o, kopt_ch_client_t **out, kopt_ch_error_t *err)
{
    kopt_ch_client_t *c;
    char *url_user = NULL, *url_pass = NULL;
    const char *db = o->database ? o->database : DEFAULT_DATABASE;
    int r;

    *out = NULL;
    clear_error(err);
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK)
        return -ENOMEM;
    if (!o->url) {
        set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "clickhouse url: not set");
        return -EINVAL;
    }
    if (!kopt_ch_identifier_ok(db)) {
        set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "clickhouse database \"%.64s\": bad name",
                  db);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->compress = o->compress;
    c->max_response = o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
    c->insert_quorum = o->insert_quorum;
    c->insert_quorum_timeout_ms = o->insert_quorum_timeout_ms;
    r = split_urls(c, o->url, &url_user, &url_pass, err);
    if (r == 0 && o->cluster && *o->cluster) {
        if (!kopt_ch_identifier_ok(o->cluster)) {
            set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT,
                      "clickhouse cluster \"%.64s\": bad name", o->cluster);
            r = -EINVAL;
        } else if (!(c->cluster = strdup(o->cluster))) {
            r = -ENOMEM;
        }
    }
    if (r == 0 && !(c->database = strdup(db)))
        r = -ENOMEM;
    if (r == 0 && (o->user || url_user) && !(c->user = strdup(o->user ? o->user : url_user)))
        r = -ENOMEM;
    if (r == 0)
        r = take_password(c, o, url_pass, err);
    if (r == 0)
        r = build_headers(c);
    if (r == 0)
        r = setup_easy(c, o);
    if (url_pass)
        explicit_bzero(url_pass, strlen(url_pass));
    curl_free(url_user);
    curl_free(url_pass);
    if (r < 0) {
        if (err && err->r == 0)
            set_error(err, r, 0, 0, KOPT_CH_PERMANENT, "clickhouse client: %s", strerror(-r));
        kopt_ch_client_free(c);
        return r;
    }
    kopt_log_debug(
        "clickhouse client ready", KOPT_STR("url", c->url), KOPT_STR("database", c->database),
        KOPT_STR("user", c->user ? c->user : "default"), KOPT_BOOL("compress", c->compress));
    *out = c;
    return 0;
}

const char *kopt_ch_database(const kopt_ch_client_t *c)
{
    return c->database;
}

const char *kopt_ch_url(const kopt_ch_client_t *c)
{
    return c->url;
}

uint64_t kopt_ch_connections_opened(const kopt_ch_client_t *c)
{
    return c->connections;
}

const char *kopt_ch_cluster(const kopt_ch_client_t *c)
{
    return c->cluster;
}

size_t kopt_ch_url_count(const kopt_ch_client_t *c)
{
    return c->n_urls;
}

uint64_t kopt_ch_failovers(const kopt_ch_client_t *c)
{
    return c->failovers;
}

int kopt_ch_pin(kopt_ch_client_t *c, int i)
{
    if (i < 0) {
        c->pinned = false;
        return 0;
    }
    if ((size_t)i >= c->n_urls)
        return -EINVAL;
    c->current = (size_t)i;
    c->url = c->urls[i];
    c->pinned = true;
    return 0;
}

int kopt_ch_set_session(kopt_ch_client_t *c, const char *id, uint32_t timeout_s)
{
    char *s = NULL;

    if (id) {
        for (const char *p = id; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_'))
                return -EINVAL;
        if (!*id || strlen(id) > 64 ||
            asprintf(&s, "session_id=%s&session_timeout=%u", id, timeout_s ? timeout_s : 60) < 0)
            return *id && strlen(id) <= 64 ? -ENOMEM : -EINVAL;
    }
    free(c->session);
    c->session = s;
    /* A session lives on one server: no failover while it is set. */
    c->pinned = s != NULL;
    return 0;
}

/* --- requests ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    response_t *resp = userdata;
    size_t n = size * nmemb, cap;
    char *p;

    if (n > resp->max - resp->len) {
        resp->too_big = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (resp->cap - resp->len < n + 1) {
        cap = resp->cap ? resp->cap : 4096;
        while (cap - resp->len < n + 1)
            cap *= 2;
        p = realloc(resp->data, cap);
        if (!p)
            return 0;
        resp->data = p;
        resp->cap = cap;
    }
    memcpy(resp->data + resp->len, ptr, n);
    resp->len += n;
    resp->data[resp->len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    static const char name[] = "X-ClickHouse-Exception-Code:";
    response_t *resp = userdata;
    size_t n = size * nmemb;

    if (n > sizeof(name) && strncasecmp(ptr, name, sizeof(name) - 1) == 0)
        resp->header_code = atoi(ptr + sizeof(name) - 1);
    return n;
}

/* gzip (RFC 1952) of data into c->gz; *out_len its length. */
static int gzip_body(kopt_ch_client_t *c, const void *data, size_t len, size_t *out_len)
{
    z_stream zs = {0};
    size_t bound;
    int zr;

    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    bound = deflateBound(&zs, (uLong)len);
    if (bound > c->gz_cap) {
        unsigned char *p = realloc(c->gz, bound);

        if (!p) {
            deflateEnd(&zs);
            return -ENOMEM;
        }
        c->gz = p;
        c->gz_cap = bound;
    }
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = c->gz;
    zs.avail_out = (uInt)bound;
    zr = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return zr == Z_STREAM_END ? 0 : -EIO;
}

static int curl_errno(CURLcode res)
{
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return -EPROTO;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* The password must never reach a log through a server message. */
static void scrub(const kopt_ch_client_t *c, char *msg)
{
    size_t n = c->password ? strlen(c->password) : 0;
    char *at;

    if (n < 3) /* a one- or two-letter password would wipe ordinary text */
        return;
    while ((at = strstr(msg, c->password)))
        memset(at, '*', n);
}

/* One POST of body to url; on 200 the answer stays in resp. */
static int perform(kopt_ch_client_t *c, const char *url, const void *body, size_t len,
                   response_t *resp, kopt_ch_error_t *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    size_t gz_len = 0;
    bool gz = false;
    long status = 0, connects = 0;
    CURLcode res;
    int code, r;

    if (c->compress && len >= GZIP_MIN_BYTES) {
        r = gzip_body(c, body, len, &gz_len);
        if (r < 0) {
            set_error(err, r, 0, 0, KOPT_CH_RETRYABLE, "gzip of %zu bytes failed", len);
            return r;
        }
        gz = true;
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, gz ? (const void *)c->gz : body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(gz ? gz_len : len));
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, gz ? c->headers_gzip : c->headers);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, errbuf);
    res = curl_easy_perform(c->easy);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, NULL);
    if (curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
        c->connections += (uint64_t)connects;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK) {
        if (resp->too_big) {
            set_error(err, -EFBIG, 0, status, KOPT_CH_PERMANENT, "answer larger than %zu bytes",
                      resp->max);
            return -EFBIG;
        }
        r = curl_errno(res);
        set_error(err, r, 0, 0, KOPT_CH_RETRYABLE, "%s",
                  errbuf[0] ? errbuf : curl_easy_strerror(res));
        return r;
    }
    if (status == 200)
        return 0;
    code = kopt_ch_parse_exception(resp->data, resp->len, err ? err->message : NULL,
                                   err ? sizeof(err->message) : 0);
    if (resp->header_code)
        code = resp->header_code;
    r = status == 401 || status == 403 ? -EACCES : -EREMOTEIO;
    if (err) {
        err->r = r;
        err->code = code;
        err->http_status = status;
        err->cls = kopt_ch_classify(status, code);
        if (!err->message[0])
            snprintf(err->message, sizeof(err->message), "HTTP %ld", status);
        scrub(c, err->message);
    }
    return r;
}

/* base URL + "?database=..&<extra>", extra already URL-encoded (may be ""). */
static char *make_url(const kopt_ch_client_t *c, unsigned flags, const char *extra)
{
    bool db = !(flags & KOPT_CH_NO_DATABASE);
    const char *gz = "";
    char *url = NULL;
    int n;

    if (c->compress)
        gz = db || *extra ? "&enable_http_compression=1" : "enable_http_compression=1";
    n = asprintf(&url, "%s%s%s%s%s%s%s%s%s", c->url, strchr(c->url, '?') ? "&" : "?",
                 db ? "database=" : "", db ? c->database : "", db && *extra ? "&" : "", extra, gz,
                 c->session && (db || *extra || *gz) ? "&" : "", c->session ? c->session : "");
    return n < 0 ? NULL : url;
}

/* Whether another replica may answer where this one did not: no answer at
 * all, or a 5xx that is not about the statement (a replica without
 * ZooKeeper, shutting down, overloaded). A permanent error would fail on
 * every replica alike. */
static bool worth_failover(int r, const kopt_ch_error_t *e)
{
    switch (r) {
    case -ECONNREFUSED:
    case -ETIMEDOUT:
    case -EHOSTUNREACH:
    case -ECONNRESET:
    case -EIO:
        return true;
    case -EREMOTEIO:
        return e->http_status >= 500 && e->cls == KOPT_CH_RETRYABLE;
    default:
        return false;
    }
}

/* One attempt on each URL at most, from the current one on; the first that
 * answers becomes current, so later calls go there directly. */
static int perform_failover(kopt_ch_client_t *c, unsigned flags, const char *extra,
                            const void *body, size_t len, response_t *resp, kopt_ch_error_t *err)
{
    kopt_ch_error_t local;
    kopt_ch_error_t *e = err ? err : &local;
    size_t tries = c->pinned ? 1 : c->n_urls;
    int r = -EIO;

    for (size_t t = 0; t < tries; t++) {
        char *url = make_url(c, flags, extra);

        if (!url) {
            set_error(err, -ENOMEM, 0, 0, KOPT_CH_RETRYABLE, "out of memory");
            return -ENOMEM;
        }
        clear_error(e);
        free(resp->data);
        *resp = (response_t){.max = c->max_response};
        r = perform(c, url, body, len, resp, e);
        free(url);
        if (r == 0 || t + 1 == tries || !worth_failover(r, e))
            break;
        kopt_log_warn("clickhouse replica failed; trying the next", KOPT_STR("url", c->url),
                      KOPT_ERR(r), KOPT_STR("message", e->message),
                      KOPT_STR("next", c->urls[(c->current + 1) % c->n_urls]));
        c->current = (c->current + 1) % c->n_urls;
        c->url = c->urls[c->current];
        c->failovers++;
    }
    return r;
}

static int request(kopt_ch_client_t *c, unsigned flags, const char *extra, const void *body,
                   size_t len, char **out, size_t *out_len, kopt_ch_error_t *err)
{
    response_t resp = {.max = c->max_response};
    int r;

    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    clear_error(err);
    r = perform_failover(c, flags, extra, body, len, &resp, err);
    if (r < 0)
        kopt_log_debug("clickhouse request failed", KOPT_STR("url", c->url), KOPT_ERR(r),
                       KOPT_INT("code", err ? err->code : 0),
                       KOPT_STR("class", kopt_ch_class_name(err ? err->cls : KOPT_CH_RETRYABLE)),
                       KOPT_STR("message", err ? err->message : ""));
    if (r == 0 && out) {
        if (!resp.data && !(resp.data = calloc(1, 1)))
            r = -ENOMEM;
        *out = resp.data;
        resp.data = NULL;
        if (out_len)
            *out_len = resp.len;
    }
    free(resp.data);
    return r;
}

int kopt_ch_query_flags(kopt_ch_client_t *c, const char *sql, unsigned flags, char **body,
                        size_t *len, kopt_ch_error_t *err)
{
    return request(c, flags, flags & KOPT_CH_STREAM ? "" : "wait_end_of_query=1", sql, strlen(sql),
                   body, len, err);
}

int kopt_ch_query(kopt_ch_client_t *c, const char *sql, char **body, size_t *len,
                  kopt_ch_error_t *err)
{
    return kopt_ch_query_flags(c, sql, 0, body, len, err);
}

int kopt_ch_insert(kopt_ch_client_t *c, const char *table, const char *columns, const char *format,
                   const void *data, size_t len, kopt_ch_error_t *err)
{
    return kopt_ch_insert_flags(c, table, columns, format, data, len, 0, err);
}

int kopt_ch_insert_flags(kopt_ch_client_t *c, const char *table, const char *columns,
                         const char *format, const void *data, size_t len, unsigned flags,
                         kopt_ch_error_t *err)
{
    bool db = !(flags & KOPT_CH_NO_DATABASE);

    char *sql = NULL, *escaped = NULL, *extra = NULL;
    int r = -ENOMEM;

    clear_error(err);
    if (!kopt_ch_identifier_ok(table) || !format || !kopt_ch_identifier_ok(format)) {
        set_error(err, -EINVAL, 0, 0, KOPT_CH_PERMANENT, "insert: bad table or format name");
        return -EINVAL;
    }
    if (asprintf(&sql, "INSERT INTO %s%s%s%s%s%s FORMAT %s", db ? c->database : "", db ? "." : "",
                 table, columns ? " (" : "", columns ? columns : "", columns ? ")" : "",
                 format) < 0) {
        sql = NULL;
        goto out;
    }
    escaped = curl_easy_escape(c->easy, sql, 0);
    /* 18.16 has no INSERT ... SETTINGS: settings go as URL parameters. */
    if (c->insert_quorum > 1)
        r = asprintf(&extra, "query=%s&insert_quorum=%u&insert_quorum_timeout=%u",
                     escaped ? escaped : "", c->insert_quorum,
                     c->insert_quorum_timeout_ms ? c->insert_quorum_timeout_ms : 60000);
    else
        r = asprintf(&extra, "query=%s", escaped ? escaped : "");
    if (r < 0)
        extra = NULL; /* asprintf leaves it undefined */
    if (!escaped || r < 0) {
        r = -ENOMEM;
        goto out;
    }
    r = request(c, flags & KOPT_CH_NO_DATABASE, extra, data, len, NULL, NULL, err);
out:
    if (r == -ENOMEM && err && !err->r)
        set_error(err, r, 0, 0, KOPT_CH_RETRYABLE, "out of memory");
    curl_free(escaped);
    free(extra);
    free(sql);
    return r;
}

int kopt_ch_server_version(kopt_ch_client_t *c, kopt_ch_version_t *out, kopt_ch_error_t *err)
{
    char *body = NULL;
    int r;

    clear_error(err);
    if (!c->have_version) {
        r = kopt_ch_query_flags(c, "SELECT version()", KOPT_CH_NO_DATABASE, &body, NULL, err);
        if (r < 0)
            return r;
        r = kopt_ch_version_parse(body, &c->version);
        if (r < 0)
            set_error(err, -EPROTO, 0, 200, KOPT_CH_PERMANENT, "version(): unexpected \"%.32s\"",
                      body);
        free(body);
        if (r < 0)
            return -EPROTO;
        c->have_version = true;
    }
    *out = c->version;
    return 0;
}
