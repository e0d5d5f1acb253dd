/* The advisor's ClickHouse side, but for the analysis' read of
 * container_hourly (hourly_read.c): node counts, writing one
 * recommendations row per container, reading back the newest
 * recommendation of every workload at start, and one workload's hours for
 * charts. Answers come as TabSeparated, parsed in place.
 * Blocking: worker threads and the CLI only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <kopt/pbjson.h>
#include <kopt/util.h>

#include "advisor.h"

static const char *const kinds[] = {"",        "Deployment", "StatefulSet", "DaemonSet",   "Job",
                                    "CronJob", "ReplicaSet", "Pod",         "ProcessGroup"};

const char *adv_kind_name(int kind)
{
    if (kind < 0 || (size_t)kind >= sizeof(kinds) / sizeof(kinds[0]))
        return "";
    return kinds[kind];
}

int adv_kind_parse(const char *text)
{
    for (size_t i = 1; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcasecmp(text, kinds[i]) == 0)
            return (int)i;
    return 0;
}

/* ---- TabSeparated ------------------------------------------------------- */

/* Splits the line at *p into n fields, unescaping each in place. 0, or
 * -EBADMSG when the line has another number of fields. */
static int split_line(char **p, char *end, char **f, int n)
{
    char *s = *p, *w;
    int i = 0;

    if (s >= end)
        return -EBADMSG;
    f[i++] = w = s;
    for (; s < end && *s != '\n'; s++) {
        if (*s == '\t') {
            *w = '\0';
            if (i == n)
                return -EBADMSG;
            f[i++] = w = s + 1;
            continue;
        }
        if (*s == '\\' && s + 1 < end) {
            char c = *++s;

            *w++ = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '0' ? '\0' : c;
            continue;
        }
        *w++ = *s;
    }
    *w = '\0';
    *p = s < end ? s + 1 : end;
    return i == n ? 0 : -EBADMSG;
}

