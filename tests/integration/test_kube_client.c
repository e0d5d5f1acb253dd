/* agent/kube_client.c, kube_cache.c and kubelet_source.c against a TLS test
 * server (OpenSSL, a thread, a free loopback port, certificates from
 * scripts/certs) that replays the recorded responses of tests/fixtures/kube/
 * by path, the way an API server and a kubelet answer: it checks the bearer
 * token (401 without or with a wrong one), answers 410 Gone once to a list
 * with resourceVersion, and has a slow path for the client timeout.
 * argv[1] is the source root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "kube_cache.h"
#include "kube_client.h"
#include "kubelet_source.h"

static const char *src_root = ".";
static char *dir;

/* --- The test server ---------------------------------------------------------- */

static struct {
    int fd, port;
    SSL_CTX *ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    volatile int stop;
    char token[64]; /* expected bearer token */
    int gone_once;  /* answer the next list with resourceVersion with 410 */
    int pod_lists, pod_lists_rv, unauthorized, requests;
    int active; /* connection threads running */
    json_t *fixtures[8];
} srv;

enum { F_PODS, F_RS, F_JOBS, F_WORKLOADS, F_HPAS, F_NODE, F_SUMMARY, F_N };
static const char *const fixture_names[F_N] = {"pods.json",      "replicasets.json", "jobs.json",
                                               "workloads.json", "hpas.json",        "node.json",
                                               "summary.json"};

static void respond(SSL *ssl, int code, const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     code, reason, strlen(body));

    SSL_write(ssl, head, n);
    if (*body)
        SSL_write(ssl, body, (int)strlen(body));
}

static void respond_status(SSL *ssl, int code, const char *reason, const char *message)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
             "\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
             message, reason, code);
    respond(ssl, code, reason, body);
}

static void respond_json(SSL *ssl, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    respond(ssl, 200, "OK", s);
    free(s);
}

/* GET /apis/<group>/<v>/namespaces/NS/<plural>/NAME from a recorded list. */
static bool serve_object(SSL *ssl, const char *path)
{
    static const struct {
        const char *plural, *kind, *api;
        int fixture;
    } kinds[] = {
        {"replicasets", "ReplicaSet", "apps/v1", F_RS},
        {"jobs", "Job", "batch/v1", F_JOBS},
        {"deployments", "Deployment", "apps/v1", F_WORKLOADS},
        {"statefulsets", "StatefulSet", "apps/v1", F_WORKLOADS},
        {"daemonsets", "DaemonSet", "apps/v1", F_WORKLOADS},
        {"cronjobs", "CronJob", "batch/v1", F_WORKLOADS},
    };
    char ns[64], plural[64], name[256];
    const json_t *item;
    size_t i, k;

    if (sscanf(path, "/apis/%*[^/]/%*[^/]/namespaces/%63[^/]/%63[^/]/%255s", ns, plural, name) != 3)
        return false;
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (strcmp(kinds[k].plural, plural) != 0)
            continue;
        json_array_foreach(json_object_get(srv.fixtures[kinds[k].fixture], "items"), i, item)
        {
            const json_t *meta = json_object_get(item, "metadata");
            const char *kind = json_string_value(json_object_get(item, "kind"));

            if (strcmp(json_string_value(json_object_get(meta, "name")), name) == 0 &&
                strcmp(json_string_value(json_object_get(meta, "namespace")), ns) == 0 &&
                (!kind || strcmp(kind, kinds[k].kind) == 0)) {
                json_t *copy = json_deep_copy(item);

                json_object_set_new(copy, "kind", json_string(kinds[k].kind));
                json_object_set_new(copy, "apiVersion", json_string(kinds[k].api));
                respond_json(ssl, copy);
                json_decref(copy);
                return true;
            }
        }
    }
    respond_status(ssl, 404, "NotFound", "not found");
    return true;
}

