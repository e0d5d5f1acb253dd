/* `kopt-aggregator backup`: every MergeTree table of the kopt database,
 * partition by partition, to the object store, then the manifest. backup.h
 * says what lands where; docs/operations.md why it reads through SQL
 * (SELECT ... FORMAT Native) rather than FREEZE's shadow/ files. */
#include "backup.h"
#include "backup_internal.h"
#include "schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <kopt/log.h>

void agg_backup_say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!why || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

double agg_backup_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int agg_backup_sql(kopt_ch_client_t *c, char **body, char *why, size_t why_len, const char *fmt,
                   ...)
{
    va_list ap;
    char *sql = NULL;
    kopt_ch_error_t err = {0};
    int r;

    va_start(ap, fmt);
    r = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    r = kopt_ch_query(c, sql, body, NULL, &err);
    if (r < 0)
        agg_backup_say(why, why_len, "ClickHouse: %s (for: %.80s)", err.message, sql);
    free(sql);
    return r;
}

int agg_backup_sql_len(kopt_ch_client_t *c, char **body, size_t *len, char *why, size_t why_len,
                       const char *sql)
{
    kopt_ch_error_t err = {0};
    int r = kopt_ch_query(c, sql, body, len, &err);

    if (r < 0)
        agg_backup_say(why, why_len, "ClickHouse: %s (for: %.80s)", err.message, sql);
    return r;
}

int agg_backup_count(kopt_ch_client_t *c, const char *db, const char *table, bool final,
                     const char *partition_id, uint64_t *rows, uint64_t *checksum, char *why,
                     size_t why_len)
{
    char *body = NULL;
    int r = agg_backup_sql(c, &body, why, why_len,
                           "SELECT count(), sum(cityHash64(*)) FROM %s.%s%s WHERE _partition_id = "
                           "'%s' FORMAT TSV",
                           db, table, final ? " FINAL" : "", partition_id);

    if (r < 0)
        return r;
    if (sscanf(body, "%" SCNu64 "\t%" SCNu64, rows, checksum) != 2) {
        agg_backup_say(why, why_len, "ClickHouse: unexpected count answer for %s", table);
        r = -EPROTO;
    }
    free(body);
    return r;
}

/* Tab-separated lines of a TSV answer, split in place. */
int agg_backup_lines(char *body, char ***lines, size_t *n)
{
    size_t cap = 0;

    *lines = NULL;
    *n = 0;
    for (char *save = NULL, *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **g = realloc(*lines, nc * sizeof(*g));

            if (!g) {
                free(*lines);
                *lines = NULL;
                return -ENOMEM;
            }
            *lines = g;
            cap = nc;
        }
        (*lines)[(*n)++] = l;
    }
    return 0;
}

/* The keys written so far, removed again if the backup fails. */
typedef struct {
    char **keys;
    size_t n, cap;
} written_t;

static int remember(written_t *w, const char *key)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 32;
        char **g = realloc(w->keys, nc * sizeof(*g));

        if (!g)
            return -ENOMEM;
        w->keys = g;
        w->cap = nc;
    }
    w->keys[w->n] = strdup(key);
    return w->keys[w->n++] ? 0 : -ENOMEM;
}

static int put(kopt_objstore_t *st, written_t *w, const char *key, const void *data, size_t len,
               char *why, size_t why_len)
{
    kopt_objstore_error_t err = {0};
    int r = kopt_objstore_put(st, key, data, len, &err);

    if (r < 0) {
        agg_backup_say(why, why_len, "object store: %s: %s%s%s (HTTP %ld, %d attempts)", key,
                       err.code, err.code[0] ? ": " : "", err.message, err.http_status,
                       err.attempts);
        return r;
    }
    return remember(w, key);
}

