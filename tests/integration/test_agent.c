/* kopt-agent, the real binary, measuring a busy child process (the proc
 * source, demo timings) and streaming over mutual TLS to the real kopt-ingest
 * and a real nats-server with JetStream: windows flow and every batch lands
 * in KOPT_METRICS once; ingest away for a while, then back; the agent killed
 * with -9 and restarted on its spool; --once --output json.
 *
 * usage: test_agent SRCDIR KOPT_AGENT KOPT_INGEST */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define STREAM "KOPT_METRICS"
#define NODE "node-1"
#define AGENT_ID "dev-agent.node-1"        /* agent-local.pem's id, then the node */
#define RULE "spin=kopt-itest-spin-[0-9]+" /* does not match its own text */

static const char *src_dir, *agent_exe, *ingest_exe;
static char *certs_dir;

/* ------------------------------------------------------------------------ */
/* Processes: a child in the cleanup registry, so a failed assertion stops it */

typedef struct {
    kopt_test_proc_t proc;
    int spawned;
    char *dir; /* temp dir: log, spool */
    char log_path[600];
    int port, admin_port;
    char target[64], admin_url[64];
} child_t;

static void child_release(void *arg)
{
    child_t *c = arg;

    if (c->spawned)
        kopt_test_proc_release(&c->proc);
    if (c->dir) {
        kopt_test_rmtree(c->dir);
        free(c->dir);
    }
    free(c);
}

static void child_cleanup(void *arg)
{
    child_t *c = arg;

    if (c->log_path[0])
        kopt_test_log_tail(c->log_path, 30);
    child_release(c);
}

static child_t *child_new(const char *prefix)
{
    child_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->dir = kopt_test_tmpdir(prefix);
    assert_non_null(c->dir);
    assert_int_equal(kopt_test_cleanup_push(child_cleanup, c), 0);
    return c;
}

static void child_free(child_t *c)
{
    kopt_test_cleanup_forget(c);
    child_release(c);
}

static void ports(child_t *c)
{
    do {
        c->port = kopt_test_free_port();
        c->admin_port = kopt_test_free_port();
    } while (c->port == c->admin_port);
    assert_true(c->port > 0 && c->admin_port > 0);
    snprintf(c->target, sizeof(c->target), "127.0.0.1:%d", c->port);
    snprintf(c->admin_url, sizeof(c->admin_url), "http://127.0.0.1:%d", c->admin_port);
}

static int http_status(const child_t *c, const char *path)
{
    char url[160];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", c->admin_url, path);
    kopt_test_http(url, NULL, 1000, &status, NULL);
    return (int)status;
}

static void wait_http(child_t *c, const char *path, const char *what)
{
    double t0 = kopt_test_now();

    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() - t0 < 15.0) {
        if (http_status(c, path) == 200) {
            fprintf(stderr, "  %s up in %.3f s (log %s)\n", what, kopt_test_now() - t0,
                    c->log_path);
            return;
        }
        usleep(20000);
    }
    kopt_test_log_tail(c->log_path, 30);
    fail_msg("%s did not come up", what);
}

/* The value of one sample line of /metrics, or -1. */
static double metric(const child_t *c, const char *sample)
{
    char url[160], *body = NULL, *p;
    long status = 0;
    double v = -1;
    size_t n = strlen(sample);

    snprintf(url, sizeof(url), "%s/metrics", c->admin_url);
    if (kopt_test_http(url, NULL, 2000, &status, &body) == 0 && status == 200 && body)
        for (p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    free(body);
    return v;
}

static void assert_sanitizer_clean(const child_t *c)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer",
                                          "runtime error:", "ERROR: LeakSanitizer"};

    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
        if (kopt_test_log_contains(c->log_path, reports[i])) {
            kopt_test_log_tail(c->log_path, 80);
            fail_msg("%s has \"%s\"", c->log_path, reports[i]);
        }
}

/* SIGTERM; must exit 0 within 15 s with a clean log. */
static void stop_clean(child_t *c, const char *what)
{
    double until = kopt_test_now() + 15;

    assert_int_equal(kopt_test_proc_signal(&c->proc, SIGTERM), 0);
    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() < until)
        usleep(20000);
    if (c->proc.pid)
        fail_msg("%s did not exit after SIGTERM", what);
    assert_sanitizer_clean(c);
    if (!WIFEXITED(c->proc.status) || WEXITSTATUS(c->proc.status) != 0) {
        kopt_test_log_tail(c->log_path, 30);
        fail_msg("%s ended with status 0x%x, want exit 0", what, c->proc.status);
    }
}

