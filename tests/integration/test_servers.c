/* The harness against real servers: nats-server with JetStream and
 * clickhouse-server start on free ports, keep their data across kill -9 and
 * restart, and leave no process, port or temp dir behind. Timings go to stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The dir, pid and ports of a server that is gone: none may be left. */
typedef struct {
    char dir[512];
    pid_t pid;
    int ports[2];
} remains_t;

static void assert_nothing_left(const remains_t *r)
{
    assert_int_equal(access(r->dir, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(kill(r->pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    for (int i = 0; i < 2; i++)
        assert_int_equal(kopt_test_port_accepts(r->ports[i]), 0);
}

static jsCtx *js_connect(const char *url, natsConnection **nc)
{
    jsCtx *js = NULL;

    assert_int_equal(natsConnection_ConnectTo(nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, *nc, NULL), NATS_OK);
    return js;
}

/* Publishes one message with a Nats-Msg-Id; returns whether JetStream saw a
 * duplicate, and the stream sequence in *seq. */
static bool publish_with_id(jsCtx *js, const char *id, uint64_t *seq)
{
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    bool dup;

    assert_int_equal(natsMsg_Create(&msg, "kt.a", NULL, "hello", 5), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(msg, "Nats-Msg-Id", id), NATS_OK);
    assert_int_equal(js_PublishMsg(&ack, js, msg, NULL, &jerr), NATS_OK);
    dup = ack->Duplicate;
    *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return dup;
}

static uint64_t stream_msgs(jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t n;

    assert_int_equal(js_GetStreamInfo(&si, js, "KT", NULL, &jerr), NATS_OK);
    n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static void nats_jetstream_survives_kill9(void **state)
{
    kopt_test_nats_t *srv = NULL;
    natsConnection *nc = NULL;
    jsCtx *js;
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[] = {"kt.>"};
    natsMsg *got = NULL;
    uint64_t seq1, seq2;
    remains_t left;
    int r;

    (void)state;
    r = kopt_test_nats_start(&srv, NULL);
    if (r == -ENOENT)
        skip(); /* nats-server is not installed */
    assert_int_equal(r, 0);
    assert_true(srv->pid > 0);
    assert_non_null(strstr(srv->url, "nats://127.0.0.1:"));
    fprintf(stderr, "timing: nats-server start %.3f s\n", srv->start_seconds);

    js = js_connect(srv->url, &nc);
    jsStreamConfig_Init(&cfg);
    cfg.Name = "KT";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    assert_int_equal(js_AddStream(&si, js, &cfg, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);

    assert_false(publish_with_id(js, "agent-1/epoch-1/1", &seq1));
    assert_true(publish_with_id(js, "agent-1/epoch-1/1", &seq2));
    assert_int_equal(seq1, seq2);
    assert_int_equal(stream_msgs(js), 1);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    assert_int_equal(kopt_test_nats_kill9(srv), 0);
    assert_int_equal(srv->pid, 0);
    assert_int_equal(kopt_test_port_accepts(srv->port), 0);
    assert_int_equal(kopt_test_nats_restart(srv), 0);
    fprintf(stderr, "timing: nats-server restart after kill -9 %.3f s\n", srv->start_seconds);

    js = js_connect(srv->url, &nc);
    assert_int_equal(stream_msgs(js), 1);
    assert_int_equal(js_GetMsg(&got, js, "KT", seq1, NULL, &jerr), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(got), 5);
    assert_memory_equal(natsMsg_GetData(got), "hello", 5);
    natsMsg_Destroy(got);
    /* The duplicate window is rebuilt from the store after a restart. */
    assert_true(publish_with_id(js, "agent-1/epoch-1/1", &seq2));
    assert_int_equal(seq2, seq1);
    assert_int_equal(stream_msgs(js), 1);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    snprintf(left.dir, sizeof(left.dir), "%s", srv->dir);
    left.pid = srv->pid;
    left.ports[0] = srv->port;
    left.ports[1] = srv->monitor_port;
    assert_int_equal(kopt_test_nats_stop(srv), 0);
    assert_int_equal(srv->pid, 0);
    kopt_test_nats_free(srv);
    assert_nothing_left(&left);
}

static void query_ok(kopt_test_clickhouse_t *ch, const char *sql, const char *want)
{
    char *out = NULL;
    int r = kopt_test_clickhouse_query(ch, sql, &out);

    if (r != 0)
        fprintf(stderr, "query failed: %s\n%s\n", sql, out ? out : "");
    assert_int_equal(r, 0);
    if (want)
        assert_string_equal(out, want);
    free(out);
}

static void clickhouse_data_survives_kill9(void **state)
{
    kopt_test_clickhouse_t *ch = NULL;
    char *out = NULL;
    remains_t left;
    int r;

    (void)state;
    r = kopt_test_clickhouse_start(&ch);
    if (r == -ENOENT)
        skip(); /* clickhouse-server is not installed */
    assert_int_equal(r, 0);
    fprintf(stderr, "timing: clickhouse-server start %.3f s\n", ch->start_seconds);

    query_ok(ch, "SELECT 1", "1\n");
    query_ok(ch, "CREATE DATABASE kt", "");
    query_ok(ch, "CREATE TABLE kt.t (k UInt64, v String) ENGINE = MergeTree ORDER BY k", "");
    query_ok(ch, "INSERT INTO kt.t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "");
    query_ok(ch, "SELECT count() FROM kt.t", "3\n");
    /* Errors come back as -EIO with ClickHouse's message. */
    assert_int_equal(kopt_test_clickhouse_query(ch, "SELECT * FROM kt.missing", &out), -EIO);
    assert_non_null(strstr(out, "kt.missing"));
    free(out);

    assert_int_equal(kopt_test_clickhouse_kill9(ch), 0);
    assert_int_equal(kopt_test_port_accepts(ch->http_port), 0);
    assert_int_equal(kopt_test_clickhouse_restart(ch), 0);
    fprintf(stderr, "timing: clickhouse-server restart after kill -9 %.3f s\n", ch->start_seconds);
    query_ok(ch, "SELECT count(), sum(k) FROM kt.t", "3\t6\n");

    /* A graceful restart keeps it too. */
    assert_int_equal(kopt_test_clickhouse_restart(ch), 0);
    query_ok(ch, "SELECT v FROM kt.t ORDER BY k", "a\nb\nc\n");

    snprintf(left.dir, sizeof(left.dir), "%s", ch->dir);
    left.pid = ch->pid;
    left.ports[0] = ch->http_port;
    left.ports[1] = ch->tcp_port;
    assert_int_equal(kopt_test_clickhouse_stop(ch), 0);
    kopt_test_clickhouse_free(ch);
    assert_nothing_left(&left);
}

/* What a failed assertion leaves: servers still registered. The group
 * teardown (kopt_test_teardown_all) must take them down. */
static void registry_cleans_up_forgotten_servers(void **state)
{
    kopt_test_nats_t *a = NULL, *b = NULL;
    kopt_test_nats_opts_t plain = {.no_jetstream = true};
    remains_t left[2];

    (void)state;
    if (kopt_test_nats_start(&a, NULL) == -ENOENT)
        skip();
    assert_non_null(a);
    assert_int_equal(kopt_test_nats_start(&b, &plain), 0);
    snprintf(left[0].dir, sizeof(left[0].dir), "%s", a->dir);
    snprintf(left[1].dir, sizeof(left[1].dir), "%s", b->dir);
    left[0].pid = a->pid;
    left[1].pid = b->pid;
    left[0].ports[0] = a->port;
    left[0].ports[1] = a->monitor_port;
    left[1].ports[0] = b->port;
    left[1].ports[1] = b->monitor_port;
    kopt_test_cleanup_all();
    assert_nothing_left(&left[0]);
    assert_nothing_left(&left[1]);
}

/* A server that cannot start: an error, its log on stderr, nothing left. */
static void bad_config_fails_fast_and_cleans_up(void **state)
{
    kopt_test_nats_t *srv = NULL;
    kopt_test_nats_opts_t bad = {.config_extra = "no_such_option_xyz: {"};
    double t0 = kopt_test_now();
    int r;

    (void)state;
    r = kopt_test_nats_start(&srv, &bad);
    if (r == -ENOENT)
        skip();
    assert_int_equal(r, -EIO);
    assert_null(srv);
    assert_true(kopt_test_now() - t0 < 10.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nats_jetstream_survives_kill9),
        cmocka_unit_test(clickhouse_data_survives_kill9),
        cmocka_unit_test(registry_cleans_up_forgotten_servers),
        cmocka_unit_test(bad_config_fails_fast_and_cleans_up),
    };
    int failed;

    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, NULL, kopt_test_teardown_all);

    nats_Close();
    return failed;
}
