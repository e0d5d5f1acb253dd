/* kopt-ingest, the real binary, against a real nats-server with JetStream:
 * batches pushed over mutual TLS land in KOPT_METRICS exactly once and are
 * acked only when stored; bad clients and bad batches get the right status
 * while good agents keep streaming; windows older than --max-batch-age are
 * left out of their batch and reported in the ack without ending the stream;
 * NATS dying mid-stream loses nothing that
 * was acked; SIGTERM drains. A Python client generated from the protos is run
 * too (test_ingest_python.py). Each test starts its own nats-server and
 * kopt-ingest, and checks the ingest log for sanitizer reports at the end.
 *
 * usage: test_ingest SRCDIR KOPT_INGEST PYTHON3 PY_SCRIPT [PROTO_INCLUDE_DIR...] */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "push_client.h"

#define STREAM "KOPT_METRICS"
#define CLUSTER "local" /* agent-local.pem: spiffe://kopt/cluster/local/agent/dev-agent */
#define AGENT "dev-agent"
#define NODE "node-1.example" /* subject token: node-1_example */
#define SUBJECT "kopt.metrics.local.node-1_example"

static const char *src_dir, *ingest_exe, *python_exe, *python_script;
static char *const *proto_dirs;
static int n_proto_dirs;
static char *certs_dir;

/* ------------------------------------------------------------------------ */
/* What a test owns (batches, clients, stream copies), freed by the per-test
 * teardown when a failed assertion longjmps out of the test, so LeakSanitizer
 * reports only real leaks. Servers are in the harness's registry instead. */

#define MAX_SCRATCH 32
static struct {
    void (*fn)(void *);
    void *arg;
} scratch[MAX_SCRATCH];
static int n_scratch;

static void scratch_push(void (*fn)(void *), void *arg)
{
    assert_true(n_scratch < MAX_SCRATCH);
    scratch[n_scratch].fn = fn;
    scratch[n_scratch++].arg = arg;
}

static void scratch_drop(void *arg)
{
    for (int i = n_scratch - 1; i >= 0; i--)
        if (scratch[i].arg == arg) {
            memmove(&scratch[i], &scratch[i + 1], (size_t)(n_scratch - i - 1) * sizeof(scratch[0]));
            n_scratch--;
            return;
        }
}

static int scratch_release(void **state)
{
    (void)state;
    while (n_scratch > 0) {
        n_scratch--;
        scratch[n_scratch].fn(scratch[n_scratch].arg);
    }
    return 0;
}

/* Per-test teardown: the test's objects, then any server it left running
 * (after a failed assertion), so the next test starts on a quiet machine. */
static int test_teardown(void **state)
{
    scratch_release(state);
    kopt_test_cleanup_all();
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */

/* A MetricBatch and the storage its pointers use, so a test can break one
 * field before packing. */
typedef struct {
    Kopt__V1__MetricBatch b;
    Google__Protobuf__Timestamp created;
    Kopt__V1__NodeFacts nf;
    Kopt__V1__ContainerWindow *w, **wp;
    Google__Protobuf__Timestamp *ts; /* 2 per window: start, end */
    char (*pods)[64];
} batch_t;

/* A packed batch as sent, kept to compare with what JetStream stored. */
typedef struct {
    uint64_t epoch, seq;
    uint8_t *data;
    size_t len;
} packed_t;

static void batch_init(batch_t *bt, const char *cluster, const char *agent, uint64_t epoch,
                       uint64_t seq, size_t n_windows)
{
    int64_t now = (int64_t)time(NULL);

    memset(bt, 0, sizeof(*bt));
    kopt__v1__metric_batch__init(&bt->b);
    google__protobuf__timestamp__init(&bt->created);
    kopt__v1__node_facts__init(&bt->nf);
    bt->created.seconds = now;
    bt->nf.cpu_capacity_cores = 8;
    bt->nf.cpu_allocatable_cores = 7.5;
    bt->nf.memory_capacity_bytes = 32ULL << 30;
    bt->b.cluster = (char *)cluster;
    bt->b.node = (char *)NODE;
    bt->b.agent_id = (char *)agent;
    bt->b.epoch = epoch;
    bt->b.seq = seq;
    bt->b.created = &bt->created;
    bt->b.node_facts = &bt->nf;
    bt->b.agent_version = (char *)"itest";
    bt->w = calloc(n_windows, sizeof(*bt->w));
    bt->wp = calloc(n_windows, sizeof(*bt->wp));
    bt->ts = calloc(2 * n_windows, sizeof(*bt->ts));
    bt->pods = calloc(n_windows, sizeof(*bt->pods));
    assert_true(n_windows == 0 || (bt->w && bt->wp && bt->ts && bt->pods));
    for (size_t i = 0; i < n_windows; i++) {
        Kopt__V1__ContainerWindow *w = &bt->w[i];
        Google__Protobuf__Timestamp *start = &bt->ts[2 * i], *end = &bt->ts[2 * i + 1];

        kopt__v1__container_window__init(w);
        google__protobuf__timestamp__init(start);
        google__protobuf__timestamp__init(end);
        start->seconds = now - 120 - 60 * (int64_t)(i % 50);
        end->seconds = start->seconds + 60;
        snprintf(bt->pods[i], sizeof(bt->pods[i]), "web-%" PRIu64 "-%zu", seq, i);
        w->namespace_ = (char *)"shop";
        w->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
        w->workload_name = (char *)"web";
        w->pod = bt->pods[i];
        w->container = (char *)"app";
        w->window_start = start;
        w->window_end = end;
        w->cpu_usage_mean_cores = 0.1 + 0.001 * (double)i;
        w->cpu_usage_peak_cores = 2 * w->cpu_usage_mean_cores;
        w->memory_working_set_peak_bytes = (100ULL << 20) + seq + i;
        w->memory_working_set_last_bytes = 90ULL << 20;
        w->memory_rss_peak_bytes = 80ULL << 20;
        w->cpu_request_cores = 0.5;
        w->memory_request_bytes = 256ULL << 20;
        w->sample_count = 60;
        bt->wp[i] = w;
    }
    bt->b.n_windows = n_windows;
    bt->b.windows = bt->wp;
}

static void batch_pack(const batch_t *bt, packed_t *out)
{
    out->epoch = bt->b.epoch;
    out->seq = bt->b.seq;
    out->len = kopt__v1__metric_batch__get_packed_size(&bt->b);
    out->data = malloc(out->len);
    assert_non_null(out->data);
    kopt__v1__metric_batch__pack(&bt->b, out->data);
}

static void batch_free(batch_t *bt)
{
    free(bt->w);
    free(bt->wp);
    free(bt->ts);
    free(bt->pods);
}

/* A good batch of this test's agent, packed. */
static void make_good(packed_t *out, uint64_t epoch, uint64_t seq, size_t n_windows)
{
    batch_t bt;

    batch_init(&bt, CLUSTER, AGENT, epoch, seq, n_windows);
    batch_pack(&bt, out);
    batch_free(&bt);
}

static void packed_release(void *arg)
{
    packed_t *v = arg;

    for (size_t i = 0; v[i].data; i++)
        free(v[i].data);
    free(v);
}

/* n zeroed slots for packed batches (and a terminator), owned by the test. */
static packed_t *packed_new(size_t n)
{
    packed_t *v = calloc(n + 1, sizeof(*v));

    assert_non_null(v);
    scratch_push(packed_release, v);
    return v;
}

static void packed_free(packed_t *v)
{
    scratch_drop(v);
    packed_release(v);
}

static uint64_t new_epoch(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Child processes run to completion                                        */


/* ------------------------------------------------------------------------ */
/* kopt-ingest                                                              */

typedef struct {
    kopt_test_proc_t proc;
    int spawned;
    char *dir;
    char log_path[600];
    int port, admin_port;
    char target[64], admin_url[64];
} ingest_proc_t;

static void ingest_release(void *arg)
{
    ingest_proc_t *ing = arg;

    if (ing->spawned) {
        kopt_test_proc_release(&ing->proc);
        ing->spawned = 0;
    }
    if (ing->dir) {
        kopt_test_rmtree(ing->dir);
        free(ing->dir);
    }
    free(ing);
}

/* Through the cleanup registry, i.e. after a failed assertion: show why. */
static void ingest_cleanup(void *arg)
{
    ingest_proc_t *ing = arg;

    kopt_test_log_tail(ing->log_path, 40);
    ingest_release(ing);
}

static int ready_status(const ingest_proc_t *ing)
{
    char url[128];
    long status = 0;

    snprintf(url, sizeof(url), "%s/readyz", ing->admin_url);
    kopt_test_http(url, NULL, 1000, &status, NULL);
    return (int)status;
}

/* Waits until GET /readyz answers `want`; 0 or -ETIMEDOUT. */
static int wait_ready_status(const ingest_proc_t *ing, int want, int timeout_ms)
{
    double until = kopt_test_now() + timeout_ms / 1000.0;

    do {
        if (ready_status(ing) == want)
            return 0;
        usleep(50000);
    } while (kopt_test_now() < until);
    return -ETIMEDOUT;
}

/* Starts kopt-ingest with mutual TLS on free ports, talking to `nats`, plus
 * `extra` flags (NULL-terminated, may be NULL), and waits for /readyz 200. */
static ingest_proc_t *ingest_start(const kopt_test_nats_t *nats, const char *const *extra)
{
    ingest_proc_t *ing = calloc(1, sizeof(*ing));
    char listen[64], admin[64], ca[600], cert[600], key[600];
    const char *argv[48];
    int n, attempt;

    assert_non_null(ing);
    ing->dir = kopt_test_tmpdir("kopt-itest-ingest");
    assert_non_null(ing->dir);
    assert_int_equal(kopt_test_cleanup_push(ingest_cleanup, ing), 0);
    snprintf(ing->log_path, sizeof(ing->log_path), "%s/ingest.log", ing->dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
    /* A port can be taken between the probe and the bind: retry with new ones. */
    for (attempt = 0; attempt < 3; attempt++) {
        double t0 = kopt_test_now();

        do {
            ing->port = kopt_test_free_port();
            ing->admin_port = kopt_test_free_port();
        } while (ing->port == ing->admin_port);
        assert_true(ing->port > 0 && ing->admin_port > 0);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", ing->port);
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", ing->admin_port);
        snprintf(ing->target, sizeof(ing->target), "127.0.0.1:%d", ing->port);
        snprintf(ing->admin_url, sizeof(ing->admin_url), "http://127.0.0.1:%d", ing->admin_port);
        n = 0;
        argv[n++] = ingest_exe;
        argv[n++] = "--listen";
        argv[n++] = listen;
        argv[n++] = "--admin-listen";
        argv[n++] = admin;
        argv[n++] = "--nats-url";
        argv[n++] = nats->url;
        argv[n++] = "--tls-ca";
        argv[n++] = ca;
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
        argv[n++] = "--log-format";
        argv[n++] = "text";
        for (int i = 0; extra && extra[i] && n < 46; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        assert_int_equal(kopt_test_proc_spawn(&ing->proc, (char *const *)argv, NULL, ing->log_path),
                         0);
        ing->spawned = 1;
        while (kopt_test_proc_alive(&ing->proc) && kopt_test_now() - t0 < 15.0) {
            if (ready_status(ing) == 200) {
                fprintf(stderr, "kopt-ingest ready on %s (admin %d) in %.3f s; log %s\n",
                        ing->target, ing->admin_port, kopt_test_now() - t0, ing->log_path);
                return ing;
            }
            usleep(20000);
        }
        kopt_test_proc_kill9(&ing->proc);
        kopt_test_proc_release(&ing->proc);
        ing->spawned = 0;
        kopt_test_log_tail(ing->log_path, 20);
        if (!kopt_test_log_contains(ing->log_path, "in use"))
            break;
    }
    fail_msg("kopt-ingest did not become ready (log %s)", ing->log_path);
    return NULL;
}

static void assert_sanitizer_clean(const ingest_proc_t *ing)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer",
                                          "runtime error:", "ERROR: LeakSanitizer"};

    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
        if (kopt_test_log_contains(ing->log_path, reports[i])) {
            kopt_test_log_tail(ing->log_path, 120);
            fail_msg("kopt-ingest log has \"%s\"", reports[i]);
        }
}

/* Waits for kopt-ingest to exit on its own (up to timeout_ms) and checks
 * its exit code and log. Frees it. */
static void ingest_wait_exit(ingest_proc_t *ing, int want_code, int timeout_ms)
{
    double until = kopt_test_now() + timeout_ms / 1000.0;
    int st;

    while (kopt_test_proc_alive(&ing->proc) && kopt_test_now() < until)
        usleep(20000);
    if (ing->proc.pid) {
        kopt_test_log_tail(ing->log_path, 40);
        fail_msg("kopt-ingest did not exit within %d ms", timeout_ms);
    }
    assert_sanitizer_clean(ing); /* first: its report says more than the exit code */
    st = ing->proc.status;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != want_code) {
        kopt_test_log_tail(ing->log_path, 40);
        fail_msg("kopt-ingest ended with %s %d, want exit %d", WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), want_code);
    }
    assert_sanitizer_clean(ing);
    kopt_test_cleanup_forget(ing);
    ingest_release(ing);
}

