/* Structured logging: builds each line in a stack buffer and writes it with one
 * write(2), so lines from different threads never interleave. JSON by default,
 * "ts level component: msg key=value" text for people. */
#include <kopt/log.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <kopt/trace.h>

#define LINE_MAX_BYTES 4096 /* PIPE_BUF: one write stays atomic on a pipe */

static struct {
    char component[32];
    kopt_log_format_t format;
    kopt_log_level_t min_level;
    int fd;
} logger = {"kopt", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

typedef struct {
    char *p;
    size_t len;
    size_t cap;
} line_t;


void kopt_log_setup(const char *component, kopt_log_format_t format, kopt_log_level_t min_level,
                    int fd)
{
    snprintf(logger.component, sizeof(logger.component), "%s", component ? component : "kopt");
    logger.format = format;
    logger.min_level = min_level;
    logger.fd = fd;
}


int kopt_log_level_parse(const char *s, kopt_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (s && strcasecmp(s, level_names[i]) == 0) {
            *out = (kopt_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}


int kopt_log_format_parse(const char *s, kopt_log_format_t *out)
{
    if (s && strcasecmp(s, "json") == 0)
        *out = KOPT_LOG_FORMAT_JSON;
    else if (s && strcasecmp(s, "text") == 0)
        *out = KOPT_LOG_FORMAT_TEXT;
    else
        return -EINVAL;
    return 0;
}


int kopt_log_enabled(kopt_log_level_t level)
{
    return level >= logger.min_level;
}


int kopt_log_key_is_secret(const char *key)
{
    static const char *const words[] = {"password",      "passwd",  "token",  "secret",
                                        "authorization", "api_key", "apikey", "private"};

    if (!key)
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasestr(key, words[i]))
            return 1;
    }
    /* "key" alone or as a suffix ("tls-key", "api-key"), but not "keepalive". */
    size_t n = strlen(key);
    return n >= 3 && strcasecmp(key + n - 3, "key") == 0;
}


static void put(line_t *l, const char *s, size_t n)
{
    size_t room = l->cap - l->len;

    if (n > room)
        n = room;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}


static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}


