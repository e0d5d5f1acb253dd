/* The common start, run, reload and stop of a kopt daemon. See kopt/daemon.h. */
#include <kopt/daemon.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kopt/log.h>
#include <kopt/nats.h>
#include <kopt/trace.h>

extern char **environ;

const char *const kopt_daemon_log_formats[] = {"json", "text", NULL};
const char *const kopt_daemon_log_levels[] = {"debug", "info", "warn", "error", NULL};

static const kopt_daemon_settings_t *common(const kopt_config_t *cfg)
{
    /* `common` is the first member of every daemon's settings struct. */
    return kopt_config_values(cfg);
}

static void setup_logging(const char *component, const kopt_daemon_settings_t *c)
{
    kopt_log_setup(component, (kopt_log_format_t)c->log_format, (kopt_log_level_t)c->log_level,
                   STDERR_FILENO);
}

int kopt_daemon_init(kopt_daemon_t *d, const char *component, const kopt_config_spec_t *spec,
                     int argc, char **argv, const kopt_lifecycle_hooks_t *hooks, int *exit_code)
{
    return kopt_daemon_init_with(d, component, spec, argc, argv, hooks, NULL, exit_code);
}


/* A start-up that failed after the settings were read gives back what it
 * made, so the process exits with nothing leaked (ASan's leak check runs at
 * exit, in the tests too). The loop runs once for the admin server's
 * handles to close. */
static int init_failed(kopt_daemon_t *d, int *exit_code, int code)
{
    kopt_lifecycle_free(d->lifecycle);
    d->lifecycle = NULL;
    kopt_admin_free(d->admin);
    d->admin = NULL;
    uv_run(d->loop, UV_RUN_NOWAIT);
    kopt_trace_shutdown();
    kopt_metrics_free(d->metrics);
    d->metrics = NULL;
    kopt_config_free(d->cfg);
    d->cfg = NULL;
    *exit_code = code;
    return -1;
}

int kopt_daemon_init_with(kopt_daemon_t *d, const char *component, const kopt_config_spec_t *spec,
                          int argc, char **argv, const kopt_lifecycle_hooks_t *hooks,
                          kopt_daemon_admin_fn want_admin, int *exit_code)
{
    char err[1024], summary[2048];
    const kopt_daemon_settings_t *c;
    int r;

    memset(d, 0, sizeof(*d));
    d->component = component;
    d->loop = uv_default_loop();
    r = kopt_config_load(&d->cfg, spec, argc, argv, environ, stdout, err, sizeof(err));
    if (r == KOPT_CONFIG_EXIT_HELP) {
        *exit_code = 0;
        return -1;
    }
    if (r < 0) {
        fprintf(stderr, "%s: %s\n", spec->program, err);
        *exit_code = KOPT_CONFIG_EXIT_USAGE;
        return -1;
    }
    c = common(d->cfg);
    setup_logging(component, c);
    kopt_config_summary(d->cfg, summary, sizeof(summary));
    kopt_log_info("starting", KOPT_STR("version", spec->version), KOPT_STR("settings", summary));
    r = kopt_metrics_new(&d->metrics);
    if (r == 0) {
        char service[64];
        kopt_trace_opts_t to = {.endpoint = c->otlp_endpoint, .service = service};

        snprintf(service, sizeof(service), "kopt-%s", component);
        r = kopt_trace_setup(&to, d->metrics);
        if (r < 0) {
            kopt_log_error("tracing failed to start", KOPT_ERR(r));
            return init_failed(d, exit_code, 1);
        }
    }
    if (r == 0 && (!want_admin || want_admin(d->cfg)))
        r = kopt_admin_new(d->loop, c->admin_listen.text, d->metrics, component, NULL, &d->admin);
    if (r < 0) {
        kopt_log_error("admin server failed to start", KOPT_STR("listen", c->admin_listen.text),
                       KOPT_ERR(r));
        return init_failed(d, exit_code, 1);
    }
    if (d->admin)
        kopt_log_info("admin server listening", KOPT_STR("listen", c->admin_listen.text),
                      KOPT_INT("port", kopt_admin_port(d->admin)));
    r = kopt_lifecycle_new(d->loop, hooks, c->drain_timeout_ms, &d->lifecycle);
    if (r < 0) {
        kopt_log_error("signal handlers failed", KOPT_ERR(r));
        return init_failed(d, exit_code, 1);
    }
    return 0;
}

const void *kopt_daemon_settings(const kopt_daemon_t *d)
{
    return kopt_config_values(d->cfg);
}

void kopt_daemon_fail(kopt_daemon_t *d, const char *reason)
{
    kopt_lifecycle_begin_drain(d->lifecycle, reason);
    d->exit_code = 1;
}

void kopt_daemon_close(kopt_daemon_t *d)
{
    if (d->lifecycle && d->exit_code == 0)
        d->exit_code = kopt_lifecycle_exit_code(d->lifecycle);
    kopt_admin_free(d->admin);
    d->admin = NULL;
    kopt_lifecycle_free(d->lifecycle);
    d->lifecycle = NULL;
}

int kopt_daemon_run(kopt_daemon_t *d)
{
    int code;

    uv_run(d->loop, UV_RUN_DEFAULT);
    kopt_nats_shutdown(2000);
    kopt_trace_shutdown(); /* before the metrics its counters live in */
    code = d->exit_code;
    kopt_metrics_free(d->metrics);
    kopt_config_free(d->cfg);
    if (uv_loop_close(d->loop) == UV_EBUSY)
        kopt_log_warn("handles still open at exit");
    kopt_log_info("stopped", KOPT_INT("exit_code", code));
    return code;
}

static void on_change(const kopt_config_setting_t *s, bool reloadable, void *data)
{
    (void)data;
    if (reloadable)
        kopt_log_info("setting changed", KOPT_STR("setting", s->name));
    else
        kopt_log_warn("setting changed but needs a restart; keeping the running value",
                      KOPT_STR("setting", s->name));
}

void kopt_daemon_reload(kopt_daemon_t *d, void (*apply)(void *data, const void *settings),
                        void *data)
{
    kopt_config_t *next = NULL;
    unsigned n_reload = 0, n_restart = 0;
    char err[1024];
    int r = kopt_config_reload(d->cfg, environ, &next, on_change, NULL, &n_reload, &n_restart, err,
                               sizeof(err));

    if (r < 0) {
        kopt_log_error("config reload failed; keeping the running settings",
                       KOPT_STR("error", err));
        return;
    }
    setup_logging(d->component, common(next));
    if (apply)
        apply(data, kopt_config_values(next));
    kopt_config_free(d->cfg);
    d->cfg = next;
    kopt_log_info("config reloaded", KOPT_UINT("applied", n_reload),
                  KOPT_UINT("need_restart", n_restart));
}
