/* Children, admin endpoints and KOPT_METRICS for the kopt-agent
 * integration tests (see agent_env.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agent_env.h"

#include <errno.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- children ------------------------------------------------------------------ */

static void child_release(void *arg)
{
    itest_child_t *c = arg;

    if (c->spawned)
        kopt_test_proc_release(&c->proc);
    if (c->dir) {
        kopt_test_rmtree(c->dir);
        free(c->dir);
    }
    free(c);
}

/* From the cleanup registry: the test failed, so show what the child said. */
static void child_cleanup(void *arg)
{
    itest_child_t *c = arg;

    if (c->spawned)
        kopt_test_log_tail(c->log_path, 30);
    child_release(c);
}

itest_child_t *itest_child_new(const char *prefix, const char *log_name)
{
    itest_child_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->dir = kopt_test_tmpdir(prefix);
    assert_non_null(c->dir);
    snprintf(c->log_path, sizeof(c->log_path), "%s/%s", c->dir, log_name);
    assert_int_equal(kopt_test_cleanup_push(child_cleanup, c), 0);
    return c;
}

void itest_child_free(itest_child_t *c)
{
    if (!c)
        return;
    kopt_test_cleanup_forget(c);
    child_release(c);
}

void itest_child_ports(itest_child_t *c)
{
    do {
        c->port = kopt_test_free_port();
        c->admin_port = kopt_test_free_port();
    } while (c->port == c->admin_port);
    assert_true(c->port > 0 && c->admin_port > 0);
    snprintf(c->target, sizeof(c->target), "127.0.0.1:%d", c->port);
    snprintf(c->admin_url, sizeof(c->admin_url), "http://127.0.0.1:%d", c->admin_port);
}

void itest_child_spawn(itest_child_t *c, char *const argv[])
{
    assert_int_equal(kopt_test_proc_spawn(&c->proc, argv, NULL, c->log_path), 0);
    c->spawned = 1;
}

int itest_http_status(const itest_child_t *c, const char *path)
{
    char url[160];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", c->admin_url, path);
    kopt_test_http(url, NULL, 1000, &status, NULL);
    return (int)status;
}

void itest_wait_http(itest_child_t *c, const char *path, const char *what)
{
    double t0 = kopt_test_now();

    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() - t0 < 15.0) {
        if (itest_http_status(c, path) == 200) {
            fprintf(stderr, "  %s up in %.3f s (log %s)\n", what, kopt_test_now() - t0,
                    c->log_path);
            return;
        }
        usleep(20000);
    }
    kopt_test_log_tail(c->log_path, 30);
    fail_msg("%s did not come up", what);
}

double itest_metric(const itest_child_t *c, const char *sample)
{
    return kopt_test_metric(c->admin_url, sample);
}

void itest_assert_sanitizer_clean(const itest_child_t *c)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer",
                                          "runtime error:", "ERROR: LeakSanitizer"};

    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
        if (kopt_test_log_contains(c->log_path, reports[i])) {
            kopt_test_log_tail(c->log_path, 80);
            fail_msg("%s has \"%s\"", c->log_path, reports[i]);
        }
}

void itest_wait_exit_clean(itest_child_t *c, double timeout_s, const char *what)
{
    double until = kopt_test_now() + timeout_s;

    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() < until)
        usleep(20000);
    if (c->proc.pid)
        fail_msg("%s did not exit within %.0f s", what, timeout_s);
    itest_assert_sanitizer_clean(c);
    if (!WIFEXITED(c->proc.status) || WEXITSTATUS(c->proc.status) != 0) {
        kopt_test_log_tail(c->log_path, 30);
        fail_msg("%s ended with status 0x%x, want exit 0", what, c->proc.status);
    }
}

void itest_stop_clean(itest_child_t *c, const char *what)
{
    assert_int_equal(kopt_test_proc_signal(&c->proc, SIGTERM), 0);
    itest_wait_exit_clean(c, 15, what);
}

kopt_test_nats_t *itest_nats_or_skip(void)
{
    kopt_test_nats_t *nats = NULL;
    int r = kopt_test_nats_start(&nats, NULL);

    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    return nats;
}

