/* libFuzzer target for the ClickHouse protocol facts of kopt_clickhouse
 * (libkopt/clickhouse/protocol.c, sql.c): the exception text of an error
 * answer (given as bytes that need not end in a NUL, as a body arrives),
 * server version strings, identifiers and SQL string quoting. Checks what
 * each promises: the message is a piece of the body and fits its buffer,
 * a version compares with itself, a quoted string reads back as it was. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/clickhouse.h>

static void check_exception(const uint8_t *data, size_t size)
{
    /* The first byte picks the message buffer's size, 0 included. */
    size_t msg_size = size ? data[0] % 64 : 0;
    char *body = malloc(size ? size : 1), *msg = malloc(msg_size ? msg_size : 1);
    kopt_ch_error_t err = {0};
    int code;

    if (!body || !msg)
        abort();
    /* A copy of exactly size bytes: under ASan any read past it is caught. */
    memcpy(body, data, size);
    code = kopt_ch_parse_exception(body, size, msg, msg_size);
    if (code < 0 || code > 999999)
        abort();
    if (msg_size) {
        size_t n = strnlen(msg, msg_size);

        if (n >= msg_size || (n && !memmem(body, size, msg, n)))
            abort();
    }
    err.code = code;
    for (long st = 0; st < 600; st += 100) {
        err.http_status = st;
        err.cls = kopt_ch_classify(st, code);
        if (!kopt_ch_class_name(err.cls))
            abort();
        (void)kopt_ch_blames_rows(&err);
    }
    free(msg);
    free(body);
}

static void check_version(const char *s)
{
    kopt_ch_version_t v;

    if (kopt_ch_version_parse(s, &v) < 0)
        return;
    if (v.major < 0 || v.minor < 0 || v.patch < 0 ||
        strnlen(v.text, sizeof(v.text)) >= sizeof(v.text))
        abort();
    if (!kopt_ch_version_at_least(&v, v.major, v.minor) ||
        (v.minor < INT_MAX && kopt_ch_version_at_least(&v, v.major, v.minor + 1)) ||
        (v.major < INT_MAX && kopt_ch_version_at_least(&v, v.major + 1, 0)))
        abort();
}

static void check_quote(const char *s)
{
    char *q = NULL, *back, *o;
    const char *p;
    size_t n = strlen(s);

    if (kopt_ch_identifier_ok(s)) {
        if (n == 0 || n > 64)
            abort();
        for (p = s; *p; p++)
            if (!(*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z')))
                abort();
    }
    if (kopt_ch_sql_quote(s, &q) < 0)
        return;
    /* Read the literal back as ClickHouse would: '...' with \ escapes. */
    back = malloc(strlen(q) + 1);
    if (!back || q[0] != '\'')
        abort();
    o = back;
    for (p = q + 1; *p && *p != '\''; p++) {
        if (*p == '\\') {
            p++;
            if (!*p)
                abort();
        }
        *o++ = *p;
    }
    *o = '\0';
    if (*p != '\'' || p[1] != '\0' || strcmp(back, s) != 0)
        abort();
    free(back);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    check_exception(data, size);
    /* The string helpers take C strings: the input up to its first NUL. */
    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_version(s);
    check_quote(s);
    free(s);
    return 0;
}
