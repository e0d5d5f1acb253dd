/* kopt.v1.Advisor: the method table shared by gRPC and the HTTP gateway, the
 * gRPC adapter (decode, API key, call, encode), RunAnalysis, page tokens and
 * the google.rpc code -> HTTP status mapping. Each method is written once
 * against adv_reply_t (api_list.c, api_usage.c) and answers both transports.
 * Everything here runs on the loop thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/names.h>
#include <kopt/util.h>

#include "advisor.h"

#define N_CODES 17 /* gRPC status codes 0..16 */

typedef struct {
    adv_api_t *api;
    const adv_method_t *m;
    size_t index;
} binding_t;

struct adv_api {
    adv_api_opts_t o;
    binding_t bind[8];
    kopt_metric_family_t *requests;
    kopt_metric_counter_t *count[8][N_CODES];
    int pending;
};

static void run_analysis(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);

const adv_method_t adv_methods[] = {
    {"ListRecommendations", "/kopt.v1.Advisor/ListRecommendations", "GET", "/v1/recommendations",
     false, &kopt__v1__list_recommendations_request__descriptor, adv_api_list_recommendations},
    {"GetRecommendation", "/kopt.v1.Advisor/GetRecommendation", "GET",
     "/v1/recommendations/{cluster}/{namespace}/{kind}/{name}", false,
     &kopt__v1__get_recommendation_request__descriptor, adv_api_get_recommendation},
    {"GetWorkloadUsage", "/kopt.v1.Advisor/GetWorkloadUsage", "GET",
     "/v1/workloads/{cluster}/{namespace}/{kind}/{name}/usage", false,
     &kopt__v1__get_workload_usage_request__descriptor, adv_api_get_workload_usage},
    {"GetClusterSummary", "/kopt.v1.Advisor/GetClusterSummary", "GET",
     "/v1/clusters/{cluster}/summary", false, &kopt__v1__get_cluster_summary_request__descriptor,
     adv_api_get_cluster_summary},
    {"ListClusters", "/kopt.v1.Advisor/ListClusters", "GET", "/v1/clusters", false,
     &kopt__v1__list_clusters_request__descriptor, adv_api_list_clusters},
    {"RunAnalysis", "/kopt.v1.Advisor/RunAnalysis", "POST", "/v1/analyses", true,
     &kopt__v1__run_analysis_request__descriptor, run_analysis},
};
const size_t adv_n_methods = sizeof(adv_methods) / sizeof(adv_methods[0]);

int adv_http_status(grpc_status_code code)
{
    static const int map[N_CODES] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                                     400, 409, 400, 501, 500, 503, 500, 401};

    return (int)code >= 0 && (int)code < N_CODES ? map[code] : 500;
}

/* ---- page tokens ------------------------------------------------------------ */

uint64_t adv_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (h == 0)
        h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* "<offset>.<hash>" in hex: opaque to clients, bound to the filters. */
void adv_page_token(uint64_t filter_hash, size_t offset, char *out, size_t len)
{
    snprintf(out, len, "%zx.%016" PRIx64, offset, filter_hash);
}

/* n lowercase hex digits, as adv_page_token writes them: no sign, no space,
 * no 0x, no upper case (strtoull took all four). -1 when s is anything else. */
static int hex_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 16)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9')
            v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

int adv_page_token_parse(const char *token, uint64_t filter_hash, size_t *offset)
{
    const char *dot;
    uint64_t off, h;

    *offset = 0;
    if (!token || !*token)
        return 0;
    dot = strchr(token, '.');
    if (!dot || hex_digits(token, (size_t)(dot - token), &off) < 0 || off > SIZE_MAX)
        return -EINVAL;
    /* One spelling per offset: "%zx" never writes a leading zero. */
    if (token[0] == '0' && dot - token > 1)
        return -EINVAL;
    if (strlen(dot + 1) != 16 || hex_digits(dot + 1, 16, &h) < 0 || h != filter_hash)
        return -EINVAL;
    *offset = (size_t)off;
    return 0;
}

/* ---- RunAnalysis -------------------------------------------------------------- */

typedef struct {
    adv_api_t *api;
    adv_reply_t *reply;
} run_call_t;

static void set_ts(Google__Protobuf__Timestamp *t, int64_t ns)
{
    google__protobuf__timestamp__init(t);
    t->seconds = ns / 1000000000LL;
    t->nanos = (int32_t)(ns % 1000000000LL);
}

