/* Tracing across every hop, for real: nats-server and clickhouse-server from
 * the harness, kopt-ingest, kopt-aggregator, kopt-advisor and kopt-agent
 * (proc source, plaintext: TLS is test_e2e's subject), each with
 * --otlp-endpoint at the harness's OTLP receiver.
 *
 *   test_trace SRCDIR INGEST AGGREGATOR ADVISOR AGENT
 *
 * one_batch_one_trace: a batch's trace is agent.push -> ingest.publish ->
 *   aggregator.insert, each span the parent of the next, from three
 *   services, and its trace id is the one derived from the batch identity.
 * api_call_trace: an HTTP API call with our traceparent gives the advisor's
 *   server span under our span, and the ClickHouse query span under it.
 * grpc_call_trace: the same over gRPC, traceparent in the call's metadata.
 * endpoint_away_drops_and_data_flows: with the receiver gone, rows still
 *   reach ClickHouse and the daemons count the spans they drop.
 * daemons_stop_cleanly: SIGTERM, exit 0 each, the endpoint still away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include <kopt/grpc_server.h>
#include <kopt/trace.h>

#include "e2e_system.h"
#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"

static const char *src_dir, *ingest_exe, *aggregator_exe, *advisor_exe, *agent_exe;

static e2e_system_t S;
static kopt_test_otlp_t *rx; /* the spans' receiver: every daemon's --otlp-endpoint */

static int system_up(void **state)
{
    char otlp[64];
    e2e_options_t o = {.src_dir = src_dir,
                       .ingest_exe = ingest_exe,
                       .aggregator_exe = aggregator_exe,
                       .advisor_exe = advisor_exe,
                       .agent_exe = agent_exe,
                       .name = "kopt-trace",
                       .no_workload = true,
                       .otlp = otlp};

    (void)state;
    assert_int_equal(kopt_test_otlp_start(&rx), 0);
    snprintf(otlp, sizeof(otlp), "%s", kopt_test_otlp_url(rx));
    return e2e_up(&S, &o);
}

static void tail_logs(void)
{
    e2e_tail_logs(&S, 10);
}

static int system_down(void **state)
{
    (void)state;
    e2e_down(&S);
    kopt_test_otlp_free(rx);
    rx = NULL;
    kopt_test_cleanup_all();
    return 0;
}

/* ---- reading the received spans ---------------------------------------------------- */

static const char *str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : "";
}

static const char *attr(const json_t *span, const char *key)
{
    size_t i;
    json_t *a;

    json_array_foreach(json_object_get(span, "attributes"), i, a)
    {
        if (strcmp(str(a, "key"), key) == 0)
            return str(json_object_get(a, "value"), "stringValue");
    }
    return "";
}

/* The first span named `name` in `trace` (any trace when NULL) whose parent
 * is `parent` (any when NULL). */
static json_t *find(json_t *spans, const char *name, const char *trace, const char *parent)
{
    size_t i;
    json_t *s;

    json_array_foreach(spans, i, s)
    {
        if (strcmp(str(s, "name"), name) == 0 &&
            (!trace || strcmp(str(s, "traceId"), trace) == 0) &&
            (!parent || strcmp(str(s, "parentSpanId"), parent) == 0))
            return s;
    }
    return NULL;
}

/* A batch whose three spans all arrived: agent.push (root), ingest.publish
 * under it, aggregator.insert under that. */
static int complete_batch(json_t *spans, json_t **push, json_t **pub, json_t **ins)
{
    size_t i;
    json_t *s;

    json_array_foreach(spans, i, s)
    {
        if (strcmp(str(s, "name"), "agent.push") != 0)
            continue;
        *push = s;
        *pub = find(spans, "ingest.publish", str(s, "traceId"), str(s, "spanId"));
        *ins =
            *pub ? find(spans, "aggregator.insert", str(s, "traceId"), str(*pub, "spanId")) : NULL;
        if (*ins)
            return 1;
    }
    return 0;
}

