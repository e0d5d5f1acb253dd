/* The few S3 XML answers the object store client reads (ListObjectsV2 pages,
 * errors, multipart upload ids), with a small strict scanner instead of an
 * XML library: S3 answers are flat elements without attributes below the
 * root, so finding <Name>text</Name> and decoding the five entities and
 * numeric references is all it takes. Anything else is refused (-EPROTO). */
#include "kopt/objstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first occurrence of needle in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0 || p >= end || (size_t)(end - p) < nl)
        return NULL;
    return memmem(p, (size_t)(end - p), needle, nl);
}

static int utf8_put(char *out, size_t cap, size_t *o, unsigned long cp)
{
    char b[4];
    size_t k;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -EPROTO;
    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    for (size_t i = 0; i < k; i++) {
        if (*o + 1 < cap)
            out[*o] = b[i];
        (*o)++;
    }
    return 0;
}

/* Decodes [p, end) into out (cap bytes, NUL-terminated, truncated). Returns
 * the decoded length (may exceed cap - 1) or -EPROTO. */
static long decode(const char *p, const char *end, char *out, size_t cap)
{
    size_t o = 0;
    while (p < end) {
        if (*p == '<')
            return -EPROTO; /* markup inside a text element */
        if (*p != '&') {
            if (o + 1 < cap)
                out[o] = *p;
            o++;
            p++;
            continue;
        }
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi || semi - p > 10)
            return -EPROTO;
        size_t n = (size_t)(semi - p - 1);
        const char *e = p + 1;
        char c = 0;
        if (n == 3 && memcmp(e, "amp", 3) == 0)
            c = '&';
        else if (n == 2 && memcmp(e, "lt", 2) == 0)
            c = '<';
        else if (n == 2 && memcmp(e, "gt", 2) == 0)
            c = '>';
        else if (n == 4 && memcmp(e, "quot", 4) == 0)
            c = '"';
        else if (n == 4 && memcmp(e, "apos", 4) == 0)
            c = '\'';
        if (c) {
            if (o + 1 < cap)
                out[o] = c;
            o++;
        } else if (n >= 2 && e[0] == '#') {
            bool hex = e[1] == 'x';
            size_t i = hex ? 2 : 1;
            unsigned long cp = 0;
            if (i >= n)
                return -EPROTO;
            for (; i < n; i++) {
                int d;
                if (e[i] >= '0' && e[i] <= '9')
                    d = e[i] - '0';
                else if (hex && e[i] >= 'a' && e[i] <= 'f')
                    d = e[i] - 'a' + 10;
                else if (hex && e[i] >= 'A' && e[i] <= 'F')
                    d = e[i] - 'A' + 10;
                else
                    return -EPROTO;
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
                if (cp > 0x10FFFF)
                    return -EPROTO;
            }
            if (utf8_put(out, cap, &o, cp) < 0)
                return -EPROTO;
        } else {
            return -EPROTO;
        }
        p = semi + 1;
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return (long)o;
}

/* Locates <name>...</name> in [p, end): the text's bounds. 0, -ENOENT, -EPROTO. */
static int element(const char *p, const char *end, const char *name, const char **tb,
                   const char **te)
{
    char open[72], close[72];
    size_t nl = strlen(name);
    if (nl == 0 || nl > 64)
        return -EINVAL;
    memcpy(open + 1, name, nl);
    open[0] = '<';
    open[nl + 1] = '>';
    open[nl + 2] = '\0';
    memcpy(close + 2, name, nl);
    close[0] = '<';
    close[1] = '/';
    close[nl + 2] = '>';
    close[nl + 3] = '\0';
    const char *a = find(p, end, open);
    if (!a) {
        /* <Name/> is an empty element. */
        char empty[72];
        empty[0] = '<';
        memcpy(empty + 1, name, nl);
        memcpy(empty + 1 + nl, "/>", 3);
        const char *x = find(p, end, empty);
        if (!x)
            return -ENOENT;
        *tb = *te = x;
        return 0;
    }
    a += nl + 2;
    const char *b = find(a, end, close);
    if (!b)
        return -EPROTO;
    *tb = a;
    *te = b;
    return 0;
}