static void serve(SSL *ssl, const char *path, const char *auth)
{
    char want[128];
    bool ok;

    pthread_mutex_lock(&srv.lock);
    srv.requests++;
    snprintf(want, sizeof(want), "Bearer %s", srv.token);
    ok = auth && strcmp(auth, want) == 0;
    srv.unauthorized += !ok;
    pthread_mutex_unlock(&srv.lock);
    if (!ok) {
        respond_status(ssl, 401, "Unauthorized", "Unauthorized");
        return;
    }
    if (strcmp(path, "/slow") == 0) {
        for (int i = 0; i < 30 && !srv.stop; i++)
            usleep(100 * 1000);
        respond(ssl, 200, "OK", "{}");
    } else if (strncmp(path, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1", 49) == 0) {
        bool rv = strstr(path, "resourceVersion=") != NULL, gone;

        pthread_mutex_lock(&srv.lock);
        srv.pod_lists++;
        srv.pod_lists_rv += rv;
        gone = rv && srv.gone_once;
        srv.gone_once = srv.gone_once && !rv;
        pthread_mutex_unlock(&srv.lock);
        if (gone)
            respond_status(ssl, 410, "Expired", "too old resource version: 918273 (918999)");
        else
            respond_json(ssl, srv.fixtures[F_PODS]);
    } else if (strcmp(path, "/apis/autoscaling/v2/horizontalpodautoscalers") == 0) {
        respond_json(ssl, srv.fixtures[F_HPAS]);
    } else if (strcmp(path, "/api/v1/nodes/node-1") == 0) {
        respond_json(ssl, srv.fixtures[F_NODE]);
    } else if (strcmp(path, "/api/v1/nodes/node-1/proxy/stats/summary") == 0 ||
               strcmp(path, "/stats/summary") == 0) {
        respond_json(ssl, srv.fixtures[F_SUMMARY]);
    } else if (!serve_object(ssl, path)) {
        respond_status(ssl, 404, "NotFound", "the server could not find the requested resource");
    }
}

static void handle(int fd)
{
    SSL *ssl = SSL_new(srv.ctx);
    char req[8192], path[2048], *auth, *eol;
    size_t len = 0;
    int n;

    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        goto out;
    while (len < sizeof(req) - 1) {
        n = SSL_read(ssl, req + len, (int)(sizeof(req) - 1 - len));
        if (n <= 0)
            goto out;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (sscanf(req, "GET %2047s HTTP/1.1", path) != 1)
        goto out;
    auth = strcasestr(req, "\r\nAuthorization: ");
    if (auth) {
        auth += strlen("\r\nAuthorization: ");
        eol = strstr(auth, "\r\n");
        if (eol)
            *eol = '\0';
    }
    serve(ssl, path, auth);
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
}

static void *conn_main(void *arg)
{
    handle((int)(intptr_t)arg);
    pthread_mutex_lock(&srv.lock);
    srv.active--;
    pthread_mutex_unlock(&srv.lock);
    return NULL;
}

/* A thread a connection, so a slow answer does not hold up the next. */
static void *server_main(void *arg)
{
    pthread_t t;

    (void)arg;
    while (!srv.stop) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        int fd;

        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept(srv.fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv.lock);
        srv.active++;
        pthread_mutex_unlock(&srv.lock);
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0) {
            pthread_detach(t);
        } else {
            handle(fd);
            pthread_mutex_lock(&srv.lock);
            srv.active--;
            pthread_mutex_unlock(&srv.lock);
        }
    }
    /* Wait for the connection threads (the slow one checks stop). */
    for (;;) {
        int n;

        pthread_mutex_lock(&srv.lock);
        n = srv.active;
        pthread_mutex_unlock(&srv.lock);
        if (n == 0)
            break;
        usleep(10 * 1000);
    }
    return NULL;
}

static char *path_in(const char *name)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path_in(name), "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void set_token(const char *t)
{
    pthread_mutex_lock(&srv.lock);
    snprintf(srv.token, sizeof(srv.token), "%s", t);
    pthread_mutex_unlock(&srv.lock);
}

