/* The aggregator's ClickHouse layer against a real clickhouse-server: the
 * HTTP client (keep-alive, gzip both ways, timeouts, errors classified for
 * retry or dead letter, credentials kept out of logs), the migrations and
 * the RowBinary rows they store, and retention. One server for the group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kopt/clickhouse.h"
#include "kopt/log.h"
#include "kopt/rowbinary.h"
#include "rows.h"
#include "schema.h"

#define SECRET "hunter2-Sup3rSecret-pw"

static kopt_test_clickhouse_t *ch;
static const char *src_dir;
static char *certs_dir; /* scripts/certs output: ca.pem, server.pem, rogue-ca.pem */
static char ca_pem[512], rogue_ca_pem[512];

static kopt_ch_client_t *client(bool compress)
{
    kopt_ch_options_t o = {.url = ch->url, .compress = compress, .timeout_ms = 20000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    return c;
}

static char *ch_query(const char *sql)
{
    char *out = NULL;
    int r = kopt_test_clickhouse_query(ch, sql, &out);

    if (r != 0)
        fprintf(stderr, "query failed: %s\n%s\n", sql, out ? out : "");
    assert_int_equal(r, 0);
    return out;
}

static void ch_expect(const char *sql, const char *want)
{
    char *out = ch_query(sql);

    assert_string_equal(out, want);
    free(out);
}

/* --- pure parts ------------------------------------------------------------ */

static void versions_errors_and_classes(void **state)
{
    kopt_ch_version_t v;
    char msg[256];
    const char *old_body = "Code: 60, e.displayText() = DB::Exception: Table kopt.nope doesn't "
                           "exist., e.what() = DB::Exception\n";
    const char *new_body = "Code: 241. DB::Exception: Memory limit (total) exceeded. "
                           "(MEMORY_LIMIT_EXCEEDED) (version 23.8.2.7 (official build))\n";

    (void)state;
    assert_int_equal(kopt_ch_version_parse("18.16.1\n", &v), 0);
    assert_int_equal(v.major, 18);
    assert_int_equal(v.minor, 16);
    assert_int_equal(v.patch, 1);
    assert_string_equal(v.text, "18.16.1");
    assert_true(kopt_ch_version_at_least(&v, 18, 16));
    assert_false(kopt_ch_version_at_least(&v, 19, 6));
    assert_int_equal(kopt_ch_version_parse("23.8.2.7", &v), 0);
    assert_true(kopt_ch_version_at_least(&v, 19, 6));
    assert_int_equal(kopt_ch_version_parse("banana", &v), -EINVAL);

    assert_int_equal(kopt_ch_parse_exception(old_body, strlen(old_body), msg, sizeof(msg)), 60);
    assert_string_equal(msg, "Table kopt.nope doesn't exist.");
    assert_int_equal(kopt_ch_parse_exception(new_body, strlen(new_body), msg, sizeof(msg)), 241);
    assert_string_equal(msg, "Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)");
    assert_int_equal(kopt_ch_parse_exception("1\n2\n", 4, msg, sizeof(msg)), 0);

    assert_int_equal(kopt_ch_classify(404, 60), KOPT_CH_PERMANENT);
    assert_int_equal(kopt_ch_classify(400, 62), KOPT_CH_PERMANENT);
    assert_int_equal(kopt_ch_classify(500, 53), KOPT_CH_PERMANENT);
    assert_int_equal(kopt_ch_classify(500, 32), KOPT_CH_PERMANENT);
    assert_int_equal(kopt_ch_classify(500, 202), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(500, 241), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(500, 0), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(503, 0), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(0, 0), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(401, 193), KOPT_CH_RETRYABLE);
    assert_int_equal(kopt_ch_classify(418, 0), KOPT_CH_PERMANENT);
    assert_int_equal(kopt_ch_classify(200, 0), KOPT_CH_OK);
    assert_int_equal(kopt_ch_classify(500, 395), KOPT_CH_PERMANENT); /* throwIf() */
    assert_int_equal(kopt_ch_classify(500, 469), KOPT_CH_PERMANENT); /* CHECK constraint */

    /* Only errors about the rows put one message to blame (and dead-letter
     * it); a statement every insert fails alike blames none. */
    {
        const int rows[] = {395, 469, 33, 32, 27, 53, 117};
        const int statement[] = {60, 81, 16, 62, 164, 50};
        kopt_ch_error_t e = {.cls = KOPT_CH_PERMANENT};

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            e.code = rows[i];
            assert_true(kopt_ch_blames_rows(&e));
        }
        for (size_t i = 0; i < sizeof(statement) / sizeof(statement[0]); i++) {
            e.code = statement[i];
            assert_false(kopt_ch_blames_rows(&e));
        }
        e.code = 0; /* a 4xx without a ClickHouse code: not the rows' fault */
        assert_false(kopt_ch_blames_rows(&e));
        e = (kopt_ch_error_t){.cls = KOPT_CH_RETRYABLE, .code = 241};
        assert_false(kopt_ch_blames_rows(&e));
    }

    assert_true(kopt_ch_identifier_ok("container_windows"));
    assert_false(kopt_ch_identifier_ok("x; DROP TABLE y"));
    assert_false(kopt_ch_identifier_ok("1abc"));
    assert_false(kopt_ch_identifier_ok(""));
}