static void run_done(void *data, const adv_run_result_t *res)
{
    run_call_t *rc = data;
    Kopt__V1__RunAnalysisResponse resp = KOPT__V1__RUN_ANALYSIS_RESPONSE__INIT;
    Google__Protobuf__Timestamp started, finished;

    adv_api_pending_add(rc->api, -1);
    if (res->status < 0) {
        int r = res->status;
        bool transient = r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
                         r == -ECONNRESET || r == -EIO || r == -EACCES || r == -EPROTO;

        /* res->message may hold ClickHouse's or libcurl's text (internal
         * addresses, table names): serve.c logs it with the analysis id;
         * the caller gets that id and no more. */
        char why[160];

        snprintf(why, sizeof(why), "%s (analysis %s); the advisor's log has the details",
                 transient ? "the analysis could not reach its database" : "the analysis failed",
                 res->analysis_id);
        rc->reply->fn(rc->reply, transient ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_INTERNAL, why,
                      NULL);
        free(rc);
        return;
    }
    set_ts(&started, res->started_ns);
    set_ts(&finished, res->finished_ns);
    resp.analysis_id = (char *)res->analysis_id;
    resp.workloads_analyzed = res->analyzed;
    resp.recommendations_written = res->written;
    resp.idle_workloads = res->idle;
    resp.workloads_skipped = res->skipped;
    resp.started_at = &started;
    resp.finished_at = &finished;
    rc->reply->fn(rc->reply, GRPC_STATUS_OK, NULL, &resp.base);
    free(rc);
}