/* ------------------------------------------------------------------------ */
/* The busy child the agent measures, kopt-ingest, kopt-agent               */

static child_t *spinner_start(void)
{
    child_t *c = child_new("kopt-itest-spin");
    char marker[64];
    char *argv[] = {"/bin/sh", "-c", "while :; do :; done", marker, NULL};

    snprintf(marker, sizeof(marker), "kopt-itest-spin-%d", (int)getpid());
    snprintf(c->log_path, sizeof(c->log_path), "%s/spin.log", c->dir);
    assert_int_equal(kopt_test_proc_spawn(&c->proc, argv, NULL, c->log_path), 0);
    c->spawned = 1;
    return c;
}

static child_t *ingest_start(const kopt_test_nats_t *nats)
{
    child_t *c = child_new("kopt-itest-agent-ingest");
    char listen[64], admin[64], ca[600], cert[600], key[600];
    char *argv[20];
    int n = 0;

    snprintf(c->log_path, sizeof(c->log_path), "%s/ingest.log", c->dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
    ports(c);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    argv[n++] = (char *)ingest_exe;
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--admin-listen";
    argv[n++] = admin;
    argv[n++] = "--nats-url";
    argv[n++] = (char *)nats->url;
    argv[n++] = "--tls-ca";
    argv[n++] = ca;
    argv[n++] = "--tls-cert";
    argv[n++] = cert;
    argv[n++] = "--tls-key";
    argv[n++] = key;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    argv[n] = NULL;
    assert_int_equal(kopt_test_proc_spawn(&c->proc, argv, NULL, c->log_path), 0);
    c->spawned = 1;
    wait_http(c, "/readyz", "kopt-ingest");
    return c;
}

/* kopt-agent on the proc source, streaming to `ing`, spool in its dir. */
static child_t *agent_start(const child_t *ing)
{
    child_t *c = child_new("kopt-itest-agent");
    char admin[64], ca[600], cert[600], key[600], spool[600];
    char *argv[40];
    int n = 0;

    snprintf(c->log_path, sizeof(c->log_path), "%s/agent.log", c->dir);
    snprintf(spool, sizeof(spool), "%s/spool", c->dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/agent-local.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/agent-local-key.pem", certs_dir);
    ports(c);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    argv[n++] = (char *)agent_exe;
    argv[n++] = "--ingest";
    argv[n++] = (char *)ing->target;
    argv[n++] = "--admin-listen";
    argv[n++] = admin;
    argv[n++] = "--tls-ca";
    argv[n++] = ca;
    argv[n++] = "--tls-cert";
    argv[n++] = cert;
    argv[n++] = "--tls-key";
    argv[n++] = key;
    argv[n++] = "--cluster";
    argv[n++] = "local";
    argv[n++] = "--node";
    argv[n++] = NODE;
    argv[n++] = "--source";
    argv[n++] = "proc";
    argv[n++] = "--proc-rules";
    argv[n++] = RULE;
    argv[n++] = "--window";
    argv[n++] = "2s";
    argv[n++] = "--sample-interval";
    argv[n++] = "500ms";
    argv[n++] = "--spool-dir";
    argv[n++] = spool;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    argv[n] = NULL;
    assert_int_equal(kopt_test_proc_spawn(&c->proc, argv, NULL, c->log_path), 0);
    c->spawned = 1;
    wait_http(c, "/healthz", "kopt-agent");
    return c;
}

/* ------------------------------------------------------------------------ */
/* KOPT_METRICS                                                             */

typedef struct {
    char (*ids)[160];
    size_t n;
    uint64_t msgs; /* State.Msgs */
} ids_t;

static void ids_free(ids_t *l)
{
    free(l->ids);
    memset(l, 0, sizeof(*l));
}

/* Every Nats-Msg-Id in the stream; checks the first message decodes as the
 * agent's batch. Returns 0, or -EAGAIN when the stream is not there yet. */
static int stream_ids(const kopt_test_nats_t *nats, ids_t *out)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t first, last;

    memset(out, 0, sizeof(*out));
    assert_int_equal(natsConnection_ConnectTo(&nc, nats->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    if (js_GetStreamInfo(&si, js, STREAM, NULL, &jerr) != NATS_OK) {
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return -EAGAIN;
    }
    out->msgs = si->State.Msgs;
    first = si->State.FirstSeq;
    last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    out->ids = calloc(out->msgs + 1, sizeof(*out->ids));
    assert_non_null(out->ids);
    for (uint64_t seq = first; out->msgs > 0 && seq <= last && out->n < out->msgs; seq++) {
        natsMsg *m = NULL;
        const char *id = NULL;

        if (js_GetMsg(&m, js, STREAM, seq, NULL, &jerr) != NATS_OK)
            continue;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        snprintf(out->ids[out->n++], sizeof(out->ids[0]), "%s", id ? id : "");
        natsMsg_Destroy(m);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

static uint64_t stream_count(const kopt_test_nats_t *nats)
{
    ids_t l;
    uint64_t n;

    if (stream_ids(nats, &l) < 0)
        return 0;
    n = l.msgs;
    ids_free(&l);
    return n;
}

/* Every id once, each of this agent. */
static void assert_unique(const ids_t *l)
{
    assert_int_equal(l->n, l->msgs);
    for (size_t i = 0; i < l->n; i++) {
        if (strncmp(l->ids[i], AGENT_ID "/", strlen(AGENT_ID) + 1) != 0)
            fail_msg("unexpected Nats-Msg-Id %s", l->ids[i]);
        for (size_t j = i + 1; j < l->n; j++)
            if (strcmp(l->ids[i], l->ids[j]) == 0)
                fail_msg("Nats-Msg-Id %s is stored twice", l->ids[i]);
    }
}

static bool has_id(const ids_t *l, uint64_t epoch, uint64_t seq)
{
    char id[160];

    snprintf(id, sizeof(id), "%s/%" PRIu64 "/%" PRIu64, AGENT_ID, epoch, seq);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], id) == 0)
            return true;
    return false;
}

/* The smallest epoch in the stream (the first run's). */
static uint64_t first_epoch(const ids_t *l)
{
    uint64_t best = 0;

    for (size_t i = 0; i < l->n; i++) {
        uint64_t e = strtoull(l->ids[i] + strlen(AGENT_ID) + 1, NULL, 10);
        if (best == 0 || e < best)
            best = e;
    }
    return best;
}

/* Waits until the agent has made at least `min` batches and the stream
 * holds exactly kopt_agent_batches_total messages, read twice the same. */
static uint64_t wait_settled(const kopt_test_nats_t *nats, const child_t *agent, double min,
                             double timeout_s, bool acked_too)
{
    double until = kopt_test_now() + timeout_s, b1 = -1, acked = -1;
    uint64_t n = 0;

    while (kopt_test_now() < until) {
        b1 = metric(agent, "kopt_agent_batches_total");
        n = stream_count(nats);
        acked = metric(agent, "kopt_agent_acked_batches_total");
        if (b1 >= min && (double)n == b1 && metric(agent, "kopt_agent_batches_total") == b1 &&
            (!acked_too || acked == b1))
            return n;
        usleep(200000);
    }
    kopt_test_log_tail(agent->log_path, 30);
    fail_msg("stream has %" PRIu64 " messages, agent made %.0f batches, acked %.0f", n, b1, acked);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static kopt_test_nats_t *nats_or_skip(void)
{
    kopt_test_nats_t *nats = NULL;
    int r = kopt_test_nats_start(&nats, NULL);

    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    return nats;
}

/* (a) Windows flow: after ~8 s acked == batches == stream messages, ids unique. */
static void windows_flow_into_jetstream_once(void **state)
{
    kopt_test_nats_t *nats = nats_or_skip();
    child_t *spin = spinner_start(), *ing = ingest_start(nats), *agent = agent_start(ing);
    uint64_t n;
    ids_t l;

    (void)state;
    sleep(8);
    n = wait_settled(nats, agent, 2, 10, true);
    fprintf(stderr, "  %" PRIu64 " batches made, acked and stored; windows %.0f, samples %.0f\n", n,
            metric(agent, "kopt_agent_windows_total"), metric(agent, "kopt_agent_samples_total"));
    assert_int_equal(stream_ids(nats, &l), 0);
    assert_unique(&l);
    ids_free(&l);
    stop_clean(agent, "kopt-agent");
    child_free(agent);
    child_free(ing);
    child_free(spin);
    kopt_test_nats_free(nats);
}

/* (b) Ingest away ~10 s: batches wait in the spool, then all land once. */
static void ingest_away_then_back_loses_nothing(void **state)
{
    kopt_test_nats_t *nats = nats_or_skip();
    child_t *spin = spinner_start(), *ing = ingest_start(nats), *agent = agent_start(ing);
    double t0, made_before, spool_max = 0;
    uint64_t n;
    ids_t l;

    (void)state;
    wait_settled(nats, agent, 2, 15, true);
    made_before = metric(agent, "kopt_agent_batches_total");
    assert_int_equal(kopt_test_proc_kill9(&ing->proc), 0);
    t0 = kopt_test_now();
    while (kopt_test_now() - t0 < 10) {
        double b = metric(agent, "kopt_agent_spool_bytes");
        if (b > spool_max)
            spool_max = b;
        usleep(250000);
    }
    fprintf(stderr, "  ingest away 10 s: %.0f batches made meanwhile, spool up to %.0f bytes\n",
            metric(agent, "kopt_agent_batches_total") - made_before, spool_max);
    assert_true(metric(agent, "kopt_agent_batches_total") >= made_before + 3);
    assert_true(spool_max > 0);
    assert_int_equal(kopt_test_proc_respawn(&ing->proc), 0);
    wait_http(ing, "/readyz", "kopt-ingest (again)");
    t0 = kopt_test_now();
    n = wait_settled(nats, agent, made_before + 3, 40, false);
    fprintf(stderr, "  all %" PRIu64 " batches stored %.1f s after ingest came back\n", n,
            kopt_test_now() - t0);
    assert_int_equal(stream_ids(nats, &l), 0);
    assert_unique(&l);
    ids_free(&l);
    stop_clean(agent, "kopt-agent");
    child_free(agent);
    child_free(ing);
    child_free(spin);
    kopt_test_nats_free(nats);
}

/* (c) kill -9 of the agent with unacked batches in its spool (ingest is
 * paused), restart on the same spool: nothing lost, nothing doubled. */
static void agent_kill9_replays_spool(void **state)
{
    kopt_test_nats_t *nats = nats_or_skip();
    child_t *spin = spinner_start(), *ing = ingest_start(nats), *agent = agent_start(ing);
    double made_first, acked_first;
    uint64_t epoch1 = 0;
    ids_t l;

    (void)state;
    wait_settled(nats, agent, 2, 15, true);
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGSTOP), 0);
    sleep(5); /* two or more batches made and not acked */
    made_first = metric(agent, "kopt_agent_batches_total");
    acked_first = metric(agent, "kopt_agent_acked_batches_total");
    assert_int_equal(kopt_test_proc_kill9(&agent->proc), 0);
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGCONT), 0);
    fprintf(stderr, "  agent killed: %.0f batches made, %.0f acked\n", made_first, acked_first);
    assert_true(made_first > acked_first);
    assert_int_equal(kopt_test_proc_respawn(&agent->proc), 0);
    wait_http(agent, "/healthz", "kopt-agent (again)");
    /* The second run: its own batches plus the replayed ones. */
    {
        double until = kopt_test_now() + 30;
        bool all = false;

        while (!all && kopt_test_now() < until) {
            usleep(500000);
            if (stream_ids(nats, &l) < 0)
                continue;
            epoch1 = first_epoch(&l);
            all = metric(agent, "kopt_agent_batches_total") >= 2;
            for (uint64_t s = 1; all && s <= (uint64_t)made_first; s++)
                all = has_id(&l, epoch1, s);
            ids_free(&l);
        }
        if (!all)
            fail_msg("batches of the first run are missing from the stream");
    }
    assert_int_equal(stream_ids(nats, &l), 0);
    assert_unique(&l);
    fprintf(stderr, "  %zu messages, ids unique, first run's seq 1..%.0f all there\n", l.n,
            made_first);
    ids_free(&l);
    stop_clean(agent, "kopt-agent");
    child_free(agent);
    child_free(ing);
    child_free(spin);
    kopt_test_nats_free(nats);
}

