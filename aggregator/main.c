/* kopt-aggregator: reads its settings, then either runs the migrations and
 * exits (`migrate`) or runs the consumer (`run`, the default: migrations,
 * then JetStream -> ClickHouse, rollups, retention) behind the admin HTTP
 * server. The work happens on threads of consumer.c; the loop thread only
 * serves /healthz, /readyz, /metrics and signals. SIGTERM drains. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopt/daemon.h>
#include <kopt/log.h>
#include <kopt/url.h>

#include "backup.h"
#include "consumer.h"
#include "schema.h"
#include "settings.h"

extern char **environ;

typedef struct {
    kopt_daemon_t d;
    const agg_settings_t *set;
    agg_t *agg;
    uv_work_t stop_work;
} agg_main_t;

static agg_main_t app;

static void ch_options(const agg_settings_t *s, kopt_ch_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->url = s->clickhouse_url;
    o->database = s->clickhouse_database;
    o->user = s->clickhouse_user;
    o->password_file = s->clickhouse_password_file;
    o->password_env = "KOPT_CLICKHOUSE_PASSWORD";
    o->ca_file = s->clickhouse_ca;
    o->timeout_ms = (uint32_t)s->clickhouse_timeout_ms;
}

static void agg_options(const agg_settings_t *s, agg_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->nats_url = s->nats_url;
    o->stream = s->stream;
    o->consumer = s->consumer;
    o->deadletter_prefix = s->deadletter_prefix;
    ch_options(s, &o->ch);
    o->fetch_batch = (uint32_t)s->fetch_batch;
    o->fetch_timeout_ms = s->fetch_timeout_ms;
    o->ack_wait_ms = s->ack_wait_ms;
    o->max_ack_pending = s->max_ack_pending;
    o->max_deliver = s->max_deliver;
    o->insert_max_rows = (uint64_t)s->insert_max_rows;
    o->insert_max_delay_ms = s->insert_max_delay_ms;
    o->workers = (uint32_t)s->workers;
    o->rollup_interval_ms = s->rollup_interval_ms;
    o->rollup_lateness_ms = s->rollup_lateness_ms;
    o->retention_days = (uint32_t)s->retention_days;
    o->hourly_retention_days = (uint32_t)s->hourly_retention_days;
    /* Age is not checked on this side (docs/storage.md): max_age_seconds,
     * used only to split too-old windows off, stays at its default. */
    kopt_batch_limits_default(&o->limits);
    o->limits.max_windows = (uint32_t)s->max_windows;
    o->limits.max_future_seconds = (int64_t)(s->max_clock_skew_ms / 1000);
}

/* `kopt-aggregator migrate`: no loop, no admin server; blocking is fine. */
static int run_migrate(const agg_settings_t *s)
{
    kopt_ch_options_t o;
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    unsigned applied = 0;
    int r;

    kopt_log_setup("aggregator", (kopt_log_format_t)s->common.log_format,
                   (kopt_log_level_t)s->common.log_level, 2);
    ch_options(s, &o);
    r = kopt_ch_client_new(&o, &c, &err);
    if (r == 0)
        r = agg_schema_migrate(c, NULL, &applied, &err);
    if (r < 0)
        kopt_log_error("migrations failed",
                       KOPT_STR("clickhouse", KOPT_URL_REDACTED(s->clickhouse_url)),
                       KOPT_INT("code", err.code), KOPT_STR("detail", err.message), KOPT_ERR(r));
    else
        kopt_log_info("schema up to date", KOPT_STR("database", kopt_ch_database(c)),
                      KOPT_UINT("applied", applied), KOPT_UINT("latest", agg_schema_latest()));
    kopt_ch_client_free(c);
    return r < 0 ? 1 : 0;
}

/* `backup` and `restore` (backup.h): one-shot, like migrate. */
static int run_backup_restore(const agg_settings_t *s, bool restore)
{
    kopt_ch_options_t o;
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    kopt_objstore_t *st = NULL;
    kopt_objstore_error_t oerr = {0};
    kopt_objstore_stats_t os = {0};
    char why[512] = "";
    int r;

    kopt_log_setup("aggregator", (kopt_log_format_t)s->common.log_format,
                   (kopt_log_level_t)s->common.log_level, 2);
    if (!s->s3_endpoint || !s->s3_bucket) {
        kopt_log_error("backup and restore need --s3-endpoint and --s3-bucket");
        return KOPT_CONFIG_EXIT_USAGE;
    }
    kopt_objstore_options_t so = {
        .endpoint = s->s3_endpoint,
        .bucket = s->s3_bucket,
        .region = s->s3_region,
        .ca_file = s->s3_ca,
        .path_style = s->s3_path_style,
        .credentials_file = s->s3_credentials_file,
        .timeout_ms = (uint32_t)s->clickhouse_timeout_ms,
    };
    r = kopt_objstore_new(&so, &st, &oerr);
    if (r < 0) {
        kopt_log_error("object store settings", KOPT_STR("detail", oerr.message), KOPT_ERR(r));
        return KOPT_CONFIG_EXIT_USAGE;
    }
    ch_options(s, &o);
    o.max_response_bytes = (size_t)4 << 30; /* one partition as Native */
    r = kopt_ch_client_new(&o, &c, &err);
    if (r < 0) {
        snprintf(why, sizeof(why), "ClickHouse: %s", err.message);
    } else if (restore) {
        agg_restore_result_t res;

        r = agg_restore_run(c, st, s->s3_prefix, s->backup_id, &res, why, sizeof(why));
        if (r == 0)
            kopt_log_info("restore done", KOPT_STR("backup", res.id),
                          KOPT_UINT("tables", res.tables), KOPT_UINT("partitions", res.partitions),
                          KOPT_UINT("rows", res.rows),
                          KOPT_UINT("ms", (uint64_t)(res.seconds * 1000)));
    } else {
        agg_backup_result_t res;
        agg_backup_options_t bo = {.prefix = s->s3_prefix};

        r = agg_backup_run(c, st, &bo, &res, why, sizeof(why));
        if (r == 0)
            kopt_log_info("backup done", KOPT_STR("backup", res.id),
                          KOPT_UINT("tables", res.tables), KOPT_UINT("partitions", res.partitions),
                          KOPT_UINT("rows", res.rows), KOPT_UINT("bytes", res.bytes),
                          KOPT_UINT("ms", (uint64_t)(res.seconds * 1000)));
    }
    kopt_objstore_stats(st, &os);
    /* The object store counters of this run, for the operator and a cron
     * job's log scraper (there is no /metrics for a one-shot command). */
    kopt_log_info("object store requests", KOPT_UINT("requests", os.requests),
                  KOPT_UINT("retries", os.retries), KOPT_UINT("failures", os.failures),
                  KOPT_UINT("bytes_up", os.bytes_up), KOPT_UINT("bytes_down", os.bytes_down),
                  KOPT_UINT("overwrite_refusals", os.overwrite_refusals));
    if (r < 0)
        kopt_log_error(restore ? "restore failed" : "backup failed", KOPT_STR("reason", why),
                       KOPT_ERR(r));
    kopt_ch_client_free(c);
    kopt_objstore_free(st);
    return r < 0 ? 1 : 0;
}

