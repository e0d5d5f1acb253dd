/* kopt-agent, the real binary, measuring busy child processes (the proc
 * source) and streaming over mutual TLS to the real kopt-ingest and a real
 * nats-server with JetStream: windows flow and every batch lands in
 * KOPT_METRICS once; the agent killed with -9 and restarted on its spool;
 * --once --output json; --once on an empty cgroup root (ends after one
 * window, saying so), beside a listener on the admin port and without proc
 * rules (groups by executable); /readyz follows ingest's acks. And, as its
 * own meson test (agent_outage, mostly idle), ingest away for minutes with the agent's real
 * 1-minute windows: several windows a container spool, the reconnect backoff reaches its cap, and
 * once ingest is back every window is in JetStream exactly once.
 *
 * usage: test_agent SRCDIR KOPT_AGENT KOPT_INGEST */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_env.h"
#include "harness.h"
#include "kopt/v1/metrics.pb-c.h"

#define NODE "node-1"
#define AGENT_ID "dev-agent.node-1" /* agent-local.pem's id, then the node */
/* Ingest stays away at least this long, and until two 1-minute windows of
 * each container have closed into the spool (the first minute after the
 * agent starts may close without a rate, so that can take up to ~135 s). */
#define OUTAGE_S 120

static const char *src_dir, *agent_exe, *ingest_exe;
static char *certs_dir;

/* ------------------------------------------------------------------------ */
/* The children the agent measures, and kopt-agent                          */

/* A proc rule "<name>=kopt-itest-<name>-[N]NNN" for this test process's
 * marked children (pid NNNN): the bracket keeps it from matching its own
 * text in the agent's command line, the pid from matching the children of
 * an agent test running beside this one. */
static const char *rule(const char *name)
{
    static char buf[4][128];
    static int next;
    char *r = buf[next++ % 4], pid[32];

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(r, 128, "%s=kopt-itest-%s-[%c]%s", name, name, pid[0], pid + 1);
    return r;
}

/* `sh -c SCRIPT kopt-itest-<name>-<pid>`: the marker is in its cmdline. */
static itest_child_t *marked_start(const char *name, const char *script)
{
    itest_child_t *c = itest_child_new("kopt-itest-marked", "marked.log");
    char marker[64];
    char *argv[] = {"/bin/sh", "-c", (char *)script, marker, NULL};

    snprintf(marker, sizeof(marker), "kopt-itest-%s-%d", name, (int)getpid());
    itest_child_spawn(c, argv);
    return c;
}

static itest_child_t *spinner_start(void)
{
    return marked_start("spin", "while :; do :; done");
}

/* kopt-agent on the proc source, streaming to `ing` (agent_env.h). */
static itest_child_t *agent_start(const itest_child_t *ing, const char *window, const char *rules)
{
    return itest_agent_proc_start(agent_exe, certs_dir, ing->target, NODE, rules, window);
}

/* ------------------------------------------------------------------------ */
/* KOPT_METRICS                                                             */

static bool has_id(const itest_stream_t *s, uint64_t epoch, uint64_t seq)
{
    char id[160];

    snprintf(id, sizeof(id), "%s/%" PRIu64 "/%" PRIu64, AGENT_ID, epoch, seq);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].id, id) == 0)
            return true;
    return false;
}

/* The smallest epoch in the stream (the first run's). */
static uint64_t first_epoch(const itest_stream_t *s)
{
    uint64_t best = 0;

    for (size_t i = 0; i < s->n; i++) {
        uint64_t e = strtoull(s->m[i].id + strlen(AGENT_ID) + 1, NULL, 10);
        if (best == 0 || e < best)
            best = e;
    }
    return best;
}

/* Waits until the agent has made at least `min` batches and the stream
 * holds exactly kopt_agent_batches_total messages, read twice the same. */
