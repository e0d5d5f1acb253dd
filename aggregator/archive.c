/* `kopt-aggregator archive` and the retention gate (archive.h). Exports and
 * read-back checks are backup_partition.c's, shared with backups. */
#include "archive.h"
#include "backup_internal.h"
#include "schema.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>

#define STAGE "_archive_" AGG_ARCHIVE_TABLE
#define VERIFY "_archive_verify_" AGG_ARCHIVE_TABLE
#define MAX_MANIFEST_BYTES (1u << 20)

static bool pid_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static int put(kopt_objstore_t *st, const char *key, const void *data, size_t len, char *why,
               size_t why_len)
{
    kopt_objstore_error_t err = {0};
    int r = kopt_objstore_put(st, key, data, len, &err);

    if (r < 0)
        agg_backup_say(why, why_len, "object store: %s: %s%s%s (HTTP %ld, %d attempts)", key,
                       err.code, err.code[0] ? ": " : "", err.message, err.http_status,
                       err.attempts);
    return r;
}

/* uint64 beyond JSON's safe integers: a decimal string, as in backups. */
static json_t *u64(uint64_t v)
{
    char b[24];

    snprintf(b, sizeof(b), "%" PRIu64, v);
    return json_string(b);
}

typedef struct {
    const char *db, *pid, *key, *server_version;
    const agg_export_t *x;
    uint32_t schema_version;
    int64_t min_key, max_key, archived_at;
} manifest_t;

static char *manifest_json(const manifest_t *m)
{
    json_t *o = json_object();
    char *s;

    if (!o)
        return NULL;
    json_object_set_new(o, "format", json_integer(AGG_ARCHIVE_FORMAT));
    json_object_set_new(o, "kind", json_string("kopt-archive"));
    json_object_set_new(o, "database", json_string(m->db));
    json_object_set_new(o, "table", json_string(AGG_ARCHIVE_TABLE));
    json_object_set_new(o, "partition_id", json_string(m->pid));
    json_object_set_new(o, "key", json_string(m->key));
    json_object_set_new(o, "encoding", json_string("Native+gzip"));
    json_object_set_new(o, "rows", u64(m->x->rows));
    json_object_set_new(o, "checksum", u64(m->x->checksum));
    json_object_set_new(o, "checksum_final", json_true());
    json_object_set_new(o, "bytes", u64(m->x->gz_len));
    json_object_set_new(o, "sha256", json_string(m->x->sha256));
    json_object_set_new(o, "schema_version", json_integer(m->schema_version));
    json_object_set_new(o, "server_version", json_string(m->server_version));
    json_object_set_new(o, "min_window_start", json_integer(m->min_key));
    json_object_set_new(o, "max_window_start", json_integer(m->max_key));
    json_object_set_new(o, "archived_at", json_integer(m->archived_at));
    s = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1));
    json_decref(o);
    return s;
}

/* Rows and checksum of the newest record of pid, and its objects.
 * archived_at has whole seconds: of two records made in one second either
 * may come back. That only errs on the safe side: a stale record makes
 * retention keep the partition (counted "changed") and the next archive run
 * write it again, a second later. */
typedef struct {
    bool found;
    uint64_t rows, checksum, bytes;
    char object_key[512], manifest_key[512], sha256[65], manifest_sha256[65];
} record_t;

static int newest_record(kopt_ch_client_t *c, const char *db, const char *pid, record_t *rec,
                         char *why, size_t why_len)
{
    char *body = NULL, ok[512], mk[512], sha[65], msha[65];
    int r = agg_backup_sql(c, &body, why, why_len,
                           "SELECT object_key, manifest_key, rows, checksum, bytes, sha256, "
                           "manifest_sha256 FROM %s.archive WHERE source_table = '%s' AND "
                           "partition_id = '%s' ORDER BY archived_at DESC LIMIT 1 FORMAT TSV",
                           db, AGG_ARCHIVE_TABLE, pid);

    memset(rec, 0, sizeof(*rec));
    if (r < 0)
        return r;
    if (body[0] && sscanf(body, "%511s\t%511s\t%" SCNu64 "\t%" SCNu64 "\t%" SCNu64 "\t%64s\t%64s",
                          ok, mk, &rec->rows, &rec->checksum, &rec->bytes, sha, msha) == 7) {
        rec->found = true;
        snprintf(rec->object_key, sizeof(rec->object_key), "%s", ok);
        snprintf(rec->manifest_key, sizeof(rec->manifest_key), "%s", mk);
        snprintf(rec->sha256, sizeof(rec->sha256), "%s", sha);
        snprintf(rec->manifest_sha256, sizeof(rec->manifest_sha256), "%s", msha);
    } else if (body[0]) {
        agg_backup_say(why, why_len, "ClickHouse: unexpected archive record for %s", pid);
        r = -EPROTO;
    }
    free(body);
    return r;
}

