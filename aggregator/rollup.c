/* Hourly rollups; see rollup.h and docs/storage.md. The statement is
 * libkopt's (kopt/rollup_sql.h), which the advisor shares for archived
 * windows. */
#include "rollup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/rollup_sql.h>
#include <kopt/util.h>

#include "schema.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The WHERE of the windows of `hours` (sorted, distinct): a range on
 * window_start, which prunes day partitions, and the hours themselves when
 * they do not fill the range. */
static int hours_where(const int64_t *hours, size_t n, const char *qc, char **out)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (!f)
        return -ENOMEM;
    fprintf(f, "window_start >= toDateTime(%lld) AND window_start < toDateTime(%lld)",
            (long long)hours[0], (long long)hours[n - 1] + 3600);
    if ((hours[n - 1] - hours[0]) / 3600 + 1 != (int64_t)n) {
        fputs(" AND intDiv(toUInt32(window_start), 3600) IN (", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s%lld", i ? ", " : "", (long long)(hours[i] / 3600));
        fputc(')', f);
    }
    if (qc)
        fprintf(f, " AND cluster = %s", qc);
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    return 0;
}

int agg_rollup_sql_hours(const char *db, const char *cluster, const int64_t *hours, size_t n,
                         char **sql)
{
    char *target = NULL, *source = NULL, *qc = NULL, *where = NULL;
    int64_t *h = NULL;
    size_t m = 0;
    int r = 0;

    *sql = NULL;
    if (n == 0 || n > AGG_ROLLUP_MAX_HOURS || !kopt_ch_identifier_ok(db))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (hours[i] < 0 || hours[i] % 3600 != 0 || hours[i] > 4294963200LL)
            return -EINVAL;
    h = malloc(n * sizeof(*h));
    if (!h)
        return -ENOMEM;
    memcpy(h, hours, n * sizeof(*h));
    qsort(h, n, sizeof(*h), cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || h[m - 1] != h[i])
            h[m++] = h[i];
    if (cluster && cluster[0])
        r = kopt_ch_sql_quote(cluster, &qc);
    if (r == 0)
        r = hours_where(h, m, qc, &where);
    if (r == 0 && (asprintf(&target, "%s.container_hourly", db) < 0 ||
                   asprintf(&source, "%s.container_windows", db) < 0))
        r = -ENOMEM;
    if (r == 0) {
        kopt_rollup_query_t q = {.target = target, .source = source, .final = true, .where = where};

        r = kopt_rollup_insert_sql(&q, sql);
    }
    free(h);
    free(target);
    free(source);
    free(qc);
    free(where);
    return r;
}

int agg_rollup_sql(const char *db, const char *cluster, int64_t hour, char **sql)
{
    return agg_rollup_sql_hours(db, cluster, &hour, 1, sql);
}

int agg_rollup_hour(kopt_ch_client_t *c, const char *cluster, int64_t hour, kopt_ch_error_t *err)
{
    return agg_rollup_hours(c, cluster, &hour, 1, err);
}

int agg_rollup_hours(kopt_ch_client_t *c, const char *cluster, const int64_t *hours, size_t n,
                     kopt_ch_error_t *err)
{
    char *sql = NULL;
    int r = agg_rollup_sql_hours(kopt_ch_database(c), cluster, hours, n, &sql);

    if (r == 0)
        r = kopt_ch_query(c, sql, NULL, NULL, err);
    free(sql);
    return r;
}

/* One statement: hours [lo, hi) of `jobs`, all of one cluster and UTC day. */
static void roll_group(kopt_ch_client_t *c, const agg_hour_t *jobs, size_t lo, size_t hi,
                       const agg_rollup_stats_t *st, agg_hourset_t *failed)
{
    kopt_ch_error_t err = {0};
    int64_t hours[AGG_ROLLUP_MAX_HOURS];
    const char *cluster = jobs[lo].cluster;
    uint64_t t0 = kopt_now_ns();
    size_t n = hi - lo;
    int r;

    for (size_t i = 0; i < n; i++)
        hours[i] = jobs[lo + i].hour;
    r = agg_rollup_hours(c, cluster[0] ? cluster : NULL, hours, n, &err);
    if (st->seconds)
        kopt_metric_histogram_observe(st->seconds, (double)(kopt_now_ns() - t0) / 1e9);
    if (r == 0) {
        if (st->rollups)
            kopt_metric_counter_add(st->rollups, (double)n);
        return;
    }
    if (st->errors)
        kopt_metric_counter_inc(st->errors);
    kopt_log_warn("rollup failed; trying again next time", KOPT_STR("cluster", cluster),
                  KOPT_INT("from_hour", hours[0]), KOPT_UINT("hours", n),
                  KOPT_INT("code", err.code), KOPT_STR("detail", err.message), KOPT_ERR(r));
    for (size_t i = 0; i < n; i++)
        agg_hourset_add(failed, cluster, hours[i]);
}

