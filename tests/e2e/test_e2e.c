/* The whole system, for real: nats-server (JetStream) and clickhouse-server
 * from the harness, kopt-ingest (mutual TLS), kopt-aggregator, kopt-advisor
 * (TLS, API keys) and kopt-agent (proc source, client certificate) measuring a
 * stress-ng workload. Counts are checked exactly: the windows the agent
 * reports having spooled (kopt_agent_windows_total, summed over its lives)
 * equal the rows of container_windows FINAL, and no key appears twice.
 *
 *   test_e2e SRCDIR INGEST AGGREGATOR ADVISOR AGENT BUF flow|chaos
 *
 * flow:  data flows to recommendations served over gRPC (buf curl, mTLS),
 *        HTTP (API key) and on JetStream kopt.recommendations.local.host.
 * chaos: kill -9 agent, ingest, NATS, aggregator, ClickHouse and advisor
 *        once each, in a random order at random moments, restart them; the
 *        counts are still exact and recommendations are served.
 *        KOPT_E2E_SEED=N replays an order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_system.h"
#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"

#define API_KEY "e2e-key-5f1c0ffee0ddba11"

static const char *src_dir, *ingest_exe, *aggregator_exe, *advisor_exe, *agent_exe, *buf_exe;

static e2e_system_t S;
static double agent_windows; /* kopt_agent_windows_total summed over finished lives */
static int agent_lives;
static double t_start; /* for the progress notes */

/* ---- small helpers ------------------------------------------------------------ */

static void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "e2e %6.1f s: ", kopt_test_now() - t_start);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* GET (or POST body) with the API key. Returns the HTTP status (0: none). */
static long http(const char *method, const char *url, const char *body, char **out)
{
    kopt_test_http_req_t q = {.method = method, .url = url, .bearer = API_KEY, .body = body};
    kopt_test_http_resp_t r;
    long status = kopt_test_http_call(&q, &r);

    if (out) {
        *out = r.body;
        r.body = NULL;
    }
    kopt_test_http_resp_free(&r);
    return status;
}

/* Runs argv to completion (output to log), up to timeout_ms. Exit status or -1. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (s = malloc((size_t)n + 1))) {
        s[fread(s, 1, (size_t)n, f)] = '\0';
    }
    fclose(f);
    return s;
}

/* The agent's kopt_agent_windows_total now, or -1. */
static double agent_windows_now(void)
{
    char admin[64];

    snprintf(admin, sizeof(admin), "http://127.0.0.1:%d", S.p_agent_admin);
    return kopt_test_metric(admin, "kopt_agent_windows_total");
}

/* Sleeps until 2.5 s into a window: the windows that closed at its start are
 * spooled by then (a tick a second), and the next closes 2.5 s later; so a
 * counter read now stays right if the agent stops right after. */
static void wait_mid_window(void)
{
    int64_t into = e2e_wall_ms() % E2E_WINDOW_MS;

    kopt_test_sleep_ms(into < 2500 ? 2500 - into : E2E_WINDOW_MS - into + 2500);
}

/* ---- the system ------------------------------------------------------------------- */

static int system_up(void **state)
{
    const e2e_options_t o = {.src_dir = src_dir,
                             .ingest_exe = ingest_exe,
                             .aggregator_exe = aggregator_exe,
                             .advisor_exe = advisor_exe,
                             .agent_exe = agent_exe,
                             .name = "kopt-e2e",
                             .secure = true,
                             .api_key = API_KEY};
    double t0 = kopt_test_now();

    (void)state;
    agent_windows = 0;
    agent_lives = 1;
    if (e2e_up(&S, &o) < 0)
        return -1;
    note("system up in %.1f s (state %s)", kopt_test_now() - t0, S.dir);
    return 0;
}

static void tail_logs(void)
{
    e2e_tail_logs(&S, 12);
}

static int system_down(void **state)
{
    (void)state;
    e2e_down(&S);
    kopt_test_cleanup_all();
    return 0;
}

