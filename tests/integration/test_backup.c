/* Backup and restore of the kopt database (aggregator/backup.c, restore.c)
 * against a real clickhouse-server and a real S3-protocol server (s3rver
 * behind the harness's SigV4-checking front): the round trip through the
 * kopt-aggregator binary, and the faults — a corrupt or truncated object, a
 * manifest that disagrees with its data, a store that is down or answers
 * 500/403 mid-backup, a restore into a database that holds data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "harness.h"
#include "storage_env.h"
#include "kopt/clickhouse.h"
#include "kopt/objstore.h"
#include "schema.h"

static kopt_test_clickhouse_t *ch;
static kopt_test_s3_t *s3;
static const char *src_root = ".";
static const char *aggregator_bin;
static char *tmp;

/* Migrated schema plus windows over 6 days, hourly rows with histograms. */
static void fill(const char *db, unsigned windows)
{
    kopt_ch_client_t *c = itest_ch_client(ch, db, 30000);
    kopt_ch_error_t err;
    char sql[1024];

    assert_int_equal(agg_schema_migrate(c, NULL, NULL, &err), 0);
    itest_insert_windows(ch, db, windows);
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.container_hourly (cluster, namespace, workload_name, container, hour, "
             "cpu_hist_index, cpu_hist_count) SELECT 'c1', 'ns', 'w', 'app', "
             "toDateTime('2026-10-01 00:00:00') + number * 3600, [1, 2, toUInt16(number %% 50)], "
             "[3, 4, toUInt32(number)] FROM system.numbers LIMIT 100",
             db);
    free(itest_ch_query(ch, sql));
    kopt_ch_client_free(c);
}

/* "rows checksum" of every table, FINAL as the manifest counts them. */
static char *fingerprint(const char *db)
{
    const char *tables[] = {"container_windows", "container_hourly", "schema_migrations"};
    char *out = calloc(1, 1024);

    assert_non_null(out);
    for (size_t i = 0; i < 3; i++) {
        char sql[512], *r;

        snprintf(sql, sizeof(sql), "SELECT count(), sum(cityHash64(*)) FROM %s.%s FINAL FORMAT TSV",
                 db, tables[i]);
        r = itest_ch_query(ch, sql);
        strncat(out, r, 1024 - strlen(out) - 1);
        free(r);
    }
    return out;
}

static long rows_in(const char *db)
{
    char sql[512], *r;
    long n;

    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.parts WHERE database = '%s' AND active AND rows > 0 AND "
             "table != 'schema_migrations' FORMAT TSV",
             db);
    r = itest_ch_query(ch, sql);
    n = atol(r);
    free(r);
    return n;
}

static int run_aggregator(const char *db, const char *sub, const char *prefix)
{
    char log[512], dbarg[128], url[256];
    char *argv[] = {(char *)aggregator_bin,
                    (char *)sub,
                    "--clickhouse-url",
                    ch->url,
                    dbarg,
                    "--object-store-url",
                    url,
                    "--object-store-credentials-file",
                    s3->credentials_file,
                    NULL};

    snprintf(dbarg, sizeof(dbarg), "--clickhouse-database=%s", db);
    kopt_test_s3_store_url(s3, prefix, url, sizeof(url));
    snprintf(log, sizeof(log), "%s/aggregator-%s-%s.log", tmp, db, sub);
    int r = kopt_test_proc_run(argv, log, 120000);
    if (r != 0)
        kopt_test_log_tail(log, 20);
    return r;
}

static int setup(void **state)
{
    (void)state;
    if (itest_storage_start("kopt-backup-test", src_root, &ch, &s3, &tmp) < 0)
        return -1;
    return 0;
}

static void roundtrip_through_the_binary(void **state)
{
    (void)state;
    char *before, *after, *out;

    itest_drop_db(ch, "bk_rt");
    fill("bk_rt", 3000);
    before = fingerprint("bk_rt");
    assert_int_equal(run_aggregator("bk_rt", "backup", "rt"), 0);
    /* No staging table is left behind. */
    out = itest_ch_query(ch, "SELECT count() FROM system.tables WHERE database = 'bk_rt' AND "
                             "substring(name, 1, 1) = '_' FORMAT TSV");
    assert_string_equal(out, "0\n");
    free(out);
    /* Rows written after the backup are not in it (JetStream replays them). */
    free(itest_ch_query(ch, "INSERT INTO bk_rt.container_windows (cluster, window_start) VALUES "
                            "('late', toDateTime('2026-11-20 00:00:00'))"));
    itest_drop_db(ch, "bk_rt");
    assert_int_equal(run_aggregator("bk_rt", "restore", "rt"), 0);
    after = fingerprint("bk_rt");
    assert_string_equal(after, before);
    out = itest_ch_query(
        ch, "SELECT count() FROM bk_rt.container_windows WHERE cluster = 'late' FORMAT TSV");
    assert_string_equal(out, "0\n");
    free(out);
    /* The restored migrations record: nothing left to apply. */
    {
        kopt_ch_client_t *c = itest_ch_client(ch, "bk_rt", 30000);
        kopt_ch_error_t err;
        unsigned applied = 99;

        assert_int_equal(agg_schema_migrate(c, NULL, &applied, &err), 0);
        assert_int_equal(applied, 0);
        kopt_ch_client_free(c);
    }
    /* A restore into a database with data is refused, the data untouched. */
    assert_int_equal(run_aggregator("bk_rt", "restore", "rt"), 1);
    free(after);
    after = fingerprint("bk_rt");
    assert_string_equal(after, before);
    free(before);
    free(after);
    itest_drop_db(ch, "bk_rt");
}

