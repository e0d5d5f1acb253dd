/* NATS authentication and per-component permissions (issue 15, item 6)
 * against a real nats-server with TLS (client certificates required) and one
 * user per component (tests/harness/nats_auth.c):
 *   - each component's user does what that component does, through the same
 *     libkopt code the daemons use (kopt_nats_options_new,
 *     kopt_nats_ensure_stream) and the same JetStream calls;
 *   - no credentials, no client certificate or a wrong password: refused;
 *   - another component's user: refused for what it may not do;
 *   - the real kopt-ingest binary: ready with its own user; without
 *     credentials it says so and is not ready; as the advisor it cannot
 *     create its stream; a password in --nats-url is refused, unprinted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include <kopt/nats.h>
#include <kopt/nats_auth.h>

#include "harness.h"

static const char *src_dir, *ingest_exe;
static char *certs_dir;
static kopt_test_nats_t *nats;

#define DENIED_WAIT_MS 1500 /* a refused request gets no reply: wait this long */

/* ---- helpers ------------------------------------------------------------- */

static natsConnection *connect_as(const char *user)
{
    natsConnection *nc = NULL;

    assert_int_equal(kopt_test_nats_connect_as(nats, user, &nc), 0);
    return nc;
}

static jsCtx *js_of(natsConnection *nc)
{
    jsOptions jo;
    jsCtx *js = NULL;

    jsOptions_Init(&jo);
    jo.Wait = DENIED_WAIT_MS;
    assert_int_equal(natsConnection_JetStream(&js, nc, &jo), NATS_OK);
    return js;
}

/* The server told this connection it was not permitted something. */
static void assert_not_permitted(natsConnection *nc, const char *what)
{
    const char *text = NULL;
    natsStatus s;

    natsConnection_FlushTimeout(nc, 2000);
    s = natsConnection_GetLastError(nc, &text);
    fprintf(stderr, "  %s: %s (%s)\n", what, natsStatus_GetText(s), text ? text : "");
    assert_int_equal(s, NATS_NOT_PERMITTED);
    assert_non_null(text);
    assert_non_null(strstr(text, "Permissions Violation"));
}

static uint64_t stream_msgs(const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t n;

    assert_int_equal(kopt_test_nats_connect(nats, &nc), 0);
    js = js_of(nc);
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, &jerr), NATS_OK);
    n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

static void auth_of(const char *user, kopt_nats_auth_t *a, char *pw, size_t len)
{
    *a = (kopt_nats_auth_t){
        .ca = nats->ca_file, .cert = nats->cert_file, .key = nats->key_file, .user = (char *)user};
    assert_int_equal(kopt_test_nats_password_file(nats, user, pw, len), 0);
    a->password_file = pw;
}

typedef struct {
    int status;
    char message[400];
} ensured_t;

static void on_ensured(void *data, int status, const char *message)
{
    ensured_t *e = data;

    e->status = status;
    snprintf(e->message, sizeof(e->message), "%s", message);
}

/* kopt_nats_ensure_stream as ingest and the advisor run it, as `user`. */
static int ensure_stream_as(const char *user, const char *name, const char *subject, char *message,
                            size_t len)
{
    char pw[4096];
    kopt_nats_auth_t a;
    kopt_stream_spec_t spec = {
        .name = name, .subject = subject, .replicas = 1, .duplicates_ms = 60000, .auth = &a};
    ensured_t e = {.status = 1};
    uv_loop_t loop;

    auth_of(user, &a, pw, sizeof(pw));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kopt_nats_ensure_stream(&loop, nats->url, &spec, on_ensured, &e), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fprintf(stderr, "  ensure %s as %s: %d %s\n", name, user, e.status, e.message);
    snprintf(message, len, "%s", e.message);
    return e.status;
}

static natsStatus js_publish(jsCtx *js, const char *subject, const char *data)
{
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&pa, js, subject, data, (int)strlen(data), NULL, &jerr);

    if (s != NATS_OK)
        fprintf(stderr, "  publish %s: %s, JetStream error %d (%s)\n", subject,
                natsStatus_GetText(s), (int)jerr, nats_GetLastError(NULL));
    jsPubAck_Destroy(pa);
    return s;
}

