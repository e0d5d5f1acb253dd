/* kopt-agent's settings: the table behind its flags, KOPT_ variables and
 * YAML keys (see --help and docs/configuration.md). */
#ifndef AGENT_SETTINGS_H
#define AGENT_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <kopt/config.h>
#include <kopt/daemon.h>

enum { SOURCE_AUTO, SOURCE_CGROUP, SOURCE_KUBELET, SOURCE_PROC };
enum { OUTPUT_NONE, OUTPUT_JSON };
enum { KUBELET_MODE_PROXY, KUBELET_MODE_DIRECT };

typedef struct {
    kopt_daemon_settings_t common; /* first: see kopt/daemon.h */
    kopt_config_list_t ingest;
    char *cluster, *node, *agent_id;
    int source;
    char *spool_dir;
    uint64_t spool_max_bytes;
    uint64_t max_batch_bytes;
    uint64_t spool_max_age_ms;
    int spool_fsync;
    uint64_t sample_interval_ms;
    uint64_t window_ms;
    int64_t max_containers;
    char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    bool insecure;
    int64_t send_window;
    kopt_config_list_t proc_rules;
    char *proc_namespace;
    char *proc_root;
    char *cgroup_root;
    /* Kubernetes: where the API server is and how to reach the kubelet. */
    char *kubeconfig, *api_server, *token_file, *ca_file;
    bool api_server_insecure_http;
    uint64_t metadata_refresh_ms;
    char *kubelet_url;
    int kubelet_mode;
    bool kubelet_insecure_tls;
    bool once;
    int output;
} agent_settings_t;

extern const kopt_config_spec_t agent_settings_spec;

#endif