static int setup(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char cmd[2048], fx[1024];
    int one = 1;

    (void)state;
    dir = kopt_test_tmpdir("kopt-kube");
    assert_non_null(dir);
    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' '%s' >/dev/null", src_root, dir);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < F_N; i++) {
        snprintf(fx, sizeof(fx), "%s/tests/fixtures/kube/%s", src_root, fixture_names[i]);
        srv.fixtures[i] = json_load_file(fx, 0, NULL);
        assert_non_null(srv.fixtures[i]);
    }
    srv.ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate_chain_file(srv.ctx, path_in("server.pem")), 1);
    assert_int_equal(
        SSL_CTX_use_PrivateKey_file(srv.ctx, path_in("server-key.pem"), SSL_FILETYPE_PEM), 1);
    srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv.fd, 16), 0);
    socklen_t alen = sizeof(a);
    getsockname(srv.fd, (struct sockaddr *)&a, &alen);
    srv.port = ntohs(a.sin_port);
    pthread_mutex_init(&srv.lock, NULL);
    set_token("tok-1");
    write_file("token", "tok-1\n");
    assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv.stop = 1;
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    SSL_CTX_free(srv.ctx);
    for (int i = 0; i < F_N; i++)
        json_decref(srv.fixtures[i]);
    pthread_mutex_destroy(&srv.lock);
    kopt_test_rmtree(dir);
    free(dir);
    return 0;
}

/* A config for the test server with the token file and the dev CA. */
static void base_config(kopt_kube_config_t *c)
{
    char server[64];

    memset(c, 0, sizeof(*c));
    snprintf(server, sizeof(server), "https://127.0.0.1:%d", srv.port);
    c->server = strdup(server);
    c->ca_file = strdup(path_in("ca.pem"));
    c->token_file = strdup(path_in("token"));
    c->timeout_ms = 2000;
}

static kopt_kube_client_t *client_for(const kopt_kube_config_t *cfg)
{
    kopt_kube_client_t *c = NULL;

    assert_int_equal(kopt_kube_client_new(cfg, &c), 0);
    return c;
}

/* --- Tests ----------------------------------------------------------------------- */

static void bearer_token_is_checked_and_reread_on_401(void **state)
{
    kopt_kube_config_t cfg;
    kopt_kube_client_t *c;
    char *body = NULL;
    size_t len;
    long status;
    int before;

    (void)state;
    base_config(&cfg);
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "m6i.xlarge"));
    free(body);

    /* The token rotates: the file has the new one, the client re-reads it. */
    set_token("tok-2");
    write_file("token", "tok-2\n");
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status), 0);
    free(body);

    /* A wrong token: one re-read, one retry, then a clean -EACCES. */
    set_token("tok-3");
    before = srv.unauthorized;
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status),
                     -EACCES);
    assert_int_equal(status, 401);
    assert_null(body);
    assert_int_equal(srv.unauthorized - before, 2);
    kopt_kube_client_free(c);

    /* No token at all. */
    free(cfg.token_file);
    cfg.token_file = NULL;
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EACCES);
    kopt_kube_client_free(c);
    kopt_kube_config_clear(&cfg);
    set_token("tok-2");
}

