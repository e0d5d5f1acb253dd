/* Setting values: parse text into each type, store into the daemon's struct,
 * copy, compare and format back. Pure: no I/O. Every parser is strict (the
 * whole text must match) and says why a value is refused. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <kopt/url.h>

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -EINVAL)

const char *kcfg_type_name(kopt_config_type_t t)
{
    static const char *const names[] = {"?",    "string", "integer", "bool", "duration",
                                        "size", "choice", "address", "list", "path"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

const char *kcfg_metavar(kopt_config_type_t t)
{
    static const char *const names[] = {"?",    "STRING", "INT",  "BOOL",    "DURATION",
                                        "SIZE", "CHOICE", "ADDR", "A,B,...", "FILE"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Digits only (no sign, no spaces); *end after them. -ERANGE past UINT64_MAX. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *end = s;
    *out = v;
    return 0;
}

static int parse_int(const kopt_config_setting_t *s, const char *t, int64_t *out, char *why,
                     size_t whylen)
{
    const char *end;
    uint64_t u;
    int neg = *t == '-';
    bool bounded = s->min != 0 || s->max != 0;

    int r;

    if (*t == '-' || *t == '+')
        t++;
    r = parse_u64(t, &end, &u);
    if (r == -EINVAL || (r == 0 && *end))
        return WHY("not a whole number");
    if (r == -ERANGE || u > (uint64_t)INT64_MAX + (uint64_t)neg)
        return bounded ? WHY("must be %" PRId64 "..%" PRId64, s->min, s->max) : WHY("out of range");
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    if (bounded && (*out < s->min || *out > s->max))
        return WHY("must be %" PRId64 "..%" PRId64, s->min, s->max);
    return 0;
}

static int parse_bool(const char *t, bool *out, char *why, size_t whylen)
{
    static const char *const yes[] = {"true", "yes", "1", "on"};
    static const char *const no[] = {"false", "no", "0", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(t, yes[i]) == 0 || strcasecmp(t, no[i]) == 0) {
            *out = strcasecmp(t, yes[i]) == 0;
            return 0;
        }
    }
    return WHY("use true/false, yes/no, on/off or 1/0");
}

/* "250ms", "5s", "2m", "1h30m", "0"; milliseconds. */
static int parse_duration(const char *t, uint64_t *out, char *why, size_t whylen)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t total = 0, n;
    const char *end;

    if (strcmp(t, "0") == 0)
        return *out = 0, 0;
    if (!*t)
        return WHY("empty; use a number and a unit: 250ms, 5s, 2m, 1h30m");
    while (*t) {
        size_t i, ulen;
        if (parse_u64(t, &end, &n) < 0)
            return WHY("use a number and a unit: 250ms, 5s, 2m, 1h30m");
        for (ulen = 0; isalpha((unsigned char)end[ulen]); ulen++)
            ;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (ulen == strlen(units[i].unit) && strncmp(end, units[i].unit, ulen) == 0)
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return WHY("%s unit; use ms, s, m, h or d", ulen ? "unknown" : "missing");
        if (n > (UINT64_MAX - total) / units[i].ms)
            return WHY("too long");
        total += n * units[i].ms;
        t = end + ulen;
    }
    *out = total;
    return 0;
}

/* "512", "64KiB", "8MiB", "1GiB", "10MB", "64Ki"; bytes. */
static int parse_bytes(const char *t, uint64_t *out, char *why, size_t whylen)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1000},
                 {"kB", 1000},
                 {"MB", 1000000},
                 {"GB", 1000000000},
                 {"TB", 1000000000000ULL},
                 {"KiB", 1ULL << 10},
                 {"MiB", 1ULL << 20},
                 {"GiB", 1ULL << 30},
                 {"TiB", 1ULL << 40},
                 {"Ki", 1ULL << 10},
                 {"Mi", 1ULL << 20},
                 {"Gi", 1ULL << 30},
                 {"Ti", 1ULL << 40}};
    const char *end;
    uint64_t n;
    int r = parse_u64(t, &end, &n);

    if (r == -EINVAL)
        return WHY("use a number and an optional unit: 512, 64KiB, 8MiB, 1GiB, 10MB");
    if (r == -ERANGE)
        return WHY("too large");
    if (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return WHY("too large");
            *out = n * units[i].mult;
            return 0;
        }
    }
    return WHY("unknown unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
}

static int parse_enum(const kopt_config_setting_t *s, const char *t, int *out, char *why,
                      size_t whylen)
{
    size_t used = 0;

    for (int i = 0; s->choices && s->choices[i]; i++) {
        if (strcasecmp(t, s->choices[i]) == 0)
            return *out = i, 0;
    }
    used = (size_t)snprintf(why, whylen, "must be one of ");
    for (int i = 0; s->choices && s->choices[i] && used < whylen; i++)
        used += (size_t)snprintf(why + used, whylen - used, "%s%s", i ? "|" : "", s->choices[i]);
    return -EINVAL;
}