int kopt_objstore_xml_text(const char *xml, size_t len, const char *name, char *out,
                           size_t out_size)
{
    const char *tb, *te;
    if (!xml || !out || out_size == 0)
        return -EINVAL;
    int r = element(xml, xml + len, name, &tb, &te);
    if (r < 0)
        return r;
    long n = decode(tb, te, out, out_size);
    return n < 0 ? (int)n : 0;
}

/* The decoded text of <name> in [p, end) as a new string, or NULL with *r set. */
static char *text_dup(const char *p, const char *end, const char *name, int *r)
{
    const char *tb, *te;
    *r = element(p, end, name, &tb, &te);
    if (*r < 0)
        return NULL;
    long n = decode(tb, te, NULL, 0);
    if (n < 0) {
        *r = (int)n;
        return NULL;
    }
    char *s = calloc(1, (size_t)n + 1);
    if (!s) {
        *r = -ENOMEM;
        return NULL;
    }
    decode(tb, te, s, (size_t)n + 1);
    if (strlen(s) != (size_t)n) { /* an embedded NUL (&#0; is refused; a raw one is not) */
        free(s);
        *r = -EPROTO;
        return NULL;
    }
    return s;
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EPROTO;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -EPROTO;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int kopt_objstore_parse_list(const char *xml, size_t len, kopt_objstore_entry_t **entries,
                             size_t *n, bool *truncated, char **next_token)
{
    const char *end = xml + len;
    int r = 0;
    if (!xml || !entries || !n || !truncated || !next_token)
        return -EINVAL;
    *next_token = NULL;
    *truncated = false;
    const char *root = find(xml, end, "<ListBucketResult");
    if (!root)
        return -EPROTO;
    const char *root_end = find(root, end, "</ListBucketResult>");
    if (!root_end)
        return -EPROTO;

    kopt_objstore_entry_t *page = NULL;
    size_t np = 0, cap = 0;
    const char *p = root;
    for (;;) {
        const char *cb, *ce;
        r = element(p, root_end, "Contents", &cb, &ce);
        if (r == -ENOENT) {
            r = 0;
            break;
        }
        if (r < 0)
            goto fail;
        if (np == cap) {
            size_t nc = cap ? cap * 2 : 16;
            kopt_objstore_entry_t *g = realloc(page, nc * sizeof *g);
            if (!g) {
                r = -ENOMEM;
                goto fail;
            }
            page = g;
            cap = nc;
        }
        char *key = text_dup(cb, ce, "Key", &r);
        if (!key) {
            r = r == -ENOENT ? -EPROTO : r;
            goto fail;
        }
        char *size = text_dup(cb, ce, "Size", &r);
        uint64_t sz = 0;
        if (!size || parse_u64(size, &sz) < 0 || !*key) {
            r = (size || r != -ENOMEM) ? -EPROTO : r;
            free(size);
            free(key);
            goto fail;
        }
        free(size);
        page[np].key = key;
        page[np].size = sz;
        np++;
        p = ce + strlen("</Contents>");
        if (p > root_end)
            p = root_end;
    }

    char *tr = text_dup(root, root_end, "IsTruncated", &r);
    if (tr) {
        if (strcmp(tr, "true") == 0)
            *truncated = true;
        else if (strcmp(tr, "false") != 0)
            r = -EPROTO;
        free(tr);
    } else if (r == -ENOENT) {
        r = 0; /* absent: not truncated */
    }
    if (r < 0)
        goto fail;
    if (*truncated) {
        *next_token = text_dup(root, root_end, "NextContinuationToken", &r);
        if (!*next_token || !**next_token) {
            free(*next_token);
            *next_token = NULL;
            r = r == -ENOMEM ? r : -EPROTO; /* truncated without a token: would loop */
            goto fail;
        }
    }

    if (np > 0) {
        kopt_objstore_entry_t *all = realloc(*entries, (*n + np) * sizeof *all);
        if (!all) {
            r = -ENOMEM;
            free(*next_token);
            *next_token = NULL;
            goto fail;
        }
        memcpy(all + *n, page, np * sizeof *page);
        *entries = all;
        *n += np;
    }
    free(page);
    return 0;

fail:
    for (size_t i = 0; i < np; i++)
        free(page[i].key);
    free(page);
    *truncated = false;
    return r;
}

void kopt_objstore_entries_free(kopt_objstore_entry_t *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].key);
    free(e);
}
