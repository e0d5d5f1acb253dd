/* Migrations and retention for kopt's ClickHouse database; see schema.h and
 * docs/storage.md. Tables are described as column lists and rendered per
 * server version, so one description serves 18.16 (no codecs, no TTL,
 * LowCardinality only behind a setting) and current releases. */
#include "schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kopt/log.h"

/* Versions that certainly have a feature. Conservative: a false "no" only
 * loses an optimisation, a false "yes" breaks the CREATE. */
#define TTL_SINCE 19, 6
#define CODEC_SINCE 20, 1
#define LOWCARD_SINCE 20, 1 /* 18.16 needs allow_experimental_low_cardinality_type */

#define COL_LC 0x1   /* String of few distinct values: LowCardinality when possible */
#define COL_TIME 0x2 /* DateTime: Delta codec when possible */

typedef struct {
    const char *name;
    const char *type;
    unsigned flags;
} column_t;

/* Must hold every column of AGG_ROWBINARY_WINDOW_COLUMNS (any order). */
static const column_t windows_columns[] = {
    {"cluster", "String", COL_LC},
    {"namespace", "String", COL_LC},
    {"workload_kind", "String", COL_LC},
    {"workload_name", "String", 0},
    {"pod", "String", 0},
    {"container", "String", COL_LC},
    {"node", "String", COL_LC},
    {"pod_uid", "String", 0},
    {"container_id", "String", 0},
    {"window_start", "DateTime", COL_TIME},
    {"window_end", "DateTime", COL_TIME},
    {"cpu_usage_mean_cores", "Float64", 0},
    {"cpu_usage_peak_cores", "Float64", 0},
    {"cpu_throttled_seconds", "Float64", 0},
    {"cpu_throttled_periods", "UInt64", 0},
    {"cpu_periods", "UInt64", 0},
    {"memory_working_set_peak_bytes", "UInt64", 0},
    {"memory_working_set_last_bytes", "UInt64", 0},
    {"memory_rss_peak_bytes", "UInt64", 0},
    {"oom_kills", "UInt32", 0},
    {"restarts", "UInt32", 0},
    {"cpu_request_cores", "Float64", 0},
    {"cpu_limit_cores", "Float64", 0},
    {"memory_request_bytes", "UInt64", 0},
    {"memory_limit_bytes", "UInt64", 0},
    {"sample_count", "UInt32", 0},
    {"agent_id", "String", COL_LC},
    {"epoch", "UInt64", 0},
    {"seq", "UInt64", 0},
    {"inserted_at", "DateTime", COL_TIME},
    {NULL, NULL, 0},
};

static const column_t hourly_columns[] = {
    {"cluster", "String", COL_LC},
    {"namespace", "String", COL_LC},
    {"workload_kind", "String", COL_LC},
    {"workload_name", "String", 0},
    {"container", "String", COL_LC},
    {"hour", "DateTime", COL_TIME},
    {"window_count", "UInt32", 0},
    {"pod_count", "UInt32", 0},
    {"sample_count", "UInt64", 0},
    {"cpu_usage_mean_cores", "Float64", 0},   /* mean of the window means */
    {"cpu_usage_peak_cores", "Float64", 0},   /* highest window peak */
    {"cpu_usage_core_seconds", "Float64", 0}, /* sum of mean x window length */
    {"cpu_throttled_seconds", "Float64", 0},
    {"cpu_throttled_periods", "UInt64", 0},
    {"cpu_periods", "UInt64", 0},
    {"cpu_hist_index", "Array(UInt16)", 0}, /* window means; see schema.h */
    {"cpu_hist_count", "Array(UInt32)", 0},
    {"memory_working_set_peak_bytes", "UInt64", 0},
    {"memory_rss_peak_bytes", "UInt64", 0},
    {"mem_hist_index", "Array(UInt16)", 0}, /* window working-set peaks */
    {"mem_hist_count", "Array(UInt32)", 0},
    {"oom_kills", "UInt32", 0},
    {"restarts", "UInt32", 0},
    {"cpu_request_cores", "Float64", 0}, /* latest in the hour */
    {"cpu_limit_cores", "Float64", 0},
    {"memory_request_bytes", "UInt64", 0},
    {"memory_limit_bytes", "UInt64", 0},
    {"rolled_at", "DateTime", COL_TIME},
    {NULL, NULL, 0},
};