static int job_cmp(const void *a, const void *b)
{
    const agg_hour_t *x = a, *y = b;
    int c = strcmp(x->cluster, y->cluster);

    return c ? c : (x->hour > y->hour) - (x->hour < y->hour);
}

static int64_t day_of(int64_t hour)
{
    return hour / 86400;
}

void agg_rollup_pass(kopt_ch_client_t *c, const agg_hourset_t *taken, uint64_t lateness_ms,
                     int64_t now, const atomic_int *stop, const agg_rollup_stats_t *st,
                     agg_hourset_t *failed)
{
    int64_t cur = now - now % 3600;
    int64_t from = lateness_ms ? now - (int64_t)(lateness_ms / 1000) : cur + 3600;
    agg_hourset_t jobs;

    from -= ((from % 3600) + 3600) % 3600;
    agg_hourset_init(&jobs);
    /* The lateness window for every cluster at once; the touched hours
     * outside it per cluster. The set keeps each pair once. */
    for (int64_t h = from; h <= cur; h += 3600)
        agg_hourset_add(&jobs, "", h);
    for (size_t i = 0; i < taken->n; i++)
        if (taken->items[i].hour < from || taken->items[i].hour > cur)
            agg_hourset_add(&jobs, taken->items[i].cluster, taken->items[i].hour);
    if (jobs.dropped > 0) /* cannot happen: taken and the window fit */
        kopt_log_warn("rollup pass dropped hours", KOPT_UINT("hours", jobs.dropped));
    if (jobs.n > 0)
        qsort(jobs.items, jobs.n, sizeof(*jobs.items), job_cmp);
    /* One statement per cluster and UTC day: container_windows has daily
     * partitions, so each statement reads one partition once, however many
     * of its hours were touched (a backfill touches all 24). */
    for (size_t lo = 0, hi; lo < jobs.n && !atomic_load(stop); lo = hi) {
        for (hi = lo + 1; hi < jobs.n && hi - lo < AGG_ROLLUP_MAX_HOURS &&
                          strcmp(jobs.items[hi].cluster, jobs.items[lo].cluster) == 0 &&
                          day_of(jobs.items[hi].hour) == day_of(jobs.items[lo].hour);
             hi++)
            ;
        roll_group(c, jobs.items, lo, hi, st, failed);
    }
    agg_hourset_free(&jobs);
}

unsigned agg_rollup_retention(kopt_ch_client_t *c, uint32_t windows_days, uint32_t hourly_days,
                              agg_retention_gate_fn gate, void *gate_ctx)
{
    /* Facts live as long as the rollups they describe. */
    static const char *const tables[] = {"container_windows", "container_hourly", "workload_facts",
                                         "node_facts"};
    uint32_t days[] = {windows_days, hourly_days, hourly_days, hourly_days};
    unsigned total = 0;

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        kopt_ch_error_t err = {0};
        unsigned dropped = 0;
        int r;

        if (days[i] == 0)
            continue;
        r = agg_schema_retention_gated(c, tables[i], days[i], 0, gate, gate_ctx, &dropped, &err);
        if (r < 0)
            kopt_log_warn("retention failed; trying again tomorrow", KOPT_STR("table", tables[i]),
                          KOPT_STR("detail", err.message), KOPT_ERR(r));
        else if (dropped > 0)
            kopt_log_info("old partitions dropped", KOPT_STR("table", tables[i]),
                          KOPT_UINT("partitions", dropped), KOPT_UINT("days", days[i]));
        total += dropped;
    }
    return total;
}

void agg_hourset_init(agg_hourset_t *s)
{
    memset(s, 0, sizeof(*s));
}

void agg_hourset_free(agg_hourset_t *s)
{
    free(s->items);
    memset(s, 0, sizeof(*s));
}

void agg_hourset_clear(agg_hourset_t *s)
{
    s->n = 0;
}

static int add_hour(agg_hourset_t *s, const char *cluster, int64_t hour)
{
    agg_hour_t *h;

    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].hour == hour && strcmp(s->items[i].cluster, cluster) == 0)
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        agg_hour_t *items;

        if (s->n >= AGG_HOURSET_MAX) {
            s->dropped++;
            return -ENOSPC;
        }
        items = realloc(s->items, cap * sizeof(*items));
        if (!items) {
            s->dropped++;
            return -ENOSPC;
        }
        s->items = items;
        s->cap = cap;
    }
    h = &s->items[s->n++];
    snprintf(h->cluster, sizeof(h->cluster), "%s", cluster);
    h->hour = hour;
    return 0;
}

int agg_hourset_add(agg_hourset_t *s, const char *cluster, int64_t t)
{
    int64_t hour = t - ((t % 3600) + 3600) % 3600;

    if (!cluster || strlen(cluster) >= AGG_HOURSET_CLUSTER)
        cluster = "";
    return add_hour(s, cluster, hour);
}

void agg_hourset_merge(agg_hourset_t *s, const agg_hourset_t *from)
{
    for (size_t i = 0; i < from->n; i++)
        add_hour(s, from->items[i].cluster, from->items[i].hour);
}