static int key_range(kopt_ch_client_t *c, const char *db, const char *pid, int64_t *min,
                     int64_t *max, char *why, size_t why_len)
{
    char *body = NULL;
    long long a = 0, b = 0;
    int r = agg_backup_sql(c, &body, why, why_len,
                           "SELECT toUInt32(min(window_start)), toUInt32(max(window_start)) FROM "
                           "%s.%s WHERE _partition_id = '%s' FORMAT TSV",
                           db, STAGE, pid);

    if (r < 0)
        return r;
    if (sscanf(body, "%lld\t%lld", &a, &b) != 2) {
        agg_backup_say(why, why_len, "ClickHouse: unexpected key range answer");
        r = -EPROTO;
    }
    *min = a;
    *max = b;
    free(body);
    return r;
}

/* Reads both objects back: the manifest byte for byte, the data by SHA-256
 * and then loaded and counted in the scratch table. */
static int read_back(kopt_ch_client_t *c, kopt_objstore_t *st, const char *db, const char *pid,
                     const char *key, const char *mkey, const char *json, const agg_export_t *x,
                     char *why, size_t why_len)
{
    char *data = NULL, what[600];
    size_t len = 0;
    kopt_objstore_error_t err = {0};
    int r = kopt_objstore_get(st, mkey, &data, &len, &err);

    if (r < 0) {
        agg_backup_say(why, why_len, "object store: reading back %s: %s (HTTP %ld)", mkey,
                       err.message, err.http_status);
        return r;
    }
    if (len != strlen(json) || memcmp(data, json, len) != 0) {
        agg_backup_say(why, why_len, "%s read back differs from what was written", mkey);
        r = -EBADMSG;
    }
    free(data);
    data = NULL;
    if (r == 0)
        r = kopt_archive_get_verified(st, key, x->gz_len, x->sha256, &data, &len, why, why_len);
    if (r == 0) {
        snprintf(what, sizeof(what), "archive %s", key);
        r = agg_backup_load(c, db, VERIFY, true, pid, data, len, x->rows, x->checksum, what, why,
                            why_len);
        agg_backup_sql(c, NULL, NULL, 0, "ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, VERIFY,
                       pid);
    }
    free(data);
    return r;
}

