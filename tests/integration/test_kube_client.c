/* agent/kube_client.c, kube_cache.c and kubelet_source.c against the
 * harness's replayed API server and kubelet (tests/harness/kube_replay.c:
 * TLS with the dev certificates of scripts/certs, the recorded responses of
 * tests/fixtures/kube/): the bearer token (401 without or with a wrong one),
 * 410 Gone to a list with resourceVersion, a slow path for the client
 * timeout. argv[1] is the source root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
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
#include <openssl/evp.h>

#include "harness.h"
#include "kube_cache.h"
#include "kube_client.h"
#include "kubelet_source.h"

static const char *src_root = ".";
static char *dir;

static kopt_test_kube_t *srv;

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

static kopt_test_kube_stats_t stats(void)
{
    kopt_test_kube_stats_t st;

    kopt_test_kube_stats(srv, &st);
    return st;
}

static int setup(void **state)
{
    char fixtures[1024], cert[1100], key[1100];
    kopt_test_kube_opts_t o = {
        .fixtures_dir = fixtures, .cert_file = cert, .key_file = key, .token = "tok-1"};

    (void)state;
    dir = kopt_test_tmpdir("kopt-kube");
    if (!dir || kopt_test_make_certs(src_root, dir) < 0)
        return -1;
    snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/kube", src_root);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", dir);
    write_file("token", "tok-1\n");
    return kopt_test_kube_start(&srv, &o);
}

static int teardown(void **state)
{
    (void)state;
    kopt_test_kube_free(srv);
    srv = NULL;
    kopt_test_rmtree(dir);
    free(dir);
    return 0;
}

/* A config for the test server with the token file and the dev CA. */
static void base_config(agent_kube_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->server = strdup(kopt_test_kube_url(srv));
    c->ca_file = strdup(path_in("ca.pem"));
    c->token_file = strdup(path_in("token"));
    c->timeout_ms = 2000;
}

static agent_kube_client_t *client_for(const agent_kube_config_t *cfg)
{
    agent_kube_client_t *c = NULL;

    assert_int_equal(agent_kube_client_new(cfg, &c), 0);
    return c;
}

/* --- Tests ----------------------------------------------------------------------- */

static void bearer_token_is_checked_and_reread_on_401(void **state)
{
    agent_kube_config_t cfg;
    agent_kube_client_t *c;
    char *body = NULL;
    size_t len;
    long status;
    int before;

    (void)state;
    base_config(&cfg);
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "m6i.xlarge"));
    free(body);

    /* The token rotates: the file has the new one, the client re-reads it. */
    kopt_test_kube_set_token(srv, "tok-2");
    write_file("token", "tok-2\n");
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status), 0);
    free(body);

    /* A wrong token: one re-read, one retry, then a clean -EACCES. */
    kopt_test_kube_set_token(srv, "tok-3");
    before = stats().unauthorized;
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, &status),
                     -EACCES);
    assert_int_equal(status, 401);
    assert_null(body);
    assert_int_equal(stats().unauthorized - before, 2);
    agent_kube_client_free(c);

    /* No token at all. */
    free(cfg.token_file);
    cfg.token_file = NULL;
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EACCES);
    agent_kube_client_free(c);
    agent_kube_config_clear(&cfg);
    kopt_test_kube_set_token(srv, "tok-2");
}

static void errors_are_clean_and_fast(void **state)
{
    agent_kube_config_t cfg;
    agent_kube_client_t *c;
    char *body = NULL;
    size_t len;
    double t0;

    (void)state;
    base_config(&cfg);
    cfg.timeout_ms = 500;
    c = client_for(&cfg);
    t0 = kopt_test_now();
    assert_int_equal(agent_kube_client_get(c, "/slow", &body, &len, NULL), -ETIMEDOUT);
    assert_true(kopt_test_now() - t0 < 2.0);
    assert_null(body);
    assert_int_equal(agent_kube_client_get(c, "/nope", &body, &len, NULL), -ENOENT);
    agent_kube_client_free(c);

    /* A body above the cap. */
    cfg.max_body_bytes = 100;
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EFBIG);
    agent_kube_client_free(c);
    cfg.max_body_bytes = 0;

    /* A server whose certificate the CA did not sign. */
    free(cfg.ca_file);
    cfg.ca_file = strdup(path_in("rogue-ca.pem"));
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), -EPROTO);
    agent_kube_client_free(c);

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
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL),
                     -ECONNREFUSED);
    agent_kube_client_free(c);
    agent_kube_config_clear(&cfg);
}