static void schema_is_gated_by_version(void **state)
{
    agg_schema_options_t opts = {.windows_ttl_days = 30, .hourly_ttl_days = 400};
    kopt_ch_version_t old, cur;
    const char *name = NULL;
    char *sql = NULL;

    (void)state;
    kopt_ch_version_parse("18.16.1", &old);
    kopt_ch_version_parse("23.8.2.7", &cur);
    for (uint32_t v = 1; v <= 7; v++) {
        if (v == 4 || v == 5)
            continue; /* TTLs, below */
        assert_int_equal(agg_schema_sql(v, &old, "kopt", &opts, &sql, &name), 0);
        assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS kopt."));
        assert_null(strstr(sql, "CODEC"));
        assert_null(strstr(sql, "LowCardinality"));
        assert_null(strstr(sql, "TTL"));
        assert_non_null(strstr(sql, "ReplacingMergeTree("));
        free(sql);
        assert_int_equal(agg_schema_sql(v, &cur, "kopt", &opts, &sql, &name), 0);
        assert_non_null(strstr(sql, "CODEC(ZSTD(1))"));
        assert_non_null(strstr(sql, "LowCardinality(String)"));
        free(sql);
    }
    assert_int_equal(agg_schema_sql(4, &old, "kopt", &opts, &sql, &name), -EOPNOTSUPP);
    assert_string_equal(name, "container_windows_ttl");
    assert_int_equal(agg_schema_sql(4, &cur, "kopt", &opts, &sql, &name), 0);
    assert_string_equal(sql, "ALTER TABLE kopt.container_windows MODIFY TTL window_start + "
                             "INTERVAL 30 DAY");
    free(sql);
    assert_int_equal(agg_schema_sql(4, &cur, "kopt", NULL, &sql, &name), -EOPNOTSUPP);
    assert_int_equal(agg_schema_sql(99, &cur, "kopt", &opts, &sql, &name), -ENOENT);
    assert_int_equal(agg_schema_latest(), 10);
}

/* --- against the server ------------------------------------------------------ */

static void migrate_twice_applies_once(void **state)
{
    kopt_ch_client_t *c = client(false);
    kopt_ch_version_t v;
    kopt_ch_error_t err;
    unsigned applied = 99;

    (void)state;
    assert_int_equal(kopt_ch_server_version(c, &v, &err), 0);
    fprintf(stderr, "clickhouse server version %s (%d.%d)\n", v.text, v.major, v.minor);
    assert_true(v.major >= 18);
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    /* No TTL days (and no TTL on 18.16): migrations 4 and 5 stay unrecorded. */
    assert_int_equal(applied, 8);
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 0);
    ch_expect(
        "SELECT name FROM system.tables WHERE database = 'kopt' ORDER BY name",
        "archive\ncontainer_hourly\ncontainer_windows\nnode_facts\nrecommendations\nrollup_state\n"
        "schema_migrations\nworkload_facts\n");
    ch_expect("SELECT version, name FROM kopt.schema_migrations FINAL ORDER BY version",
              "1\tcreate_container_windows\n2\tcreate_container_hourly\n"
              "3\tcreate_recommendations\n6\tcreate_workload_facts\n7\tcreate_node_facts\n"
              "8\tcontainer_hourly_covered_seconds\n9\tcreate_rollup_state\n"
              "10\tcreate_archive\n");
    ch_expect("SELECT engine, partition_key, sorting_key FROM system.tables "
              "WHERE database = 'kopt' AND name = 'container_windows'",
              "ReplacingMergeTree\ttoYYYYMMDD(window_start)\tcluster, namespace, workload_kind, "
              "workload_name, pod, container, window_start\n");
    kopt_ch_client_free(c);
}