/* Reads the counter mid-window and stops the agent with SIGTERM (exit 0). */
static void stop_agent_cleanly(void)
{
    double v;
    int r;

    wait_mid_window();
    v = agent_windows_now();
    r = kopt_test_proc_stop(&S.proc[E2E_AGENT], 30000);
    if (v < 0 || r != 0 || !WIFEXITED(S.proc[E2E_AGENT].status) ||
        WEXITSTATUS(S.proc[E2E_AGENT].status) != 0)
        tail_logs();
    assert_true(v >= 0);
    assert_int_equal(r, 0);
    assert_true(WIFEXITED(S.proc[E2E_AGENT].status));
    assert_int_equal(WEXITSTATUS(S.proc[E2E_AGENT].status), 0);
    agent_windows += v;
    note("agent stopped cleanly; this life spooled %.0f windows (total %.0f over %d lives)", v,
         agent_windows, agent_lives);
}

/* container_windows FINAL reaches the agent's count (no more, no less), and
 * every key is there once. */
static void assert_counts_exact(double wait_s)
{
    unsigned long long want = (unsigned long long)agent_windows, rows = 0, keys = 0, raw = 0;
    double end = kopt_test_now() + wait_s;

    assert_true(want > 0);
    do {
        if (e2e_ch_numbers(&S,
                           "SELECT count(), uniqExact(cluster, namespace, workload_kind, "
                           "workload_name, pod, container, window_start) "
                           "FROM kopt.container_windows FINAL",
                           &rows, &keys) == 0 &&
            rows >= want)
            break;
        kopt_test_sleep_ms(1000);
    } while (kopt_test_now() < end);
    kopt_test_sleep_ms(3000); /* anything late would show now */
    assert_int_equal(e2e_ch_numbers(&S,
                                    "SELECT count(), uniqExact(cluster, namespace, workload_kind, "
                                    "workload_name, pod, container, window_start) "
                                    "FROM kopt.container_windows FINAL",
                                    &rows, &keys),
                     0);
    assert_int_equal(e2e_ch_numbers(&S, "SELECT count() FROM kopt.container_windows", &raw, NULL),
                     0);
    note("agent windows %llu; ClickHouse FINAL rows %llu, distinct keys %llu (%llu before merging)",
         want, rows, keys, raw);
    if (rows != want || keys != rows)
        tail_logs();
    assert_int_equal(rows, want);
    assert_int_equal(keys, rows);
}

/* POST /v1/analyses (retried while the advisor comes back), then the list
 * over HTTP must hold the workload "steady". */
