/* The common skeleton of the gRPC daemons: credentials, server, health and
 * reflection, the stream set-up with retries, drain and stop order, and the
 * certificate reload. See kopt/grpc_daemon.h. */
#include <kopt/grpc_daemon.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/util.h>

#define STREAM_RETRY_BASE_MS 500
#define STREAM_RETRY_MAX_MS 30000
#define DRAIN_CALLS_MS 1000 /* in-flight gRPC calls after the daemon's own drain */

void kopt_grpc_daemon_update_health(kopt_grpc_daemon_t *g)
{
    bool ready;

    if (!g->health)
        return;
    ready = !g->hooks.ready || g->hooks.ready(g->hooks.data);
    kopt_grpc_health_set(g->health, g->spec.service,
                         ready && !kopt_lifecycle_draining(g->d.lifecycle));
}

/* ---- the stream ------------------------------------------------------------ */

static void ensure_stream(kopt_grpc_daemon_t *g);

static void on_stream_retry(uv_timer_t *t)
{
    ensure_stream(t->data);
}

static void on_stream(void *data, int status, const char *message)
{
    kopt_grpc_daemon_t *g = data;
    uint64_t wait;

    /* A set-up still connecting when the daemon stopped ends after the
     * lifecycle and admin server are gone (NATS refusing us makes that
     * likely: each try waits for its timeout). */
    if (!g->d.lifecycle)
        return;
    if (status == 0) {
        kopt_log_info("JetStream stream ready", KOPT_STR("detail", message));
        g->stream_ready = true;
        kopt_grpc_daemon_update_health(g);
        return;
    }
    if (status == -ECANCELED || kopt_lifecycle_draining(g->d.lifecycle))
        return;
    wait = kopt_backoff_next(&g->stream_backoff);
    kopt_log_warn("JetStream stream set-up failed, retrying", KOPT_STR("detail", message),
                  KOPT_UINT("retry_ms", wait));
    uv_timer_start(&g->stream_retry, on_stream_retry, wait, 0);
}

static void ensure_stream(kopt_grpc_daemon_t *g)
{
    kopt_nats_ensure_stream(g->d.loop, g->nats_url, &g->stream, on_stream, g);
}

int kopt_grpc_daemon_ensure_stream(kopt_grpc_daemon_t *g, const char *url,
                                   const kopt_stream_spec_t *spec)
{
    if (!spec) {
        g->stream_ready = true;
        kopt_grpc_daemon_update_health(g);
        return 0;
    }
    free(g->nats_url);
    g->nats_url = strdup(url);
    if (!g->nats_url)
        return -ENOMEM;
    g->stream = *spec;
    ensure_stream(g);
    return 0;
}

/* ---- the server ------------------------------------------------------------ */

/* TLS from files unless insecure; the client certificate as the spec says. */
static int credentials(kopt_grpc_daemon_t *g, const kopt_grpc_daemon_listen_t *l,
                       grpc_server_credentials **creds)
{
    bool mutual = g->spec.client_cert == KOPT_CLIENT_CERT_REQUIRED;
    char err[512] = "";
    int r;

    if (l->insecure) {
        kopt_log_warn(g->spec.insecure_warning);
        *creds = grpc_insecure_server_credentials_create();
        return 0;
    }
    if (!l->tls_ca || !l->tls_cert || !l->tls_key) {
        kopt_log_error(mutual ? "mutual TLS needs --tls-ca, --tls-cert and --tls-key (or "
                                "--insecure for local development)"
                              : "TLS needs --tls-ca, --tls-cert and --tls-key (or --insecure "
                                "for local development)");
        return -EINVAL;
    }
    r = kopt_tls_source_new(l->tls_ca, l->tls_cert, l->tls_key, &g->tls, err, sizeof(err));
    if (r == 0)
        kopt_tls_source_export(g->tls, g->d.metrics);
    if (r == 0)
        r = kopt_grpc_server_credentials_new(g->tls, g->spec.client_cert, creds, &g->fetcher);
    if (r < 0)
        kopt_log_error("TLS set-up failed", KOPT_STR("error", err), KOPT_ERR(r));
    return r;
}

int kopt_grpc_daemon_start(kopt_grpc_daemon_t *g, const kopt_grpc_daemon_listen_t *l)
{
    const kopt_grpc_daemon_spec_t *sp = &g->spec;
    bool mutual = sp->client_cert == KOPT_CLIENT_CERT_REQUIRED;
    grpc_server_credentials *creds = NULL;
    kopt_grpc_server_opts_t so = {0};
    int port = 0, r;

    if (l->server)
        so = *l->server;
    so.metrics = g->d.metrics; /* grpc_server_handled_total and friends */
    r = credentials(g, l, &creds);
    if (r == 0)
        r = kopt_grpc_server_new(g->d.loop, &so, &g->grpc);
    if (r == 0)
        r = g->hooks.add_services(g->hooks.data, g->grpc);
    if (r == 0)
        r = kopt_grpc_health_register(g->grpc, &g->health);
    if (r == 0)
        r = kopt_grpc_reflection_register(g->grpc, sp->descriptors, sp->descriptors_len,
                                          sp->reflected, &g->reflection);
    if (r == 0) {
        r = kopt_grpc_server_listen(g->grpc, l->listen, creds, &port);
        creds = NULL; /* taken */
    }
    if (r == 0)
        r = kopt_grpc_server_start(g->grpc);
    if (creds)
        grpc_server_credentials_release(creds);
    if (r < 0) {
        kopt_log_error("gRPC server failed to start", KOPT_STR("listen", l->listen), KOPT_ERR(r));
        return r;
    }
    kopt_log_info("gRPC listening", KOPT_STR("listen", l->listen), KOPT_INT("port", port),
                  KOPT_BOOL(mutual ? "mtls" : "tls", !l->insecure));
    kopt_grpc_daemon_update_health(g);
    return 0;
}