/* SIGTERM, then as ingest_wait_exit(ing, 0, ...). */
static void ingest_stop(ingest_proc_t *ing)
{
    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGTERM), 0);
    ingest_wait_exit(ing, 0, 15000);
}

/* The value of one sample line of /metrics ("name{labels}"), or -1. */
static double metric(const ingest_proc_t *ing, const char *sample)
{
    return kopt_test_metric(ing->admin_url, sample);
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                  */

static void client_release(void *arg)
{
    kopt_push_client_free(arg);
}

/* who: "agent-local", "client" (service identity), "rogue-client" (another
 * CA), "no-cert" (trusts the CA, presents nothing), "plaintext". */
static kopt_push_client_t *client(const ingest_proc_t *ing, const char *who)
{
    char ca[600], cert[600], key[600];
    kopt_push_client_opts_t o = {.target = ing->target, .deadline_ms = 60000};
    kopt_push_client_t *c = NULL;

    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/%s.pem", certs_dir, who);
    snprintf(key, sizeof(key), "%s/%s-key.pem", certs_dir, who);
    if (strcmp(who, "plaintext") != 0)
        o.ca_path = ca;
    if (o.ca_path && strcmp(who, "no-cert") != 0) {
        o.cert_path = cert;
        o.key_path = key;
    }
    assert_int_equal(kopt_push_client_open(&o, &c), 0);
    scratch_push(client_release, c);
    return c;
}

static void client_free(kopt_push_client_t *c)
{
    scratch_drop(c);
    kopt_push_client_free(c);
}

static void expect_status(kopt_push_client_t *c, int code, const char *details_part)
{
    int got = kopt_push_client_status(c);

    if (got != code || (details_part && !strstr(kopt_push_client_details(c), details_part)))
        fail_msg("stream ended with %d \"%s\"; want %d with \"%s\"", got,
                 kopt_push_client_details(c), code, details_part ? details_part : "");
    fprintf(stderr, "  status %d: %s\n", got, kopt_push_client_details(c));
}

/* ------------------------------------------------------------------------ */
/* KOPT_METRICS, read with a plain nats.c connection                        */

typedef struct {
    char id[160], subject[160];
    uint8_t *data;
    int len;
} stored_t;

typedef struct {
    stored_t *v;
    size_t n;
    uint64_t msgs; /* State.Msgs */
} stored_list_t;

static void stored_release(void *arg)
{
    stored_list_t *l = arg;

    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
    free(l);
}

static void stored_free(stored_list_t *l)
{
    scratch_drop(l);
    stored_release(l);
}

/* Every message of KOPT_METRICS; the caller frees it with stored_free(). */
static stored_list_t *stream_read(const kopt_test_nats_t *nats)
{
    stored_list_t *out = calloc(1, sizeof(*out));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t first, last;

    assert_non_null(out);
    scratch_push(stored_release, out);
    assert_int_equal(natsConnection_ConnectTo(&nc, nats->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, STREAM, NULL, &jerr), NATS_OK);
    out->msgs = si->State.Msgs;
    first = si->State.FirstSeq;
    last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    out->v = calloc(out->msgs + 1, sizeof(*out->v));
    assert_non_null(out->v);
    for (uint64_t seq = first; out->msgs > 0 && seq <= last; seq++) {
        natsMsg *m = NULL;
        const char *id = NULL;
        stored_t *s;
        natsStatus st = js_GetMsg(&m, js, STREAM, seq, NULL, &jerr);

        if (st == NATS_NOT_FOUND)
            continue;
        assert_int_equal(st, NATS_OK);
        assert_true(out->n < out->msgs);
        s = &out->v[out->n++];
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
        snprintf(s->subject, sizeof(s->subject), "%s", natsMsg_GetSubject(m));
        s->len = natsMsg_GetDataLength(m);
        s->data = malloc((size_t)s->len + 1);
        memcpy(s->data, natsMsg_GetData(m), (size_t)s->len);
        natsMsg_Destroy(m);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return out;
}

static uint64_t stream_msgs(const kopt_test_nats_t *nats)
{
    stored_list_t *l = stream_read(nats);
    uint64_t n = l->msgs;

    stored_free(l);
    return n;
}

/* How often <agent>/<epoch>/<seq> is in the stream; checks subject and
 * payload against `want` when given. */
static int stored_count(const stored_list_t *l, const char *agent, uint64_t epoch, uint64_t seq,
                        const packed_t *want)
{
    char id[160];
    int n = 0;

    snprintf(id, sizeof(id), "%s/%" PRIu64 "/%" PRIu64, agent, epoch, seq);
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].id, id) != 0)
            continue;
        n++;
        if (want) {
            assert_string_equal(l->v[i].subject, SUBJECT);
            assert_int_equal(l->v[i].len, want->len);
            assert_memory_equal(l->v[i].data, want->data, want->len);
        }
    }
    return n;
}

