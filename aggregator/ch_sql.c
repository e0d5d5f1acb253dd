/* SQL literals for ClickHouse; see ch_sql.h. */
#include "ch_sql.h"

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
