/* What backup.c, restore.c and archive.c share. Not API. */
#ifndef AGG_BACKUP_INTERNAL_H
#define AGG_BACKUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/archive_object.h>
#include <kopt/clickhouse.h>
#include <kopt/objstore.h>

void agg_backup_say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double agg_backup_now(void);

/* One statement built with printf; ClickHouse's message goes to why. body may be NULL. */
int agg_backup_sql(kopt_ch_client_t *c, char **body, char *why, size_t why_len, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
int agg_backup_sql_len(kopt_ch_client_t *c, char **body, size_t *len, char *why, size_t why_len,
                       const char *sql);

/* count() and sum(cityHash64(*)) of one partition (FINAL when final). */
int agg_backup_count(kopt_ch_client_t *c, const char *db, const char *table, bool final,
                     const char *partition_id, uint64_t *rows, uint64_t *checksum, char *why,
                     size_t why_len);

/* Splits a TSV answer into lines in place; *lines malloc'd. */
int agg_backup_lines(char *body, char ***lines, size_t *n);

/* backup_partition.c ---------------------------------------------------- */

typedef struct {
    uint64_t rows, checksum; /* of the snapshot, as agg_backup_count() */
    unsigned char *gz;       /* its Native, gzip'd; malloc'd */
    size_t gz_len;
    char sha256[65]; /* of gz */
} agg_export_t;

/* Snapshots partition pid of db.table into db.stage (REPLACE PARTITION: a
 * table made AS table), counts it and exports it as gzip'd Native. The
 * staging partition stays; the caller drops it. x->gz is freed by the caller
 * also on failure. */
int agg_backup_export(kopt_ch_client_t *c, const char *db, const char *table, const char *stage,
                      bool final, const char *pid, agg_export_t *x, char *why, size_t why_len);

/* Gunzips gz into db.stage (which must not hold partition pid) and checks
 * the rows and checksum there: -EBADMSG on a corrupt stream or a mismatch,
 * with `what` in why. The staging partition stays; the caller drops it. */
int agg_backup_load(kopt_ch_client_t *c, const char *db, const char *stage, bool final,
                    const char *pid, const void *gz, size_t gz_len, uint64_t rows,
                    uint64_t checksum, const char *what, char *why, size_t why_len);

#endif