static uint64_t wait_settled(const kopt_test_nats_t *nats, const itest_child_t *agent, double min,
                             double timeout_s, bool acked_too)
{
    double until = kopt_test_now() + timeout_s, b1 = -1, acked = -1;
    uint64_t n = 0;

    while (kopt_test_now() < until) {
        b1 = itest_metric(agent, "kopt_agent_batches_total");
        n = itest_stream_count(nats);
        acked = itest_metric(agent, "kopt_agent_acked_batches_total");
        if (b1 >= min && (double)n == b1 && itest_metric(agent, "kopt_agent_batches_total") == b1 &&
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

/* (a) Windows flow: batches made == acked == stream messages, ids unique. */
/* GET /readyz: the status, and the body in `body`. */
static long readyz(const itest_child_t *agent, char *body, size_t len)
{
    char url[128], *out = NULL;
    long status = 0;

    snprintf(url, sizeof(url), "%s/readyz", agent->admin_url);
    kopt_test_http(url, NULL, 2000, &status, &out);
    snprintf(body, len, "%s", out ? out : "");
    free(out);
    return status;
}

/* Waits up to timeout_s for /readyz to answer `want`; the last body in `body`. */
static bool readyz_becomes(const itest_child_t *agent, long want, double timeout_s, char *body,
                           size_t len)
{
    double until = kopt_test_now() + timeout_s;

    while (readyz(agent, body, len) != want)
        if (kopt_test_now() > until)
            return false;
        else
            usleep(50000);
    return true;
}

/* Ready means the last batch sent was acked: ingest stopped (SIGSTOP) with a
 * batch sent gives 503 naming the unacked batch; after SIGCONT and its ack, 200. */
static void readyz_follows_acks(itest_child_t *agent, itest_child_t *ing)
{
    char body[1024];
    double acked, until;

    if (!readyz_becomes(agent, 200, 10, body, sizeof(body)))
        fail_msg("/readyz not 200 while batches flow: %s", body);
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGSTOP), 0);
    acked = itest_metric(agent, "kopt_agent_acked_batches_total");
    until = kopt_test_now() + 15;
    while (itest_metric(agent, "kopt_agent_sent_batches_total") <= acked && kopt_test_now() < until)
        usleep(100000);
    assert_true(itest_metric(agent, "kopt_agent_sent_batches_total") > acked);
    assert_int_equal(readyz(agent, body, sizeof(body)), 503);
    fprintf(stderr, "  ingest stopped, a batch sent: /readyz 503: %s\n", body);
    assert_non_null(strstr(body, "not acked"));
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGCONT), 0);
    /* New 2 s windows keep coming: wait for a moment with nothing unacked. */
    if (!readyz_becomes(agent, 200, 15, body, sizeof(body)))
        fail_msg("/readyz not 200 after ingest came back: %s", body);
    fprintf(stderr, "  ingest back, acked %.0f of %.0f sent: /readyz 200\n",
            itest_metric(agent, "kopt_agent_acked_batches_total"),
            itest_metric(agent, "kopt_agent_sent_batches_total"));
}

static void windows_flow_into_jetstream_once(void **state)
{
    kopt_test_nats_t *nats = itest_nats_or_skip();
    itest_child_t *spin = spinner_start(), *ing = itest_ingest_start(ingest_exe, certs_dir, nats);
    itest_child_t *agent = agent_start(ing, "2s", rule("spin"));
    itest_stream_t s;
    uint64_t n;

    (void)state;
    n = wait_settled(nats, agent, 4, 20, true); /* a few 2 s windows, each stored */
    fprintf(stderr, "  %" PRIu64 " batches made, acked and stored; windows %.0f, samples %.0f\n", n,
            itest_metric(agent, "kopt_agent_windows_total"),
            itest_metric(agent, "kopt_agent_samples_total"));
    assert_int_equal(itest_stream_read(nats, &s), 0);
    itest_assert_unique_ids(&s, AGENT_ID);
    itest_stream_free(&s);
    readyz_follows_acks(agent, ing);
    itest_stop_clean(agent, "kopt-agent");
    itest_child_free(agent);
    itest_child_free(ing);
    itest_child_free(spin);
    kopt_test_nats_free(nats);
}

/* --- (b) ingest away for minutes ------------------------------------------ */

typedef struct {
    char key[300]; /* pod/container */
    int64_t start_ms, end_ms;
    int times;
} seen_t;

typedef struct {
    seen_t v[512];
    size_t n;
    size_t windows;
} seen_list_t;

