/* kopt-ingest: reads its settings, builds the parts (TLS, gRPC server with
 * Ingest, health and reflection, NATS, the KOPT_METRICS stream, admin HTTP)
 * and runs the loop. SIGTERM drains; SIGHUP re-reads certificates and the
 * reloadable settings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/backoff.h>
#include <kopt/daemon.h>
#include <kopt/grpc_server.h>
#include <kopt/grpc_services.h>
#include <kopt/grpc_tls.h>
#include <kopt/log.h>
#include <kopt/nats.h>
#include <kopt/tls.h>
#include <kopt/url.h>
#include <kopt/util.h>

#include "ingest.h"
#include "kopt_descriptors.h"
#include "settings.h"

static const char *const served_services[] = {
    "kopt.v1.Ingest",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    NULL,
};

typedef struct {
    kopt_daemon_t d;
    const ingest_settings_t *set;
    kopt_tls_source_t *tls;
    kopt_grpc_tls_fetcher_t *fetcher;
    kopt_grpc_server_t *grpc;
    kopt_grpc_health_t *health;
    kopt_grpc_reflection_t *reflection;
    kopt_nats_t *nats;
    kopt_ingest_t *ingest;
    kopt_stream_spec_t stream;
    int stream_ready;
    kopt_backoff_t stream_backoff;
    uv_timer_t stream_retry;
    int grpc_down;
} ingest_main_t;

static ingest_main_t app;

static int serving(void)
{
    return kopt_nats_connected(app.nats) && app.stream_ready &&
           !kopt_lifecycle_draining(app.d.lifecycle);
}

static void update_health(void)
{
    if (app.health)
        kopt_grpc_health_set(app.health, "kopt.v1.Ingest", serving());
}

static int check_nats(void *data, char *reason, size_t len)
{
    (void)data;
    if (kopt_nats_connected(app.nats))
        return 0;
    snprintf(reason, len, "not connected to NATS at %s", KOPT_URL_REDACTED(app.set->nats_url));
    return -1;
}

static int check_stream(void *data, char *reason, size_t len)
{
    (void)data;
    if (app.stream_ready)
        return 0;
    snprintf(reason, len, "stream %s not set up yet", app.stream.name);
    return -1;
}

static void ensure_stream(void);

static void on_stream_retry(uv_timer_t *t)
{
    (void)t;
    ensure_stream();
}

static void on_stream(void *data, int status, const char *message)
{
    (void)data;
    if (status == 0) {
        kopt_log_info("JetStream stream ready", KOPT_STR("detail", message));
        app.stream_ready = 1;
        update_health();
        return;
    }
    if (status == -ECANCELED || kopt_lifecycle_draining(app.d.lifecycle))
        return;
    uint64_t wait = kopt_backoff_next(&app.stream_backoff);
    kopt_log_warn("JetStream stream set-up failed, retrying", KOPT_STR("detail", message),
                  KOPT_UINT("retry_ms", wait));
    uv_timer_start(&app.stream_retry, on_stream_retry, wait, 0);
}

static void ensure_stream(void)
{
    if (!app.set->stream_create) {
        app.stream_ready = 1;
        update_health();
        return;
    }
    kopt_nats_ensure_stream(app.d.loop, app.set->nats_url, &app.stream, on_stream, NULL);
}

static void on_nats_state(void *data, int connected)
{
    (void)data;
    (void)connected;
    update_health();
}

/* Server credentials: mutual TLS unless --insecure. */
static int credentials(grpc_server_credentials **creds)
{
    char err[512];
    int r;

    if (app.set->insecure) {
        kopt_log_warn("INSECURE: gRPC in plaintext without client certificates; any client "
                      "may write for any cluster. For local development only.");
        *creds = grpc_insecure_server_credentials_create();
        return 0;
    }
    if (!app.set->tls_ca || !app.set->tls_cert || !app.set->tls_key) {
        kopt_log_error("mutual TLS needs --tls-ca, --tls-cert and --tls-key (or --insecure for "
                       "local development)");
        return -EINVAL;
    }
    r = kopt_tls_source_new(app.set->tls_ca, app.set->tls_cert, app.set->tls_key, &app.tls, err,
                            sizeof(err));
    if (r == 0)
        r = kopt_grpc_server_credentials_new(app.tls, KOPT_CLIENT_CERT_REQUIRED, creds,
                                             &app.fetcher);
    if (r < 0)
        kopt_log_error("TLS set-up failed", KOPT_STR("error", err), KOPT_ERR(r));
    return r;
}