static void errors_are_clean_and_fast(void **state)
{
    kopt_kube_config_t cfg;
    kopt_kube_client_t *c;
    char *body = NULL;
    size_t len;
    double t0;

    (void)state;
    base_config(&cfg);
    cfg.timeout_ms = 500;
    c = client_for(&cfg);
    t0 = kopt_test_now();
    assert_int_equal(kopt_kube_client_get(c, "/slow", &body, &len, NULL), -ETIMEDOUT);
    assert_true(kopt_test_now() - t0 < 2.0);
    assert_null(body);
    assert_int_equal(kopt_kube_client_get(c, "/nope", &body, &len, NULL), -ENOENT);
    kopt_kube_client_free(c);

    /* A body above the cap. */
    cfg.max_body_bytes = 100;
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EFBIG);
    kopt_kube_client_free(c);
    cfg.max_body_bytes = 0;

    /* A server whose certificate the CA did not sign. */
    free(cfg.ca_file);
    cfg.ca_file = strdup(path_in("rogue-ca.pem"));
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EPROTO);
    kopt_kube_client_free(c);

    /* Nothing listens. */
    free(cfg.server);
    cfg.server = NULL;
    {
        char s[64];
        int port = kopt_test_free_port();

        snprintf(s, sizeof(s), "https://127.0.0.1:%d", port);
        cfg.server = strdup(s);
    }
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL),
                     -ECONNREFUSED);
    kopt_kube_client_free(c);
    kopt_kube_config_clear(&cfg);
}

static void in_cluster_and_kubeconfig_configs_work(void **state)
{
    kopt_kube_config_t cfg;
    kopt_kube_client_t *c;
    char port[16], kc[8192], *ca_pem, *b64;
    char *body = NULL;
    size_t len, n;
    FILE *f;

    (void)state;
    /* In-cluster: env and a service-account directory. */
    snprintf(port, sizeof(port), "%d", srv.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    {
        char cmd[2048];

        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path_in("ca.pem"), path_in("ca.crt"));
        assert_int_equal(system(cmd), 0);
    }
    assert_int_equal(kopt_kube_config_in_cluster(&cfg, dir), 0);
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), 0);
    free(body);
    kopt_kube_client_free(c);
    kopt_kube_config_clear(&cfg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kopt_kube_config_in_cluster(&cfg, dir), -ENOENT);

    /* A kubeconfig with the CA inline (base64) and a static token. */
    f = fopen(path_in("ca.pem"), "r");
    assert_non_null(f);
    ca_pem = calloc(1, 16384);
    n = fread(ca_pem, 1, 16383, f);
    fclose(f);
    b64 = calloc(1, 4 * n / 3 + 8);
    EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)ca_pem, (int)n);
    snprintf(kc, sizeof(kc),
             "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
             "clusters:\n- name: other\n  cluster:\n    server: https://192.0.2.1:6443\n"
             "- name: kind\n  cluster:\n    server: https://127.0.0.1:%d\n"
             "    certificate-authority-data: %s\n"
             "contexts:\n- name: dev\n  context:\n    cluster: kind\n    user: admin\n"
             "users:\n- name: admin\n  user:\n    token: tok-2\n",
             srv.port, b64);
    write_file("kubeconfig", kc);
    assert_int_equal(kopt_kube_config_load(&cfg, path_in("kubeconfig")), 0);
    assert_null(cfg.ca_file);
    assert_non_null(cfg.ca_pem);
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), 0);
    free(body);
    kopt_kube_client_free(c);
    kopt_kube_config_clear(&cfg);

    /* Not a kubeconfig. */
    write_file("bad-kubeconfig", "current-context: nowhere\nclusters: []\n");
    assert_int_equal(kopt_kube_config_from_kubeconfig(&cfg, path_in("bad-kubeconfig")), -EINVAL);
    assert_int_equal(kopt_kube_config_from_kubeconfig(&cfg, path_in("missing")), -ENOENT);
    free(ca_pem);
    free(b64);
}