/* ---- each component with its own user ------------------------------------ */

static void each_component_works_with_its_own_user(void **state)
{
    char msg[400];
    natsConnection *nc;
    jsCtx *js;
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsStreamConfig dl;
    jsStreamInfo *si = NULL;
    const char *dl_subjects[] = {"kopt.deadletter.>"};
    natsMsg *got = NULL;
    uint64_t before;

    (void)state;
    /* ingest: creates KOPT_METRICS and publishes a batch */
    assert_int_equal(
        ensure_stream_as("kopt-ingest", "KOPT_METRICS", "kopt.metrics.>", msg, sizeof(msg)), 0);
    before = stream_msgs("KOPT_METRICS");
    nc = connect_as("kopt-ingest");
    js = js_of(nc);
    assert_int_equal(js_publish(js, "kopt.metrics.local.node-1", "batch-1"), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    assert_int_equal(stream_msgs("KOPT_METRICS"), before + 1);

    /* aggregator: its durable, a fetch, the ack, a message by sequence, its
     * dead-letter stream and a dead letter (what consumer.c, worker.c and
     * deadletter.c call) */
    nc = connect_as("kopt-aggregator");
    js = js_of(nc);
    jsConsumerConfig_Init(&cc);
    cc.Durable = "kopt-aggregator";
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    assert_int_equal(js_AddConsumer(&ci, js, "KOPT_METRICS", &cc, NULL, &jerr), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    assert_int_equal(js_GetConsumerInfo(&ci, js, "KOPT_METRICS", "kopt-aggregator", NULL, &jerr),
                     NATS_OK);
    jsConsumerInfo_Destroy(ci);
    jsSubOptions_Init(&so);
    so.Stream = "KOPT_METRICS";
    so.Consumer = "kopt-aggregator"; /* bind, as worker.c does */
    so.ManualAck = true;
    assert_int_equal(js_PullSubscribe(&sub, js, NULL, "kopt-aggregator", NULL, &so, &jerr),
                     NATS_OK);
    assert_int_equal(natsSubscription_Fetch(&list, sub, 10, 3000, &jerr), NATS_OK);
    assert_true(list.Count >= 1);
    for (int i = 0; i < list.Count; i++)
        assert_int_equal(natsMsg_AckSync(list.Msgs[i], NULL, &jerr), NATS_OK);
    natsMsgList_Destroy(&list);
    natsSubscription_Destroy(sub);
    assert_int_equal(js_GetMsg(&got, js, "KOPT_METRICS", before + 1, NULL, &jerr), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(got), 7);
    natsMsg_Destroy(got);
    jsStreamConfig_Init(&dl);
    dl.Name = "KOPT_DEADLETTER";
    dl.Subjects = dl_subjects;
    dl.SubjectsLen = 1;
    assert_int_equal(js_AddStream(&si, js, &dl, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);
    assert_int_equal(js_publish(js, "kopt.deadletter.decode", "bad"), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    /* advisor: creates KOPT_RECOMMENDATIONS and publishes a recommendation */
    assert_int_equal(ensure_stream_as("kopt-advisor", "KOPT_RECOMMENDATIONS",
                                      "kopt.recommendations.>", msg, sizeof(msg)),
                     0);
    nc = connect_as("kopt-advisor");
    js = js_of(nc);
    assert_int_equal(js_publish(js, "kopt.recommendations.local.default", "rec"), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    assert_int_equal(stream_msgs("KOPT_RECOMMENDATIONS"), 1);
}

/* ---- no or wrong credentials ---------------------------------------------- */

static void without_credentials_the_server_refuses(void **state)
{
    natsConnection *nc = NULL;
    char pw[4096], wrong[600], err[300];
    kopt_nats_auth_t a;
    natsOptions *o = NULL;
    int fd;

    (void)state;
    /* the client certificate alone, no user */
    assert_int_equal(kopt_test_nats_connect_as(nats, NULL, &nc), -ECONNREFUSED);
    fprintf(stderr, "  no user: %s\n", nats_GetLastError(NULL));
    assert_non_null(strstr(nats_GetLastError(NULL), "Authorization Violation"));

    /* the right user and password but no client certificate: TLS refuses */
    auth_of("kopt-ingest", &a, pw, sizeof(pw));
    a.cert = a.key = NULL;
    assert_int_equal(kopt_nats_options_new(nats->url, "t", &a, &o, err, sizeof(err)), 0);
    natsOptions_SetTimeout(o, 3000);
    assert_int_not_equal(natsConnection_Connect(&nc, o), NATS_OK);
    fprintf(stderr, "  no client certificate: %s\n", nats_GetLastError(NULL));
    natsOptions_Destroy(o);
    nc = NULL;

    /* plaintext (no TLS at all) */
    assert_int_not_equal(natsConnection_ConnectTo(&nc, nats->url), NATS_OK);
    fprintf(stderr, "  plaintext: %s\n", nats_GetLastError(NULL));
    nc = NULL;

    /* a wrong password */
    snprintf(wrong, sizeof(wrong), "%s/wrong.password", certs_dir);
    fd = open(wrong, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not-the-password\n", 17), 17);
    close(fd);
    a = (kopt_nats_auth_t){.ca = nats->ca_file,
                           .cert = nats->cert_file,
                           .key = nats->key_file,
                           .user = "kopt-ingest",
                           .password_file = wrong};
    assert_int_equal(kopt_nats_options_new(nats->url, "t", &a, &o, err, sizeof(err)), 0);
    assert_int_not_equal(natsConnection_Connect(&nc, o), NATS_OK);
    fprintf(stderr, "  wrong password: %s\n", nats_GetLastError(NULL));
    assert_non_null(strstr(nats_GetLastError(NULL), "Authorization Violation"));
    natsOptions_Destroy(o);
}

/* ---- another component's user ---------------------------------------------- */

static void another_components_user_is_refused_what_it_may_not_do(void **state)
{
    char msg[400];
    natsConnection *nc;
    natsSubscription *sub = NULL;
    jsCtx *js;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint64_t metrics, recs;

    (void)state;
    /* the streams exist (as their owners made them) */
    assert_int_equal(
        ensure_stream_as("kopt-ingest", "KOPT_METRICS", "kopt.metrics.>", msg, sizeof(msg)), 0);
    assert_int_equal(ensure_stream_as("kopt-advisor", "KOPT_RECOMMENDATIONS",
                                      "kopt.recommendations.>", msg, sizeof(msg)),
                     0);
    metrics = stream_msgs("KOPT_METRICS");
    recs = stream_msgs("KOPT_RECOMMENDATIONS");

    /* ingest's user cannot consume the aggregator's stream, nor read its
     * replies, nor publish recommendations */
    nc = connect_as("kopt-ingest");
    js = js_of(nc);
    assert_int_not_equal(
        js_GetConsumerInfo(&ci, js, "KOPT_METRICS", "kopt-aggregator", NULL, &jerr), NATS_OK);
    assert_not_permitted(nc, "ingest reads the aggregator's consumer");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nc = connect_as("kopt-ingest");
    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, "_INBOX.kopt-aggregator.>"), NATS_OK);
    assert_not_permitted(nc, "ingest listens on the aggregator's inboxes");
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    nc = connect_as("kopt-ingest");
    assert_int_equal(natsConnection_PublishString(nc, "kopt.recommendations.local.x", "fake"),
                     NATS_OK);
    assert_not_permitted(nc, "ingest publishes a recommendation");
    natsConnection_Destroy(nc);

    /* the advisor's user cannot publish metrics */
    nc = connect_as("kopt-advisor");
    js = js_of(nc);
    assert_int_not_equal(js_publish(js, "kopt.metrics.local.node-1", "fake"), NATS_OK);
    assert_not_permitted(nc, "advisor publishes a metric batch");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    /* the aggregator's user cannot publish recommendations nor metrics, nor
     * create other streams */
    nc = connect_as("kopt-aggregator");
    js = js_of(nc);
    assert_int_not_equal(js_publish(js, "kopt.recommendations.local.default", "fake"), NATS_OK);
    assert_not_permitted(nc, "aggregator publishes a recommendation");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nc = connect_as("kopt-aggregator");
    assert_int_equal(natsConnection_PublishString(nc, "kopt.metrics.local.node-1", "fake"),
                     NATS_OK);
    assert_not_permitted(nc, "aggregator publishes a metric batch");
    natsConnection_Destroy(nc);
    assert_int_not_equal(ensure_stream_as("kopt-aggregator", "KOPT_RECOMMENDATIONS",
                                          "kopt.recommendations.>", msg, sizeof(msg)),
                         0);

    /* nothing got in */
    assert_int_equal(stream_msgs("KOPT_METRICS"), metrics);
    assert_int_equal(stream_msgs("KOPT_RECOMMENDATIONS"), recs);
}

/* ---- the real kopt-ingest --------------------------------------------------- */

typedef struct {
    kopt_test_proc_t proc;
    char dir[600], log_path[700], admin_url[96];
} ingest_t;

static void ingest_cleanup(void *arg)
{
    ingest_t *ing = arg;

    kopt_test_proc_stop(&ing->proc, 5000);
    kopt_test_proc_release(&ing->proc);
    kopt_test_rmtree(ing->dir);
    free(ing);
}

/* Stops it (SIGTERM) and fails on a sanitizer report in its log (an ASan
 * build), then cleans up. */
static void ingest_stop(ingest_t *ing)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer",
                                          "runtime error:", "ERROR: LeakSanitizer"};

    kopt_test_proc_stop(&ing->proc, 10000);
    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
        if (kopt_test_log_contains(ing->log_path, reports[i])) {
            kopt_test_log_tail(ing->log_path, 80);
            fail_msg("kopt-ingest log has \"%s\"", reports[i]);
        }
    kopt_test_cleanup_forget(ing);
    ingest_cleanup(ing);
}

/* kopt-ingest (plaintext gRPC; NATS as the flags say); `user` NULL: only
 * the TLS flags (a client certificate, no credentials). */
static ingest_t *ingest_start(const char *user)
{
    ingest_t *ing = calloc(1, sizeof(*ing));
    char listen[64], admin[64], pw[4096], *dir;
    const char *argv[32];
    int n = 0;

    assert_non_null(ing);
    dir = kopt_test_tmpdir("kopt-itest-natsauth-ingest");
    assert_non_null(dir);
    snprintf(ing->dir, sizeof(ing->dir), "%s", dir);
    free(dir);
    snprintf(ing->log_path, sizeof(ing->log_path), "%s/ingest.log", ing->dir);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", kopt_test_free_port());
    snprintf(ing->admin_url, sizeof(ing->admin_url), "http://%s", admin);
    argv[n++] = ingest_exe;
    argv[n++] = "--insecure";
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--admin-listen";
    argv[n++] = admin;
    argv[n++] = "--nats-url";
    argv[n++] = nats->url;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    if (user) {
        assert_int_equal(kopt_test_nats_auth_args(nats, user, argv, &n, pw, sizeof(pw)), 0);
    } else {
        argv[n++] = "--nats-ca";
        argv[n++] = nats->ca_file;
        argv[n++] = "--nats-cert";
        argv[n++] = nats->cert_file;
        argv[n++] = "--nats-key";
        argv[n++] = nats->key_file;
    }
    argv[n] = NULL;
    assert_int_equal(kopt_test_proc_spawn(&ing->proc, (char *const *)argv, NULL, ing->log_path), 0);
    assert_int_equal(kopt_test_cleanup_push(ingest_cleanup, ing), 0);
    return ing;
}

static long readyz(const ingest_t *ing, char **body)
{
    char url[128];
    long status = 0;

    snprintf(url, sizeof(url), "%s/readyz", ing->admin_url);
    if (kopt_test_http(url, NULL, 1000, &status, body) < 0)
        return 0;
    return status;
}

static int wait_log(const ingest_t *ing, const char *needle, double seconds)
{
    double until = kopt_test_now() + seconds;

    while (kopt_test_now() < until) {
        if (kopt_test_log_contains(ing->log_path, needle))
            return 0;
        usleep(50000);
    }
    kopt_test_log_tail(ing->log_path, 30);
    return -1;
}

static void ingest_binary_logs_in_only_with_its_own_user(void **state)
{
    ingest_t *ing;
    char *body = NULL;
    double until;
    long st = 0;

    (void)state;
    /* its own user: connected and KOPT_METRICS ready */
    ing = ingest_start("kopt-ingest");
    for (until = kopt_test_now() + 15; kopt_test_now() < until; usleep(50000))
        if ((st = readyz(ing, NULL)) == 200)
            break;
    if (st != 200)
        kopt_test_log_tail(ing->log_path, 30);
    assert_int_equal(st, 200);
    ingest_stop(ing);

    /* no credentials: it says why, keeps retrying and is not ready */
    ing = ingest_start(NULL);
    assert_int_equal(wait_log(ing, "NATS refused the connection (credentials or TLS)", 15), 0);
    /* The server's reason is in the line when nats.c read its -ERR before the
     * close; when the close wins, nats.c reports "Expected 'PONG'" instead
     * (seen once in CI). The refusal itself is what matters here. */
    st = readyz(ing, &body);
    fprintf(stderr, "  ingest without credentials: /readyz %ld %s\n", st, body ? body : "");
    assert_int_equal(st, 503);
    assert_non_null(body);
    assert_non_null(strstr(body, "not connected to NATS"));
    free(body);
    body = NULL;
    ingest_stop(ing);

    /* the advisor's user: it connects, but may not create KOPT_METRICS, so it
     * never becomes ready, and the log says why */
    ing = ingest_start("kopt-advisor");
    assert_int_equal(wait_log(ing, "JetStream stream set-up failed", 20), 0);
    assert_true(kopt_test_log_contains(ing->log_path, "Permissions Violation for Publish to"));
    assert_true(kopt_test_log_contains(ing->log_path, "$JS.API.STREAM.UPDATE.KOPT_METRICS"));
    st = readyz(ing, &body);
    fprintf(stderr, "  ingest as kopt-advisor: /readyz %ld %s\n", st, body ? body : "");
    assert_int_equal(st, 503);
    free(body);
    ingest_stop(ing);

    /* a password in --nats-url is refused, and not printed */
    {
        kopt_test_nats_t with_pw = *nats;

        snprintf(with_pw.url, sizeof(with_pw.url), "nats://kopt-ingest:Pw4Test9@127.0.0.1:%d",
                 nats->port);
        kopt_test_nats_t *saved = nats;

        nats = &with_pw;
        ing = ingest_start("kopt-ingest");
        nats = saved;
        assert_int_equal(wait_log(ing, "--nats-url carries credentials", 15), 0);
        assert_false(kopt_test_log_contains(ing->log_path, "Pw4Test9"));
        kopt_test_cleanup_forget(ing);
        ingest_cleanup(ing);
    }
}

/* ---- set-up ------------------------------------------------------------------ */

static int setup(void **state)
{
    kopt_test_nats_opts_t o = {0};
    int r;

    (void)state;
    certs_dir = kopt_test_tmpdir("kopt-itest-natsauth");
    if (!certs_dir || kopt_test_make_certs(src_dir, certs_dir) < 0)
        return -1;
    o.auth_certs_dir = certs_dir;
    r = kopt_test_nats_start(&nats, &o);
    if (r == -ENOENT) {
        fprintf(stderr, "nats-server not installed\n");
        return -1;
    }
    return r;
}

static int teardown(void **state)
{
    (void)state;
    kopt_test_nats_free(nats);
    nats = NULL;
    kopt_test_cleanup_all();
    kopt_test_rmtree(certs_dir);
    free(certs_dir);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_component_works_with_its_own_user),
        cmocka_unit_test(without_credentials_the_server_refuses),
        cmocka_unit_test(another_components_user_is_refused_what_it_may_not_do),
        cmocka_unit_test(ingest_binary_logs_in_only_with_its_own_user),
    };
    int failed;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_INGEST\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    ingest_exe = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    nats_CloseAndWait(5000);
    return failed;
}
