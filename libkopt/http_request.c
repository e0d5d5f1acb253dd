/* The pure request layer: wraps http_parser to turn a connection's bytes into
 * one request at a time, with limits. The URL and headers are copied into one
 * NUL-separated arena (offsets, since it may move while growing); the body into
 * its own buffer. The parser is paused at the end of each message, so bytes of
 * a pipelined request are left for the caller. No I/O, no globals. */
#include <kopt/http.h>

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    size_t name;  /* offsets into the arena */
    size_t value; /* SIZE_MAX until a value callback came */
} hdr_t;

typedef enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE } last_cb_t;

struct kopt_http_request {
    http_parser p;
    kopt_http_limits_t lim;
    char *arena; /* url \0 name \0 value \0 ... path \0 query \0 */
    size_t alen, acap;
    size_t url_len;
    size_t path_off, query_off;
    hdr_t *hdrs;
    size_t nhdrs, hcap;
    char *body;
    size_t blen, bcap;
    size_t header_bytes; /* consumed before the headers were complete */
    last_cb_t last;
    int started, headers_done, complete, keep_alive;
    int status; /* 0, or the error status */
    const char *reason;
};

void kopt_http_limits_default(kopt_http_limits_t *l)
{
    l->max_url_bytes = 8 * 1024;
    l->max_header_bytes = 16 * 1024;
    l->max_headers = 100;
    l->max_body_bytes = 1024 * 1024;
}

static int fail(kopt_http_request_t *r, int status, const char *reason)
{
    if (!r->status) {
        r->status = status;
        r->reason = reason;
    }
    return -1; /* tells http_parser to stop */
}

/* Makes room for n more bytes and a NUL; the caller checked the limits. */
static int arena_grow(kopt_http_request_t *r, size_t n)
{
    size_t cap = r->acap ? r->acap : 1024;
    char *p;

    if (r->alen + n + 1 <= r->acap)
        return 0;
    while (r->alen + n + 1 > cap)
        cap *= 2;
    p = realloc(r->arena, cap);
    if (!p)
        return fail(r, 500, "out_of_memory");
    r->arena = p;
    r->acap = cap;
    return 0;
}

static int arena_put(kopt_http_request_t *r, const char *s, size_t n)
{
    if (arena_grow(r, n) < 0)
        return -1;
    memcpy(r->arena + r->alen, s, n);
    r->alen += n;
    r->arena[r->alen] = '\0';
    return 0;
}

static int on_message_begin(http_parser *p)
{
    ((kopt_http_request_t *)p->data)->started = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    kopt_http_request_t *r = p->data;

    r->url_len += len;
    if (r->url_len > r->lim.max_url_bytes)
        return fail(r, 414, "url_too_long");
    r->last = CB_URL;
    return arena_put(r, at, len);
}

/* Header bytes we keep: the URL, names and values. Whitespace and line ends
 * are counted after each feed (header_bytes); http_parser itself stops at 80 KiB. */