static void cache_gives_each_container_its_metadata(void **state)
{
    kopt_kube_cache_config_t cc = {.node = "node-1"};
    kopt_kube_cache_stats_t st;
    kopt_kube_container_meta_t m;
    kopt_kube_workload_t w;
    kopt_kube_node_t node;
    kopt_kube_config_t cfg;
    kopt_kube_client_t *c;
    kopt_kube_cache_t *cache;
    uint64_t fetches;

    (void)state;
    base_config(&cfg);
    c = client_for(&cfg);
    assert_int_equal(kopt_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(kopt_kube_cache_container(cache, "x", NULL, NULL, &m), -ENOENT);
    assert_int_equal(kopt_kube_cache_refresh(cache, 1709288400000LL), 0);

    /* By the bare id a cgroup path shows. */
    assert_int_equal(kopt_kube_cache_container(
                         cache, "4f1c9a8b7e6d5c4b3a29181716151413121110f0e0d0c0b0a090807060504030",
                         NULL, NULL, &m),
                     0);
    assert_string_equal(m.namespace_, "shop");
    assert_string_equal(m.pod, "web-7d9f8b6c5d-x2x7q");
    assert_string_equal(m.container, "app");
    assert_int_equal(m.workload_kind, KOPT_KUBE_KIND_DEPLOYMENT);
    assert_string_equal(m.workload_name, "web");
    assert_int_equal(m.qos, KOPT_KUBE_QOS_BURSTABLE);
    assert_true(m.cpu_request_cores == 0.25 && m.cpu_limit_cores == 1.0);
    assert_int_equal(m.memory_limit_bytes, 512u << 20);
    assert_true(m.last_oom);
    assert_int_equal(m.restart_count, 3);

    /* By pod UID (systemd's underscores) and container name. */
    assert_int_equal(kopt_kube_cache_container(cache, NULL, "e5f6a7b8_c9d0_4e1f_a2b3_c4d5e6f7a8b9",
                                               "postgres", &m),
                     0);
    assert_int_equal(m.workload_kind, KOPT_KUBE_KIND_STATEFUL_SET);
    assert_int_equal(m.qos, KOPT_KUBE_QOS_GUARANTEED);
    assert_int_equal(kopt_kube_cache_container(cache,
                                               "cri-o://77aa66bb55cc44dd33ee22ff1100998877"
                                               "665544332211aabbccddeeff0011",
                                               NULL, NULL, &m),
                     0);
    assert_int_equal(m.workload_kind, KOPT_KUBE_KIND_CRON_JOB);
    assert_string_equal(m.workload_name, "report");
    assert_int_equal(
        kopt_kube_cache_container(cache, NULL, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "debug", &m),
        0);
    assert_int_equal(m.workload_kind, KOPT_KUBE_KIND_POD);

    assert_int_equal(kopt_kube_cache_workload(cache, "shop", KOPT_KUBE_KIND_DEPLOYMENT, "web", &w),
                     0);
    assert_int_equal(w.replicas, 4);
    assert_int_equal(w.ready_replicas, 3);
    assert_true(w.has_hpa);
    assert_int_equal(w.hpa.target_cpu_utilization_percent, 70);
    assert_int_equal(w.hpa.max_replicas, 10);
    assert_int_equal(kopt_kube_cache_workload(cache, "monitoring", KOPT_KUBE_KIND_DAEMON_SET,
                                              "node-exporter", &w),
                     0);
    assert_int_equal(w.replicas, 12);
    assert_false(w.has_hpa);
    assert_int_equal(kopt_kube_cache_workload(cache, "shop", KOPT_KUBE_KIND_CRON_JOB, "report", &w),
                     0);
    /* The ReplicaSet of api is gone (404): named after its pod-template-hash. */
    assert_int_equal(kopt_kube_cache_workload(cache, "shop", KOPT_KUBE_KIND_DEPLOYMENT, "api", &w),
                     0);
    assert_int_equal(kopt_kube_cache_node(cache, &node), 0);
    assert_string_equal(node.zone, "eu-west-1b");

    kopt_kube_cache_stats(cache, &st);
    assert_int_equal(st.pods, 7);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.object_errors, 0);
    fetches = st.object_fetches;

    /* The next list carries the resourceVersion; a 410 makes a relist. Owners
     * are cached: no new fetches within the TTL. */
    pthread_mutex_lock(&srv.lock);
    srv.gone_once = 1;
    pthread_mutex_unlock(&srv.lock);
    assert_int_equal(kopt_kube_cache_refresh(cache, 1709288410000LL), 0);
    kopt_kube_cache_stats(cache, &st);
    assert_int_equal(st.relists, 1);
    assert_int_equal(st.refreshes, 2);
    assert_int_equal(st.object_fetches, fetches);
    assert_true(srv.pod_lists_rv >= 1);
    assert_int_equal(kopt_kube_cache_refresh(cache, 1709288420000LL), 0);
    assert_int_equal(
        kopt_kube_cache_container(cache,
                                  "containerd://9a8b7c6d5e4f30211223344556677889900aabbccdd"
                                  "eeff1122334455667788",
                                  NULL, NULL, &m),
        0);
    assert_string_equal(m.container, "istio-proxy");
    kopt_kube_cache_free(cache);

    /* Tiny caps: owners evicted and counted, pods dropped and counted. */
    cc.max_pods = 2;
    cc.max_objects = 1;
    assert_int_equal(kopt_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(kopt_kube_cache_refresh(cache, 1709288400000LL), 0);
    kopt_kube_cache_stats(cache, &st);
    assert_int_equal(st.pods, 2);
    assert_int_equal(st.pods_dropped, 5);
    assert_true(st.objects_evicted > 0);
    assert_int_equal(st.objects, 1);
    kopt_kube_cache_free(cache);

    /* A failing list keeps nothing new and says why. */
    set_token("tok-9");
    assert_int_equal(kopt_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(kopt_kube_cache_refresh(cache, 1709288400000LL), -EACCES);
    kopt_kube_cache_stats(cache, &st);
    assert_int_equal(st.refresh_errors, 1);
    kopt_kube_cache_free(cache);
    set_token("tok-2");
    kopt_kube_client_free(c);
    kopt_kube_config_clear(&cfg);
}

static void kubelet_summary_directly_and_through_the_proxy(void **state)
{
    kopt_kube_config_t cfg, kcfg;
    kopt_kube_client_t *api, *kubelet;
    kopt_kubelet_summary_t s;
    const kopt_kubelet_container_t *ct;

    (void)state;
    base_config(&cfg);
    api = client_for(&cfg);
    assert_int_equal(kopt_kubelet_fetch(api, KOPT_KUBELET_PROXY, "node-1", NULL, &s), 0);
    ct = kopt_kubelet_find(&s, "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9", "postgres");
    assert_non_null(ct);
    assert_int_equal(ct->memory_working_set_bytes, 734003200);
    kopt_kubelet_summary_clear(&s);

    assert_int_equal(kopt_kubelet_config(&cfg, "127.0.0.1", srv.port, &kcfg), 0);
    kubelet = client_for(&kcfg);
    assert_int_equal(kopt_kubelet_fetch(kubelet, KOPT_KUBELET_DIRECT, NULL, NULL, &s), 0);
    assert_int_equal(s.n_pods, 3);
    kopt_kubelet_summary_clear(&s);
    assert_int_equal(kopt_kubelet_fetch(api, KOPT_KUBELET_PROXY, "bad/name", NULL, &s), -EINVAL);
    kopt_kube_client_free(kubelet);
    kopt_kube_client_free(api);
    kopt_kube_config_clear(&kcfg);
    kopt_kube_config_clear(&cfg);
}

int main(int argc, char **argv)
{
    int r;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bearer_token_is_checked_and_reread_on_401),
        cmocka_unit_test(errors_are_clean_and_fast),
        cmocka_unit_test(in_cluster_and_kubeconfig_configs_work),
        cmocka_unit_test(cache_gives_each_container_its_metadata),
        cmocka_unit_test(kubelet_summary_directly_and_through_the_proxy),
    };

    if (argc > 1)
        src_root = argv[1];

    /* As in the daemons (lifecycle.c): a peer gone mid-write is an error, not
     * a signal; the server writes to clients that timed out. */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return r;
}