/* n windows of one container, a minute apart, starting at t0. */
/* A database made by the schema of migration 7 (before covered_seconds),
 * with a rolled-up hour in it: migration 8 adds the column, the old row
 * reads 0 (the engine's one-minute fallback) and new rollups fill it. A
 * column added by a run that died before recording it is found in
 * system.columns, not added twice. */
static void migration_adds_covered_seconds_to_an_old_database(void **state)
{
    kopt_ch_options_t o = {.url = ch->url, .database = "kopt_v7", .timeout_ms = 20000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_version_t v;
    kopt_ch_error_t err;
    unsigned applied = 99;
    char q[512];

    (void)state;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(kopt_ch_server_version(c, &v, &err), 0);
    free(ch_query("DROP DATABASE IF EXISTS kopt_v7"));
    free(ch_query("CREATE DATABASE kopt_v7"));
    free(ch_query("CREATE TABLE kopt_v7.schema_migrations (version UInt32, name String, "
                  "applied_at DateTime, server_version String) "
                  "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"));
    for (uint32_t m = 1; m <= 7; m++) {
        const char *name = NULL;
        char *sql = NULL;
        int r = agg_schema_sql(m, &v, "kopt_v7", NULL, &sql, &name);

        if (r == -EOPNOTSUPP)
            continue;
        assert_int_equal(r, 0);
        free(ch_query(sql));
        free(sql);
        snprintf(q, sizeof(q),
                 "INSERT INTO kopt_v7.schema_migrations VALUES (%u, '%s', now(), '%s')", m, name,
                 v.text);
        free(ch_query(q));
    }
    free(ch_query("INSERT INTO kopt_v7.container_hourly (cluster, namespace, workload_kind, "
                  "workload_name, container, hour, window_count, rolled_at) VALUES "
                  "('prod', 'shop', 'Deployment', 'web', 'app', 1800000000, 60, 1800003600)"));
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 3); /* 8, 9 and 10 */
    ch_expect("SELECT window_count, covered_seconds FROM kopt_v7.container_hourly", "60\t0\n");
    ch_expect("SELECT type FROM system.columns WHERE database = 'kopt_v7' AND "
              "table = 'container_hourly' AND name = 'covered_seconds'",
              "UInt64\n");
    /* Died after the ALTER, before the record: the next run records it. */
    free(ch_query("ALTER TABLE kopt_v7.schema_migrations DELETE WHERE version = 8"));
    for (int i = 0; i < 100; i++) {
        char *n = ch_query("SELECT count() FROM kopt_v7.schema_migrations WHERE version = 8");
        bool gone = strcmp(n, "0\n") == 0;

        free(n);
        if (gone)
            break;
        usleep(50000);
    }
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 1);
    ch_expect("SELECT count() FROM system.columns WHERE database = 'kopt_v7' AND "
              "table = 'container_hourly' AND name = 'covered_seconds'",
              "1\n");
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 0);
    free(ch_query("DROP DATABASE kopt_v7"));
    kopt_ch_client_free(c);
}

static void encode_windows(kopt_ch_buf_t *b, const char *pod, int64_t t0, int n,
                           uint32_t inserted_at)
{
    agg_rowbinary_batch_t id = {.cluster = "prod",
                                .node = "node-1",
                                .agent_id = "agent-a",
                                .epoch = 7,
                                .seq = 1,
                                .inserted_at = inserted_at};

    for (int i = 0; i < n; i++) {
        Kopt__V1__ContainerWindow w;
        Google__Protobuf__Timestamp s, e;

        kopt__v1__container_window__init(&w);
        google__protobuf__timestamp__init(&s);
        google__protobuf__timestamp__init(&e);
        s.seconds = t0 + 60 * i;
        e.seconds = s.seconds + 60;
        w.namespace_ = "shop";
        w.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
        w.workload_name = "web";
        w.pod = (char *)pod;
        w.container = "app";
        w.window_start = &s;
        w.window_end = &e;
        w.cpu_usage_mean_cores = 0.25 * (i % 4 + 1);
        w.memory_working_set_peak_bytes = 1000000 + (uint64_t)i;
        w.oom_kills = i == 3;
        w.sample_count = 12;
        assert_int_equal(agg_rowbinary_window(b, &id, &w), 0);
    }
}

