/* The rows the aggregator inserts, in RowBinary: container_windows
 * (rows.c), workload_facts and node_facts (rows_facts.c), from the decoded
 * protos, written with kopt_clickhouse's encoder (kopt/rowbinary.h: the
 * format and its primitives). Pure: no I/O, no globals; the only allocation
 * is the caller's growable buffer. The column order of a row is the
 * AGG_ROWBINARY_*_COLUMNS list, which the insert names explicitly, so the
 * table's own column order (and columns added later) do not matter. */
#ifndef AGG_ROWS_H
#define AGG_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/rowbinary.h>

#include "kopt/v1/metrics.pb-c.h"

/* The columns of one encoded row, in encoding order (for INSERT ... (cols)). */
#define AGG_ROWBINARY_WINDOW_COLUMNS                                                               \
    "cluster, namespace, workload_kind, workload_name, pod, container, node, pod_uid, "            \
    "container_id, window_start, window_end, cpu_usage_mean_cores, cpu_usage_peak_cores, "         \
    "cpu_throttled_seconds, cpu_throttled_periods, cpu_periods, memory_working_set_peak_bytes, "   \
    "memory_working_set_last_bytes, memory_rss_peak_bytes, oom_kills, restarts, "                  \
    "cpu_request_cores, cpu_limit_cores, memory_request_bytes, memory_limit_bytes, sample_count, " \
    "agent_id, epoch, seq, inserted_at"
#define AGG_ROWBINARY_WINDOW_NCOLUMNS 30

/* The batch a window came in: cluster, node and the idempotency id
 * (agent_id, epoch, seq). inserted_at is the ReplacingMergeTree version
 * (Unix seconds), normally the time of the insert. Strings are not kept. */
typedef struct {
    const char *cluster;
    const char *node;
    const char *agent_id;
    uint64_t epoch;
    uint64_t seq;
    uint32_t inserted_at;
} agg_rowbinary_batch_t;

/* Appends one row. Window times are truncated to whole seconds (DateTime).
 * -EINVAL when window_start/window_end is missing or outside DateTime's range
 * (1970 .. 2106), -ENOMEM. On error the buffer is left as it was. */
int agg_rowbinary_window(kopt_ch_buf_t *b, const agg_rowbinary_batch_t *batch,
                         const Kopt__V1__ContainerWindow *w);

/* Appends a row for every window of a decoded MetricBatch; *rows gets their
 * number. All or nothing: on error the buffer is left as it was. */
int agg_rowbinary_metric_batch(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m,
                               uint32_t inserted_at, size_t *rows);

/* The kind stored in workload_kind: the Kubernetes kind ("Deployment",
 * "StatefulSet", ...), "ProcessGroup" for the proc source's groups, "" for
 * UNSPECIFIED or an unknown value. */
const char *agg_rowbinary_workload_kind(int kind);

/* ---- facts: the latest state of workloads and nodes (rows_facts.c) */

/* workload_facts columns, in encoding order. The first four are the key. */
#define AGG_ROWBINARY_WORKLOAD_FACTS_COLUMNS                                                       \
    "cluster, namespace, workload_kind, workload_name, observed_at, node, replicas, "              \
    "ready_replicas, qos_class, hpa_name, hpa_min_replicas, hpa_max_replicas, "                    \
    "hpa_target_cpu_percent, hpa_target_memory_percent, hpa_metrics"

/* node_facts columns, in encoding order. The first two are the key. */
#define AGG_ROWBINARY_NODE_FACTS_COLUMNS                                                           \
    "cluster, node, observed_at, cpu_capacity_cores, cpu_allocatable_cores, "                      \
    "memory_capacity_bytes, memory_allocatable_bytes, kernel_version, kubelet_version, "           \
    "container_runtime_version, architecture, instance_type, zone, region, metric_source, "        \
    "label_keys, label_values"

/* Appends the workload_facts row of one WorkloadFacts of batch m, observed
 * at m->created; *key_len gets the length of the encoded key (the row's
 * first bytes), so equal keys compare with memcmp. -EINVAL when m has no
 * usable created time. On error the buffer is left as it was. */
int agg_rowbinary_workload_facts(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m,
                                 const Kopt__V1__WorkloadFacts *wf, size_t *key_len);

/* Appends the node_facts row of batch m (which must have node_facts), as
 * agg_rowbinary_workload_facts does. */
int agg_rowbinary_node_facts(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m, size_t *key_len);

/* Names stored for enums: "Guaranteed", "Burstable", "BestEffort"; "cgroup-v1",
 * "cgroup-v2", "kubelet", "proc"; "" when unspecified or unknown. */
const char *agg_rowbinary_qos_class(int qos);
const char *agg_rowbinary_metric_source(int source);

#endif