/* ---- drain, stop, reload ---------------------------------------------------- */

/* gRPC is gone: the daemon's parts, then the common ones; the loop then ends. */
static void close_all(void *arg)
{
    kopt_grpc_daemon_t *g = arg;

    g->grpc_down = true;
    g->grpc = NULL;
    if (g->hooks.close)
        g->hooks.close(g->hooks.data);
    kopt_grpc_health_free(g->health);
    kopt_grpc_reflection_free(g->reflection);
    g->health = NULL;
    g->reflection = NULL;
    /* The fetcher points to the source: both only after the server. */
    kopt_grpc_tls_fetcher_free(g->fetcher);
    kopt_tls_source_free(g->tls);
    g->fetcher = NULL;
    g->tls = NULL;
    uv_close((uv_handle_t *)&g->stream_retry, NULL);
    kopt_daemon_close(&g->d);
}

/* Lifecycle stop: after a clean drain the gRPC server is already gone;
 * after the deadline or a second signal, cancel what is left first. */
static void on_stop(void *data)
{
    kopt_grpc_daemon_t *g = data;

    if (g->grpc && !g->grpc_down)
        kopt_grpc_server_shutdown(g->grpc, 0, close_all, g);
    else
        close_all(g);
}

static void on_grpc_down(void *arg)
{
    kopt_grpc_daemon_t *g = arg;

    g->grpc_down = true;
    g->grpc = NULL;
    kopt_lifecycle_drained(g->d.lifecycle); /* calls on_stop */
}

void kopt_grpc_daemon_drained(kopt_grpc_daemon_t *g)
{
    if (g->grpc)
        kopt_grpc_server_shutdown(g->grpc, DRAIN_CALLS_MS, on_grpc_down, g);
    else
        kopt_lifecycle_drained(g->d.lifecycle);
}

static void on_drain(void *data)
{
    kopt_grpc_daemon_t *g = data;

    kopt_grpc_daemon_update_health(g);
    uv_timer_stop(&g->stream_retry);
    if (g->hooks.drain)
        g->hooks.drain(g->hooks.data);
    else
        kopt_grpc_daemon_drained(g);
}

static void apply_settings(void *data, const void *settings)
{
    kopt_grpc_daemon_t *g = data;
    char err[512];
    int changed = 0;

    if (g->hooks.apply)
        g->hooks.apply(g->hooks.data, settings);
    if (g->tls && kopt_tls_source_reload(g->tls, &changed, err, sizeof(err)) < 0)
        kopt_log_error("TLS reload failed; keeping the current certificates",
                       KOPT_STR("error", err));
    else if (changed) {
        kopt_tls_source_export(g->tls, g->d.metrics);
        kopt_log_info("TLS certificates re-read; new connections use them");
    }
}

static void on_reload(void *data)
{
    kopt_grpc_daemon_t *g = data;

    kopt_daemon_reload(&g->d, apply_settings, g);
}

/* ---- start and run ---------------------------------------------------------- */

int kopt_grpc_daemon_init(kopt_grpc_daemon_t *g, const char *component,
                          const kopt_config_spec_t *settings, int argc, char **argv,
                          const kopt_grpc_daemon_spec_t *spec,
                          const kopt_grpc_daemon_hooks_t *hooks, int *exit_code)
{
    kopt_lifecycle_hooks_t lh = {
        .drain = on_drain, .stop = on_stop, .reload = on_reload, .data = g};

    memset(g, 0, sizeof(*g));
    g->spec = *spec;
    g->hooks = *hooks;
    if (kopt_daemon_init(&g->d, component, settings, argc, argv, &lh, exit_code) < 0)
        return -1;
    grpc_init();
    uv_timer_init(g->d.loop, &g->stream_retry);
    g->stream_retry.data = g;
    kopt_backoff_init(&g->stream_backoff, STREAM_RETRY_BASE_MS, STREAM_RETRY_MAX_MS, kopt_now_ns());
    return 0;
}

int kopt_grpc_daemon_run(kopt_grpc_daemon_t *g)
{
    int code = kopt_daemon_run(&g->d);

    free(g->nats_url);
    g->nats_url = NULL;
    grpc_shutdown();
    return code;
}
