/* kopt-trace-bench: what tracing adds to ingest's publish path per batch,
 * on the loop thread (the code of ingest/push_stream.c: the agent's context
 * from the batch identity, an ingest.publish span with two attributes, its
 * traceparent for the JetStream header, the current span set around the
 * PubAck, the span ended and queued). Baseline: --otlp-endpoint unset,
 * where ingest tests kopt_trace_enabled() and does nothing else. With an
 * endpoint (the harness's OTLP receiver on a free port) the exporter thread
 * posts the queue meanwhile; the first "on" case fits the queue (32,768
 * spans, nothing dropped), the second runs for --seconds and shows the
 * cost once the queue is full and spans are dropped and counted.
 * docs/performance.md, "Tracing". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/trace.h>

#include "harness.h"
#include "microbench.h"

#define FIT 32768

static const char usage[] = "Usage: kopt-trace-bench [--quick] [--seconds S]\n"
                            "Times tracing's cost per ingest batch, off and on.\n";

static int batch_span(void *arg, uint64_t i)
{
    kopt_span_t span;
    kopt_trace_ctx_t agent;
    char traceparent[KOPT_TRACEPARENT_LEN + 1];
    const kopt_trace_ctx_t *prev;

    (void)arg;
    if (!kopt_trace_enabled())
        return 0;
    kopt_trace_batch_ctx("node-17.cluster-1", 1796601600, i, &agent);
    kopt_span_start(&span, "ingest.publish", KOPT_SPAN_PRODUCER, &agent);
    kopt_span_attr(&span, "messaging.destination.name", "kopt.metrics.cluster-1.node-17");
    kopt_span_attr(&span, "messaging.message.id", "node-17.cluster-1:1796601600:42");
    kopt_span_traceparent(&span, traceparent);
    prev = kopt_trace_set_current(span.active ? &span.ctx : NULL);
    kopt_trace_set_current(prev);
    kopt_span_end(&span, 0, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    kopt_test_otlp_t *otlp = NULL;
    kopt_trace_opts_t o = {.service = "kopt-trace-bench", .queue_max = FIT};
    mb_result_t out[3];
    size_t posts = 0, bad = 0;
    double seconds;
    int quick;

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    /* Off first: setup is process-wide and once. */
    if (mb_run("--otlp-endpoint unset (baseline)", batch_span, NULL, 1000, seconds, &out[0]) < 0)
        return 1;
    if (kopt_test_otlp_start(&otlp) < 0) {
        fprintf(stderr, "kopt-trace-bench: the OTLP receiver did not start\n");
        return 1;
    }
    o.endpoint = kopt_test_otlp_url(otlp);
    if (kopt_trace_setup(&o, NULL) < 0 || !kopt_trace_enabled()) {
        fprintf(stderr, "kopt-trace-bench: kopt_trace_setup failed\n");
        kopt_test_otlp_free(otlp);
        return 1;
    }
    /* One round of FIT spans (quick: 1,000), however long it takes. */
    if (mb_run("endpoint set, queue has room", batch_span, NULL, quick ? 1000 : FIT, 1e-9,
               &out[1]) < 0 ||
        mb_run("endpoint set, for --seconds", batch_span, NULL, 1000, seconds, &out[2]) < 0) {
        kopt_trace_shutdown();
        kopt_test_otlp_free(otlp);
        return 1;
    }
    kopt_trace_shutdown();
    kopt_test_otlp_counts(otlp, &posts, &bad);
    printf("spans ended %llu: exported %llu, dropped queue_full %llu, endpoint_error %llu; "
           "receiver: %zu POSTs, %zu bad\n",
           (unsigned long long)out[1].calls + (unsigned long long)out[2].calls,
           (unsigned long long)kopt_trace_exported(),
           (unsigned long long)kopt_trace_dropped("queue_full"),
           (unsigned long long)kopt_trace_dropped("endpoint_error"), posts, bad);
    kopt_test_otlp_free(otlp);
    mb_print("kopt-trace-bench: tracing per ingest batch (caller's thread)", out, 3, 0);
    return bad || kopt_trace_exported() == 0 ? 1 : 0;
}
