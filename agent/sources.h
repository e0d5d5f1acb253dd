/* The one place that chooses the measurement source (cgroup, kubelet, proc,
 * or auto), reads it each tick into kopt_sample_t, keeps the Kubernetes
 * metadata cache fresh, and says what a window's key is (its metadata).
 * Blocking work (the API server, the kubelet) runs in uv_queue_work; every
 * callback comes back on the loop thread. Window keys: "c/<pod uid>/<id>"
 * (cgroup), "k/<pod uid>/<container>" (kubelet), the rule name (proc). */
#ifndef KOPT_AGENT_SOURCES_H
#define KOPT_AGENT_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/metrics.h>

#include "batch.h"
#include "kube_cache.h"
#include "window.h"

typedef struct kopt_sources kopt_sources_t;

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
    uint64_t metadata_refresh_ms;
    int kubelet_mode; /* KUBELET_MODE_* */
    const char *kubelet_url;
    bool kubelet_insecure_tls;
} kopt_sources_opts_t;

/* Receives every reading, on the loop thread (kubelet readings arrive when
 * the fetch that a tick started completes). */
typedef void (*kopt_sample_fn)(void *data, const kopt_sample_t *s);

/* Chooses the source (logging which and why), loads the Kubernetes config
 * and starts the metadata refresh. -EINVAL (bad rules, no config for the
 * chosen source; logged), -ENOMEM. */
int kopt_sources_new(uv_loop_t *loop, const kopt_sources_opts_t *opts, kopt_metrics_t *metrics,
                     kopt_sample_fn add, void *data, kopt_sources_t **out);

/* Stops timers; the memory goes once in-flight work has come back. The
 * sample callback is never called after this. NULL is a no-op. */
void kopt_sources_free(kopt_sources_t *s);

/* Reads the source at now_ms (kubelet: starts a fetch unless one runs). */
int kopt_sources_tick(kopt_sources_t *s, int64_t now_ms);

/* Kopt__V1__MetricSource of what is read. */
int kopt_sources_metric_source(const kopt_sources_t *s);

/* The metadata cache, or NULL without Kubernetes. */
kopt_kube_cache_t *kopt_sources_kube(const kopt_sources_t *s);

/* Completed metadata refreshes (successful or not); a held-back window
 * waits until this passes the value it was held at. */
uint64_t kopt_sources_generation(const kopt_sources_t *s);

/* What a window's container is: the strings live in the struct. */
typedef struct {
    char namespace_[KOPT_KUBE_NS_MAX];
    char pod[KOPT_KUBE_NAME_MAX];
    char pod_uid[KOPT_KUBE_UID_MAX];
    char container[KOPT_KUBE_NS_MAX];
    char container_id[KOPT_KUBE_CID_MAX];
    char workload_name[KOPT_KUBE_NAME_MAX];
    int workload_kind;
    double cpu_request_cores, cpu_limit_cores;
    uint64_t memory_request_bytes, memory_limit_bytes;
    uint32_t restarts; /* during the window */
} kopt_window_meta_t;

typedef enum {
    KOPT_META_FOUND,   /* complete */
    KOPT_META_WAIT,    /* unknown yet: hold the window until the next refresh */
    KOPT_META_PARTIAL, /* unknown after a refresh (or no API): what is known */
    KOPT_META_DROP,    /* a pause/sandbox container the API does not list */
} kopt_meta_result_t;

/* Describes the window `w` held since generation `held_gen`. */
kopt_meta_result_t kopt_sources_describe(kopt_sources_t *s, const kopt_window_t *w,
                                         uint64_t held_gen, kopt_window_meta_t *out);

/* A kopt_container_meta_t that points into m. */
void kopt_window_meta_view(const kopt_window_meta_t *m, kopt_container_meta_t *out);

#endif
