/* Test harness: what tests share to run against real things — a free loopback
 * port, a temp dir removed at the end, capture of a fd's output, child processes
 * that cannot outlive the test, and real nats-server and clickhouse-server
 * instances on free loopback ports, and a replayed Kubernetes API server and
 * kubelet. docs/testing.md explains how to use it. */
#ifndef KOPT_TEST_HARNESS_H
#define KOPT_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A TCP port free on 127.0.0.1 right now (bound then released), or -1. */
int kopt_test_free_port(void);

/* mkdtemp under $TMPDIR; returns a malloc'd path or NULL. */
char *kopt_test_tmpdir(const char *prefix);

/* rm -rf of a test's own temp dir; refuses anything outside $TMPDIR or /tmp. */
int kopt_test_rmtree(const char *path);

/* Seconds on the monotonic clock, for timings. */
double kopt_test_now(void);

/* Prints the last `lines` lines of a file to stderr, framed with its name. */
void kopt_test_log_tail(const char *path, int lines);

/* kopt_test_tmpdir() for a server: first removes the <prefix>-* dirs that
 * dead test processes left (a test killed by a signal cannot clean up), then
 * makes a new one holding owner.pid, so a later run can do the same. */
char *kopt_test_owned_tmpdir(const char *prefix);

/* 1 if a line of the file contains needle (case-insensitive), else 0. */
int kopt_test_log_contains(const char *path, const char *needle);

/* --- Child processes (process.c) ------------------------------------------
 * Every child runs in its own process group, with stdin from /dev/null,
 * stdout and stderr appended to log_path, no inherited fds above 2, and
 * PR_SET_PDEATHSIG(SIGKILL): if the test process dies, so does the child.
 * PDEATHSIG follows the thread that forked, so spawn from the main thread. */
typedef struct kopt_test_proc {
    pid_t pid;      /* 0 when not running (reaped) */
    int status;     /* wait status of the last exit, as from waitpid() */
    char **argv;    /* owned copy, argv[0] resolved to a path; for respawn */
    char **env;     /* owned copy of the extra "K=V" entries, or NULL */
    char *log_path; /* owned */
} kopt_test_proc_t;

/* Starts argv[0] (searched in $PATH, then /usr/sbin and /sbin) with the
 * current environment plus env_extra ("K=V", NULL-terminated; may be NULL).
 * Copies everything it keeps. Returns 0, -ENOENT if the program is not found,
 * or a negative errno from fork/exec (an exec failure is reported here, not
 * as an exit status). */
int kopt_test_proc_spawn(kopt_test_proc_t *p, char *const argv[], char *const env_extra[],
                         const char *log_path);

/* Starts the same command again (after an exit or kill9). -EBUSY if running. */
int kopt_test_proc_respawn(kopt_test_proc_t *p);

/* 1 if the child runs, 0 if it has exited (then reaped; p->status set). */
int kopt_test_proc_alive(kopt_test_proc_t *p);

/* Sends sig to the child's whole process group (SIGSTOP/SIGCONT work too). */
int kopt_test_proc_signal(kopt_test_proc_t *p, int sig);

/* SIGKILL to the process group, then reap. 0 also if it had already exited. */
int kopt_test_proc_kill9(kopt_test_proc_t *p);

/* SIGTERM, wait up to timeout_ms, then SIGKILL; always reaps. Returns 0 if
 * it exited by itself within the timeout, -ETIMEDOUT if it had to be killed. */
int kopt_test_proc_stop(kopt_test_proc_t *p, int timeout_ms);

/* Kills (SIGKILL) a child still running and frees what the struct owns. */
void kopt_test_proc_release(kopt_test_proc_t *p);

/* Runs argv to its end, output to log_path, killed after timeout_ms.
 * Returns the exit code (128 + signal if killed by one), -ETIMEDOUT, or a
 * negative errno from the spawn. */
int kopt_test_proc_run(char *const argv[], const char *log_path, int timeout_ms);

/* Runs `<src_root>/scripts/certs DIR` (dev CA, server and client
 * certificates); on failure prints the tail of DIR/certs.log. 0 or -1. */
int kopt_test_make_certs(const char *src_root, const char *dir);

/* In a DIR that kopt_test_make_certs filled: NAME.pem and NAME-key.pem, a
 * clientAuth certificate signed by its dev CA with the subjectAltName `san`
 * in openssl's syntax ("DNS:x,URI:spiffe://..."), for identity tests. NAME
 * and `san` must not hold a quote. 0 or -1 (DIR/NAME.log tells why). */
int kopt_test_make_client_cert(const char *dir, const char *name, const char *san);

