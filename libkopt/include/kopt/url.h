/* Printing URLs without their secrets. Pure: no I/O, no globals.
 *
 * A URL setting may carry credentials (nats://user:pw@host:4222,
 * http://user:pw@clickhouse:8123/?password=pw). Wherever kopt prints one (logs,
 * /readyz reasons, errors, metric labels) it prints kopt_url_redact()'s copy. */
#ifndef KOPT_URL_H
#define KOPT_URL_H

#include <stddef.h>

/* Writes `url` to `out` (NUL-terminated) with the userinfo of every URL
 * replaced by "[redacted]" (nats://[redacted]@host:4222) and the value of every
 * query parameter whose name names a secret (password, token, key, ...; see
 * kopt_log_key_is_secret) too. A comma-separated list is redacted URL by URL.
 * A URL without a scheme ("user:pw@host:4222") counts as one when the text
 * before its last '@' has no '/'. NULL prints as "". Returns 0, or -ENOSPC when
 * `out` was too small: the copy is then cut, but still holds no secret. */
int kopt_url_redact(const char *url, char *out, size_t len);

/* The same, returning `out`, for use inside a call. */
const char *kopt_url_redacted(const char *url, char *out, size_t len);

/* A redacted copy in a buffer that lives until the end of the enclosing
 * block: kopt_log_warn("connect failed", KOPT_STR("url", KOPT_URL_REDACTED(url))). */
#define KOPT_URL_PRINT_MAX 512
#define KOPT_URL_REDACTED(url)                                                                     \
    kopt_url_redacted((url), (char[KOPT_URL_PRINT_MAX]){0}, KOPT_URL_PRINT_MAX)

#endif