/* One backup through the library; returns its id in id[32]. */
static void backup_lib(const char *db, const char *prefix, const char *want_id, char *id)
{
    kopt_ch_client_t *c = itest_ch_client(ch, db, 30000);
    kopt_objstore_t *st = itest_store(s3, 3, 10000);
    agg_backup_options_t o = {.prefix = prefix, .id = want_id};
    agg_backup_result_t res;
    char why[512] = "";
    int r = agg_backup_run(c, st, &o, &res, why, sizeof(why));

    if (r < 0)
        fprintf(stderr, "backup: %s\n", why);
    assert_int_equal(r, 0);
    assert_true(res.partitions > 3);
    snprintf(id, 32, "%s", res.id);
    kopt_objstore_free(st);
    kopt_ch_client_free(c);
}

static int restore_lib(const char *db, const char *prefix, const char *id, char *why,
                       size_t why_len)
{
    kopt_ch_client_t *c = itest_ch_client(ch, db, 30000);
    kopt_objstore_t *st = itest_store(s3, 2, 10000);
    agg_restore_result_t res;
    int r = agg_restore_run(c, st, prefix, id, &res, why, why_len);

    kopt_objstore_free(st);
    kopt_ch_client_free(c);
    return r;
}

/* The manifest of a backup, parsed. */
static void manifest(const char *prefix, const char *id, agg_manifest_t *m)
{
    kopt_objstore_t *st = itest_store(s3, 2, 10000);
    kopt_objstore_error_t err;
    char key[256], *json = NULL, why[256];
    size_t len = 0;

    snprintf(key, sizeof(key), "%s/backups/%s/manifest.json", prefix, id);
    assert_int_equal(kopt_objstore_get(st, key, &json, &len, &err), 0);
    assert_int_equal(agg_manifest_parse(json, len, prefix, m, why, sizeof(why)), 0);
    free(json);
    kopt_objstore_free(st);
}

static void truncated_or_corrupt_object_is_refused(void **state)
{
    (void)state;
    char id[32], why[512] = "";
    agg_manifest_t m;
    kopt_objstore_t *st;
    kopt_objstore_error_t err;
    char *data = NULL;
    size_t len = 0;

    itest_drop_db(ch, "bk_bad");
    fill("bk_bad", 2000);
    backup_lib("bk_bad", "bad", NULL, id);
    manifest("bad", id, &m);
    /* The 2nd partition of container_windows. */
    const agg_manifest_part_t *p = NULL;
    for (size_t i = 0; i < m.n_tables; i++)
        if (strcmp(m.tables[i].name, "container_windows") == 0)
            p = &m.tables[i].parts[1];
    assert_non_null(p);
    st = itest_store(s3, 2, 10000);
    assert_int_equal(kopt_objstore_get(st, p->key, &data, &len, &err), 0);
    kopt_objstore_free(st);
    itest_replace_object(s3, p->key, data, len / 2); /* truncated */

    itest_drop_db(ch, "bk_bad");
    assert_int_equal(restore_lib("bk_bad", "bad", id, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "corrupt or truncated"));
    assert_non_null(strstr(why, p->partition_id));
    assert_int_equal(rows_in("bk_bad"), 0); /* nothing half-restored */

    data[len / 2] ^= 0x5a; /* same size, one byte flipped */
    itest_replace_object(s3, p->key, data, len);
    assert_int_equal(restore_lib("bk_bad", "bad", id, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "corrupt or truncated"));
    assert_int_equal(rows_in("bk_bad"), 0);
    free(data);
    agg_manifest_free(&m);
    itest_drop_db(ch, "bk_bad");
}

