/* A client's text inside an error message (adv_quote, quote.c). */
#ifndef ADV_QUOTE_H
#define ADV_QUOTE_H

#include <stddef.h>

/* Bytes of the client's text quoted at most, and the room that takes. */
#define ADV_QUOTE_MAX 64
#define ADV_QUOTE_LEN (4 * ADV_QUOTE_MAX + 1)

/* The first ADV_QUOTE_MAX of the n bytes at s, printable ASCII as it is and
 * every other byte ('"', '\\', controls, each byte of UTF-8) as \xHH, into
 * out (len bytes, ADV_QUOTE_LEN fits all); returns out. The message then
 * stays valid UTF-8 (the HTTP gateway's JSON refuses anything else and
 * would answer 500) and one log line. */
const char *adv_quote(const char *s, size_t n, char *out, size_t len);

#endif
