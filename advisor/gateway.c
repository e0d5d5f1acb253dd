/* The HTTP/JSON gateway: the routes of advisor.proto's google.api.http
 * annotations (adv_methods), served by the same method implementations as
 * gRPC. Path and query parameters go into the request through api_query.c
 * (a singular one given twice never "last one wins"), a body through
 * kopt_pbjson_decode, the response out through kopt_pbjson_encode (a list
 * page as the snapshot's cached JSON, adv_page_json: the same bytes);
 * errors are {"code": <gRPC code>, "message": "..."} with the google.rpc
 * HTTP status. Same API keys. The web
 * page's files are served by web.c. Loop thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <kopt/log.h>
#include <kopt/pbjson.h>
#include <kopt/util.h>

#include "advisor.h"
#include "api_query.h"

#define MAX_SEGMENTS 16

struct adv_gateway {
    kopt_http_server_t *srv;
    adv_api_t *api;
    void (*done)(void *data);
    void *done_data;
};

typedef struct {
    adv_reply_t reply;
    kopt_http_response_t *res;
    adv_api_t *api;
    const adv_method_t *m;
} http_reply_t;

/* {"code":<gRPC code>,"message":...} with the given HTTP status. */
static void send_error_status(kopt_http_response_t *res, int status, grpc_status_code code,
                              const char *message)
{
    json_t *j = json_pack("{s:i,s:s}", "code", (int)code, "message", message ? message : "");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (code == GRPC_STATUS_UNAUTHENTICATED)
        kopt_http_response_header(res, "WWW-Authenticate", "Bearer");
    if (body)
        kopt_http_response_send(res, status, "application/json", body, strlen(body));
    else
        kopt_http_response_send(res, 500, "application/json", "{\"code\":13}", 11);
    free(body);
    json_decref(j);
}

static void send_error(kopt_http_response_t *res, grpc_status_code code, const char *message)
{
    send_error_status(res, adv_http_status(code), code, message);
}

/* Adds a verb to a comma-separated Allow list, once; GET brings HEAD. */
static void allow_add(char *allow, size_t len, const char *verb)
{
    size_t o = strlen(allow);

    if (strstr(allow, verb))
        return;
    snprintf(allow + o, len - o, "%s%s%s", o ? ", " : "", verb,
             strcmp(verb, "GET") == 0 ? ", HEAD" : "");
}

static void http_reply(adv_reply_t *r, grpc_status_code code, const char *message,
                       const ProtobufCMessage *resp)
{
    http_reply_t *h = kopt_container_of(r, http_reply_t, reply);
    char *json = NULL;
    size_t len = 0;

    if (code == GRPC_STATUS_OK && resp && kopt_pbjson_encode(resp, &json, &len) < 0) {
        code = GRPC_STATUS_INTERNAL;
        message = "the response cannot be written as JSON";
    }
    if (code == GRPC_STATUS_OK) {
        kopt_http_response_header(h->res, "Cache-Control", "no-store");
        kopt_http_response_send(h->res, 200, "application/json", json, len);
    } else {
        send_error(h->res, code, message);
    }
    adv_api_count(h->api, h->m, code);
    adv_trace_call_end(r, code, message);
    free(json);
    free(h);
}

static void http_page(adv_reply_t *r, const adv_page_t *page)
{
    http_reply_t *h = kopt_container_of(r, http_reply_t, reply);
    grpc_status_code code = GRPC_STATUS_OK;
    char *json = NULL;
    size_t len = 0;

    if (adv_page_json(page, &json, &len) < 0) {
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        send_error(h->res, code, "out of memory");
        free(json);
    } else {
        kopt_http_response_header(h->res, "Cache-Control", "no-store");
        kopt_http_response_send_owned(h->res, 200, "application/json", json, len);
    }
    adv_api_count(h->api, h->m, code);
    adv_trace_call_end(r, code, code ? "out of memory" : NULL);
    free(h);
}

/* Splits "/a/b/c" into segments (in place). -1 when there are too many. */
static int segments(char *path, char **seg)
{
    int n = 0;

    while (*path == '/')
        path++;
    while (*path) {
        if (n == MAX_SEGMENTS)
            return -1;
        seg[n++] = path;
        path = strchr(path, '/');
        if (!path)
            break;
        *path++ = '\0';
    }
    return n;
}

/* Whether `path` (split) matches `pattern`; captures name/value pairs. */
static bool match(const char *pattern, char **seg, int n, char **names, char **values, int *np,
                  char *pbuf, size_t pbuf_len)
{
    char *ps[MAX_SEGMENTS];
    int pn, k = 0;

    snprintf(pbuf, pbuf_len, "%s", pattern);
    pn = segments(pbuf, ps);
    if (pn != n)
        return false;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(ps[i]);

        if (ps[i][0] == '{' && l > 2 && ps[i][l - 1] == '}') {
            ps[i][l - 1] = '\0';
            names[k] = ps[i] + 1;
            values[k++] = seg[i];
        } else if (strcmp(ps[i], seg[i]) != 0) {
            return false;
        }
    }
    *np = k;
    return true;
}

