/* Archived and backed-up ClickHouse data in the object store: gzip'd Native
 * objects, fetched and checked against what their manifest or record says
 * (size, SHA-256, one whole gzip member) and loaded into a table with
 * INSERT ... FORMAT Native (docs/operations.md). Shared by the aggregator's
 * archive, backup and restore, and by the advisor's --include-archive. The
 * library kopt_archive; link kopt_archive_dep. Blocking. */
#ifndef KOPT_ARCHIVE_OBJECT_H
#define KOPT_ARCHIVE_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/objstore.h>

/* gzip in memory (a gzip wrapper, which ClickHouse and zcat read). */
int kopt_archive_gzip(const void *in, size_t len, unsigned char **out, size_t *out_len);
/* Refuses anything but one whole gzip member (-EBADMSG: truncated or
 * corrupt) and output beyond limit (-EFBIG). */
int kopt_archive_gunzip(const void *in, size_t len, size_t limit, unsigned char **out,
                        size_t *out_len);

/* GETs key and checks its size (UINT64_MAX: any) and SHA-256 (hex):
 * -EBADMSG, "corrupt or truncated", on a mismatch; the store's errors as
 * kopt_objstore_get. The reason, naming the key, goes to why (no secret).
 * *data malloc'd. */
int kopt_archive_get_verified(kopt_objstore_t *st, const char *key, uint64_t bytes, const char *sha,
                              char **data, size_t *len, char *why, size_t why_len);

/* Gunzips gz (at most limit bytes of Native; 0: 4 GiB) and inserts it into
 * `table` with FORMAT Native; flags as kopt_ch_insert_flags
 * (KOPT_CH_NO_DATABASE for a temporary table). -EBADMSG for a stream that
 * is not whole, -EFBIG, or kopt_ch_insert's errors; why names `what`. */
int kopt_archive_load_native(kopt_ch_client_t *c, const char *table, unsigned flags, const void *gz,
                             size_t gz_len, size_t limit, const char *what, char *why,
                             size_t why_len);

#endif