/* Every batch in `sent` is in the stream exactly once, byte for byte. */
static void assert_stored_once(const stored_list_t *l, const packed_t *sent, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = stored_count(l, AGENT, sent[i].epoch, sent[i].seq, &sent[i]);

        if (c != 1)
            fail_msg("%s/%" PRIu64 "/%" PRIu64 " is stored %d times, want once", AGENT,
                     sent[i].epoch, sent[i].seq, c);
    }
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */

static kopt_test_nats_t *nats_or_skip(void)
{
    kopt_test_nats_t *nats = NULL;
    int r = kopt_test_nats_start(&nats, NULL);

    if (r == -ENOENT)
        skip(); /* nats-server is not installed */
    assert_int_equal(r, 0);
    return nats;
}

/* Sends sent[from..to) on c, each within timeout. */
static void send_all(kopt_push_client_t *c, const packed_t *sent, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        int r = kopt_push_client_send(c, sent[i].data, sent[i].len, 5000);

        if (r != 0)
            fail_msg("send of seq %" PRIu64 " failed: %d (status %d \"%s\")", sent[i].seq, r,
                     kopt_push_client_status(c), kopt_push_client_details(c));
    }
}

/* ------------------------------------------------------------------------ */
/* 1. Exactly once, cumulative acks, dedupe on re-send                      */

static void batches_stored_once_and_resend_is_deduplicated(void **state)
{
    enum { N = 200, WINDOWS = 50 };
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    packed_t *sent = packed_new(N);
    kopt_push_client_t *c;
    stored_list_t *l;
    double t0;

    (void)state;
    for (size_t i = 0; i < N; i++)
        make_good(&sent[i], epoch, i + 1, WINDOWS);

    t0 = kopt_test_now();
    c = client(ing, "agent-local");
    send_all(c, sent, 0, N);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, N, 15000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    fprintf(stderr, "  %d batches (%zu bytes each) acked in %.3f s with %zu PushAcks\n", N,
            sent[0].len, kopt_test_now() - t0, kopt_push_client_n_acks(c));
    assert_int_equal(kopt_push_client_acked(c, epoch), N);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    assert_int_equal(kopt_push_client_n_rejections(c), 0);
    assert_true(kopt_push_client_n_acks(c) >= 1 && kopt_push_client_n_acks(c) <= N);
    client_free(c);

    l = stream_read(nats);
    assert_int_equal(l->msgs, N);
    assert_stored_once(l, sent, N);
    stored_free(l);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"stored\"}") == N);
    assert_true(metric(ing, "kopt_ingest_windows_total") == N * WINDOWS);

    /* The same ids again on a new stream: acked, stored once. */
    c = client(ing, "agent-local");
    send_all(c, sent, 0, N);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, N, 15000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    assert_int_equal(kopt_push_client_n_rejections(c), 0);
    client_free(c);
    assert_int_equal(stream_msgs(nats), N);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"duplicate\"}") == N);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"stored\"}") == N);
    assert_true(metric(ing, "kopt_ingest_windows_total") == N * WINDOWS);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* ------------------------------------------------------------------------ */
/* 2. Who may push                                                          */

/* Opens a stream as `who`, offers one good batch and returns the status. */
static kopt_push_client_t *try_push(const ingest_proc_t *ing, const char *who, uint64_t epoch)
{
    kopt_push_client_t *c = client(ing, who);
    packed_t b;

    make_good(&b, epoch, 1, 3);
    kopt_push_client_send(c, b.data, b.len, 5000); /* may fail: the stream may be over */
    free(b.data);
    if (kopt_push_client_finish(c, 10000) < 0)
        fail_msg("%s: no status within 10 s", who);
    assert_int_equal(kopt_push_client_acked(c, epoch), 0);
    return c;
}

static void refusals_by_identity(void **state)
{
    static const char *const handshake_refused[] = {"plaintext", "no-cert", "rogue-client"};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    kopt_push_client_t *c;
    const kopt_push_rejection_t *rej;
    packed_t *good = packed_new(1), *bad = packed_new(2);
    batch_t bt;
    stored_list_t *l;

    (void)state;
    /* No mutual TLS, no stream: the handshake fails (docs/stack-facts.md,
     * 'gRPC: what a refused client sees'). */
    for (size_t i = 0; i < 3; i++) {
        fprintf(stderr, "  %s client:\n", handshake_refused[i]);
        c = try_push(ing, handshake_refused[i], epoch);
        expect_status(c, GRPC_STATUS_UNAVAILABLE, NULL);
        client_free(c);
    }

    /* A valid certificate without an agent identity. */
    fprintf(stderr, "  service certificate:\n");
    c = try_push(ing, "client", epoch);
    expect_status(c, GRPC_STATUS_PERMISSION_DENIED, "agent identity");
    client_free(c);
    assert_int_equal(stream_msgs(nats), 0);

    /* The agent of cluster "local" writing for "other": acked as rejected. */
    fprintf(stderr, "  batch for another cluster:\n");
    c = client(ing, "agent-local");
    make_good(good, epoch, 1, 3);
    batch_init(&bt, "other", AGENT, epoch, 2, 3);
    batch_pack(&bt, &bad[0]);
    batch_free(&bt);
    assert_int_equal(kopt_push_client_send(c, good->data, good->len, 5000), 0);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 1, 10000), 0);
    kopt_push_client_send(c, bad[0].data, bad[0].len, 5000);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_PERMISSION_DENIED);
    expect_status(c, GRPC_STATUS_PERMISSION_DENIED, "\"other\"");
    assert_int_equal(kopt_push_client_acked(c, epoch), 2);
    assert_int_equal(kopt_push_client_n_rejections(c), 1);
    rej = kopt_push_client_rejection(c, 0);
    assert_int_equal(rej->epoch, epoch);
    assert_int_equal(rej->seq, 2);
    assert_int_equal(rej->reason, KOPT__V1__REJECT_REASON__REJECT_REASON_PERMISSION_DENIED);
    assert_non_null(strstr(rej->message, "other"));
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);

    /* ... and for another agent id of the right cluster. */
    fprintf(stderr, "  batch for another agent id:\n");
    c = client(ing, "agent-local");
    batch_init(&bt, CLUSTER, "someone-else", epoch + 1, 1, 3);
    batch_pack(&bt, &bad[1]);
    batch_free(&bt);
    kopt_push_client_send(c, bad[1].data, bad[1].len, 5000);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_PERMISSION_DENIED);
    expect_status(c, GRPC_STATUS_PERMISSION_DENIED, "someone-else");
    assert_int_equal(kopt_push_client_acked(c, epoch + 1), 1);
    assert_int_equal(kopt_push_client_n_rejections(c), 1);
    assert_int_equal(kopt_push_client_rejection(c, 0)->reason,
                     KOPT__V1__REJECT_REASON__REJECT_REASON_PERMISSION_DENIED);
    client_free(c);
    packed_free(bad);

    l = stream_read(nats);
    assert_int_equal(l->msgs, 1);
    assert_stored_once(l, good, 1);
    stored_free(l);
    packed_free(good);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"no_identity\"}") == 1);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"permission_denied\"}") == 2);
    fprintf(stderr, "  ingest log %s the handshake failures\n",
            kopt_test_log_contains(ing->log_path, "handshake failed") ? "shows" : "does not show");
    /* The refused handshakes did not hurt: ingest still serves. */
    assert_int_equal(ready_status(ing), 200);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
}

/* ------------------------------------------------------------------------ */
/* 3. Bad batches on their streams; a good agent streams on regardless     */

typedef enum {
    BAD_MALFORMED,
    BAD_OVERSIZED,
    BAD_NAN,
    BAD_WINDOW_ORDER,
    BAD_SEQ_ORDER,
    N_BAD
} bad_kind_t;