static int header_room(kopt_http_request_t *r, size_t len)
{
    if (r->alen + len > r->lim.max_header_bytes)
        return fail(r, 431, "headers_too_large");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    kopt_http_request_t *r = p->data;

    if (r->headers_done) /* trailers of a chunked body: ignored */
        return 0;
    if (header_room(r, len + 1) < 0)
        return -1;
    if (r->last != CB_FIELD) { /* a new header: end the previous piece */
        if (r->nhdrs == r->lim.max_headers)
            return fail(r, 431, "headers_too_large");
        if (r->nhdrs == r->hcap) {
            size_t cap = r->hcap ? r->hcap * 2 : 16;
            hdr_t *h = realloc(r->hdrs, cap * sizeof(*h));

            if (!h)
                return fail(r, 500, "out_of_memory");
            r->hdrs = h;
            r->hcap = cap;
        }
        if (arena_put(r, "", 1) < 0)
            return -1;
        r->hdrs[r->nhdrs].name = r->alen;
        r->hdrs[r->nhdrs].value = SIZE_MAX;
        r->nhdrs++;
    }
    r->last = CB_FIELD;
    return arena_put(r, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    kopt_http_request_t *r = p->data;

    if (r->headers_done || r->nhdrs == 0)
        return 0;
    if (header_room(r, len + 1) < 0)
        return -1;
    if (r->last != CB_VALUE) {
        if (arena_put(r, "", 1) < 0)
            return -1;
        r->hdrs[r->nhdrs - 1].value = r->alen;
    }
    r->last = CB_VALUE;
    return arena_put(r, at, len);
}

/* Appends "<arena[off..off+len)>\0" or "<lit>\0" and returns where it starts. */
static int arena_copy(kopt_http_request_t *r, size_t off, size_t len, const char *lit, size_t *at)
{
    if (arena_put(r, "", 1) < 0)
        return -1;
    *at = r->alen;
    if (lit)
        return arena_put(r, lit, strlen(lit));
    /* Grow first: the source lies in the arena, which may move. */
    if (arena_grow(r, len) < 0)
        return -1;
    memcpy(r->arena + r->alen, r->arena + off, len);
    r->alen += len;
    r->arena[r->alen] = '\0';
    return 0;
}

/* Splits the URL (origin form "/p?q", or absolute form) into path and query. */
static int split_url(kopt_http_request_t *r)
{
    struct http_parser_url u;
    const char *path_lit = NULL;

    http_parser_url_init(&u);
    if (r->url_len == 1 && r->arena[0] == '*')
        path_lit = "*"; /* OPTIONS * */
    else if (http_parser_parse_url(r->arena, r->url_len, r->p.method == HTTP_CONNECT, &u) != 0)
        return fail(r, 400, "syntax");
    else if (!(u.field_set & (1 << UF_PATH)))
        path_lit = r->p.method == HTTP_CONNECT ? "" : "/";
    if (arena_copy(r, u.field_data[UF_PATH].off, u.field_data[UF_PATH].len, path_lit,
                   &r->path_off) < 0)
        return -1;
    if (u.field_set & (1 << UF_QUERY))
        return arena_copy(r, u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len, NULL,
                          &r->query_off);
    return arena_copy(r, 0, 0, "", &r->query_off);
}

static int on_headers_complete(http_parser *p)
{
    kopt_http_request_t *r = p->data;

    if (r->url_len == 0 || p->http_major != 1) /* HTTP/1.x only (no "PRI * HTTP/2.0") */
        return fail(r, 400, "syntax");
    if (split_url(r) < 0)
        return -1;
    r->headers_done = 1;
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > r->lim.max_body_bytes)
        return fail(r, 413, "body_too_large");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    kopt_http_request_t *r = p->data;

    if (r->blen + len > r->lim.max_body_bytes)
        return fail(r, 413, "body_too_large");
    if (r->blen + len + 1 > r->bcap) {
        size_t cap = r->bcap ? r->bcap : 4096;
        char *b;

        while (r->blen + len + 1 > cap)
            cap *= 2;
        b = realloc(r->body, cap);
        if (!b)
            return fail(r, 500, "out_of_memory");
        r->body = b;
        r->bcap = cap;
    }
    memcpy(r->body + r->blen, at, len);
    r->blen += len;
    r->body[r->blen] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    kopt_http_request_t *r = p->data;

    r->complete = 1;
    /* An upgrade (or CONNECT) is answered, then the connection is closed. */
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    http_parser_pause(p, 1); /* leave the next request's bytes to the caller */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int kopt_http_request_new(const kopt_http_limits_t *limits, kopt_http_request_t **out)
{
    kopt_http_request_t *r = calloc(1, sizeof(*r));

    if (!r)
        return -ENOMEM;
    if (limits)
        r->lim = *limits;
    else
        kopt_http_limits_default(&r->lim);
    kopt_http_request_reset(r);
    *out = r;
    return 0;
}

void kopt_http_request_free(kopt_http_request_t *req)
{
    if (!req)
        return;
    free(req->arena);
    free(req->hdrs);
    free(req->body);
    free(req);
}

void kopt_http_request_reset(kopt_http_request_t *req)
{
    http_parser_init(&req->p, HTTP_REQUEST);
    req->p.data = req;
    req->alen = 0;
    req->url_len = 0;
    req->path_off = req->query_off = 0;
    req->nhdrs = 0;
    req->blen = 0;
    req->header_bytes = 0;
    req->last = CB_NONE;
    req->started = req->headers_done = req->complete = req->keep_alive = 0;
    req->status = 0;
    req->reason = NULL;
    if (req->arena)
        req->arena[0] = '\0';
}

static int error_code(const kopt_http_request_t *r)
{
    switch (r->status) {
    case 413:
        return -EFBIG;
    case 414:
        return -ENAMETOOLONG;
    case 431:
        return -EMSGSIZE;
    case 500:
        return -ENOMEM;
    default:
        return -EBADMSG;
    }
}

int kopt_http_request_feed(kopt_http_request_t *req, const char *data, size_t len, size_t *consumed)
{
    size_t n;
    enum http_errno err;

    *consumed = 0;
    if (req->complete)
        return 1;
    if (req->status)
        return error_code(req);
    if (len == 0) { /* the peer closed */
        if (!req->started)
            return 0;
        fail(req, 400, "incomplete");
        return error_code(req);
    }
    n = http_parser_execute(&req->p, &settings, data, len);
    err = HTTP_PARSER_ERRNO(&req->p);
    *consumed = n;
    if (req->complete)
        return 1;
    if (err == HPE_HEADER_OVERFLOW)
        fail(req, 431, "headers_too_large");
    else if (err != HPE_OK)
        fail(req, 400, "syntax");
    if (!req->status && !req->headers_done) {
        req->header_bytes += n;
        if (req->header_bytes > req->lim.max_header_bytes + 4 * req->lim.max_headers)
            fail(req, 431, "headers_too_large");
    }
    return req->status ? error_code(req) : 0;
}

int kopt_http_request_error(const kopt_http_request_t *req, const char **reason)
{
    if (reason)
        *reason = req->reason ? req->reason : "";
    return req->status;
}

int kopt_http_request_started(const kopt_http_request_t *req)
{
    return req->started;
}

const char *kopt_http_request_method(const kopt_http_request_t *req)
{
    return http_method_str((enum http_method)req->p.method);
}

const char *kopt_http_request_path(const kopt_http_request_t *req)
{
    return req->headers_done ? req->arena + req->path_off : "";
}

const char *kopt_http_request_query(const kopt_http_request_t *req)
{
    return req->headers_done ? req->arena + req->query_off : "";
}

int kopt_http_request_header_at(const kopt_http_request_t *req, size_t i, const char **name,
                                const char **value)
{
    if (!req->headers_done || i >= req->nhdrs)
        return -ERANGE;
    *name = req->arena + req->hdrs[i].name;
    *value = req->hdrs[i].value == SIZE_MAX ? "" : req->arena + req->hdrs[i].value;
    return 0;
}

size_t kopt_http_request_header_count(const kopt_http_request_t *req)
{
    return req->headers_done ? req->nhdrs : 0;
}

const char *kopt_http_request_header(const kopt_http_request_t *req, const char *name)
{
    const char *n, *v;

    for (size_t i = 0; kopt_http_request_header_at(req, i, &n, &v) == 0; i++)
        if (strcasecmp(n, name) == 0)
            return v;
    return NULL;
}

const char *kopt_http_request_body(const kopt_http_request_t *req, size_t *len)
{
    if (len)
        *len = req->blen;
    return req->blen ? req->body : "";
}

int kopt_http_request_keep_alive(const kopt_http_request_t *req)
{
    return req->keep_alive;
}
