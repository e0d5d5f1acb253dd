/* SQL literals for ClickHouse; see kopt/clickhouse.h. Both forms escape
 * the same two characters, so a value reads back as it was written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/clickhouse.h"

void kopt_ch_sql_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

int kopt_ch_sql_quote(const char *s, char **out)
{
    size_t n = strlen(s);
    char *q = malloc(2 * n + 3), *p;

    *out = NULL;
    if (!q)
        return -ENOMEM;
    p = q;
    *p++ = '\'';
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '\'';
    *p = '\0';
    *out = q;
    return 0;
}
