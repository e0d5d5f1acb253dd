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

#include "archive_schedule.h"
#include "backup_cmd.h"
#include "consumer.h"
#include "schema.h"
#include "settings.h"

extern char **environ;

typedef struct {
    kopt_daemon_t d;
    const agg_settings_t *set;
    agg_t *agg;
    agg_schedule_t *schedule;           /* archive and backups */
    kopt_object_store_location_t where; /* --object-store-url, for the schedule */
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
    o->cluster = s->clickhouse_cluster;
    o->insert_quorum = (uint32_t)s->insert_quorum;
    o->insert_quorum_timeout_ms = (uint32_t)s->insert_quorum_timeout_ms;
}

static void agg_options(const agg_settings_t *s, agg_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->nats_url = s->nats_url;
    o->nats_auth = &s->nats;
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

static bool known_subcommand(const char *a)
{
    static const char *const names[] = {"run", "migrate", "backup", "restore", "archive", "replay"};

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
                "archive, replay)\n",
                n > 1 ? args[1] : args[0]);
        code = KOPT_CONFIG_EXIT_USAGE;
    } else if (n == 1 && strcmp(args[0], "migrate") == 0) {
        code = run_migrate(kopt_config_values(cfg));
    } else if (n == 1 && strcmp(args[0], "run") != 0) {
        kopt_ch_options_t o;

        ch_options(kopt_config_values(cfg), &o);
        code = agg_backup_command(kopt_config_values(cfg), &o, args[0]);
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
    agg_stop(app.agg);               /* blocks until inserts and acks are done */
    agg_schedule_free(app.schedule); /* lets a run in progress finish */
    app.schedule = NULL;
}

static void stop_done(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
    kopt_lifecycle_drained(app.d.lifecycle);
}

/* Scheduled archive and backups only with an object store (docs/operations.md). */
static int schedule_new(const agg_settings_t *s, agg_options_t *o, kopt_metrics_t *m)
{
    agg_schedule_options_t so = {.prefix = app.where.prefix,
                                 .archive_after_days = (uint32_t)s->archive_after_days,
                                 .archive_interval_ms = s->archive_interval_ms,
                                 .backup_interval_ms = s->backup_interval_ms,
                                 .first_delay_ms = 5000,
                                 .lease = s->schedule_lease,
                                 .nats_url = s->nats_url,
                                 .nats_auth = &s->nats,
                                 .lease_ttl_ms = s->lease_ttl_ms,
                                 .lease_replicas = (int)s->lease_replicas};
    int r;

    ch_options(s, &so.ch);
    r = agg_objstore_options(s, &app.where, &so.store);
    if (r == -EINVAL)
        return r;
    r = agg_schedule_new(&so, m, &app.schedule);
    if (r == 0 && agg_schedule_gate(app.schedule)) {
        o->retention_gate = agg_archive_gate;
        o->retention_gate_ctx = agg_schedule_gate(app.schedule);
    }
    return r;
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
    if (kopt_nats_auth_validate(o.nats_url, o.nats_auth) < 0 ||
        schedule_new(app.set, &o, app.d.metrics) < 0 || agg_new(&o, app.d.metrics, &app.agg) < 0 ||
        agg_start(app.agg) < 0 || agg_schedule_start(app.schedule) < 0) {
        kopt_lifecycle_begin_drain(app.d.lifecycle, "start-up failed");
        app.d.exit_code = 1;
    }
    code = kopt_daemon_run(&app.d);
    agg_free(app.agg);
    agg_schedule_free(app.schedule);
    return code;
}