static int backup_partition(kopt_ch_client_t *c, kopt_objstore_t *st, written_t *w, const char *db,
                            const char *dir, agg_manifest_table_t *t, const char *stage,
                            const char *pid, char *why, size_t why_len)
{
    agg_manifest_part_t *p = &t->parts[t->n_parts];
    agg_export_t x = {0};
    int r;

    memset(p, 0, sizeof(*p));
    for (const char *x = pid; *x; x++)
        if (!((*x >= '0' && *x <= '9') || (*x >= 'a' && *x <= 'z') || (*x >= 'A' && *x <= 'Z') ||
              *x == '-' || *x == '_')) {
            agg_backup_say(why, why_len, "table %s: unexpected partition id", t->name);
            return -EPROTO;
        }
    p->partition_id = strdup(pid);
    if (!p->partition_id || asprintf(&p->key, "%sdata/%s/%s.native.gz", dir, t->name, pid) < 0) {
        free(p->partition_id);
        return -ENOMEM;
    }
    t->n_parts++;
    r = agg_backup_export(c, db, t->name, stage, t->final, pid, &x, why, why_len);
    if (r == 0) {
        p->rows = x.rows;
        p->checksum = x.checksum;
        p->bytes = x.gz_len;
        memcpy(p->sha256, x.sha256, sizeof(p->sha256));
        r = put(st, w, p->key, x.gz, x.gz_len, why, why_len);
    }
    if (r == 0)
        r = agg_backup_sql(c, NULL, why, why_len, "ALTER TABLE %s.%s DROP PARTITION ID '%s'", db,
                           stage, pid);
    free(x.gz);
    return r;
}

static int backup_table(kopt_ch_client_t *c, kopt_objstore_t *st, written_t *w, const char *db,
                        const char *dir, agg_manifest_table_t *t, agg_backup_result_t *res,
                        char *why, size_t why_len)
{
    char *schema = NULL, *parts = NULL, **lines = NULL, stage[96];
    size_t n = 0;
    int r;

    snprintf(stage, sizeof(stage), "_backup_%.60s", t->name);
    r = agg_backup_sql(c, &schema, why, why_len, "SHOW CREATE TABLE %s.%s FORMAT TSVRaw", db,
                       t->name);
    if (r < 0)
        return r;
    size_t sl = strlen(schema);
    while (sl > 0 && schema[sl - 1] == '\n')
        schema[--sl] = '\0';
    if (asprintf(&t->schema_key, "%sschema/%s.sql", dir, t->name) < 0) {
        free(schema);
        return -ENOMEM;
    }
    kopt_objstore_sha256_hex(schema, sl, t->schema_sha256);
    r = put(st, w, t->schema_key, schema, sl, why, why_len);
    free(schema);
    if (r < 0)
        return r;

    r = agg_backup_sql(c, &parts, why, why_len,
                       "SELECT partition_id FROM system.parts WHERE database = '%s' AND table = "
                       "'%s' AND active GROUP BY partition_id ORDER BY partition_id FORMAT TSV",
                       db, t->name);
    if (r == 0)
        r = agg_backup_lines(parts, &lines, &n);
    if (r == 0 && !(t->parts = calloc(n + 1, sizeof(*t->parts))))
        r = -ENOMEM;
    if (r == 0)
        r = agg_backup_sql(c, NULL, why, why_len, "DROP TABLE IF EXISTS %s.%s", db, stage);
    if (r == 0)
        r = agg_backup_sql(c, NULL, why, why_len, "CREATE TABLE %s.%s AS %s.%s", db, stage, db,
                           t->name);
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = backup_partition(c, st, w, db, dir, t, stage, lines[i], why, why_len);
        if (r == 0) {
            res->partitions++;
            res->rows += t->parts[t->n_parts - 1].rows;
            res->bytes += t->parts[t->n_parts - 1].bytes;
        }
    }
    agg_backup_sql(c, NULL, NULL, 0, "DROP TABLE IF EXISTS %s.%s", db, stage);
    free(lines);
    free(parts);
    return r;
}

