/* One partition out to and back from the object store: the pieces backup.c,
 * restore.c and archive.c share (backup_internal.h). */
#include "backup_internal.h"

#include <kopt/archive_object.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTITION_BYTES ((size_t)4 << 30) /* uncompressed Native of one partition */

int agg_backup_export(kopt_ch_client_t *c, const char *db, const char *table, const char *stage,
                      bool final, const char *pid, agg_export_t *x, char *why, size_t why_len)
{
    char *sql = NULL, *native = NULL;
    size_t native_len = 0;
    int r;

    memset(x, 0, sizeof(*x));
    /* The staging copy is atomic and hard-linked: a consistent snapshot of
     * the partition, however the aggregator writes meanwhile. */
    r = agg_backup_sql(c, NULL, why, why_len,
                       "ALTER TABLE %s.%s REPLACE PARTITION ID '%s' FROM %s.%s", db, stage, pid, db,
                       table);
    if (r == 0)
        r = agg_backup_count(c, db, stage, final, pid, &x->rows, &x->checksum, why, why_len);
    if (r == 0 && asprintf(&sql, "SELECT * FROM %s.%s WHERE _partition_id = '%s' FORMAT Native", db,
                           stage, pid) < 0)
        r = -ENOMEM;
    if (r == 0)
        r = agg_backup_sql_len(c, &native, &native_len, why, why_len, sql);
    if (r == 0)
        r = kopt_archive_gzip(native, native_len, &x->gz, &x->gz_len);
    if (r == 0)
        kopt_objstore_sha256_hex(x->gz, x->gz_len, x->sha256);
    free(sql);
    free(native);
    return r;
}

int agg_backup_load(kopt_ch_client_t *c, const char *db, const char *stage, bool final,
                    const char *pid, const void *gz, size_t gz_len, uint64_t rows,
                    uint64_t checksum, const char *what, char *why, size_t why_len)
{
    uint64_t have_rows = 0, have_sum = 0;
    int r =
        kopt_archive_load_native(c, stage, 0, gz, gz_len, MAX_PARTITION_BYTES, what, why, why_len);

    if (r < 0)
        return r;
    r = agg_backup_count(c, db, stage, final, pid, &have_rows, &have_sum, why, why_len);
    if (r == 0 && (have_rows != rows || have_sum != checksum)) {
        agg_backup_say(why, why_len,
                       "%s disagrees with the manifest: %" PRIu64 " rows, checksum %" PRIu64
                       "; the manifest says %" PRIu64 ", %" PRIu64,
                       what, have_rows, have_sum, rows, checksum);
        r = -EBADMSG;
    }
    return r;
}
