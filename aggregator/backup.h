/* Backup and restore of the kopt ClickHouse database to an object store
 * (docs/operations.md): `kopt-aggregator backup` and `restore`.
 *
 * A backup is, under <prefix>/backups/<id>/: schema/<table>.sql (SHOW CREATE
 * TABLE), data/<table>/<partition_id>.native.gz (the partition as ClickHouse
 * Native, gzip'd) and, written last, manifest.json (rows, a checksum and the
 * SHA-256 of every object). Each partition is first copied into a staging
 * table with REPLACE PARTITION FROM (an atomic, hard-linked copy), so what
 * is read is a consistent snapshot of that partition even while the
 * aggregator writes. A backup without manifest.json is incomplete and never
 * restored. */
#ifndef AGG_BACKUP_H
#define AGG_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>
#include <kopt/objstore.h>

#define AGG_MANIFEST_FORMAT 1

typedef struct {
    char *partition_id; /* system.parts' partition_id */
    char *key;          /* object key of its data */
    uint64_t rows;
    uint64_t checksum; /* sum(cityHash64(*)) over the rows (FINAL for Replacing tables) */
    uint64_t bytes;    /* object size */
    char sha256[65];   /* of the object */
} agg_manifest_part_t;

typedef struct {
    char *name;
    char *schema_key;
    char schema_sha256[65];
    bool final; /* checksum and rows counted with FINAL */
    size_t n_parts;
    agg_manifest_part_t *parts;
} agg_manifest_table_t;

typedef struct {
    int format;
    char *id;       /* the backup's id, its directory name: 20261207T005500Z */
    char *database; /* the database it was taken from */
    char *server_version;
    uint32_t schema_version;         /* the highest migration recorded */
    int64_t started_at, finished_at; /* Unix seconds: the cut lies between them */
    size_t n_tables;
    agg_manifest_table_t *tables;
} agg_manifest_t;

/* backup_manifest.c: JSON (jansson). encode: *out malloc'd. parse: strict
 * (every field, identifiers, hex digests, keys inside the backup's own
 * directory under prefix); -EBADMSG with the reason in why on bad input. */
int agg_manifest_encode(const agg_manifest_t *m, char **out);
int agg_manifest_parse(const char *json, size_t len, const char *prefix, agg_manifest_t *m,
                       char *why, size_t why_len);
void agg_manifest_free(agg_manifest_t *m);

typedef struct {
    const char *prefix; /* object key prefix; NULL: "kopt" */
    const char *id;     /* NULL: the current UTC time, 20261207T005500Z */
} agg_backup_options_t;

typedef struct {
    char id[32];
    uint64_t tables, partitions, rows, bytes;
    double seconds;
} agg_backup_result_t;

/* Takes a backup of the client's database. On failure, removes the objects
 * it wrote (best effort; without a manifest they are never restored anyway)
 * and says why in why. Errors: those of kopt_ch_query / kopt_objstore_*. */
int agg_backup_run(kopt_ch_client_t *c, kopt_objstore_t *st, const agg_backup_options_t *opts,
                   agg_backup_result_t *res, char *why, size_t why_len);

typedef struct {
    char id[32];
    uint64_t tables, partitions, rows;
    double seconds;
} agg_restore_result_t;

/* Restores backup `id` (NULL or "latest": the newest with a manifest) into
 * the client's database, which must hold no rows in the backed-up tables
 * (-ENOTEMPTY otherwise). Verifies each object's size and SHA-256 before
 * inserting and each partition's rows and checksum after: -EBADMSG on a
 * mismatch, with the table and partition in why. */
int agg_restore_run(kopt_ch_client_t *c, kopt_objstore_t *st, const char *prefix, const char *id,
                    agg_restore_result_t *res, char *why, size_t why_len);

/* restore_replay.c: deletes the durable consumer so the next run replays
 * the stream from its start. 0 also when there was none. */
int agg_restore_replay(const char *nats_url, const char *stream, const char *consumer, char *why,
                       size_t why_len);

#endif
