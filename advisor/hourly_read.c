/* The read of container_hourly for an analysis. ClickHouse 18.16 cannot
 * read in key order, so ORDER BY sorts all 3.4M rows of 10,000 containers x
 * 14 days and FINAL merges every part in one thread; together they were most
 * of an analysis (docs/performance.md). Instead:
 *   1. a plan: rows per (cluster, namespace) in the scope, in key order;
 *   2. range queries on that key prefix, whole namespaces of about RANGE_ROWS
 *      rows each, in RowBinary (not text), without FINAL or ORDER BY
 *      (hourly.c orders and de-duplicates), streamed, uncompressed;
 *   3. READ_THREADS threads, each with its own connection, fetch and parse
 *      ranges while this thread appends the parsed ones in range order: the
 *      ranges are disjoint and in key order, so the inputs are too.
 * A range's rows all come from one query, so no container is read twice.
 * Blocking: worker threads and the CLI only. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/rowbinary.h>
#include <kopt/util.h>

#include "advisor.h"

#define READ_THREADS 2 /* connections; each query also runs on the server's threads */
/* Rows a range query aims at: about 13 MB of RowBinary. Page faults were
 * the largest cost of the read on our VMs; answers and scratch arrays this
 * small stay under glibc's mmap threshold, so their pages are reused from
 * one range to the next (400,000-row ranges: 6.7-7.5 CPU s in the advisor,
 * 70,000: 3.7-4.2 s). */
#define RANGE_ROWS 70000
#define AHEAD 4 /* parsed ranges waiting to be appended, at most */

#define HOURLY_COLUMNS                                                                             \
    "cluster, namespace, workload_kind, workload_name, container, toUInt32(hour), "                \
    "window_count, pod_count, cpu_usage_mean_cores, cpu_usage_peak_cores, "                        \
    "cpu_throttled_seconds, cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "  \
    "memory_working_set_peak_bytes, mem_hist_index, mem_hist_count, oom_kills, "                   \
    "cpu_request_cores, cpu_limit_cores, memory_request_bytes, memory_limit_bytes, "               \
    "toUInt32(rolled_at), covered_seconds"

typedef struct {
    char *cluster;
    char **ns;
    size_t n_ns, rows;
    adv_hourly_part_t *part; /* the result, when done */
    int status;
    kopt_ch_error_t err;
    bool done;
} range_t;

typedef struct {
    const adv_scope_t *scope;
    const char *db;
    bool archive; /* also ADV_ARCHIVE_HOURLY, the session's re-rolled archived days */
    range_t *ranges;
    size_t n_ranges;
    size_t next, appended; /* ranges taken by a thread; appended to the input */
    bool stop;             /* an error or the end: take no more */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} reader_t;

typedef struct {
    reader_t *rd;
    kopt_ch_client_t *ch;
    bool own; /* ch was opened for this thread */
    pthread_t tid;
    bool started;
} worker_t;

static void ranges_free(range_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].cluster);
        for (size_t k = 0; k < r[i].n_ns; k++)
            free(r[i].ns[k]);
        free(r[i].ns);
        adv_hourly_part_free(r[i].part);
    }
    free(r);
}

static void where_scope(FILE *q, const adv_scope_t *s)
{
    if (s->cluster && *s->cluster) {
        fputs("cluster = ", q);
        kopt_ch_sql_string(q, s->cluster);
        fputs(" AND ", q);
    }
    if (s->namespace_ && *s->namespace_) {
        fputs("namespace = ", q);
        kopt_ch_sql_string(q, s->namespace_);
        fputs(" AND ", q);
    }
    fprintf(q, "hour >= toDateTime(%lld) AND hour < toDateTime(%lld)", (long long)s->from,
            (long long)s->to);
}

/* ---- the plan ------------------------------------------------------------- */

/* Adds a namespace to the last range, or starts a range; takes both
 * strings, also on failure. */
