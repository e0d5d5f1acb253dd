/* A ClickHouse client over the HTTP interface (libcurl), for the aggregator
 * and the advisor: queries, RowBinary inserts, the server version,
 * ClickHouse errors turned into a code and a retry decision, and SQL
 * literals. The library kopt_clickhouse (libkopt/clickhouse/: client.c,
 * protocol.c, sql.c, and the RowBinary codec of kopt/rowbinary.h); link it
 * with kopt_clickhouse_dep.
 *
 * Calls are synchronous and block for up to timeout_ms: run them on a worker
 * thread (uv_queue_work, an insert thread), never on a libuv loop thread. A
 * client is one curl easy handle, so it keeps its connection alive between
 * calls, and is not thread-safe: one client per thread; several threads give
 * several connections (which is how inserts scale; see docs/storage.md). */
#ifndef KOPT_CLICKHOUSE_H
#define KOPT_CLICKHOUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct kopt_ch_client kopt_ch_client_t;

typedef struct {
    /* "http://host:8123" or "https://host:8443", optionally with a path.
     * user:password in the URL is taken out of it and used like user and
     * password below; the URL is only ever shown without it. Required.
     * Several replicas' URLs, comma-separated: a call that gets no answer
     * or a retryable 5xx from one is tried once on each next one, and the
     * first that answers is used from then on (docs/storage.md,
     * "Replication"). */
    const char *url;
    const char *database; /* NULL: "kopt" */
    const char *user;     /* NULL: ClickHouse's "default" (or the URL's user) */
    /* The password comes from the first that is set: password, the first
     * line of password_file, the environment variable named password_env.
     * It travels in the X-ClickHouse-Key header and is never logged. */
    const char *password;
    const char *password_file;
    const char *password_env;
    const char *ca_file;         /* https: trust these CAs instead of the system's */
    uint32_t connect_timeout_ms; /* 0: 5000 */
    uint32_t timeout_ms;         /* whole request; 0: 60000 */
    size_t max_response_bytes;   /* 0: 64 MiB; larger answers fail with -EFBIG */
    /* gzip request bodies of 1 KiB and more (Content-Encoding: gzip) and ask
     * for gzip answers (enable_http_compression=1); 18.16 does both. */
    bool compress;
    /* > 1: inserts wait until this many replicas have the block
     * (insert_quorum; replicated tables only), for up to
     * insert_quorum_timeout_ms (0: 60000). */
    uint32_t insert_quorum;
    uint32_t insert_quorum_timeout_ms;
    /* The ClickHouse cluster (remote_servers name) the database is
     * replicated in, or NULL: then kopt's migrations create Replicated
     * tables on every URL (docs/storage.md, "Replication"). */
    const char *cluster;
} kopt_ch_options_t;

typedef enum {
    KOPT_CH_OK = 0,
    KOPT_CH_RETRYABLE, /* network, timeout, 5xx, overload, memory, auth: try again later */
    KOPT_CH_PERMANENT, /* syntax, type mismatch, unknown table, bad data: never succeeds */
} kopt_ch_class_t;

/* What went wrong with one call; no secret is ever copied into it. */
typedef struct {
    int r;            /* the negative errno the call returned */
    int code;         /* ClickHouse exception code ("Code: 60"), 0 when none */
    long http_status; /* 0 when no answer arrived */
    kopt_ch_class_t cls;
    char message[256]; /* short text: ClickHouse's message or curl's */
} kopt_ch_error_t;

typedef struct {
    int major, minor, patch;
    char text[32]; /* as the server reported it, e.g. "18.16.1" */
} kopt_ch_version_t;

/* Call flags. */
#define KOPT_CH_NO_DATABASE 0x1 /* do not select the database (to create it) */
/* Leave out wait_end_of_query=1, so the server streams the answer as it
 * computes it instead of buffering all of it first (for large SELECTs). The
 * price: an error after the first bytes arrives as HTTP 200 with the
 * exception text ("Code: N, ...") appended to the body, so the caller must
 * parse strictly and treat a body that does not parse as failed
 * (kopt_ch_parse_exception tells the code). */
#define KOPT_CH_STREAM 0x2

/* Errors: -EINVAL bad options (no URL, bad database name, unreadable
 * password file: reported in err->message), -ENOMEM. */
int kopt_ch_client_new(const kopt_ch_options_t *opts, kopt_ch_client_t **out, kopt_ch_error_t *err);
void kopt_ch_client_free(kopt_ch_client_t *c);

/* Runs one statement (POST, so DDL and writes work) with
 * wait_end_of_query=1, so an error in mid-result is an error, not a 200 with
 * a broken body. On success *body (if not NULL) gets the malloc'd,
 * NUL-terminated answer and *len its length; the caller frees it.
 * Returns 0 only on HTTP 200. Errors, with err (may be NULL) filled in:
 *   -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ECONNRESET, -EPROTO (TLS),
 *   -EIO (other transport failures): retryable;
 *   -EACCES: 401/403, wrong user or password (retryable: fix the config);
 *   -EREMOTEIO: ClickHouse reported an exception; see err->code and cls;
 *   -EFBIG: answer larger than max_response_bytes; -ENOMEM. */