int agg_backup_run(kopt_ch_client_t *c, kopt_objstore_t *st, const agg_backup_options_t *opts,
                   agg_backup_result_t *res, char *why, size_t why_len)
{
    const char *prefix = opts && opts->prefix ? opts->prefix : "kopt";
    const char *db = kopt_ch_database(c);
    agg_manifest_t m = {.format = AGG_MANIFEST_FORMAT};
    written_t w = {0};
    kopt_ch_version_t v;
    kopt_ch_error_t cerr = {0};
    char id[32], dir[512], *tables = NULL, *sv = NULL, **lines = NULL, *json = NULL;
    size_t n = 0;
    double t0 = agg_backup_now();
    int r;

    memset(res, 0, sizeof(*res));
    m.started_at = (int64_t)time(NULL);
    if (opts && opts->id) {
        snprintf(id, sizeof(id), "%s", opts->id);
    } else {
        struct tm tm;
        time_t now = (time_t)m.started_at;

        gmtime_r(&now, &tm);
        strftime(id, sizeof(id), "%Y%m%dT%H%M%SZ", &tm);
    }
    snprintf(dir, sizeof(dir), "%s/backups/%s/", prefix, id);
    snprintf(res->id, sizeof(res->id), "%s", id);
    m.id = id;
    m.database = (char *)db;

    r = kopt_ch_server_version(c, &v, &cerr);
    if (r < 0) {
        agg_backup_say(why, why_len, "ClickHouse: %s", cerr.message);
        return r;
    }
    m.server_version = v.text;
    /* A backup of the same id that already has a manifest is complete. */
    {
        char mkey[600];
        uint64_t size;
        kopt_objstore_error_t oerr = {0};

        snprintf(mkey, sizeof(mkey), "%smanifest.json", dir);
        r = kopt_objstore_head(st, mkey, &size, NULL, &oerr);
        if (r == 0) {
            agg_backup_say(why, why_len, "backup %s exists already", id);
            return -EEXIST;
        }
        if (r != -ENOENT) {
            agg_backup_say(why, why_len, "object store: %s (HTTP %ld)", oerr.message,
                           oerr.http_status);
            return r;
        }
    }
    r = agg_backup_sql(c, &sv, why, why_len,
                       "SELECT max(version) FROM %s.schema_migrations FORMAT TSV", db);
    if (r == 0)
        m.schema_version = (uint32_t)strtoul(sv, NULL, 10);
    free(sv);
    if (r == 0)
        r = agg_backup_sql(c, &tables, why, why_len,
                           "SELECT name, engine FROM system.tables WHERE database = '%s' AND "
                           "engine LIKE '%%MergeTree' ORDER BY name FORMAT TSV",
                           db);
    if (r == 0)
        r = agg_backup_lines(tables, &lines, &n);
    if (r == 0 && !(m.tables = calloc(n + 1, sizeof(*m.tables))))
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        char *tab = strchr(lines[i], '\t');

        if (!tab || strncmp(lines[i], "_backup_", 8) == 0 ||
            strncmp(lines[i], "_restore_", 9) == 0 || strncmp(lines[i], "_archive_", 9) == 0)
            continue; /* a staging table of a backup that died */
        *tab = '\0';
        if (!kopt_ch_identifier_ok(lines[i]))
            continue; /* not a name kopt made */
        agg_manifest_table_t *t = &m.tables[m.n_tables++];

        t->name = strdup(lines[i]);
        if (!t->name) {
            r = -ENOMEM;
            break;
        }
        t->final = strncmp(tab + 1, "Replacing", 9) == 0;
        r = backup_table(c, st, &w, db, dir, t, res, why, why_len);
        if (r == 0)
            res->tables++;
    }
    m.finished_at = (int64_t)time(NULL);
    if (r == 0)
        r = agg_manifest_encode(&m, &json);
    if (r == 0) {
        char mkey[600];

        snprintf(mkey, sizeof(mkey), "%smanifest.json", dir);
        r = put(st, &w, mkey, json, strlen(json), why, why_len);
    }
    if (r < 0) {
        /* Without a manifest nothing here is ever restored; remove it anyway. */
        for (size_t i = 0; i < w.n; i++) {
            kopt_objstore_error_t ignored;

            kopt_objstore_delete(st, w.keys[i], &ignored);
        }
        kopt_log_error("backup failed; its objects removed", KOPT_STR("backup", id),
                       KOPT_STR("reason", why ? why : ""), KOPT_ERR(r));
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.keys[i]);
    free(w.keys);
    free(json);
    free(lines);
    free(tables);
    m.id = m.database = m.server_version = NULL; /* not owned */
    agg_manifest_free(&m);
    res->seconds = agg_backup_now() - t0;
    return r;
}
