/* kopt/objstore_settings.h: --object-store-url read into a location, and the
 * daemons' object store settings as kopt_objstore options. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kopt/objstore_settings.h>

#define DEFAULT_PREFIX "kopt"

bool kopt_object_store_configured(const kopt_object_store_settings_t *s)
{
    return s->url && *s->url;
}

static int fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "--object-store-url: %s", what);
    return -EINVAL;
}

/* S3's rules for a bucket name: 3-63 lower-case letters, digits, dots and
 * hyphens, a letter or digit at both ends. */
static bool bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (!alnum && ((c != '.' && c != '-') || i == 0 || i == n - 1))
            return false;
    }
    return true;
}

/* A key prefix: letters, digits and . _ - / with no empty or dot-only
 * segment, so keys stay plain paths in every store. */
static bool prefix_ok(const char *p, size_t n)
{
    size_t seg = 0;
    bool dots = true;

    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? p[i] : '/';

        if (c == '/') {
            if (seg == 0 || dots)
                return false;
            seg = 0;
            dots = true;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
        seg++;
        dots = dots && c == '.';
    }
    return true;
}

/* A host[:port] of letters, digits, dots, hyphens, or a bracketed IPv6
 * address, with a numeric port. */
static bool authority_ok(const char *a, size_t n)
{
    size_t host_end = n;

    if (n == 0)
        return false;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', n);

        if (!close || close == a + 1)
            return false;
        for (const char *c = a + 1; c < close; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
                  (*c >= 'A' && *c <= 'F') || *c == ':' || *c == '.'))
                return false;
        host_end = (size_t)(close - a) + 1;
        if (host_end < n && a[host_end] != ':')
            return false;
    } else {
        for (size_t i = 0; i < n; i++)
            if (a[i] == ':') {
                host_end = i;
                break;
            }
        if (host_end == 0)
            return false;
        for (size_t i = 0; i < host_end; i++) {
            char c = a[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-'))
                return false;
        }
    }
    if (host_end < n) { /* ":port" */
        size_t digits = n - host_end - 1;
        unsigned port = 0;

        if (digits == 0 || digits > 5)
            return false;
        for (size_t i = host_end + 1; i < n; i++) {
            if (a[i] < '0' || a[i] > '9')
                return false;
            port = port * 10 + (unsigned)(a[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
    }
    return true;
}

int kopt_object_store_locate(const kopt_object_store_settings_t *s,
                             kopt_object_store_location_t *loc, char *err, size_t errlen)
{
    const char *u = s->url, *rest, *slash, *path;
    size_t auth_len, bucket_len, prefix_len;
    bool aws;

    memset(loc, 0, sizeof(*loc));
    if (!kopt_object_store_configured(s))
        return -ENOENT;
    if (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) {
        aws = false;
        rest = strstr(u, "://") + 3;
    } else if (strncmp(u, "s3://", 5) == 0) {
        aws = true;
        rest = u + 5;
    } else {
        return fail(err, errlen,
                    "not http(s)://host[:port]/BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]");
    }
    if (strpbrk(rest, "?#"))
        return fail(err, errlen, "a query or fragment has no meaning here");
    slash = strchr(rest, '/');
    if (memchr(rest, '@', slash ? (size_t)(slash - rest) : strlen(rest)))
        return fail(err, errlen,
                    "credentials do not belong in the URL: use --object-store-credentials-file "
                    "or KOPT_OBJECT_STORE_ACCESS_KEY_ID and KOPT_OBJECT_STORE_SECRET_ACCESS_KEY");
    if (aws) { /* s3://BUCKET[/PREFIX]: AWS, virtual-host addressing */
        if (!s->region || !*s->region)
            return fail(err, errlen, "s3:// needs --object-store-region");
        if (snprintf(loc->endpoint, sizeof(loc->endpoint), "https://s3.%s.amazonaws.com",
                     s->region) >= (int)sizeof(loc->endpoint))
            return fail(err, errlen, "the region is too long");
        path = rest;
        loc->path_style = false;
    } else {
        auth_len = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!authority_ok(rest, auth_len))
            return fail(err, errlen, "the host is not host[:port]");
        if ((size_t)(rest - u) + auth_len >= sizeof(loc->endpoint))
            return fail(err, errlen, "the host is too long");
        memcpy(loc->endpoint, u, (size_t)(rest - u) + auth_len);
        if (!slash)
            return fail(err, errlen, "no bucket: http(s)://host[:port]/BUCKET[/PREFIX]");
        path = slash + 1;
        loc->path_style = s->path_style;
    }
    slash = strchr(path, '/');
    bucket_len = slash ? (size_t)(slash - path) : strlen(path);
    if (!bucket_ok(path, bucket_len))
        return fail(err, errlen,
                    "the bucket must be 3-63 lower-case letters, digits, dots and hyphens");
    memcpy(loc->bucket, path, bucket_len);
    if (slash) {
        const char *p = slash + 1;

        prefix_len = strlen(p);
        while (prefix_len > 0 && p[prefix_len - 1] == '/')
            prefix_len--;
        if (prefix_len > 0) {
            if (prefix_len >= sizeof(loc->prefix))
                return fail(err, errlen, "the prefix is too long");
            if (!prefix_ok(p, prefix_len))
                return fail(err, errlen,
                            "the prefix must be path segments of letters, digits, '.', '_' "
                            "and '-'");
            memcpy(loc->prefix, p, prefix_len);
        }
    }
    if (!loc->prefix[0])
        memcpy(loc->prefix, DEFAULT_PREFIX, sizeof(DEFAULT_PREFIX));
    return 0;
}

void kopt_object_store_options(const kopt_object_store_settings_t *s,
                               const kopt_object_store_location_t *loc, uint32_t timeout_ms,
                               kopt_objstore_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->endpoint = loc->endpoint;
    o->bucket = loc->bucket;
    o->region = s->region;
    o->ca_file = s->ca;
    o->path_style = loc->path_style;
    o->credentials_file = s->credentials_file;
    o->timeout_ms = timeout_ms;
}