static void reinserted_windows_replace_themselves(void **state)
{
    kopt_ch_client_t *plain = client(false), *gz = client(true);
    kopt_ch_buf_t b = {0};
    kopt_ch_error_t err;
    int64_t t0 = (time(NULL) / 86400 - 2) * 86400; /* two days ago, 00:00 UTC */
    char *body = NULL;
    size_t len = 0;

    (void)state;
    encode_windows(&b, "web-1", t0, 50, (uint32_t)time(NULL));
    assert_int_equal(kopt_ch_insert(plain, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS,
                                    "RowBinary", b.data, b.len, &err),
                     0);
    /* The same windows again (a redelivery), gzip'd this time (> 1 KiB). */
    b.len = 0;
    encode_windows(&b, "web-1", t0, 50, (uint32_t)time(NULL) + 1);
    assert_true(b.len > 1024);
    assert_int_equal(kopt_ch_insert(gz, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS,
                                    "RowBinary", b.data, b.len, &err),
                     0);
    ch_expect("SELECT count(), sum(cpu_usage_mean_cores), sum(oom_kills), "
              "max(memory_working_set_peak_bytes), any(workload_kind) "
              "FROM kopt.container_windows FINAL",
              "50\t30.75\t1\t1000049\tDeployment\n");
    /* A gzip'd answer (enable_http_compression=1) decodes to the same text. */
    assert_int_equal(kopt_ch_query(gz,
                                   "SELECT count() FROM container_windows FINAL "
                                   "WHERE pod = 'web-1'",
                                   &body, &len, &err),
                     0);
    assert_string_equal(body, "50\n");
    assert_int_equal(len, 3);
    free(body);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(kopt_ch_query(plain, "SELECT 1", &body, NULL, &err), 0);
        free(body);
    }
    /* Keep-alive: 21 requests, one connection each client. */
    assert_int_equal(kopt_ch_connections_opened(plain), 1);
    assert_int_equal(kopt_ch_connections_opened(gz), 1);
    kopt_ch_buf_free(&b);
    kopt_ch_client_free(plain);
    kopt_ch_client_free(gz);
}

/* Both directions of kopt/rowbinary.h against the real server: rows written
 * by the encoder into a table of every type kopt uses, read back as
 * ClickHouse writes them (SELECT ... FORMAT RowBinary) by the decoder. */