static void push_bad(const ingest_proc_t *ing, bad_kind_t kind, uint64_t epoch)
{
    static const uint8_t malformed[] = {0x0a, 0x7f, 'l', 'o', 'c'}; /* field 1, 127 bytes: 3 */
    kopt_push_client_t *c = client(ing, "agent-local");
    packed_t *p = packed_new(2);
    batch_t bt;

    switch (kind) {
    case BAD_MALFORMED:
        fprintf(stderr, "  malformed bytes:\n");
        kopt_push_client_send(c, malformed, sizeof(malformed), 5000);
        assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_INVALID_ARGUMENT);
        expect_status(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed MetricBatch");
        break;
    case BAD_OVERSIZED:
        fprintf(stderr, "  oversized batch:\n");
        make_good(p, epoch, 1, 1000); /* ~100 KB against --max-batch-bytes 64KiB */
        assert_true(p->len > 65536);
        kopt_push_client_send(c, p->data, p->len, 5000);
        /* Refused in the ack; the stream goes on (oversized_batch_...). */
        assert_int_equal(kopt_push_client_wait_acked(c, epoch, 1, 10000), 0);
        assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
        assert_int_equal(kopt_push_client_n_rejections(c), 1);
        assert_non_null(strstr(kopt_push_client_rejection(c, 0)->message, "at most 65536"));
        break;
    case BAD_NAN:
    case BAD_WINDOW_ORDER:
        fprintf(stderr, "  %s:\n", kind == BAD_NAN ? "NaN cpu" : "window_end before start");
        batch_init(&bt, CLUSTER, AGENT, epoch, 1, 10);
        if (kind == BAD_NAN)
            bt.w[3].cpu_usage_mean_cores = NAN;
        else
            bt.ts[2 * 0 + 1].seconds = bt.ts[0].seconds - 30;
        batch_pack(&bt, p);
        batch_free(&bt);
        kopt_push_client_send(c, p->data, p->len, 5000);
        assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_INVALID_ARGUMENT);
        expect_status(c, GRPC_STATUS_INVALID_ARGUMENT,
                      kind == BAD_NAN ? "windows[3].cpu_usage_mean_cores"
                                      : "windows[0]: window_end is not after window_start");
        /* A poison batch is settled with a rejection, so the agent drops it. */
        assert_int_equal(kopt_push_client_acked(c, epoch), 1);
        assert_int_equal(kopt_push_client_n_rejections(c), 1);
        assert_int_equal(kopt_push_client_rejection(c, 0)->seq, 1);
        assert_int_equal(kopt_push_client_rejection(c, 0)->reason,
                         KOPT__V1__REJECT_REASON__REJECT_REASON_INVALID);
        break;
    case BAD_SEQ_ORDER:
        /* Seq 1 is stored; seq 1 again on the same stream is a client bug. */
        fprintf(stderr, "  seq repeated on one stream:\n");
        make_good(p, epoch, 1, 3);
        assert_int_equal(kopt_push_client_send(c, p->data, p->len, 5000), 0);
        assert_int_equal(kopt_push_client_wait_acked(c, epoch, 1, 10000), 0);
        kopt_push_client_send(c, p->data, p->len, 5000);
        assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_INVALID_ARGUMENT);
        expect_status(c, GRPC_STATUS_INVALID_ARGUMENT, "seqs must increase");
        assert_int_equal(kopt_push_client_acked(c, epoch), 1);
        assert_int_equal(kopt_push_client_n_rejections(c), 0);
        break;
    default:
        fail();
    }
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);
    packed_free(p);
}

static void bad_batches_refused_while_good_agent_streams(void **state)
{
    enum { STEP = 20, N = STEP * (N_BAD + 1) };
    static const char *const flags[] = {"--max-batch-bytes", "64KiB", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch();
    packed_t *sent = packed_new(N);
    kopt_push_client_t *good;
    stored_list_t *l;

    (void)state;
    for (size_t i = 0; i < N; i++)
        make_good(&sent[i], epoch, i + 1, 10);
    good = client(ing, "agent-local");
    send_all(good, sent, 0, STEP);
    for (int k = 0; k < N_BAD; k++) {
        /* Bad streams open and end while the good one is open. */
        push_bad(ing, (bad_kind_t)k, epoch + 1 + (uint64_t)k);
        send_all(good, sent, (size_t)(k + 1) * STEP, (size_t)(k + 2) * STEP);
        kopt_push_client_poll(good, 0);
        assert_int_equal(kopt_push_client_status(good), -1);
    }
    assert_int_equal(kopt_push_client_wait_acked(good, epoch, N, 15000), 0);
    assert_int_equal(kopt_push_client_finish(good, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_n_rejections(good), 0);
    assert_int_equal(kopt_push_client_ack_errors(good), 0);
    client_free(good);

    /* The good agent's batches, and seq 1 of the repeated-seq stream. */
    l = stream_read(nats);
    assert_int_equal(l->msgs, N + 1);
    assert_stored_once(l, sent, N);
    assert_int_equal(stored_count(l, AGENT, epoch + 1 + BAD_SEQ_ORDER, 1, NULL), 1);
    stored_free(l);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"malformed\"}") == 1);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"too_large\"}") == 1);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"bad_number\"}") == 1);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"bad_time\"}") == 1);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* A batch over --max-batch-bytes can never be stored: like any poison batch
 * it must be settled with a rejection (REJECT_REASON_TOO_LARGE, docs/api.md),
 * or the agent re-sends it forever. The batch is refused, not the agent:
 * the stream goes on. */
static void oversized_batch_is_settled_as_too_large(void **state)
{
    static const char *const flags[] = {"--max-batch-bytes", "64KiB", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch();
    kopt_push_client_t *c;
    const kopt_push_rejection_t *rej;
    packed_t *good = packed_new(2), *big = packed_new(1);

    (void)state;
    make_good(&good[0], epoch, 1, 3);
    make_good(big, epoch, 2, 1000);
    make_good(&good[1], epoch, 3, 3);
    c = client(ing, "agent-local");
    assert_int_equal(kopt_push_client_send(c, good[0].data, good[0].len, 5000), 0);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 1, 10000), 0);
    assert_int_equal(kopt_push_client_send(c, big->data, big->len, 5000), 0);
    assert_int_equal(kopt_push_client_send(c, good[1].data, good[1].len, 5000), 0);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 3, 10000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    if (kopt_push_client_acked(c, epoch) != 3 || kopt_push_client_n_rejections(c) != 1)
        fail_msg("oversized seq 2: acked through %" PRIu64 " with %zu rejections; want acked "
                 "through 3 with a TOO_LARGE rejection, else the agent re-sends it forever",
                 kopt_push_client_acked(c, epoch), kopt_push_client_n_rejections(c));
    rej = kopt_push_client_rejection(c, 0);
    assert_int_equal(rej->seq, 2);
    assert_int_equal(rej->reason, KOPT__V1__REJECT_REASON__REJECT_REASON_TOO_LARGE);
    assert_non_null(strstr(rej->message, "at most 65536"));
    client_free(c);
    assert_int_equal(stream_msgs(nats), 2);
    packed_free(good);
    packed_free(big);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
}

/* ------------------------------------------------------------------------ */
/* 3b. Windows older than --max-batch-age: left out, reported, stream goes on */

#define DAY 86400

/* The one window refusal for (epoch, seq) that c received; it came in an
 * ack that covers the batch (the first one that does, by the contract). */
static const kopt_push_window_refusal_t *refusal_for(const kopt_push_client_t *c, uint64_t epoch,
                                                     uint64_t seq)
{
    const kopt_push_window_refusal_t *found = NULL;

    for (size_t i = 0; i < kopt_push_client_n_window_refusals(c); i++) {
        const kopt_push_window_refusal_t *r = kopt_push_client_window_refusal(c, i);

        if (r->epoch != epoch || r->seq != seq)
            continue;
        if (found)
            fail_msg("seq %" PRIu64 " has two window refusals", seq);
        found = r;
    }
    if (!found)
        fail_msg("seq %" PRIu64 " has no window refusal", seq);
    fprintf(stderr, "  seq %" PRIu64 ": %u refused, %u stored: %s\n", seq, found->windows_refused,
            found->windows_stored, found->message);
    assert_int_equal(found->reason, KOPT__V1__REJECT_REASON__REJECT_REASON_TOO_OLD);
    assert_true(found->ack_epoch == epoch && found->ack_through_seq >= seq);
    return found;
}

/* Makes window i of bt start `age` seconds ago (a minute long). */
static void window_age(batch_t *bt, size_t i, int64_t now, int64_t age)
{
    bt->ts[2 * i].seconds = now - age;
    bt->ts[2 * i + 1].seconds = now - age + 60;
}

/* What an agent replaying an old spool sends (the default --max-batch-age is
 * 14 days): a batch with some windows 15 days old is stored without them, a
 * batch with only old windows or created 15 days ago is settled with nothing
 * stored; each is reported in the ack (WindowRefusal, REJECT_REASON_TOO_OLD)
 * and counted, and the stream goes on. Re-sending is still deduplicated; a
 * window from the future still makes its batch INVALID. */