static const column_t recommendation_columns[] = {
    {"cluster", "String", COL_LC},
    {"namespace", "String", COL_LC},
    {"workload_kind", "String", COL_LC},
    {"workload_name", "String", 0},
    {"container", "String", COL_LC},
    {"cpu_request_cores_current", "Float64", 0},
    {"cpu_request_cores_recommended", "Float64", 0},
    {"cpu_limit_cores_current", "Float64", 0},
    {"cpu_limit_cores_recommended", "Float64", 0},
    {"memory_request_bytes_current", "UInt64", 0},
    {"memory_request_bytes_recommended", "UInt64", 0},
    {"memory_limit_bytes_current", "UInt64", 0},
    {"memory_limit_bytes_recommended", "UInt64", 0},
    {"confidence", "Float64", 0},
    {"reasons", "Array(String)", 0},
    {"explanation", "String", 0},
    {"idle", "UInt8", 0},
    {"replicas", "Float64", 0},
    {"savings_cpu_cores", "Float64", 0},
    {"savings_memory_bytes", "Int64", 0},
    {"savings_monthly_cost", "Float64", 0},
    {"currency", "String", COL_LC},
    {"data_points", "UInt64", 0},
    {"window_start", "DateTime", COL_TIME},
    {"window_end", "DateTime", COL_TIME},
    {"generated_at", "DateTime", COL_TIME},
    {"analysis_id", "String", 0},
    {"details", "String", 0}, /* the full kopt.v1.Recommendation as JSON */
    {NULL, NULL, 0},
};

/* Must hold every column of AGG_ROWBINARY_WORKLOAD_FACTS_COLUMNS. */
static const column_t workload_facts_columns[] = {
    {"cluster", "String", COL_LC},
    {"namespace", "String", COL_LC},
    {"workload_kind", "String", COL_LC},
    {"workload_name", "String", 0},
    {"observed_at", "DateTime", COL_TIME}, /* the batch's created time */
    {"node", "String", COL_LC},            /* the agent that saw it */
    {"replicas", "UInt32", 0},
    {"ready_replicas", "UInt32", 0},
    {"qos_class", "String", COL_LC},
    {"hpa_name", "String", 0}, /* "" = no HorizontalPodAutoscaler */
    {"hpa_min_replicas", "UInt32", 0},
    {"hpa_max_replicas", "UInt32", 0},
    {"hpa_target_cpu_percent", "UInt32", 0},
    {"hpa_target_memory_percent", "UInt32", 0},
    {"hpa_metrics", "Array(String)", 0},
    {NULL, NULL, 0},
};

/* Must hold every column of AGG_ROWBINARY_NODE_FACTS_COLUMNS. */
static const column_t node_facts_columns[] = {
    {"cluster", "String", COL_LC},
    {"node", "String", 0},
    {"observed_at", "DateTime", COL_TIME},
    {"cpu_capacity_cores", "Float64", 0},
    {"cpu_allocatable_cores", "Float64", 0},
    {"memory_capacity_bytes", "UInt64", 0},
    {"memory_allocatable_bytes", "UInt64", 0},
    {"kernel_version", "String", COL_LC},
    {"kubelet_version", "String", COL_LC},
    {"container_runtime_version", "String", COL_LC},
    {"architecture", "String", COL_LC},
    {"instance_type", "String", COL_LC},
    {"zone", "String", COL_LC},
    {"region", "String", COL_LC},
    {"metric_source", "String", COL_LC},
    {"label_keys", "Array(String)", 0},
    {"label_values", "Array(String)", 0},
    {NULL, NULL, 0},
};

typedef struct {
    const char *table;
    const column_t *columns;
    const char *engine_tail; /* after the column list */
} table_t;

