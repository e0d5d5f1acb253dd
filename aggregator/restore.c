/* `kopt-aggregator restore`: rebuilds an empty kopt database from a backup
 * (backup.h). Nothing is inserted before its object matched the manifest
 * (size, SHA-256, a whole gzip member), and each partition's rows and
 * checksum are compared after the insert. On any failure the tables this
 * restore filled are truncated again, so the database is as empty as it
 * was: a restore either completes or leaves nothing. */
#include "backup.h"
#include "backup_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>

#define MAX_MANIFEST_BYTES (64u << 20)

/* "latest": the newest backup id under prefix that has a manifest. */
static int find_latest(kopt_objstore_t *st, const char *prefix, char *id, size_t id_len, char *why,
                       size_t why_len)
{
    char dir[512];
    kopt_objstore_entry_t *e = NULL;
    kopt_objstore_error_t err = {0};
    size_t n = 0;
    int r;

    snprintf(dir, sizeof(dir), "%s/backups/", prefix);
    r = kopt_objstore_list(st, dir, &e, &n, &err);
    if (r < 0) {
        agg_backup_say(why, why_len, "object store: listing %s: %s", dir, err.message);
        return r;
    }
    id[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *rest = e[i].key + strlen(dir);
        const char *slash = strchr(rest, '/');

        if (!slash || strcmp(slash, "/manifest.json") != 0 || (size_t)(slash - rest) >= id_len)
            continue;
        if (strncmp(rest, id, (size_t)(slash - rest)) > 0 || !id[0]) {
            memcpy(id, rest, (size_t)(slash - rest));
            id[slash - rest] = '\0';
        }
    }
    kopt_objstore_entries_free(e, n);
    if (!id[0]) {
        agg_backup_say(why, why_len, "no complete backup (with manifest.json) under %s", dir);
        return -ENOENT;
    }
    return 0;
}

/* The saved CREATE TABLE for the target database, IF NOT EXISTS. 18.16
 * writes "CREATE TABLE db.t (...", newer servers put a newline after the
 * name: any space or the parenthesis may follow it. */
static int rewrite_schema(const char *sql, const char *from_db, const char *to_db,
                          const char *table, char **out)
{
    char head[200];
    size_t hl;

    snprintf(head, sizeof(head), "CREATE TABLE %s.%s", from_db, table);
    hl = strlen(head);
    if (strncmp(sql, head, hl) != 0 || !(isspace((unsigned char)sql[hl]) || sql[hl] == '('))
        return -EBADMSG;
    return asprintf(out, "CREATE TABLE IF NOT EXISTS %s.%s %s", to_db, table, sql + hl) < 0
               ? -ENOMEM
               : 0;
}

/* Into the staging table first, checked there (it holds this partition
 * only, so the check reads little), then attached to the table: a partition
 * appears whole or not at all. */
static int restore_partition(kopt_ch_client_t *c, kopt_objstore_t *st, const char *db,
                             const agg_manifest_table_t *t, const char *stage,
                             const agg_manifest_part_t *p, char *why, size_t why_len)
{
    char *gz = NULL, what[256];
    size_t gz_len = 0;
    int r = kopt_archive_get_verified(st, p->key, p->bytes, p->sha256, &gz, &gz_len, why, why_len);

    if (r < 0)
        return r;
    snprintf(what, sizeof(what), "%s partition %s (%s)", t->name, p->partition_id, p->key);
    r = agg_backup_load(c, db, stage, t->final, p->partition_id, gz, gz_len, p->rows, p->checksum,
                        what, why, why_len);
    free(gz);
    if (r == 0)
        r = agg_backup_sql(c, NULL, why, why_len,
                           "ALTER TABLE %s.%s ATTACH PARTITION ID '%s' FROM %s.%s", db, t->name,
                           p->partition_id, db, stage);
    agg_backup_sql(c, NULL, NULL, 0, "ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, stage,
                   p->partition_id);
    return r;
}

