/* Kubernetes metadata as plain structs: pure parsers from the API server's
 * JSON (PodList, ReplicaSet/Job/... objects or lists, HPA autoscaling/v2
 * lists, a Node) and the owner-chain resolution Pod → ReplicaSet →
 * Deployment, Job → CronJob. No I/O and no globals, so they are unit-tested
 * on recorded responses and fuzzed (tests/fuzz/fuzz_kube_json.c). Every list
 * is capped by the caller's limits; what did not fit is counted, not kept. */
#ifndef AGENT_KUBE_META_H
#define AGENT_KUBE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Same numbers as kopt.v1.WorkloadKind, so a cast converts. */
typedef enum {
    AGENT_KUBE_KIND_UNSPECIFIED = 0, /* a controller kopt does not know (Argo Rollout, ...) */
    AGENT_KUBE_KIND_DEPLOYMENT = 1,
    AGENT_KUBE_KIND_STATEFUL_SET = 2,
    AGENT_KUBE_KIND_DAEMON_SET = 3,
    AGENT_KUBE_KIND_JOB = 4,
    AGENT_KUBE_KIND_CRON_JOB = 5,
    AGENT_KUBE_KIND_REPLICA_SET = 6,
    AGENT_KUBE_KIND_POD = 7,
} agent_kube_kind_t;

/* Same numbers as kopt.v1.QosClass. */
typedef enum {
    AGENT_KUBE_QOS_UNSPECIFIED = 0,
    AGENT_KUBE_QOS_GUARANTEED = 1,
    AGENT_KUBE_QOS_BURSTABLE = 2,
    AGENT_KUBE_QOS_BEST_EFFORT = 3,
} agent_kube_qos_t;

/* Field sizes follow Kubernetes' own limits (names are DNS subdomains of at
 * most 253 characters, namespaces and container names DNS labels of 63, UIDs
 * 36); an object whose field does not fit is skipped and counted. */
#define AGENT_KUBE_NS_MAX 64
#define AGENT_KUBE_NAME_MAX 254
#define AGENT_KUBE_UID_MAX 40
#define AGENT_KUBE_KIND_MAX 64
#define AGENT_KUBE_CID_MAX 160 /* "containerd://" + 64 hex digits, with room */
#define AGENT_KUBE_RV_MAX 64
#define AGENT_KUBE_HPA_MAX_METRICS 8
#define AGENT_KUBE_METRIC_NAME_MAX 128

typedef struct {
    char name[AGENT_KUBE_NS_MAX];
    char id[AGENT_KUBE_CID_MAX]; /* "containerd://<hex>"; "" before it starts */
    bool init;                   /* from spec.initContainers (sidecars included) */
    double cpu_request_cores;    /* 0 = not set */
    double cpu_limit_cores;
    uint64_t memory_request_bytes; /* bytes; 0 = not set */
    uint64_t memory_limit_bytes;
    uint32_t restart_count;
    bool last_oom;                /* lastState.terminated.reason == "OOMKilled" */
    int64_t last_oom_finished_ms; /* its finishedAt, ms since the Unix epoch; 0 = unknown */
} agent_kube_container_t;

typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    char name[AGENT_KUBE_NAME_MAX];
    char uid[AGENT_KUBE_UID_MAX];
    /* The controller owner reference (controller: true), "" for a bare pod. */
    char owner_kind[AGENT_KUBE_KIND_MAX];
    char owner_name[AGENT_KUBE_NAME_MAX];
    char owner_uid[AGENT_KUBE_UID_MAX];
    /* Label pod-template-hash: set by the Deployment controller only; lets
     * the resolver name the Deployment when its ReplicaSet is not known. */
    char template_hash[AGENT_KUBE_NS_MAX];
    agent_kube_qos_t qos;
    bool terminal; /* phase Succeeded or Failed */
    size_t n_containers;
    agent_kube_container_t *containers; /* owned, n_containers long */
} agent_kube_pod_t;

/* Caps applied while parsing; 0 means the default in parentheses. */
typedef struct {
    size_t max_items;      /* objects in one list (1024) */
    size_t max_containers; /* containers + init containers of one pod (32) */
} agent_kube_limits_t;

typedef struct {
    agent_kube_pod_t *pods; /* owned */
    size_t n_pods;
    size_t dropped_items;      /* past max_items, or invalid (missing/oversized names) */
    size_t dropped_containers; /* past max_containers */
    char resource_version[AGENT_KUBE_RV_MAX]; /* metadata.resourceVersion of the list */
} agent_kube_pod_list_t;

/* A workload object: ReplicaSet, Deployment, StatefulSet, DaemonSet, Job or
 * CronJob, with its controller owner and its replica counts. */
typedef struct {
    agent_kube_kind_t kind; /* UNSPECIFIED for a kind kopt does not know */
    char kind_name[AGENT_KUBE_KIND_MAX];
    char namespace_[AGENT_KUBE_NS_MAX];
    char name[AGENT_KUBE_NAME_MAX];
    char uid[AGENT_KUBE_UID_MAX];
    char owner_kind[AGENT_KUBE_KIND_MAX];
    char owner_name[AGENT_KUBE_NAME_MAX];
    char owner_uid[AGENT_KUBE_UID_MAX];
    /* Desired and ready: spec.replicas (default 1) and status.readyReplicas;
     * DaemonSet desiredNumberScheduled and numberReady; Job parallelism and
     * status.ready; CronJob its active Jobs, both. */
    uint32_t replicas;
    uint32_t ready_replicas;
} agent_kube_object_t;