static void old_windows_left_out_while_the_stream_goes_on(void **state)
{
    static const size_t old_ones[] = {2, 5, 7}; /* of seq 2's 10 windows */
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    int64_t now = (int64_t)time(NULL);
    enum { BURST = 80 };
    packed_t *sent = packed_new(6), *future = packed_new(1), *burst = packed_new(BURST + 2);
    double received, until;
    uint64_t held;
    int got_all;
    kopt_push_client_t *c;
    const kopt_push_window_refusal_t *r;
    Kopt__V1__MetricBatch *got;
    stored_list_t *l;
    batch_t bt;
    size_t n;

    (void)state;
    make_good(&sent[0], epoch, 1, 5);
    batch_init(&bt, CLUSTER, AGENT, epoch, 2, 10);
    for (size_t i = 0; i < 3; i++)
        window_age(&bt, old_ones[i], now, 15 * DAY + 60 * (int64_t)i);
    batch_pack(&bt, &sent[1]);
    batch_free(&bt);
    batch_init(&bt, CLUSTER, AGENT, epoch, 3, 4); /* every window 20 days old */
    for (size_t i = 0; i < 4; i++)
        window_age(&bt, i, now, 20 * DAY + 60 * (int64_t)i);
    batch_pack(&bt, &sent[2]);
    batch_free(&bt);
    batch_init(&bt, CLUSTER, AGENT, epoch, 4, 6); /* made 15 days ago, spooled since */
    bt.created.seconds = now - 15 * DAY;
    for (size_t i = 0; i < 6; i++)
        window_age(&bt, i, now, 15 * DAY + 60 * (int64_t)(i + 1));
    batch_pack(&bt, &sent[3]);
    batch_free(&bt);
    make_good(&sent[4], epoch, 5, 3);
    make_good(&sent[5], epoch, 6, 2);

    c = client(ing, "agent-local");
    send_all(c, sent, 0, 5);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 5, 10000), 0);
    kopt_push_client_poll(c, 200);
    assert_int_equal(kopt_push_client_status(c), -1); /* old windows did not end it */
    assert_int_equal(kopt_push_client_n_rejections(c), 0);
    assert_int_equal(kopt_push_client_n_window_refusals(c), 3);
    r = refusal_for(c, epoch, 2);
    assert_true(r->windows_refused == 3 && r->windows_stored == 7);
    assert_non_null(strstr(r->message, "3 of 10 windows start more than 1209600 s ago"));
    r = refusal_for(c, epoch, 3);
    assert_true(r->windows_refused == 4 && r->windows_stored == 0);
    assert_non_null(strstr(r->message, "nothing stored"));
    r = refusal_for(c, epoch, 4);
    assert_true(r->windows_refused == 6 && r->windows_stored == 0);
    assert_non_null(strstr(r->message, "batch created longer ago than the 1209600 s accepted"));
    assert_true(metric(ing, "kopt_ingest_windows_refused_total{reason=\"too_old\"}") == 13);

    /* The stream keeps working: the next batch is stored and acked. */
    send_all(c, sent, 5, 6);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 6, 10000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_n_window_refusals(c), 3);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);

    /* JetStream: 1, 5 and 6 as sent; 2 without its old windows; not 3, 4. */
    l = stream_read(nats);
    assert_int_equal(l->msgs, 4);
    assert_stored_once(l, &sent[0], 1);
    assert_stored_once(l, &sent[4], 2);
    assert_int_equal(stored_count(l, AGENT, epoch, 2, NULL), 1);
    assert_int_equal(stored_count(l, AGENT, epoch, 3, NULL), 0);
    assert_int_equal(stored_count(l, AGENT, epoch, 4, NULL), 0);
    for (size_t i = 0; i < l->n; i++) {
        char id[160];

        snprintf(id, sizeof(id), "%s/%" PRIu64 "/2", AGENT, epoch);
        if (strcmp(l->v[i].id, id) != 0)
            continue;
        assert_string_equal(l->v[i].subject, SUBJECT);
        got = kopt__v1__metric_batch__unpack(NULL, (size_t)l->v[i].len, l->v[i].data);
        assert_non_null(got);
        n = got->n_windows;
        /* The young windows in their order: pods web-2-0, 1, 3, 4, 6, 8, 9. */
        if (n != 7 || strcmp(got->windows[2]->pod, "web-2-3") != 0 ||
            strcmp(got->windows[6]->pod, "web-2-9") != 0 || got->seq != 2 || !got->node_facts) {
            kopt__v1__metric_batch__free_unpacked(got, NULL);
            fail_msg("seq 2 stored with %zu windows, want the 7 young ones", n);
        }
        for (size_t k = 0; k < n; k++)
            assert_true(got->windows[k]->window_start->seconds > now - 14 * DAY);
        kopt__v1__metric_batch__free_unpacked(got, NULL);
    }
    stored_free(l);
    assert_true(metric(ing, "kopt_ingest_windows_total") == 5 + 7 + 3 + 2);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"stored\"}") == 4);

    /* Seq 2 again (its ack lost, say): reported again, stored once. */
    c = client(ing, "agent-local");
    send_all(c, sent, 1, 2);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, 2, 10000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(refusal_for(c, epoch, 2)->windows_refused, 3);
    client_free(c);
    assert_int_equal(stream_msgs(nats), 4);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"duplicate\"}") == 1);
    assert_true(metric(ing, "kopt_ingest_windows_refused_total{reason=\"too_old\"}") == 16);

    /* 80 old batches held behind a good one whose PubAck waits (NATS frozen):
     * once it comes, they all settle at once, more than one ack may report
     * (32). Every one is reported in an ack that covers it, and the stream
     * goes on. */
    make_good(&burst[0], epoch + 2, 1, 1);
    for (uint64_t seq = 2; seq <= BURST + 1; seq++) {
        batch_init(&bt, CLUSTER, AGENT, epoch + 2, seq, 1);
        window_age(&bt, 0, now, 15 * DAY);
        batch_pack(&bt, &burst[seq - 1]);
        batch_free(&bt);
    }
    make_good(&burst[BURST + 1], epoch + 2, BURST + 2, 1);
    received = metric(ing, "kopt_ingest_received_bytes_total");
    for (size_t i = 0; i <= BURST; i++)
        received += (double)burst[i].len;
    c = client(ing, "agent-local");
    assert_int_equal(kopt_test_proc_signal(&nats->proc, SIGSTOP), 0);
    send_all(c, burst, 0, BURST + 1);
    until = kopt_test_now() + 10;
    while (metric(ing, "kopt_ingest_received_bytes_total") < received && kopt_test_now() < until)
        usleep(20000);
    held = kopt_push_client_acked(c, epoch + 2);
    got_all = metric(ing, "kopt_ingest_received_bytes_total") >= received;
    assert_int_equal(kopt_test_proc_signal(&nats->proc, SIGCONT), 0);
    assert_int_equal(held, 0); /* nothing settled while seq 1 waits */
    assert_true(got_all);
    send_all(c, burst, BURST + 1, BURST + 2);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch + 2, BURST + 2, 10000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_n_window_refusals(c), BURST);
    for (uint64_t seq = 2; seq <= BURST + 1; seq++)
        assert_int_equal(refusal_for(c, epoch + 2, seq)->windows_stored, 0);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);
    assert_int_equal(stream_msgs(nats), 6);
    assert_true(metric(ing, "kopt_ingest_windows_refused_total{reason=\"too_old\"}") == 16 + BURST);

    /* A window an hour ahead is not old data but a wrong clock: the batch is
     * INVALID, as before, and that still ends the stream. */
    batch_init(&bt, CLUSTER, AGENT, epoch + 1, 1, 3);
    window_age(&bt, 1, now, -3600);
    batch_pack(&bt, future);
    batch_free(&bt);
    c = client(ing, "agent-local");
    kopt_push_client_send(c, future->data, future->len, 5000);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_INVALID_ARGUMENT);
    expect_status(c, GRPC_STATUS_INVALID_ARGUMENT, "windows[1].window_start");
    assert_int_equal(kopt_push_client_n_rejections(c), 1);
    assert_int_equal(kopt_push_client_rejection(c, 0)->reason,
                     KOPT__V1__REJECT_REASON__REJECT_REASON_INVALID);
    assert_int_equal(kopt_push_client_n_window_refusals(c), 0);
    client_free(c);
    assert_int_equal(stream_msgs(nats), 6);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"bad_time\"}") == 1);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
    packed_free(future);
    packed_free(burst);
}

/* An agent over its rate: RESOURCE_EXHAUSTED with kopt-retry-after-ms, and
 * what was acked before is stored. */