static bool host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* "host:port", "[v6]:port", ":port" (all interfaces). */
static int parse_addr(const char *t, kopt_config_addr_t *a, char *why, size_t whylen)
{
    const char *colon, *host = t, *end;
    size_t hlen;
    uint64_t port;

    memset(a, 0, sizeof(*a));
    if (*t == '[') {
        const char *close = strchr(t, ']');
        if (!close || close[1] != ':')
            return WHY("use [ipv6]:port");
        host = t + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        for (size_t i = 0; i < hlen; i++) {
            if (!isxdigit((unsigned char)host[i]) && !strchr(":.%", host[i]))
                return WHY("bad IPv6 address");
        }
        if (hlen == 0)
            return WHY("empty IPv6 address");
    } else {
        colon = strrchr(t, ':');
        if (!colon)
            return WHY("missing port; use host:port, [::1]:port or :port");
        hlen = (size_t)(colon - t);
        if (memchr(t, ':', hlen))
            return WHY("IPv6 hosts need brackets, as in [::1]:7400");
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char_ok(t[i]))
                return WHY("bad character '%c' in host", isprint((unsigned char)t[i]) ? t[i] : '?');
        }
    }
    if (hlen >= sizeof(a->host))
        return WHY("host name too long");
    if (parse_u64(colon + 1, &end, &port) < 0 || *end)
        return WHY(colon[1] ? "port must be 1..65535" : "missing port");
    if (port < 1 || port > 65535)
        return WHY("port must be 1..65535");
    memcpy(a->host, host, hlen);
    a->port = (uint16_t)port;
    snprintf(a->text, sizeof(a->text), *t == '[' ? "[%s]:%u" : "%s:%u", a->host, a->port);
    return 0;
}

static int list_push(kopt_config_list_t *l, const char *s, size_t n)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof(*items));

    if (!items)
        return -ENOMEM;
    l->items = items;
    if (!(items[l->n] = strndup(s, n)))
        return -ENOMEM;
    l->n++;
    return 0;
}

static void list_release(kopt_config_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* "a, b,c" -> 3 items, trimmed; "" -> empty list; an empty item is an error. */
static int parse_list(const char *t, kopt_config_list_t *l, char *why, size_t whylen)
{
    int r;

    memset(l, 0, sizeof(*l));
    if (!*t)
        return 0;
    for (;;) {
        const char *comma = strchr(t, ',');
        const char *end = comma ? comma : t + strlen(t);
        while (t < end && isspace((unsigned char)*t))
            t++;
        while (end > t && isspace((unsigned char)end[-1]))
            end--;
        if (end == t)
            return list_release(l), WHY("empty item in list");
        if ((r = list_push(l, t, (size_t)(end - t))) < 0)
            return list_release(l), r;
        if (!comma)
            return 0;
        t = comma + 1;
    }
}

int kcfg_parse_items(const kopt_config_setting_t *s, char *const *items, size_t n, kcfg_value_t *v,
                     char *why, size_t whylen)
{
    int r;

    (void)s;
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        if (!items[i][0])
            return list_release(&v->l), WHY("empty item in list");
        if ((r = list_push(&v->l, items[i], strlen(items[i]))) < 0)
            return list_release(&v->l), r;
    }
    return 0;
}

int kcfg_parse(const kopt_config_setting_t *s, const char *t, kcfg_value_t *v, char *why,
               size_t whylen)
{
    memset(v, 0, sizeof(*v));
    why[0] = '\0';
    switch (s->type) {
    case KOPT_CONFIG_STRING:
    case KOPT_CONFIG_PATH:
        if (s->type == KOPT_CONFIG_PATH && !*t)
            return WHY("empty path");
        if (s->type == KOPT_CONFIG_PATH && strlen(t) >= PATH_MAX)
            return WHY("path too long");
        v->s = strdup(t);
        return v->s ? 0 : -ENOMEM;
    case KOPT_CONFIG_INT:
        return parse_int(s, t, &v->i, why, whylen);
    case KOPT_CONFIG_BOOL:
        return parse_bool(t, &v->b, why, whylen);
    case KOPT_CONFIG_DURATION:
        return parse_duration(t, &v->u, why, whylen);
    case KOPT_CONFIG_BYTES:
        return parse_bytes(t, &v->u, why, whylen);
    case KOPT_CONFIG_ENUM:
        return parse_enum(s, t, &v->e, why, whylen);
    case KOPT_CONFIG_ADDRESS:
        return parse_addr(t, &v->a, why, whylen);
    case KOPT_CONFIG_LIST:
        return parse_list(t, &v->l, why, whylen);
    }
    return WHY("unknown setting type");
}

