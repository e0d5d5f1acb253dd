/* RowBinary rows for workload_facts and node_facts; see rows.h. A row
 * is the state an agent saw when it built the batch, versioned by the
 * batch's created time, so a re-delivered batch writes the same row again. */
#include <errno.h>
#include <stdint.h>

#include "rows.h"

#define DATETIME_MAX 4294967295LL

#define IFOK(r, call)                                                                              \
    do {                                                                                           \
        if ((r) == 0)                                                                              \
            (r) = (call);                                                                          \
    } while (0)

const char *agg_rowbinary_qos_class(int qos)
{
    switch (qos) {
    case KOPT__V1__QOS_CLASS__QOS_CLASS_GUARANTEED:
        return "Guaranteed";
    case KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE:
        return "Burstable";
    case KOPT__V1__QOS_CLASS__QOS_CLASS_BEST_EFFORT:
        return "BestEffort";
    default:
        return "";
    }
}

const char *agg_rowbinary_metric_source(int source)
{
    switch (source) {
    case KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V1:
        return "cgroup-v1";
    case KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2:
        return "cgroup-v2";
    case KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_KUBELET:
        return "kubelet";
    case KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_PROC:
        return "proc";
    default:
        return "";
    }
}

static int observed_at(const Kopt__V1__MetricBatch *m, uint32_t *out)
{
    if (!m->created || m->created->seconds <= 0 || m->created->seconds > DATETIME_MAX)
        return -EINVAL;
    *out = (uint32_t)m->created->seconds;
    return 0;
}

int agg_rowbinary_workload_facts(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m,
                                 const Kopt__V1__WorkloadFacts *wf, size_t *key_len)
{
    static const Kopt__V1__HpaFacts no_hpa = KOPT__V1__HPA_FACTS__INIT;
    const Kopt__V1__HpaFacts *h = wf->hpa ? wf->hpa : &no_hpa;
    size_t mark = b->len;
    uint32_t t;
    int r = observed_at(m, &t);

    IFOK(r, kopt_ch_put_string(b, m->cluster));
    IFOK(r, kopt_ch_put_string(b, wf->namespace_));
    IFOK(r, kopt_ch_put_string(b, agg_rowbinary_workload_kind(wf->kind)));
    IFOK(r, kopt_ch_put_string(b, wf->name));
    *key_len = b->len - mark;
    IFOK(r, kopt_ch_put_u32(b, t));
    IFOK(r, kopt_ch_put_string(b, m->node));
    IFOK(r, kopt_ch_put_u32(b, wf->replicas));
    IFOK(r, kopt_ch_put_u32(b, wf->ready_replicas));
    IFOK(r, kopt_ch_put_string(b, agg_rowbinary_qos_class(wf->qos_class)));
    IFOK(r, kopt_ch_put_string(b, h->name));
    IFOK(r, kopt_ch_put_u32(b, h->min_replicas));
    IFOK(r, kopt_ch_put_u32(b, h->max_replicas));
    IFOK(r, kopt_ch_put_u32(b, h->target_cpu_utilization_percent));
    IFOK(r, kopt_ch_put_u32(b, h->target_memory_utilization_percent));
    IFOK(r, kopt_ch_put_strings(b, h->metric_names, h->n_metric_names));
    if (r < 0)
        b->len = mark;
    return r;
}

int agg_rowbinary_node_facts(kopt_ch_buf_t *b, const Kopt__V1__MetricBatch *m, size_t *key_len)
{
    const Kopt__V1__NodeFacts *n = m->node_facts;
    size_t mark = b->len;
    uint32_t t;
    int r = n ? observed_at(m, &t) : -EINVAL;

    IFOK(r, kopt_ch_put_string(b, m->cluster));
    IFOK(r, kopt_ch_put_string(b, m->node));
    *key_len = b->len - mark;
    IFOK(r, kopt_ch_put_u32(b, t));
    if (r < 0) {
        b->len = mark;
        return r;
    }
    r = kopt_ch_put_f64(b, n->cpu_capacity_cores);
    IFOK(r, kopt_ch_put_f64(b, n->cpu_allocatable_cores));
    IFOK(r, kopt_ch_put_u64(b, n->memory_capacity_bytes));
    IFOK(r, kopt_ch_put_u64(b, n->memory_allocatable_bytes));
    IFOK(r, kopt_ch_put_string(b, n->kernel_version));
    IFOK(r, kopt_ch_put_string(b, n->kubelet_version));
    IFOK(r, kopt_ch_put_string(b, n->container_runtime_version));
    IFOK(r, kopt_ch_put_string(b, n->architecture));
    IFOK(r, kopt_ch_put_string(b, n->instance_type));
    IFOK(r, kopt_ch_put_string(b, n->zone));
    IFOK(r, kopt_ch_put_string(b, n->region));
    IFOK(r, kopt_ch_put_string(b, agg_rowbinary_metric_source(n->metric_source)));
    IFOK(r, kopt_ch_put_varuint(b, n->n_labels));
    for (size_t i = 0; i < n->n_labels && r == 0; i++)
        r = kopt_ch_put_string(b, n->labels[i]->key);
    IFOK(r, kopt_ch_put_varuint(b, n->n_labels));
    for (size_t i = 0; i < n->n_labels && r == 0; i++)
        r = kopt_ch_put_string(b, n->labels[i]->value);
    if (r < 0)
        b->len = mark;
    return r;
}
