/* The cluster harness against real servers: a 3-node nats-server cluster
 * keeps an R3 stream's messages, and its Nats-Msg-Id dedupe, across a kill -9
 * of the stream leader; two clickhouse-server replicas coordinated by
 * ZooKeeper replicate a ReplicatedMergeTree table both ways, deduplicate a
 * repeated block, honour insert_quorum, and a killed replica catches up after
 * its restart. Timings (start, election, catch-up) go to stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

static natsConnection *connect_cluster(kopt_test_nats_cluster_t *c)
{
    natsConnection *nc = NULL;

    assert_int_equal(kopt_test_nats_cluster_connect(c, &nc, NULL), 0);
    return nc;
}

/* Publishes with a Nats-Msg-Id, retrying for up to 30 s (an election makes
 * PubAcks time out or fail); *dup tells whether JetStream had it already. */
static int publish_retry(jsCtx *js, const char *id, bool *dup)
{
    double t0 = kopt_test_now();

    while (kopt_test_now() - t0 < 30.0) {
        natsMsg *msg = NULL;
        jsPubAck *ack = NULL;
        jsPubOptions po;
        jsErrCode jerr = 0;
        natsStatus s;

        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        assert_int_equal(natsMsg_Create(&msg, "kc.a", NULL, "w", 1), NATS_OK);
        assert_int_equal(natsMsgHeader_Set(msg, "Nats-Msg-Id", id), NATS_OK);
        s = js_PublishMsg(&ack, js, msg, &po, &jerr);
        natsMsg_Destroy(msg);
        if (s == NATS_OK) {
            *dup = ack->Duplicate;
            jsPubAck_Destroy(ack);
            return 0;
        }
        kopt_test_sleep_ms(200);
    }
    return -ETIMEDOUT;
}

static uint64_t stream_msgs(jsCtx *js)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;

        if (js_GetStreamInfo(&si, js, "KC", NULL, &jerr) == NATS_OK) {
            uint64_t n = si->State.Msgs;

            jsStreamInfo_Destroy(si);
            return n;
        }
        kopt_test_sleep_ms(200);
    }
    fail_msg("stream info unavailable for 10 s");
    return 0;
}

/* The node leading stream KC now, from its stream info; -1 during an election. */
static int stream_leader(kopt_test_nats_cluster_t *c, jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int i = -1;

    if (js_GetStreamInfo(&si, js, "KC", NULL, &jerr) == NATS_OK && si->Cluster)
        i = kopt_test_nats_cluster_node_index(c, si->Cluster->Leader);
    jsStreamInfo_Destroy(si);
    return i;
}

static void nats_cluster_r3_survives_leader_kill(void **state)
{
    kopt_test_nats_cluster_t *c = NULL;
    natsConnection *nc;
    jsCtx *js = NULL;
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[] = {"kc.>"};
    int leader, r;
    bool dup;
    char id[32];
    double t0;

    (void)state;
    r = kopt_test_nats_cluster_start(&c, 3);
    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    fprintf(stderr, "TIMING nats cluster of 3 start %.2f s\n", c->start_seconds);
    nc = connect_cluster(c);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamConfig_Init(&cfg);
    cfg.Name = "KC";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = 3;
    cfg.Duplicates = 120LL * 1000 * 1000 * 1000; /* 2 min, in ns */
    assert_int_equal(js_AddStream(&si, js, &cfg, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Replicas, 3);
    jsStreamInfo_Destroy(si);

    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        assert_int_equal(publish_retry(js, id, &dup), 0);
        assert_false(dup);
    }
    leader = stream_leader(c, js);
    assert_true(leader >= 0);
    fprintf(stderr, "stream KC leader is %s; kill -9\n", c->nodes[leader].name);
    assert_int_equal(kopt_test_nats_cluster_kill9(c, leader), 0);
    t0 = kopt_test_now();
    /* The same ids again through the election: all duplicates, nothing
     * stored twice; then new ones. */
    for (int i = 90; i < 200; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        assert_int_equal(publish_retry(js, id, &dup), 0);
        assert_int_equal(dup, i < 100);
        if (i == 90)
            fprintf(stderr, "TIMING first PubAck after leader kill %.2f s\n", kopt_test_now() - t0);
    }
    assert_int_equal(stream_msgs(js), 200);
    {
        int now = stream_leader(c, js);

        assert_true(now >= 0 && now != leader);
        fprintf(stderr, "new stream leader %s\n", c->nodes[now].name);
    }

    assert_int_equal(kopt_test_nats_cluster_restart(c, leader), 0);
    assert_int_equal(stream_msgs(js), 200);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    kopt_test_nats_cluster_free(c);
}

static long count_on(kopt_test_clickhouse_t *ch, const char *sql)
{
    char *out = NULL;
    long n = -1;

    if (kopt_test_clickhouse_query(ch, sql, &out) == 0)
        n = atol(out);
    free(out);
    return n;
}