static void rate_limit_ends_stream_with_retry_after(void **state)
{
    enum { N = 40, BURST = 5 };
    static const char *const flags[] = {"--rate-batches", "5", "--rate-burst-batches", "5", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch(), acked;
    packed_t *sent = packed_new(N);
    kopt_push_client_t *c;
    stored_list_t *l;
    char retry[32];
    long retry_ms;

    (void)state;
    for (size_t i = 0; i < N; i++)
        make_good(&sent[i], epoch, i + 1, 3);
    c = client(ing, "agent-local");
    for (size_t i = 0; i < N; i++)
        if (kopt_push_client_send(c, sent[i].data, sent[i].len, 5000) < 0)
            break; /* the stream ended */
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_RESOURCE_EXHAUSTED);
    expect_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "rate limit");
    kopt_push_client_trailer(c, "kopt-retry-after-ms", retry, sizeof(retry));
    retry_ms = strtol(retry, NULL, 10);
    fprintf(stderr, "  kopt-retry-after-ms: \"%s\"\n", retry);
    assert_true(retry_ms > 0 && retry_ms <= 1000);
    acked = kopt_push_client_acked(c, epoch);
    assert_true(acked >= BURST && acked < N);
    assert_int_equal(kopt_push_client_n_rejections(c), 0);
    client_free(c);
    l = stream_read(nats);
    assert_int_equal(l->msgs, acked);
    assert_stored_once(l, sent, (size_t)acked);
    stored_free(l);
    assert_true(metric(ing, "kopt_ingest_rate_limited_total") == 1);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* ------------------------------------------------------------------------ */
/* Issue 15: limits an attacker with one good certificate must not escape   */

/* nats-server refuses messages over its max_payload (1 MiB by default),
 * far below --max-batch-bytes (4 MiB). A batch between the two can never be
 * stored: ingest learns max_payload from the server and settles such a batch
 * with a TOO_LARGE rejection, logged once, and the stream goes on. Before,
 * it ended the stream with UNAVAILABLE "re-send from seq 2" and the agent
 * re-sent the batch for ever. */
static void batch_over_nats_max_payload_refused_and_stream_goes_on(void **state)
{
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    packed_t *sent = packed_new(4);
    const kopt_push_rejection_t *rej;
    kopt_push_client_t *c;

    (void)state;
    make_good(&sent[0], epoch, 1, 3);
    make_good(&sent[1], epoch, 2, 15000); /* over 1 MiB, under 4 MiB */
    make_good(&sent[2], epoch, 3, 3);
    make_good(&sent[3], epoch, 4, 15000);
    fprintf(stderr, "  big batches: %zu and %zu bytes\n", sent[1].len, sent[3].len);
    assert_true(sent[1].len > (1u << 20) + 65536 && sent[1].len < (4u << 20));
    c = client(ing, "agent-local");
    send_all(c, sent, 0, 4);
    if (kopt_push_client_wait_acked(c, epoch, 4, 15000) != 0)
        fail_msg("acked through %" PRIu64 ", status %d \"%s\"; want all 4 settled, the big ones "
                 "as TOO_LARGE, on the same stream",
                 kopt_push_client_acked(c, epoch), kopt_push_client_status(c),
                 kopt_push_client_details(c));
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_n_rejections(c), 2);
    for (size_t i = 0; i < 2; i++) {
        rej = kopt_push_client_rejection(c, i);
        fprintf(stderr, "  rejection seq %" PRIu64 ": %s\n", rej->seq, rej->message);
        assert_int_equal(rej->seq, 2 + 2 * i);
        assert_int_equal(rej->reason, KOPT__V1__REJECT_REASON__REJECT_REASON_TOO_LARGE);
        assert_non_null(strstr(rej->message, "max_payload"));
    }
    client_free(c);
    assert_int_equal(stream_msgs(nats), 2);
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"too_large\"}") == 2);
    assert_true(metric(ing, "kopt_ingest_batches_total{result=\"failed\"}") == 0);
    /* Logged once for the stream, counted every time. */
    assert_true(kopt_test_log_contains(ing->log_path, "later refusals of this stream are only"));
    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* A certificate for agent "dev-agent" may write as "dev-agent.<node>", but
 * its rate limit is the certificate's: rotating the suffix on every batch
 * must not give each batch a fresh bucket. Before, 30 of 30 went through a
 * limit of 1/s with a burst of 3. */
static void rate_limit_keyed_on_certificate_identity(void **state)
{
    enum { N = 30, BURST = 3 };
    static const char *const flags[] = {"--rate-batches", "1", "--rate-burst-batches", "3", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch(), acked;
    packed_t *sent = packed_new(N);
    char(*ids)[64] = calloc(N, sizeof(*ids));
    kopt_push_client_t *c;

    (void)state;
    assert_non_null(ids);
    for (size_t i = 0; i < N; i++) {
        batch_t bt;

        snprintf(ids[i], sizeof(ids[i]), AGENT ".rotated-%zu", i);
        batch_init(&bt, CLUSTER, ids[i], epoch, i + 1, 2);
        batch_pack(&bt, &sent[i]);
        batch_free(&bt);
    }
    free(ids);
    c = client(ing, "agent-local");
    for (size_t i = 0; i < N; i++)
        if (kopt_push_client_send(c, sent[i].data, sent[i].len, 5000) < 0)
            break; /* the stream ended */
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_RESOURCE_EXHAUSTED);
    expect_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "rate limit");
    acked = kopt_push_client_acked(c, epoch);
    fprintf(stderr, "  %" PRIu64 " of %d batches with rotating agent ids got through\n", acked, N);
    assert_true(acked >= BURST && acked <= BURST + 2);
    client_free(c);
    assert_int_equal(stream_msgs(nats), acked);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* A client of `who` whose first batch (cluster, agent, epoch, seq 1) was
 * acked: the stream holds a slot. */
static kopt_push_client_t *holding_stream(const ingest_proc_t *ing, const char *who,
                                          const char *cluster, uint64_t epoch)
{
    kopt_push_client_t *c = client(ing, who);
    batch_t bt;
    packed_t p;

    batch_init(&bt, cluster, AGENT, epoch, 1, 2);
    batch_pack(&bt, &p);
    batch_free(&bt);
    assert_int_equal(kopt_push_client_send(c, p.data, p.len, 5000), 0);
    free(p.data);
    return c;
}

/* One certificate must not hold every stream slot: past
 * --max-streams-per-agent (default 4) its streams are refused with a retry
 * hint, and another agent still gets in under --max-streams. Before, the
 * fifth stream of the same certificate was taken and the other agent got
 * RESOURCE_EXHAUSTED. */