static void in_cluster_and_kubeconfig_configs_work(void **state)
{
    agent_kube_config_t cfg;
    agent_kube_client_t *c;
    char port[16], kc[8192], *ca_pem, *b64;
    char *body = NULL;
    size_t len, n;
    FILE *f;

    (void)state;
    /* In-cluster: env and a service-account directory. */
    snprintf(port, sizeof(port), "%d", kopt_test_kube_port(srv));
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    {
        char cmd[2048];

        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path_in("ca.pem"), path_in("ca.crt"));
        assert_int_equal(system(cmd), 0);
    }
    assert_int_equal(agent_kube_config_in_cluster(&cfg, dir), 0);
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), 0);
    free(body);
    agent_kube_client_free(c);
    agent_kube_config_clear(&cfg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(agent_kube_config_in_cluster(&cfg, dir), -ENOENT);

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
             kopt_test_kube_port(srv), b64);
    write_file("kubeconfig", kc);
    assert_int_equal(agent_kube_config_load(&cfg, path_in("kubeconfig")), 0);
    assert_null(cfg.ca_file);
    assert_non_null(cfg.ca_pem);
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), 0);
    free(body);
    agent_kube_client_free(c);
    agent_kube_config_clear(&cfg);

    /* Not a kubeconfig. */
    write_file("bad-kubeconfig", "current-context: nowhere\nclusters: []\n");
    assert_int_equal(agent_kube_config_from_kubeconfig(&cfg, path_in("bad-kubeconfig")), -EINVAL);
    assert_int_equal(agent_kube_config_from_kubeconfig(&cfg, path_in("missing")), -ENOENT);
    free(ca_pem);
    free(b64);
}

