/* A Kubernetes API server and kubelet for tests: TLS (OpenSSL) on a free
 * loopback port, one thread a connection, answering by path from the
 * recorded responses of tests/fixtures/kube/ the way the real servers do:
 * bearer token checked (401 Status otherwise), 410 Gone once on request to a
 * pod list with resourceVersion, 404 Status for what it does not know, and a
 * slow path (/slow, 3 s) for client timeouts. The Summary API is live: each
 * answer carries the current time and CPU counters grown at the recorded
 * rate since the server started, as a running kubelet's would. */
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ssl.h>

enum { F_PODS, F_RS, F_JOBS, F_WORKLOADS, F_HPAS, F_NODE, F_SUMMARY, F_N };

struct kopt_test_kube {
    char url[64];
    int fd, port;
    SSL_CTX *ctx;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    atomic_int stop;
    char token[128]; /* expected bearer token */
    char node[254];
    int gone_once; /* answer the next pod list with resourceVersion with 410 */
    int active;    /* connection threads running */
    int64_t started_s;
    kopt_test_kube_stats_t st;
    json_t *fixtures[F_N];
};

typedef struct {
    kopt_test_kube_t *k;
    int fd;
} conn_t;

/* --- answers ------------------------------------------------------------------ */

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

/* A metav1.Status, as the API server sends with every error. */
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

    if (s)
        respond(ssl, 200, "OK", s);
    else
        respond_status(ssl, 500, "InternalError", "cannot encode");
    free(s);
}

/* GET /apis/<group>/<v>/namespaces/NS/<plural>/NAME from a recorded list. */
static bool serve_object(kopt_test_kube_t *k, SSL *ssl, const char *path)
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
    size_t i, n;

    if (sscanf(path, "/apis/%*[^/]/%*[^/]/namespaces/%63[^/]/%63[^/]/%255s", ns, plural, name) != 3)
        return false;
    for (n = 0; n < sizeof(kinds) / sizeof(kinds[0]); n++) {
        if (strcmp(kinds[n].plural, plural) != 0)
            continue;
        json_array_foreach(json_object_get(k->fixtures[kinds[n].fixture], "items"), i, item)
        {
            const json_t *meta = json_object_get(item, "metadata");
            const char *kind = json_string_value(json_object_get(item, "kind"));
            const char *iname = json_string_value(json_object_get(meta, "name"));
            const char *ins = json_string_value(json_object_get(meta, "namespace"));
            json_t *copy;

            if (!iname || !ins || strcmp(iname, name) != 0 || strcmp(ins, ns) != 0 ||
                (kind && strcmp(kind, kinds[n].kind) != 0))
                continue;
            /* A GET answers the object with its kind, which a list leaves out. */
            copy = json_deep_copy(item);
            json_object_set_new(copy, "kind", json_string(kinds[n].kind));
            json_object_set_new(copy, "apiVersion", json_string(kinds[n].api));
            respond_json(ssl, copy);
            json_decref(copy);
            return true;
        }
    }
    respond_status(ssl, 404, "NotFound", "not found");
    return true;
}

/* The recorded summary made current: every "time" is now, and each CPU
 * counter has grown by usageNanoCores for every second since the start. */
static void make_live(json_t *j, const char *now, int64_t elapsed_s)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_array(j)) {
        json_array_foreach(j, i, v) make_live(v, now, elapsed_s);
        return;
    }
    if (!json_is_object(j))
        return;
    if (json_is_string(json_object_get(j, "time")))
        json_object_set_new(j, "time", json_string(now));
    if (json_is_integer(json_object_get(j, "usageNanoCores")) &&
        json_is_integer(json_object_get(j, "usageCoreNanoSeconds"))) {
        json_int_t rate = json_integer_value(json_object_get(j, "usageNanoCores"));
        json_int_t total = json_integer_value(json_object_get(j, "usageCoreNanoSeconds"));

        json_object_set_new(j, "usageCoreNanoSeconds", json_integer(total + rate * elapsed_s));
    }
    json_object_foreach(j, key, v) make_live(v, now, elapsed_s);
}

static void serve_summary(kopt_test_kube_t *k, SSL *ssl)
{
    json_t *copy = json_deep_copy(k->fixtures[F_SUMMARY]);
    time_t t = time(NULL);
    struct tm tm;
    char now[32];

    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm); /* whole seconds, as kubelets do */
    make_live(copy, now, (int64_t)t - k->started_s);
    respond_json(ssl, copy);
    json_decref(copy);
}