static void one_batch_one_trace(void **state)
{
    json_t *spans = NULL, *push = NULL, *pub = NULL, *ins = NULL;
    double t0 = kopt_test_now(), end = t0 + 90;
    kopt_trace_ctx_t derived;
    char hex[40];

    (void)state;
    while (kopt_test_now() < end) {
        json_decref(spans);
        spans = kopt_test_otlp_spans(rx);
        if (complete_batch(spans, &push, &pub, &ins))
            break;
        kopt_test_sleep_ms(500);
    }
    if (!ins) {
        char *dump = json_dumps(spans, JSON_COMPACT);

        fprintf(stderr, "spans received: %.4000s\n", dump ? dump : "?");
        free(dump);
        tail_logs();
    }
    assert_non_null(ins);
    fprintf(stderr, "a complete batch trace after %.1f s (%zu spans received in all)\n",
            kopt_test_now() - t0, json_array_size(spans));
    /* One trace, three services, parent links hop by hop. */
    assert_string_equal(str(push, "service"), "kopt-agent");
    assert_string_equal(str(pub, "service"), "kopt-ingest");
    assert_string_equal(str(ins, "service"), "kopt-aggregator");
    assert_null(json_object_get(push, "parentSpanId"));
    assert_string_equal(str(pub, "parentSpanId"), str(push, "spanId"));
    assert_string_equal(str(ins, "parentSpanId"), str(pub, "spanId"));
    assert_string_equal(str(pub, "traceId"), str(push, "traceId"));
    assert_string_equal(str(ins, "traceId"), str(push, "traceId"));
    /* The trace is the batch's: its id derives from agent_id/epoch/seq, and
     * every hop names the same batch. */
    kopt_trace_batch_ctx(attr(push, "kopt.agent_id"), strtoull(attr(push, "kopt.epoch"), NULL, 10),
                         strtoull(attr(push, "kopt.seq"), NULL, 10), &derived);
    kopt_trace_hex(derived.trace_id, KOPT_TRACE_ID_LEN, hex);
    assert_string_equal(str(push, "traceId"), hex);
    snprintf(hex, sizeof(hex), "%s/%s/%s", attr(push, "kopt.agent_id"), attr(push, "kopt.epoch"),
             attr(push, "kopt.seq"));
    assert_string_equal(attr(pub, "messaging.message.id"), hex);
    assert_string_equal(attr(ins, "messaging.message.id"), hex);
    /* Each hop starts no earlier than its parent. */
    assert_true(strtoull(str(pub, "startTimeUnixNano"), NULL, 10) + 5000000 >=
                strtoull(str(push, "startTimeUnixNano"), NULL, 10));
    assert_true(strtoull(str(ins, "startTimeUnixNano"), NULL, 10) >=
                strtoull(str(pub, "startTimeUnixNano"), NULL, 10));
    json_decref(spans);
}