static const table_t windows_table = {
    "container_windows", windows_columns,
    "ENGINE = ReplacingMergeTree(inserted_at)\n"
    "PARTITION BY toYYYYMMDD(window_start)\n"
    "ORDER BY (cluster, namespace, workload_kind, workload_name, pod, container, window_start)"};

static const table_t hourly_table = {
    "container_hourly", hourly_columns,
    "ENGINE = ReplacingMergeTree(rolled_at)\n"
    "PARTITION BY toYYYYMM(hour)\n"
    "ORDER BY (cluster, namespace, workload_kind, workload_name, container, hour)"};

/* Not partitioned: ReplacingMergeTree replaces only within a partition, and
 * a newer analysis must replace the older one whatever its date. */
static const table_t recommendations_table = {
    "recommendations", recommendation_columns,
    "ENGINE = ReplacingMergeTree(generated_at)\n"
    "ORDER BY (cluster, namespace, workload_kind, workload_name, container)"};

/* The latest state per key: a newer observation replaces an older one
 * within a month's partition; readers take argMax(..., observed_at) across
 * partitions, and retention drops months with the hourly rollups. */
static const table_t workload_facts_table = {
    "workload_facts", workload_facts_columns,
    "ENGINE = ReplacingMergeTree(observed_at)\n"
    "PARTITION BY toYYYYMM(observed_at)\n"
    "ORDER BY (cluster, namespace, workload_kind, workload_name)"};

static const table_t node_facts_table = {"node_facts", node_facts_columns,
                                         "ENGINE = ReplacingMergeTree(observed_at)\n"
                                         "PARTITION BY toYYYYMM(observed_at)\n"
                                         "ORDER BY (cluster, node)"};

typedef struct {
    const kopt_ch_version_t *server;
    const char *db;
    const agg_schema_options_t *opts;
    const char *cluster; /* replicated tables in this ClickHouse cluster, or NULL */
} ctx_t;

/* With a cluster, ReplacingMergeTree(v) becomes
 * ReplicatedReplacingMergeTree('<path>', '{replica}', v), and MergeTree
 * ReplicatedMergeTree('<path>', '{replica}'): same keys and
 * version column, so the same idempotence, plus block dedupe. The path names
 * the cluster, the {shard} macro, database and table, so two kopt databases
 * (or installations) on one ZooKeeper never share a table. 18.16 syntax:
 * docs/stack-facts.md, "ClickHouse: replicated tables on 18.16". */
static void write_engine(FILE *f, const ctx_t *x, const table_t *t)
{
    static const char replacing[] = "ENGINE = ReplacingMergeTree(";
    static const char merge[] = "ENGINE = MergeTree\n";

    if (x->cluster && strncmp(t->engine_tail, replacing, sizeof(replacing) - 1) == 0)
        fprintf(f,
                "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/%s/{shard}/%s.%s', "
                "'{replica}', %s",
                x->cluster, x->db, t->table, t->engine_tail + sizeof(replacing) - 1);
    else if (x->cluster && strncmp(t->engine_tail, merge, sizeof(merge) - 1) == 0)
        /* kopt.archive: its records must be on every replica retention asks. */
        fprintf(f,
                "ENGINE = ReplicatedMergeTree('/clickhouse/tables/%s/{shard}/%s.%s', "
                "'{replica}')\n%s",
                x->cluster, x->db, t->table, t->engine_tail + sizeof(merge) - 1);
    else
        fputs(t->engine_tail, f);
}

typedef struct {
    uint32_t version;
    const char *name;
    int (*render)(const ctx_t *x, const void *arg, char **sql);
    const void *arg;
} migration_t;

static void write_added_columns(FILE *f, const ctx_t *x, const table_t *t, bool codec);

