/* The object storage tests' servers and helpers (storage_env.h). */
#include "storage_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

int itest_storage_start(const char *name, const char *src_root, kopt_test_clickhouse_t **ch,
                        kopt_test_s3_t **s3, char **tmp)
{
    *tmp = kopt_test_tmpdir(name);
    if (!*tmp || kopt_test_clickhouse_start(ch) < 0)
        return -1;
    return kopt_test_s3_start(s3, src_root) < 0 ? -1 : 0;
}

void itest_storage_stop(char **tmp)
{
    if (*tmp) {
        kopt_test_rmtree(*tmp);
        free(*tmp);
        *tmp = NULL;
    }
}

char *itest_ch_query(kopt_test_clickhouse_t *ch, const char *sql)
{
    char *out = NULL;
    int r = kopt_test_clickhouse_query(ch, sql, &out);

    if (r != 0)
        fprintf(stderr, "query failed: %s\n%s\n", sql, out ? out : "");
    assert_int_equal(r, 0);
    return out;
}

long itest_ch_long(kopt_test_clickhouse_t *ch, const char *sql)
{
    char *out = itest_ch_query(ch, sql);
    long n = atol(out);

    free(out);
    return n;
}

void itest_drop_db(kopt_test_clickhouse_t *ch, const char *db)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
    free(itest_ch_query(ch, sql));
}

void itest_insert_windows(kopt_test_clickhouse_t *ch, const char *db, unsigned n)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.container_windows (cluster, namespace, workload_name, pod, container, "
             "window_start, window_end, cpu_usage_mean_cores, memory_working_set_peak_bytes) "
             "SELECT 'c1', 'ns', concat('w', toString(number %% 5)), 'p', 'app', "
             "toDateTime('2026-11-01 00:00:00') + number * 240, "
             "toDateTime('2026-11-01 00:01:00') + number * 240, number / 100, number * 4096 "
             "FROM system.numbers LIMIT %u",
             db, n);
    free(itest_ch_query(ch, sql));
}

kopt_ch_client_t *itest_ch_client(kopt_test_clickhouse_t *ch, const char *db, uint32_t timeout_ms)
{
    kopt_ch_options_t o = {.url = ch->url, .database = db, .timeout_ms = timeout_ms};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err;

    assert_int_equal(kopt_ch_client_new(&o, &c, &err), 0);
    return c;
}

kopt_objstore_t *itest_store(const kopt_test_s3_t *s3, int max_attempts, uint32_t timeout_ms)
{
    kopt_objstore_options_t o = {.endpoint = s3->url,
                                 .bucket = s3->bucket,
                                 .credentials_file = s3->credentials_file,
                                 .path_style = true,
                                 .max_attempts = max_attempts,
                                 .backoff_base_ms = 20,
                                 .timeout_ms = timeout_ms};
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t err;

    assert_int_equal(kopt_objstore_new(&o, &st, &err), 0);
    return st;
}

long itest_objects_under(const kopt_test_s3_t *s3, const char *prefix)
{
    kopt_objstore_t *st = itest_store(s3, 2, 10000);
    kopt_objstore_error_t err;
    kopt_objstore_entry_t *e = NULL;
    size_t n = 0;

    assert_int_equal(kopt_objstore_list(st, prefix, &e, &n, &err), 0);
    kopt_objstore_entries_free(e, n);
    kopt_objstore_free(st);
    return (long)n;
}

void itest_replace_object(const kopt_test_s3_t *s3, const char *key, const void *data, size_t len)
{
    kopt_objstore_t *st = itest_store(s3, 2, 10000);
    kopt_objstore_error_t err;

    kopt_objstore_delete(st, key, &err); /* absent is fine when only deleting */
    if (data)
        assert_int_equal(kopt_objstore_put(st, key, data, len, &err), 0);
    kopt_objstore_free(st);
}