/* --- Cleanup registry -------------------------------------------------------
 * Servers register themselves when they start and leave when freed. Whatever
 * is still registered is freed by kopt_test_cleanup_all(), which also runs at
 * exit(). So a test whose assertion fails (cmocka longjmps out of it) leaves
 * nothing behind once the group teardown or the process exit runs. SIGTERM and
 * SIGINT kill every child (temp dirs then remain); SIGKILL of the test is
 * covered by PDEATHSIG. */
int kopt_test_cleanup_push(void (*fn)(void *), void *arg);
void kopt_test_cleanup_forget(void *arg);
void kopt_test_cleanup_all(void);

/* A cmocka group teardown (and setup-compatible signature) that runs
 * kopt_test_cleanup_all(). Handles from before it must not be used after. */
int kopt_test_teardown_all(void **state);

/* 1 if something accepts TCP connections on 127.0.0.1:port, else 0. */
int kopt_test_port_accepts(int port);

/* --- HTTP (libcurl) ---------------------------------------------------------
 * One request: POST when body != NULL, else GET. *status gets the HTTP code
 * (0 if no response); *out (if not NULL) a malloc'd NUL-terminated body.
 * Returns 0 when a response arrived (whatever its code), -ECONNREFUSED or
 * -EIO when not. */
int kopt_test_http(const char *url, const char *body, long timeout_ms, long *status, char **out);

/* The value of one sample of a kopt admin server's /metrics: the line that
 * is `sample` ("name" or "name{labels}") then a space. -1 when the server
 * does not answer 200 or has no such line. */
double kopt_test_metric(const char *admin_url, const char *sample);

/* --- nats-server (nats_server.c) ------------------------------------------ */
typedef struct kopt_test_nats_opts {
    bool no_jetstream;        /* default: JetStream on, file store in dir */
    const char *config_extra; /* appended to the generated nats.conf, or NULL */
} kopt_test_nats_opts_t;

typedef struct kopt_test_nats {
    char url[64];         /* "nats://127.0.0.1:<port>" */
    char monitor_url[64]; /* "http://127.0.0.1:<monitor_port>" */
    int port;
    int monitor_port;
    pid_t pid;            /* 0 when not running */
    char *dir;            /* temp dir: nats.conf, nats.log, store/ */
    char *store_dir;      /* JetStream store_dir, inside dir */
    char *log_path;       /* server's stdout+stderr */
    double start_seconds; /* last start or restart, spawn to ready */
    kopt_test_proc_t proc;
    bool jetstream;
} kopt_test_nats_t;

/* Starts nats-server on free loopback ports (client and monitor) and waits
 * until it serves clients and JetStream is ready (monitor /healthz and /jsz).
 * opts may be NULL. The binary is $KOPT_TEST_NATS_SERVER or nats-server.
 * Returns 0, -ENOENT if nats-server is not installed (skip the test), or
 * -ETIMEDOUT/-EIO (the log tail is printed). The caller frees *out. */
int kopt_test_nats_start(kopt_test_nats_t **out, const kopt_test_nats_opts_t *opts);

/* kill -9 the server and reap it; dir and ports are kept for restart. */
int kopt_test_nats_kill9(kopt_test_nats_t *s);

/* Starts it again on the same ports and store_dir (JetStream data survives),
 * after a graceful stop if it still runs; waits until ready. */
int kopt_test_nats_restart(kopt_test_nats_t *s);

/* SIGTERM, SIGKILL after 10 s, reap, and remove dir. Not restartable after. */
int kopt_test_nats_stop(kopt_test_nats_t *s);

/* Stops if needed and frees. NULL is a no-op. */
void kopt_test_nats_free(kopt_test_nats_t *s);

/* --- clickhouse-server (clickhouse_server.c) ------------------------------ */
typedef struct kopt_test_clickhouse_opts {
    /* PEM server certificate (chain) and key: also serve HTTPS on a free
     * https_port (ClickHouse's https_port and <openSSL><server>). The cert
     * must name 127.0.0.1, as scripts/certs' server.pem does. NULL: HTTP only. */
    const char *tls_cert;
    const char *tls_key;
    /* XML appended inside <yandex> (zookeeper, macros, interserver port for
     * a replica: clickhouse_cluster.c), or NULL. */
    const char *config_extra;
} kopt_test_clickhouse_opts_t;

typedef struct kopt_test_clickhouse {
    char url[64];       /* "http://127.0.0.1:<http_port>" */
    char https_url[64]; /* "https://127.0.0.1:<https_port>", "" without TLS */
    int http_port;
    int https_port; /* 0 without TLS */
    int tcp_port;
    pid_t pid;
    char *dir;            /* temp dir: config.xml, users.xml, data/, log/ */
    char *log_path;       /* stdout+stderr of the process */
    char *err_log_path;   /* ClickHouse's own error log (level warning) */
    double start_seconds; /* last start or restart, spawn to /ping "Ok." */
    kopt_test_proc_t proc;
    char *tls_cert, *tls_key; /* owned copies, or NULL */
    char *config_extra;       /* owned copy, or NULL */
    int held_fds[3];          /* ports held while down (kill9 .. restart), or -1 */
} kopt_test_clickhouse_t;

