/* The settings table of kopt-agent. */
#include "settings.h"

#include <stddef.h>

#define S agent_settings_t

static const char *const sources[] = {"auto", "cgroup", "kubelet", "proc", NULL};
static const char *const outputs[] = {"none", "json", NULL};
static const char *const kubelet_modes[] = {"proxy", "direct", NULL};
static const char *const fsyncs[] = {"always", "interval", "never", NULL};

static const kopt_config_setting_t settings[] = {
    KOPT_DAEMON_SETTINGS(S, ":7431"),
    {"ingest", KOPT_CONFIG_LIST, offsetof(S, ingest), "127.0.0.1:7400",
     "kopt-ingest addresses (host:port, comma-separated); each agent starts at the one its id "
     "hashes to and moves to the next when a stream gets nowhere",
     0, 0, 0, NULL},
    {"cluster", KOPT_CONFIG_STRING, offsetof(S, cluster), "local",
     "cluster name; must match the cluster in the client certificate", 0, 0, 0, NULL},
    {"node", KOPT_CONFIG_STRING, offsetof(S, node), NULL, "node name (default: the host name)", 0,
     0, 0, NULL},
    {"agent-id", KOPT_CONFIG_STRING, offsetof(S, agent_id), NULL,
     "agent id; must match the client certificate (default: dev-agent with --insecure, "
     "else read from the certificate)",
     0, 0, 0, NULL},
    {"source", KOPT_CONFIG_ENUM, offsetof(S, source), "auto",
     "what to measure: cgroup (kubepods), kubelet (/stats/summary), proc (processes by "
     "rules), or auto",
     0, 0, 0, sources},
    {"spool-dir", KOPT_CONFIG_PATH, offsetof(S, spool_dir), "/var/lib/kopt-agent/spool",
     "disk queue for batches not yet acknowledged by ingest", 0, 0, 0, NULL},
    {"spool-max-bytes", KOPT_CONFIG_BYTES, offsetof(S, spool_max_bytes), "256MiB",
     "spool size bound; the oldest batches are dropped (and counted) past it", 0, 0, 0, NULL},
    {"spool-max-age", KOPT_CONFIG_DURATION, offsetof(S, spool_max_age_ms), "336h",
     "spooled batches older than this are dropped (ingest refuses them anyway)", 0, 0, 0, NULL},
    {"spool-fsync", KOPT_CONFIG_ENUM, offsetof(S, spool_fsync), "always",
     "when spool writes reach the disk", 0, 0, 0, fsyncs},
    {"sample-interval", KOPT_CONFIG_DURATION, offsetof(S, sample_interval_ms), "10s",
     "how often usage is read", 0, 0, 0, NULL},
    {"window", KOPT_CONFIG_DURATION, offsetof(S, window_ms), "1m",
     "length of a usage window (a demo may shorten it)", 0, 0, 0, NULL},
    {"max-containers", KOPT_CONFIG_INT, offsetof(S, max_containers), "2000",
     "containers tracked at once; more are counted and skipped", 0, 1, 1000000, NULL},
    {"tls-ca", KOPT_CONFIG_PATH, offsetof(S, tls_ca), NULL,
     "PEM CA that signs ingest's certificate", 0, 0, 0, NULL},
    {"tls-cert", KOPT_CONFIG_PATH, offsetof(S, tls_cert), NULL,
     "PEM client certificate (URI SAN spiffe://kopt/cluster/<cluster>/agent/<id>)", 0, 0, 0, NULL},
    {"tls-key", KOPT_CONFIG_PATH, offsetof(S, tls_key), NULL, "PEM client private key", 0, 0, 0,
     NULL},
    {"tls-server-name", KOPT_CONFIG_STRING, offsetof(S, tls_server_name), NULL,
     "name to verify in ingest's certificate when --ingest is an IP address", 0, 0, 0, NULL},
    {"insecure", KOPT_CONFIG_BOOL, offsetof(S, insecure), "false",
     "plaintext gRPC to ingest (local development only)", 0, 0, 0, NULL},
    {"max-batch-bytes", KOPT_CONFIG_BYTES, offsetof(S, max_batch_bytes), "1000000",
     "windows are split over batches of at most this many bytes; keep it below the NATS "
     "server's max_payload, which ingest refuses batches past (TOO_LARGE)",
     0, 0, 0, NULL},
    {"send-window", KOPT_CONFIG_INT, offsetof(S, send_window), "32",
     "batches sent and not yet acknowledged, at most", 0, 1, 100000, NULL},
    {"proc-rules", KOPT_CONFIG_LIST, offsetof(S, proc_rules), NULL,
     "proc source: name=regex rules grouping processes by command line (default: one group "
     "per executable name)",
     0, 0, 0, NULL},
    {"proc-namespace", KOPT_CONFIG_STRING, offsetof(S, proc_namespace), "host",
     "proc source: the namespace reported for process groups", 0, 0, 0, NULL},
    {"proc-root", KOPT_CONFIG_PATH, offsetof(S, proc_root), "/proc",
     "where /proc is mounted (/host/proc in a container)", 0, 0, 0, NULL},
    {"cgroup-root", KOPT_CONFIG_PATH, offsetof(S, cgroup_root), "/sys/fs/cgroup",
     "where the cgroup hierarchy is mounted", 0, 0, 0, NULL},
    {"kubeconfig", KOPT_CONFIG_PATH, offsetof(S, kubeconfig), NULL,
     "Kubernetes API: a kubeconfig file (its current context); default: in-cluster service "
     "account when KUBERNETES_SERVICE_HOST is set",
     0, 0, 0, NULL},
    {"api-server", KOPT_CONFIG_STRING, offsetof(S, api_server), NULL,
     "Kubernetes API server URL (https://host:port), with --token-file and --ca-file; "
     "instead of --kubeconfig",
     0, 0, 0, NULL},
    {"api-server-insecure-http", KOPT_CONFIG_BOOL, offsetof(S, api_server_insecure_http), "false",
     "allow an http:// --api-server or --kubelet-url, sending the bearer token in clear "
     "(a local test server only)",
     0, 0, 0, NULL},
    {"token-file", KOPT_CONFIG_PATH, offsetof(S, token_file), NULL,
     "with --api-server: file holding the bearer token (re-read on 401)", 0, 0, 0, NULL},
    {"ca-file", KOPT_CONFIG_PATH, offsetof(S, ca_file), NULL,
     "with --api-server: PEM CA that signs the API server's certificate", 0, 0, 0, NULL},
    {"metadata-refresh", KOPT_CONFIG_DURATION, offsetof(S, metadata_refresh_ms), "60s",
     "how often pods, workloads, HPAs and the node are read from the API server", 0, 0, 0, NULL},
    {"kubelet-mode", KOPT_CONFIG_ENUM, offsetof(S, kubelet_mode), "proxy",
     "kubelet source: read /stats/summary through the API server's node proxy, or direct "
     "from the kubelet at --kubelet-url",
     0, 0, 0, kubelet_modes},
    {"kubelet-url", KOPT_CONFIG_STRING, offsetof(S, kubelet_url), NULL,
     "kubelet source, direct mode: the kubelet's URL (default https://<node>:10250)", 0, 0, 0,
     NULL},
    {"kubelet-insecure-tls", KOPT_CONFIG_BOOL, offsetof(S, kubelet_insecure_tls), "false",
     "kubelet source, direct mode: do not verify the kubelet's (often self-signed) "
     "certificate",
     0, 0, 0, NULL},
    {"once", KOPT_CONFIG_BOOL, offsetof(S, once), "false",
     "measure until one window closes, print it (see --output) and exit; sends nothing and "
     "serves no admin HTTP unless --admin-listen is set; a window with nothing in it prints "
     "nothing and says so on stderr",
     0, 0, 0, NULL},
    {"output", KOPT_CONFIG_ENUM, offsetof(S, output), "json",
     "with --once: how to print the windows", 0, 0, 0, outputs},
};

const kopt_config_spec_t agent_settings_spec = {
    .program = "kopt-agent",
    .version = KOPT_VERSION,
    .summary = "measures what containers (or process groups) use and streams 1-minute windows "
               "to kopt-ingest",
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .size = sizeof(agent_settings_t),
};