/* Runs sql on ch; fails the test with ClickHouse's message. */
static void exec_ok(kopt_test_clickhouse_t *ch, const char *sql)
{
    char *out = NULL;

    if (kopt_test_clickhouse_query(ch, sql, &out) != 0)
        fail_msg("%s on %s: %s", sql, ch->url, out ? out : "no answer");
    free(out);
}

/* An insert with insert_quorum as an HTTP parameter: 18.16 has no
 * INSERT ... SETTINGS. Returns 0 on HTTP 200, else -EIO and the message. */
static int insert_quorum(kopt_test_clickhouse_t *ch, const char *sql, int quorum, char **err)
{
    char url[192], *body = NULL;
    long status = 0;
    int r;

    snprintf(url, sizeof(url), "%s/?insert_quorum=%d&insert_quorum_timeout=5000", ch->url, quorum);
    r = kopt_test_http(url, sql, 30000, &status, &body);
    if (r == 0 && status != 200)
        r = -EIO;
    if (r < 0 && err)
        *err = body;
    else
        free(body);
    return r;
}

/* Waits up to 30 s for `sql` to give `want` on replica ch; the seconds it took. */
static double wait_count(kopt_test_clickhouse_t *ch, const char *sql, long want)
{
    double t0 = kopt_test_now();

    while (count_on(ch, sql) != want) {
        if (kopt_test_now() - t0 > 30.0)
            fail_msg("%s on %s: %ld, want %ld", sql, ch->url, count_on(ch, sql), want);
        kopt_test_sleep_ms(100);
    }
    return kopt_test_now() - t0;
}

static void clickhouse_replicas_replicate_and_dedupe(void **state)
{
    kopt_test_ch_cluster_t *c = NULL;
    kopt_test_clickhouse_t *r1, *r2;
    const char *count = "SELECT count() FROM kc_t";
    char *err = NULL;
    int r;

    (void)state;
    r = kopt_test_ch_cluster_start(&c);
    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    fprintf(stderr, "TIMING zookeeper start %.2f s, clickhouse cluster start %.2f s\n",
            c->zk->start_seconds, c->start_seconds);
    r1 = c->replicas[0];
    r2 = c->replicas[1];
    /* The 18.16 engine syntax: ZooKeeper path and replica name first, then
     * the old-style or new-style MergeTree arguments (new style here). */
    r = kopt_test_ch_cluster_query_all(
        c,
        "CREATE TABLE IF NOT EXISTS kc_t (k String, v UInt64) ENGINE = "
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kc_t', '{replica}') "
        "ORDER BY k",
        &err);
    if (r < 0)
        fail_msg("create: %s", err);
    exec_ok(r1, "INSERT INTO kc_t VALUES ('a', 1), ('b', 2)");
    fprintf(stderr, "TIMING r1 -> r2 replication %.2f s\n", wait_count(r2, count, 2));
    exec_ok(r2, "INSERT INTO kc_t VALUES ('c', 3)");
    fprintf(stderr, "TIMING r2 -> r1 replication %.2f s\n", wait_count(r1, count, 3));

    /* The same block again, on either replica: dropped by its hash. */
    exec_ok(r1, "INSERT INTO kc_t VALUES ('a', 1), ('b', 2)");
    exec_ok(r2, "INSERT INTO kc_t VALUES ('a', 1), ('b', 2)");
    kopt_test_sleep_ms(1000);
    assert_int_equal(count_on(r1, count), 3);
    assert_int_equal(count_on(r2, count), 3);

    /* insert_quorum = 2 succeeds with both replicas up... */
    r = insert_quorum(r1, "INSERT INTO kc_t VALUES ('d', 4)", 2, &err);
    if (r < 0)
        fail_msg("quorum insert: %s", err ? err : "no answer");
    assert_int_equal(count_on(r2, count), 4);
    /* ...and fails with one down, where a plain insert still works. */
    assert_int_equal(kopt_test_clickhouse_kill9(r2), 0);
    r = insert_quorum(r1, "INSERT INTO kc_t VALUES ('e', 5)", 2, &err);
    fprintf(stderr, "quorum insert with r2 down: %d %.200s\n", r, err ? err : "");
    assert_int_not_equal(r, 0);
    free(err);
    err = NULL;
    exec_ok(r1, "INSERT INTO kc_t VALUES ('f', 6)");
    assert_int_equal(kopt_test_clickhouse_restart(r2), 0);
    fprintf(stderr, "TIMING r2 catch-up after restart %.2f s\n",
            wait_count(r2, "SELECT count() FROM kc_t WHERE k = 'f'", 1));

    kopt_test_ch_cluster_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nats_cluster_r3_survives_leader_kill),
        cmocka_unit_test(clickhouse_replicas_replicate_and_dedupe),
    };
    int failed;

    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, NULL, kopt_test_teardown_all);

    nats_Close();
    return failed;
}
