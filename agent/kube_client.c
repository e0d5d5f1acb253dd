/* HTTPS GET to the Kubernetes API server or a kubelet (see kube_client.h):
 * where the credentials come from (service account, kubeconfig through
 * libyaml's document API), and one libcurl easy handle with a bearer token
 * header that is rebuilt, never logged, when the token file rotates. */
#include "kube_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <yaml.h>

#include <kopt/log.h>
#include <kopt/url.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_MAX_BODY (16u << 20)
#define MAX_SMALL_FILE (1u << 20) /* tokens, kubeconfigs: far smaller */

struct agent_kube_client {
    agent_kube_config_t cfg;
    CURL *curl;
    char *token; /* current bearer token, NULL for none */
};

typedef struct {
    char *buf;
    size_t len, cap, max;
    bool too_big;
} body_t;

/* --- Small helpers ------------------------------------------------------------ */

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* A whole small file, NUL-terminated, trailing whitespace cut (tokens). */
static int read_small_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    *out = NULL;
    if (!f)
        return -errno;
    buf = malloc(MAX_SMALL_FILE + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    n = fread(buf, 1, MAX_SMALL_FILE + 1, f);
    fclose(f);
    if (n > MAX_SMALL_FILE) {
        free(buf);
        return -EFBIG;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    *out = buf;
    return 0;
}

void agent_kube_config_clear(agent_kube_config_t *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->token_file);
    wipe_free(c->token);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    wipe_free(c->key_pem);
    memset(c, 0, sizeof(*c));
}

int agent_kube_config_copy(agent_kube_config_t *dst, const agent_kube_config_t *src)
{
    int r = 0;

    *dst = *src;
    r |= dup_str(&dst->server, src->server);
    r |= dup_str(&dst->ca_file, src->ca_file);
    r |= dup_str(&dst->ca_pem, src->ca_pem);
    r |= dup_str(&dst->token_file, src->token_file);
    r |= dup_str(&dst->token, src->token);
    r |= dup_str(&dst->cert_file, src->cert_file);
    r |= dup_str(&dst->key_file, src->key_file);
    r |= dup_str(&dst->cert_pem, src->cert_pem);
    r |= dup_str(&dst->key_pem, src->key_pem);
    if (r) {
        agent_kube_config_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

/* --- In-cluster ---------------------------------------------------------------- */

int agent_kube_config_in_cluster(agent_kube_config_t *out, const char *sa_dir)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char buf[512];
    bool v6;

    memset(out, 0, sizeof(*out));
    if (!host || !*host || !port || !*port)
        return -ENOENT;
    if (!sa_dir)
        sa_dir = AGENT_KUBE_SA_DIR;
    v6 = strchr(host, ':') != NULL;
    snprintf(buf, sizeof(buf), "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    out->server = strdup(buf);
    snprintf(buf, sizeof(buf), "%s/token", sa_dir);
    out->token_file = strdup(buf);
    snprintf(buf, sizeof(buf), "%s/ca.crt", sa_dir);
    out->ca_file = strdup(buf);
    if (!out->server || !out->token_file || !out->ca_file) {
        agent_kube_config_clear(out);
        return -ENOMEM;
    }
    if (access(out->token_file, R_OK) != 0) {
        agent_kube_config_clear(out);
        return -ENOENT;
    }
    return 0;
}

/* --- kubeconfig --------------------------------------------------------------- */

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p;

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);

        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *yscalar(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    yaml_node_t *n = ymap_get(d, map, key);

    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The `sub` mapping of the entry of list `key` whose name is `name`
 * (clusters[].cluster, users[].user, contexts[].context). */
static yaml_node_t *ynamed(yaml_document_t *d, yaml_node_t *root, const char *key, const char *name,
                           const char *sub)
{
    yaml_node_t *list = ymap_get(d, root, key);
    yaml_node_item_t *it;

    if (!list || list->type != YAML_SEQUENCE_NODE || !name)
        return NULL;
    for (it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(d, *it);
        const char *n = yscalar(d, e, "name");

        if (n && strcmp(n, name) == 0)
            return ymap_get(d, e, sub);
    }
    return NULL;
}

/* A path from the kubeconfig, made absolute against its folder. */
static int kc_path(char **dst, const char *dir, const char *p)
{
    size_t n;

    *dst = NULL;
    if (!p || !*p)
        return 0;
    if (p[0] == '/')
        return dup_str(dst, p);
    n = strlen(dir) + strlen(p) + 2;
    *dst = malloc(n);
    if (!*dst)
        return -ENOMEM;
    snprintf(*dst, n, "%s/%s", dir, p);
    return 0;
}

/* base64 (the kubeconfig *-data fields) to a NUL-terminated PEM string. */
static int kc_b64(char **dst, const char *b64)
{
    size_t n, pad = 0;
    int m;

    *dst = NULL;
    if (!b64 || !*b64)
        return 0;
    n = strlen(b64);
    if (n % 4 != 0 || n > MAX_SMALL_FILE)
        return -EINVAL;
    *dst = malloc(n / 4 * 3 + 1);
    if (!*dst)
        return -ENOMEM;
    m = EVP_DecodeBlock((unsigned char *)*dst, (const unsigned char *)b64, (int)n);
    if (m < 0) {
        free(*dst);
        *dst = NULL;
        return -EINVAL;
    }
    pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
    (*dst)[(size_t)m - pad] = '\0';
    return 0;
}

static int kc_fill(agent_kube_config_t *out, yaml_document_t *d, const char *dir, const char **why)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    const char *cur = yscalar(d, root, "current-context");
    yaml_node_t *ctx = ynamed(d, root, "contexts", cur, "context");
    yaml_node_t *cl = ynamed(d, root, "clusters", yscalar(d, ctx, "cluster"), "cluster");
    yaml_node_t *user = ynamed(d, root, "users", yscalar(d, ctx, "user"), "user");
    const char *insecure = yscalar(d, cl, "insecure-skip-tls-verify");
    int r = 0;

    if (!cur || !ctx) {
        *why = "no current-context, or no context of that name";
        return -EINVAL;
    }
    if (!cl || !yscalar(d, cl, "server")) {
        *why = "the current context's cluster has no server";
        return -EINVAL;
    }
    out->insecure_skip_verify = insecure && strcmp(insecure, "true") == 0;
    r = dup_str(&out->server, yscalar(d, cl, "server"));
    if (!r)
        r = kc_path(&out->ca_file, dir, yscalar(d, cl, "certificate-authority"));
    if (!r)
        r = kc_b64(&out->ca_pem, yscalar(d, cl, "certificate-authority-data"));
    if (!r)
        r = dup_str(&out->token, yscalar(d, user, "token"));
    if (!r)
        r = kc_path(&out->token_file, dir, yscalar(d, user, "tokenFile"));
    if (!r)
        r = kc_path(&out->cert_file, dir, yscalar(d, user, "client-certificate"));
    if (!r)
        r = kc_path(&out->key_file, dir, yscalar(d, user, "client-key"));
    if (!r)
        r = kc_b64(&out->cert_pem, yscalar(d, user, "client-certificate-data"));
    if (!r)
        r = kc_b64(&out->key_pem, yscalar(d, user, "client-key-data"));
    if (r == -EINVAL)
        *why = "bad base64 in a *-data field";
    return r;
}

int agent_kube_config_from_kubeconfig(agent_kube_config_t *out, const char *path)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    const char *why = "not YAML";
    char *text = NULL, *dir = NULL, *slash;
    int r;

    memset(out, 0, sizeof(*out));
    r = read_small_file(path, &text);
    if (r < 0)
        return r == -EFBIG ? -EINVAL : r;
    if (!yaml_parser_initialize(&parser)) {
        wipe_free(text);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        r = -EINVAL;
        goto out_parser;
    }
    dir = strdup(path);
    if (!dir) {
        r = -ENOMEM;
        goto out_doc;
    }
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    r = kc_fill(out, &doc, dir, &why);
    free(dir);
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    wipe_free(text);
    if (r < 0) {
        if (r == -EINVAL)
            kopt_log_error("kubeconfig unusable", KOPT_STR("path", path), KOPT_STR("reason", why));
        agent_kube_config_clear(out);
    }
    return r;
}

