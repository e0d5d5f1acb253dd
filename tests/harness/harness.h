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

#include <nats/nats.h>

/* A TCP port free on 127.0.0.1 right now (bound then released), or -1. */
int kopt_test_free_port(void);

/* mkdtemp under $TMPDIR; returns a malloc'd path or NULL. */
char *kopt_test_tmpdir(const char *prefix);

/* rm -rf of a test's own temp dir; refuses anything outside $TMPDIR or /tmp. */
int kopt_test_rmtree(const char *path);

/* Seconds on the monotonic clock, for timings. */
double kopt_test_now(void);

/* Sleeps ms milliseconds, the whole time even when a signal comes. */
void kopt_test_sleep_ms(long ms);

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

/* Runs argv (env_extra as for kopt_test_proc_spawn) to its end, stdout and
 * stderr into log_path (emptied first), killed after timeout_ms; *out (if
 * out is not NULL) gets all it printed, malloc'd (may be NULL without
 * memory). Returns the exit code, 128 if a signal ended it, or a negative
 * errno from the spawn (run_capture.c). */
int kopt_test_run_capture(char *const argv[], char *const env_extra[], const char *log_path,
                          int timeout_ms, char **out);

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

/* One request with what the API tests need: a method, a bearer token, a
 * JSON body, HTTPS with a CA and a client certificate. */
typedef struct {
    const char *method; /* NULL: POST when body, else GET */
    const char *url;
    const char *bearer;          /* sent as "Authorization: Bearer <bearer>"; NULL: none */
    const char *body;            /* sent as application/json; NULL: none */
    const char *ca, *cert, *key; /* HTTPS: the CA to trust, a client certificate; NULL: none */
    long timeout_ms;             /* 0: 60000 */
} kopt_test_http_req_t;

typedef struct {
    int curl;      /* the CURLcode of the transfer */
    long status;   /* the HTTP status; 0 when no response */
    char *body;    /* malloc'd, NUL-terminated, "" when empty or no response */
    char *headers; /* the response's header lines, likewise */
} kopt_test_http_resp_t;

/* Performs q; fills *r (free with kopt_test_http_resp_free) and returns
 * r->status. */
long kopt_test_http_call(const kopt_test_http_req_t *q, kopt_test_http_resp_t *r);
void kopt_test_http_resp_free(kopt_test_http_resp_t *r);

/* Polls http://127.0.0.1:port/path until it answers 200: 0, or -ETIMEDOUT
 * after `seconds`. */
int kopt_test_wait_http_ok(int port, const char *path, double seconds);

/* The value of one sample of a kopt admin server's /metrics: the line that
 * is `sample` ("name" or "name{labels}") then a space. -1 when the server
 * does not answer 200 or has no such line. */
double kopt_test_metric(const char *admin_url, const char *sample);