/* "[1,2,3]" into n values. -EBADMSG on anything else. */
static int parse_array(const char *s, uint32_t *vals, size_t max, size_t *n)
{
    char *end;

    *n = 0;
    if (*s++ != '[')
        return -EBADMSG;
    while (*s && *s != ']') {
        unsigned long v = strtoul(s, &end, 10);

        if (end == s || *n >= max)
            return -EBADMSG;
        vals[(*n)++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return *s == ']' ? 0 : -EBADMSG;
}

static size_t array_len(const char *s)
{
    size_t n = 1;

    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* Appends the buckets of an index and a count array; *first gets the
 * offset of the first. */
static int add_buckets(kopt_engine_bucket_t **b, size_t *n_b, size_t *cap_b, const char *idx,
                       const char *cnt, size_t *first, size_t *n)
{
    size_t max = array_len(idx), ni, nc;
    uint32_t *tmp = malloc(2 * max * sizeof(uint32_t));
    int r;

    if (!tmp)
        return -ENOMEM;
    r = parse_array(idx, tmp, max, &ni);
    if (r == 0)
        r = parse_array(cnt, tmp + max, max, &nc);
    if (r == 0 && ni != nc)
        r = -EBADMSG;
    if (r == 0)
        r = kopt_grow_array((void **)b, cap_b, *n_b + ni, sizeof(**b));
    if (r == 0) {
        *first = *n_b;
        for (size_t i = 0; i < ni; i++)
            (*b)[*n_b + i] = (kopt_engine_bucket_t){(uint16_t)tmp[i], tmp[max + i]};
        *n_b += ni;
        *n = ni;
    }
    free(tmp);
    return r;
}

static int run_query(kopt_ch_client_t *ch, char *sql, size_t sql_len, char **body, size_t *len,
                     kopt_ch_error_t *err)
{
    int r;

    (void)sql_len;
    r = kopt_ch_query(ch, sql, body, len, err);
    free(sql);
    return r;
}

/* ---- clusters ------------------------------------------------------------ */

int adv_ch_cluster_info(kopt_ch_client_t *ch, int64_t since, adv_cluster_info_t **out, size_t *n,
                        kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL, *p, *end, *f[3];
    size_t len = 0, cap = 0;
    int r;

    *out = NULL;
    *n = 0;
    if (asprintf(&sql,
                 "SELECT cluster, uniqExact(node), toUInt32(max(window_end)) FROM "
                 "%s.container_windows WHERE window_start >= toDateTime(%lld) GROUP BY cluster "
                 "ORDER BY cluster FORMAT TabSeparated",
                 kopt_ch_database(ch), (long long)since) < 0)
        return -ENOMEM;
    r = run_query(ch, sql, 0, &body, &len, err);
    if (r < 0)
        return r;
    for (p = body, end = body + len; p < end && r == 0;) {
        r = split_line(&p, end, f, 3);
        if (r == 0)
            r = kopt_grow_array((void **)out, &cap, *n + 1, sizeof(**out));
        if (r == 0) {
            (*out)[*n] = (adv_cluster_info_t){.cluster = strdup(f[0]),
                                              .nodes = (uint32_t)strtoul(f[1], NULL, 10),
                                              .last_seen = strtoll(f[2], NULL, 10)};
            r = (*out)[(*n)++].cluster ? 0 : -ENOMEM;
        }
    }
    free(body);
    if (r < 0) {
        adv_cluster_info_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

void adv_cluster_info_free(adv_cluster_info_t *ci, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ci[i].cluster);
    free(ci);
}

/* ---- recommendations ------------------------------------------------------ */

#define REC_COLUMNS                                                                                \
    "cluster, namespace, workload_kind, workload_name, container, cpu_request_cores_current, "     \
    "cpu_request_cores_recommended, cpu_limit_cores_current, cpu_limit_cores_recommended, "        \
    "memory_request_bytes_current, memory_request_bytes_recommended, "                             \
    "memory_limit_bytes_current, memory_limit_bytes_recommended, confidence, reasons, "            \
    "explanation, idle, replicas, savings_cpu_cores, savings_memory_bytes, "                       \
    "savings_monthly_cost, currency, data_points, window_start, window_end, generated_at, "        \
    "analysis_id, details"

/* A TabSeparated string (quote: inside an Array, single-quoted). */
static void tsv_str(FILE *f, const char *s, bool quote)
{
    if (quote)
        fputc('\'', f);
    for (; s && *s; s++) {
        switch (*s) {
        case '\t':
            fputs("\\t", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\'':
            fputs("\\'", f);
            break;
        default:
            fputc(*s, f);
        }
    }
    if (quote)
        fputc('\'', f);
}

static int64_t ts(const Google__Protobuf__Timestamp *t)
{
    return t ? t->seconds : 0;
}

static void write_rows(FILE *f, const Kopt__V1__Recommendation *rec, const char *details)
{
    const Kopt__V1__WorkloadRef *w = rec->workload;

    for (size_t i = 0; i < rec->n_containers; i++) {
        const Kopt__V1__ContainerRecommendation *c = rec->containers[i];
        const Kopt__V1__ResourceValues *cur = c->current, *nr = c->recommended;

        tsv_str(f, w->cluster, false);
        fputc('\t', f);
        tsv_str(f, w->namespace_, false);
        fprintf(f, "\t%s\t", adv_kind_name(w->kind));
        tsv_str(f, w->name, false);
        fputc('\t', f);
        tsv_str(f, c->container, false);
        fprintf(f, "\t%.17g\t%.17g\t%.17g\t%.17g\t%llu\t%llu\t%llu\t%llu\t%.17g\t[",
                cur->cpu_request_cores, nr->cpu_request_cores, cur->cpu_limit_cores,
                nr->cpu_limit_cores, (unsigned long long)cur->memory_request_bytes,
                (unsigned long long)nr->memory_request_bytes,
                (unsigned long long)cur->memory_limit_bytes,
                (unsigned long long)nr->memory_limit_bytes, c->confidence);
        for (size_t k = 0; k < c->n_reasons; k++) {
            const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
                &kopt__v1__recommendation_reason__descriptor, (int)c->reasons[k]);

            if (k)
                fputc(',', f);
            tsv_str(f, v ? v->name : "RECOMMENDATION_REASON_UNSPECIFIED", true);
        }
        fputs("]\t", f);
        tsv_str(f, c->explanation, false);
        fprintf(f, "\t%d\t%.17g\t%.17g\t%lld\t%.17g\t", rec->idle ? 1 : 0, rec->replicas,
                rec->savings->cpu_cores, (long long)rec->savings->memory_bytes,
                rec->savings->monthly_cost);
        tsv_str(f, rec->savings->currency, false);
        fprintf(f, "\t%llu\t%lld\t%lld\t%lld\t", (unsigned long long)rec->data_points,
                (long long)ts(rec->window_start), (long long)ts(rec->window_end),
                (long long)ts(rec->generated_at));
        tsv_str(f, rec->analysis_id, false);
        fputc('\t', f);
        tsv_str(f, details, false);
        fputc('\n', f);
    }
}

#define ROWS_PER_INSERT 4096

int adv_ch_write_recommendations(kopt_ch_client_t *ch, Kopt__V1__Recommendation *const *recs,
                                 size_t n, kopt_ch_error_t *err)
{
    size_t i = 0;
    int r = 0;

    while (i < n && r == 0) {
        char *data = NULL;
        size_t len = 0, rows = 0;
        FILE *f = open_memstream(&data, &len);

        if (!f)
            return -ENOMEM;
        for (; i < n && rows < ROWS_PER_INSERT && r == 0; i++) {
            char *details = NULL;
            size_t dlen = 0;

            r = kopt_pbjson_encode(&recs[i]->base, &details, &dlen);
            if (r == 0)
                write_rows(f, recs[i], details);
            rows += recs[i]->n_containers;
            free(details);
        }
        if (fclose(f) != 0 && r == 0)
            r = -ENOMEM;
        if (r == 0 && len > 0)
            r = kopt_ch_insert(ch, "recommendations", REC_COLUMNS, "TabSeparated", data, len, err);
        free(data);
    }
    return r;
}

int adv_ch_load_latest(kopt_ch_client_t *ch, Kopt__V1__Recommendation ***recs, size_t *n,
                       kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL, *p, *end, *f[1], msg[256];
    size_t len = 0, cap = 0;
    int r;

    *recs = NULL;
    *n = 0;
    if (asprintf(&sql,
                 "SELECT argMax(details, generated_at) FROM %s.recommendations FINAL GROUP BY "
                 "cluster, namespace, workload_kind, workload_name FORMAT TabSeparated",
                 kopt_ch_database(ch)) < 0)
        return -ENOMEM;
    r = run_query(ch, sql, 0, &body, &len, err);
    if (r < 0)
        return r;
    for (p = body, end = body + len; p < end && r == 0;) {
        ProtobufCMessage *m = NULL;

        r = split_line(&p, end, f, 1);
        if (r == 0 && kopt_pbjson_decode(&kopt__v1__recommendation__descriptor, f[0], strlen(f[0]),
                                         &m, msg, sizeof(msg)) < 0) {
            if (err)
                snprintf(err->message, sizeof(err->message), "bad details: %.200s", msg);
            r = -EBADMSG;
        }
        if (r == 0 && kopt_grow_array((void **)recs, &cap, *n + 1, sizeof(**recs)) < 0)
            r = -ENOMEM;
        if (r == 0)
            (*recs)[(*n)++] = (Kopt__V1__Recommendation *)m;
        else if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    free(body);
    if (r < 0) {
        for (size_t i = 0; i < *n; i++)
            protobuf_c_message_free_unpacked(&(*recs)[i]->base, NULL);
        free(*recs);
        *recs = NULL;
        *n = 0;
    }
    return r;
}

/* ---- usage for charts ------------------------------------------------------ */

#define USAGE_FIELDS 15

int adv_ch_load_usage(kopt_ch_client_t *ch, const char *cluster, const char *namespace_,
                      const char *kind, const char *name, const char *container, int64_t from,
                      int64_t to, adv_usage_rows_t *out, kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL, *p, *end, *f[USAGE_FIELDS];
    size_t sql_len = 0, len = 0;
    FILE *q = open_memstream(&sql, &sql_len);
    int r;

    memset(out, 0, sizeof(*out));
    if (!q)
        return -ENOMEM;
    fprintf(q,
            "SELECT container, toUInt32(hour), pod_count, oom_kills, cpu_usage_peak_cores, "
            "cpu_throttled_seconds, memory_working_set_peak_bytes, cpu_request_cores, "
            "cpu_limit_cores, memory_request_bytes, memory_limit_bytes, cpu_hist_index, "
            "cpu_hist_count, mem_hist_index, mem_hist_count FROM %s.container_hourly FINAL "
            "WHERE cluster = ",
            kopt_ch_database(ch));
    kopt_ch_sql_string(q, cluster);
    fputs(" AND namespace = ", q);
    kopt_ch_sql_string(q, namespace_);
    fputs(" AND workload_kind = ", q);
    kopt_ch_sql_string(q, kind);
    fputs(" AND workload_name = ", q);
    kopt_ch_sql_string(q, name);
    if (container && *container) {
        fputs(" AND container = ", q);
        kopt_ch_sql_string(q, container);
    }
    fprintf(q,
            " AND hour >= toDateTime(%lld) AND hour < toDateTime(%lld) ORDER BY container, hour "
            "FORMAT TabSeparated",
            (long long)from, (long long)to);
    if (fclose(q) != 0) {
        free(sql);
        return -ENOMEM;
    }
    r = run_query(ch, sql, sql_len, &body, &len, err);
    if (r < 0)
        return r;
    for (p = body, end = body + len; p < end && r == 0;) {
        adv_usage_row_t *u;
        size_t c0 = 0, m0 = 0;

        r = split_line(&p, end, f, USAGE_FIELDS);
        if (r == 0)
            r = kopt_grow_array((void **)&out->rows, &out->cap, out->n + 1, sizeof(*out->rows));
        if (r < 0)
            break;
        u = &out->rows[out->n++];
        memset(u, 0, sizeof(*u));
        u->container = strdup(f[0]);
        u->hour = strtoll(f[1], NULL, 10);
        u->pods = (uint32_t)strtoul(f[2], NULL, 10);
        u->oom_kills = (uint32_t)strtoul(f[3], NULL, 10);
        u->cpu_peak = strtod(f[4], NULL);
        u->throttled_s = strtod(f[5], NULL);
        u->mem_peak = strtoull(f[6], NULL, 10);
        u->res.cpu_request_cores = strtod(f[7], NULL);
        u->res.cpu_limit_cores = strtod(f[8], NULL);
        u->res.memory_request_bytes = strtoull(f[9], NULL, 10);
        u->res.memory_limit_bytes = strtoull(f[10], NULL, 10);
        r = u->container ? 0 : -ENOMEM;
        if (r == 0)
            r = add_buckets(&out->b, &out->n_b, &out->cap_b, f[11], f[12], &c0, &u->n_cpu);
        if (r == 0)
            r = add_buckets(&out->b, &out->n_b, &out->cap_b, f[13], f[14], &m0, &u->n_mem);
        u->cpu_off = c0;
        u->mem_off = m0;
    }
    free(body);
    if (r < 0) {
        adv_usage_rows_free(out);
        return r;
    }
    for (size_t i = 0; i < out->n; i++) {
        out->rows[i].cpu = out->b + out->rows[i].cpu_off;
        out->rows[i].mem = out->b + out->rows[i].mem_off;
    }
    return 0;
}

void adv_usage_rows_free(adv_usage_rows_t *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->rows[i].container);
    free(u->rows);
    free(u->b);
    memset(u, 0, sizeof(*u));
}