int agent_kube_config_load(agent_kube_config_t *out, const char *kubeconfig)
{
    const char *env = getenv("KUBECONFIG");
    int r;

    if (kubeconfig && *kubeconfig)
        return agent_kube_config_from_kubeconfig(out, kubeconfig);
    r = agent_kube_config_in_cluster(out, NULL);
    if (r != -ENOENT || !env || !*env)
        return r;
    return agent_kube_config_from_kubeconfig(out, env);
}

/* --- Client --------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;

    if (b->len + n > b->max) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->buf, cap);
        if (!p)
            return 0;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* (Re)reads the token file, or takes the static token. */
static int load_token(agent_kube_client_t *c)
{
    char *t = NULL;
    int r;

    if (c->cfg.token_file) {
        r = read_small_file(c->cfg.token_file, &t);
        if (r < 0) {
            kopt_log_error("cannot read the service account token",
                           KOPT_STR("path", c->cfg.token_file), KOPT_ERR(r));
            return r;
        }
    } else if (c->cfg.token && !(t = strdup(c->cfg.token))) {
        return -ENOMEM;
    }
    wipe_free(c->token);
    c->token = t;
    return 0;
}

static void set_blob(CURL *curl, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};

    curl_easy_setopt(curl, opt, &blob);
}

/* The bearer token goes in every request: only https may carry it, unless
 * the operator said otherwise in so many words. */
static int check_scheme(const agent_kube_config_t *cfg)
{
    if (strncasecmp(cfg->server, "https://", 8) == 0)
        return 0;
    if (strncasecmp(cfg->server, "http://", 7) != 0) {
        kopt_log_error("Kubernetes server URL must start with https://",
                       KOPT_STR("server", KOPT_URL_REDACTED(cfg->server)));
        return -EINVAL;
    }
    if (!cfg->allow_insecure_http) {
        kopt_log_error("refusing plain http to the Kubernetes API: the bearer token would travel "
                       "in clear; use https, or --api-server-insecure-http to accept that",
                       KOPT_STR("server", KOPT_URL_REDACTED(cfg->server)));
        return -EINVAL;
    }
    kopt_log_warn("plain http to the Kubernetes API (--api-server-insecure-http): the bearer "
                  "token travels in clear",
                  KOPT_STR("server", KOPT_URL_REDACTED(cfg->server)));
    return 0;
}