static int render_table(const ctx_t *x, const void *arg, char **sql)
{
    const table_t *t = arg;
    bool lc = kopt_ch_version_at_least(x->server, LOWCARD_SINCE);
    bool codec = kopt_ch_version_at_least(x->server, CODEC_SINCE);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (!f)
        return -ENOMEM;
    fprintf(f, "CREATE TABLE IF NOT EXISTS %s.%s (\n", x->db, t->table);
    for (const column_t *col = t->columns; col->name; col++) {
        bool lowcard = lc && (col->flags & COL_LC);

        fprintf(f, "    %s %s%s%s", col->name, lowcard ? "LowCardinality(" : "", col->type,
                lowcard ? ")" : "");
        if (codec && !lowcard)
            fputs(col->flags & COL_TIME ? " CODEC(Delta, ZSTD(1))" : " CODEC(ZSTD(1))", f);
        fputs(col[1].name ? ",\n" : "\n", f);
    }
    write_added_columns(f, x, t, codec);
    fputs(")\n", f);
    write_engine(f, x, t);
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *sql = buf;
    return 0;
}

typedef struct {
    const char *table;
    const char *column;
    int which; /* 0: windows_ttl_days, 1: hourly_ttl_days */
} ttl_t;

static int render_ttl(const ctx_t *x, const void *arg, char **sql)
{
    const ttl_t *t = arg;
    uint32_t days = 0;

    if (x->opts)
        days = t->which == 0 ? x->opts->windows_ttl_days : x->opts->hourly_ttl_days;
    if (!kopt_ch_version_at_least(x->server, TTL_SINCE) || days == 0)
        return -EOPNOTSUPP;
    if (asprintf(sql, "ALTER TABLE %s.%s MODIFY TTL %s + INTERVAL %u DAY", x->db, t->table,
                 t->column, days) < 0)
        return -ENOMEM;
    return 0;
}

static const ttl_t windows_ttl = {"container_windows", "window_start", 0};
static const ttl_t hourly_ttl = {"container_hourly", "hour", 1};

/* A column added to an existing table. 18.16 has no ADD COLUMN IF NOT
 * EXISTS, so agg_schema_migrate() looks in system.columns first: a retry
 * after a crash between the ALTER and its record, or two replicas migrating
 * at once, finds the column there and only records the migration. */
typedef struct {
    const char *table;
    column_t column;
} add_column_t;

static int render_add_column(const ctx_t *x, const void *arg, char **sql)
{
    const add_column_t *a = arg;
    bool codec = kopt_ch_version_at_least(x->server, CODEC_SINCE);
    const char *c = !codec                       ? ""
                    : a->column.flags & COL_TIME ? " CODEC(Delta, ZSTD(1))"
                                                 : " CODEC(ZSTD(1))";

    if (asprintf(sql, "ALTER TABLE %s.%s ADD COLUMN %s %s%s", x->db, a->table, a->column.name,
                 a->column.type, c) < 0)
        return -ENOMEM;
    return 0;
}

/* Seconds the hour's windows cover, summed over pods: sum(window_end -
 * window_start). Rows rolled before it read 0, which the advisor's engine
 * takes as windows x 60 (one-minute windows). */
static const add_column_t hourly_covered = {"container_hourly", {"covered_seconds", "UInt64", 0}};

/* How far each aggregator replica has rolled up, per cluster (rollup.h):
 * one row per (cluster, replica), the newest updated_at wins. Not
 * partitioned, as recommendations: a new row must replace the old one
 * whatever its date. */
static const column_t rollup_state_columns[] = {
    {"cluster", "String", COL_LC},        {"replica", "String", 0}, /* host/pid of the aggregator */
    {"watermark", "DateTime", COL_TIME}, /* windows stored before it are rolled up */
    {"pending", "Array(DateTime)", 0},   /* hours stored after it, not rolled up yet */
    {"interval_seconds", "UInt32", 0},   /* the replica's --rollup-interval */
    {"updated_at", "DateTime", COL_TIME}, {NULL, NULL, 0},
};

static const table_t rollup_state_table = {"rollup_state", rollup_state_columns,
                                           "ENGINE = ReplacingMergeTree(updated_at)\n"
                                           "ORDER BY (cluster, replica)"};

/* The cold archive's record (aggregator/archive.c, docs/storage.md): one
 * row per container_windows partition archived and verified; a partition
 * that changed and was archived again has a newer row. Retention drops a
 * partition only when its newest row still matches it. */
