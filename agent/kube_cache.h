/* The agent's view of Kubernetes for its own node: the node's pods with
 * their containers' requests, limits and states, the workload that owns each
 * (owners fetched by name and cached), the HPAs that target those workloads,
 * and the Node's facts. Refreshed by a list with resourceVersion every
 * --metadata-refresh (60 s by default, driven by sources.c; a 410 Gone
 * relists from scratch); read by the window code through copies. Bounded:
 * pods, containers, cached owners and HPAs have caps, and what did not fit is
 * counted.
 *
 * Threads: agent_kube_cache_refresh() does blocking HTTP and runs on one
 * worker thread at a time; the lookups may run on any thread meanwhile (a
 * refresh builds a new snapshot and swaps it in under a mutex). */
#ifndef AGENT_KUBE_CACHE_H
#define AGENT_KUBE_CACHE_H

#include <stdint.h>

#include "kube_client.h"
#include "kube_meta.h"

typedef struct {
    const char *node;      /* this node's name (copied); required */
    size_t max_pods;       /* pods kept (default 512) */
    size_t max_containers; /* containers of one pod (default 32) */
    size_t max_objects;    /* cached owner/workload objects (default 1024) */
    size_t max_hpas;       /* HPAs read from one list (default 4096) */
    unsigned object_ttl_s; /* re-read a cached workload after this (default 300) */
    bool no_hpas;          /* do not list HPAs (no RBAC for them) */
    bool no_node;          /* do not GET the Node */
} agent_kube_cache_config_t;

/* Everything the windows need about one container, copied out. */
typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    char pod[AGENT_KUBE_NAME_MAX];
    char pod_uid[AGENT_KUBE_UID_MAX];
    char container[AGENT_KUBE_NS_MAX];
    char container_id[AGENT_KUBE_CID_MAX];
    agent_kube_kind_t workload_kind;
    char workload_name[AGENT_KUBE_NAME_MAX];
    agent_kube_qos_t qos;
    double cpu_request_cores, cpu_limit_cores;
    uint64_t memory_request_bytes, memory_limit_bytes;
    uint32_t restart_count;
    bool last_oom;
    int64_t last_oom_finished_ms;
} agent_kube_container_meta_t;

/* kopt.v1.WorkloadFacts for one workload with pods on this node. */
typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    agent_kube_kind_t kind;
    char name[AGENT_KUBE_NAME_MAX];
    uint32_t replicas, ready_replicas;
    agent_kube_qos_t qos;
    bool has_hpa;
    agent_kube_hpa_t hpa;
} agent_kube_workload_t;

typedef struct {
    uint64_t refreshes;                      /* successful */
    uint64_t refresh_errors;                 /* pod list failed: the old view is kept */
    uint64_t relists;                        /* 410 Gone answered with a full relist */
    uint64_t object_fetches;                 /* GETs of owners and workloads */
    uint64_t object_errors;                  /* of which failed (not 404) */
    uint64_t objects_evicted;                /* cache full: least recently used dropped */
    uint64_t pods_dropped;                   /* past max_pods or invalid, last refresh */
    uint64_t containers_dropped;             /* past max_containers, last refresh */
    uint64_t hpas_dropped;                   /* past max_hpas, last refresh */
    uint64_t pods, objects, workloads, hpas; /* held now */
} agent_kube_cache_stats_t;

typedef struct agent_kube_cache agent_kube_cache_t;

/* `api` is kept, not owned: it must outlive the cache. 0, -EINVAL, -ENOMEM. */
int agent_kube_cache_new(agent_kube_client_t *api, const agent_kube_cache_config_t *cfg,
                         agent_kube_cache_t **out);
void agent_kube_cache_free(agent_kube_cache_t *c);

/* Lists the node's pods (with the last resourceVersion; relists on 410),
 * fetches unknown or stale owners, the HPAs and the Node, and swaps in the new
 * view. now_ms is the wall clock (ms) for the owner TTL. 0, or the pod list's
 * error as agent_kube_client_get() returns it (the previous view stays; owner,
 * HPA and Node errors only count and log). */
int agent_kube_cache_refresh(agent_kube_cache_t *c, int64_t now_ms);

/* The container with this runtime id ("containerd://<hex>" or just the hex,
 * as cgroup paths show it), or, when id is NULL or unknown, the container of
 * this name in the pod of this UID (dashes or underscores, as systemd cgroup
 * names write it). 0 or -ENOENT. */
int agent_kube_cache_container(agent_kube_cache_t *c, const char *container_id, const char *pod_uid,
                               const char *container_name, agent_kube_container_meta_t *out);

/* Facts of a workload with pods on this node. 0 or -ENOENT. */
int agent_kube_cache_workload(agent_kube_cache_t *c, const char *ns, agent_kube_kind_t kind,
                              const char *name, agent_kube_workload_t *out);

/* Facts of the node from the last successful GET. 0 or -ENOENT (none yet). */
int agent_kube_cache_node(agent_kube_cache_t *c, agent_kube_node_t *out);

void agent_kube_cache_stats(agent_kube_cache_t *c, agent_kube_cache_stats_t *out);

#endif
