/* Writing SQL for ClickHouse: literals quoted the way its parser reads
 * them. 18.16 has no query parameters over HTTP, so values are inlined. */
#ifndef KOPT_AGGREGATOR_CH_SQL_H
#define KOPT_AGGREGATOR_CH_SQL_H

#include <stdio.h>

/* Writes s as a single-quoted string literal, backslash-escaping quotes and
 * backslashes. */
void kopt_ch_sql_string(FILE *f, const char *s);

#endif
