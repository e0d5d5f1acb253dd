/* --include-archive (docs/operations.md, "Cold archive"): the UTC days of a
 * scope that container_hourly lacks but <db>.archive holds as archived
 * container_windows partitions are fetched from the object store, checked
 * against their record (size, SHA-256, one whole gzip member), loaded into a
 * TEMPORARY table of one ClickHouse HTTP session and rolled up there, with
 * libkopt's rollup statement, into a temporary table of container_hourly's
 * columns, which hourly_read.c reads beside container_hourly. Temporary
 * tables live in their session only (docs/stack-facts.md), so everything
 * after the first cheap queries goes through one client: one query at a
 * time. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <kopt/archive_object.h>
#include <kopt/log.h>
#include <kopt/rollup_sql.h>
#include <kopt/rowbinary.h>
#include <kopt/util.h>

#include "advisor.h"

#define WINDOWS "kopt_archive_windows"
#define SESSION_IDLE_S 600 /* the server ends a session idle this long */

static const char *const result_names[ADV_ARCHIVE_RESULTS] = {
    "ok", "missing", "corrupt", "store_error", "clickhouse_error", "limit"};

const char *adv_archive_result_name(int result)
{
    return result >= 0 && result < ADV_ARCHIVE_RESULTS ? result_names[result] : "";
}

static void count(const adv_archive_t *a, int result)
{
    if (a->loads[result])
        kopt_metric_counter_inc(a->loads[result]);
}

typedef struct {
    char *pid, *key, *sha;
    uint64_t bytes;
    uint32_t min_key, max_key, archived_at;
} record_t;

static void records_free(record_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].pid);
        free(v[i].key);
        free(v[i].sha);
    }
    free(v);
}

static void say(kopt_ch_error_t *err, int r, const char *fmt, const char *a, const char *b)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
    err->r = r;
    err->cls = KOPT_CH_PERMANENT;
    snprintf(err->message, sizeof(err->message), fmt, a, b);
}

static void where_scope(FILE *q, const adv_scope_t *s)
{
    if (s->cluster && *s->cluster) {
        fputs(" AND cluster = ", q);
        kopt_ch_sql_string(q, s->cluster);
    }
    if (s->namespace_ && *s->namespace_) {
        fputs(" AND namespace = ", q);
        kopt_ch_sql_string(q, s->namespace_);
    }
}

/* Runs sql and frees it. */
static int query(kopt_ch_client_t *ch, char *sql, char **body, size_t *len, kopt_ch_error_t *err)
{
    int r = kopt_ch_query(ch, sql, body, len, err);

    free(sql);
    return r;
}

/* The UTC days (Unix day numbers) of the scope that container_hourly has
 * rows of, as a sorted array. */
static int hot_days(kopt_ch_client_t *ch, const adv_scope_t *s, uint32_t **days, size_t *n,
                    kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL;
    size_t sql_len = 0, len = 0, cap = 0;
    FILE *q = open_memstream(&sql, &sql_len);
    kopt_ch_reader_t in;
    int r;

    *days = NULL;
    *n = 0;
    if (!q)
        return -ENOMEM;
    fprintf(q,
            "SELECT DISTINCT toUInt32(intDiv(toUInt32(hour), 86400)) AS d FROM %s.container_hourly "
            "WHERE hour >= toDateTime(%lld) AND hour < toDateTime(%lld)",
            kopt_ch_database(ch), (long long)s->from, (long long)s->to);
    where_scope(q, s);
    fputs(" ORDER BY d FORMAT RowBinary", q);
    if (fclose(q) != 0) {
        free(sql);
        return -ENOMEM;
    }
    r = query(ch, sql, &body, &len, err);
    kopt_ch_reader_init(&in, body, r == 0 ? len : 0);
    while (r == 0 && kopt_ch_reader_left(&in) >= 4) {
        if (kopt_grow_array((void **)days, &cap, *n + 1, sizeof(**days)) < 0)
            r = -ENOMEM;
        else
            (*days)[(*n)++] = kopt_ch_get_u32(&in);
    }
    if (r == 0 && kopt_ch_reader_left(&in) != 0) {
        say(err, -EBADMSG, "unexpected container_hourly day%s%s", "", "");
        r = -EBADMSG;
    }
    free(body);
    return r;
}