static void assert_http_recommendations(void)
{
    char url[128], *body = NULL;
    double end = kopt_test_now() + 60;
    long status = 0;
    int found = 0;
    json_t *j, *recs;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/analyses", S.p_http);
    while ((status = http("POST", url, "{}", NULL)) != 200 && kopt_test_now() < end)
        kopt_test_sleep_ms(1000);
    assert_int_equal(status, 200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/recommendations?page_size=100", S.p_http);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    recs = json_object_get(j, "recommendations");
    for (size_t i = 0; i < json_array_size(recs); i++) {
        json_t *w = json_object_get(json_array_get(recs, i), "workload");
        if (strcmp(json_string_value(json_object_get(w, "name")) ?: "", "steady") == 0 &&
            json_array_size(json_object_get(json_array_get(recs, i), "containers")) == 1)
            found++;
    }
    note("HTTP: %zu recommendations, steady among them: %d", json_array_size(recs), found);
    assert_int_equal(found, 1);
    /* Without the key: 401. */
    {
        long st = 0;
        assert_int_equal(kopt_test_http(url, NULL, 5000, &st, NULL), 0);
        assert_int_equal(st, 401);
    }
    json_decref(j);
    free(body);
}

/* ---- tests ---------------------------------------------------------------------- */

static void flow_windows_reach_clickhouse_and_recommendations_every_api(void **state)
{
    char url[160], cacert[600], cert[600], key[600], out[600];
    char *buf_argv[] = {(char *)buf_exe,
                        "curl",
                        "--protocol",
                        "grpc",
                        "--cacert",
                        cacert,
                        "--cert",
                        cert,
                        "--key",
                        key,
                        "-H",
                        "authorization: Bearer " API_KEY,
                        "-d",
                        "{\"namespace\":\"host\",\"name\":\"steady\"}",
                        url,
                        NULL};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    char *text;
    int found = 0;

    (void)state;
    /* Half a minute of windows, then a clean stop of the agent. */
    kopt_test_sleep_ms(25000);
    stop_agent_cleanly();
    assert_counts_exact(60);

    /* The node's facts took the same path: one node, seen by the proc source
     * with its CPU capacity. */
    {
        unsigned long long nodes = 0, described = 0;

        assert_int_equal(
            e2e_ch_numbers(&S,
                           "SELECT uniqExact(node), countIf(metric_source = 'proc' AND "
                           "cpu_capacity_cores > 0) FROM kopt.node_facts",
                           &nodes, &described),
            0);
        note("node_facts: %llu node(s), %llu row(s) with the proc source and a CPU capacity", nodes,
             described);
        assert_int_equal(nodes, 1);
        assert_true(described >= 1);
    }

    assert_http_recommendations();

    /* gRPC over TLS with the client.pem service identity (mutual TLS) and the key. */
    assert_int_equal(access(buf_exe, X_OK), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/kopt.v1.Advisor/ListRecommendations", S.p_adv);
    snprintf(cacert, sizeof(cacert), "%s/ca.pem", S.certs);
    snprintf(cert, sizeof(cert), "%s/client.pem", S.certs);
    snprintf(key, sizeof(key), "%s/client-key.pem", S.certs);
    snprintf(out, sizeof(out), "%s/buf-curl.out", S.dir);
    assert_int_equal(kopt_test_proc_run(buf_argv, out, 60000), 0);
    text = slurp(out);
    assert_non_null(text);
    note("gRPC (buf curl, mTLS): %s", strstr(text, "\"name\": \"steady\"") ? "steady found" : text);
    assert_non_null(strstr(text, "\"name\": \"steady\""));
    assert_non_null(strstr(text, "\"recommended\""));
    free(text);

    /* JetStream: the advisor's message for the workload. */
    assert_int_equal(kopt_test_nats_connect(S.nats, &nc), 0);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions_Init(&so);
    so.Stream = "KOPT_RECOMMENDATIONS";
    so.Config.DeliverPolicy = js_DeliverAll;
    assert_int_equal(js_SubscribeSync(&sub, js, "kopt.recommendations.>", NULL, &so, &jerr),
                     NATS_OK);
    for (int i = 0; i < 200 && !found; i++) {
        natsMsg *msg = NULL;
        Kopt__V1__Recommendation *rec;

        if (natsSubscription_NextMsg(&msg, sub, 3000) != NATS_OK)
            break;
        rec = kopt__v1__recommendation__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
                                               (const uint8_t *)natsMsg_GetData(msg));
        if (rec && rec->workload && strcmp(rec->workload->name, "steady") == 0 &&
            strcmp(natsMsg_GetSubject(msg), "kopt.recommendations.local.host") == 0 &&
            rec->n_containers == 1)
            found = 1;
        kopt__v1__recommendation__free_unpacked(rec, NULL);
        natsMsg_Destroy(msg);
    }
    note("JetStream kopt.recommendations.local.host: steady %s", found ? "seen" : "NOT seen");
    assert_int_equal(found, 1);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

typedef enum { K_AGENT, K_INGEST, K_NATS, K_AGGREGATOR, K_CLICKHOUSE, K_ADVISOR, K_N } victim_t;
static const char *victim_names[K_N] = {"agent",      "ingest",     "nats",
                                        "aggregator", "clickhouse", "advisor"};

static void kill9(victim_t v)
{
    switch (v) {
    case K_AGENT: {
        /* Its counter dies with it: read it mid-window, kill right after. */
        double w;
        wait_mid_window();
        w = agent_windows_now();
        assert_true(w >= 0);
        assert_int_equal(kopt_test_proc_kill9(&S.proc[E2E_AGENT]), 0);
        agent_windows += w;
        note("kill -9 agent (this life spooled %.0f windows)", w);
        break;
    }
    case K_INGEST:
        assert_int_equal(kopt_test_proc_kill9(&S.proc[E2E_INGEST]), 0);
        break;
    case K_NATS:
        assert_int_equal(kopt_test_nats_kill9(S.nats), 0);
        break;
    case K_AGGREGATOR:
        assert_int_equal(kopt_test_proc_kill9(&S.proc[E2E_AGGREGATOR]), 0);
        break;
    case K_CLICKHOUSE:
        assert_int_equal(kopt_test_clickhouse_kill9(S.ch), 0);
        break;
    case K_ADVISOR:
        assert_int_equal(kopt_test_proc_kill9(&S.proc[E2E_ADVISOR]), 0);
        break;
    default:
        break;
    }
    if (v != K_AGENT)
        note("kill -9 %s", victim_names[v]);
}

static void restart(victim_t v)
{
    switch (v) {
    case K_AGENT:
        /* Same spool: unacked batches are re-sent with their ids. */
        assert_int_equal(kopt_test_proc_respawn(&S.proc[E2E_AGENT]), 0);
        agent_lives++;
        assert_int_equal(kopt_test_wait_http_ok(S.p_agent_admin, "/healthz", 30), 0);
        break;
    case K_INGEST:
        assert_int_equal(kopt_test_proc_respawn(&S.proc[E2E_INGEST]), 0);
        break;
    case K_NATS:
        assert_int_equal(kopt_test_nats_restart(S.nats), 0);
        break;
    case K_AGGREGATOR:
        assert_int_equal(kopt_test_proc_respawn(&S.proc[E2E_AGGREGATOR]), 0);
        break;
    case K_CLICKHOUSE:
        assert_int_equal(kopt_test_clickhouse_restart(S.ch), 0);
        break;
    case K_ADVISOR:
        assert_int_equal(kopt_test_proc_respawn(&S.proc[E2E_ADVISOR]), 0);
        break;
    default:
        break;
    }
    note("restarted %s", victim_names[v]);
}

static void chaos_kill9_each_component_counts_stay_exact(void **state)
{
    victim_t order[K_N];
    const char *seed_env = getenv("KOPT_E2E_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    char line[256] = "";

    (void)state;
    srand(seed);
    for (int i = 0; i < K_N; i++)
        order[i] = (victim_t)i;
    for (int i = K_N - 1; i > 0; i--) { /* Fisher-Yates */
        int j = rand() % (i + 1);
        victim_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < K_N; i++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", i ? ", " : "",
                 victim_names[order[i]]);
    note("chaos seed %u (KOPT_E2E_SEED=%u replays it): %s", seed, seed, line);

    kopt_test_sleep_ms(10000); /* some data first */
    for (int i = 0; i < K_N; i++) {
        kopt_test_sleep_ms(2000 + rand() % 8000); /* a random moment */
        kill9(order[i]);
        kopt_test_sleep_ms(1000 + rand() % 3000); /* down for 1-4 s */
        restart(order[i]);
        kopt_test_sleep_ms(3000);
    }
    /* Everything back: the daemons are alive and ready again. */
    assert_int_equal(kopt_test_wait_http_ok(S.p_ingest_admin, "/readyz", 60), 0);
    assert_int_equal(kopt_test_wait_http_ok(S.p_agg_admin, "/readyz", 60), 0);
    assert_int_equal(kopt_test_wait_http_ok(S.p_adv_admin, "/healthz", 60), 0);
    kopt_test_sleep_ms(8000);
    stop_agent_cleanly();
    assert_counts_exact(90);
    assert_http_recommendations();
    assert_true(kopt_test_proc_alive(&S.proc[E2E_INGEST]));
    assert_true(kopt_test_proc_alive(&S.proc[E2E_AGGREGATOR]));
    assert_true(kopt_test_proc_alive(&S.proc[E2E_ADVISOR]));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest flow[] = {
        cmocka_unit_test_setup_teardown(flow_windows_reach_clickhouse_and_recommendations_every_api,
                                        system_up, system_down),
    };
    const struct CMUnitTest chaos[] = {
        cmocka_unit_test_setup_teardown(chaos_kill9_each_component_counts_stay_exact, system_up,
                                        system_down),
    };
    int failed;

    if (argc != 8 || (strcmp(argv[7], "flow") != 0 && strcmp(argv[7], "chaos") != 0)) {
        fprintf(stderr, "usage: %s SRCDIR INGEST AGGREGATOR ADVISOR AGENT BUF flow|chaos\n",
                argv[0]);
        return 2;
    }
    src_dir = argv[1];
    ingest_exe = argv[2];
    aggregator_exe = argv[3];
    advisor_exe = argv[4];
    agent_exe = argv[5];
    buf_exe = argv[6];
    t_start = kopt_test_now();
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(argv[7], "flow") == 0)
        failed = cmocka_run_group_tests_name("e2e", flow, NULL, NULL);
    else
        failed = cmocka_run_group_tests_name("e2e_chaos", chaos, NULL, NULL);
    curl_global_cleanup();
    nats_Close();
    return failed ? 1 : 0;
}
