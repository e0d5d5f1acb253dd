/* GetWorkloadUsage: one workload's usage history for charts. The hours come
 * from container_hourly on a libuv worker thread (a blocking ClickHouse call
 * must not run on the loop); steps are whole hours, and each point merges
 * the hours' histograms for its percentiles. The reply goes out on the loop
 * thread in the after-work callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>
#include <kopt/usage_buckets.h>
#include <kopt/util.h>

#include "advisor.h"

#define HOUR 3600
#define DEFAULT_RANGE (7 * 86400)
#define TARGET_POINTS 300
#define MAX_POINTS 2000

typedef struct {
    uv_work_t work;
    adv_api_t *api;
    adv_reply_t *reply;
    char *cluster, *namespace_, *kind, *name, *container;
    int kind_enum;
    bool known; /* the workload has a recommendation */
    int64_t from, to, step;
    int status;
    char message[300];
    adv_usage_rows_t rows;
    /* The response and what it points to. */
    Kopt__V1__GetWorkloadUsageResponse resp;
    Kopt__V1__WorkloadRef ref;
    Google__Protobuf__Timestamp start, end;
    Google__Protobuf__Duration step_d;
    Kopt__V1__ContainerUsageSeries *series, **series_p;
    Kopt__V1__UsagePoint *points, **points_p;
    Google__Protobuf__Timestamp *times;
    uint64_t cpu_counts[KOPT_CPU_BUCKETS], mem_counts[KOPT_MEMORY_BUCKETS];
} usage_job_t;

static double percentile(const uint64_t *counts, int n, double p, double (*upper)(int))
{
    uint64_t total = 0, cum = 0;

    for (int i = 0; i < n; i++)
        total += counts[i];
    if (total == 0)
        return 0;
    for (int i = 0; i < n; i++) {
        cum += counts[i];
        if ((double)cum >= p * (double)total)
            return upper(i);
    }
    return upper(n - 1);
}

static void add_counts(uint64_t *counts, int n, const kopt_engine_bucket_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        counts[b[i].index < n ? b[i].index : n - 1] += b[i].count;
}

/* Closes the point being filled: percentiles from the merged histograms. */
static void finish_point(usage_job_t *j, Kopt__V1__UsagePoint *pt)
{
    pt->cpu_p50_cores = percentile(j->cpu_counts, KOPT_CPU_BUCKETS, 0.5, kopt_cpu_bucket_upper);
    pt->cpu_p95_cores = percentile(j->cpu_counts, KOPT_CPU_BUCKETS, 0.95, kopt_cpu_bucket_upper);
    pt->memory_p50_bytes =
        (uint64_t)percentile(j->mem_counts, KOPT_MEMORY_BUCKETS, 0.5, kopt_memory_bucket_upper);
    pt->memory_p95_bytes =
        (uint64_t)percentile(j->mem_counts, KOPT_MEMORY_BUCKETS, 0.95, kopt_memory_bucket_upper);
    memset(j->cpu_counts, 0, sizeof(j->cpu_counts));
    memset(j->mem_counts, 0, sizeof(j->mem_counts));
}