static bool has_day(const uint32_t *days, size_t n, uint32_t d)
{
    for (size_t i = 0; i < n; i++)
        if (days[i] == d)
            return true;
    return false;
}

/* The newest record of every archived container_windows partition that
 * overlaps the scope and has a day in it that container_hourly lacks. */
static int needed(kopt_ch_client_t *ch, const adv_scope_t *s, const uint32_t *hot, size_t n_hot,
                  record_t **out, size_t *n, kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL;
    size_t len = 0, cap = 0;
    kopt_ch_reader_t in;
    int r;

    *out = NULL;
    *n = 0;
    if (asprintf(&sql,
                 "SELECT partition_id, argMax(object_key, archived_at), argMax(sha256, "
                 "archived_at), argMax(bytes, archived_at), toUInt32(argMax(min_key, "
                 "archived_at)) AS lo, toUInt32(argMax(max_key, archived_at)) AS hi, "
                 "toUInt32(max(archived_at)) FROM %s.archive WHERE source_table = "
                 "'container_windows' GROUP BY partition_id HAVING hi >= %lld AND lo < %lld "
                 "ORDER BY partition_id FORMAT RowBinary",
                 kopt_ch_database(ch), (long long)s->from, (long long)s->to) < 0)
        return -ENOMEM;
    r = query(ch, sql, &body, &len, err);
    if (r < 0 && err && err->code == 60) /* UNKNOWN_TABLE */
        snprintf(err->message, sizeof(err->message),
                 "no %s.archive table: the aggregator has not migrated to the cold archive",
                 kopt_ch_database(ch));
    kopt_ch_reader_init(&in, body, r == 0 ? len : 0);
    while (r == 0 && kopt_ch_reader_left(&in) > 0) {
        record_t rec = {0};
        bool want = false;

        r = kopt_ch_get_strdup(&in, &rec.pid);
        if (r == 0)
            r = kopt_ch_get_strdup(&in, &rec.key);
        if (r == 0)
            r = kopt_ch_get_strdup(&in, &rec.sha);
        rec.bytes = kopt_ch_get_u64(&in);
        rec.min_key = kopt_ch_get_u32(&in);
        rec.max_key = kopt_ch_get_u32(&in);
        rec.archived_at = kopt_ch_get_u32(&in);
        if (r == 0)
            r = kopt_ch_reader_status(&in);
        for (int64_t d = rec.min_key / 86400; r == 0 && d <= rec.max_key / 86400; d++)
            if ((d + 1) * 86400 > s->from && d * 86400 < s->to && !has_day(hot, n_hot, (uint32_t)d))
                want = true;
        if (r == 0 && want && kopt_grow_array((void **)out, &cap, *n + 1, sizeof(**out)) < 0)
            r = -ENOMEM;
        if (r == 0 && want) {
            (*out)[(*n)++] = rec;
            continue;
        }
        free(rec.pid);
        free(rec.key);
        free(rec.sha);
        if (r == -EBADMSG)
            say(err, r, "unexpected archive record%s%s", "", "");
    }
    free(body);
    return r;
}

static int sql_run(kopt_ch_client_t *c, const char *sql, kopt_ch_error_t *err)
{
    return kopt_ch_query_flags(c, sql, KOPT_CH_NO_DATABASE, NULL, NULL, err);
}

/* A partition id is toYYYYMMDD(window_start): digits only. */
static bool pid_ok(const char *pid)
{
    size_t n = strlen(pid);

    for (size_t i = 0; i < n; i++)
        if (pid[i] < '0' || pid[i] > '9')
            return false;
    return n == 8;
}

/* One archived partition: fetched, verified, loaded, rolled up into the
 * session's hourly table, and the windows emptied again (so the server
 * holds one day of windows at a time). The result for the metric. */
