/* RowBinary rows for container_windows (the aggregator's inserts), written
 * with kopt_clickhouse's encoder (kopt/rowbinary.h); see rows.h. */
#include "rows.h"

#include <errno.h>

#define DATETIME_MAX 4294967295LL /* DateTime is UInt32 seconds */
/* nats.c-style chaining: run the call only while everything succeeded. */
#define IFOK(r, call)                                                                              \
    do {                                                                                           \
        if ((r) == 0)                                                                              \
            (r) = (call);                                                                          \
    } while (0)

const char *agg_rowbinary_workload_kind(int kind)
{
    switch (kind) {
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT:
        return "Deployment";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET:
        return "StatefulSet";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DAEMON_SET:
        return "DaemonSet";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_JOB:
        return "Job";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_CRON_JOB:
        return "CronJob";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_REPLICA_SET:
        return "ReplicaSet";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_POD:
        return "Pod";
    case KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_PROCESS_GROUP:
        return "ProcessGroup"; /* the proc source's groups; the advisor's name too */
    default:
        return "";
    }
}

static int datetime(const Google__Protobuf__Timestamp *t, uint32_t *out)
{
    if (!t || t->seconds < 0 || t->seconds > DATETIME_MAX)
        return -EINVAL;
    *out = (uint32_t)t->seconds;
    return 0;
}

int agg_rowbinary_window(kopt_ch_buf_t *b, const agg_rowbinary_batch_t *batch,
                         const Kopt__V1__ContainerWindow *w)
{
    size_t mark = b->len;
    uint32_t start, end;
    int r;

    if (datetime(w->window_start, &start) < 0 || datetime(w->window_end, &end) < 0)
        return -EINVAL;
    /* The order is AGG_ROWBINARY_WINDOW_COLUMNS; test_rowbinary pins it. */
    r = kopt_ch_put_string(b, batch->cluster);
    IFOK(r, kopt_ch_put_string(b, w->namespace_));
    IFOK(r, kopt_ch_put_string(b, agg_rowbinary_workload_kind(w->workload_kind)));
    IFOK(r, kopt_ch_put_string(b, w->workload_name));
    IFOK(r, kopt_ch_put_string(b, w->pod));
    IFOK(r, kopt_ch_put_string(b, w->container));
    IFOK(r, kopt_ch_put_string(b, batch->node));
    IFOK(r, kopt_ch_put_string(b, w->pod_uid));
    IFOK(r, kopt_ch_put_string(b, w->container_id));
    IFOK(r, kopt_ch_put_u32(b, start));
    IFOK(r, kopt_ch_put_u32(b, end));
    IFOK(r, kopt_ch_put_f64(b, w->cpu_usage_mean_cores));
    IFOK(r, kopt_ch_put_f64(b, w->cpu_usage_peak_cores));
    IFOK(r, kopt_ch_put_f64(b, w->cpu_throttled_seconds));
    IFOK(r, kopt_ch_put_u64(b, w->cpu_throttled_periods));
    IFOK(r, kopt_ch_put_u64(b, w->cpu_periods));
    IFOK(r, kopt_ch_put_u64(b, w->memory_working_set_peak_bytes));
    IFOK(r, kopt_ch_put_u64(b, w->memory_working_set_last_bytes));
    IFOK(r, kopt_ch_put_u64(b, w->memory_rss_peak_bytes));
    IFOK(r, kopt_ch_put_u32(b, w->oom_kills));
    IFOK(r, kopt_ch_put_u32(b, w->restarts));
    IFOK(r, kopt_ch_put_f64(b, w->cpu_request_cores));
    IFOK(r, kopt_ch_put_f64(b, w->cpu_limit_cores));
    IFOK(r, kopt_ch_put_u64(b, w->memory_request_bytes));
    IFOK(r, kopt_ch_put_u64(b, w->memory_limit_bytes));
    IFOK(r, kopt_ch_put_u32(b, w->sample_count));
    IFOK(r, kopt_ch_put_string(b, batch->agent_id));
    IFOK(r, kopt_ch_put_u64(b, batch->epoch));
    IFOK(r, kopt_ch_put_u64(b, batch->seq));
    IFOK(r, kopt_ch_put_u32(b, batch->inserted_at));
    if (r < 0)
        b->len = mark;
    return r;
}

int agg_rowbinary_metric_batch(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m,
                               uint32_t inserted_at, size_t *rows)
{
    agg_rowbinary_batch_t id = {
        .cluster = m->cluster,
        .node = m->node,
        .agent_id = m->agent_id,
        .epoch = m->epoch,
        .seq = m->seq,
        .inserted_at = inserted_at,
    };
    size_t mark = b->len;
    int r = 0;

    *rows = 0;
    for (size_t i = 0; i < m->n_windows && r == 0; i++)
        r = agg_rowbinary_window(b, &id, m->windows[i]);
    if (r < 0) {
        b->len = mark;
        return r;
    }
    *rows = m->n_windows;
    return 0;
}
