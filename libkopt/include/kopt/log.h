/* Structured logging: one JSON object a line on stderr (or text for people).
 *
 * Fields are typed values passed by value and ended by KOPT_LOG_END, which the
 * level macros append, so a call reads:
 *     kopt_log_info("listening", KOPT_STR("addr", addr), KOPT_INT("port", port));
 * Secrets never reach the output: KOPT_SECRET() always prints "[redacted]", and
 * a field whose key names a secret (password, token, secret, key, authorization)
 * is redacted whatever its type. Values cannot forge lines: control characters,
 * C1 controls, line separators and bidi overrides are escaped in both formats,
 * and text quotes a value with a space, '=' or '"'. Thread-safe: each line is
 * one write(2). */
#ifndef KOPT_LOG_H
#define KOPT_LOG_H

#include <stdint.h>

typedef enum {
    KOPT_LOG_DEBUG = 0,
    KOPT_LOG_INFO,
    KOPT_LOG_WARN,
    KOPT_LOG_ERROR,
} kopt_log_level_t;

typedef enum {
    KOPT_LOG_FORMAT_JSON = 0,
    KOPT_LOG_FORMAT_TEXT,
} kopt_log_format_t;

typedef enum {
    KOPT_LOG_FIELD_END = 0,
    KOPT_LOG_FIELD_STR,
    KOPT_LOG_FIELD_INT,
    KOPT_LOG_FIELD_UINT,
    KOPT_LOG_FIELD_DOUBLE,
    KOPT_LOG_FIELD_BOOL,
    KOPT_LOG_FIELD_ERRNO,  /* negative errno: printed as its message */
    KOPT_LOG_FIELD_SECRET, /* never printed */
} kopt_log_field_type_t;

typedef struct {
    const char *key;
    kopt_log_field_type_t type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        double d;
    } v;
} kopt_log_field_t;

#define KOPT_STR(k, val) ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_STR, .v.s = (val)})
#define KOPT_INT(k, val) ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_INT, .v.i = (val)})
#define KOPT_UINT(k, val)                                                                          \
    ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_UINT, .v.u = (val)})
#define KOPT_DBL(k, val)                                                                           \
    ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_DOUBLE, .v.d = (val)})
#define KOPT_BOOL(k, val)                                                                          \
    ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_BOOL, .v.i = !!(val)})
/* `r` is a negative errno, as every kopt function returns. */
#define KOPT_ERR(r) ((kopt_log_field_t){.key = "error", .type = KOPT_LOG_FIELD_ERRNO, .v.i = (r)})
#define KOPT_SECRET(k) ((kopt_log_field_t){.key = (k), .type = KOPT_LOG_FIELD_SECRET})
#define KOPT_LOG_END ((kopt_log_field_t){.key = 0, .type = KOPT_LOG_FIELD_END})

/* Sets the process-wide logger. `component` is copied ("ingest", "agent", ...).
 * `fd` is where lines go (2 in daemons; a pipe or file in tests). */
void kopt_log_setup(const char *component, kopt_log_format_t format, kopt_log_level_t min_level,
                    int fd);

/* Parses "debug|info|warn|error" and "json|text". 0, or -EINVAL. */
int kopt_log_level_parse(const char *s, kopt_log_level_t *out);
int kopt_log_format_parse(const char *s, kopt_log_format_t *out);

int kopt_log_enabled(kopt_log_level_t level);

/* The fields end with KOPT_LOG_END; prefer the macros below, which add it. */
void kopt_log_emit(kopt_log_level_t level, const char *msg, ...);

#define kopt_log_debug(...) kopt_log_emit(KOPT_LOG_DEBUG, __VA_ARGS__, KOPT_LOG_END)
#define kopt_log_info(...) kopt_log_emit(KOPT_LOG_INFO, __VA_ARGS__, KOPT_LOG_END)
#define kopt_log_warn(...) kopt_log_emit(KOPT_LOG_WARN, __VA_ARGS__, KOPT_LOG_END)
#define kopt_log_error(...) kopt_log_emit(KOPT_LOG_ERROR, __VA_ARGS__, KOPT_LOG_END)

/* Whether a key names a secret, so its value must never be printed. */
int kopt_log_key_is_secret(const char *key);

#endif