static void cache_gives_each_container_its_metadata(void **state)
{
    agent_kube_cache_config_t cc = {.node = "node-1"};
    agent_kube_cache_stats_t st;
    agent_kube_container_meta_t m;
    agent_kube_workload_t w;
    agent_kube_node_t node;
    agent_kube_config_t cfg;
    agent_kube_client_t *c;
    agent_kube_cache_t *cache;
    uint64_t fetches;

    (void)state;
    base_config(&cfg);
    c = client_for(&cfg);
    assert_int_equal(agent_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(agent_kube_cache_container(cache, "x", NULL, NULL, &m), -ENOENT);
    assert_int_equal(agent_kube_cache_refresh(cache, 1709288400000LL), 0);

    /* By the bare id a cgroup path shows. */
    assert_int_equal(agent_kube_cache_container(
                         cache, "4f1c9a8b7e6d5c4b3a29181716151413121110f0e0d0c0b0a090807060504030",
                         NULL, NULL, &m),
                     0);
    assert_string_equal(m.namespace_, "shop");
    assert_string_equal(m.pod, "web-7d9f8b6c5d-x2x7q");
    assert_string_equal(m.container, "app");
    assert_int_equal(m.workload_kind, AGENT_KUBE_KIND_DEPLOYMENT);
    assert_string_equal(m.workload_name, "web");
    assert_int_equal(m.qos, AGENT_KUBE_QOS_BURSTABLE);
    assert_true(m.cpu_request_cores == 0.25 && m.cpu_limit_cores == 1.0);
    assert_int_equal(m.memory_limit_bytes, 512u << 20);
    assert_true(m.last_oom);
    assert_int_equal(m.restart_count, 3);

    /* By pod UID (systemd's underscores) and container name. */
    assert_int_equal(agent_kube_cache_container(cache, NULL, "e5f6a7b8_c9d0_4e1f_a2b3_c4d5e6f7a8b9",
                                                "postgres", &m),
                     0);
    assert_int_equal(m.workload_kind, AGENT_KUBE_KIND_STATEFUL_SET);
    assert_int_equal(m.qos, AGENT_KUBE_QOS_GUARANTEED);
    assert_int_equal(agent_kube_cache_container(cache,
                                                "cri-o://77aa66bb55cc44dd33ee22ff1100998877"
                                                "665544332211aabbccddeeff0011",
                                                NULL, NULL, &m),
                     0);
    assert_int_equal(m.workload_kind, AGENT_KUBE_KIND_CRON_JOB);
    assert_string_equal(m.workload_name, "report");
    assert_int_equal(agent_kube_cache_container(cache, NULL, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                                                "debug", &m),
                     0);
    assert_int_equal(m.workload_kind, AGENT_KUBE_KIND_POD);

    assert_int_equal(
        agent_kube_cache_workload(cache, "shop", AGENT_KUBE_KIND_DEPLOYMENT, "web", &w), 0);
    assert_int_equal(w.replicas, 4);
    assert_int_equal(w.ready_replicas, 3);
    assert_true(w.has_hpa);
    assert_int_equal(w.hpa.target_cpu_utilization_percent, 70);
    assert_int_equal(w.hpa.max_replicas, 10);
    assert_int_equal(agent_kube_cache_workload(cache, "monitoring", AGENT_KUBE_KIND_DAEMON_SET,
                                               "node-exporter", &w),
                     0);
    assert_int_equal(w.replicas, 12);
    assert_false(w.has_hpa);
    assert_int_equal(
        agent_kube_cache_workload(cache, "shop", AGENT_KUBE_KIND_CRON_JOB, "report", &w), 0);
    /* The ReplicaSet of api is gone (404): named after its pod-template-hash. */
    assert_int_equal(
        agent_kube_cache_workload(cache, "shop", AGENT_KUBE_KIND_DEPLOYMENT, "api", &w), 0);
    assert_int_equal(agent_kube_cache_node(cache, &node), 0);
    assert_string_equal(node.zone, "eu-west-1b");

    agent_kube_cache_stats(cache, &st);
    assert_int_equal(st.pods, 7);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.object_errors, 0);
    fetches = st.object_fetches;

    /* The next list carries the resourceVersion; a 410 makes a relist. Owners
     * are cached: no new fetches within the TTL. */
    kopt_test_kube_gone_once(srv);
    assert_int_equal(agent_kube_cache_refresh(cache, 1709288410000LL), 0);
    agent_kube_cache_stats(cache, &st);
    assert_int_equal(st.relists, 1);
    assert_int_equal(st.refreshes, 2);
    assert_int_equal(st.object_fetches, fetches);
    assert_true(stats().pod_lists_rv >= 1);
    assert_int_equal(agent_kube_cache_refresh(cache, 1709288420000LL), 0);
    assert_int_equal(
        agent_kube_cache_container(cache,
                                   "containerd://9a8b7c6d5e4f30211223344556677889900aabbccdd"
                                   "eeff1122334455667788",
                                   NULL, NULL, &m),
        0);
    assert_string_equal(m.container, "istio-proxy");
    agent_kube_cache_free(cache);

    /* Tiny caps: owners evicted and counted, pods dropped and counted. */
    cc.max_pods = 2;
    cc.max_objects = 1;
    assert_int_equal(agent_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(agent_kube_cache_refresh(cache, 1709288400000LL), 0);
    agent_kube_cache_stats(cache, &st);
    assert_int_equal(st.pods, 2);
    assert_int_equal(st.pods_dropped, 5);
    assert_true(st.objects_evicted > 0);
    assert_int_equal(st.objects, 1);
    agent_kube_cache_free(cache);

    /* A failing list keeps nothing new and says why. */
    kopt_test_kube_set_token(srv, "tok-9");
    assert_int_equal(agent_kube_cache_new(c, &cc, &cache), 0);
    assert_int_equal(agent_kube_cache_refresh(cache, 1709288400000LL), -EACCES);
    agent_kube_cache_stats(cache, &st);
    assert_int_equal(st.refresh_errors, 1);
    agent_kube_cache_free(cache);
    kopt_test_kube_set_token(srv, "tok-2");
    agent_kube_client_free(c);
    agent_kube_config_clear(&cfg);
}

static void kubelet_summary_directly_and_through_the_proxy(void **state)
{
    agent_kube_config_t cfg, kcfg;
    agent_kube_client_t *api, *kubelet;
    agent_kubelet_summary_t s;
    const agent_kubelet_container_t *ct;

    (void)state;
    base_config(&cfg);
    api = client_for(&cfg);
    assert_int_equal(agent_kubelet_fetch(api, AGENT_KUBELET_PROXY, "node-1", NULL, &s), 0);
    assert_int_equal(stats().summaries_proxy, 1);
    ct = agent_kubelet_find(&s, "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9", "postgres");
    assert_non_null(ct);
    assert_int_equal(ct->memory_working_set_bytes, 734003200);
    agent_kubelet_summary_clear(&s);

    assert_int_equal(agent_kubelet_config(&cfg, "127.0.0.1", kopt_test_kube_port(srv), &kcfg), 0);
    kubelet = client_for(&kcfg);
    assert_int_equal(agent_kubelet_fetch(kubelet, AGENT_KUBELET_DIRECT, NULL, NULL, &s), 0);
    assert_int_equal(s.n_pods, 3);
    assert_int_equal(stats().summaries_direct, 1);
    agent_kubelet_summary_clear(&s);
    assert_int_equal(agent_kubelet_fetch(api, AGENT_KUBELET_PROXY, "bad/name", NULL, &s), -EINVAL);
    agent_kube_client_free(kubelet);
    agent_kube_client_free(api);
    agent_kube_config_clear(&kcfg);
    agent_kube_config_clear(&cfg);
}

/* A plain-http server for one request: keeps what the client sent. */
typedef struct {
    int fd;
    char got[4096];
} plain_srv_t;

static void *plain_serve(void *arg)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 "Content-Type: application/json\r\nConnection: close\r\n\r\n{}";
    plain_srv_t *p = arg;
    size_t n = 0;
    ssize_t r;
    int c = accept(p->fd, NULL, NULL);

    if (c < 0)
        return NULL;
    while (n < sizeof(p->got) - 1 && !strstr(p->got, "\r\n\r\n")) {
        r = read(c, p->got + n, sizeof(p->got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        p->got[n] = '\0';
    }
    if (write(c, answer, sizeof(answer) - 1) < 0)
        p->got[0] = '\0';
    close(c);
    return NULL;
}

static int plain_listen(plain_srv_t *p)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(p, 0, sizeof(*p));
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->fd >= 0);
    assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->fd, 4), 0);
    assert_int_equal(getsockname(p->fd, (struct sockaddr *)&a, &alen), 0);
    return ntohs(a.sin_port);
}