static void rowbinary_round_trips_through_the_server(void **state)
{
    static char *const labels[] = {"zone", "", "a'b\\c"};
    kopt_ch_options_t o = {.url = ch->url, .database = "kopt_rb", .timeout_ms = 20000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;
    kopt_ch_buf_t b = {0};
    kopt_ch_reader_t r;
    char *body = NULL, *s = NULL;
    size_t len = 0, n;
    const uint8_t *p;

    (void)state;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(kopt_ch_query_flags(c, "CREATE DATABASE IF NOT EXISTS kopt_rb",
                                         KOPT_CH_NO_DATABASE, NULL, NULL, &err),
                     0);
    assert_int_equal(kopt_ch_query(c,
                                   "CREATE TABLE IF NOT EXISTS t (k UInt32, s String, "
                                   "l Array(String), h Array(UInt16), c Array(UInt32), "
                                   "u UInt64, f Float64, d DateTime) ENGINE = Memory",
                                   NULL, NULL, &err),
                     0);
    for (uint32_t k = 0; k < 2; k++) {
        assert_int_equal(kopt_ch_put_u32(&b, k), 0);
        assert_int_equal(kopt_ch_put_string(&b, k ? "" : "tab\there"), 0);
        assert_int_equal(kopt_ch_put_strings(&b, labels, k ? 0 : 3), 0);
        assert_int_equal(kopt_ch_put_varuint(&b, 2), 0);
        assert_int_equal(kopt_ch_put_u16(&b, 7), 0);
        assert_int_equal(kopt_ch_put_u16(&b, 65535), 0);
        assert_int_equal(kopt_ch_put_varuint(&b, 2), 0);
        assert_int_equal(kopt_ch_put_u32(&b, 1), 0);
        assert_int_equal(kopt_ch_put_u32(&b, 4000000000u), 0);
        assert_int_equal(kopt_ch_put_u64(&b, UINT64_MAX - k), 0);
        assert_int_equal(kopt_ch_put_f64(&b, -0.125), 0);
        assert_int_equal(kopt_ch_put_u32(&b, 1700000000 + k), 0);
    }
    assert_int_equal(kopt_ch_insert(c, "t", NULL, "RowBinary", b.data, b.len, &err), 0);
    assert_int_equal(
        kopt_ch_query(c, "SELECT * FROM t ORDER BY k FORMAT RowBinary", &body, &len, &err), 0);
    /* The server writes back exactly what the encoder wrote. */
    assert_int_equal(len, b.len);
    assert_memory_equal(body, b.data, len);
    kopt_ch_reader_init(&r, body, len);
    for (uint32_t k = 0; k < 2; k++) {
        assert_int_equal(kopt_ch_get_u32(&r), k);
        p = kopt_ch_get_string(&r, &n);
        assert_int_equal(n, k ? 0 : 8);
        assert_memory_equal(p, "tab\there", n);
        assert_int_equal(kopt_ch_get_array_len(&r, 1), k ? 0 : 3);
        for (size_t i = 0; i < (k ? 0 : 3); i++) {
            assert_int_equal(kopt_ch_get_strdup(&r, &s), 0);
            assert_string_equal(s, labels[i]);
            free(s);
        }
        assert_int_equal(kopt_ch_get_array_len(&r, 2), 2);
        assert_int_equal(kopt_ch_get_u16(&r), 7);
        assert_int_equal(kopt_ch_get_u16(&r), 65535);
        assert_int_equal(kopt_ch_get_array_len(&r, 4), 2);
        assert_int_equal(kopt_ch_get_u32(&r), 1);
        assert_int_equal(kopt_ch_get_u32(&r), 4000000000u);
        assert_true(kopt_ch_get_u64(&r) == UINT64_MAX - k);
        assert_true(kopt_ch_get_f64(&r) == -0.125);
        assert_int_equal(kopt_ch_get_u32(&r), 1700000000 + k);
    }
    assert_int_equal(kopt_ch_reader_status(&r), 0);
    assert_int_equal(kopt_ch_reader_left(&r), 0);
    free(body);
    /* Values the server computes, read as the advisor reads its answers. */
    assert_int_equal(kopt_ch_query(c,
                                   "SELECT toUInt32(toDateTime(1700000000)), "
                                   "arrayMap(x -> toUInt32(x), [1, 2]), count() "
                                   "FROM t FORMAT RowBinary",
                                   &body, &len, &err),
                     0);
    kopt_ch_reader_init(&r, body, len);
    assert_int_equal(kopt_ch_get_u32(&r), 1700000000);
    assert_int_equal(kopt_ch_get_array_len(&r, 4), 2);
    assert_int_equal(kopt_ch_get_u32(&r), 1);
    assert_int_equal(kopt_ch_get_u32(&r), 2);
    assert_int_equal(kopt_ch_get_u64(&r), 2);
    assert_int_equal(kopt_ch_reader_status(&r), 0);
    assert_int_equal(kopt_ch_reader_left(&r), 0);
    free(body);
    assert_int_equal(kopt_ch_query(c, "DROP DATABASE kopt_rb", NULL, NULL, &err), 0);
    kopt_ch_buf_free(&b);
    kopt_ch_client_free(c);
}

static void errors_are_classified(void **state)
{
    kopt_ch_client_t *c = client(false);
    kopt_ch_buf_t b = {0};
    kopt_ch_error_t err;
    char *body = NULL;

    (void)state;
    assert_int_equal(kopt_ch_query(c, "SELECT * FROM kopt.no_such_table", &body, NULL, &err),
                     -EREMOTEIO);
    assert_null(body);
    assert_int_equal(err.code, 60);
    assert_int_equal(err.cls, KOPT_CH_PERMANENT);
    assert_int_equal(err.http_status, 404);
    assert_non_null(strstr(err.message, "no_such_table"));
    fprintf(stderr, "unknown table: %s\n", err.message);

    assert_int_equal(kopt_ch_query(c, "SELEC 1", NULL, NULL, &err), -EREMOTEIO);
    assert_int_equal(err.code, 62);
    assert_int_equal(err.cls, KOPT_CH_PERMANENT);
    assert_int_equal(err.http_status, 400);

    /* A truncated RowBinary body: permanent, and nothing of it is stored. */
    encode_windows(&b, "web-trunc", 1700000000, 3, 1700000000);
    assert_int_equal(kopt_ch_insert(c, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS,
                                    "RowBinary", b.data, b.len - 5, &err),
                     -EREMOTEIO);
    fprintf(stderr, "truncated insert: code %d http %ld: %s\n", err.code, err.http_status,
            err.message);
    assert_int_equal(err.cls, KOPT_CH_PERMANENT);
    ch_expect("SELECT count() FROM kopt.container_windows WHERE pod = 'web-trunc'", "0\n");
    assert_int_equal(kopt_ch_insert(c, "no_such_table", NULL, "RowBinary", b.data, b.len, &err),
                     -EREMOTEIO);
    assert_int_equal(err.code, 60);
    assert_int_equal(kopt_ch_insert(c, "t; DROP", NULL, "RowBinary", b.data, b.len, &err), -EINVAL);
    kopt_ch_buf_free(&b);
    kopt_ch_client_free(c);
}

/* A listener that never answers: the total timeout fires, retryable. */
static void timeouts_are_retryable(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    kopt_ch_options_t o = {.timeout_ms = 300};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;
    char url[64];
    double t0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    o.url = url;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    t0 = kopt_test_now();
    assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), -ETIMEDOUT);
    assert_true(kopt_test_now() - t0 < 3.0);
    assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
    assert_int_equal(err.code, 0);
    kopt_ch_client_free(c);
    close(fd);
}