static int add_namespace(reader_t *rd, size_t *cap, char *cluster, char *ns, uint64_t rows)
{
    range_t *r = rd->n_ranges ? &rd->ranges[rd->n_ranges - 1] : NULL;
    char **v;

    if (!r || strcmp(r->cluster, cluster) != 0 || r->rows + rows > RANGE_ROWS) {
        if (rd->n_ranges == *cap) {
            size_t c = *cap ? 2 * *cap : 16;
            range_t *nr = realloc(rd->ranges, c * sizeof(*nr));

            if (!nr) {
                free(cluster);
                free(ns);
                return -ENOMEM;
            }
            rd->ranges = nr;
            *cap = c;
        }
        r = &rd->ranges[rd->n_ranges++];
        memset(r, 0, sizeof(*r));
        r->cluster = cluster;
    } else {
        free(cluster);
    }
    v = realloc(r->ns, (r->n_ns + 1) * sizeof(*v));
    if (!v) {
        free(ns);
        return -ENOMEM;
    }
    r->ns = v;
    r->ns[r->n_ns++] = ns;
    r->rows += rows;
    return 0;
}

/* Rows per (cluster, namespace), grouped into ranges in key order. */
static int plan(kopt_ch_client_t *ch, reader_t *rd, kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL;
    size_t sql_len = 0, len = 0, cap = 0;
    FILE *q = open_memstream(&sql, &sql_len);
    kopt_ch_reader_t in;
    int r;

    if (!q)
        return -ENOMEM;
    if (rd->archive) /* the counts of both tables, summed */
        fputs("SELECT cluster, namespace, sum(n) FROM (", q);
    fprintf(q, "SELECT cluster, namespace, count() AS n FROM %s.container_hourly WHERE ", rd->db);
    where_scope(q, rd->scope);
    if (rd->archive) {
        fputs(" GROUP BY cluster, namespace UNION ALL SELECT cluster, namespace, count() AS n "
              "FROM " ADV_ARCHIVE_HOURLY " WHERE ",
              q);
        where_scope(q, rd->scope);
        fputs(" GROUP BY cluster, namespace)", q);
    }
    fputs(" GROUP BY cluster, namespace ORDER BY cluster, namespace FORMAT RowBinary", q);
    if (fclose(q) != 0) {
        free(sql);
        return -ENOMEM;
    }
    r = kopt_ch_query(ch, sql, &body, &len, err);
    free(sql);
    kopt_ch_reader_init(&in, body, r == 0 ? len : 0);
    while (r == 0 && kopt_ch_reader_left(&in) > 0) {
        char *cluster = NULL, *ns = NULL;
        uint64_t rows;

        r = kopt_ch_get_strdup(&in, &cluster);
        if (r == 0)
            r = kopt_ch_get_strdup(&in, &ns);
        rows = kopt_ch_get_u64(&in);
        if (r == 0)
            r = kopt_ch_reader_status(&in);
        if (r == 0) {
            r = add_namespace(rd, &cap, cluster, ns, rows);
            continue;
        }
        free(cluster);
        free(ns);
        if (r == -EBADMSG && err)
            snprintf(err->message, sizeof(err->message), "unexpected container_hourly plan row");
    }
    free(body);
    return r;
}

/* ---- one range ---------------------------------------------------------------- */

/* A streamed answer that does not parse: an exception appended after the
 * first rows (kopt_ch_parse_exception), or rows that are not ours. */
static int bad_answer(const char *body, size_t len, kopt_ch_error_t *err)
{
    size_t tail = len > 4096 ? 4096 : len;
    char msg[sizeof(err->message)];
    int code = kopt_ch_parse_exception(body + len - tail, tail, msg, sizeof(msg));

    if (!code) {
        snprintf(err->message, sizeof(err->message), "unexpected container_hourly row");
        return -EBADMSG;
    }
    err->r = -EREMOTEIO;
    err->code = code;
    err->http_status = 200;
    err->cls = kopt_ch_classify(500, code);
    snprintf(err->message, sizeof(err->message), "%s", msg);
    return -EREMOTEIO;
}