static const column_t archive_columns[] = {
    {"source_table", "String", COL_LC},
    {"partition_id", "String", 0},
    {"object_key", "String", 0},
    {"manifest_key", "String", 0},
    {"rows", "UInt64", 0},
    {"checksum", "UInt64", 0}, /* sum(cityHash64(*)) FINAL, as backups count */
    {"bytes", "UInt64", 0},
    {"sha256", "String", 0},          /* of the object */
    {"manifest_sha256", "String", 0}, /* of the manifest */
    {"schema_version", "UInt32", 0},
    {"min_key", "DateTime", COL_TIME}, /* min and max window_start */
    {"max_key", "DateTime", COL_TIME},
    {"archived_at", "DateTime", COL_TIME},
    {NULL, NULL, 0},
};

static const table_t archive_table = {"archive", archive_columns,
                                      "ENGINE = MergeTree\n"
                                      "ORDER BY (source_table, partition_id, archived_at)"};

/* Append only; never renumber or edit an applied migration: add a new one. */
static const migration_t migrations[] = {
    {1, "create_container_windows", render_table, &windows_table},
    {2, "create_container_hourly", render_table, &hourly_table},
    {3, "create_recommendations", render_table, &recommendations_table},
    {4, "container_windows_ttl", render_ttl, &windows_ttl},
    {5, "container_hourly_ttl", render_ttl, &hourly_ttl},
    {6, "create_workload_facts", render_table, &workload_facts_table},
    {7, "create_node_facts", render_table, &node_facts_table},
    {8, "container_hourly_covered_seconds", render_add_column, &hourly_covered},
    {9, "create_rollup_state", render_table, &rollup_state_table},
    {10, "create_archive", render_table, &archive_table},
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

/* A replicated table must be created with the structure ZooKeeper holds:
 * once one replica ran an ADD COLUMN migration (an ALTER that replicates),
 * another replica's CREATE with the older column list fails with code 122
 * ("Table structure in ZooKeeper is too different"). So with a cluster the
 * CREATE already has every column later migrations add, in their order
 * (ADD COLUMN appends), and those migrations find the column and only
 * record themselves. */
static void write_added_columns(FILE *f, const ctx_t *x, const table_t *t, bool codec)
{
    if (!x->cluster)
        return;
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const add_column_t *a = migrations[i].arg;

        if (migrations[i].render != render_add_column || strcmp(a->table, t->table) != 0)
            continue;
        /* The previous column line ended with "\n": replace by ",\n". */
        fseek(f, -1, SEEK_CUR);
        fprintf(f, ",\n    %s %s%s\n", a->column.name, a->column.type,
                !codec                       ? ""
                : a->column.flags & COL_TIME ? " CODEC(Delta, ZSTD(1))"
                                             : " CODEC(ZSTD(1))");
    }
}

uint32_t agg_schema_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

int agg_schema_sql(uint32_t version, const kopt_ch_version_t *server, const char *db,
                   const agg_schema_options_t *opts, char **sql, const char **name)
{
    ctx_t x = {.server = server, .db = db, .opts = opts};

    *sql = NULL;
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        if (migrations[i].version != version)
            continue;
        if (name)
            *name = migrations[i].name;
        return migrations[i].render(&x, migrations[i].arg, sql);
    }
    return -ENOENT;
}

static int exec(kopt_ch_client_t *c, unsigned flags, kopt_ch_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int exec(kopt_ch_client_t *c, unsigned flags, kopt_ch_error_t *err, const char *fmt, ...)
{
    char *sql = NULL;
    va_list ap;
    int n, r;

    va_start(ap, fmt);
    n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    r = kopt_ch_query_flags(c, sql, flags, NULL, NULL, err);
    free(sql);
    return r;
}

/* Whether <db>.<table> has the column already (an ADD COLUMN migration
 * applied but not recorded). */
static int column_exists(kopt_ch_client_t *c, const char *db, const add_column_t *a, bool *yes,
                         kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL;
    int r;

    *yes = false;
    if (asprintf(&sql,
                 "SELECT count() FROM system.columns WHERE database = '%s' AND table = '%s' AND "
                 "name = '%s' FORMAT TSV",
                 db, a->table, a->column.name) < 0)
        return -ENOMEM;
    r = kopt_ch_query(c, sql, &body, NULL, err);
    free(sql);
    if (r == 0)
        *yes = body && strtoul(body, NULL, 10) > 0;
    free(body);
    return r;
}

/* The versions recorded so far, as a bit set (versions are small). */
static int applied_versions(kopt_ch_client_t *c, const char *db, uint64_t *set,
                            kopt_ch_error_t *err)
{
    char *sql = NULL, *body = NULL, *line, *save = NULL;
    int r;

    *set = 0;
    if (asprintf(&sql, "SELECT DISTINCT version FROM %s.schema_migrations FORMAT TSV", db) < 0)
        return -ENOMEM;
    r = kopt_ch_query(c, sql, &body, NULL, err);
    free(sql);
    if (r < 0)
        return r;
    for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long v = strtoul(line, NULL, 10);

        if (v > 0 && v < 64)
            *set |= 1ULL << v;
    }
    free(body);
    return 0;
}