static int load_one(kopt_ch_client_t *s, kopt_objstore_t *st, const adv_archive_t *a,
                    const adv_scope_t *scope, const record_t *rec, char *why, size_t why_len,
                    int *result)
{
    char *data = NULL, *src = NULL, *where = NULL, *sql = NULL, rolled[48], what[640];
    size_t len = 0, where_len = 0;
    kopt_ch_error_t cerr = {0};
    FILE *w;
    int r;

    *result = ADV_ARCHIVE_CORRUPT;
    if (!pid_ok(rec->pid) || strncmp(rec->key, a->prefix, strlen(a->prefix)) != 0 ||
        strncmp(rec->key + strlen(a->prefix), "/archive/", 9) != 0) {
        snprintf(why, why_len,
                 "record names %s, not an archive object under the prefix %s of --object-store-url",
                 rec->key, a->prefix);
        return -EBADMSG;
    }
    r = kopt_archive_get_verified(st, rec->key, rec->bytes, rec->sha, &data, &len, why, why_len);
    if (r < 0) {
        *result = r == -EBADMSG  ? ADV_ARCHIVE_CORRUPT
                  : r == -ENOENT ? ADV_ARCHIVE_MISSING
                                 : ADV_ARCHIVE_STORE;
        return r;
    }
    snprintf(what, sizeof(what), "archive %s", rec->key);
    r = kopt_archive_load_native(s, WINDOWS, KOPT_CH_NO_DATABASE, data, len, a->max_native_bytes,
                                 what, why, why_len);
    free(data);
    if (r < 0) {
        *result = r == -EBADMSG || r == -EFBIG ? ADV_ARCHIVE_CORRUPT : ADV_ARCHIVE_CLICKHOUSE;
        return r;
    }
    /* FINAL's work on a Memory table: the newest inserted_at of each key of
     * container_windows' ReplacingMergeTree. */
    if (asprintf(&src,
                 "(SELECT * FROM " WINDOWS " WHERE toYYYYMMDD(window_start) = %s ORDER BY "
                 "inserted_at DESC LIMIT 1 BY cluster, namespace, workload_kind, workload_name, "
                 "pod, container, window_start)",
                 rec->pid) < 0)
        src = NULL;
    w = open_memstream(&where, &where_len);
    if (w) {
        fputs("1", w);
        where_scope(w, scope);
        if (fclose(w) != 0) {
            free(where);
            where = NULL;
        }
    }
    snprintf(rolled, sizeof(rolled), "toDateTime(%" PRIu32 ")", rec->archived_at);
    kopt_rollup_query_t q = {
        .target = ADV_ARCHIVE_HOURLY, .source = src, .where = where, .rolled_at = rolled};
    r = src && where ? kopt_rollup_insert_sql(&q, &sql) : -ENOMEM;
    if (r == 0)
        r = sql_run(s, sql, &cerr);
    if (r == 0)
        r = sql_run(s, "TRUNCATE TEMPORARY TABLE " WINDOWS, &cerr);
    if (r < 0) {
        *result = ADV_ARCHIVE_CLICKHOUSE;
        if (cerr.message[0])
            snprintf(why, why_len, "ClickHouse: rolling up %s: %.160s", rec->key, cerr.message);
        else
            snprintf(why, why_len, "out of memory");
    }
    free(src);
    free(where);
    free(sql);
    if (r == 0)
        *result = ADV_ARCHIVE_OK;
    return r;
}