static void fill_opts(const ingest_settings_t *s, kopt_ingest_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->insecure = s->insecure;
    o->max_batch_bytes = s->max_batch_bytes;
    o->max_streams = (uint32_t)s->max_streams;
    o->max_inflight_bytes = s->max_inflight_bytes;
    o->subject_prefix = "kopt.metrics";
    kopt_batch_limits_default(&o->limits);
    o->limits.max_windows = (uint32_t)s->max_windows;
    o->limits.max_age_seconds = (int64_t)(s->max_batch_age_ms / 1000);
    o->limits.max_future_seconds = (int64_t)(s->max_clock_skew_ms / 1000);
    o->rate.batches_per_s = (double)s->rate_batches;
    o->rate.batch_burst = (double)(s->rate_burst_batches > 0 ? s->rate_burst_batches : 1);
    o->rate.bytes_per_s = (double)s->rate_bytes;
    o->rate.byte_burst = (double)(s->rate_burst_bytes > s->max_batch_bytes ? s->rate_burst_bytes
                                                                           : s->max_batch_bytes);
    o->rate.max_agents = 65536;
    o->publish.window = (uint32_t)s->publish_window;
    o->publish.timeout_ms = (int64_t)s->publish_timeout_ms;
}

static int start_grpc(void)
{
    const ingest_settings_t *s = app.set;
    kopt_grpc_server_opts_t go = {
        /* Room above the batch limit so an oversized batch gets our precise error. */
        .max_recv_bytes = s->max_batch_bytes + (1 << 20),
        .keepalive_time_ms = s->keepalive_time_ms,
        .keepalive_min_ping_ms = s->keepalive_min_ping_ms,
    };
    grpc_server_credentials *creds;
    kopt_ingest_opts_t io;
    int port = 0, r;

    fill_opts(s, &io);
    r = credentials(&creds);
    if (r == 0)
        r = kopt_grpc_server_new(app.d.loop, &go, &app.grpc);
    if (r == 0)
        r = kopt_ingest_new(app.d.loop, app.grpc, app.nats, app.d.metrics, &io, &app.ingest);
    if (r == 0)
        r = kopt_grpc_health_register(app.grpc, &app.health);
    if (r == 0)
        r = kopt_grpc_reflection_register(app.grpc, kopt_descriptor_set, kopt_descriptor_set_len,
                                          served_services, &app.reflection);
    if (r == 0)
        r = kopt_grpc_server_listen(app.grpc, s->listen.text, creds, &port);
    if (r == 0)
        r = kopt_grpc_server_start(app.grpc);
    if (r < 0) {
        kopt_log_error("gRPC server failed to start", KOPT_STR("listen", s->listen.text),
                       KOPT_ERR(r));
        return r;
    }
    kopt_log_info("gRPC listening", KOPT_STR("listen", s->listen.text), KOPT_INT("port", port),
                  KOPT_BOOL("mtls", !s->insecure));
    update_health();
    return 0;
}