/* The migrations on the replica the client uses now. schema_migrations
 * stays a plain table: it records what this replica has, so a replica
 * added later (or recreated) gets every table though the others have them. */
static int migrate_one(kopt_ch_client_t *c, const agg_schema_options_t *opts, unsigned *applied,
                       kopt_ch_error_t *err)
{
    const char *db = kopt_ch_database(c);
    ctx_t x = {.db = db, .opts = opts, .cluster = kopt_ch_cluster(c)};
    kopt_ch_version_t server;
    uint64_t done;
    unsigned n = 0;
    int r;

    if (applied)
        *applied = 0;
    r = kopt_ch_server_version(c, &server, err);
    if (r < 0)
        return r;
    x.server = &server;
    r = exec(c, KOPT_CH_NO_DATABASE, err, "CREATE DATABASE IF NOT EXISTS %s", db);
    if (r == 0)
        r = exec(c, 0, err,
                 "CREATE TABLE IF NOT EXISTS %s.schema_migrations (version UInt32, name String, "
                 "applied_at DateTime, server_version String) "
                 "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version",
                 db);
    if (r == 0)
        r = applied_versions(c, db, &done, err);
    for (size_t i = 0; r == 0 && i < N_MIGRATIONS; i++) {
        const migration_t *m = &migrations[i];
        char *sql = NULL;

        if (done & (1ULL << m->version))
            continue;
        r = m->render(&x, m->arg, &sql);
        if (r == -EOPNOTSUPP) {
            kopt_log_info("schema migration not applicable; not recorded",
                          KOPT_UINT("version", m->version), KOPT_STR("name", m->name),
                          KOPT_STR("server_version", server.text));
            r = 0;
            continue;
        }
        if (r == 0 && m->render == render_add_column) {
            bool there = false;

            r = column_exists(c, db, m->arg, &there, err);
            if (r == 0 && there) {
                free(sql);
                sql = NULL; /* applied before, not recorded: record it now */
            }
        }
        if (r == 0 && sql) {
            r = kopt_ch_query(c, sql, NULL, NULL, err);
            /* Another replica added it meanwhile: that is success too. */
            if (r < 0 && m->render == render_add_column) {
                bool there = false;

                if (column_exists(c, db, m->arg, &there, NULL) == 0 && there)
                    r = 0;
            }
        }
        free(sql);
        if (r == 0)
            r = exec(c, 0, err,
                     "INSERT INTO %s.schema_migrations (version, name, applied_at, server_version) "
                     "VALUES (%u, '%s', now(), '%s')",
                     db, m->version, m->name, server.text);
        if (r < 0) {
            kopt_log_error("schema migration failed", KOPT_UINT("version", m->version),
                           KOPT_STR("name", m->name), KOPT_ERR(r),
                           KOPT_INT("code", err ? err->code : 0),
                           KOPT_STR("message", err ? err->message : ""));
            break;
        }
        kopt_log_info("schema migration applied", KOPT_UINT("version", m->version),
                      KOPT_STR("name", m->name), KOPT_STR("database", db));
        n++;
    }
    if (applied)
        *applied = n;
    return r;
}