int agg_restore_run(kopt_ch_client_t *c, kopt_objstore_t *st, const char *prefix, const char *id,
                    agg_restore_result_t *res, char *why, size_t why_len)
{
    const char *db = kopt_ch_database(c);
    agg_manifest_t m;
    char key[600], *json = NULL;
    size_t json_len = 0, touched = 0;
    kopt_ch_error_t cerr = {0};
    double t0 = agg_backup_now();
    int r;

    memset(res, 0, sizeof(*res));
    prefix = prefix ? prefix : "kopt";
    if (!id || !*id || strcmp(id, "latest") == 0) {
        r = find_latest(st, prefix, res->id, sizeof(res->id), why, why_len);
        if (r < 0)
            return r;
    } else {
        snprintf(res->id, sizeof(res->id), "%s", id);
    }
    snprintf(key, sizeof(key), "%s/backups/%s/manifest.json", prefix, res->id);
    {
        kopt_objstore_error_t err = {0};

        r = kopt_objstore_get(st, key, &json, &json_len, &err);
        if (r < 0) {
            agg_backup_say(why, why_len, "object store: %s: %s (HTTP %ld)", key, err.message,
                           err.http_status);
            return r;
        }
    }
    if (json_len > MAX_MANIFEST_BYTES) {
        free(json);
        agg_backup_say(why, why_len, "%s: larger than %u bytes", key, MAX_MANIFEST_BYTES);
        return -EBADMSG;
    }
    r = agg_manifest_parse(json, json_len, prefix, &m, why, why_len);
    free(json);
    if (r < 0)
        return r;
    if (strcmp(m.id, res->id) != 0) {
        agg_backup_say(why, why_len, "%s: names backup %s", key, m.id);
        agg_manifest_free(&m);
        return -EBADMSG;
    }

    /* Only into an empty database: a restore never merges into live data. */
    {
        char *sql = NULL, *body = NULL;

        if (asprintf(&sql, "CREATE DATABASE IF NOT EXISTS %s", db) < 0) {
            agg_manifest_free(&m);
            return -ENOMEM;
        }
        r = kopt_ch_query_flags(c, sql, KOPT_CH_NO_DATABASE, NULL, NULL, &cerr);
        free(sql);
        if (r < 0)
            agg_backup_say(why, why_len, "ClickHouse: %s", cerr.message);
        if (r == 0)
            r = agg_backup_sql(c, &body, why, why_len,
                               "SELECT count() FROM system.parts WHERE database = '%s' AND "
                               "active AND rows > 0 AND substring(table, 1, 1) != '_' AND table != "
                               "'schema_migrations' FORMAT TSV",
                               db);
        if (r == 0 && strtoull(body, NULL, 10) != 0) {
            agg_backup_say(why, why_len,
                           "database %s holds data: restore wants it empty (drop it first)", db);
            r = -ENOTEMPTY;
        }
        free(body);
        if (r < 0) {
            agg_manifest_free(&m);
            return r;
        }
    }

    for (size_t i = 0; r == 0 && i < m.n_tables; i++) {
        const agg_manifest_table_t *t = &m.tables[i];
        char *schema = NULL, *create = NULL;
        size_t schema_len = 0;

        r = kopt_archive_get_verified(st, t->schema_key, UINT64_MAX, t->schema_sha256, &schema,
                                      &schema_len, why, why_len);
        if (r < 0)
            break;
        r = rewrite_schema(schema, m.database, db, t->name, &create);
        free(schema);
        if (r == -EBADMSG)
            agg_backup_say(why, why_len, "%s is not CREATE TABLE %s.%s", t->schema_key, m.database,
                           t->name);
        if (r == 0)
            r = agg_backup_sql(c, NULL, why, why_len, "%s", create);
        free(create);
        touched = i + 1;
        /* A server started before the restore may have recorded its own
         * migrations; the backup's record replaces them. */
        if (r == 0 && strcmp(t->name, "schema_migrations") == 0)
            r = agg_backup_sql(c, NULL, why, why_len, "TRUNCATE TABLE %s.%s", db, t->name);
        char stage[96];
        snprintf(stage, sizeof(stage), "_restore_%.60s", t->name);
        if (r == 0)
            r = agg_backup_sql(c, NULL, why, why_len, "DROP TABLE IF EXISTS %s.%s", db, stage);
        if (r == 0)
            r = agg_backup_sql(c, NULL, why, why_len, "CREATE TABLE %s.%s AS %s.%s", db, stage, db,
                               t->name);
        for (size_t k = 0; r == 0 && k < t->n_parts; k++) {
            r = restore_partition(c, st, db, t, stage, &t->parts[k], why, why_len);
            if (r == 0) {
                res->partitions++;
                res->rows += t->parts[k].rows;
            }
        }
        agg_backup_sql(c, NULL, NULL, 0, "DROP TABLE IF EXISTS %s.%s", db, stage);
        if (r == 0)
            res->tables++;
    }
    if (r < 0) {
        for (size_t i = 0; i < touched; i++)
            agg_backup_sql(c, NULL, NULL, 0, "TRUNCATE TABLE IF EXISTS %s.%s", db,
                           m.tables[i].name);
        kopt_log_error("restore failed; the tables it filled are empty again",
                       KOPT_STR("backup", res->id), KOPT_STR("reason", why ? why : ""),
                       KOPT_ERR(r));
    }
    agg_manifest_free(&m);
    res->seconds = agg_backup_now() - t0;
    return r;
}