itest_child_t *itest_agent_proc_start(const char *agent_exe, const char *certs_dir,
                                      const char *targets, const char *node, const char *rules,
                                      const char *window)
{
    itest_child_t *c = itest_child_new("kopt-itest-agent", "agent.log");
    char admin[64], ca[600], cert[600], key[600], spool[600];
    char *argv[40];
    int n = 0;

    snprintf(spool, sizeof(spool), "%s/spool", c->dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/agent-local.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/agent-local-key.pem", certs_dir);
    itest_child_ports(c);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    argv[n++] = (char *)agent_exe;
    argv[n++] = "--ingest";
    argv[n++] = (char *)targets;
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
    argv[n++] = (char *)node;
    argv[n++] = "--source";
    argv[n++] = "proc";
    argv[n++] = "--proc-rules";
    argv[n++] = (char *)rules;
    if (window) {
        argv[n++] = "--window";
        argv[n++] = (char *)window;
        argv[n++] = "--sample-interval";
        argv[n++] = "500ms";
    }
    argv[n++] = "--spool-dir";
    argv[n++] = spool;
    argv[n++] = "--log-format";
    argv[n++] = "text";
    argv[n] = NULL;
    itest_child_spawn(c, argv);
    itest_wait_http(c, "/healthz", "kopt-agent");
    return c;
}

itest_child_t *itest_ingest_start(const char *ingest_exe, const char *certs_dir,
                                  const kopt_test_nats_t *nats)
{
    itest_child_t *c = itest_child_new("kopt-itest-ingest", "ingest.log");
    char listen[64], admin[64], ca[600], cert[600], key[600];
    char *argv[] = {(char *)ingest_exe,
                    "--listen",
                    listen,
                    "--admin-listen",
                    admin,
                    "--nats-url",
                    (char *)nats->url,
                    "--tls-ca",
                    ca,
                    "--tls-cert",
                    cert,
                    "--tls-key",
                    key,
                    "--log-format",
                    "text",
                    NULL};

    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
    itest_child_ports(c);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    itest_child_spawn(c, argv);
    itest_wait_http(c, "/readyz", "kopt-ingest");
    return c;
}

/* --- KOPT_METRICS ----------------------------------------------------------------- */

static void connect_js(const kopt_test_nats_t *nats, natsConnection **nc, jsCtx **js)
{
    assert_int_equal(natsConnection_ConnectTo(nc, nats->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(js, *nc, NULL), NATS_OK);
}

uint64_t itest_stream_count(const kopt_test_nats_t *nats)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t n = 0;

    connect_js(nats, &nc, &js);
    if (js_GetStreamInfo(&si, js, ITEST_STREAM, NULL, &jerr) == NATS_OK) {
        n = si->State.Msgs;
        jsStreamInfo_Destroy(si);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

int itest_stream_read(const kopt_test_nats_t *nats, itest_stream_t *out)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t first, last;

    memset(out, 0, sizeof(*out));
    connect_js(nats, &nc, &js);
    if (js_GetStreamInfo(&si, js, ITEST_STREAM, NULL, &jerr) != NATS_OK) {
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return -EAGAIN;
    }
    out->msgs = si->State.Msgs;
    first = si->State.FirstSeq;
    last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    out->m = calloc(out->msgs + 1, sizeof(*out->m));
    assert_non_null(out->m);
    for (uint64_t seq = first; out->msgs > 0 && seq <= last && out->n < out->msgs; seq++) {
        natsMsg *m = NULL;
        const char *id = NULL;
        itest_msg_t *x = &out->m[out->n];

        if (js_GetMsg(&m, js, ITEST_STREAM, seq, NULL, &jerr) != NATS_OK)
            continue;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        snprintf(x->id, sizeof(x->id), "%s", id ? id : "");
        x->len = (size_t)natsMsg_GetDataLength(m);
        x->data = malloc(x->len ? x->len : 1);
        assert_non_null(x->data);
        memcpy(x->data, natsMsg_GetData(m), x->len);
        out->n++;
        natsMsg_Destroy(m);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

void itest_stream_free(itest_stream_t *s)
{
    for (size_t i = 0; s->m && i < s->n; i++)
        free(s->m[i].data);
    free(s->m);
    memset(s, 0, sizeof(*s));
}

void itest_assert_unique_ids(const itest_stream_t *s, const char *agent_id)
{
    size_t n = strlen(agent_id);

    assert_int_equal(s->n, s->msgs);
    for (size_t i = 0; i < s->n; i++) {
        if (strncmp(s->m[i].id, agent_id, n) != 0 || s->m[i].id[n] != '/')
            fail_msg("unexpected Nats-Msg-Id %s", s->m[i].id);
        for (size_t j = i + 1; j < s->n; j++)
            if (strcmp(s->m[i].id, s->m[j].id) == 0)
                fail_msg("Nats-Msg-Id %s is stored twice", s->m[i].id);
    }
}