void kcfg_value_release(const kopt_config_setting_t *s, kcfg_value_t *v)
{
    if (s->type == KOPT_CONFIG_STRING || s->type == KOPT_CONFIG_PATH)
        free(v->s);
    else if (s->type == KOPT_CONFIG_LIST)
        list_release(&v->l);
    memset(v, 0, sizeof(*v));
}

void kcfg_clear(const kopt_config_setting_t *s, void *values)
{
    char *f = (char *)values + s->offset;

    switch (s->type) {
    case KOPT_CONFIG_STRING:
    case KOPT_CONFIG_PATH:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case KOPT_CONFIG_LIST:
        list_release((kopt_config_list_t *)f);
        break;
    case KOPT_CONFIG_INT:
        *(int64_t *)f = 0;
        break;
    case KOPT_CONFIG_BOOL:
        *(bool *)f = false;
        break;
    case KOPT_CONFIG_DURATION:
    case KOPT_CONFIG_BYTES:
        *(uint64_t *)f = 0;
        break;
    case KOPT_CONFIG_ENUM:
        *(int *)f = 0;
        break;
    case KOPT_CONFIG_ADDRESS:
        memset(f, 0, sizeof(kopt_config_addr_t));
        break;
    }
}

void kcfg_store(const kopt_config_setting_t *s, void *values, kcfg_value_t *v)
{
    char *f = (char *)values + s->offset;

    kcfg_clear(s, values);
    switch (s->type) {
    case KOPT_CONFIG_STRING:
    case KOPT_CONFIG_PATH:
        *(char **)f = v->s;
        break;
    case KOPT_CONFIG_LIST:
        *(kopt_config_list_t *)f = v->l;
        break;
    case KOPT_CONFIG_INT:
        *(int64_t *)f = v->i;
        break;
    case KOPT_CONFIG_BOOL:
        *(bool *)f = v->b;
        break;
    case KOPT_CONFIG_DURATION:
    case KOPT_CONFIG_BYTES:
        *(uint64_t *)f = v->u;
        break;
    case KOPT_CONFIG_ENUM:
        *(int *)f = v->e;
        break;
    case KOPT_CONFIG_ADDRESS:
        *(kopt_config_addr_t *)f = v->a;
        break;
    }
    memset(v, 0, sizeof(*v)); /* moved: the struct owns it now */
}

size_t kcfg_field_size(kopt_config_type_t t)
{
    if (t == KOPT_CONFIG_STRING || t == KOPT_CONFIG_PATH)
        return sizeof(char *);
    if (t == KOPT_CONFIG_LIST)
        return sizeof(kopt_config_list_t);
    if (t == KOPT_CONFIG_ADDRESS)
        return sizeof(kopt_config_addr_t);
    if (t == KOPT_CONFIG_BOOL)
        return sizeof(bool);
    if (t == KOPT_CONFIG_ENUM)
        return sizeof(int);
    return sizeof(uint64_t); /* int64_t and uint64_t */
}

int kcfg_copy(const kopt_config_setting_t *s, void *dst, const void *src)
{
    const char *f = (const char *)src + s->offset;
    kcfg_value_t v;

    memset(&v, 0, sizeof(v));
    switch (s->type) {
    case KOPT_CONFIG_STRING:
    case KOPT_CONFIG_PATH:
        if (*(char *const *)f && !(v.s = strdup(*(char *const *)f)))
            return -ENOMEM;
        break;
    case KOPT_CONFIG_LIST: {
        const kopt_config_list_t *l = (const kopt_config_list_t *)f;
        if (kcfg_parse_items(s, l->items, l->n, &v, (char[8]){0}, 8) < 0)
            return -ENOMEM;
        break;
    }
    default:
        /* Scalars and the address are plain bytes: copy the field through the union. */
        kcfg_clear(s, dst);
        memcpy((char *)dst + s->offset, f, kcfg_field_size(s->type));
        return 0;
    }
    kcfg_store(s, dst, &v);
    return 0;
}