typedef struct {
    agent_kube_object_t *items; /* owned */
    size_t n_items;
    size_t dropped_items;
    char resource_version[AGENT_KUBE_RV_MAX];
} agent_kube_object_list_t;

typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    char name[AGENT_KUBE_NAME_MAX];
    char target_kind[AGENT_KUBE_KIND_MAX]; /* spec.scaleTargetRef */
    char target_name[AGENT_KUBE_NAME_MAX];
    uint32_t min_replicas; /* default 1 */
    uint32_t max_replicas;
    uint32_t target_cpu_utilization_percent; /* 0 = none */
    uint32_t target_memory_utilization_percent;
    size_t n_metrics; /* names past AGENT_KUBE_HPA_MAX_METRICS are dropped */
    char metric_names[AGENT_KUBE_HPA_MAX_METRICS][AGENT_KUBE_METRIC_NAME_MAX];
} agent_kube_hpa_t;

typedef struct {
    agent_kube_hpa_t *items; /* owned */
    size_t n_items;
    size_t dropped_items;
    char resource_version[AGENT_KUBE_RV_MAX];
} agent_kube_hpa_list_t;

/* What kopt.v1.NodeFacts needs from a Node object (GET /api/v1/nodes/NAME). */
typedef struct {
    char name[AGENT_KUBE_NAME_MAX];
    double cpu_capacity_cores;
    double cpu_allocatable_cores;
    uint64_t memory_capacity_bytes;
    uint64_t memory_allocatable_bytes;
    char kernel_version[AGENT_KUBE_NS_MAX];
    char kubelet_version[AGENT_KUBE_NS_MAX];
    char container_runtime_version[AGENT_KUBE_NS_MAX];
    char architecture[32];
    char instance_type[AGENT_KUBE_NS_MAX];
    char zone[AGENT_KUBE_NS_MAX];
    char region[AGENT_KUBE_NS_MAX];
} agent_kube_node_t;

/* The workload a pod belongs to, after following its owners to the top. */
typedef struct {
    agent_kube_kind_t kind;
    char name[AGENT_KUBE_NAME_MAX];
    bool complete; /* false: an owner was not known and the name is a best guess */
} agent_kube_workload_ref_t;

/* --- Quantities and times ---------------------------------------------------
 * A Kubernetes resource quantity ("250m", "1", "1.5", "512Mi", "1G", "1e3",
 * "100n") as a number in base units: cores for CPU, bytes for memory.
 * 0, or -EINVAL (not a quantity, negative) or -ERANGE (above 2^63). */
int agent_kube_quantity_parse(const char *s, double *out);

/* The same, rounded up to whole bytes (as the kubelet does). */
int agent_kube_quantity_bytes(const char *s, uint64_t *out);

/* RFC 3339 ("2024-03-01T10:15:30Z", fractions and offsets too) to ms since
 * the Unix epoch. 0 or -EINVAL. */
int agent_kube_time_parse(const char *s, int64_t *out);

/* "Deployment" → AGENT_KUBE_KIND_DEPLOYMENT, ...; UNSPECIFIED when unknown. */
agent_kube_kind_t agent_kube_kind_from_name(const char *kind);
const char *agent_kube_kind_name(agent_kube_kind_t kind);

/* --- Parsers ----------------------------------------------------------------
 * Each takes a whole response body (not NUL-terminated; len bytes), fills the
 * caller's out (which it zeroes first) and returns 0, -EINVAL when the body is
 * not the expected JSON, or -ENOMEM. On error out holds nothing to free.
 * Items that lack a name or do not fit are skipped and counted. */

/* A PodList (or a single Pod). */
int agent_kube_parse_pods(const char *json, size_t len, const agent_kube_limits_t *limits,
                          agent_kube_pod_list_t *out);
void agent_kube_pod_list_clear(agent_kube_pod_list_t *l);

/* A list of workload objects of any kind above, or a single object. */
int agent_kube_parse_objects(const char *json, size_t len, const agent_kube_limits_t *limits,
                             agent_kube_object_list_t *out);
void agent_kube_object_list_clear(agent_kube_object_list_t *l);

/* A HorizontalPodAutoscalerList (autoscaling/v2), or a single HPA. */
int agent_kube_parse_hpas(const char *json, size_t len, const agent_kube_limits_t *limits,
                          agent_kube_hpa_list_t *out);
void agent_kube_hpa_list_clear(agent_kube_hpa_list_t *l);

/* A Node object. */
int agent_kube_parse_node(const char *json, size_t len, agent_kube_node_t *out);

/* --- Owner resolution -------------------------------------------------------
 * `find` returns the object (kind name as in ownerReferences) or NULL. */
typedef const agent_kube_object_t *(*agent_kube_find_fn)(void *data, const char *ns,
                                                         const char *kind_name, const char *name);

/* Follows the pod's controller owners up to the workload: a ReplicaSet owned
 * by a Deployment is the Deployment, a Job owned by a CronJob the CronJob, a
 * pod without a controller (or a static pod, owned by its Node) the pod.
 * When a ReplicaSet is unknown but the pod carries pod-template-hash, the
 * Deployment's name is the ReplicaSet's without "-<hash>" (complete=false). */
void agent_kube_resolve_owner(const agent_kube_pod_t *pod, agent_kube_find_fn find, void *data,
                              agent_kube_workload_ref_t *out);

/* The HPA (among n) that targets the workload, or NULL. */
const agent_kube_hpa_t *agent_kube_hpa_for(const agent_kube_hpa_t *hpas, size_t n, const char *ns,
                                           agent_kube_kind_t kind, const char *name);

#endif
