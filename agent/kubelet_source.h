/* The `kubelet` measurement source: the kubelet's Summary API
 * (GET /stats/summary), read on the node itself (https://<node>:10250) or
 * through the API server's node proxy (/api/v1/nodes/<node>/proxy/stats/summary).
 * The parser is pure (fuzzed by tests/fuzz/fuzz_kube_json.c); the fetch is a
 * blocking GET through kube_client, for a worker thread. The Summary API
 * names pods by namespace, name and UID and containers by name (no runtime
 * id): join with kube_cache by pod UID and container name. */
#ifndef AGENT_KUBELET_SOURCE_H
#define AGENT_KUBELET_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube_client.h"
#include "kube_meta.h"

typedef struct {
    char name[AGENT_KUBE_NS_MAX];
    int64_t start_ms; /* startTime: a new value means the container restarted */
    int64_t at_ms;    /* cpu.time (or memory.time): when the kubelet sampled it */
    bool has_cpu, has_memory;
    uint64_t cpu_usage_core_ns;        /* cumulative CPU time, ns */
    uint64_t memory_working_set_bytes; /* usage minus inactive file */
    uint64_t memory_rss_bytes;
    uint64_t memory_usage_bytes;
} agent_kubelet_container_t;

typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    char name[AGENT_KUBE_NAME_MAX];
    char uid[AGENT_KUBE_UID_MAX];
    size_t n_containers;
    agent_kubelet_container_t *containers; /* owned */
} agent_kubelet_pod_t;

typedef struct {
    char node_name[AGENT_KUBE_NAME_MAX];
    int64_t at_ms;
    uint64_t cpu_usage_core_ns;    /* the whole node, cumulative */
    uint64_t cpu_usage_nano_cores; /* the kubelet's own recent rate */
    uint64_t memory_working_set_bytes;
    uint64_t memory_rss_bytes;
    uint64_t memory_usage_bytes;
    uint64_t memory_available_bytes;
    agent_kubelet_pod_t *pods; /* owned */
    size_t n_pods;
    size_t dropped_pods;       /* past limits->max_items, or without podRef */
    size_t dropped_containers; /* past limits->max_containers, or nameless */
} agent_kubelet_summary_t;

/* A /stats/summary body (len bytes, not NUL-terminated) into out (zeroed
 * first). limits may be NULL (1024 pods, 32 containers a pod). 0, -EINVAL
 * (not a summary), -ENOMEM; on error out holds nothing. */
int agent_kubelet_parse_summary(const char *json, size_t len, const agent_kube_limits_t *limits,
                                agent_kubelet_summary_t *out);
void agent_kubelet_summary_clear(agent_kubelet_summary_t *s);

/* The container of that pod UID and name, or NULL. */
const agent_kubelet_container_t *agent_kubelet_find(const agent_kubelet_summary_t *s,
                                                    const char *pod_uid, const char *container);

typedef enum {
    AGENT_KUBELET_DIRECT = 0, /* client points at https://<node>:10250 */
    AGENT_KUBELET_PROXY,      /* client points at the API server */
} agent_kubelet_mode_t;

/* A kubelet client's config: the API server's credentials (copied) with
 * server https://host:port (IPv6 in brackets). 0, -EINVAL, -ENOMEM. */
int agent_kubelet_config(const agent_kube_config_t *api, const char *host, int port,
                         agent_kube_config_t *out);

/* GETs and parses the summary. 0, a agent_kube_client_get() error, or a
 * parser error. */
int agent_kubelet_fetch(agent_kube_client_t *c, agent_kubelet_mode_t mode, const char *node,
                        const agent_kube_limits_t *limits, agent_kubelet_summary_t *out);

#endif