/* --- nats-server (nats_server.c) ------------------------------------------ */
typedef struct kopt_test_nats_opts {
    bool no_jetstream;        /* default: JetStream on, file store in dir */
    const char *config_extra; /* appended to the generated nats.conf, or NULL */
    /* Authentication (nats_auth.c): a dir kopt_test_make_certs filled. The
     * server then speaks TLS only with its server.pem, wants a client
     * certificate signed by its ca.pem, and knows one user per component
     * (kopt-ingest, kopt-aggregator, kopt-advisor) allowed only what that
     * component needs, and kopt-admin allowed everything. NULL: no auth. */
    const char *auth_certs_dir;
    /* Where the random passwords go, nats-<user>.password, mode 0600 (kept
     * when the server stops). NULL: the server's temp dir. */
    const char *auth_secrets_dir;
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
    bool auth;                            /* opts->auth_certs_dir was given */
    char *certs_dir, *secrets_dir;        /* owned copies when auth */
    char *ca_file, *cert_file, *key_file; /* certs_dir's ca.pem, client.pem, client-key.pem */
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

/* --- authenticated nats-server (nats_auth.c) ------------------------------ */
/* The path of `user`'s password file. 0, -EINVAL without auth, -ENOSPC. */
int kopt_test_nats_password_file(const kopt_test_nats_t *s, const char *user, char *out,
                                 size_t len);

/* The tls and authorization blocks of nats.conf for s->certs_dir, writing
 * fresh passwords. malloc'ed text, or NULL. nats_server.c calls it. */
char *kopt_test_nats_auth_config(kopt_test_nats_t *s);

/* Appends to argv[*n] the --nats-ca/-cert/-key/-user/-password-file flags a
 * kopt daemon needs to log in as `user` (10 entries; nothing without auth).
 * `pw_path` (len bytes) holds the password file's path and must outlive
 * argv. 0 or -ENOSPC. */
int kopt_test_nats_auth_args(const kopt_test_nats_t *s, const char *user, const char **argv, int *n,
                             char *pw_path, size_t len);

/* A plain (no event loop) connection as `user` (NULL: with the client
 * certificate but no user) through kopt_nats_options_new. 0, or
 * -ECONNREFUSED (the server refused or is down), -EINVAL. */
int kopt_test_nats_connect_as(const kopt_test_nats_t *s, const char *user, natsConnection **nc);

/* The tests' own connection: as kopt-admin, allowed everything, when the
 * server has auth; plain otherwise. */
int kopt_test_nats_connect(const kopt_test_nats_t *s, natsConnection **nc);

/* The same connection and its JetStream context: 0, or <0 (both NULL). */
int kopt_test_nats_jetstream(const kopt_test_nats_t *s, natsConnection **nc, jsCtx **js);

/* --- JetStream, as the tests use it (jetstream.c) --------------------------
 * A stream with one subject filter as kopt-ingest makes KOPT_METRICS: file
 * storage, a 2-minute duplicate window, `replicas` copies (1 on one server).
 * 0; -EIO when the server refuses it or keeps other replicas (said). */
int kopt_test_js_add_stream(jsCtx *js, const char *name, const char *subject, int replicas);

/* The value of `key` in the KV bucket now, NUL-terminated in out: 0,
 * -ENOENT when the key is absent, deleted or expired, -EIO otherwise. */
int kopt_test_kv_get(jsCtx *js, const char *bucket, const char *key, char *out, size_t len);

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

/* --- S3-protocol server (s3_server.c, s3_front.mjs) ------------------------
 * s3rver from .tools/s3rver (scripts/deps) behind a front that checks every
 * request's SigV4 signature against random per-server credentials, serves
 * virtual-host requests for <bucket>.localhost, and injects faults. */
typedef struct kopt_test_s3 {
    char url[64];           /* "http://127.0.0.1:<port>" */
    char bucket[64];        /* "kopt-test", created at start */
    char access_key[32];    /* random, hex */
    char secret_key[48];    /* random, hex; also in credentials_file */
    char *credentials_file; /* two lines: key id, secret */
    int port;
    pid_t pid;
    char *dir, *store_dir, *log_path;
    char *front, *modules;
    double start_seconds;
    kopt_test_proc_t proc;
} kopt_test_s3_t;

/* Starts it on a free port; src_root finds s3_front.mjs and .tools/. 0,
 * -ENOENT when s3rver is not installed (skip), -ETIMEDOUT/-EIO otherwise. */
int kopt_test_s3_start(kopt_test_s3_t **out, const char *src_root);

/* The server's --object-store-url: <url>/<bucket>[/<prefix>] (prefix NULL:
 * none, so kopt's default). */
void kopt_test_s3_store_url(const kopt_test_s3_t *s, const char *prefix, char *out, size_t len);

/* Adds a fault rule, JSON: {"method":"PUT","query":"partNumber","path":"x",
 * "status":500,"delay_ms":0,"skip":0,"count":1}: the next `count` matching
 * requests after `skip` of them are delayed and/or answered with status
 * (0: passed on after the delay). {"clear":true} removes every rule. */
int kopt_test_s3_fault(kopt_test_s3_t *s, const char *json_rule);

/* A counter of the front: "requests", "bad_signatures", "faults"; -1 on error. */
long kopt_test_s3_stat(kopt_test_s3_t *s, const char *name);

/* kill -9 (the store stays); restart on the same port and store. */
int kopt_test_s3_kill9(kopt_test_s3_t *s);
int kopt_test_s3_restart(kopt_test_s3_t *s);
void kopt_test_s3_free(kopt_test_s3_t *s);

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

/* --- OTLP/HTTP receiver (otlp_receiver.c) ----------------------------------
 * Stands in for a trace collector: accepts POST /v1/traces with an OTLP JSON
 * body on a free loopback port and keeps every span it received, each with
 * the "service" (resource service.name) it came from added. Registered for
 * cleanup like the servers. */
typedef struct kopt_test_otlp kopt_test_otlp_t;

int kopt_test_otlp_start(kopt_test_otlp_t **out);
/* "http://127.0.0.1:<port>": the --otlp-endpoint to give. */
const char *kopt_test_otlp_url(const kopt_test_otlp_t *o);
/* The HTTP status answered from now on (200 by default; 503: an endpoint that
 * refuses). */
void kopt_test_otlp_set_status(kopt_test_otlp_t *o, int status);
/* A copy of every span received so far (a JSON array; json_decref it), and
 * how many POSTs arrived (bodies that did not parse count in `bad`). */
struct json_t *kopt_test_otlp_spans(kopt_test_otlp_t *o);
void kopt_test_otlp_counts(kopt_test_otlp_t *o, size_t *posts, size_t *bad);
/* Stops the server and frees. NULL: no-op. */
void kopt_test_otlp_free(kopt_test_otlp_t *o);

/* --- An OpenID Connect issuer (oidc_issuer.c) ---------------------------------
 * Signing keys made at run time, their JWKS, minted and forged tokens, and an
 * HTTPS server on a free loopback port with the discovery document
 * (/.well-known/openid-configuration, naming the issuer "https://127.0.0.1:
 * <port>") and /jwks. Registered for cleanup. */
typedef struct kopt_test_jwk kopt_test_jwk_t;
typedef struct kopt_test_issuer kopt_test_issuer_t;

typedef enum {
    KOPT_TEST_ISSUER_UP,      /* serves the discovery document and the JWKS */
    KOPT_TEST_ISSUER_GARBAGE, /* the discovery document is HTML */
    KOPT_TEST_ISSUER_DOWN,    /* the port is closed: connections refused */
} kopt_test_issuer_mode_t;

/* A new key: alg "RS256" (RSA 2048) or "ES256" (P-256); NULL on failure. */
kopt_test_jwk_t *kopt_test_jwk_new(const char *alg, const char *kid);
void kopt_test_jwk_free(kopt_test_jwk_t *k);
/* {"keys":[...]} of the public halves; malloc'd. */
char *kopt_test_jwks_json(kopt_test_jwk_t *const *keys, size_t n);
/* A compact JWS of `claims` (JSON text) signed with k; header NULL:
 * {"alg":<k's>,"typ":"JWT","kid":<k's>}. malloc'd, NULL on failure. */
char *kopt_test_jwt_sign(const kopt_test_jwk_t *k, const char *header, const char *claims);
/* header.claims. with an empty signature (for alg none). */
char *kopt_test_jwt_unsigned(const char *header, const char *claims);
/* An HS256 token whose HMAC key is k's public key in PEM (the key
 * confusion attack). */
char *kopt_test_jwt_hs256_public(const kopt_test_jwk_t *k, const char *claims);

/* Starts the server with a PEM certificate (naming 127.0.0.1) and key. */
int kopt_test_issuer_start(kopt_test_issuer_t **out, const char *cert, const char *key);
const char *kopt_test_issuer_url(const kopt_test_issuer_t *s);
void kopt_test_issuer_set_jwks(kopt_test_issuer_t *s, const char *jwks);
void kopt_test_issuer_set_mode(kopt_test_issuer_t *s, kopt_test_issuer_mode_t mode);
int kopt_test_issuer_jwks_hits(const kopt_test_issuer_t *s);
int kopt_test_issuer_discovery_hits(const kopt_test_issuer_t *s);
void kopt_test_issuer_free(kopt_test_issuer_t *s);

/* --- gRPC unary calls (grpc_unary.c; link kopt_advisor_fixture_dep) -------
 * The C core by hand, as a client of kopt-advisor. */
struct grpc_channel;
struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

/* A channel to target ("127.0.0.1:<port>"): TLS trusting the PEM file
 * ca_file, or plaintext when ca_file is NULL. NULL if ca_file is unreadable.
 * The caller destroys it (grpc_channel_destroy). */
struct grpc_channel *kopt_test_grpc_channel(const char *target, const char *ca_file);

/* One unary call, 60 s deadline. metadata: "key", "value" pairs ending with
 * NULL (at most 8), or NULL. *status gets the gRPC code (UNKNOWN when the
 * call could not run), details (if not NULL) the status message. Returns the
 * answer unpacked with resp_desc when the code is OK (the caller frees it with
 * protobuf_c_message_free_unpacked), else NULL. */
struct ProtobufCMessage *kopt_test_grpc_unary(struct grpc_channel *ch, const char *method,
                                              const struct ProtobufCMessage *req,
                                              const struct ProtobufCMessageDescriptor *resp_desc,
                                              const char *const *metadata, int *status,
                                              char *details, size_t dlen);

/* The same on a channel of its own to target (see kopt_test_grpc_channel),
 * with "authorization: Bearer <bearer>" unless bearer is NULL. */
struct ProtobufCMessage *
kopt_test_grpc_unary_bearer(const char *target, const char *ca_file, const char *bearer,
                            const char *method, const struct ProtobufCMessage *req,
                            const struct ProtobufCMessageDescriptor *resp_desc, int *status,
                            char *details, size_t dlen);

/* --- An advisor with seeded data (advisor_fixture.c) ----------------------
 * Real servers, the aggregator's schema, hourly rollups, an API keys file,
 * and kopt-advisor on free ports. Link kopt_advisor_fixture_dep. */

/* One container's constant shape, written for each of the last N hours
 * (ending the hour before now): a window a minute per pod, peak CPU 1.5
 * times the mean. */
typedef struct kopt_test_seed {
    const char *cluster, *ns, *kind, *name, *container;
    double cpu, mem;         /* used: mean cores, peak working set and RSS bytes */
    double cpu_req, mem_req; /* cores, bytes */
    double cpu_lim, mem_lim; /* cores, bytes; 0: none */
    unsigned pods;           /* 0: 1 */
    unsigned oom_every;      /* an OOM kill in every hour h % oom_every == 0; 0: none */
} kopt_test_seed_t;

/* INSERTs n seeds of `hours` hours each (0: 48) into kopt.container_hourly
 * (nothing when n is 0). 0, or ClickHouse's error (printed). */
int kopt_test_seed_hours(kopt_test_clickhouse_t *ch, const kopt_test_seed_t *seed, size_t n,
                         int hours);

typedef struct kopt_test_advisor_opts {
    const char *src_dir;     /* for scripts/certs */
    const char *advisor_exe; /* kopt-advisor */
    const char *name;        /* temp dirs kopt-<name>-test, -certs; NULL: advisor */
    const kopt_test_seed_t *seed;
    size_t n_seed;
    int hours;           /* of each seed; 0: 48 */
    const char *keys;    /* the API keys file's text */
    bool tls;            /* gRPC over TLS (scripts/certs server.pem); else --insecure */
    bool clickhouse_tls; /* ClickHouse also serves https with server.pem */
    bool no_nats;        /* no nats-server; --nats-url "" */
    /* No clickhouse-server: the advisor gets a URL where nothing listens, and
     * is "ready" when its HTTP port listens (it answers from memory). */
    bool no_clickhouse;
    const kopt_test_nats_opts_t *nats; /* may be NULL */
    char *const *env;                  /* "K=V" entries for the advisor, NULL-terminated, or NULL */
} kopt_test_advisor_opts_t;

typedef struct kopt_test_advisor {
    kopt_test_nats_t *nats;     /* NULL with no_nats */
    kopt_test_clickhouse_t *ch; /* NULL with no_clickhouse */
    kopt_test_proc_t proc;      /* the advisor kopt_test_advisor_start started */
    const char *advisor_exe;
    bool tls;
    char *dir, *certs;                 /* certs: NULL without TLS */
    char keys[600], log[600];          /* dir/keys, dir/advisor.log */
    char ca[600], cert[600], key[600]; /* certs' ca.pem, server.pem, server-key.pem */
    char nats_url[256];                /* what the advisor gets; a test may change it */
    char clickhouse_url[64];
    char *const *env; /* opts->env */
    int grpc_port, http_port, admin_port;
    char target[64], base[64]; /* "127.0.0.1:<grpc>", "http://127.0.0.1:<http>" */
} kopt_test_advisor_t;

/* Temp dirs (and certificates), servers, schema, seed, keys file. 0,
 * -ENOENT (a server is not installed: skip), or -1 (printed). */
int kopt_test_advisor_setup(kopt_test_advisor_t *a, const kopt_test_advisor_opts_t *o);

/* `kopt-advisor analyze --once` on the seeded history (log in dir). 0 or -1. */
int kopt_test_advisor_analyze_once(kopt_test_advisor_t *a);

/* Starts a->proc on free ports (a->target, a->base, the ports) with
 * --analysis-interval 0 and extra flags (NULL-terminated, may be NULL);
 * waits for /readyz 200 (30 s; without ClickHouse, for the HTTP port to
 * listen, 15 s). 0 or -1 (the log tail printed). */
int kopt_test_advisor_start(kopt_test_advisor_t *a, const char *const *extra);

/* Setup, analyze --once, start: what most group setups do. 0, -ENOENT
 * (skip) or -1. */
int kopt_test_advisor_up(kopt_test_advisor_t *a, const kopt_test_advisor_opts_t *o,
                         const char *const *extra);

/* The same for another advisor on the same servers, keys and TLS. */
int kopt_test_advisor_spawn(const kopt_test_advisor_t *a, kopt_test_proc_t *p, const char *log,
                            int grpc_port, int http_port, int admin_port, const char *const *extra);

/* SIGTERM; -1 (the log tail printed) if it had to be killed, exited
 * non-zero or its log has a sanitizer report. Releases p. 0 if not running.
 * KOPT_TEST_VERBOSE set: the log tail in any case. */
int kopt_test_advisor_stop_checked(kopt_test_proc_t *p, const char *log);

/* Stops a->proc (checked), every server, removes the temp dirs. */
int kopt_test_advisor_teardown(kopt_test_advisor_t *a);

#endif