/* Every window of every batch, counted by container and start. */
static void collect_windows(const itest_stream_t *s, seen_list_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < s->n; i++) {
        Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, s->m[i].len, s->m[i].data);

        assert_non_null(b);
        for (size_t j = 0; j < b->n_windows; j++) {
            const Kopt__V1__ContainerWindow *w = b->windows[j];
            seen_t *e = NULL;
            char key[300];

            snprintf(key, sizeof(key), "%s/%s", w->pod, w->container);
            for (size_t k = 0; k < out->n && !e; k++)
                if (strcmp(out->v[k].key, key) == 0 &&
                    out->v[k].start_ms == w->window_start->seconds * 1000)
                    e = &out->v[k];
            if (!e) {
                assert_true(out->n < sizeof(out->v) / sizeof(out->v[0]));
                e = &out->v[out->n++];
                snprintf(e->key, sizeof(e->key), "%s", key);
                e->start_ms = w->window_start->seconds * 1000;
                e->end_ms = w->window_end->seconds * 1000;
            }
            e->times++;
            out->windows++;
        }
        kopt__v1__metric_batch__free_unpacked(b, NULL);
    }
}

/* Each window once; a container's windows follow each other without a gap;
 * at least `min_between` of them ended between from_ms and to_ms. */
static void assert_windows_once(const seen_list_t *l, const char *key, int64_t from_ms,
                                int64_t to_ms, int min_between)
{
    int64_t first = INT64_MAX, last = 0;
    int n = 0, between = 0;

    for (size_t i = 0; i < l->n; i++) {
        const seen_t *e = &l->v[i];

        if (strcmp(e->key, key) != 0)
            continue;
        if (e->times != 1)
            fail_msg("window %s @%" PRId64 " is in JetStream %d times", key, e->start_ms, e->times);
        assert_int_equal(e->end_ms - e->start_ms, 60000);
        first = e->start_ms < first ? e->start_ms : first;
        last = e->start_ms > last ? e->start_ms : last;
        between += e->end_ms > from_ms && e->end_ms <= to_ms;
        n++;
    }
    fprintf(stderr, "  %s: %d windows, each once, %d closed while ingest was away\n", key, n,
            between);
    assert_true(n > 0);
    if ((last - first) / 60000 + 1 != n)
        fail_msg("%s: %d windows between %" PRId64 " and %" PRId64 ": a gap", key, n, first, last);
    assert_true(between >= min_between);
}