/* SELECT ... FROM <db><table> WHERE <the range>. */
static void range_where(FILE *q, const reader_t *rd, const range_t *rg, const char *db,
                        const char *table)
{
    fprintf(q, "SELECT " HOURLY_COLUMNS " FROM %s%s WHERE cluster = ", db, table);
    kopt_ch_sql_string(q, rg->cluster);
    fputs(" AND namespace IN (", q);
    for (size_t i = 0; i < rg->n_ns; i++) {
        if (i)
            fputc(',', q);
        kopt_ch_sql_string(q, rg->ns[i]);
    }
    fprintf(q, ") AND hour >= toDateTime(%lld) AND hour < toDateTime(%lld)",
            (long long)rd->scope->from, (long long)rd->scope->to);
}

static int read_range(kopt_ch_client_t *ch, const reader_t *rd, range_t *rg)
{
    char *sql = NULL, *body = NULL;
    size_t sql_len = 0, len = 0;
    FILE *q = open_memstream(&sql, &sql_len);
    int r;

    if (!q)
        return -ENOMEM;
    range_where(q, rd, rg, rd->db, ".container_hourly");
    /* One answer for both, so hourly.c keeps one row per (container, hour):
     * the newest rolled_at (archived rows carry their archived_at). */
    if (rd->archive) {
        fputs(" UNION ALL ", q);
        range_where(q, rd, rg, "", ADV_ARCHIVE_HOURLY);
    }
    fputs(" FORMAT RowBinary", q);
    if (fclose(q) != 0) {
        free(sql);
        return -ENOMEM;
    }
    /* Streamed: rows leave the server as it reads them (see KOPT_CH_STREAM);
     * an error after the first rows makes the answer fail to parse. */
    r = kopt_ch_query_flags(ch, sql, KOPT_CH_STREAM, &body, &len, &rg->err);
    free(sql);
    if (r < 0)
        return r;
    r = adv_hourly_parse(body, len, rd->scope->from, rd->scope->to, &rg->part);
    if (r == -EBADMSG)
        r = bad_answer(body, len, &rg->err);
    if (r < 0)
        free(body); /* else parsed and freed */
    return r;
}

static void *work(void *arg)
{
    worker_t *w = arg;
    reader_t *rd = w->rd;

    pthread_mutex_lock(&rd->mu);
    for (;;) {
        range_t *rg;
        int r;

        while (!rd->stop && rd->next < rd->n_ranges && rd->next >= rd->appended + AHEAD)
            pthread_cond_wait(&rd->cv, &rd->mu);
        if (rd->stop || rd->next >= rd->n_ranges)
            break;
        rg = &rd->ranges[rd->next++];
        pthread_mutex_unlock(&rd->mu);
        r = read_range(w->ch, rd, rg);
        pthread_mutex_lock(&rd->mu);
        rg->status = r;
        rg->done = true;
        if (r < 0)
            rd->stop = true;
        pthread_cond_broadcast(&rd->cv);
    }
    pthread_mutex_unlock(&rd->mu);
    return NULL;
}

/* Appends the ranges in order as the threads finish them. */
static int gather(reader_t *rd, adv_input_t *in, kopt_ch_error_t *err)
{
    int r = 0;

    for (size_t i = 0; i < rd->n_ranges && r == 0; i++) {
        range_t *rg = &rd->ranges[i];

        pthread_mutex_lock(&rd->mu);
        while (!rg->done && !(rd->stop && rd->next <= i))
            pthread_cond_wait(&rd->cv, &rd->mu);
        pthread_mutex_unlock(&rd->mu);
        if (!rg->done) { /* an earlier range failed; its error is reported */
            r = -ECANCELED;
            break;
        }
        r = rg->status;
        if (r < 0 && err)
            *err = rg->err;
        if (r == 0)
            r = adv_hourly_emit(rg->part, in); /* in takes the part */
        rg->part = NULL;
        pthread_mutex_lock(&rd->mu);
        rd->appended = i + 1;
        if (r < 0)
            rd->stop = true;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
    }
    return r;
}

