/* Replicas of the write path (issue 18): four real kopt-agents measuring a
 * busy child process, each given the same two real kopt-ingest replicas
 * (--ingest A,B), and two real kopt-aggregators on the one durable consumer,
 * against a real nats-server and clickhouse-server. The agents spread over
 * both ingest replicas (each starts at the address its id hashes to); then
 * one ingest and one aggregator are killed with -9 mid-way. Every batch
 * each agent made is acked and in KOPT_METRICS once, every window is in
 * ClickHouse exactly once, and both aggregators consumed some. The splits
 * are printed.
 *
 * usage: test_replicas_pipeline SRCDIR KOPT_AGENT KOPT_INGEST KOPT_AGGREGATOR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopt/clickhouse.h>

#include "agent_env.h"
#include "harness.h"
#include "kopt/v1/metrics.pb-c.h"
#include "schema.h"

#define N_AGENTS 4
#define AGENT_ID_PREFIX "dev-agent." /* agent-local.pem's id, then the node */

static const char *src_dir, *agent_exe, *ingest_exe, *agg_exe;
static char *certs_dir;

static itest_child_t *marked_spinner(void)
{
    itest_child_t *c = itest_child_new("kopt-itest-marked", "marked.log");
    char marker[64];
    char *argv[] = {"/bin/sh", "-c", "while :; do :; done", marker, NULL};

    snprintf(marker, sizeof(marker), "kopt-itest-spin-%d", (int)getpid());
    itest_child_spawn(c, argv);
    return c;
}

/* Agent i on node-<i>: its own group name for the spinner, so the agents'
 * windows have distinct keys in ClickHouse. */
static itest_child_t *agent_start(int i, const char *targets)
{
    char node[32], rule[128], pid[32];

    snprintf(node, sizeof(node), "node-%d", i + 1);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    /* The bracket keeps the rule from matching its own text in the agent's
     * command line. */
    snprintf(rule, sizeof(rule), "spin%d=kopt-itest-spin-[%c]%s", i + 1, pid[0], pid + 1);
    return itest_agent_proc_start(agent_exe, certs_dir, targets, node, rule, "2s");
}

static itest_child_t *aggregator_start(const kopt_test_nats_t *nats,
                                       const kopt_test_clickhouse_t *ch)
{
    itest_child_t *c = itest_child_new("kopt-itest-agg", "aggregator.log");
    char admin[64];
    char *argv[] = {(char *)agg_exe,
                    "--nats-url",
                    (char *)nats->url,
                    "--clickhouse-url",
                    (char *)ch->url,
                    "--admin-listen",
                    admin,
                    "--log-format",
                    "text",
                    "--ack-wait",
                    "4s",
                    "--fetch-batch",
                    "16",
                    "--fetch-timeout",
                    "200ms",
                    "--insert-max-delay",
                    "200ms",
                    "--workers",
                    "1",
                    NULL};

    itest_child_ports(c);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    itest_child_spawn(c, argv);
    itest_wait_http(c, "/readyz", "kopt-aggregator");
    return c;
}

static double metric0(const itest_child_t *c, const char *sample)
{
    double v = itest_metric(c, sample);

    return v < 0 ? 0 : v;
}

static uint64_t ch_u64(kopt_test_clickhouse_t *ch, const char *sql)
{
    char *out = NULL;
    uint64_t v;

    if (kopt_test_clickhouse_query(ch, sql, &out) != 0)
        fail_msg("query failed: %s", out);
    v = strtoull(out ? out : "0", NULL, 10);
    free(out);
    return v;
}

