/* kopt's ClickHouse layer on two real replicas with ZooKeeper: migrations
 * with a cluster create Replicated tables on every URL (and are idempotent),
 * an insert with insert_quorum = 2 is on both replicas when it returns, a
 * repeated block is stored once, a quorum insert with a replica down fails
 * retryable, and a client given both URLs fails over when the one it uses
 * dies, and stays on the healthy one. Timings go to stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "kopt/clickhouse.h"
#include "schema.h"

static kopt_test_ch_cluster_t *chc;

static int group_setup(void **state)
{
    int r = kopt_test_ch_cluster_start(&chc);

    (void)state;
    if (r == 0)
        fprintf(stderr, "TIMING zookeeper %.2f s, zookeeper + 2 replicas %.2f s\n",
                chc->zk->start_seconds, chc->start_seconds);
    return r == 0 ? 0 : -1;
}

static kopt_ch_client_t *client(const char *urls, const char *cluster, uint32_t quorum)
{
    kopt_ch_options_t o = {.url = urls,
                           .database = "kopt",
                           .cluster = cluster,
                           .insert_quorum = quorum,
                           .insert_quorum_timeout_ms = 5000,
                           .timeout_ms = 30000,
                           .connect_timeout_ms = 2000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;

    if (kopt_ch_client_new(&o, &c, &err) != 0)
        fail_msg("client: %s", err.message);
    return c;
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

/* kopt_ch_url() is the URL as curl normalised it ("http://h:p/"). */
static void assert_on(kopt_ch_client_t *c, const kopt_test_clickhouse_t *ch)
{
    assert_int_equal(strncmp(kopt_ch_url(c), ch->url, strlen(ch->url)), 0);
}

static void migrations_create_replicated_tables_on_every_replica(void **state)
{
    kopt_ch_client_t *c = client(chc->urls, chc->name, 0);
    kopt_ch_error_t err;
    unsigned applied = 0;
    int r;

    (void)state;
    r = agg_schema_migrate(c, NULL, &applied, &err);
    if (r != 0)
        fail_msg("migrate: %s", err.message);
    fprintf(stderr, "applied %u migrations over %zu replicas\n", applied, kopt_ch_url_count(c));
    assert_true(applied >= 2 * 6);
    for (int i = 0; i < KOPT_TEST_CH_REPLICAS; i++) {
        /* Every kopt table but schema_migrations is replicated, on each. */
        assert_int_equal(count_on(chc->replicas[i],
                                  "SELECT countIf(engine LIKE 'Replicated%') = count() - 1 AND "
                                  "count() >= 6 FROM system.tables WHERE database = 'kopt'"),
                         1);
        assert_int_equal(count_on(chc->replicas[i],
                                  "SELECT engine = 'ReplacingMergeTree' FROM system.tables WHERE "
                                  "database = 'kopt' AND name = 'schema_migrations'"),
                         1);
        assert_int_equal(count_on(chc->replicas[i], "SELECT count() FROM system.replicas WHERE "
                                                    "database = 'kopt' AND is_readonly = 0"),
                         count_on(chc->replicas[i], "SELECT count() FROM system.tables WHERE "
                                                    "database = 'kopt'") -
                             1);
    }
    /* Again: nothing left to do on either replica. */
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 0);
    /* The client is back on the first (local) replica, failover allowed. */
    assert_on(c, chc->replicas[0]);
    kopt_ch_client_free(c);
}

static const char row[] = "c1\tr1\t2024-01-01 00:00:00\t[]\t60\t2024-01-01 00:00:00\n";
static const char count_sql[] = "SELECT count() FROM kopt.rollup_state";

static void quorum_insert_is_on_both_and_deduplicated(void **state)
{
    kopt_ch_client_t *c = client(chc->replicas[0]->url, chc->name, 2);
    kopt_ch_error_t err;
    double t0;

    (void)state;
    t0 = kopt_test_now();
    if (kopt_ch_insert(c, "rollup_state", NULL, "TabSeparated", row, strlen(row), &err) != 0)
        fail_msg("insert: %s", err.message);
    fprintf(stderr, "TIMING quorum-2 insert %.3f s\n", kopt_test_now() - t0);
    /* Quorum: on the second replica as soon as the insert returned. */
    assert_int_equal(count_on(chc->replicas[1], count_sql), 1);
    /* The same block again (a retry after a lost answer): stored once. */
    assert_int_equal(
        kopt_ch_insert(c, "rollup_state", NULL, "TabSeparated", row, strlen(row), &err), 0);
    assert_int_equal(count_on(chc->replicas[0], count_sql), 1);
    assert_int_equal(count_on(chc->replicas[1], count_sql), 1);

    /* The second replica down: the quorum cannot be met; retryable. */
    assert_int_equal(kopt_test_clickhouse_kill9(chc->replicas[1]), 0);
    {
        static const char row2[] = "c2\tr1\t2024-01-01 00:00:00\t[]\t60\t2024-01-01 00:00:00\n";
        int r = kopt_ch_insert(c, "rollup_state", NULL, "TabSeparated", row2, strlen(row2), &err);

        fprintf(stderr, "quorum insert with a replica down: %d code %d %s\n", r, err.code,
                err.message);
        assert_int_equal(r, -EREMOTEIO);
        assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
    }
    assert_int_equal(kopt_test_clickhouse_restart(chc->replicas[1]), 0);
    kopt_ch_client_free(c);
}

static void client_fails_over_to_the_healthy_replica(void **state)
{
    kopt_ch_client_t *c = client(chc->urls, NULL, 0);
    kopt_ch_error_t err;
    char *body = NULL;
    double t0;

    (void)state;
    assert_int_equal(kopt_ch_url_count(c), 2);
    assert_int_equal(kopt_ch_query(c, count_sql, &body, NULL, &err), 0);
    free(body);
    assert_on(c, chc->replicas[0]);

    assert_int_equal(kopt_test_clickhouse_kill9(chc->replicas[0]), 0);
    t0 = kopt_test_now();
    if (kopt_ch_query(c, count_sql, &body, NULL, &err) != 0)
        fail_msg("after failover: %s", err.message);
    fprintf(stderr, "TIMING query with failover %.3f s\n", kopt_test_now() - t0);
    assert_true(atol(body) >= 1);
    free(body);
    assert_int_equal(kopt_ch_failovers(c), 1);
    assert_on(c, chc->replicas[1]);
    /* It stays on the healthy one: no second failover. */
    assert_int_equal(kopt_ch_query(c, count_sql, &body, NULL, &err), 0);
    free(body);
    assert_int_equal(kopt_ch_failovers(c), 1);

    /* Both down: the error of the last one, retryable. */
    assert_int_equal(kopt_test_clickhouse_kill9(chc->replicas[1]), 0);
    assert_int_equal(kopt_ch_query(c, count_sql, NULL, NULL, &err), -ECONNREFUSED);
    assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_test_clickhouse_restart(chc->replicas[0]), 0);
    assert_int_equal(kopt_test_clickhouse_restart(chc->replicas[1]), 0);
    kopt_ch_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_create_replicated_tables_on_every_replica),
        cmocka_unit_test(quorum_insert_is_on_both_and_deduplicated),
        cmocka_unit_test(client_fails_over_to_the_healthy_replica),
    };

    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, kopt_test_teardown_all);
}