static bool known_subcommand(const char *a)
{
    static const char *const names[] = {"run", "migrate", "backup", "restore", "replay"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(a, names[i]) == 0)
            return true;
    return false;
}

/* Picks the subcommand. Returns -1 to go on with `run`, or an exit code. */
static int subcommand(int argc, char **argv)
{
    kopt_config_t *cfg = NULL;
    char err[512];
    char *const *args;
    int n = 0, code = -1;

    /* Errors and --help are left to kopt_daemon_init, which reports them. */
    if (kopt_config_load(&cfg, &agg_settings_spec, argc, argv, environ, NULL, err, sizeof(err)) !=
            0 ||
        !cfg)
        return -1;
    args = kopt_config_args(cfg, &n);
    if (n > 1 || (n == 1 && !known_subcommand(args[0]))) {
        fprintf(stderr,
                "kopt-aggregator: unknown subcommand \"%s\" (run, migrate, backup, restore, "
                "replay)\n",
                n > 1 ? args[1] : args[0]);
        code = KOPT_CONFIG_EXIT_USAGE;
    } else if (n == 1 && strcmp(args[0], "migrate") == 0) {
        code = run_migrate(kopt_config_values(cfg));
    } else if (n == 1 && (strcmp(args[0], "backup") == 0 || strcmp(args[0], "restore") == 0)) {
        code = run_backup_restore(kopt_config_values(cfg), strcmp(args[0], "restore") == 0);
    } else if (n == 1 && strcmp(args[0], "replay") == 0) {
        const agg_settings_t *s = kopt_config_values(cfg);
        char why[512] = "";

        kopt_log_setup("aggregator", (kopt_log_format_t)s->common.log_format,
                       (kopt_log_level_t)s->common.log_level, 2);
        code = agg_restore_replay(s->nats_url, s->stream, s->consumer, why, sizeof(why)) < 0;
        if (code)
            kopt_log_error("replay failed", KOPT_STR("reason", why));
        else
            kopt_log_info("consumer deleted: the next run replays the stream",
                          KOPT_STR("stream", s->stream), KOPT_STR("consumer", s->consumer));
    }
    kopt_config_free(cfg);
    return code;
}

static int check_ready(void *data, char *reason, size_t len)
{
    (void)data;
    return app.agg ? agg_ready(app.agg, reason, len) : -EAGAIN;
}

static void stop_work(uv_work_t *req)
{
    (void)req;
    agg_stop(app.agg); /* blocks until inserts and acks are done */
}

static void stop_done(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
    kopt_lifecycle_drained(app.d.lifecycle);
}

static void on_drain(void *data)
{
    (void)data;
    if (!app.agg || uv_queue_work(app.d.loop, &app.stop_work, stop_work, stop_done) != 0)
        kopt_lifecycle_drained(app.d.lifecycle);
}

static void on_stop(void *data)
{
    (void)data;
    kopt_daemon_close(&app.d);
}

int main(int argc, char **argv)
{
    kopt_lifecycle_hooks_t hooks = {.drain = on_drain, .stop = on_stop, .data = NULL};
    agg_options_t o;
    int code = subcommand(argc, argv);

    if (code >= 0)
        return code;
    if (kopt_daemon_init(&app.d, "aggregator", &agg_settings_spec, argc, argv, &hooks, &code) < 0)
        return code;
    app.set = kopt_daemon_settings(&app.d);
    agg_options(app.set, &o);
    kopt_admin_add_check(app.d.admin, "aggregator", check_ready, NULL);
    if (agg_new(&o, app.d.metrics, &app.agg) < 0 || agg_start(app.agg) < 0) {
        kopt_lifecycle_begin_drain(app.d.lifecycle, "start-up failed");
        app.d.exit_code = 1;
    }
    code = kopt_daemon_run(&app.d);
    agg_free(app.agg);
    return code;
}