bool kcfg_equal(const kopt_config_setting_t *s, const void *a, const void *b)
{
    const char *fa = (const char *)a + s->offset, *fb = (const char *)b + s->offset;

    switch (s->type) {
    case KOPT_CONFIG_STRING:
    case KOPT_CONFIG_PATH: {
        const char *x = *(char *const *)fa, *y = *(char *const *)fb;
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    case KOPT_CONFIG_LIST: {
        const kopt_config_list_t *x = (const void *)fa, *y = (const void *)fb;
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++) {
            if (strcmp(x->items[i], y->items[i]) != 0)
                return false;
        }
        return true;
    }
    case KOPT_CONFIG_INT:
        return *(const int64_t *)fa == *(const int64_t *)fb;
    case KOPT_CONFIG_BOOL:
        return *(const bool *)fa == *(const bool *)fb;
    case KOPT_CONFIG_DURATION:
    case KOPT_CONFIG_BYTES:
        return *(const uint64_t *)fa == *(const uint64_t *)fb;
    case KOPT_CONFIG_ENUM:
        return *(const int *)fa == *(const int *)fb;
    case KOPT_CONFIG_ADDRESS:
        return strcmp(((const kopt_config_addr_t *)fa)->text,
                      ((const kopt_config_addr_t *)fb)->text) == 0;
    }
    return false;
}

/* Largest exact unit: 90000 -> "1m30s", 1536 bytes -> "1536", 65536 -> "64KiB". */
static void format_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t used = 0;

    if (ms == 0) {
        snprintf(buf, len, "0");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < 4 && ms && used < len; i++) {
        if (ms >= units[i].ms) {
            used += (size_t)snprintf(buf + used, len - used, "%" PRIu64 "%s", ms / units[i].ms,
                                     units[i].unit);
            ms %= units[i].ms;
        }
    }
}

static void format_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"", "KiB", "MiB", "GiB", "TiB"};
    size_t i = 0;

    while (i < 4 && n && n % 1024 == 0) {
        n /= 1024;
        i++;
    }
    snprintf(buf, len, "%" PRIu64 "%s", n, units[i]);
}

void kcfg_format(const kopt_config_setting_t *s, const void *values, char *buf, size_t len)
{
    const char *f = (const char *)values + s->offset;

    buf[0] = '\0';
    if (s->flags & KOPT_CONFIG_SECRET) {
        snprintf(buf, len, "[redacted]");
        return;
    }
    switch (s->type) {
    case KOPT_CONFIG_STRING: /* a URL's userinfo never gets printed (nats-url, clickhouse-url) */
        kopt_url_redact(*(char *const *)f, buf, len);
        break;
    case KOPT_CONFIG_PATH:
        snprintf(buf, len, "%s", *(char *const *)f ? *(char *const *)f : "");
        break;
    case KOPT_CONFIG_LIST: {
        const kopt_config_list_t *l = (const void *)f;
        size_t used = 0;
        for (size_t i = 0; i < l->n && used + 1 < len; i++) {
            if (i)
                buf[used++] = ',';
            kopt_url_redact(l->items[i], buf + used, len - used);
            used += strlen(buf + used);
        }
        break;
    }
    case KOPT_CONFIG_INT:
        snprintf(buf, len, "%" PRId64, *(const int64_t *)f);
        break;
    case KOPT_CONFIG_BOOL:
        snprintf(buf, len, "%s", *(const bool *)f ? "true" : "false");
        break;
    case KOPT_CONFIG_DURATION:
        format_duration(*(const uint64_t *)f, buf, len);
        break;
    case KOPT_CONFIG_BYTES:
        format_bytes(*(const uint64_t *)f, buf, len);
        break;
    case KOPT_CONFIG_ENUM:
        snprintf(buf, len, "%s", s->choices[*(const int *)f]);
        break;
    case KOPT_CONFIG_ADDRESS:
        snprintf(buf, len, "%s", ((const kopt_config_addr_t *)f)->text);
        break;
    }
}

void kcfg_quote(const kopt_config_setting_t *s, const char *text, char *buf, size_t len)
{
    char plain[KCFG_QUOTE_MAX + 2]; /* one past the cut, so "..." still shows */
    size_t used = 0, i;

    if (s && (s->flags & KOPT_CONFIG_SECRET)) {
        snprintf(buf, len, "[redacted]");
        return;
    }
    /* A bad value may still be a URL with a password in it. */
    kopt_url_redact(text, plain, sizeof(plain));
    text = plain;
    if (len < 8) {
        buf[0] = '\0';
        return;
    }
    buf[used++] = '"';
    for (i = 0; text[i] && i < KCFG_QUOTE_MAX && used + 6 < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            used += (size_t)snprintf(buf + used, len - used,
                                     c == '"' || c == '\\' ? "\\%c" : "\\x%02x", c);
        else
            buf[used++] = (char)c;
    }
    if (text[i] && used + 5 < len) {
        memcpy(buf + used, "...", 3);
        used += 3;
    }
    buf[used++] = '"';
    buf[used] = '\0';
}