static int log_to_file(char *path, size_t size)
{
    int fd;

    snprintf(path, size, "/tmp/kopt-ch-log-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    kopt_log_setup("aggregator", KOPT_LOG_FORMAT_JSON, KOPT_LOG_DEBUG, fd);
    return fd;
}

static void credentials_never_logged(void **state)
{
    char log_path[64], pw_path[80], url[160];
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;
    int fd = log_to_file(log_path, sizeof(log_path));
    FILE *f;

    (void)state;
    snprintf(pw_path, sizeof(pw_path), "%s.pw", log_path);
    f = fopen(pw_path, "w");
    assert_non_null(f);
    fputs(SECRET "\n", f);
    fclose(f);

    /* From a file: the harness's "default" has no password, so it is wrong. */
    o.url = ch->url;
    o.password_file = pw_path;
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), -EACCES);
    fprintf(stderr, "wrong password: code %d http %ld: %s\n", err.code, err.http_status,
            err.message);
    assert_int_equal(err.http_status, 401);
    assert_int_equal(err.code, 193);
    assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
    assert_null(strstr(err.message, SECRET));
    kopt_ch_client_free(c);

    /* From the URL: taken out of it. */
    snprintf(url, sizeof(url), "http://default:%s@127.0.0.1:%d/", SECRET, ch->http_port);
    o = (kopt_ch_options_t){.url = url};
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_null(strstr(kopt_ch_url(c), SECRET));
    assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), -EACCES);
    kopt_ch_client_free(c);

    /* From the environment; and the right (empty) password works. */
    setenv("KOPT_TEST_CH_PASSWORD", SECRET, 1);
    o = (kopt_ch_options_t){
        .url = ch->url, .user = "default", .password_env = "KOPT_TEST_CH_PASSWORD"};
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), -EACCES);
    kopt_ch_client_free(c);
    unsetenv("KOPT_TEST_CH_PASSWORD");
    o = (kopt_ch_options_t){.url = ch->url, .user = "default", .password = ""};
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), 0);
    kopt_ch_client_free(c);

    o = (kopt_ch_options_t){.url = ch->url, .password_file = "/nonexistent/pw"};
    assert_int_equal(kopt_ch_client_new(&o, &c, &err), -EINVAL);
    assert_null(c);

    kopt_log_setup("aggregator", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    close(fd);
    assert_int_equal(kopt_test_log_contains(log_path, "clickhouse request failed"), 1);
    assert_int_equal(kopt_test_log_contains(log_path, "193"), 1);
    assert_int_equal(kopt_test_log_contains(log_path, SECRET), 0);
    assert_int_equal(kopt_test_log_contains(log_path, "Sup3rSecret"), 0);
    unlink(log_path);
    unlink(pw_path);
}

/* kopt_ch_set_session: a TEMPORARY table exists in its session only, takes
 * inserts by its bare name (kopt_ch_insert_flags), and a bad id is refused.
 * docs/stack-facts.md, "temporary tables per HTTP session". */
static void sessions_hold_temporary_tables(void **state)
{
    kopt_ch_client_t *a = client(false), *b = client(true), *none = client(false);
    kopt_ch_error_t err;
    char *body = NULL;
    static const char rows[] = "1\n2\n3\n";

    (void)state;
    assert_int_equal(kopt_ch_set_session(a, "Bad id", 60), -EINVAL);
    assert_int_equal(kopt_ch_set_session(a, "kopt-test-a", 60), 0);
    assert_int_equal(kopt_ch_set_session(b, "kopt-test-b", 0), 0);
    assert_int_equal(kopt_ch_query(a, "CREATE TEMPORARY TABLE t (x UInt8)", NULL, NULL, &err), 0);
    assert_int_equal(
        kopt_ch_insert_flags(a, "t", NULL, "TSV", rows, strlen(rows), KOPT_CH_NO_DATABASE, &err),
        0);
    assert_int_equal(kopt_ch_query(a, "SELECT sum(x) FROM t", &body, NULL, &err), 0);
    assert_string_equal(body, "6\n");
    free(body);
    /* Another session, and none, do not see it (code 60). */
    assert_int_equal(kopt_ch_query(b, "SELECT sum(x) FROM t", NULL, NULL, &err), -EREMOTEIO);
    assert_int_equal(err.code, 60);
    assert_int_equal(kopt_ch_query(none, "SELECT sum(x) FROM t", NULL, NULL, &err), -EREMOTEIO);
    assert_int_equal(err.code, 60);
    /* Out of the session, the client is as before. */
    assert_int_equal(kopt_ch_set_session(a, NULL, 0), 0);
    assert_int_equal(kopt_ch_query(a, "SELECT sum(x) FROM t", NULL, NULL, &err), -EREMOTEIO);
    kopt_ch_client_free(a);
    kopt_ch_client_free(b);
    kopt_ch_client_free(none);
}