/* The request message of a matched route; NULL with an error sent. */
static ProtobufCMessage *make_request(adv_api_t *api, kopt_http_response_t *res,
                                      const adv_method_t *m, char **names, char **values, int np,
                                      char *query)
{
    const kopt_http_request_t *req = kopt_http_response_request(res);
    ProtobufCMessage *msg = NULL;
    char err[512] = "";
    size_t blen = 0;
    const char *body = kopt_http_request_body(req, &blen);
    int r;

    if (m->body && blen > 0)
        r = kopt_pbjson_decode(m->request, body, blen, &msg, err, sizeof(err));
    else
        r = kopt_pbjson_decode(m->request, "{}", 2, &msg, err, sizeof(err));
    for (int i = 0; r == 0 && i < np; i++) {
        if (adv_query_unescape(values[i], false) < 0) {
            snprintf(err, sizeof(err), "bad %%-escape in the path");
            r = -EINVAL;
        } else {
            r = adv_query_set(msg, names[i], values[i], err, sizeof(err));
        }
    }
    if (r == 0 && !m->body && *query)
        r = adv_query_params(msg, query, names, np, err, sizeof(err));
    if (r < 0) {
        if (msg)
            protobuf_c_message_free_unpacked(msg, NULL);
        send_error(res,
                   r == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
                   *err ? err : "bad request");
        adv_api_count(api, m, GRPC_STATUS_INVALID_ARGUMENT);
        return NULL;
    }
    return msg;
}

static void on_api(kopt_http_response_t *res, void *data)
{
    adv_gateway_t *g = data;
    const kopt_http_request_t *req = kopt_http_response_request(res);
    const char *method = kopt_http_request_method(req), *why = NULL;
    char *path = strdup(kopt_http_request_path(req)), *query = strdup(kopt_http_request_query(req));
    char *seg[MAX_SEGMENTS], *names[MAX_SEGMENTS], *values[MAX_SEGMENTS], pbuf[256];
    char allow[64] = "";
    const adv_method_t *m = NULL;
    bool path_known = false;
    grpc_status_code code;
    ProtobufCMessage *msg;
    http_reply_t *h;
    int n, np = 0;

    kopt_http_response_header(res, "X-Content-Type-Options", "nosniff");
    if (!path || !query) {
        send_error(res, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    n = segments(path, seg);
    for (size_t i = 0; n >= 0 && i < adv_n_methods && !m; i++) {
        if (!match(adv_methods[i].pattern, seg, n, names, values, &np, pbuf, sizeof(pbuf)))
            continue;
        path_known = true;
        if (strcmp(method, adv_methods[i].verb) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(adv_methods[i].verb, "GET") == 0))
            m = &adv_methods[i];
        else
            allow_add(allow, sizeof(allow), adv_methods[i].verb);
    }
    if (!m && path_known) {
        /* RFC 9110 15.5.6: the path exists, the method does not; say which do. */
        kopt_http_response_header(res, "Allow", allow);
        send_error_status(res, 405, GRPC_STATUS_UNIMPLEMENTED, "method not allowed on this path");
        goto out;
    }
    if (!m) {
        send_error(res, GRPC_STATUS_NOT_FOUND, "no such route");
        goto out;
    }
    /* pbuf holds the last pattern tried, which is m's: names point into it. */
    code =
        adv_auth_check(adv_api_opts(g->api)->auth, kopt_http_request_header(req, "authorization"),
                       kopt_http_response_tls_peer(res), m->name, &why);
    if (code != GRPC_STATUS_OK) {
        send_error(res, code, why);
        adv_api_count(g->api, m, code);
        goto out;
    }
    msg = make_request(g->api, res, m, names, values, np, query);
    if (!msg)
        goto out;
    h = calloc(1, sizeof(*h));
    if (!h) {
        protobuf_c_message_free_unpacked(msg, NULL);
        send_error(res, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    h->reply.fn = http_reply;
    h->reply.page = http_page;
    h->res = res;
    h->api = g->api;
    h->m = m;
    adv_trace_call_start(&h->reply, m, kopt_http_request_header(req, "traceparent"), "http");
    m->fn(g->api, msg, &h->reply);
    protobuf_c_message_free_unpacked(msg, NULL);
out:
    free(path);
    free(query);
}

int adv_gateway_new(uv_loop_t *loop, adv_api_t *api, kopt_metrics_t *metrics, const char *listen,
                    kopt_http_tls_t *tls, int max_per_peer, adv_gateway_t **out, int *port)
{
    kopt_http_server_options_t o;
    adv_gateway_t *g = calloc(1, sizeof(*g));
    int r;

    if (!g)
        return -ENOMEM;
    g->api = api;
    kopt_http_server_options_default(&o);
    o.name = "gateway";
    o.tls = tls;
    o.max_connections_per_peer = max_per_peer;
    o.limits.max_body_bytes = 64 * 1024;
    r = kopt_http_server_new(loop, &o, metrics, &g->srv);
    if (r == 0)
        r = kopt_http_server_route(g->srv, NULL, "/v1/", 1, "api", on_api, g);
    if (r == 0)
        r = adv_web_routes(g->srv);
    if (r == 0)
        r = kopt_http_server_listen(g->srv, listen);
    if (r < 0) {
        kopt_http_server_free(g->srv);
        free(g);
        return r;
    }
    *port = kopt_http_server_port(g->srv);
    *out = g;
    return 0;
}

static void on_closed(void *data)
{
    adv_gateway_t *g = data;
    void (*done)(void *) = g->done;
    void *done_data = g->done_data;

    kopt_http_server_free(g->srv);
    free(g);
    if (done)
        done(done_data);
}

void adv_gateway_close(adv_gateway_t *g, void (*done)(void *data), void *data)
{
    g->done = done;
    g->done_data = data;
    kopt_http_server_close(g->srv, on_closed, g);
}
