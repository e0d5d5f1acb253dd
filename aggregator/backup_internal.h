/* What backup.c, restore.c (and the archive, later) share. Not API. */
#ifndef AGG_BACKUP_INTERNAL_H
#define AGG_BACKUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>

void agg_backup_say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double agg_backup_now(void);

/* One statement built with printf; ClickHouse's message goes to why. body may be NULL. */
int agg_backup_sql(kopt_ch_client_t *c, char **body, char *why, size_t why_len, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
int agg_backup_sql_len(kopt_ch_client_t *c, char **body, size_t *len, char *why, size_t why_len,
                       const char *sql);

/* gzip in memory; gunzip refuses anything but one whole gzip member
 * (-EBADMSG: truncated or corrupt) and output beyond limit (-EFBIG). */
int agg_backup_gzip(const void *in, size_t len, unsigned char **out, size_t *out_len);
int agg_backup_gunzip(const void *in, size_t len, size_t limit, unsigned char **out,
                      size_t *out_len);

/* count() and sum(cityHash64(*)) of one partition (FINAL when final). */
int agg_backup_count(kopt_ch_client_t *c, const char *db, const char *table, bool final,
                     const char *partition_id, uint64_t *rows, uint64_t *checksum, char *why,
                     size_t why_len);

/* Splits a TSV answer into lines in place; *lines malloc'd. */
int agg_backup_lines(char *body, char ***lines, size_t *n);

#endif