static void api_call_trace(void **state)
{
    char url[256], tp[KOPT_TRACEPARENT_LEN + 1], trace[40], span[24], header[128], log[600];
    char *argv[] = {"curl", "-s",   "-o", "/dev/null", "-w", "HTTP %{http_code}\n",
                    "-H",   header, url,  NULL};
    kopt_trace_ctx_t caller;
    json_t *spans = NULL, *call = NULL, *query = NULL;
    double end = kopt_test_now() + 30;

    (void)state;
    assert_int_equal(kopt_trace_random_id(caller.trace_id, KOPT_TRACE_ID_LEN), 0);
    assert_int_equal(kopt_trace_random_id(caller.span_id, KOPT_SPAN_ID_LEN), 0);
    caller.flags = KOPT_TRACE_FLAG_SAMPLED;
    kopt_traceparent_format(&caller, tp);
    kopt_trace_hex(caller.trace_id, KOPT_TRACE_ID_LEN, trace);
    kopt_trace_hex(caller.span_id, KOPT_SPAN_ID_LEN, span);
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/v1/workloads/local/host/ProcessGroup/kopt-agent/usage", S.p_http);
    snprintf(header, sizeof(header), "traceparent: %s", tp);
    snprintf(log, sizeof(log), "%s/curl.log", S.dir);
    /* curl(1), as a caller would: the harness's kopt_test_http sends no
     * headers of ours. The answer's status does not matter here (usage
     * for a fresh workload may be empty); the query runs either way. */
    assert_int_equal(kopt_test_proc_run(argv, log, 30000), 0);
    kopt_test_log_tail(log, 1);
    while (kopt_test_now() < end) {
        json_decref(spans);
        spans = kopt_test_otlp_spans(rx);
        call = find(spans, "kopt.v1.Advisor/GetWorkloadUsage", trace, span);
        query = call ? find(spans, "clickhouse.query container_hourly", trace, str(call, "spanId"))
                     : NULL;
        if (query)
            break;
        kopt_test_sleep_ms(200);
    }
    if (!query)
        tail_logs();
    assert_non_null(call);
    assert_non_null(query);
    assert_string_equal(str(call, "service"), "kopt-advisor");
    assert_string_equal(str(query, "service"), "kopt-advisor");
    assert_int_equal(json_integer_value(json_object_get(call, "kind")), KOPT_SPAN_SERVER);
    assert_int_equal(json_integer_value(json_object_get(query, "kind")), KOPT_SPAN_CLIENT);
    assert_string_equal(attr(call, "kopt.transport"), "http");
    assert_string_equal(attr(query, "db.sql.table"), "container_hourly");
    /* The query ran inside the call. */
    assert_true(strtoull(str(query, "startTimeUnixNano"), NULL, 10) >=
                strtoull(str(call, "startTimeUnixNano"), NULL, 10));
    assert_true(strtoull(str(query, "endTimeUnixNano"), NULL, 10) <=
                strtoull(str(call, "endTimeUnixNano"), NULL, 10));
    json_decref(spans);
}

/* A unary gRPC call with an empty request and `traceparent` metadata, as
 * any gRPC client with OpenTelemetry would send it. The final status. */
/* An empty request of `method` with only a traceparent (no key: the
 * status is whatever the advisor answers, and the span must carry it). */
static grpc_status_code grpc_call_with_traceparent(const char *method, const char *tp)
{
    Kopt__V1__ListRecommendationsRequest req = KOPT__V1__LIST_RECOMMENDATIONS_REQUEST__INIT;
    const char *md[] = {"traceparent", tp, NULL};
    char target[64];
    grpc_channel *ch;
    int status;

    snprintf(target, sizeof(target), "127.0.0.1:%d", S.p_adv);
    ch = kopt_test_grpc_channel(target, NULL);
    assert_non_null(ch);
    assert_null(kopt_test_grpc_unary(ch, method, &req.base, NULL, md, &status, NULL, 0));
    grpc_channel_destroy(ch);
    return (grpc_status_code)status;
}

/* The same over gRPC: the metadata traceparent is the parent. */
static void grpc_call_trace(void **state)
{
    char tp[KOPT_TRACEPARENT_LEN + 1], trace[40], span[24];
    kopt_trace_ctx_t caller;
    json_t *spans = NULL, *call = NULL;
    double end = kopt_test_now() + 30;
    grpc_status_code code;

    (void)state;
    assert_int_equal(kopt_trace_random_id(caller.trace_id, KOPT_TRACE_ID_LEN), 0);
    assert_int_equal(kopt_trace_random_id(caller.span_id, KOPT_SPAN_ID_LEN), 0);
    caller.flags = KOPT_TRACE_FLAG_SAMPLED;
    kopt_traceparent_format(&caller, tp);
    kopt_trace_hex(caller.trace_id, KOPT_TRACE_ID_LEN, trace);
    kopt_trace_hex(caller.span_id, KOPT_SPAN_ID_LEN, span);
    code = grpc_call_with_traceparent("/kopt.v1.Advisor/ListRecommendations", tp);
    fprintf(stderr, "ListRecommendations over gRPC with traceparent %s: status %d\n", tp, code);
    while (kopt_test_now() < end && !call) {
        json_decref(spans);
        spans = kopt_test_otlp_spans(rx);
        call = find(spans, "kopt.v1.Advisor/ListRecommendations", trace, span);
        if (!call)
            kopt_test_sleep_ms(200);
    }
    assert_non_null(call);
    assert_string_equal(str(call, "service"), "kopt-advisor");
    assert_string_equal(attr(call, "kopt.transport"), "grpc");
    assert_string_equal(attr(call, "rpc.grpc.status_code"), kopt_grpc_status_name(code));
    json_decref(spans);
}