/* Windows in the stream, by distinct key and in all. */
static void stream_windows(const itest_stream_t *s, size_t *distinct, size_t *all)
{
    char(*keys)[200] = NULL;
    size_t n = 0, cap = 0;

    *all = 0;
    for (size_t i = 0; i < s->n; i++) {
        Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, s->m[i].len, s->m[i].data);

        assert_non_null(b);
        for (size_t j = 0; j < b->n_windows; j++) {
            const Kopt__V1__ContainerWindow *w = b->windows[j];
            char key[200];
            bool seen = false;

            snprintf(key, sizeof(key), "%s/%s/%" PRId64, w->pod, w->container,
                     (int64_t)w->window_start->seconds);
            for (size_t k = 0; k < n && !seen; k++)
                seen = strcmp(keys[k], key) == 0;
            if (!seen) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 256;
                    keys = realloc(keys, cap * sizeof(*keys));
                    assert_non_null(keys);
                }
                snprintf(keys[n++], sizeof(keys[0]), "%s", key);
            }
            (*all)++;
        }
        kopt__v1__metric_batch__free_unpacked(b, NULL);
    }
    free(keys);
    *distinct = n;
}

/* Every batch agent `a` made is acked and in the stream once. */
static bool agent_settled(const itest_child_t *a, const itest_stream_t *s, int i, size_t *in_stream)
{
    char prefix[64];
    double made = metric0(a, "kopt_agent_batches_total");
    size_t n = 0;

    snprintf(prefix, sizeof(prefix), AGENT_ID_PREFIX "node-%d/", i + 1);
    for (size_t k = 0; k < s->n; k++)
        n += strncmp(s->m[k].id, prefix, strlen(prefix)) == 0;
    *in_stream = n;
    return made > 0 && metric0(a, "kopt_agent_acked_batches_total") == made && (double)n == made;
}

