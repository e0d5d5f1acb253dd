/* Packs finished windows, with what the agent knows about each container,
 * its workloads and its node, into one serialized MetricBatch. Pure. */
#ifndef AGENT_BATCH_H
#define AGENT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kube_cache.h"
#include "window.h"

/* What metadata says about the container behind a window. */
typedef struct {
    const char *namespace_, *workload_name, *pod, *container, *container_id, *pod_uid;
    int workload_kind; /* Kopt__V1__WorkloadKind */
    double cpu_request_cores, cpu_limit_cores;
    uint64_t memory_request_bytes, memory_limit_bytes;
    uint32_t restarts;
} agent_container_meta_t;

typedef struct {
    const char *cluster, *node, *agent_id, *agent_version;
    uint64_t epoch, seq;
    int64_t created_ms;
    int metric_source; /* Kopt__V1__MetricSource */
    /* kopt.v1.NodeFacts: 0 and NULL mean "not known" (all but the capacity
     * come from the API server's Node). */
    double cpu_capacity_cores, cpu_allocatable_cores;
    uint64_t memory_capacity_bytes, memory_allocatable_bytes;
    const char *kernel_version, *kubelet_version, *container_runtime_version, *architecture,
        *instance_type, *zone, *region;
    /* kopt.v1.WorkloadFacts: one for each workload (none without the API
     * server); the caller lists each once. */
    const agent_kube_workload_t *workloads;
    size_t n_workloads;
} agent_batch_header_t;

/* `metas[i]` describes `wins[i]`. *out is malloc'd; the caller frees it.
 * 0 or -ENOMEM. */
int agent_batch_pack(const agent_batch_header_t *h, const agent_window_t *wins,
                     const agent_container_meta_t *metas, size_t n, uint8_t **out, size_t *len);

/* What agent_batch_pack() would make, in bytes, without making it. 0 or
 * -ENOMEM. */
int agent_batch_size(const agent_batch_header_t *h, const agent_window_t *wins,
                     const agent_container_meta_t *metas, size_t n, size_t *len);

/* How many of the first windows fit in one batch of at most `max_bytes`
 * with header `h` (*fit, at least 1 when n > 0). For a bound that holds
 * whatever id the batch gets, give `h` the largest epoch and seq and the
 * workloads of all n windows: fewer windows never pack larger. 0; -EFBIG
 * when even one window does not fit (*fit = 1); -ENOMEM. */
int agent_batch_fit(const agent_batch_header_t *h, const agent_window_t *wins,
                    const agent_container_meta_t *metas, size_t n, size_t max_bytes, size_t *fit);

/* The largest batch the agent makes unless told otherwise: under NATS's
 * default max_payload of 1 MiB, which ingest learns from its server and
 * enforces (docs/api.md, "Batch size"), with room for the Nats-Msg-Id
 * header of the longest agent id. Bytes. */
#define AGENT_BATCH_MAX_BYTES_DEFAULT 1000000

#endif