int kopt_ch_query(kopt_ch_client_t *c, const char *sql, char **body, size_t *len,
                  kopt_ch_error_t *err);
int kopt_ch_query_flags(kopt_ch_client_t *c, const char *sql, unsigned flags, char **body,
                        size_t *len, kopt_ch_error_t *err);

/* INSERT INTO <database>.<table> [(columns)] FORMAT <format> with data as the
 * body (gzip'd when compress is on). columns may be NULL (all, in table
 * order). data is not kept. 0 only when ClickHouse answered 200, which means
 * the rows were written (an insert block is atomic); errors as for query. */
int kopt_ch_insert(kopt_ch_client_t *c, const char *table, const char *columns, const char *format,
                   const void *data, size_t len, kopt_ch_error_t *err);

/* The same; flags KOPT_CH_NO_DATABASE: `table` is not qualified with the
 * database (a session's TEMPORARY table). */
int kopt_ch_insert_flags(kopt_ch_client_t *c, const char *table, const char *columns,
                         const char *format, const void *data, size_t len, unsigned flags,
                         kopt_ch_error_t *err);

/* Sends every later call in the ClickHouse HTTP session `id` (session_id,
 * [0-9a-z_-], at most 64 characters), which the server ends after
 * timeout_s idle seconds (0: 60). Its TEMPORARY tables live as long as the
 * session (docs/stack-facts.md). A session lives on one server, so the
 * client does not fail over while one is set, and it runs one query at a
 * time (code 373 otherwise). NULL ends the client's use of it. 0, -EINVAL
 * (bad id), -ENOMEM. */
int kopt_ch_set_session(kopt_ch_client_t *c, const char *id, uint32_t timeout_s);

/* SELECT version(), asked once and then cached in the client. */
int kopt_ch_server_version(kopt_ch_client_t *c, kopt_ch_version_t *out, kopt_ch_error_t *err);

/* The database the client selects ("kopt"), and the URL without credentials. */
const char *kopt_ch_database(const kopt_ch_client_t *c);
const char *kopt_ch_url(const kopt_ch_client_t *c);

/* The cluster option (NULL when not set). */
const char *kopt_ch_cluster(const kopt_ch_client_t *c);

/* How many URLs the client was given, and how often it switched to the
 * next after a failure (for a counter). */
size_t kopt_ch_url_count(const kopt_ch_client_t *c);
uint64_t kopt_ch_failovers(const kopt_ch_client_t *c);

/* Uses URL i (0-based) only, without failover, until kopt_ch_pin(c, -1)
 * (which keeps i current): migrations run on each replica this way.
 * -EINVAL when there is no URL i. */
int kopt_ch_pin(kopt_ch_client_t *c, int i);

/* TCP (or TLS) connections opened so far; equal to 1 after many calls when
 * keep-alive works. */
uint64_t kopt_ch_connections_opened(const kopt_ch_client_t *c);

/* Pure helpers, exposed for tests and for the consumer's metrics. */

/* "18.16.1", "23.8.2.7" -> 18/16/1. -EINVAL when it does not start with
 * major.minor. */
int kopt_ch_version_parse(const char *s, kopt_ch_version_t *out);
bool kopt_ch_version_at_least(const kopt_ch_version_t *v, int major, int minor);

/* The exception code of an error body: "Code: 60, e.displayText() = ..."
 * (18.16) or "Code: 60. DB::Exception: ..." (newer); the short message
 * goes to msg. 0 when the body holds no code. */
int kopt_ch_parse_exception(const char *body, size_t len, char *msg, size_t msg_size);

/* Retry decision for an answer with this HTTP status and exception code. */
kopt_ch_class_t kopt_ch_classify(long http_status, int code);

/* True for a permanent error about the rows sent (they do not parse, do not
 * fit a column, fail a check such as throwIf() or a constraint), so one
 * message of an insert can be to blame and the others can be stored. False
 * for a statement that can never work whatever the rows (unknown table,
 * column or database, syntax, read-only: a schema or config problem every
 * insert hits alike), for an error without a ClickHouse code, and for
 * retryable errors. */
bool kopt_ch_blames_rows(const kopt_ch_error_t *err);

/* "ok", "retryable", "permanent": for logs and metric labels. */
const char *kopt_ch_class_name(kopt_ch_class_t cls);

/* A database or table name kopt accepts: [A-Za-z_][A-Za-z0-9_]{0,63}. */
bool kopt_ch_identifier_ok(const char *name);

/* ---- SQL literals (sql.c). 18.16 has no query parameters over HTTP, so
 * values are inlined, quoted the way its parser reads them. */

/* Writes s as a single-quoted string literal, backslash-escaping quotes and
 * backslashes. */
void kopt_ch_sql_string(FILE *f, const char *s);

/* The same literal as a new string in *out (the caller frees it). 0, or
 * -ENOMEM. */
int kopt_ch_sql_quote(const char *s, char **out);

#endif