static void run_analysis(adv_api_t *api, const ProtobufCMessage *msg, adv_reply_t *reply)
{
    const Kopt__V1__RunAnalysisRequest *req = (const Kopt__V1__RunAnalysisRequest *)msg;
    adv_run_request_t rr = {0};
    run_call_t *rc;
    int r;

    if (*req->cluster && kopt_name_check(req->cluster, KOPT_NAME_SUBDOMAIN) < 0) {
        reply->fn(reply, GRPC_STATUS_INVALID_ARGUMENT, "cluster is not a valid name", NULL);
        return;
    }
    if (*req->namespace_ && (!*req->cluster || kopt_name_check(req->namespace_, KOPT_NAME_LABEL))) {
        reply->fn(reply, GRPC_STATUS_INVALID_ARGUMENT,
                  "namespace must be a valid name, and needs cluster", NULL);
        return;
    }
    if (req->history && (req->history->seconds < 3600 || req->history->seconds > 400 * 86400)) {
        reply->fn(reply, GRPC_STATUS_INVALID_ARGUMENT,
                  "history must be between 1 hour and 400 days", NULL);
        return;
    }
    snprintf(rr.cluster, sizeof(rr.cluster), "%s", req->cluster);
    snprintf(rr.namespace_, sizeof(rr.namespace_), "%s", req->namespace_);
    rr.lookback_s = req->history ? req->history->seconds : 0;
    rr.dry_run = req->dry_run;
    rc = calloc(1, sizeof(*rc));
    if (!rc) {
        reply->fn(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    rc->api = api;
    rc->reply = reply;
    r = api->o.run(api->o.run_data, &rr, run_done, rc);
    if (r < 0) {
        free(rc);
        reply->fn(reply, r == -EBUSY ? GRPC_STATUS_ABORTED : GRPC_STATUS_UNAVAILABLE,
                  r == -EBUSY ? "an analysis is already running; try again when it is done"
                              : "the advisor is shutting down",
                  NULL);
        return;
    }
    adv_api_pending_add(api, 1);
}

/* ---- the gRPC adapter ----------------------------------------------------------- */

typedef struct {
    adv_reply_t reply;
    kopt_grpc_call_t *call;
    const binding_t *b;
} grpc_reply_t;

static void grpc_reply(adv_reply_t *r, grpc_status_code code, const char *message,
                       const ProtobufCMessage *resp)
{
    grpc_reply_t *g = kopt_container_of(r, grpc_reply_t, reply);
    uint8_t *buf = NULL;
    size_t len = 0;

    if (code == GRPC_STATUS_OK && resp) {
        len = protobuf_c_message_get_packed_size(resp);
        buf = malloc(len ? len : 1);
        if (buf) {
            protobuf_c_message_pack(resp, buf);
        } else {
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            message = "out of memory";
        }
    }
    kopt_grpc_call_reply(g->call, code, message, buf, code == GRPC_STATUS_OK ? len : 0);
    adv_api_count(g->b->api, g->b->m, code);
    adv_trace_call_end(r, code, message);
    free(buf);
    free(g);
}

static void grpc_page(adv_reply_t *r, const adv_page_t *page)
{
    grpc_reply_t *g = kopt_container_of(r, grpc_reply_t, reply);
    grpc_status_code code = GRPC_STATUS_OK;
    uint8_t *buf = NULL;
    size_t len = 0;

    if (adv_page_pb(page, &buf, &len) < 0)
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    kopt_grpc_call_reply(g->call, code, code ? "out of memory" : NULL, buf, len);
    adv_api_count(g->b->api, g->b->m, code);
    adv_trace_call_end(r, code, code ? "out of memory" : NULL);
    free(buf);
    free(g);
}

static void on_unary(kopt_grpc_call_t *call, const uint8_t *req, size_t len)
{
    const binding_t *b = kopt_grpc_call_user(call);
    char authz[16 * 1024], peer[512]; /* room for --oidc-max-token-size's 15 KiB at most */
    const char *why = NULL;
    ProtobufCMessage *msg;
    grpc_status_code code;
    grpc_reply_t *g;
    int ra = kopt_grpc_call_metadata(call, "authorization", authz, sizeof(authz));
    int rp = kopt_grpc_call_peer_uri(call, peer, sizeof(peer));

    code =
        adv_auth_check(b->api->o.auth, ra == 0 ? authz : (ra == -E2BIG ? adv_auth_oversized : NULL),
                       rp == 0 ? peer : NULL, b->m->name, &why);
    if (code != GRPC_STATUS_OK) {
        kopt_grpc_call_reply(call, code, why, NULL, 0);
        adv_api_count(b->api, b->m, code);
        return;
    }
    msg = protobuf_c_message_unpack(b->m->request, NULL, len, req);
    g = calloc(1, sizeof(*g));
    if (!msg || !g) {
        code = msg ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT;
        kopt_grpc_call_reply(call, code, msg ? "out of memory" : "cannot decode the request", NULL,
                             0);
        adv_api_count(b->api, b->m, code);
        if (msg)
            protobuf_c_message_free_unpacked(msg, NULL);
        free(g);
        return;
    }
    g->reply.fn = grpc_reply;
    g->reply.page = grpc_page;
    g->call = call;
    g->b = b;
    if (kopt_trace_enabled()) {
        char tp[128];
        int rt = kopt_grpc_call_metadata(call, "traceparent", tp, sizeof(tp));

        adv_trace_call_start(&g->reply, b->m, rt == 0 ? tp : NULL, "grpc");
    }
    b->m->fn(b->api, msg, &g->reply);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- the API object ---------------------------------------------------------------- */

int adv_api_new(const adv_api_opts_t *o, adv_api_t **out)
{
    adv_api_t *api = calloc(1, sizeof(*api));
    int r;

    if (!api)
        return -ENOMEM;
    api->o = *o;
    for (size_t i = 0; i < adv_n_methods; i++)
        api->bind[i] = (binding_t){api, &adv_methods[i], i};
    r = kopt_metrics_counter(o->metrics, "kopt_advisor_requests_total",
                             "Advisor API calls (gRPC and HTTP), by method and gRPC status",
                             "method,code", &api->requests);
    if (r < 0) {
        free(api);
        return r;
    }
    *out = api;
    return 0;
}

int adv_api_register_grpc(adv_api_t *api, kopt_grpc_server_t *s)
{
    for (size_t i = 0; i < adv_n_methods; i++) {
        int r = kopt_grpc_server_add_unary(s, adv_methods[i].grpc_path, on_unary, &api->bind[i]);

        if (r < 0)
            return r;
    }
    return 0;
}

void adv_api_count(adv_api_t *api, const adv_method_t *m, grpc_status_code code)
{
    size_t i = (size_t)(m - adv_methods);
    int c = (int)code >= 0 && (int)code < N_CODES ? (int)code : (int)GRPC_STATUS_UNKNOWN;

    if (i >= adv_n_methods)
        return;
    if (!api->count[i][c])
        api->count[i][c] = kopt_metric_counter_with(api->requests, m->name,
                                                    kopt_grpc_status_name((grpc_status_code)c));
    kopt_metric_counter_inc(api->count[i][c]);
}

const adv_api_opts_t *adv_api_opts(const adv_api_t *api)
{
    return &api->o;
}

void adv_api_pending_add(adv_api_t *api, int d)
{
    api->pending += d;
}

int adv_api_pending(const adv_api_t *api)
{
    return api->pending;
}

void adv_api_free(adv_api_t *api)
{
    free(api);
}
