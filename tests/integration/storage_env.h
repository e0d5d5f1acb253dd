/* What the object storage tests share (archive, backup, the advisor's
 * reading of the archive): a clickhouse-server and the harness's S3 server
 * for the whole group, with a temp dir; queries that must succeed; clients of
 * both. A missing s3rver fails the group (scripts/deps installs it). The
 * helpers assert with cmocka: call them from a test. */
#ifndef KOPT_TEST_STORAGE_ENV_H
#define KOPT_TEST_STORAGE_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "kopt/clickhouse.h"
#include "kopt/objstore.h"

/* A group set-up's work: both servers in *ch and *s3, and a temp dir
 * <name>-XXXXXX in *tmp. 0, or -1. */
int itest_storage_start(const char *name, const char *src_root, kopt_test_clickhouse_t **ch,
                        kopt_test_s3_t **s3, char **tmp);
/* Removes and frees the temp dir; the servers go with kopt_test_teardown_all. */
void itest_storage_stop(char **tmp);

/* The answer of a query that must succeed (malloc'd); the SQL and the
 * server's words are printed when it does not. */
char *itest_ch_query(kopt_test_clickhouse_t *ch, const char *sql);
/* The same, read as one number. */
long itest_ch_long(kopt_test_clickhouse_t *ch, const char *sql);
void itest_drop_db(kopt_test_clickhouse_t *ch, const char *db);
/* n windows into <db>.container_windows, four minutes apart from
 * 2026-11-01 00:00 UTC over five workloads of cluster c1, namespace ns:
 * 600 fill two daily partitions (20261101, 20261102). */
void itest_insert_windows(kopt_test_clickhouse_t *ch, const char *db, unsigned n);
/* A libkopt client of `db`. */
kopt_ch_client_t *itest_ch_client(kopt_test_clickhouse_t *ch, const char *db, uint32_t timeout_ms);

/* A libkopt client of the test bucket: path-style, 20 ms backoff, up to
 * max_attempts tries, timeout_ms each (0: the client's default). */
kopt_objstore_t *itest_store(const kopt_test_s3_t *s3, int max_attempts, uint32_t timeout_ms);
/* Objects whose key starts with prefix. */
long itest_objects_under(const kopt_test_s3_t *s3, const char *prefix);
/* Deletes key and, when data is not NULL, writes data there (the client is
 * write-once, so a replacement deletes first). */
void itest_replace_object(const kopt_test_s3_t *s3, const char *key, const void *data, size_t len);

#endif