/* Writes a small config (caches of tens of MiB, 2 GB per query, no
 * interserver port, listen 127.0.0.1 only, timezone UTC, user default with no
 * password from loopback) into a temp dir and starts clickhouse-server
 * ($KOPT_TEST_CLICKHOUSE_SERVER, clickhouse-server, or `clickhouse server`)
 * on free ports; waits up to 60 s for GET /ping → "Ok.". Returns like
 * kopt_test_nats_start(). */
int kopt_test_clickhouse_start(kopt_test_clickhouse_t **out);

/* The same with options (may be NULL). With TLS, readiness also waits for
 * GET /ping over https, so a certificate ClickHouse cannot load fails the
 * start (-EIO, its error log printed) instead of a later test. */
int kopt_test_clickhouse_start_opts(kopt_test_clickhouse_t **out,
                                    const kopt_test_clickhouse_opts_t *opts);

/* kill -9 and reap. Until restart the server's ports stay bound (not
 * listening) by the harness, so clients get "connection refused" and no
 * other test process can take them over during a long outage. */
int kopt_test_clickhouse_kill9(kopt_test_clickhouse_t *ch);
int kopt_test_clickhouse_restart(kopt_test_clickhouse_t *ch);
int kopt_test_clickhouse_stop(kopt_test_clickhouse_t *ch);
void kopt_test_clickhouse_free(kopt_test_clickhouse_t *ch);

/* Runs one statement over HTTP (POST, so writes work). Returns 0 on HTTP 200
 * and the body in *out; on an error, -EIO and ClickHouse's message in *out.
 * out may be NULL; otherwise the caller frees *out. */
int kopt_test_clickhouse_query(kopt_test_clickhouse_t *ch, const char *sql, char **out);

/* --- Kubernetes API server and kubelet, replayed (kube_replay.c) -----------
 * A TLS server on a free loopback port answering from the recorded responses
 * in fixtures_dir (tests/fixtures/kube): the node's pod list (field selector
 * spec.nodeName=<node>; 410 Gone once after kopt_test_kube_gone_once() to a
 * list with resourceVersion), ReplicaSets, Jobs and workloads by name, the
 * HPA list, the Node, and the kubelet's /stats/summary both directly and
 * through the node proxy (/api/v1/nodes/<node>/proxy/stats/summary), made
 * live: times are now and CPU counters grow at the recorded usageNanoCores.
 * Every request needs "Authorization: Bearer <token>" (401 otherwise);
 * unknown paths get a 404 Status; /slow answers after 3 s. */
typedef struct kopt_test_kube_opts {
    const char *fixtures_dir;         /* required */
    const char *cert_file, *key_file; /* the server's PEM certificate and key */
    const char *token;                /* the bearer token to require */
    const char *node;                 /* NULL: "node-1" */
    const char *summary;              /* file in fixtures_dir; NULL: summary.json */
} kopt_test_kube_opts_t;

typedef struct kopt_test_kube_stats {
    int requests, unauthorized;
    int pod_lists, pod_lists_rv; /* of which with resourceVersion */
    int hpa_lists, node_gets;
    int summaries_direct, summaries_proxy;
} kopt_test_kube_stats_t;

typedef struct kopt_test_kube kopt_test_kube_t;

/* Loads the fixtures and starts serving; registered for cleanup. 0,
 * -EINVAL (a fixture or the certificate unusable; printed), -ENOMEM, or a
 * negative errno from the socket. The caller frees *out. */
int kopt_test_kube_start(kopt_test_kube_t **out, const kopt_test_kube_opts_t *opts);

/* "https://127.0.0.1:<port>" (the dev server certificate has IP:127.0.0.1). */
const char *kopt_test_kube_url(const kopt_test_kube_t *k);
int kopt_test_kube_port(const kopt_test_kube_t *k);

/* Requires another token from now on (a rotated service-account token). */
void kopt_test_kube_set_token(kopt_test_kube_t *k, const char *token);

/* The next pod list that carries a resourceVersion gets 410 Gone. */
void kopt_test_kube_gone_once(kopt_test_kube_t *k);

/* What was asked so far. */
void kopt_test_kube_stats(kopt_test_kube_t *k, kopt_test_kube_stats_t *out);

/* Stops the server (waiting for its connections) and frees. NULL: no-op. */
void kopt_test_kube_free(kopt_test_kube_t *k);

#endif