/* Everything that holds a handle, in dependency order: the loop then ends. */
static void close_rest(void *arg)
{
    (void)arg;
    app.grpc_down = 1;
    app.grpc = NULL;
    kopt_ingest_free(app.ingest);
    app.ingest = NULL;
    kopt_grpc_health_free(app.health);
    kopt_grpc_reflection_free(app.reflection);
    app.health = NULL;
    kopt_nats_close(app.nats, 1000);
    app.nats = NULL;
    kopt_grpc_tls_fetcher_free(app.fetcher);
    kopt_tls_source_free(app.tls);
    uv_close((uv_handle_t *)&app.stream_retry, NULL);
    kopt_daemon_close(&app.d);
}

/* Lifecycle stop: after a clean drain the gRPC server is already gone;
 * after the deadline or a second signal, cancel what is left first. */
static void on_stop(void *data)
{
    (void)data;
    if (app.grpc && !app.grpc_down)
        kopt_grpc_server_shutdown(app.grpc, 0, close_rest, NULL);
    else
        close_rest(NULL);
}

static void on_grpc_down(void *arg)
{
    (void)arg;
    app.grpc_down = 1;
    app.grpc = NULL;
    kopt_lifecycle_drained(app.d.lifecycle); /* calls on_stop */
}

static void on_ingest_drained(void *arg)
{
    (void)arg;
    kopt_grpc_server_shutdown(app.grpc, 1000, on_grpc_down, NULL);
}

static void on_drain(void *data)
{
    (void)data;
    update_health();
    uv_timer_stop(&app.stream_retry);
    if (app.ingest)
        kopt_ingest_drain(app.ingest, on_ingest_drained, NULL);
    else
        kopt_lifecycle_drained(app.d.lifecycle);
}

static void apply_settings(void *data, const void *settings)
{
    const ingest_settings_t *s = settings;
    kopt_ingest_opts_t io;
    char err[512];
    int changed = 0;

    (void)data;
    app.set = s;
    fill_opts(s, &io);
    if (app.ingest)
        kopt_ingest_set_rate(app.ingest, &io.rate);
    if (app.tls && kopt_tls_source_reload(app.tls, &changed, err, sizeof(err)) < 0)
        kopt_log_error("TLS reload failed; keeping the current certificates",
                       KOPT_STR("error", err));
    else if (changed)
        kopt_log_info("TLS certificates re-read; new connections use them");
}

static void on_reload(void *data)
{
    (void)data;
    kopt_daemon_reload(&app.d, apply_settings, NULL);
    app.set = kopt_daemon_settings(&app.d);
}

int main(int argc, char **argv)
{
    kopt_lifecycle_hooks_t hooks = {
        .drain = on_drain, .stop = on_stop, .reload = on_reload, .data = NULL};
    int code;

    if (kopt_daemon_init(&app.d, "ingest", &ingest_settings_spec, argc, argv, &hooks, &code) < 0)
        return code;
    app.set = kopt_daemon_settings(&app.d);
    grpc_init();
    uv_timer_init(app.d.loop, &app.stream_retry);
    kopt_backoff_init(&app.stream_backoff, 500, 30000, kopt_now_ns());
    app.stream = (kopt_stream_spec_t){
        .name = "KOPT_METRICS",
        .subject = "kopt.metrics.>",
        .memory = app.set->stream_storage == 1,
        .replicas = (int)app.set->stream_replicas,
        .max_age_ms = app.set->stream_max_age_ms,
        .max_bytes = (int64_t)app.set->stream_max_bytes,
        .duplicates_ms = app.set->stream_duplicate_window_ms,
    };
    kopt_admin_add_check(app.d.admin, "nats", check_nats, NULL);
    kopt_admin_add_check(app.d.admin, "stream", check_stream, NULL);
    if (kopt_nats_connect(app.d.loop, app.set->nats_url, "kopt-ingest", on_nats_state, NULL,
                          &app.nats) < 0 ||
        start_grpc() < 0) {
        kopt_lifecycle_begin_drain(app.d.lifecycle, "start-up failed");
        app.d.exit_code = 1;
    } else {
        ensure_stream();
    }
    code = kopt_daemon_run(&app.d);
    grpc_shutdown();
    return code;
}