static void manifest_that_disagrees_with_data_is_refused(void **state)
{
    (void)state;
    char id[32], why[512] = "", key[256], *json = NULL, *at;
    kopt_objstore_t *st;
    kopt_objstore_error_t err;
    size_t len = 0;

    itest_drop_db(ch, "bk_man");
    fill("bk_man", 1500);
    backup_lib("bk_man", "man", NULL, id);
    snprintf(key, sizeof(key), "man/backups/%s/manifest.json", id);
    st = itest_store(s3, 2, 10000);
    assert_int_equal(kopt_objstore_get(st, key, &json, &len, &err), 0);
    kopt_objstore_free(st);
    /* One more row than the data holds, for the first windows partition. */
    assert_non_null(at = strstr(strstr(json, "container_windows"), "\"rows\": \""));
    at += strlen("\"rows\": \"");
    assert_true(*at >= '1' && *at <= '8');
    (*at)++;
    itest_replace_object(s3, key, json, len);

    itest_drop_db(ch, "bk_man");
    assert_int_equal(restore_lib("bk_man", "man", id, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "disagrees with the manifest"));
    assert_int_equal(rows_in("bk_man"), 0);

    /* A manifest that is not one at all. */
    itest_replace_object(s3, key, "{\"format\": 1, \"id\": 7}", 22);
    assert_int_equal(restore_lib("bk_man", "man", id, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "manifest"));
    free(json);
    itest_drop_db(ch, "bk_man");
}

static void store_faults_during_backup(void **state)
{
    (void)state;
    kopt_ch_client_t *c;
    kopt_objstore_t *st;
    agg_backup_options_t o = {.prefix = "flt"};
    agg_backup_result_t res;
    char why[512] = "", id[32];

    itest_drop_db(ch, "bk_flt");
    fill("bk_flt", 1000);
    c = itest_ch_client(ch, "bk_flt", 30000);

    /* A 500 now and then: retried, the backup completes. */
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"PUT\",\"skip\":3,\"status\":500}"), 0);
    o.id = "20260101T000000Z";
    st = itest_store(s3, 3, 10000);
    assert_int_equal(agg_backup_run(c, st, &o, &res, why, sizeof(why)), 0);
    kopt_objstore_free(st);

    /* 403 from the 4th upload on: the backup fails and removes what it wrote. */
    assert_int_equal(kopt_test_s3_fault(s3, "{\"method\":\"PUT\",\"skip\":3,\"status\":403,"
                                            "\"count\":100000}"),
                     0);
    o.id = "20260102T000000Z";
    st = itest_store(s3, 3, 10000);
    assert_int_equal(agg_backup_run(c, st, &o, &res, why, sizeof(why)), -EACCES);
    assert_non_null(strstr(why, "AccessDenied"));
    kopt_objstore_free(st);
    kopt_test_s3_fault(s3, "{\"clear\":true}");
    assert_int_equal(itest_objects_under(s3, "flt/backups/20260102T000000Z/"), 0);

    /* The store down: nothing written, a clear error. */
    assert_int_equal(kopt_test_s3_kill9(s3), 0);
    o.id = "20260103T000000Z";
    st = itest_store(s3, 2, 10000);
    assert_int_equal(agg_backup_run(c, st, &o, &res, why, sizeof(why)), -ECONNREFUSED);
    kopt_objstore_free(st);
    assert_int_equal(kopt_test_s3_restart(s3), 0);
    assert_int_equal(itest_objects_under(s3, "flt/backups/20260103T000000Z/"), 0);
    /* No staging table left behind by the failures. */
    char *out =
        itest_ch_query(ch, "SELECT count() FROM system.tables WHERE database = 'bk_flt' AND "
                           "substring(name, 1, 1) = '_' FORMAT TSV");
    assert_string_equal(out, "0\n");
    free(out);

    /* A stray object without a manifest is not a backup: latest is the
     * complete one. */
    st = itest_store(s3, 2, 10000);
    kopt_objstore_error_t err;
    assert_int_equal(
        kopt_objstore_put(st, "flt/backups/20260109T000000Z/schema/x.sql", "x", 1, &err), 0);
    kopt_objstore_free(st);
    char *before = fingerprint("bk_flt");
    itest_drop_db(ch, "bk_flt");
    assert_int_equal(restore_lib("bk_flt", "flt", "latest", why, sizeof(why)), 0);
    char *after = fingerprint("bk_flt");
    assert_string_equal(after, before);
    free(before);
    free(after);
    kopt_ch_client_free(c);
    (void)id;
    itest_drop_db(ch, "bk_flt");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_through_the_binary),
        cmocka_unit_test(truncated_or_corrupt_object_is_refused),
        cmocka_unit_test(manifest_that_disagrees_with_data_is_refused),
        cmocka_unit_test(store_faults_during_backup),
    };
    int failed;

    if (argc < 3) {
        fprintf(stderr, "usage: test_backup SRC_ROOT KOPT_AGGREGATOR\n");
        return 2;
    }
    src_root = argv[1];
    aggregator_bin = argv[2];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, setup, kopt_test_teardown_all);
    itest_storage_stop(&tmp);
    return failed;
}