static void retention_drops_old_partitions(void **state)
{
    kopt_ch_client_t *c = client(false);
    kopt_ch_buf_t b = {0};
    kopt_ch_error_t err;
    int64_t now = time(NULL);
    unsigned dropped = 99;

    (void)state;
    encode_windows(&b, "web-old", now - 40 * 86400, 2, (uint32_t)now);
    encode_windows(&b, "web-new", now - 3600, 2, (uint32_t)now);
    assert_int_equal(kopt_ch_insert(c, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS,
                                    "RowBinary", b.data, b.len, &err),
                     0);
    ch_expect("SELECT count() FROM kopt.container_windows FINAL WHERE pod = 'web-old'", "2\n");
    assert_int_equal(agg_schema_retention(c, "container_windows", 30, 0, &dropped, &err), 0);
    assert_int_equal(dropped, 1);
    ch_expect("SELECT count() FROM kopt.container_windows FINAL WHERE pod = 'web-old'", "0\n");
    ch_expect("SELECT count() FROM kopt.container_windows FINAL WHERE pod = 'web-new'", "2\n");
    /* Two days old: kept. Again: nothing more to drop. */
    ch_expect("SELECT count() FROM kopt.container_windows FINAL WHERE pod = 'web-1'", "50\n");
    assert_int_equal(agg_schema_retention(c, "container_windows", 30, 0, &dropped, &err), 0);
    assert_int_equal(dropped, 0);
    /* Unpartitioned tables are never touched. */
    assert_int_equal(agg_schema_retention(c, "recommendations", 1, 0, &dropped, &err), 0);
    assert_int_equal(dropped, 0);
    kopt_ch_buf_free(&b);
    kopt_ch_client_free(c);
}

static void kill9_is_retryable_then_recovers(void **state)
{
    kopt_ch_client_t *c = client(true);
    kopt_ch_error_t err;
    char *body = NULL;
    unsigned applied = 99;

    (void)state;
    assert_int_equal(kopt_ch_query(c, "SELECT 1", &body, NULL, &err), 0);
    free(body);
    assert_int_equal(kopt_test_clickhouse_kill9(ch), 0);
    assert_true(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err) < 0);
    fprintf(stderr, "server down: r %d (%s) class %s: %s\n", err.r, strerror(-err.r),
            kopt_ch_class_name(err.cls), err.message);
    assert_true(err.r == -ECONNREFUSED || err.r == -ECONNRESET);
    assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
    assert_int_equal(err.code, 0);
    assert_int_equal(err.http_status, 0);
    assert_int_equal(kopt_test_clickhouse_restart(ch), 0);
    /* The same client works again, and the data is still there. */
    assert_int_equal(kopt_ch_query(c,
                                   "SELECT count() FROM container_windows FINAL "
                                   "WHERE pod = 'web-1'",
                                   &body, NULL, &err),
                     0);
    assert_string_equal(body, "50\n");
    free(body);
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    assert_int_equal(applied, 0);
    kopt_ch_client_free(c);
}

/* --- TLS (https_port with the dev CA's server certificate) ------------------ */

static kopt_ch_client_t *tls_client(const char *ca)
{
    kopt_ch_options_t o = {.url = ch->https_url, .ca_file = ca, .timeout_ms = 20000};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    return c;
}