static void putf(line_t *l, const char *fmt, ...)
{
    va_list ap;
    size_t room = l->cap - l->len;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(l->p + l->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    l->len += (size_t)n < room ? (size_t)n : room - (room ? 1 : 0);
}


/* The code point of the well-formed UTF-8 sequence at s and its length
 * (2..4), or 0 when the bytes are not one (overlong, surrogate, cut). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t c, min;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2, c = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3, c = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Characters a terminal or log viewer acts on rather than shows: C1 controls
 * (U+009B is CSI on some terminals), line and paragraph separators, and the
 * bidirectional overrides that reorder what a reader sees. */
static int invisible_control(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* Writes `s` so that no byte of it can end the line, move the cursor or
 * fake another field: quotes and backslashes get a backslash, control
 * characters an escape (JSON: \uXXXX; text: \xNN, \n, \r, \t). Bytes that are
 * not UTF-8 become U+FFFD in JSON (which must be UTF-8) and \xNN in text. */
static void put_escaped_as(line_t *l, const char *str, int json)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t cp;
    size_t n;

    while (s && *s) {
        unsigned char c = *s;

        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c == '\n') {
            puts_(l, "\\n");
        } else if (c == '\r') {
            puts_(l, "\\r");
        } else if (c == '\t') {
            puts_(l, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            putf(l, json ? "\\u%04x" : "\\x%02x", c);
        } else if (c >= 0x80) {
            n = utf8_decode(s, &cp);
            if (n == 0)
                putf(l, json ? "\\ufffd" : "\\x%02x", c);
            else if (invisible_control(cp))
                putf(l, "\\u%04x", (unsigned)cp);
            else
                put(l, (const char *)s, n);
            s += n ? n : 1;
            continue;
        } else {
            put(l, (const char *)s, 1);
        }
        s++;
    }
}

static void put_escaped(line_t *l, const char *s)
{
    put_escaped_as(l, s, 1);
}

/* A text-format value: escaped, and quoted when it is empty or holds a space,
 * '=' or '"', so "a=1 b=2" inside a value cannot pass for two fields. */
static void put_text_value(line_t *l, const char *s)
{
    int quote = !*s || strpbrk(s, " =\"") != NULL;

    if (quote)
        puts_(l, "\"");
    put_escaped_as(l, s, 0);
    if (quote)
        puts_(l, "\"");
}


static void put_value(line_t *l, const kopt_log_field_t *f, int json)
{
    const char *s;

    if (f->type == KOPT_LOG_FIELD_SECRET || kopt_log_key_is_secret(f->key)) {
        puts_(l, json ? "\"[redacted]\"" : "[redacted]");
        return;
    }
    switch (f->type) {
    case KOPT_LOG_FIELD_STR:
    case KOPT_LOG_FIELD_ERRNO:
        if (f->type == KOPT_LOG_FIELD_STR)
            s = f->v.s ? f->v.s : "";
        else
            s = strerror((int)(f->v.i < 0 ? -f->v.i : f->v.i));
        if (!json) {
            put_text_value(l, s);
            break;
        }
        puts_(l, "\"");
        put_escaped(l, s);
        puts_(l, "\"");
        break;
    case KOPT_LOG_FIELD_INT:
        putf(l, "%lld", (long long)f->v.i);
        break;
    case KOPT_LOG_FIELD_UINT:
        putf(l, "%llu", (unsigned long long)f->v.u);
        break;
    case KOPT_LOG_FIELD_DOUBLE:
        if (isfinite(f->v.d))
            putf(l, "%.6g", f->v.d);
        else
            puts_(l, json ? "null" : "nan");
        break;
    case KOPT_LOG_FIELD_BOOL:
        puts_(l, f->v.i ? "true" : "false");
        break;
    default:
        puts_(l, "null");
        break;
    }
}


static void put_timestamp(line_t *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    putf(l, "%s.%03ldZ", buf, ts.tv_nsec / 1000000);
}


/* The thread's current span (kopt/trace.h), so a line joins its trace. */
static void put_trace_ids(line_t *l, int json)
{
    const kopt_trace_ctx_t *c = kopt_trace_current();
    char trace[2 * KOPT_TRACE_ID_LEN + 1], span[2 * KOPT_SPAN_ID_LEN + 1];

    if (!c)
        return;
    kopt_trace_hex(c->trace_id, KOPT_TRACE_ID_LEN, trace);
    kopt_trace_hex(c->span_id, KOPT_SPAN_ID_LEN, span);
    putf(l, json ? ",\"trace_id\":\"%s\",\"span_id\":\"%s\"" : " trace_id=%s span_id=%s", trace,
         span);
}


void kopt_log_emit(kopt_log_level_t level, const char *msg, ...)
{
    char buf[LINE_MAX_BYTES];
    line_t l = {buf, 0, sizeof(buf) - 1}; /* keep one byte for the newline */
    int json = logger.format == KOPT_LOG_FORMAT_JSON;
    int saved_errno = errno;
    size_t after_msg;
    va_list ap;

    if (level < logger.min_level)
        return;
    if (json) {
        puts_(&l, "{\"ts\":\"");
        put_timestamp(&l);
        putf(&l, "\",\"level\":\"%s\",\"component\":\"", level_names[level]);
        put_escaped(&l, logger.component);
        puts_(&l, "\",\"msg\":\"");
        put_escaped(&l, msg);
        puts_(&l, "\"");
    } else {
        put_timestamp(&l);
        putf(&l, " %-5s ", level_names[level]);
        put_escaped_as(&l, logger.component, 0);
        puts_(&l, ": ");
        put_escaped_as(&l, msg, 0);
    }
    put_trace_ids(&l, json);
    after_msg = l.len;
    va_start(ap, msg);
    for (;;) {
        kopt_log_field_t f = va_arg(ap, kopt_log_field_t);
        if (f.type == KOPT_LOG_FIELD_END)
            break;
        if (json) {
            puts_(&l, ",\"");
            put_escaped(&l, f.key);
            puts_(&l, "\":");
        } else {
            puts_(&l, " ");
            put_escaped_as(&l, f.key, 0);
            puts_(&l, "=");
        }
        put_value(&l, &f, json);
    }
    va_end(ap);
    if (json) {
        /* A line cut at the buffer's end must still parse: keep the fields
         * that fit whole (none, for simplicity) and say it was cut. */
        if (l.len >= l.cap - 1) {
            l.len = after_msg < l.cap - 32 ? after_msg : 0;
            if (l.len == 0)
                puts_(&l, "{\"msg\":\"log line too long\"");
            puts_(&l, ",\"truncated\":true}");
        } else {
            puts_(&l, "}");
        }
    }
    l.p[l.len++] = '\n';
    /* One write: a short write on stderr has no useful recovery. */
    ssize_t w = write(logger.fd, l.p, l.len);
    (void)w;
    errno = saved_errno;
}
