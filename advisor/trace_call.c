/* The advisor's spans: one server span per API call, named after the gRPC
 * method whichever transport carried it, a child of the caller's
 * traceparent when it sent a valid one. Loop thread. */
#include <string.h>

#include <kopt/trace.h>

#include "advisor.h"

void adv_trace_call_start(adv_reply_t *r, const adv_method_t *m, const char *traceparent,
                          const char *transport)
{
    kopt_trace_ctx_t parent;
    int has_parent;

    if (!kopt_trace_enabled())
        return;
    /* W3C: an invalid traceparent is ignored, and the call starts a trace. */
    has_parent =
        traceparent && kopt_traceparent_parse(traceparent, strlen(traceparent), &parent) == 0;
    /* The span name drops the leading '/' of the gRPC path, as OpenTelemetry's
     * rpc conventions write it: "kopt.v1.Advisor/ListRecommendations". */
    kopt_span_start(&r->span, m->grpc_path + 1, KOPT_SPAN_SERVER, has_parent ? &parent : NULL);
    kopt_span_attr(&r->span, "rpc.system", "grpc");
    kopt_span_attr(&r->span, "rpc.method", m->name);
    kopt_span_attr(&r->span, "kopt.transport", transport);
}

void adv_trace_call_end(adv_reply_t *r, grpc_status_code code, const char *message)
{
    if (!r->span.active)
        return;
    kopt_span_attr(&r->span, "rpc.grpc.status_code", kopt_grpc_status_name(code));
    kopt_span_end(&r->span, code != GRPC_STATUS_OK, message);
}