static void spread_failover_and_exactly_once(void **state)
{
    kopt_test_nats_t *nats = itest_nats_or_skip();
    kopt_test_clickhouse_t *ch = NULL;
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *cc = NULL;
    kopt_ch_error_t err = {0};
    itest_child_t *ing[2], *agg[2], *agent[N_AGENTS], *spin;
    char targets[160];
    double before[2], after[2], consumed_before[2], consumed, t0;
    itest_stream_t s;
    size_t distinct = 0, all = 0, all_batches, in_stream[N_AGENTS];
    bool settled = false;

    (void)state;
    assert_int_equal(kopt_test_clickhouse_start(&ch), 0);
    o.url = ch->url;
    assert_int_equal(kopt_ch_client_new(&o, &cc, &err), 0);
    assert_int_equal(agg_schema_migrate(cc, NULL, NULL, &err), 0);
    kopt_ch_client_free(cc);
    spin = marked_spinner();
    for (int i = 0; i < 2; i++)
        ing[i] = itest_ingest_start(ingest_exe, certs_dir, nats);
    for (int i = 0; i < 2; i++)
        agg[i] = aggregator_start(nats, ch);
    snprintf(targets, sizeof(targets), "%s,%s", ing[0]->target, ing[1]->target);
    for (int i = 0; i < N_AGENTS; i++)
        agent[i] = agent_start(i, targets);

    /* Spread: both ingest replicas take batches. */
    t0 = kopt_test_now();
    do {
        usleep(500 * 1000);
        for (int i = 0; i < 2; i++)
            before[i] = metric0(ing[i], "kopt_ingest_batches_total{result=\"stored\"}");
        for (int i = 0; i < 2; i++)
            consumed_before[i] = metric0(agg[i], "kopt_aggregator_consumed_total");
    } while ((before[0] < 4 || before[1] < 4 || consumed_before[0] < 1 || consumed_before[1] < 1) &&
             kopt_test_now() - t0 < 30);
    fprintf(stderr, "spread: ingest A took %.0f batches, B %.0f (from %d agents)\n", before[0],
            before[1], N_AGENTS);
    fprintf(stderr, "so far aggregator A consumed %.0f batches, B %.0f\n", consumed_before[0],
            consumed_before[1]);
    assert_true(before[0] > 0 && before[1] > 0);
    assert_true(consumed_before[0] > 0 && consumed_before[1] > 0);

    /* Mid-way: kill -9 ingest A and aggregator A. */
    assert_int_equal(kopt_test_proc_kill9(&ing[0]->proc), 0);
    assert_int_equal(kopt_test_proc_kill9(&agg[0]->proc), 0);
    fprintf(stderr, "killed ingest A and aggregator A\n");
    sleep(8);
    for (int i = 0; i < 2; i++)
        after[i] = metric0(ing[i], "kopt_ingest_batches_total{result=\"stored\"}");
    fprintf(stderr, "after the kill ingest B took %.0f more batches\n", after[1] - before[1]);
    assert_true(after[1] > before[1]);

    /* Every batch made is acked and in the stream once (ids are unique:
     * JetStream de-duplicates a resend by Nats-Msg-Id). */
    t0 = kopt_test_now();
    while (!settled && kopt_test_now() - t0 < 30) {
        settled = true;
        assert_int_equal(itest_stream_read(nats, &s), 0);
        for (int i = 0; i < N_AGENTS && settled; i++)
            settled = agent_settled(agent[i], &s, i, &in_stream[i]);
        if (!settled) {
            itest_stream_free(&s);
            usleep(300 * 1000);
        }
    }
    assert_true(settled);
    for (int i = 0; i < N_AGENTS; i++) {
        itest_stop_clean(agent[i], "kopt-agent");
        fprintf(stderr, "agent node-%d: %zu batches, all acked, each in KOPT_METRICS once\n", i + 1,
                in_stream[i]);
    }
    itest_stream_free(&s);
    assert_int_equal(itest_stream_read(nats, &s), 0);
    for (size_t i = 0; i < s.n; i++)
        for (size_t k = i + 1; k < s.n; k++)
            assert_string_not_equal(s.m[i].id, s.m[k].id);
    all_batches = s.n;
    stream_windows(&s, &distinct, &all);
    itest_stream_free(&s);

    /* Every window in ClickHouse exactly once, through aggregator B. */
    t0 = kopt_test_now();
    while (ch_u64(ch, "SELECT count() FROM kopt.container_windows FINAL") < distinct &&
           kopt_test_now() - t0 < 60)
        usleep(300 * 1000);
    fprintf(
        stderr,
        "%zu windows in the stream (%zu distinct); ClickHouse holds %" PRIu64 " (FINAL), %" PRIu64
        " distinct keys\n",
        all, distinct, ch_u64(ch, "SELECT count() FROM kopt.container_windows FINAL"),
        ch_u64(ch, "SELECT uniqExact(pod, container, window_start) FROM kopt.container_windows"));
    assert_int_equal(ch_u64(ch, "SELECT count() FROM kopt.container_windows FINAL"), distinct);
    assert_int_equal(
        ch_u64(ch, "SELECT uniqExact(pod, container, window_start) FROM kopt.container_windows"),
        distinct);
    consumed = metric0(agg[1], "kopt_aggregator_consumed_total");
    fprintf(
        stderr,
        "split: aggregator A had consumed %.0f batches at the last look before its kill -9, B %.0f "
        "in all (%zu batches in the stream)\n",
        consumed_before[0], consumed, all_batches);
    assert_true(consumed > 0);
    itest_stop_clean(agg[1], "kopt-aggregator");
    itest_stop_clean(ing[1], "kopt-ingest");
    for (int i = 0; i < N_AGENTS; i++)
        itest_child_free(agent[i]);
    for (int i = 0; i < 2; i++) {
        itest_child_free(agg[i]);
        itest_child_free(ing[i]);
    }
    itest_child_free(spin);
    kopt_test_clickhouse_free(ch);
    kopt_test_nats_free(nats);
}

static int make_certs(void **state)
{
    (void)state;
    certs_dir = kopt_test_tmpdir("kopt-itest-replcerts");
    return certs_dir && kopt_test_make_certs(src_dir, certs_dir) == 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
    kopt_test_teardown_all(state);
    if (certs_dir)
        kopt_test_rmtree(certs_dir);
    free(certs_dir);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spread_failover_and_exactly_once),
    };

    if (argc < 5) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_AGENT KOPT_INGEST KOPT_AGGREGATOR\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    agent_exe = argv[2];
    ingest_exe = argv[3];
    agg_exe = argv[4];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, make_certs, teardown_all);
}