int agg_schema_migrate(kopt_ch_client_t *c, const agg_schema_options_t *opts, unsigned *applied,
                       kopt_ch_error_t *err)
{
    size_t n = kopt_ch_url_count(c), done = 0;
    unsigned total = 0;
    int r = 0, first_error = 0;

    if (applied)
        *applied = 0;
    if (!kopt_ch_cluster(c) || n < 2)
        return migrate_one(c, opts, applied, err);
    /* No ON CLUSTER DDL: each replica listed is migrated in turn. One that
     * gives no answer (down, as a replica killed a moment ago) is skipped
     * with a warning, so an aggregator can start while a replica is down: it
     * has its tables from before, and a new replica gets them at the next
     * start or `kopt-aggregator migrate`. Any other error fails the call
     * (the caller retries), and so does no replica answering. */
    for (size_t i = 0; i < n; i++) {
        unsigned one = 0;

        kopt_ch_pin(c, (int)i);
        r = migrate_one(c, opts, &one, err);
        if (r == 0) {
            kopt_log_info("replica migrated", KOPT_STR("clickhouse", kopt_ch_url(c)),
                          KOPT_STR("cluster", kopt_ch_cluster(c)), KOPT_UINT("applied", one));
            total += one;
            done++;
            continue;
        }
        if (!first_error)
            first_error = r;
        if (r != -ECONNREFUSED && r != -ETIMEDOUT && r != -EHOSTUNREACH && r != -ECONNRESET)
            break;
        kopt_log_warn("replica not answering; not migrated now",
                      KOPT_STR("clickhouse", kopt_ch_url(c)), KOPT_ERR(r));
    }
    kopt_ch_pin(c, 0);
    kopt_ch_pin(c, -1);
    if (applied)
        *applied = total;
    if (done == n)
        return 0;
    if (done > 0 && (r == 0 || r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
                     r == -ECONNRESET)) {
        if (err)
            memset(err, 0, sizeof(*err));
        return 0;
    }
    return r ? r : first_error;
}

static bool partition_id_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

int agg_schema_retention(kopt_ch_client_t *c, const char *table, uint32_t days, int64_t now,
                         unsigned *dropped, kopt_ch_error_t *err)
{
    return agg_schema_retention_gated(c, table, days, now, NULL, NULL, dropped, err);
}

int agg_schema_retention_gated(kopt_ch_client_t *c, const char *table, uint32_t days, int64_t now,
                               agg_retention_gate_fn gate, void *ctx, unsigned *dropped,
                               kopt_ch_error_t *err)
{
    const char *db = kopt_ch_database(c);
    char *sql = NULL, *body = NULL, *line, *save = NULL;
    int64_t cutoff;
    unsigned n = 0;
    int r;

    if (dropped)
        *dropped = 0;
    if (!kopt_ch_identifier_ok(table) || days == 0)
        return -EINVAL;
    if (now == 0)
        now = time(NULL);
    cutoff = now - (int64_t)days * 86400;
    if (cutoff <= 0)
        return 0;
    /* max_time is the partition key's DateTime range; 0 for a table not
     * partitioned by time, which therefore never qualifies. */
    if (asprintf(&sql,
                 "SELECT partition_id FROM system.parts WHERE database = '%s' AND table = '%s' "
                 "AND active GROUP BY partition_id HAVING toUInt32(max(max_time)) > 0 AND "
                 "toUInt32(max(max_time)) < %lld ORDER BY partition_id FORMAT TSV",
                 db, table, (long long)cutoff) < 0)
        return -ENOMEM;
    r = kopt_ch_query(c, sql, &body, NULL, err);
    free(sql);
    if (r < 0)
        return r;
    for (line = strtok_r(body, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
        if (!partition_id_ok(line) || (gate && gate(ctx, c, table, line) != 0))
            continue;
        r = exec(c, 0, err, "ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, table, line);
        if (r == 0) {
            kopt_log_info("retention dropped partition", KOPT_STR("table", table),
                          KOPT_STR("partition", line), KOPT_UINT("days", days));
            n++;
        }
    }
    free(body);
    if (dropped)
        *dropped = n;
    return r;
}
