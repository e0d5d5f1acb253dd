/* What libkopt's TLS files (tls.c: PEM material; http_tls.c: the HTTP
 * server's OpenSSL contexts) share and the public kopt/tls.h does not say. */
#ifndef KOPT_TLS_INTERNAL_H
#define KOPT_TLS_INTERNAL_H

#include <stddef.h>

/* Writes the sentence to err (when there is room), drops OpenSSL's error
 * queue so the next call starts clean, and returns r. */
int kopt_tls_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