int adv_ch_load_input(kopt_ch_client_t *ch, const kopt_ch_options_t *opts,
                      const adv_archive_t *archive, const adv_scope_t *scope, adv_input_t *in,
                      kopt_ch_error_t *err)
{
    reader_t rd = {.scope = scope, .db = kopt_ch_database(ch)};
    worker_t w[READ_THREADS] = {0};
    kopt_ch_error_t first = {0};
    kopt_ch_client_t *session = NULL;
    int r;

    memset(in, 0, sizeof(*in));
    if (archive) {
        r = adv_archive_open(ch, opts, archive, scope, &session, err);
        if (r < 0)
            return r;
    }
    /* The session's tables exist only in it, and a session runs one query
     * at a time: one reading thread on it. */
    if (session) {
        ch = session;
        opts = NULL;
        rd.archive = true;
    }
    r = plan(ch, &rd, err);
    if (r < 0 || rd.n_ranges == 0) {
        ranges_free(rd.ranges, rd.n_ranges);
        adv_archive_close(session);
        return r;
    }
    pthread_mutex_init(&rd.mu, NULL);
    pthread_cond_init(&rd.cv, NULL);
    for (size_t i = 0; i < READ_THREADS && i < rd.n_ranges; i++) {
        w[i].rd = &rd;
        w[i].ch = ch;
        /* More connections when the options to open them are given; a
         * failure to open one only leaves fewer threads. */
        if (i > 0 && (!opts || kopt_ch_client_new(opts, &w[i].ch, NULL) < 0))
            break;
        w[i].own = i > 0;
        w[i].started = pthread_create(&w[i].tid, NULL, work, &w[i]) == 0;
        if (!w[i].started && w[i].own)
            kopt_ch_client_free(w[i].ch);
        if (!w[i].started)
            break;
    }
    if (w[0].started) {
        r = gather(&rd, in, &first);
    } else {
        r = -EAGAIN;
        snprintf(first.message, sizeof(first.message), "cannot start a reading thread");
    }
    pthread_mutex_lock(&rd.mu);
    rd.stop = true;
    pthread_cond_broadcast(&rd.cv);
    pthread_mutex_unlock(&rd.mu);
    for (size_t i = 0; i < READ_THREADS; i++) {
        if (w[i].started)
            pthread_join(w[i].tid, NULL);
        if (w[i].started && w[i].own)
            kopt_ch_client_free(w[i].ch);
    }
    pthread_cond_destroy(&rd.cv);
    pthread_mutex_destroy(&rd.mu);
    ranges_free(rd.ranges, rd.n_ranges);
    adv_archive_close(session);
    if (r < 0) {
        if (err)
            *err = first;
        adv_input_free(in);
        return r;
    }
    return 0;
}

/* ---- rollup_state ---------------------------------------------------------- */

typedef struct {
    char *cluster;
    uint32_t watermark, interval, updated;
    uint32_t *pending;
    size_t n_pending;
} state_row_t;

/* cluster String, watermark UInt32, pending Array(UInt32), interval UInt32,
 * updated UInt32. */
static int take_state_row(kopt_ch_reader_t *in, state_row_t *row)
{
    uint64_t n;
    int r;

    memset(row, 0, sizeof(*row));
    r = kopt_ch_get_strdup(in, &row->cluster);
    row->watermark = kopt_ch_get_u32(in);
    n = kopt_ch_get_array_len(in, 4);
    if (r < 0 || kopt_ch_reader_status(in) < 0)
        return r < 0 ? r : -EBADMSG;
    row->pending = malloc((n ? n : 1) * sizeof(*row->pending));
    if (!row->pending)
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        row->pending[row->n_pending++] = kopt_ch_get_u32(in);
    row->interval = kopt_ch_get_u32(in);
    row->updated = kopt_ch_get_u32(in);
    return kopt_ch_reader_status(in);
}