static unsigned long long rows_now(void)
{
    char *out = NULL;
    unsigned long long n = 0;

    if (kopt_test_clickhouse_query(S.ch, "SELECT count() FROM kopt.container_windows", &out) == 0)
        n = strtoull(out, NULL, 10);
    free(out);
    return n;
}

static double dropped(int port)
{
    char admin[64];

    snprintf(admin, sizeof(admin), "http://127.0.0.1:%d", port);
    return kopt_test_metric(admin, "kopt_trace_spans_dropped_total{reason=\"endpoint_error\"}");
}

static void endpoint_away_drops_and_data_flows(void **state)
{
    unsigned long long before, after = 0;
    double end, d_ingest = 0, d_agent = 0, d_agg = 0;

    (void)state;
    kopt_test_otlp_free(rx); /* the port now refuses connections */
    rx = NULL;
    before = rows_now();
    end = kopt_test_now() + 60;
    while (kopt_test_now() < end) {
        after = rows_now();
        d_ingest = dropped(S.p_ingest_admin);
        d_agent = dropped(S.p_agent_admin);
        d_agg = dropped(S.p_agg_admin);
        if (after > before && d_ingest > 0 && d_agent > 0 && d_agg > 0)
            break;
        kopt_test_sleep_ms(500);
    }
    fprintf(stderr,
            "endpoint away: rows %llu -> %llu; spans dropped (endpoint_error) by agent %.0f, "
            "ingest %.0f, aggregator %.0f\n",
            before, after, d_agent, d_ingest, d_agg);
    assert_true(after > before);
    assert_true(d_agent > 0);
    assert_true(d_ingest > 0);
    assert_true(d_agg > 0);
    /* The agent keeps up: its spool drains, it stays ready. */
    assert_int_equal(kopt_test_wait_http_ok(S.p_agent_admin, "/readyz", 30), 0);
}

/* SIGTERM: each daemon flushes (or drops) its spans and exits 0, within
 * its drain, with the endpoint away. */
static void daemons_stop_cleanly(void **state)
{
    kopt_test_proc_t *procs[] = {&S.proc[E2E_AGENT], &S.proc[E2E_ADVISOR], &S.proc[E2E_AGGREGATOR],
                                 &S.proc[E2E_INGEST]};
    static const char *names[] = {"agent", "advisor", "aggregator", "ingest"};

    (void)state;
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
        double t0 = kopt_test_now();
        int r = kopt_test_proc_stop(procs[i], 35000);

        fprintf(stderr, "%s stopped in %.2f s, status 0x%x\n", names[i], kopt_test_now() - t0,
                procs[i]->status);
        if (r != 0 || !WIFEXITED(procs[i]->status) || WEXITSTATUS(procs[i]->status) != 0)
            tail_logs();
        assert_int_equal(r, 0);
        assert_true(WIFEXITED(procs[i]->status));
        assert_int_equal(WEXITSTATUS(procs[i]->status), 0);
    }
}

int main(int argc, char **argv)
{
    int r;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_batch_one_trace),
        cmocka_unit_test(api_call_trace),
        cmocka_unit_test(grpc_call_trace),
        cmocka_unit_test(endpoint_away_drops_and_data_flows),
        cmocka_unit_test(daemons_stop_cleanly),
    };

    if (argc < 6) {
        fprintf(stderr, "usage: %s SRCDIR INGEST AGGREGATOR ADVISOR AGENT\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    ingest_exe = argv[2];
    aggregator_exe = argv[3];
    advisor_exe = argv[4];
    agent_exe = argv[5];
    cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    grpc_init();
    r = cmocka_run_group_tests_name("trace", tests, system_up, system_down);
    grpc_shutdown();
    return r;
}