/* "/api/v1/pods?fieldSelector=spec.nodeName%3D<node>" with more or nothing after. */
static bool is_pod_list(const kopt_test_kube_t *k, const char *path)
{
    static const char prefix[] = "/api/v1/pods?fieldSelector=spec.nodeName%3D";
    size_t n = strlen(k->node);

    return strncmp(path, prefix, sizeof(prefix) - 1) == 0 &&
           strncmp(path + sizeof(prefix) - 1, k->node, n) == 0 &&
           (path[sizeof(prefix) - 1 + n] == '\0' || path[sizeof(prefix) - 1 + n] == '&');
}

static void serve_pod_list(kopt_test_kube_t *k, SSL *ssl, const char *path)
{
    bool rv = strstr(path, "resourceVersion=") != NULL, gone;

    pthread_mutex_lock(&k->lock);
    k->st.pod_lists++;
    k->st.pod_lists_rv += rv;
    gone = rv && k->gone_once;
    k->gone_once = k->gone_once && !rv;
    pthread_mutex_unlock(&k->lock);
    if (gone)
        respond_status(ssl, 410, "Expired", "too old resource version: 918273 (918999)");
    else
        respond_json(ssl, k->fixtures[F_PODS]);
}

static void count(kopt_test_kube_t *k, int *counter)
{
    pthread_mutex_lock(&k->lock);
    (*counter)++;
    pthread_mutex_unlock(&k->lock);
}

static void serve(kopt_test_kube_t *k, SSL *ssl, const char *path, const char *auth)
{
    char want[160], node_path[300], proxy_path[320];
    bool ok;

    pthread_mutex_lock(&k->lock);
    k->st.requests++;
    snprintf(want, sizeof(want), "Bearer %s", k->token);
    ok = auth && strcmp(auth, want) == 0;
    k->st.unauthorized += !ok;
    pthread_mutex_unlock(&k->lock);
    if (!ok) {
        respond_status(ssl, 401, "Unauthorized", "Unauthorized");
        return;
    }
    snprintf(node_path, sizeof(node_path), "/api/v1/nodes/%s", k->node);
    snprintf(proxy_path, sizeof(proxy_path), "%s/proxy/stats/summary", node_path);
    if (strcmp(path, "/slow") == 0) {
        for (int i = 0; i < 30 && !k->stop; i++)
            usleep(100 * 1000);
        respond(ssl, 200, "OK", "{}");
    } else if (is_pod_list(k, path)) {
        serve_pod_list(k, ssl, path);
    } else if (strcmp(path, "/apis/autoscaling/v2/horizontalpodautoscalers") == 0) {
        count(k, &k->st.hpa_lists);
        respond_json(ssl, k->fixtures[F_HPAS]);
    } else if (strcmp(path, node_path) == 0) {
        count(k, &k->st.node_gets);
        respond_json(ssl, k->fixtures[F_NODE]);
    } else if (strcmp(path, proxy_path) == 0) {
        count(k, &k->st.summaries_proxy);
        serve_summary(k, ssl);
    } else if (strcmp(path, "/stats/summary") == 0) {
        count(k, &k->st.summaries_direct);
        serve_summary(k, ssl);
    } else if (!serve_object(k, ssl, path)) {
        respond_status(ssl, 404, "NotFound", "the server could not find the requested resource");
    }
}

/* --- connections ----------------------------------------------------------------- */