/* (d) --once --output json prints JSON lines with the window's fields. */
static void once_prints_json_windows(void **state)
{
    child_t *spin = spinner_start(), *c = child_new("kopt-itest-agent-once");
    char admin[64], spool[600], line[4096];
    char *argv[] = {(char *)agent_exe,
                    "--once",
                    "--output",
                    "json",
                    "--source",
                    "proc",
                    "--proc-rules",
                    RULE,
                    "--window",
                    "2s",
                    "--sample-interval",
                    "500ms",
                    "--node",
                    NODE,
                    "--admin-listen",
                    admin,
                    "--spool-dir",
                    spool,
                    "--log-format",
                    "text",
                    NULL};
    double until;
    int lines = 0;
    FILE *f;

    (void)state;
    ports(c);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    snprintf(spool, sizeof(spool), "%s/spool", c->dir);
    snprintf(c->log_path, sizeof(c->log_path), "%s/once.log", c->dir);
    assert_int_equal(kopt_test_proc_spawn(&c->proc, argv, NULL, c->log_path), 0);
    c->spawned = 1;
    until = kopt_test_now() + 15;
    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() < until)
        usleep(50000);
    if (c->proc.pid)
        fail_msg("--once did not exit");
    assert_sanitizer_clean(c);
    assert_true(WIFEXITED(c->proc.status) && WEXITSTATUS(c->proc.status) == 0);
    f = fopen(c->log_path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        json_error_t err;
        json_t *o;

        if (line[0] != '{')
            continue; /* a --log-format text line */
        o = json_loads(line, 0, &err);
        if (!o)
            fail_msg("not JSON: %s (%s)", line, err.text);
        assert_string_equal(json_string_value(json_object_get(o, "cluster")), "local");
        assert_string_equal(json_string_value(json_object_get(o, "node")), NODE);
        assert_string_equal(json_string_value(json_object_get(o, "namespace")), "host");
        assert_string_equal(json_string_value(json_object_get(o, "workloadName")), "spin");
        assert_string_equal(json_string_value(json_object_get(o, "container")), "spin");
        assert_true(json_integer_value(json_object_get(o, "windowEndMs")) -
                        json_integer_value(json_object_get(o, "windowStartMs")) ==
                    2000);
        assert_true(json_real_value(json_object_get(o, "cpuUsageMeanCores")) > 0.2);
        assert_true(json_integer_value(json_object_get(o, "memoryWorkingSetPeakBytes")) > 0);
        assert_true(json_integer_value(json_object_get(o, "sampleCount")) >= 1);
        assert_non_null(json_string_value(json_object_get(o, "epoch")));
        assert_string_equal(json_string_value(json_object_get(o, "seq")), "1");
        json_decref(o);
        lines++;
    }
    fclose(f);
    fprintf(stderr, "  %d JSON window line(s)\n", lines);
    assert_int_equal(lines, 1);
    child_free(c);
    child_free(spin);
}

/* ------------------------------------------------------------------------ */


static int make_certs(void **state)
{
    (void)state;
    certs_dir = kopt_test_tmpdir("kopt-itest-agent-certs");
    return certs_dir ? kopt_test_make_certs(src_dir, certs_dir) : -1;
}

static int test_teardown(void **state)
{
    (void)state;
    kopt_test_cleanup_all();
    return 0;
}

static int teardown_all(void **state)
{
    kopt_test_teardown_all(state);
    if (certs_dir) {
        kopt_test_rmtree(certs_dir);
        free(certs_dir);
        certs_dir = NULL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(windows_flow_into_jetstream_once, test_teardown),
        cmocka_unit_test_teardown(ingest_away_then_back_loses_nothing, test_teardown),
        cmocka_unit_test_teardown(agent_kill9_replays_spool, test_teardown),
        cmocka_unit_test_teardown(once_prints_json_windows, test_teardown),
    };
    double t0 = kopt_test_now();
    int failed;

    if (argc < 4) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_AGENT KOPT_INGEST\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    agent_exe = argv[2];
    ingest_exe = argv[3];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, make_certs, teardown_all);
    nats_Close();
    fprintf(stderr, "timing: test_agent %.3f s\n", kopt_test_now() - t0);
    return failed;
}
