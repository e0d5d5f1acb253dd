/* One partition out to and back from the object store: the pieces backup.c,
 * restore.c and archive.c share (backup_internal.h). */
#include "backup_internal.h"

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
        r = agg_backup_gzip(native, native_len, &x->gz, &x->gz_len);
    if (r == 0)
        kopt_objstore_sha256_hex(x->gz, x->gz_len, x->sha256);
    free(sql);
    free(native);
    return r;
}

int agg_backup_get_verified(kopt_objstore_t *st, const char *key, uint64_t bytes, const char *sha,
                            char **data, size_t *len, char *why, size_t why_len)
{
    kopt_objstore_error_t err = {0};
    char have[65];
    int r = kopt_objstore_get(st, key, data, len, &err);

    if (r < 0) {
        agg_backup_say(why, why_len, "object store: %s: %s%s%s (HTTP %ld)", key, err.code,
                       err.code[0] ? ": " : "", err.message, err.http_status);
        return r;
    }
    kopt_objstore_sha256_hex(*data, *len, have);
    if ((bytes != UINT64_MAX && *len != bytes) || strcmp(have, sha) != 0) {
        char want[24] = "any";

        if (bytes != UINT64_MAX)
            snprintf(want, sizeof(want), "%" PRIu64, bytes);
        agg_backup_say(why, why_len,
                       "%s is corrupt or truncated: %zu bytes, SHA-256 %.12s..., expected %s "
                       "bytes, %.12s...",
                       key, *len, have, want, sha);
        free(*data);
        *data = NULL;
        return -EBADMSG;
    }
    return 0;
}

int agg_backup_load(kopt_ch_client_t *c, const char *db, const char *stage, bool final,
                    const char *pid, const void *gz, size_t gz_len, uint64_t rows,
                    uint64_t checksum, const char *what, char *why, size_t why_len)
{
    unsigned char *native = NULL;
    size_t native_len = 0;
    kopt_ch_error_t err = {0};
    uint64_t have_rows = 0, have_sum = 0;
    int r = agg_backup_gunzip(gz, gz_len, MAX_PARTITION_BYTES, &native, &native_len);

    if (r < 0) {
        agg_backup_say(why, why_len, "%s: not a whole gzip stream (%s)", what,
                       r == -EFBIG ? "too large" : "corrupt or truncated");
        return r == -EFBIG ? r : -EBADMSG;
    }
    r = kopt_ch_insert(c, stage, NULL, "Native", native, native_len, &err);
    free(native);
    if (r < 0) {
        agg_backup_say(why, why_len, "ClickHouse: insert of %s: %s", what, err.message);
        return r;
    }
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