static int build(usage_job_t *j)
{
    const adv_usage_rows_t *u = &j->rows;
    size_t n_series = 0, n_points = 0;
    Kopt__V1__UsagePoint *pt = NULL;
    int64_t cur_step = -1;

    j->series = calloc(u->n + 1, sizeof(*j->series));
    j->series_p = calloc(u->n + 1, sizeof(*j->series_p));
    j->points = calloc(u->n + 1, sizeof(*j->points));
    j->points_p = calloc(u->n + 1, sizeof(*j->points_p));
    j->times = calloc(u->n + 1, sizeof(*j->times));
    if (!j->series || !j->series_p || !j->points || !j->points_p || !j->times)
        return -ENOMEM;
    for (size_t i = 0; i < u->n; i++) {
        const adv_usage_row_t *row = &u->rows[i];
        Kopt__V1__ContainerUsageSeries *s = n_series ? &j->series[n_series - 1] : NULL;
        int64_t step = j->from + (row->hour - j->from) / j->step * j->step;

        if (!s || strcmp(s->container, row->container) != 0) {
            if (pt)
                finish_point(j, pt);
            pt = NULL;
            s = &j->series[n_series];
            kopt__v1__container_usage_series__init(s);
            s->container = row->container;
            s->points = &j->points_p[n_points];
            j->series_p[n_series++] = s;
            cur_step = -1;
        }
        if (step != cur_step || !pt) {
            if (pt)
                finish_point(j, pt);
            pt = &j->points[n_points];
            kopt__v1__usage_point__init(pt);
            google__protobuf__timestamp__init(&j->times[n_points]);
            j->times[n_points].seconds = step;
            pt->time = &j->times[n_points];
            j->points_p[n_points++] = pt;
            s->n_points++;
            cur_step = step;
        }
        add_counts(j->cpu_counts, KOPT_CPU_BUCKETS, row->cpu, row->n_cpu);
        add_counts(j->mem_counts, KOPT_MEMORY_BUCKETS, row->mem, row->n_mem);
        pt->cpu_max_cores = row->cpu_peak > pt->cpu_max_cores ? row->cpu_peak : pt->cpu_max_cores;
        pt->memory_max_bytes =
            row->mem_peak > pt->memory_max_bytes ? row->mem_peak : pt->memory_max_bytes;
        /* Requests and limits at the end of the step: the latest hour's. */
        pt->cpu_request_cores = row->res.cpu_request_cores;
        pt->cpu_limit_cores = row->res.cpu_limit_cores;
        pt->memory_request_bytes = row->res.memory_request_bytes;
        pt->memory_limit_bytes = row->res.memory_limit_bytes;
        pt->pods = row->pods > pt->pods ? row->pods : pt->pods;
        pt->oom_kills += row->oom_kills;
        pt->cpu_throttled_seconds += row->throttled_s;
    }
    if (pt)
        finish_point(j, pt);
    j->resp.n_series = n_series;
    j->resp.series = j->series_p;
    return 0;
}

static void work(uv_work_t *w)
{
    usage_job_t *j = kopt_container_of(w, usage_job_t, work);
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t err = {0};
    kopt_span_t span; /* the query, a child of the call's span */
    int r;

    kopt_span_start(&span, "clickhouse.query container_hourly", KOPT_SPAN_CLIENT,
                    j->reply->span.active ? &j->reply->span.ctx : NULL);
    kopt_span_attr(&span, "db.system", "clickhouse");
    kopt_span_attr(&span, "db.sql.table", "container_hourly");
    if (!j->reply->span.active)
        span.active = 0; /* no call span: no orphan query span either */
    r = kopt_ch_client_new(adv_api_opts(j->api)->ch, &ch, &err);
    if (r == 0)
        r = adv_ch_load_usage(ch, j->cluster, j->namespace_, j->kind, j->name, j->container,
                              j->from, j->to, &j->rows, &err);
    kopt_ch_client_free(ch);
    kopt_span_end(&span, r < 0, r < 0 ? "query failed" : NULL);
    if (r < 0) {
        /* ClickHouse's or libcurl's text names internal hosts and tables:
         * it goes to the log, the caller gets a plain sentence. */
        kopt_log_warn("reading usage failed", KOPT_STR("cluster", j->cluster),
                      KOPT_STR("namespace", j->namespace_), KOPT_STR("name", j->name),
                      KOPT_STR("error", err.message), KOPT_ERR(r));
        snprintf(j->message, sizeof(j->message), "reading usage failed; try again later");
        j->status = r;
        return;
    }
    j->status = build(j);
}

static void job_free(usage_job_t *j)
{
    adv_usage_rows_free(&j->rows);
    free(j->cluster);
    free(j->namespace_);
    free(j->kind);
    free(j->name);
    free(j->container);
    free(j->series);
    free(j->series_p);
    free(j->points);
    free(j->points_p);
    free(j->times);
    free(j);
}

