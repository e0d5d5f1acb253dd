/* RowBinary rows for container_windows; see rowbinary.h. Byte order is
 * written out explicitly (not memcpy of host integers) so the encoding is
 * little-endian whatever the host is. */
#include "rowbinary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DATETIME_MAX 4294967295LL /* DateTime is UInt32 seconds */
/* nats.c-style chaining: run the call only while everything succeeded. */
#define IFOK(r, call)                                                                              \
    do {                                                                                           \
        if ((r) == 0)                                                                              \
            (r) = (call);                                                                          \
    } while (0)

void kopt_rowbinary_buf_init(kopt_rowbinary_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kopt_rowbinary_buf_free(kopt_rowbinary_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    kopt_rowbinary_buf_init(b);
}

static int reserve(kopt_rowbinary_buf_t *b, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int put_le(kopt_rowbinary_buf_t *b, uint64_t v, size_t width)
{
    int r = reserve(b, width);

    if (r < 0)
        return r;
    for (size_t i = 0; i < width; i++)
        b->data[b->len++] = (uint8_t)(v >> (8 * i));
    return 0;
}

int kopt_rowbinary_put_u32(kopt_rowbinary_buf_t *b, uint32_t v)
{
    return put_le(b, v, 4);
}

int kopt_rowbinary_put_u64(kopt_rowbinary_buf_t *b, uint64_t v)
{
    return put_le(b, v, 8);
}

int kopt_rowbinary_put_f64(kopt_rowbinary_buf_t *b, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits)); /* IEEE 754 binary64, as ClickHouse's Float64 */
    return put_le(b, bits, 8);
}

int kopt_rowbinary_put_varuint(kopt_rowbinary_buf_t *b, uint64_t v)
{
    int r = reserve(b, 10); /* a 64-bit LEB128 takes at most 10 bytes */

    if (r < 0)
        return r;
    do {
        uint8_t byte = v & 0x7f;

        v >>= 7;
        b->data[b->len++] = byte | (v ? 0x80 : 0);
    } while (v);
    return 0;
}

int kopt_rowbinary_put_string(kopt_rowbinary_buf_t *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int r = reserve(b, n + 10);

    if (r == 0)
        r = kopt_rowbinary_put_varuint(b, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

const char *kopt_rowbinary_workload_kind(int kind)
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

int kopt_rowbinary_window(kopt_rowbinary_buf_t *b, const kopt_rowbinary_batch_t *batch,
                          const Kopt__V1__ContainerWindow *w)
{
    size_t mark = b->len;
    uint32_t start, end;
    int r;

    if (datetime(w->window_start, &start) < 0 || datetime(w->window_end, &end) < 0)
        return -EINVAL;
    /* The order is KOPT_ROWBINARY_WINDOW_COLUMNS; test_rowbinary pins it. */
    r = kopt_rowbinary_put_string(b, batch->cluster);
    IFOK(r, kopt_rowbinary_put_string(b, w->namespace_));
    IFOK(r, kopt_rowbinary_put_string(b, kopt_rowbinary_workload_kind(w->workload_kind)));
    IFOK(r, kopt_rowbinary_put_string(b, w->workload_name));
    IFOK(r, kopt_rowbinary_put_string(b, w->pod));
    IFOK(r, kopt_rowbinary_put_string(b, w->container));
    IFOK(r, kopt_rowbinary_put_string(b, batch->node));
    IFOK(r, kopt_rowbinary_put_string(b, w->pod_uid));
    IFOK(r, kopt_rowbinary_put_string(b, w->container_id));
    IFOK(r, kopt_rowbinary_put_u32(b, start));
    IFOK(r, kopt_rowbinary_put_u32(b, end));
    IFOK(r, kopt_rowbinary_put_f64(b, w->cpu_usage_mean_cores));
    IFOK(r, kopt_rowbinary_put_f64(b, w->cpu_usage_peak_cores));
    IFOK(r, kopt_rowbinary_put_f64(b, w->cpu_throttled_seconds));
    IFOK(r, kopt_rowbinary_put_u64(b, w->cpu_throttled_periods));
    IFOK(r, kopt_rowbinary_put_u64(b, w->cpu_periods));
    IFOK(r, kopt_rowbinary_put_u64(b, w->memory_working_set_peak_bytes));
    IFOK(r, kopt_rowbinary_put_u64(b, w->memory_working_set_last_bytes));
    IFOK(r, kopt_rowbinary_put_u64(b, w->memory_rss_peak_bytes));
    IFOK(r, kopt_rowbinary_put_u32(b, w->oom_kills));
    IFOK(r, kopt_rowbinary_put_u32(b, w->restarts));
    IFOK(r, kopt_rowbinary_put_f64(b, w->cpu_request_cores));
    IFOK(r, kopt_rowbinary_put_f64(b, w->cpu_limit_cores));
    IFOK(r, kopt_rowbinary_put_u64(b, w->memory_request_bytes));
    IFOK(r, kopt_rowbinary_put_u64(b, w->memory_limit_bytes));
    IFOK(r, kopt_rowbinary_put_u32(b, w->sample_count));
    IFOK(r, kopt_rowbinary_put_string(b, batch->agent_id));
    IFOK(r, kopt_rowbinary_put_u64(b, batch->epoch));
    IFOK(r, kopt_rowbinary_put_u64(b, batch->seq));
    IFOK(r, kopt_rowbinary_put_u32(b, batch->inserted_at));
    if (r < 0)
        b->len = mark;
    return r;
}

int kopt_rowbinary_metric_batch(kopt_rowbinary_buf_t *b, const Kopt__V1__MetricBatch *m,
                                uint32_t inserted_at, size_t *rows)
{
    kopt_rowbinary_batch_t id = {
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
        r = kopt_rowbinary_window(b, &id, m->windows[i]);
    if (r < 0) {
        b->len = mark;
        return r;
    }
    *rows = m->n_windows;
    return 0;
}