/* The largest retry_ms=N the agent logged. */
static long max_retry_ms(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    char line[4096], *p;
    long best = -1;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if ((p = strstr(line, "retry_ms=")) != NULL) {
            long v = strtol(p + strlen("retry_ms="), NULL, 10);
            best = v > best ? v : best;
        }
    fclose(f);
    return best;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* (b) Ingest away 2 minutes or more with real 1-minute windows: batches
 * wait in the spool while the reconnect backoff climbs to its 30 s cap;
 * once ingest is back, every window of both containers is in the stream
 * exactly once. */
static void outage_for_minutes_every_window_once(void **state)
{
    kopt_test_nats_t *nats = itest_nats_or_skip();
    itest_child_t *nap = marked_start("nap", "while :; do sleep 1; done");
    itest_child_t *doze = marked_start("doze", "while :; do sleep 2; done");
    itest_child_t *ing = itest_ingest_start(ingest_exe, certs_dir, nats);
    itest_child_t *agent;
    double t0, made_before, spool_max = 0, windows_total;
    int64_t away_ms, back_ms;
    bool unready = false;
    seen_list_t *seen = calloc(1, sizeof(*seen));
    itest_stream_t s;
    char key[128], rules[300];
    uint64_t n;

    (void)state;
    assert_non_null(seen);
    /* Two idle containers: windows need no CPU, and this test overlaps others. */
    snprintf(rules, sizeof(rules), "%s,%s", rule("nap"), rule("doze"));
    agent = agent_start(ing, NULL, rules);
    itest_wait_http(agent, "/readyz", "kopt-agent (ready)");
    made_before = itest_metric(agent, "kopt_agent_batches_total");
    assert_int_equal(kopt_test_proc_kill9(&ing->proc), 0);
    away_ms = wall_ms();
    t0 = kopt_test_now();
    while (kopt_test_now() - t0 < OUTAGE_S ||
           (itest_metric(agent, "kopt_agent_batches_total") < made_before + 2 &&
            kopt_test_now() - t0 < OUTAGE_S + 80)) {
        double b = itest_metric(agent, "kopt_agent_spool_bytes");

        spool_max = b > spool_max ? b : spool_max;
        unready = unready || itest_http_status(agent, "/readyz") == 503;
        sleep(1);
    }
    fprintf(stderr,
            "  ingest away %.0f s: %.0f batches (%.0f windows) made meanwhile, spool up to %.0f "
            "bytes, largest reconnect backoff %ld ms\n",
            kopt_test_now() - t0, itest_metric(agent, "kopt_agent_batches_total") - made_before,
            itest_metric(agent, "kopt_agent_windows_total"), spool_max,
            max_retry_ms(agent->log_path));
    assert_true(unready);
    assert_true(itest_metric(agent, "kopt_agent_batches_total") >= made_before + 2);
    assert_true(itest_metric(agent, "kopt_agent_acked_batches_total") <= made_before);
    assert_true(spool_max > 0);
    /* Equal jitter draws from [d/2, d]; below the 30 s cap d is at most
     * 16 s, so a wait above 16 s comes from the cap, and none is above it. */
    assert_true(max_retry_ms(agent->log_path) > 16000);
    assert_true(max_retry_ms(agent->log_path) <= 30000);

    assert_int_equal(kopt_test_proc_respawn(&ing->proc), 0);
    itest_wait_http(ing, "/readyz", "kopt-ingest (again)");
    back_ms = wall_ms();
    t0 = kopt_test_now();
    /* The next try comes within the 30 s backoff cap; then the spool drains. */
    n = wait_settled(nats, agent, made_before + 2, 45, true);
    fprintf(stderr,
            "  all %" PRIu64 " batches stored and acked %.1f s after ingest came back (%.0f "
            "reconnects)\n",
            n, kopt_test_now() - t0, itest_metric(agent, "kopt_agent_reconnects_total"));
    windows_total = itest_metric(agent, "kopt_agent_windows_total");
    assert_int_equal(itest_stream_read(nats, &s), 0);
    itest_assert_unique_ids(&s, AGENT_ID);
    collect_windows(&s, seen);
    assert_int_equal((double)seen->windows, windows_total);
    snprintf(key, sizeof(key), "doze/doze");
    assert_windows_once(seen, key, away_ms, back_ms, 2);
    snprintf(key, sizeof(key), "nap/nap");
    assert_windows_once(seen, key, away_ms, back_ms, 2);
    itest_stream_free(&s);
    free(seen);
    itest_stop_clean(agent, "kopt-agent");
    itest_child_free(agent);
    itest_child_free(ing);
    itest_child_free(doze);
    itest_child_free(nap);
    kopt_test_nats_free(nats);
}

/* (c) kill -9 of the agent with unacked batches in its spool (ingest is
 * paused), restart on the same spool: nothing lost, nothing doubled. */
static void agent_kill9_replays_spool(void **state)
{
    kopt_test_nats_t *nats = itest_nats_or_skip();
    itest_child_t *spin = spinner_start(), *ing = itest_ingest_start(ingest_exe, certs_dir, nats);
    itest_child_t *agent = agent_start(ing, "2s", rule("spin"));
    double made_first, acked_first;
    uint64_t epoch1 = 0;
    itest_stream_t s;

    (void)state;
    wait_settled(nats, agent, 2, 15, true);
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGSTOP), 0);
    /* Two or more batches made and not acked. */
    acked_first = itest_metric(agent, "kopt_agent_acked_batches_total");
    {
        double until = kopt_test_now() + 15;

        while (itest_metric(agent, "kopt_agent_batches_total") < acked_first + 2 &&
               kopt_test_now() < until)
            usleep(100000);
    }
    made_first = itest_metric(agent, "kopt_agent_batches_total");
    assert_int_equal(kopt_test_proc_kill9(&agent->proc), 0);
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGCONT), 0);
    fprintf(stderr, "  agent killed: %.0f batches made, %.0f acked\n", made_first, acked_first);
    assert_true(made_first > acked_first);
    assert_int_equal(kopt_test_proc_respawn(&agent->proc), 0);
    itest_wait_http(agent, "/healthz", "kopt-agent (again)");
    /* The second run: its own batches plus the replayed ones. */
    {
        double until = kopt_test_now() + 30;
        bool all = false;

        while (!all && kopt_test_now() < until) {
            usleep(500000);
            if (itest_stream_read(nats, &s) < 0)
                continue;
            epoch1 = first_epoch(&s);
            all = itest_metric(agent, "kopt_agent_batches_total") >= 2;
            for (uint64_t q = 1; all && q <= (uint64_t)made_first; q++)
                all = has_id(&s, epoch1, q);
            itest_stream_free(&s);
        }
        if (!all)
            fail_msg("batches of the first run are missing from the stream");
    }
    assert_int_equal(itest_stream_read(nats, &s), 0);
    itest_assert_unique_ids(&s, AGENT_ID);
    fprintf(stderr, "  %zu messages, ids unique, first run's seq 1..%.0f all there\n", s.n,
            made_first);
    itest_stream_free(&s);
    itest_stop_clean(agent, "kopt-agent");
    itest_child_free(agent);
    itest_child_free(ing);
    itest_child_free(spin);
    kopt_test_nats_free(nats);
}