static void after(uv_work_t *w, int status)
{
    usage_job_t *j = kopt_container_of(w, usage_job_t, work);
    char why[400];

    adv_api_pending_add(j->api, -1);
    if (status < 0 || j->status == -ENOMEM) {
        j->reply->fn(j->reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    } else if (j->status < 0) {
        j->reply->fn(j->reply, GRPC_STATUS_UNAVAILABLE, j->message, NULL);
    } else if (j->resp.n_series == 0 && !j->known) {
        snprintf(why, sizeof(why), "no usage for %s %s/%s in cluster %s", j->kind, j->namespace_,
                 j->name, j->cluster);
        j->reply->fn(j->reply, GRPC_STATUS_NOT_FOUND, why, NULL);
    } else {
        kopt__v1__workload_ref__init(&j->ref);
        j->ref = (Kopt__V1__WorkloadRef){j->ref.base, j->cluster, j->namespace_,
                                         (Kopt__V1__WorkloadKind)j->kind_enum, j->name};
        google__protobuf__timestamp__init(&j->start);
        google__protobuf__timestamp__init(&j->end);
        google__protobuf__duration__init(&j->step_d);
        j->start.seconds = j->from;
        j->end.seconds = j->to;
        j->step_d.seconds = j->step;
        j->resp.workload = &j->ref;
        j->resp.start_time = &j->start;
        j->resp.end_time = &j->end;
        j->resp.step = &j->step_d;
        j->reply->fn(j->reply, GRPC_STATUS_OK, NULL, &j->resp.base);
    }
    job_free(j);
}

/* The range and step of a request; NULL or an INVALID_ARGUMENT text. */
static const char *range(const Kopt__V1__GetWorkloadUsageRequest *q, int64_t now, int64_t *from,
                         int64_t *to, int64_t *step)
{
    int64_t span;

    *to = q->end_time ? q->end_time->seconds + (q->end_time->nanos > 0) : now;
    *from = q->start_time ? q->start_time->seconds : *to - DEFAULT_RANGE;
    *from -= ((*from % HOUR) + HOUR) % HOUR; /* whole hours: the rollups' grain */
    if (*from >= *to)
        return "start_time must be before end_time";
    if (*to - *from > 400LL * 86400)
        return "the range may span 400 days at most";
    span = *to - *from;
    if (q->step && (q->step->seconds < 0 || (q->step->seconds == 0 && q->step->nanos < 0)))
        return "step must be positive";
    *step = q->step ? q->step->seconds + (q->step->nanos > 0) : span / TARGET_POINTS;
    if (*step < HOUR)
        *step = HOUR;
    *step = (*step + HOUR - 1) / HOUR * HOUR;
    if (span / *step > MAX_POINTS)
        *step = (span / MAX_POINTS + HOUR - 1) / HOUR * HOUR;
    return NULL;
}

void adv_api_get_workload_usage(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *r)
{
    const Kopt__V1__GetWorkloadUsageRequest *q = (const Kopt__V1__GetWorkloadUsageRequest *)msg;
    const adv_api_opts_t *o = adv_api_opts(api);
    usage_job_t *j;
    adv_results_t *res;
    const char *bad = NULL;
    int64_t from, to, step;

    if (!*q->cluster || !*q->namespace_ || !*q->name || !*adv_kind_name((int)q->kind))
        bad = "cluster, namespace, kind and name are required";
    if (!bad)
        bad = range(q, (int64_t)time(NULL), &from, &to, &step);
    if (bad) {
        r->fn(r, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        r->fn(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    kopt__v1__get_workload_usage_response__init(&j->resp);
    j->api = api;
    j->reply = r;
    j->cluster = strdup(q->cluster);
    j->namespace_ = strdup(q->namespace_);
    j->kind = strdup(adv_kind_name((int)q->kind));
    j->name = strdup(q->name);
    j->container = strdup(q->container);
    j->kind_enum = (int)q->kind;
    j->from = from;
    j->to = to;
    j->step = step;
    res = adv_snapshot_acquire(o->store);
    j->known = adv_results_find(res, q->cluster, q->namespace_, (int)q->kind, q->name) != NULL;
    adv_results_release(res);
    if (!j->cluster || !j->namespace_ || !j->kind || !j->name || !j->container ||
        uv_queue_work(o->loop, &j->work, work, after) < 0) {
        job_free(j);
        r->fn(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    adv_api_pending_add(api, 1);
}
