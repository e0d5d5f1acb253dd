/* The rollup watermark per cluster and its row in rollup_state; see
 * rollup_state.h. The control thread updates it after each rollup pass. */
#include "rollup_state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void agg_rollup_state_init(agg_rollup_state_t *st, const char *replica, uint32_t interval_s,
                           int64_t started)
{
    char host[64] = "";

    memset(st, 0, sizeof(*st));
    if (replica) {
        snprintf(st->replica, sizeof(st->replica), "%s", replica);
    } else {
        if (gethostname(host, sizeof(host) - 1) != 0)
            snprintf(host, sizeof(host), "unknown");
        snprintf(st->replica, sizeof(st->replica), "%s/%ld", host, (long)getpid());
    }
    st->interval_s = interval_s;
    st->started = started;
}

void agg_rollup_state_free(agg_rollup_state_t *st)
{
    free(st->marks);
    memset(st, 0, sizeof(*st));
}

static agg_rollup_mark_t *find(agg_rollup_state_t *st, const char *cluster)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->marks[i].cluster, cluster) == 0)
            return &st->marks[i];
    return NULL;
}

static void learn(agg_rollup_state_t *st, const char *cluster)
{
    agg_rollup_mark_t *m;

    if (!cluster[0] || find(st, cluster))
        return;
    if (st->n >= AGG_ROLLUP_STATE_CLUSTERS) {
        st->dropped++;
        return;
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 8;

        m = realloc(st->marks, cap * sizeof(*m));
        if (!m) {
            st->dropped++;
            return;
        }
        st->marks = m;
        st->cap = cap;
    }
    m = &st->marks[st->n++];
    snprintf(m->cluster, sizeof(m->cluster), "%s", cluster);
    m->watermark = st->started;
}

static bool has_cluster(const agg_hourset_t *s, const char *cluster)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].cluster, cluster) == 0)
            return true;
    return false;
}

void agg_rollup_state_update(agg_rollup_state_t *st, const agg_hourset_t *taken,
                             const agg_hourset_t *failed, int64_t snapshot)
{
    bool all_failed = has_cluster(failed, "");

    for (size_t i = 0; i < taken->n; i++)
        learn(st, taken->items[i].cluster);
    if (all_failed)
        return;
    for (size_t i = 0; i < st->n; i++)
        if (!has_cluster(failed, st->marks[i].cluster) && snapshot > st->marks[i].watermark)
            st->marks[i].watermark = snapshot;
    if (st->n == 0 && snapshot > st->started)
        st->started = snapshot;
}

int64_t agg_rollup_state_lag(const agg_rollup_state_t *st, int64_t now)
{
    int64_t oldest = st->started;

    for (size_t i = 0; i < st->n; i++)
        if (i == 0 || st->marks[i].watermark < oldest)
            oldest = st->marks[i].watermark;
    return now > oldest ? now - oldest : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The pending hours of one cluster, sorted and distinct, as a SQL array. */
static int pending_array(FILE *f, const agg_hourset_t *pending, const char *cluster)
{
    int64_t *h = malloc((pending->n ? pending->n : 1) * sizeof(*h));
    size_t n = 0;

    if (!h)
        return -ENOMEM;
    for (size_t i = 0; i < pending->n; i++)
        if (!pending->items[i].cluster[0] || strcmp(pending->items[i].cluster, cluster) == 0)
            h[n++] = pending->items[i].hour;
    qsort(h, n, sizeof(*h), cmp_i64);
    fputc('[', f);
    for (size_t i = 0, k = 0; i < n; i++)
        if (i == 0 || h[i] != h[i - 1])
            fprintf(f, "%s%lld", k++ ? "," : "", (long long)(h[i] < 0 ? 0 : h[i]));
    fputc(']', f);
    free(h);
    return 0;
}

int agg_rollup_state_sql(const char *db, const agg_rollup_state_t *st, const agg_hourset_t *pending,
                         int64_t now, char **sql)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;
    int r = 0;

    *sql = NULL;
    if (!kopt_ch_identifier_ok(db))
        return -EINVAL;
    if (st->n == 0)
        return -ENODATA;
    f = open_memstream(&buf, &size);
    if (!f)
        return -ENOMEM;
    /* Plain numbers: Values reads them into DateTime as Unix seconds, with
     * no time zone involved. */
    fprintf(f,
            "INSERT INTO %s.rollup_state (cluster, replica, watermark, pending, "
            "interval_seconds, updated_at) VALUES",
            db);
    for (size_t i = 0; i < st->n && r == 0; i++) {
        fputs(i ? ",\n(" : "\n(", f);
        kopt_ch_sql_string(f, st->marks[i].cluster);
        fputs(", ", f);
        kopt_ch_sql_string(f, st->replica);
        fprintf(f, ", %lld, ",
                (long long)(st->marks[i].watermark < 0 ? 0 : st->marks[i].watermark));
        r = pending_array(f, pending, st->marks[i].cluster);
        fprintf(f, ", %u, %lld)", st->interval_s, (long long)now);
    }
    if (fclose(f) != 0 && r == 0)
        r = -ENOMEM;
    if (r < 0) {
        free(buf);
        return r;
    }
    *sql = buf;
    return 0;
}

int agg_rollup_state_write(kopt_ch_client_t *c, const agg_rollup_state_t *st,
                           const agg_hourset_t *pending, int64_t now, kopt_ch_error_t *err)
{
    char *sql = NULL;
    int r = agg_rollup_state_sql(kopt_ch_database(c), st, pending, now, &sql);

    if (r == -ENODATA)
        return 0;
    if (r == 0)
        r = kopt_ch_query(c, sql, NULL, NULL, err);
    free(sql);
    return r;
}