/* (d) --once --output json prints JSON lines with the window's fields. */
static void once_prints_json_windows(void **state)
{
    itest_child_t *spin = spinner_start(),
                  *c = itest_child_new("kopt-itest-agent-once", "once.log");
    char admin[64], spool[600], line[4096];
    char *argv[] = {(char *)agent_exe,
                    "--once",
                    "--output",
                    "json",
                    "--source",
                    "proc",
                    "--proc-rules",
                    (char *)rule("spin"),
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
    int lines = 0;
    FILE *f;

    (void)state;
    itest_child_ports(c);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    snprintf(spool, sizeof(spool), "%s/spool", c->dir);
    itest_child_spawn(c, argv);
    itest_wait_exit_clean(c, 15, "kopt-agent --once");
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
        assert_string_equal(json_string_value(json_object_get(o, "workloadKind")),
                            "WORKLOAD_KIND_PROCESS_GROUP");
        assert_string_equal(json_string_value(json_object_get(o, "workloadName")), "spin");
        assert_string_equal(json_string_value(json_object_get(o, "container")), "spin");
        assert_true(json_integer_value(json_object_get(o, "windowEndMs")) -
                        json_integer_value(json_object_get(o, "windowStartMs")) ==
                    2000);
        assert_true(json_real_value(json_object_get(o, "cpuUsageMeanCores")) > 0.2);
        assert_true(json_integer_value(json_object_get(o, "memoryWorkingSetPeakBytes")) > 0);
        assert_true(json_integer_value(json_object_get(o, "sampleCount")) >= 1);
        assert_null(json_object_get(o, "workload")); /* no Kubernetes: no workload facts */
        assert_non_null(json_string_value(json_object_get(o, "epoch")));
        assert_string_equal(json_string_value(json_object_get(o, "seq")), "1");
        json_decref(o);
        lines++;
    }
    fclose(f);
    fprintf(stderr, "  %d JSON window line(s)\n", lines);
    assert_int_equal(lines, 1);
    itest_child_free(c);
    itest_child_free(spin);
}

/* Runs `kopt-agent --once --output json --node NODE --log-format text` plus
 * `extra` (NULL-terminated) in c, waiting up to timeout_s for exit 0. Returns
 * the seconds it took. */
static double once_run(itest_child_t *c, const char *const *extra, double timeout_s)
{
    char *argv[40];
    int n = 0;
    double t0;

    argv[n++] = (char *)agent_exe;
    argv[n++] = "--once";
    argv[n++] = "--output";
    argv[n++] = "json";
    argv[n++] = "--node";
    argv[n++] = NODE;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    for (; *extra && n < 39; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    t0 = kopt_test_now();
    itest_child_spawn(c, argv);
    itest_wait_exit_clean(c, timeout_s, "kopt-agent --once");
    return kopt_test_now() - t0;
}

/* The JSON window lines of the child's log, each passed to fn (may be NULL). */
static int once_windows(const itest_child_t *c, void (*fn)(json_t *o, void *data), void *data)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen(c->log_path, "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        json_error_t err;
        json_t *o;

        if (line[0] != '{')
            continue; /* a --log-format text line */
        o = json_loads(line, 0, &err);
        if (!o)
            fail_msg("not JSON: %s (%s)", line, err.text);
        if (fn)
            fn(o, data);
        json_decref(o);
        n++;
    }
    fclose(f);
    return n;
}

