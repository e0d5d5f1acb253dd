/* ClickHouse protocol facts, without a connection: server versions, the
 * exception text of an error answer, which error codes a retry can fix and
 * which blame the rows, and the identifiers kopt accepts. Codes and texts
 * as seen on 18.16 and documented for newer servers; see kopt/clickhouse.h. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/clickhouse.h"

bool kopt_ch_identifier_ok(const char *name)
{
    size_t n;

    if (!name || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (n = 0; name[n]; n++)
        if (!(isalnum((unsigned char)name[n]) || name[n] == '_'))
            return false;
    return n <= 64;
}

int kopt_ch_version_parse(const char *s, kopt_ch_version_t *out)
{
    int major, minor, patch = 0, n = 0;

    memset(out, 0, sizeof(*out));
    if (!s || sscanf(s, "%d.%d%n", &major, &minor, &n) != 2 || major < 0 || minor < 0)
        return -EINVAL;
    if (s[n] == '.')
        sscanf(s + n + 1, "%d", &patch);
    out->major = major;
    out->minor = minor;
    out->patch = patch < 0 ? 0 : patch;
    snprintf(out->text, sizeof(out->text), "%.*s", (int)strcspn(s, " \t\r\n"), s);
    return 0;
}

bool kopt_ch_version_at_least(const kopt_ch_version_t *v, int major, int minor)
{
    return v->major > major || (v->major == major && v->minor >= minor);
}

int kopt_ch_parse_exception(const char *body, size_t len, char *msg, size_t msg_size)
{
    static const char *const cuts[] = {", e.what()", " (version ", "\n"};
    const char *p = NULL, *m, *end, *stop;
    int code = 0;

    if (msg_size)
        msg[0] = '\0';
    if (!body)
        return 0;
    /* The last "Code: " wins: an error after partial data is appended. */
    for (const char *q = body; (q = memmem(q, len - (size_t)(q - body), "Code: ", 6)); q += 6)
        p = q;
    if (!p)
        return 0;
    end = body + len;
    for (p += 6; p < end && isdigit((unsigned char)*p) && code < 100000; p++)
        code = code * 10 + (*p - '0');
    m = memmem(p, (size_t)(end - p), "DB::Exception: ", 15);
    m = m ? m + 15 : p;
    stop = end;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        const char *at = memmem(m, (size_t)(stop - m), cuts[i], strlen(cuts[i]));

        if (at)
            stop = at;
    }
    if (msg_size)
        snprintf(msg, msg_size, "%.*s", (int)(stop - m), m);
    return code;
}

/* Codes that retrying cannot fix. ROWS: the data is refused, so one
 * message is to blame and is isolated by halving; STATEMENT: the insert
 * itself is wrong (schema, config), every insert fails alike and no message
 * is to blame (see kopt_ch_blames_rows). */
enum { ROWS, STATEMENT };

static const struct {
    int code, blame;
} permanent_codes[] = {
    {6, ROWS},        /* CANNOT_PARSE_TEXT */
    {16, STATEMENT},  /* NO_SUCH_COLUMN_IN_TABLE */
    {26, ROWS},       /* CANNOT_PARSE_QUOTED_STRING */
    {27, ROWS},       /* CANNOT_PARSE_INPUT_ASSERTION_FAILED */
    {32, ROWS},       /* ATTEMPT_TO_READ_AFTER_EOF: truncated RowBinary */
    {33, ROWS},       /* CANNOT_READ_ALL_DATA */
    {36, STATEMENT},  /* BAD_ARGUMENTS */
    {41, ROWS},       /* CANNOT_PARSE_DATETIME */
    {43, STATEMENT},  /* ILLEGAL_TYPE_OF_ARGUMENT */
    {44, STATEMENT},  /* ILLEGAL_COLUMN */
    {46, STATEMENT},  /* UNKNOWN_FUNCTION */
    {47, STATEMENT},  /* UNKNOWN_IDENTIFIER */
    {48, STATEMENT},  /* NOT_IMPLEMENTED */
    {50, STATEMENT},  /* UNKNOWN_TYPE */
    {53, ROWS},       /* TYPE_MISMATCH */
    {57, STATEMENT},  /* TABLE_ALREADY_EXISTS */
    {60, STATEMENT},  /* UNKNOWN_TABLE */
    {62, STATEMENT},  /* SYNTAX_ERROR */
    {69, ROWS},       /* ARGUMENT_OUT_OF_BOUND */
    {70, ROWS},       /* CANNOT_CONVERT_TYPE */
    {72, ROWS},       /* CANNOT_PARSE_NUMBER */
    {73, STATEMENT},  /* UNKNOWN_FORMAT */
    {81, STATEMENT},  /* UNKNOWN_DATABASE */
    {115, STATEMENT}, /* UNKNOWN_SETTING */
    {117, ROWS},      /* INCORRECT_DATA */
    {164, STATEMENT}, /* READONLY */
    {395, ROWS},      /* FUNCTION_THROW_IF_VALUE_IS_NON_ZERO: a row failed a throwIf() check */
    {469, ROWS},      /* VIOLATED_CONSTRAINT (19.15+): a row failed a CHECK constraint */
};