static int session_client(const kopt_ch_options_t *opts, kopt_ch_client_t **out,
                          kopt_ch_error_t *err)
{
    unsigned char rnd[12];
    char id[64];
    int r;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    snprintf(id, sizeof(id), "kopt-archive-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + strlen(id), 3, "%02x", rnd[i]);
    r = kopt_ch_client_new(opts, out, err);
    if (r == 0 && (r = kopt_ch_set_session(*out, id, SESSION_IDLE_S)) < 0) {
        kopt_ch_client_free(*out);
        *out = NULL;
    }
    return r;
}

void adv_archive_close(kopt_ch_client_t *s)
{
    if (!s)
        return;
    /* Best effort: the server drops them with the session anyway. */
    sql_run(s, "DROP TEMPORARY TABLE IF EXISTS " WINDOWS, NULL);
    sql_run(s, "DROP TEMPORARY TABLE IF EXISTS " ADV_ARCHIVE_HOURLY, NULL);
    kopt_ch_client_free(s);
}

int adv_archive_open(kopt_ch_client_t *ch, const kopt_ch_options_t *opts, const adv_archive_t *a,
                     const adv_scope_t *scope, kopt_ch_client_t **out, kopt_ch_error_t *err)
{
    uint32_t *hot = NULL;
    record_t *recs = NULL;
    size_t n_hot = 0, n = 0;
    uint64_t bytes = 0;
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t oerr = {0};
    kopt_ch_client_t *s = NULL;
    char why[sizeof(err->message)] = "", *sql = NULL;
    double t0 = (double)kopt_now_ns() / 1e9;
    int r, result;

    *out = NULL;
    if (!opts) { /* the session is a client of its own */
        say(err, -EINVAL, "--include-archive needs the ClickHouse options%s%s", "", "");
        return -EINVAL;
    }
    r = hot_days(ch, scope, &hot, &n_hot, err);
    if (r == 0)
        r = needed(ch, scope, hot, n_hot, &recs, &n, err);
    free(hot);
    if (r < 0 || n == 0) {
        records_free(recs, n);
        return r;
    }
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].bytes;
    if (n > a->max_days || bytes > a->max_bytes) {
        count(a, ADV_ARCHIVE_LIMIT);
        snprintf(why, sizeof(why),
                 "the range needs %zu archived days, %" PRIu64
                 " bytes: more than --archive-max-days %u or --archive-max-bytes %" PRIu64,
                 n, bytes, a->max_days, a->max_bytes);
        say(err, -E2BIG, "%s%s", why, "");
        records_free(recs, n);
        return -E2BIG;
    }
    r = kopt_objstore_new(&a->store, &st, &oerr);
    if (r < 0) {
        count(a, ADV_ARCHIVE_STORE);
        say(err, r, "object store: %.200s%s", oerr.message, "");
        records_free(recs, n);
        return r;
    }
    r = session_client(opts, &s, err);
    if (r < 0) {
        count(a, ADV_ARCHIVE_CLICKHOUSE);
        if (err && !err->message[0])
            say(err, r, "cannot open a ClickHouse session: %s%s", strerror(-r), "");
    }
    static const char *const tables[][2] = {{WINDOWS, "container_windows"},
                                            {ADV_ARCHIVE_HOURLY, "container_hourly"}};
    for (size_t i = 0; r == 0 && i < 2; i++) {
        if (asprintf(&sql, "CREATE TEMPORARY TABLE %s AS %s.%s", tables[i][0], kopt_ch_database(ch),
                     tables[i][1]) < 0)
            sql = NULL;
        r = sql ? sql_run(s, sql, err) : -ENOMEM;
        free(sql);
        sql = NULL;
        if (r < 0)
            count(a, ADV_ARCHIVE_CLICKHOUSE);
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = load_one(s, st, a, scope, &recs[i], why, sizeof(why), &result);
        count(a, result);
        if (r < 0) {
            say(err, r, "archived partition %.16s: %s", recs[i].pid, "");
            if (err) {
                size_t k = strlen(err->message);

                snprintf(err->message + k, sizeof(err->message) - k, "%s", why);
            }
            kopt_log_error("an archived partition cannot be loaded",
                           KOPT_STR("partition", recs[i].pid),
                           KOPT_STR("result", adv_archive_result_name(result)),
                           KOPT_STR("reason", why), KOPT_ERR(r));
        }
    }
    if (r == 0) {
        kopt_log_info("archived days loaded", KOPT_UINT("partitions", n), KOPT_UINT("bytes", bytes),
                      KOPT_STR("first", recs[0].pid), KOPT_STR("last", recs[n - 1].pid),
                      KOPT_DBL("seconds", (double)kopt_now_ns() / 1e9 - t0));
        *out = s;
    } else {
        adv_archive_close(s);
    }
    kopt_objstore_free(st);
    records_free(recs, n);
    return r;
}