static bool log_has(const itest_child_t *c, const char *text)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(c->log_path, "r");

    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* (e) --once --source cgroup on a root without pod cgroups: ends after one
 * 2 s window (plus a 500 ms tick of grace), prints no window and says so. */
static void once_empty_cgroup_root_says_nothing(void **state)
{
    itest_child_t *c = itest_child_new("kopt-itest-agent-once-empty", "once.log");
    char root[600], controllers[700], expect[700];
    const char *extra[] = {"--source", "cgroup", "--cgroup-root",     root,
                           "--window", "2s",     "--sample-interval", "500ms",
                           NULL};
    double took;
    FILE *f;

    (void)state;
    snprintf(root, sizeof(root), "%s/cgroup", c->dir); /* a v2 root, no kubepods */
    assert_int_equal(mkdir(root, 0755), 0);
    snprintf(controllers, sizeof(controllers), "%s/cgroup.controllers", root);
    f = fopen(controllers, "w");
    assert_non_null(f);
    fputs("cpu memory\n", f);
    fclose(f);
    took = once_run(c, extra, 10);
    fprintf(stderr, "  --once on an empty cgroup root ended after %.1f s\n", took);
    assert_true(took < 2 + 0.5 + 3);
    assert_int_equal(once_windows(c, NULL, NULL), 0);
    snprintf(expect, sizeof(expect), "no containers found under %s", root);
    assert_true(log_has(c, expect));
    itest_child_free(c);
}

typedef struct {
    int sh, others;
} exe_seen_t;

static void count_exe_group(json_t *o, void *data)
{
    exe_seen_t *seen = data;
    const char *name = json_string_value(json_object_get(o, "container"));

    assert_non_null(name);
    if (strcmp(name, "sh") == 0)
        seen->sh++;
    else
        seen->others++;
}

/* (f) --once beside a running agent: something listens on the default admin
 * port (or it is taken already), and --once, not asked to listen, still
 * works; the proc source without --proc-rules groups by executable, so the
 * busy /bin/sh child shows up as group "sh". */
static void once_beside_an_agent_groups_by_executable(void **state)
{
    itest_child_t *spin = spinner_start(),
                  *c = itest_child_new("kopt-itest-agent-once-exe", "once.log");
    const char *extra[] = {"--source",          "proc",  "--window", "2s",
                           "--sample-interval", "500ms", NULL};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7431)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    exe_seen_t seen = {0};

    (void)state;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        assert_int_equal(listen(fd, 4), 0);
    else
        fprintf(stderr, "  port 7431 is taken already: the same situation\n");
    once_run(c, extra, 15);
    close(fd);
    fprintf(stderr, "  %d window line(s) by executable\n", once_windows(c, count_exe_group, &seen));
    assert_true(seen.sh >= 1);
    assert_false(log_has(c, "admin server listening"));
    itest_child_free(c);
    itest_child_free(spin);
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
        cmocka_unit_test_teardown(outage_for_minutes_every_window_once, test_teardown),
        cmocka_unit_test_teardown(agent_kill9_replays_spool, test_teardown),
        cmocka_unit_test_teardown(once_prints_json_windows, test_teardown),
        cmocka_unit_test_teardown(once_empty_cgroup_root_says_nothing, test_teardown),
        cmocka_unit_test_teardown(once_beside_an_agent_groups_by_executable, test_teardown),
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
    if (getenv("KOPT_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("KOPT_TEST_SKIP"));
    failed = cmocka_run_group_tests(tests, make_certs, teardown_all);
    nats_Close();
    fprintf(stderr, "timing: test_agent %.3f s\n", kopt_test_now() - t0);
    return failed;
}
