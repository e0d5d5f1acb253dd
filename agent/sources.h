/* The one place that chooses the measurement source (cgroup, kubelet, proc,
 * or auto), reads it each tick into agent_sample_t, keeps the Kubernetes
 * metadata cache fresh, and says what a window's key is (its metadata).
 * Blocking work (the API server, the kubelet) runs in uv_queue_work; every
 * callback comes back on the loop thread. Window keys: "c/<pod uid>/<id>"
 * (cgroup), "k/<pod uid>/<container>" (kubelet), the rule name (proc). */
#ifndef AGENT_SOURCES_H
#define AGENT_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/metrics.h>

#include "batch.h"
#include "kube_cache.h"
#include "window.h"

typedef struct agent_sources agent_sources_t;

typedef struct {
    int source; /* SOURCE_* of settings.h */
    const char *node;
    const char *cgroup_root, *proc_root;
    const char *const *proc_rules;
    size_t n_proc_rules;
    const char *proc_namespace;
    /* Kubernetes credentials: kubeconfig, else api_server (+ token/CA
     * files), else in-cluster. Not used by the proc source. */
    const char *kubeconfig, *api_server, *token_file, *ca_file;
    bool api_server_insecure_http; /* http:// allowed (token in clear) */
    uint64_t metadata_refresh_ms;
    int kubelet_mode; /* KUBELET_MODE_* */
    const char *kubelet_url;
    bool kubelet_insecure_tls;
} agent_sources_opts_t;

/* Receives every reading, on the loop thread (kubelet readings arrive when
 * the fetch that a tick started completes). */
typedef void (*agent_sample_fn)(void *data, const agent_sample_t *s);

/* Chooses the source (logging which and why), loads the Kubernetes config
 * and starts the metadata refresh. -EINVAL (bad rules, no config for the
 * chosen source; logged), -ENOMEM. */
int agent_sources_new(uv_loop_t *loop, const agent_sources_opts_t *opts, kopt_metrics_t *metrics,
                      agent_sample_fn add, void *data, agent_sources_t **out);

/* Stops timers; the memory goes once in-flight work has come back. The
 * sample callback is never called after this. NULL is a no-op. */
void agent_sources_free(agent_sources_t *s);

/* Reads the source at now_ms (kubelet: starts a fetch unless one runs). */
int agent_sources_tick(agent_sources_t *s, int64_t now_ms);

/* Kopt__V1__MetricSource of what is read. */
int agent_sources_metric_source(const agent_sources_t *s);

/* The metadata cache, or NULL without Kubernetes. */
agent_kube_cache_t *agent_sources_kube(const agent_sources_t *s);

/* Completed metadata refreshes (successful or not); a held-back window
 * waits until this passes the value it was held at. */
uint64_t agent_sources_generation(const agent_sources_t *s);

/* What a window's container is: the strings live in the struct. */
typedef struct {
    char namespace_[AGENT_KUBE_NS_MAX];
    char pod[AGENT_KUBE_NAME_MAX];
    char pod_uid[AGENT_KUBE_UID_MAX];
    char container[AGENT_KUBE_NS_MAX];
    char container_id[AGENT_KUBE_CID_MAX];
    char workload_name[AGENT_KUBE_NAME_MAX];
    int workload_kind;
    double cpu_request_cores, cpu_limit_cores;
    uint64_t memory_request_bytes, memory_limit_bytes;
    uint32_t restarts; /* during the window */
} agent_window_meta_t;

typedef enum {
    AGENT_META_FOUND,   /* complete */
    AGENT_META_WAIT,    /* unknown yet: hold the window until the next refresh */
    AGENT_META_PARTIAL, /* unknown after a refresh (or no API): what is known */
    AGENT_META_DROP,    /* a pause/sandbox container the API does not list */
} agent_meta_result_t;

/* Describes the window `w` held since generation `held_gen`. */
agent_meta_result_t agent_sources_describe(agent_sources_t *s, const agent_window_t *w,
                                           uint64_t held_gen, agent_window_meta_t *out);

/* A agent_container_meta_t that points into m. */
void agent_window_meta_view(const agent_window_meta_t *m, agent_container_meta_t *out);

#endif
