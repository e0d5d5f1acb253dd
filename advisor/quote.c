/* See quote.h. Pure. */
#include "quote.h"

const char *adv_quote(const char *s, size_t n, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (len == 0)
        return out;
    for (size_t i = 0; i < n && i < ADV_QUOTE_MAX && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 1 >= len)
                break;
            out[o++] = (char)c;
            continue;
        }
        if (o + 4 >= len)
            break;
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    out[o] = '\0';
    return out;
}
