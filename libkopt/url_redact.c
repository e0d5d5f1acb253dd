/* kopt_url_redact: a URL (or a comma-separated list of them) as it may be
 * printed, without userinfo and without the values of secret query
 * parameters. Pure; every log line, /readyz reason and error that names a
 * NATS or ClickHouse URL goes through it. */
#include <kopt/url.h>

#include <errno.h>
#include <string.h>

#include <kopt/log.h>

#define REDACTED "[redacted]"

typedef struct {
    char *p;
    size_t len, used; /* used < len: room for the NUL is kept */
    int cut;
} out_t;


static void emit(out_t *o, const char *s, size_t n)
{
    size_t room = o->len - 1 - o->used;

    if (n > room) {
        n = room;
        o->cut = 1;
    }
    memcpy(o->p + o->used, s, n);
    o->used += n;
    o->p[o->used] = '\0';
}


static const char *find_in(const char *s, const char *end, char ch)
{
    const char *p = memchr(s, ch, (size_t)(end - s));

    return p ? p : end;
}


/* Whether a query parameter's name names a secret; a name too long to
 * check is treated as one. */
static int name_is_secret(const char *s, size_t n)
{
    char name[64];

    if (n >= sizeof(name))
        return 1;
    memcpy(name, s, n);
    name[n] = '\0';
    return kopt_log_key_is_secret(name);
}


/* The query "a=1&password=x#frag" of [p, end), secret values replaced. */
static void emit_query(out_t *o, const char *p, const char *end)
{
    while (p < end) {
        const char *stop = find_in(p, find_in(p, end, '#'), '&');
        const char *eq = memchr(p, '=', (size_t)(stop - p));

        if (eq && name_is_secret(p, (size_t)(eq - p))) {
            emit(o, p, (size_t)(eq + 1 - p));
            emit(o, REDACTED, strlen(REDACTED));
        } else {
            emit(o, p, (size_t)(stop - p));
        }
        if (stop == end)
            return;
        if (*stop == '#') {
            emit(o, stop, (size_t)(end - stop));
            return;
        }
        emit(o, "&", 1);
        p = stop + 1;
    }
}


/* One URL in [s, end), its authority starting at s + auth. The userinfo runs
 * to the last '@': a password with an unencoded '@', '/' or ',' is still
 * hidden whole (at worst a little more than the userinfo is). A URL without
 * a scheme (`no_slash`) has userinfo only when no '/' comes before that '@',
 * so a path such as /data/a@b prints as it is. */
static void emit_one(out_t *o, const char *s, const char *end, size_t auth, int no_slash)
{
    const char *a = s + auth, *at = NULL, *q;

    for (const char *p = a; p < end; p++)
        if (*p == '@')
            at = p;
    if (at && no_slash && memchr(a, '/', (size_t)(at - a)))
        at = NULL;
    emit(o, s, auth);
    if (at) {
        emit(o, REDACTED, strlen(REDACTED));
        a = at;
    }
    q = find_in(a, end, '?');
    emit(o, a, (size_t)(q - a));
    if (q < end) {
        emit(o, "?", 1);
        emit_query(o, q + 1, end);
    }
}


/* Where the URL whose "://" comes first at or after `from` begins (its
 * scheme), or NULL when no "://" follows. */
static const char *next_url(const char *from, const char *floor)
{
    const char *sep = strstr(from, "://"), *p;

    if (!sep)
        return NULL;
    for (p = sep; p > floor; p--) {
        char c = p[-1];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            break;
    }
    return p;
}


int kopt_url_redact(const char *url, char *out, size_t len)
{
    out_t o = {out, len, 0, 0};
    const char *end, *first, *p;

    if (len == 0)
        return -ENOSPC;
    out[0] = '\0';
    if (!url)
        return 0;
    end = url + strlen(url);
    first = next_url(url, url);
    if (!first)
        first = end;
    /* Before the first "://": URLs without a scheme, comma-separated. */
    for (p = url; p < first;) {
        const char *comma = find_in(p, first, ',');

        emit_one(&o, p, comma, 0, 1);
        if (comma < first)
            emit(&o, ",", 1);
        p = comma + 1;
    }
    /* Each URL runs to the scheme of the next one (the separating comma and
     * any scheme-less URL in between go with it). */
    for (p = first; p < end;) {
        const char *sep = strstr(p, "://");
        const char *next = next_url(sep + 3, sep + 3);

        if (!next)
            next = end;
        emit_one(&o, p, next, (size_t)(sep + 3 - p), 0);
        p = next;
    }
    return o.cut ? -ENOSPC : 0;
}


const char *kopt_url_redacted(const char *url, char *out, size_t len)
{
    kopt_url_redact(url, out, len);
    return out;
}
