/* A small HTTPS client for the Kubernetes API server and the kubelet: GET a
 * path, get the body. Credentials come from the pod's service account
 * (in-cluster) or a kubeconfig: a bearer token read from a file (re-read once
 * on a 401, since projected tokens rotate), a CA, or a client certificate.
 * Blocking (libcurl easy handle, kept alive between calls): run it on a
 * worker thread, never on the event loop. One thread at a time per client.
 * The token never reaches a log line, an error or a metric. The process must
 * ignore SIGPIPE (kopt daemons do, in lifecycle.c): libcurl is told not to
 * touch signals, as it runs beside other threads. */
#ifndef AGENT_KUBE_CLIENT_H
#define AGENT_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Where and how to connect. Every string is owned (malloc'd) and freed by
 * agent_kube_config_clear(); NULL means "not set". */
typedef struct {
    char *server;               /* "https://10.96.0.1:443" */
    char *ca_file;              /* PEM file */
    char *ca_pem;               /* PEM text (kubeconfig certificate-authority-data) */
    char *token_file;           /* re-read on 401 */
    char *token;                /* a static token (kubeconfig token:), used when no file */
    char *cert_file, *key_file; /* client certificate (kubeconfig client-certificate) */
    char *cert_pem, *key_pem;   /* or their PEM text (client-certificate-data) */
    bool insecure_skip_verify;  /* kubelets often serve self-signed certificates */
    bool allow_insecure_http;   /* let an http:// server have the token in clear */
    long timeout_ms;            /* whole request; default 10000 */
    long connect_timeout_ms;    /* default 3000 */
    size_t max_body_bytes;      /* responses above fail with -EFBIG; default 16 MiB */
} agent_kube_config_t;

/* The default service-account directory of a pod. */
#define AGENT_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* In-cluster: server from KUBERNETES_SERVICE_HOST and _PORT (IPv6 hosts get
 * brackets), token and ca.crt from sa_dir (NULL: AGENT_KUBE_SA_DIR).
 * 0, -ENOENT when not in a cluster (no env, or no token file), -ENOMEM. */
int agent_kube_config_in_cluster(agent_kube_config_t *out, const char *sa_dir);

/* A kubeconfig file's current-context: cluster server,
 * certificate-authority(-data), insecure-skip-tls-verify; user token,
 * tokenFile, client-certificate(-data), client-key(-data). Relative paths
 * are relative to the file's folder. 0, -ENOENT (no file), -EINVAL (not a
 * kubeconfig, or no current context; logged with the reason), -ENOMEM. */
int agent_kube_config_from_kubeconfig(agent_kube_config_t *out, const char *path);

/* kubeconfig when a path is given, else in-cluster, else $KUBECONFIG. */
int agent_kube_config_load(agent_kube_config_t *out, const char *kubeconfig);

/* A deep copy (to point a second client at the kubelet with the same
 * credentials). 0 or -ENOMEM. */
int agent_kube_config_copy(agent_kube_config_t *dst, const agent_kube_config_t *src);

/* Frees the strings (and wipes the token) and zeroes the struct. */
void agent_kube_config_clear(agent_kube_config_t *c);

typedef struct agent_kube_client agent_kube_client_t;

/* Copies cfg. Reads the token file now (-ENOENT/-EACCES if unreadable).
 * 0, -EINVAL (no server, or a server that is not https:// while
 * allow_insecure_http is false; logged), -ENOMEM. An http:// server with
 * allow_insecure_http logs a warning: its bearer token travels in clear. */
int agent_kube_client_new(const agent_kube_config_t *cfg, agent_kube_client_t **out);
void agent_kube_client_free(agent_kube_client_t *c);

/* GET server + path (path starts with '/', query included and already
 * escaped). On 2xx: 0 and *body (malloc'd, NUL-terminated, the caller frees)
 * with *len. Otherwise *body is NULL and the result is:
 *   -EACCES     401 (after re-reading the token once) or 403
 *   -ENOENT     404
 *   -ESTALE     410 Gone (a resourceVersion too old: relist)
 *   -ETIMEDOUT  no answer within timeout_ms
 *   -ECONNREFUSED, -EHOSTUNREACH  could not connect
 *   -EPROTO     TLS failure or another HTTP status
 *   -EFBIG      body larger than max_body_bytes
 * *status (may be NULL) gets the HTTP status, 0 when none arrived. */
int agent_kube_client_get(agent_kube_client_t *c, const char *path, char **body, size_t *len,
                          long *status);

/* The server URL the client talks to ("https://host:port"). */
const char *agent_kube_client_server(const agent_kube_client_t *c);

#endif