static void handle(kopt_test_kube_t *k, int fd)
{
    SSL *ssl = SSL_new(k->ctx);
    char req[8192], path[2048], *auth, *eol;
    size_t len = 0;
    int n;

    if (!ssl)
        goto out;
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
    serve(k, ssl, path, auth);
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    kopt_test_kube_t *k = c->k;

    handle(k, c->fd);
    free(c);
    pthread_mutex_lock(&k->lock);
    k->active--;
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

/* A thread a connection, so a slow answer does not hold up the next. */
static void *server_main(void *arg)
{
    kopt_test_kube_t *k = arg;
    pthread_t t;

    while (!k->stop) {
        struct pollfd p = {.fd = k->fd, .events = POLLIN};
        conn_t *c;
        int fd;

        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept4(k->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        c = malloc(sizeof(*c));
        pthread_mutex_lock(&k->lock);
        k->active++;
        pthread_mutex_unlock(&k->lock);
        if (c) {
            *c = (conn_t){k, fd};
            if (pthread_create(&t, NULL, conn_main, c) == 0) {
                pthread_detach(t);
                continue;
            }
            free(c);
        }
        handle(k, fd);
        pthread_mutex_lock(&k->lock);
        k->active--;
        pthread_mutex_unlock(&k->lock);
    }
    /* Wait for the connection threads (the slow one checks stop). */
    for (;;) {
        int n;

        pthread_mutex_lock(&k->lock);
        n = k->active;
        pthread_mutex_unlock(&k->lock);
        if (n == 0)
            break;
        usleep(10 * 1000);
    }
    return NULL;
}

/* --- life ------------------------------------------------------------------------ */

static int load_fixtures(kopt_test_kube_t *k, const char *dir, const char *summary)
{
    const char *const names[F_N] = {"pods.json",
                                    "replicasets.json",
                                    "jobs.json",
                                    "workloads.json",
                                    "hpas.json",
                                    "node.json",
                                    summary ? summary : "summary.json"};
    char path[4096];

    for (int i = 0; i < F_N; i++) {
        json_error_t err;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        k->fixtures[i] = json_load_file(path, 0, &err);
        if (!k->fixtures[i]) {
            fprintf(stderr, "kube replay: %s: %s (line %d)\n", path, err.text, err.line);
            return -EINVAL;
        }
    }
    return 0;
}

static int listen_tls(kopt_test_kube_t *k, const char *cert, const char *key)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    k->ctx = SSL_CTX_new(TLS_server_method());
    if (!k->ctx || SSL_CTX_use_certificate_chain_file(k->ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(k->ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "kube replay: cannot use %s / %s\n", cert, key);
        return -EINVAL;
    }
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k->fd < 0)
        return -errno;
    /* Port 0: the kernel picks a free one, no race with other tests. */
    if (bind(k->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(k->fd, 64) < 0 ||
        getsockname(k->fd, (struct sockaddr *)&a, &alen) < 0)
        return -errno;
    k->port = ntohs(a.sin_port);
    snprintf(k->url, sizeof(k->url), "https://127.0.0.1:%d", k->port);
    return 0;
}

static void cleanup_cb(void *arg)
{
    kopt_test_kube_free(arg);
}

int kopt_test_kube_start(kopt_test_kube_t **out, const kopt_test_kube_opts_t *o)
{
    kopt_test_kube_t *k = calloc(1, sizeof(*k));
    int r;

    *out = NULL;
    if (!k)
        return -ENOMEM;
    k->fd = -1;
    pthread_mutex_init(&k->lock, NULL);
    snprintf(k->token, sizeof(k->token), "%s", o->token ? o->token : "");
    snprintf(k->node, sizeof(k->node), "%s", o->node ? o->node : "node-1");
    k->started_s = (int64_t)time(NULL);
    kopt_test_cleanup_push(cleanup_cb, k);
    r = load_fixtures(k, o->fixtures_dir, o->summary);
    if (r == 0)
        r = listen_tls(k, o->cert_file, o->key_file);
    if (r == 0) {
        r = -pthread_create(&k->thread, NULL, server_main, k);
        k->thread_started = r == 0;
    }
    if (r < 0) {
        kopt_test_kube_free(k);
        return r;
    }
    *out = k;
    return 0;
}

const char *kopt_test_kube_url(const kopt_test_kube_t *k)
{
    return k->url;
}

int kopt_test_kube_port(const kopt_test_kube_t *k)
{
    return k->port;
}

void kopt_test_kube_set_token(kopt_test_kube_t *k, const char *token)
{
    pthread_mutex_lock(&k->lock);
    snprintf(k->token, sizeof(k->token), "%s", token);
    pthread_mutex_unlock(&k->lock);
}

void kopt_test_kube_gone_once(kopt_test_kube_t *k)
{
    pthread_mutex_lock(&k->lock);
    k->gone_once = 1;
    pthread_mutex_unlock(&k->lock);
}

void kopt_test_kube_stats(kopt_test_kube_t *k, kopt_test_kube_stats_t *out)
{
    pthread_mutex_lock(&k->lock);
    *out = k->st;
    pthread_mutex_unlock(&k->lock);
}

void kopt_test_kube_free(kopt_test_kube_t *k)
{
    if (!k)
        return;
    kopt_test_cleanup_forget(k);
    k->stop = 1;
    if (k->thread_started)
        pthread_join(k->thread, NULL);
    if (k->fd >= 0)
        close(k->fd);
    SSL_CTX_free(k->ctx);
    for (int i = 0; i < F_N; i++)
        json_decref(k->fixtures[i]);
    pthread_mutex_destroy(&k->lock);
    free(k);
}