/* Codes that say "the server cannot do it now". */
static const int retryable_codes[] = {
    159, /* TIMEOUT_EXCEEDED */
    173, /* CANNOT_ALLOCATE_MEMORY */
    192, /* UNKNOWN_USER: a config problem; the rows are fine */
    193, /* WRONG_PASSWORD */
    198, /* DNS_ERROR */
    201, /* QUOTA_EXPIRED */
    202, /* TOO_MANY_SIMULTANEOUS_QUERIES */
    203, /* NO_FREE_CONNECTION */
    209, /* SOCKET_TIMEOUT */
    210, /* NETWORK_ERROR */
    225, /* NO_ZOOKEEPER */
    241, /* MEMORY_LIMIT_EXCEEDED */
    242, /* TABLE_IS_READ_ONLY */
    252, /* TOO_MANY_PARTS */
    279, /* ALL_CONNECTION_TRIES_FAILED */
    319, /* UNKNOWN_STATUS_OF_INSERT */
    394, /* QUERY_WAS_CANCELLED */
    425, /* SYSTEM_ERROR */
    516, /* AUTHENTICATION_FAILED (newer servers) */
    999, /* KEEPER_EXCEPTION */
};

static bool in_list(const int *list, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == code)
            return true;
    return false;
}

/* ROWS or STATEMENT for a permanent code, -1 for any other. */
static int permanent_blame(int code)
{
    for (size_t i = 0; i < sizeof(permanent_codes) / sizeof(permanent_codes[0]); i++)
        if (permanent_codes[i].code == code)
            return permanent_codes[i].blame;
    return -1;
}

kopt_ch_class_t kopt_ch_classify(long http_status, int code)
{
    if (http_status == 200 && code == 0)
        return KOPT_CH_OK;
    if (code && in_list(retryable_codes, sizeof(retryable_codes) / sizeof(int), code))
        return KOPT_CH_RETRYABLE;
    if (code && permanent_blame(code) >= 0)
        return KOPT_CH_PERMANENT;
    /* Unknown code: trust the status. No answer, 5xx, auth, 429 and 408
     * are the server's state; other 4xx are the request's fault. */
    if (http_status == 0 || http_status >= 500 || http_status == 401 || http_status == 403 ||
        http_status == 408 || http_status == 429)
        return KOPT_CH_RETRYABLE;
    return KOPT_CH_PERMANENT;
}

bool kopt_ch_blames_rows(const kopt_ch_error_t *err)
{
    return err->cls == KOPT_CH_PERMANENT && err->code != 0 &&
           permanent_blame(err->code) != STATEMENT;
}

const char *kopt_ch_class_name(kopt_ch_class_t cls)
{
    switch (cls) {
    case KOPT_CH_OK:
        return "ok";
    case KOPT_CH_RETRYABLE:
        return "retryable";
    default:
        return "permanent";
    }
}