static void state_rows_free(state_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].cluster);
        free(rows[i].pending);
    }
    free(rows);
}

/* A replica is live while its row is within three of its intervals (at
 * least 5 min) of the newest row of its cluster. */
static bool live(const state_row_t *rows, size_t n, const state_row_t *row)
{
    uint32_t newest = 0, grace = row->interval * 3 > 300 ? row->interval * 3 : 300;

    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].cluster, row->cluster) == 0 && rows[i].updated > newest)
            newest = rows[i].updated;
    return row->updated + grace >= newest;
}

static int add_partial(adv_rollup_t *out, size_t *cap, const char *cluster, int64_t hour)
{
    for (size_t i = 0; i < out->n_partial; i++)
        if (out->partial[i].hour == hour && strcmp(out->partial[i].cluster, cluster) == 0)
            return 0;
    if (kopt_grow_array((void **)&out->partial, cap, out->n_partial + 1, sizeof(*out->partial)) < 0)
        return -ENOMEM;
    snprintf(out->partial[out->n_partial].cluster, sizeof(out->partial[0].cluster), "%s", cluster);
    out->partial[out->n_partial++].hour = hour;
    return 0;
}

static int summarise(state_row_t *rows, size_t n, int64_t history_end, adv_rollup_t *out)
{
    size_t cap = 0;

    for (size_t i = 0; i < n; i++) {
        const state_row_t *row = &rows[i];

        if (!live(rows, n, row))
            continue;
        if (!out->known || row->watermark < out->complete_until)
            out->complete_until = row->watermark;
        if (row->updated > out->updated_at)
            out->updated_at = row->updated;
        out->known = true;
        for (size_t k = 0; k < row->n_pending; k++)
            if ((int64_t)row->pending[k] < history_end &&
                add_partial(out, &cap, row->cluster, row->pending[k]) < 0)
                return -ENOMEM;
    }
    return 0;
}

int adv_ch_rollup_state(kopt_ch_client_t *ch, const char *cluster, int64_t history_end,
                        adv_rollup_t *out, kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL;
    size_t sql_len = 0, len = 0, n = 0, cap = 0;
    FILE *q = open_memstream(&sql, &sql_len);
    state_row_t *rows = NULL;
    kopt_ch_reader_t in;
    int r;

    memset(out, 0, sizeof(*out));
    if (!q)
        return -ENOMEM;
    fprintf(q,
            "SELECT cluster, toUInt32(watermark), arrayMap(x -> toUInt32(x), pending), "
            "interval_seconds, toUInt32(updated_at) FROM %s.rollup_state FINAL",
            kopt_ch_database(ch));
    if (cluster && *cluster) {
        fputs(" WHERE cluster = ", q);
        kopt_ch_sql_string(q, cluster);
    }
    fputs(" FORMAT RowBinary", q);
    if (fclose(q) != 0) {
        free(sql);
        return -ENOMEM;
    }
    r = kopt_ch_query(ch, sql, &body, &len, err);
    free(sql);
    if (r < 0 && err && err->code == 60) /* UNKNOWN_TABLE: an aggregator before migration 9 */
        r = -ENOENT;
    kopt_ch_reader_init(&in, body, r == 0 ? len : 0);
    while (r == 0 && kopt_ch_reader_left(&in) > 0) {
        if (kopt_grow_array((void **)&rows, &cap, n + 1, sizeof(*rows)) < 0) {
            r = -ENOMEM;
            break;
        }
        r = take_state_row(&in, &rows[n]);
        n++;
        if (r == -EBADMSG && err)
            snprintf(err->message, sizeof(err->message), "unexpected rollup_state row");
    }
    if (r == 0)
        r = summarise(rows, n, history_end, out);
    if (r < 0)
        adv_rollup_free(out);
    state_rows_free(rows, n);
    free(body);
    return r;
}

void adv_rollup_free(adv_rollup_t *r)
{
    free(r->partial);
    memset(r, 0, sizeof(*r));
}