/* Issue 15: http:// sent the bearer token in clear without a word. Now the
 * client refuses it, unless allow_insecure_http says so (then it warns). */
static void plain_http_is_refused_unless_allowed(void **state)
{
    agent_kube_config_t cfg;
    agent_kube_client_t *c = NULL;
    plain_srv_t p;
    pthread_t th;
    char url[64], *body = NULL;
    size_t len;
    int port;

    (void)state;
    port = plain_listen(&p);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    base_config(&cfg);
    free(cfg.server);
    cfg.server = strdup(url);

    assert_int_equal(pthread_create(&th, NULL, plain_serve, &p), 0);
    if (agent_kube_client_new(&cfg, &c) == 0) {
        /* The old behaviour: see whether the token went out in clear. */
        (void)agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL);
        free(body);
        body = NULL;
        agent_kube_client_free(c);
        c = NULL;
        pthread_join(th, NULL);
        fail_msg("http:// accepted without allow_insecure_http; the server saw %s",
                 strstr(p.got, "Bearer tok-") ? "the bearer token" : "a request");
    }
    assert_null(c);
    /* Neither a scheme-less nor another scheme's URL gets the token. */
    free(cfg.server);
    cfg.server = strdup("ftp://127.0.0.1:1");
    assert_int_equal(agent_kube_client_new(&cfg, &c), -EINVAL);
    free(cfg.server);
    cfg.server = strdup(url);

    /* Allowed in so many words: it works, and the token goes as asked. */
    cfg.allow_insecure_http = true;
    c = client_for(&cfg);
    assert_int_equal(agent_kube_client_get(c, "/api/v1/nodes/node-1", &body, &len, NULL), 0);
    assert_string_equal(body, "{}");
    free(body);
    agent_kube_client_free(c);
    pthread_join(th, NULL);
    assert_non_null(strstr(p.got, "Authorization: Bearer tok-")); /* earlier tests rotate it */
    close(p.fd);
    agent_kube_config_clear(&cfg);
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
        cmocka_unit_test(plain_http_is_refused_unless_allowed),
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