static void streams_capped_per_certificate(void **state)
{
    enum { PER_AGENT = 4 };
    static const char *const flags[] = {"--max-streams", "6", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch();
    kopt_push_client_t *held[PER_AGENT], *extra, *other;
    char retry[32];

    (void)state;
    for (int i = 0; i < PER_AGENT; i++) {
        held[i] = holding_stream(ing, "agent-local", CLUSTER, epoch + (uint64_t)i);
        assert_int_equal(kopt_push_client_wait_acked(held[i], epoch + (uint64_t)i, 1, 10000), 0);
    }
    extra = holding_stream(ing, "agent-local", CLUSTER, epoch + PER_AGENT);
    if (kopt_push_client_wait_status(extra, 10000) != GRPC_STATUS_RESOURCE_EXHAUSTED)
        fail_msg("stream %d of one certificate: status %d \"%s\", acked %" PRIu64
                 "; want RESOURCE_EXHAUSTED (per-agent stream limit)",
                 PER_AGENT + 1, kopt_push_client_status(extra), kopt_push_client_details(extra),
                 kopt_push_client_acked(extra, epoch + PER_AGENT));
    expect_status(extra, GRPC_STATUS_RESOURCE_EXHAUSTED, "streams");
    kopt_push_client_trailer(extra, "kopt-retry-after-ms", retry, sizeof(retry));
    assert_true(strtol(retry, NULL, 10) > 0);
    client_free(extra);
    /* Its own epoch: Nats-Msg-Id has no cluster, so the same agent id, epoch
     * and seq in another cluster would be taken for a duplicate. */
    other = holding_stream(ing, "agent-other", "other", epoch + 100);
    if (kopt_push_client_wait_acked(other, epoch + 100, 1, 10000) != 0)
        fail_msg("another agent was shut out: status %d \"%s\"", kopt_push_client_status(other),
                 kopt_push_client_details(other));
    assert_int_equal(kopt_push_client_finish(other, 10000), GRPC_STATUS_OK);
    client_free(other);
    for (int i = 0; i < PER_AGENT; i++) {
        assert_int_equal(kopt_push_client_finish(held[i], 10000), GRPC_STATUS_OK);
        client_free(held[i]);
    }
    assert_true(metric(ing, "kopt_ingest_rejected_total{reason=\"agent_streams\"}") == 1);
    assert_int_equal(stream_msgs(nats), PER_AGENT + 1);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
}

/* A stream that sends nothing for --stream-idle-timeout is ended with
 * UNAVAILABLE (the agent reconnects when it has batches), and counted; one
 * that keeps sending is not. Before, idle streams held their slot for ever. */
static void idle_stream_ended_after_timeout(void **state)
{
    static const char *const flags[] = {"--stream-idle-timeout", "2s", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch();
    kopt_push_client_t *idle, *busy;
    packed_t *sent = packed_new(6);
    double t0;

    (void)state;
    for (size_t i = 0; i < 6; i++)
        make_good(&sent[i], epoch + 1, i + 1, 2);
    idle = holding_stream(ing, "agent-local", CLUSTER, epoch);
    assert_int_equal(kopt_push_client_wait_acked(idle, epoch, 1, 10000), 0);
    busy = client(ing, "agent-local");
    t0 = kopt_test_now();
    for (size_t i = 0; i < 6; i++) {
        send_all(busy, sent, i, i + 1);
        kopt_push_client_poll(idle, 800); /* 4.8 s in all */
    }
    if (kopt_push_client_wait_status(idle, 8000) != GRPC_STATUS_UNAVAILABLE)
        fail_msg("idle stream: status %d \"%s\" after %.1f s; want UNAVAILABLE for idleness",
                 kopt_push_client_status(idle), kopt_push_client_details(idle),
                 kopt_test_now() - t0);
    expect_status(idle, GRPC_STATUS_UNAVAILABLE, "idle");
    client_free(idle);
    assert_int_equal(kopt_push_client_wait_acked(busy, epoch + 1, 6, 10000), 0);
    assert_int_equal(kopt_push_client_status(busy), -1);
    assert_int_equal(kopt_push_client_finish(busy, 10000), GRPC_STATUS_OK);
    client_free(busy);
    assert_true(metric(ing, "kopt_ingest_streams_idle_ended_total") == 1);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* An agent that goes away with batches in flight (the call is cancelled)
 * must not disturb ingest: the publishes it left finish, nothing crashes, and
 * the agent's re-send on a new stream stores each batch once. */
static void cancelled_stream_with_batches_in_flight_is_harmless(void **state)
{
    enum { N = 300 };
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    packed_t *sent = packed_new(N);
    kopt_push_client_t *c;
    stored_list_t *l;
    double until;

    (void)state;
    for (size_t i = 0; i < N; i++)
        make_good(&sent[i], epoch, i + 1, 5);
    c = client(ing, "agent-local");
    send_all(c, sent, 0, N);
    client_free(c); /* cancels: acks and publishes still in flight */
    /* The stream goes, and the publishes it left get their PubAcks. */
    until = kopt_test_now() + 20;
    while ((metric(ing, "kopt_ingest_streams_open") != 0 ||
            metric(ing, "kopt_ingest_inflight_batches") != 0) &&
           kopt_test_now() < until)
        usleep(20000);
    assert_true(metric(ing, "kopt_ingest_streams_open") == 0);
    assert_true(metric(ing, "kopt_ingest_inflight_batches") == 0);
    assert_int_equal(ready_status(ing), 200);
    assert_true(stream_msgs(nats) <= N);

    c = client(ing, "agent-local");
    send_all(c, sent, 0, N);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, N, 15000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    client_free(c);
    l = stream_read(nats);
    assert_int_equal(l->msgs, N);
    assert_stored_once(l, sent, N);
    stored_free(l);
    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* ------------------------------------------------------------------------ */
/* 4. NATS killed while batches flow                                        */

static void nats_killed_mid_stream_loses_no_acked_batch(void **state)
{
    enum { MAX = 3000, BEFORE_KILL = 300 };
    static const char *const flags[] = {"--rate-batches", "0", "--publish-timeout", "2s", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch(), acked;
    packed_t *sent = packed_new(MAX);
    kopt_push_client_t *c, *late;
    stored_list_t *l;
    size_t n_sent = 0;
    double t0;

    (void)state;
    for (size_t i = 0; i < MAX; i++)
        make_good(&sent[i], epoch, i + 1, 5);
    c = client(ing, "agent-local");
    send_all(c, sent, 0, BEFORE_KILL);
    n_sent = BEFORE_KILL;
    assert_int_equal(kopt_test_nats_kill9(nats), 0);
    t0 = kopt_test_now();
    /* Some more while NATS is away, then look at /readyz. */
    while (n_sent < 2 * BEFORE_KILL &&
           kopt_push_client_send(c, sent[n_sent].data, sent[n_sent].len, 300) == 0)
        n_sent++;
    assert_int_equal(wait_ready_status(ing, 503, 5000), 0);
    fprintf(stderr, "  /readyz 503 %.3f s after the kill\n", kopt_test_now() - t0);
    /* Keep sending until ingest stops taking batches or ends the stream. */
    while (n_sent < MAX && kopt_push_client_send(c, sent[n_sent].data, sent[n_sent].len, 300) == 0)
        n_sent++;
    if (n_sent < MAX)
        n_sent++; /* the last send failed or is still in flight: it may have arrived */
    fprintf(stderr, "  sent %zu batches (%d before the kill), %.3f s after the kill\n", n_sent,
            BEFORE_KILL, kopt_test_now() - t0);
    late = client(ing, "agent-local");
    assert_int_equal(kopt_push_client_wait_status(late, 10000), GRPC_STATUS_UNAVAILABLE);
    expect_status(late, GRPC_STATUS_UNAVAILABLE, "JetStream");
    client_free(late);

    assert_int_equal(kopt_push_client_wait_status(c, 20000), GRPC_STATUS_UNAVAILABLE);
    expect_status(c, GRPC_STATUS_UNAVAILABLE, NULL);
    acked = kopt_push_client_acked(c, epoch);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    assert_int_equal(kopt_push_client_n_rejections(c), 0);
    fprintf(stderr, "  stream ended %.3f s after the kill; acked through %" PRIu64 " of %zu\n",
            kopt_test_now() - t0, acked, n_sent);
    assert_true(acked <= n_sent);
    client_free(c);

    assert_int_equal(kopt_test_nats_restart(nats), 0);
    assert_int_equal(wait_ready_status(ing, 200, 20000), 0);
    fprintf(stderr, "  /readyz 200 again %.3f s after the kill\n", kopt_test_now() - t0);

    /* Nothing acked is missing. */
    l = stream_read(nats);
    assert_stored_once(l, sent, (size_t)acked);
    fprintf(stderr, "  after restart: %" PRIu64 " stored, %" PRIu64 " acked\n", l->msgs, acked);
    stored_free(l);

    /* The agent re-sends everything it has: each batch ends up stored once. */
    c = client(ing, "agent-local");
    send_all(c, sent, 0, n_sent);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, n_sent, 20000), 0);
    assert_int_equal(kopt_push_client_finish(c, 10000), GRPC_STATUS_OK);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);
    l = stream_read(nats);
    assert_int_equal(l->msgs, n_sent);
    assert_stored_once(l, sent, n_sent);
    stored_free(l);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* ------------------------------------------------------------------------ */
/* 5. SIGTERM with batches in flight                                        */

static void sigterm_acks_inflight_batches_and_exits_0(void **state)
{
    enum { WARM = 20, INFLIGHT = 50, N = WARM + INFLIGHT };
    /* Long enough that the frozen publishes cannot time out on a slow box. */
    static const char *const flags[] = {"--publish-timeout", "60s", NULL};
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, flags);
    uint64_t epoch = new_epoch();
    packed_t *sent = packed_new(N);
    kopt_push_client_t *c;
    stored_list_t *l;
    double until;

    (void)state;
    for (size_t i = 0; i < N; i++)
        make_good(&sent[i], epoch, i + 1, 10);
    c = client(ing, "agent-local");
    send_all(c, sent, 0, WARM);
    assert_int_equal(kopt_push_client_wait_acked(c, epoch, WARM, 10000), 0);

    /* Freeze NATS so the next batches stay published but not confirmed. */
    assert_int_equal(kopt_test_proc_signal(&nats->proc, SIGSTOP), 0);
    send_all(c, sent, WARM, N);
    until = kopt_test_now() + 20;
    while (metric(ing, "kopt_ingest_inflight_batches") != INFLIGHT && kopt_test_now() < until)
        usleep(20000);
    if (metric(ing, "kopt_ingest_inflight_batches") != INFLIGHT) {
        kopt_test_proc_signal(&nats->proc, SIGCONT);
        fail_msg("kopt_ingest_inflight_batches is %g, want %d",
                 metric(ing, "kopt_ingest_inflight_batches"), INFLIGHT);
    }
    assert_int_equal(kopt_push_client_acked(c, epoch), WARM);

    assert_int_equal(kopt_test_proc_signal(&ing->proc, SIGTERM), 0);
    usleep(300000);
    /* Draining: it waits for the PubAcks instead of dropping them. */
    assert_int_equal(kopt_test_proc_alive(&ing->proc), 1);
    assert_int_equal(kopt_test_proc_signal(&nats->proc, SIGCONT), 0);

    assert_int_equal(kopt_push_client_wait_status(c, 15000), GRPC_STATUS_UNAVAILABLE);
    expect_status(c, GRPC_STATUS_UNAVAILABLE, "shutting down");
    assert_int_equal(kopt_push_client_acked(c, epoch), N);
    assert_int_equal(kopt_push_client_ack_errors(c), 0);
    client_free(c);
    ingest_wait_exit(ing, 0, 15000);

    l = stream_read(nats);
    assert_int_equal(l->msgs, N);
    assert_stored_once(l, sent, N);
    stored_free(l);
    kopt_test_nats_free(nats);
    packed_free(sent);
}

/* ------------------------------------------------------------------------ */
/* 6. A Python client made from the protos                                  */

static void python_client_pushes_over_mtls(void **state)
{
    enum { N = 20 };
    kopt_test_nats_t *nats = nats_or_skip();
    ingest_proc_t *ing = ingest_start(nats, NULL);
    uint64_t epoch = new_epoch();
    char epoch_s[32], log_path[700];
    const char *argv[64];
    stored_list_t *l;
    int n = 0, r;

    (void)state;
    snprintf(epoch_s, sizeof(epoch_s), "%" PRIu64, epoch);
    snprintf(log_path, sizeof(log_path), "%s/python.log", ing->dir);
    argv[n++] = python_exe;
    argv[n++] = python_script;
    argv[n++] = "--target";
    argv[n++] = ing->target;
    argv[n++] = "--certs";
    argv[n++] = certs_dir;
    argv[n++] = "--epoch";
    argv[n++] = epoch_s;
    argv[n++] = "--batches";
    argv[n++] = "20";
    for (int i = 0; i < n_proto_dirs && n < 60; i++) {
        argv[n++] = "-I";
        argv[n++] = proto_dirs[i];
    }
    argv[n] = NULL;
    r = kopt_test_proc_run((char *const *)argv, log_path, 90000);
    kopt_test_log_tail(log_path, 30);
    if (r == 77)
        skip(); /* no grpcio / grpc_tools for /usr/bin/python3 */
    assert_int_equal(r, 0);

    /* The Python batches are in the stream, once each, with ids we expect;
     * the rejected one (cluster mismatch) is not. Seq 1 of epoch + 3 lost
     * its 2 old windows: 3 of 5 are stored. */
    l = stream_read(nats);
    assert_int_equal(l->msgs, N + 3);
    for (uint64_t seq = 1; seq <= N; seq++)
        assert_int_equal(stored_count(l, AGENT, epoch, seq, NULL), 1);
    assert_int_equal(stored_count(l, AGENT, epoch + 1, 1, NULL), 1);
    assert_int_equal(stored_count(l, AGENT, epoch + 1, 2, NULL), 0);
    assert_int_equal(stored_count(l, AGENT, epoch + 3, 1, NULL), 1);
    assert_int_equal(stored_count(l, AGENT, epoch + 3, 2, NULL), 1);
    stored_free(l);
    assert_true(metric(ing, "kopt_ingest_windows_refused_total{reason=\"too_old\"}") == 2);
    assert_true(metric(ing, "kopt_ingest_windows_total") == 5 * N + 5 + 3 + 5);

    ingest_stop(ing);
    kopt_test_nats_free(nats);
}

/* ------------------------------------------------------------------------ */
/* 11. The NATS password is never printed (issue 15). It comes from a file:
 *     a --nats-url carrying one is refused (tests/integration/nats_auth). */

static void nats_password_never_printed(void **state)
{
    static const kopt_test_nats_opts_t auth = {
        .config_extra = "authorization { user: natsuser, password: NatsPw123 }\n"};
    kopt_test_nats_t *nats = NULL;
    ingest_proc_t *ing;
    char url[128], pw_file[700], *body = NULL;
    const char *extra[] = {"--nats-user", "natsuser", "--nats-password-file", pw_file, NULL};
    long status = 0;
    FILE *f;
    int r = kopt_test_nats_start(&nats, &auth);

    (void)state;
    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    snprintf(pw_file, sizeof(pw_file), "%s/nats-password", nats->dir);
    f = fopen(pw_file, "w");
    assert_non_null(f);
    fputs("NatsPw123\n", f);
    fclose(f);
    chmod(pw_file, 0600);
    ing = ingest_start(nats, extra);
    /* Lose NATS: the log says so, and so does /readyz, neither with the password. */
    assert_int_equal(kopt_test_nats_kill9(nats), 0);
    assert_int_equal(wait_ready_status(ing, 503, 5000), 0);
    snprintf(url, sizeof(url), "%s/readyz", ing->admin_url);
    assert_int_equal(kopt_test_http(url, NULL, 2000, &status, &body), 0);
    fprintf(stderr, "  /readyz %ld %s\n", status, body);
    assert_non_null(strstr(body, "not connected to NATS"));
    assert_null(strstr(body, "NatsPw123"));
    free(body);
    if (kopt_test_log_contains(ing->log_path, "NatsPw123")) {
        kopt_test_log_tail(ing->log_path, 40);
        fail_msg("the ingest log holds the NATS password");
    }
    ingest_stop(ing);
    kopt_test_nats_free(nats);
}

/* Its admin port taken: kopt-ingest says so and exits 1 at once, having
 * given back everything it made (the ASan run checks the leaks). */
static void admin_port_taken_exits_1(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    char grpc_addr[64], admin[64], log_path[700];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = kopt_test_free_port();
    char *dir = kopt_test_tmpdir("kopt-itest-ingest");
    const char *argv[] = {ingest_exe,   "--insecure",         "--listen",
                          grpc_addr,    "--admin-listen",     admin,
                          "--nats-url", "nats://127.0.0.1:1", NULL};

    (void)state;
    assert_non_null(dir);
    assert_true(fd >= 0 && port > 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(grpc_addr, sizeof(grpc_addr), "127.0.0.1:%d", port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(log_path, sizeof(log_path), "%s/ingest.log", dir);
    assert_int_equal(kopt_test_proc_run((char *const *)argv, log_path, 30000), 1);
    assert_true(kopt_test_log_contains(log_path, "admin server failed to start"));
    assert_false(kopt_test_log_contains(log_path, "Sanitizer"));
    close(fd);
    kopt_test_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------------------ */

static int make_certs(void **state)
{
    (void)state;
    char script[600], log_path[600];
    char *argv[] = {script, NULL, "--cluster", "other", NULL};

    certs_dir = kopt_test_tmpdir("kopt-itest-certs");
    if (!certs_dir || kopt_test_make_certs(src_dir, certs_dir) < 0)
        return -1;
    /* agent-other.pem: a second agent, spiffe://kopt/cluster/other/agent/dev-agent */
    snprintf(script, sizeof(script), "%s/scripts/certs", src_dir);
    snprintf(log_path, sizeof(log_path), "%s/certs-other.log", certs_dir);
    argv[1] = certs_dir;
    return kopt_test_proc_run(argv, log_path, 60000) == 0 ? 0 : -1;
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
        cmocka_unit_test_teardown(batches_stored_once_and_resend_is_deduplicated, test_teardown),
        cmocka_unit_test_teardown(refusals_by_identity, test_teardown),
        cmocka_unit_test_teardown(bad_batches_refused_while_good_agent_streams, test_teardown),
        cmocka_unit_test_teardown(oversized_batch_is_settled_as_too_large, test_teardown),
        cmocka_unit_test_teardown(old_windows_left_out_while_the_stream_goes_on, test_teardown),
        cmocka_unit_test_teardown(rate_limit_ends_stream_with_retry_after, test_teardown),
        cmocka_unit_test_teardown(batch_over_nats_max_payload_refused_and_stream_goes_on,
                                  test_teardown),
        cmocka_unit_test_teardown(rate_limit_keyed_on_certificate_identity, test_teardown),
        cmocka_unit_test_teardown(streams_capped_per_certificate, test_teardown),
        cmocka_unit_test_teardown(idle_stream_ended_after_timeout, test_teardown),
        cmocka_unit_test_teardown(cancelled_stream_with_batches_in_flight_is_harmless,
                                  test_teardown),
        cmocka_unit_test_teardown(nats_killed_mid_stream_loses_no_acked_batch, test_teardown),
        cmocka_unit_test_teardown(sigterm_acks_inflight_batches_and_exits_0, test_teardown),
        cmocka_unit_test_teardown(python_client_pushes_over_mtls, test_teardown),
        cmocka_unit_test_teardown(nats_password_never_printed, test_teardown),
        cmocka_unit_test_teardown(admin_port_taken_exits_1, test_teardown),
    };
    double t0 = kopt_test_now();
    int failed;

    if (argc < 5) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_INGEST PYTHON3 PY_SCRIPT [PROTO_INCLUDE_DIR...]\n",
                argv[0]);
        return 2;
    }
    src_dir = argv[1];
    ingest_exe = argv[2];
    python_exe = argv[3];
    python_script = argv[4];
    proto_dirs = argv + 5;
    n_proto_dirs = argc - 5;
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    if (getenv("KOPT_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("KOPT_TEST_SKIP"));
    grpc_init();
    failed = cmocka_run_group_tests(tests, make_certs, teardown_all);
    grpc_shutdown();
    nats_Close();
    fprintf(stderr, "timing: test_ingest %.3f s\n", kopt_test_now() - t0);
    return failed;
}