static int archive_partition(kopt_ch_client_t *c, kopt_objstore_t *st, const char *db,
                             const char *prefix, const char *server_version,
                             uint32_t schema_version, const char *pid, agg_archive_result_t *res,
                             char *why, size_t why_len)
{
    agg_export_t x = {0};
    record_t rec;
    uint64_t rows = 0, sum = 0;
    int64_t min_key = 0, max_key = 0, now = (int64_t)time(NULL);
    char stamp[32], key[600], mkey[640], msha[65], *json = NULL;
    bool wrote_data = false, wrote_manifest = false;
    struct tm tm;
    time_t tnow = (time_t)now;
    int r = newest_record(c, db, pid, &rec, why, why_len);

    /* Unchanged since its record: nothing to do, without exporting it. */
    if (r == 0)
        r = agg_backup_count(c, db, AGG_ARCHIVE_TABLE, true, pid, &rows, &sum, why, why_len);
    if (r < 0)
        return r;
    if (rec.found && rec.rows == rows && rec.checksum == sum) {
        res->unchanged++;
        return 0;
    }
    r = agg_backup_export(c, db, AGG_ARCHIVE_TABLE, STAGE, true, pid, &x, why, why_len);
    if (r == 0)
        r = key_range(c, db, pid, &min_key, &max_key, why, why_len);
    agg_backup_sql(c, NULL, NULL, 0, "ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, STAGE, pid);
    if (r < 0)
        goto out;
    /* A new name for every version of the partition: objects are write-once. */
    gmtime_r(&tnow, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(key, sizeof(key), "%s/archive/%s/%s/%s-%016" PRIx64 ".native.gz", prefix,
             AGG_ARCHIVE_TABLE, pid, stamp, x.checksum);
    snprintf(mkey, sizeof(mkey), "%.*s.manifest.json", (int)(strlen(key) - strlen(".native.gz")),
             key);
    manifest_t m = {db, pid, key, server_version, &x, schema_version, min_key, max_key, now};
    if (!(json = manifest_json(&m))) {
        r = -ENOMEM;
        goto out;
    }
    kopt_objstore_sha256_hex(json, strlen(json), msha);
    r = put(st, key, x.gz, x.gz_len, why, why_len);
    wrote_data = r == 0;
    if (r == 0)
        r = put(st, mkey, json, strlen(json), why, why_len);
    wrote_manifest = wrote_data && r == 0;
    if (r == 0)
        r = read_back(c, st, db, pid, key, mkey, json, &x, why, why_len);
    if (r == 0)
        r = agg_backup_sql(c, NULL, why, why_len,
                           "INSERT INTO %s.archive (source_table, partition_id, object_key, "
                           "manifest_key, rows, checksum, bytes, sha256, manifest_sha256, "
                           "schema_version, min_key, max_key, archived_at) VALUES ('%s', '%s', "
                           "'%s', '%s', %" PRIu64 ", %" PRIu64 ", %zu, '%s', '%s', %u, %lld, "
                           "%lld, %lld)",
                           db, AGG_ARCHIVE_TABLE, pid, key, mkey, x.rows, x.checksum, x.gz_len,
                           x.sha256, msha, schema_version, (long long)min_key, (long long)max_key,
                           (long long)now);
    if (r == 0) {
        res->partitions++;
        res->rows += x.rows;
        res->bytes += x.gz_len;
        if (rec.found)
            res->rearchived++;
        kopt_log_info("partition archived", KOPT_STR("table", AGG_ARCHIVE_TABLE),
                      KOPT_STR("partition", pid), KOPT_STR("object", key),
                      KOPT_UINT("rows", x.rows), KOPT_UINT("bytes", x.gz_len),
                      KOPT_STR("again", rec.found ? "yes" : "no"));
    }
out:
    if (r < 0) {
        /* Unrecorded objects are never trusted; remove them (best effort). */
        kopt_objstore_error_t ignored;

        if (wrote_manifest)
            kopt_objstore_delete(st, mkey, &ignored);
        if (wrote_data)
            kopt_objstore_delete(st, key, &ignored);
    }
    free(json);
    free(x.gz);
    return r;
}

int agg_archive_run(kopt_ch_client_t *c, kopt_objstore_t *st, const agg_archive_options_t *opts,
                    agg_archive_result_t *res, char *why, size_t why_len)
{
    const char *prefix = opts && opts->prefix ? opts->prefix : "kopt";
    uint32_t days = opts && opts->after_days ? opts->after_days : 30;
    int64_t now = opts && opts->now ? opts->now : (int64_t)time(NULL);
    const char *db = kopt_ch_database(c);
    kopt_ch_version_t v;
    kopt_ch_error_t cerr = {0};
    char *parts = NULL, *sv = NULL, **lines = NULL;
    size_t n = 0;
    uint32_t schema_version = 0;
    double t0 = agg_backup_now();
    int r;

    memset(res, 0, sizeof(*res));
    r = kopt_ch_server_version(c, &v, &cerr);
    if (r < 0) {
        agg_backup_say(why, why_len, "ClickHouse: %s", cerr.message);
        return r;
    }
    r = agg_backup_sql(c, &sv, why, why_len,
                       "SELECT max(version) FROM %s.schema_migrations FORMAT TSV", db);
    if (r == 0)
        schema_version = (uint32_t)strtoul(sv, NULL, 10);
    free(sv);
    if (r == 0 && schema_version < 10) {
        agg_backup_say(why, why_len, "database %s lacks the archive table: run migrate first", db);
        r = -ENOENT;
    }
    /* Partitions whose newest window_start is older than the cut-off. */
    if (r == 0)
        r = agg_backup_sql(c, &parts, why, why_len,
                           "SELECT partition_id FROM system.parts WHERE database = '%s' AND table "
                           "= '%s' AND active GROUP BY partition_id HAVING "
                           "toUInt32(max(max_time)) > 0 AND toUInt32(max(max_time)) < %lld ORDER "
                           "BY partition_id FORMAT TSV",
                           db, AGG_ARCHIVE_TABLE, (long long)(now - (int64_t)days * 86400));
    if (r == 0)
        r = agg_backup_lines(parts, &lines, &n);
    static const char *const scratch[] = {STAGE, VERIFY};
    for (size_t i = 0; r == 0 && i < 2; i++) {
        r = agg_backup_sql(c, NULL, why, why_len, "DROP TABLE IF EXISTS %s.%s", db, scratch[i]);
        if (r == 0)
            r = agg_backup_sql(c, NULL, why, why_len, "CREATE TABLE %s.%s AS %s.%s", db, scratch[i],
                               db, AGG_ARCHIVE_TABLE);
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (!pid_ok(lines[i])) {
            agg_backup_say(why, why_len, "unexpected partition id in system.parts");
            r = -EPROTO;
            break;
        }
        r = archive_partition(c, st, db, prefix, v.text, schema_version, lines[i], res, why,
                              why_len);
    }
    agg_backup_sql(c, NULL, NULL, 0, "DROP TABLE IF EXISTS %s.%s", db, STAGE);
    agg_backup_sql(c, NULL, NULL, 0, "DROP TABLE IF EXISTS %s.%s", db, VERIFY);
    free(lines);
    free(parts);
    res->seconds = agg_backup_now() - t0;
    return r;
}

/* GETs key and compares its SHA-256 (and size, when bytes is given). */
static int intact(kopt_objstore_t *st, const char *key, uint64_t bytes, const char *sha, char *why,
                  size_t why_len)
{
    char *data = NULL;
    size_t len = 0;
    int r = kopt_archive_get_verified(st, key, bytes, sha, &data, &len, why, why_len);

    free(data);
    return r;
}

int agg_archive_gate(void *ctx, kopt_ch_client_t *c, const char *table, const char *pid)
{
    agg_archive_gate_t *g = ctx;
    const char *db = kopt_ch_database(c);
    record_t rec;
    uint64_t rows = 0, sum = 0;
    char why[512] = "";
    int r;

    if (strcmp(table, AGG_ARCHIVE_TABLE) != 0)
        return 0;
    r = newest_record(c, db, pid, &rec, why, sizeof(why));
    if (r == 0 && !rec.found) {
        g->unarchived++;
        if (g->kept_unarchived)
            kopt_metric_counter_inc(g->kept_unarchived);
        kopt_log_info("retention keeps a partition not archived yet", KOPT_STR("table", table),
                      KOPT_STR("partition", pid));
        return -EAGAIN;
    }
    if (r == 0)
        r = agg_backup_count(c, db, table, true, pid, &rows, &sum, why, sizeof(why));
    if (r == 0 && (rows != rec.rows || sum != rec.checksum)) {
        g->changed++;
        if (g->kept_changed)
            kopt_metric_counter_inc(g->kept_changed);
        kopt_log_warn("retention keeps a partition that changed after it was archived; the next "
                      "archive run archives it again",
                      KOPT_STR("table", table), KOPT_STR("partition", pid), KOPT_UINT("rows", rows),
                      KOPT_UINT("archived_rows", rec.rows));
        return -EAGAIN;
    }
    if (r == 0)
        r = intact(g->st, rec.object_key, rec.bytes, rec.sha256, why, sizeof(why));
    if (r == 0)
        r = intact(g->st, rec.manifest_key, UINT64_MAX, rec.manifest_sha256, why, sizeof(why));
    if (r < 0) {
        g->unverified++;
        if (g->kept_unverified)
            kopt_metric_counter_inc(g->kept_unverified);
        kopt_log_warn("retention keeps a partition whose archive cannot be verified",
                      KOPT_STR("table", table), KOPT_STR("partition", pid), KOPT_STR("reason", why),
                      KOPT_ERR(r));
        return -EAGAIN;
    }
    g->dropped++;
    return 0;
}