int agent_kube_client_new(const agent_kube_config_t *cfg, agent_kube_client_t **out)
{
    agent_kube_client_t *c;
    int r;

    *out = NULL;
    if (!cfg || !cfg->server || !*cfg->server)
        return -EINVAL;
    r = check_scheme(cfg);
    if (r < 0)
        return r;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    r = agent_kube_config_copy(&c->cfg, cfg);
    if (r < 0) {
        free(c);
        return r;
    }
    if (!c->cfg.timeout_ms)
        c->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->cfg.max_body_bytes)
        c->cfg.max_body_bytes = DEFAULT_MAX_BODY;
    c->curl = curl_easy_init();
    if (!c->curl) {
        agent_kube_client_free(c);
        return -ENOMEM;
    }
    r = load_token(c);
    if (r < 0) {
        agent_kube_client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void agent_kube_client_free(agent_kube_client_t *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    wipe_free(c->token);
    agent_kube_config_clear(&c->cfg);
    free(c);
}

const char *agent_kube_client_server(const agent_kube_client_t *c)
{
    return c->cfg.server;
}

static void setup_tls(agent_kube_client_t *c)
{
    CURL *curl = c->curl;

    if (c->cfg.ca_pem)
        set_blob(curl, CURLOPT_CAINFO_BLOB, c->cfg.ca_pem);
    else if (c->cfg.ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, c->cfg.ca_file);
    if (c->cfg.cert_pem)
        set_blob(curl, CURLOPT_SSLCERT_BLOB, c->cfg.cert_pem);
    else if (c->cfg.cert_file)
        curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cfg.cert_file);
    if (c->cfg.key_pem)
        set_blob(curl, CURLOPT_SSLKEY_BLOB, c->cfg.key_pem);
    else if (c->cfg.key_file)
        curl_easy_setopt(curl, CURLOPT_SSLKEY, c->cfg.key_file);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, c->cfg.insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, c->cfg.insecure_skip_verify ? 0L : 2L);
}

/* One request; the HTTP status in *status (0 when none). */
static int do_get(agent_kube_client_t *c, const char *url, body_t *b, long *status)
{
    struct curl_slist *hdrs = NULL, *h;
    char *auth = NULL;
    CURLcode result;
    int r = 0;

    *status = 0;
    hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (hdrs && c->token && *c->token) {
        size_t n = strlen(c->token) + sizeof("Authorization: Bearer ");

        auth = malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: Bearer %s", c->token);
            h = curl_slist_append(hdrs, auth);
            hdrs = h ? h : hdrs;
            r = h ? 0 : -ENOMEM;
        } else {
            r = -ENOMEM;
        }
    }
    if (!hdrs || r < 0) {
        wipe_free(auth);
        curl_slist_free_all(hdrs);
        return -ENOMEM;
    }
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR,
                     c->cfg.allow_insecure_http ? "https,http" : "https");
    curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, "");
    setup_tls(c);
    result = curl_easy_perform(c->curl);
    /* The header list holds the token: wipe our copy; curl keeps none after
     * perform returns. */
    for (h = hdrs; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
    wipe_free(auth);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    switch (result) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_WRITE_ERROR:
        return b->too_big ? -EFBIG : -ENOMEM;
    default:
        return -EPROTO;
    }
}

static int status_to_err(long status)
{
    if (status >= 200 && status < 300)
        return 0;
    switch (status) {
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 410:
        return -ESTALE;
    default:
        return -EPROTO;
    }
}

int agent_kube_client_get(agent_kube_client_t *c, const char *path, char **body, size_t *len,
                          long *status)
{
    body_t b = {.max = c->cfg.max_body_bytes};
    size_t n = strlen(c->cfg.server) + strlen(path) + 1;
    char *url = malloc(n);
    long st = 0;
    int r, attempt;

    *body = NULL;
    *len = 0;
    if (!url)
        return -ENOMEM;
    snprintf(url, n, "%s%s", c->cfg.server, path);
    for (attempt = 0; attempt < 2; attempt++) {
        b.len = 0;
        r = do_get(c, url, &b, &st);
        if (r < 0 || st != 401 || attempt > 0 || !c->cfg.token_file)
            break;
        /* Projected tokens rotate (about hourly): re-read once, retry once. */
        if (load_token(c) < 0)
            break;
    }
    free(url);
    if (status)
        *status = st;
    if (r == 0)
        r = status_to_err(st);
    if (r < 0) {
        free(b.buf);
        return r;
    }
    if (!b.buf && !(b.buf = calloc(1, 1)))
        return -ENOMEM;
    *body = b.buf;
    *len = b.len;
    return 0;
}