/* Verified against the dev CA: queries, an insert and keep-alive over TLS. */
static void tls_verified_with_the_ca(void **state)
{
    kopt_ch_client_t *c = tls_client(ca_pem);
    kopt_ch_buf_t b = {0};
    kopt_ch_error_t err;
    kopt_ch_version_t v;
    unsigned applied = 99;
    char *body = NULL;

    (void)state;
    assert_int_equal(kopt_ch_server_version(c, &v, &err), 0);
    fprintf(stderr, "over %s: ClickHouse %s\n", kopt_ch_url(c), v.text);
    assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
    encode_windows(&b, "web-tls", 1700000000, 4, 1700000000);
    assert_int_equal(kopt_ch_insert(c, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS,
                                    "RowBinary", b.data, b.len, &err),
                     0);
    assert_int_equal(kopt_ch_query(c,
                                   "SELECT count() FROM container_windows FINAL "
                                   "WHERE pod = 'web-tls'",
                                   &body, NULL, &err),
                     0);
    assert_string_equal(body, "4\n");
    free(body);
    assert_int_equal(kopt_ch_connections_opened(c), 1);
    kopt_ch_buf_free(&b);
    kopt_ch_client_free(c);
}

/* Another CA (and the system's, which knows no dev CA): refused at the
 * handshake, at once, as a TLS error that names the certificate. */
static void tls_wrong_ca_fails_fast(void **state)
{
    const char *cas[] = {rogue_ca_pem, NULL};

    (void)state;
    for (size_t i = 0; i < sizeof(cas) / sizeof(cas[0]); i++) {
        kopt_ch_client_t *c = tls_client(cas[i]);
        kopt_ch_error_t err;
        double t0 = kopt_test_now();

        assert_int_equal(kopt_ch_query(c, "SELECT 1", NULL, NULL, &err), -EPROTO);
        fprintf(stderr, "CA %s: r %d class %s in %.3f s: %s\n", cas[i] ? "rogue" : "system", err.r,
                kopt_ch_class_name(err.cls), kopt_test_now() - t0, err.message);
        assert_true(kopt_test_now() - t0 < 2.0);
        assert_int_equal(err.cls, KOPT_CH_RETRYABLE);
        assert_int_equal(err.http_status, 0);
        assert_non_null(strstr(err.message, "certificate"));
        kopt_ch_client_free(c);
    }
}

static int need_tls(void **state)
{
    (void)state;
    if (!ch || !ch->https_port)
        skip();
    return 0;
}

static int group_setup(void **state)
{
    kopt_test_clickhouse_opts_t opts = {0};
    char cert[512], key[512];
    int r;

    (void)state;
    certs_dir = src_dir ? kopt_test_tmpdir("kopt-itest-chcerts") : NULL;
    if (certs_dir && kopt_test_make_certs(src_dir, certs_dir) == 0) {
        snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
        snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
        snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", certs_dir);
        snprintf(rogue_ca_pem, sizeof(rogue_ca_pem), "%s/rogue-ca.pem", certs_dir);
        opts.tls_cert = cert;
        opts.tls_key = key;
    }
    r = kopt_test_clickhouse_start_opts(&ch, &opts);
    if (r == -ENOENT) {
        fprintf(stderr, "clickhouse-server not installed: skipping the server tests\n");
        ch = NULL;
    }
    return r == 0 || r == -ENOENT ? 0 : -1;
}

static int group_teardown(void **state)
{
    int r = kopt_test_teardown_all(state);

    if (certs_dir) {
        kopt_test_rmtree(certs_dir);
        free(certs_dir);
        certs_dir = NULL;
    }
    return r;
}

static int need_server(void **state)
{
    (void)state;
    if (!ch)
        skip();
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_errors_and_classes),
        cmocka_unit_test(schema_is_gated_by_version),
        cmocka_unit_test(timeouts_are_retryable),
        cmocka_unit_test_setup(migrate_twice_applies_once, need_server),
        cmocka_unit_test_setup(migration_adds_covered_seconds_to_an_old_database, need_server),
        cmocka_unit_test_setup(reinserted_windows_replace_themselves, need_server),
        cmocka_unit_test_setup(rowbinary_round_trips_through_the_server, need_server),
        cmocka_unit_test_setup(errors_are_classified, need_server),
        cmocka_unit_test_setup(credentials_never_logged, need_server),
        cmocka_unit_test_setup(sessions_hold_temporary_tables, need_server),
        cmocka_unit_test_setup(retention_drops_old_partitions, need_server),
        cmocka_unit_test_setup(tls_verified_with_the_ca, need_tls),
        cmocka_unit_test_setup(tls_wrong_ca_fails_fast, need_tls),
        cmocka_unit_test_setup(kill9_is_retryable_then_recovers, need_server),
    };
    int failed;

    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    src_dir = argc > 1 ? argv[1] : NULL;
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return failed;
}
