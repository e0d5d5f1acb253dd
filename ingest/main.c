/* kopt-ingest: reads its settings, builds the parts (TLS, gRPC server with
 * Ingest, health and reflection, NATS, the KOPT_METRICS stream, admin HTTP)
 * and runs the loop. SIGTERM drains; SIGHUP re-reads certificates and the
 * reloadable settings. The common daemon skeleton is kopt/grpc_daemon.h. */
#include <stdio.h>
#include <string.h>

#include <kopt/batch_subject.h>
#include <kopt/grpc_daemon.h>
#include <kopt/log.h>
#include <kopt/nats.h>
#include <kopt/url.h>

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
    kopt_grpc_daemon_t g;
    const ingest_settings_t *set;
    kopt_nats_t *nats;
    ingest_t *ingest;
    kopt_stream_spec_t stream;
    kopt_nats_auth_t nats_auth; /* a copy: settings are freed on reload */
} ingest_main_t;

static bool ready(void *data)
{
    ingest_main_t *a = data;

    return a->nats && kopt_nats_connected(a->nats) && a->g.stream_ready;
}

static int check_nats(void *data, char *reason, size_t len)
{
    ingest_main_t *a = data;

    if (kopt_nats_connected(a->nats))
        return 0;
    snprintf(reason, len, "not connected to NATS at %s", KOPT_URL_REDACTED(a->set->nats_url));
    return -1;
}

static int check_stream(void *data, char *reason, size_t len)
{
    ingest_main_t *a = data;

    if (a->g.stream_ready)
        return 0;
    snprintf(reason, len, "stream %s not set up yet", a->stream.name);
    return -1;
}

static void on_nats_state(void *data, int connected)
{
    ingest_main_t *a = data;

    (void)connected;
    kopt_grpc_daemon_update_health(&a->g);
}

static void fill_opts(const ingest_settings_t *s, ingest_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->insecure = s->insecure;
    o->max_batch_bytes = s->max_batch_bytes;
    o->max_streams = (uint32_t)s->max_streams;
    o->max_streams_per_agent = (uint32_t)s->max_streams_per_agent;
    o->stream_idle_ms = s->stream_idle_timeout_ms;
    o->max_inflight_bytes = s->max_inflight_bytes;
    o->subject_prefix = KOPT_BATCH_SUBJECT_PREFIX;
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

static int add_services(void *data, kopt_grpc_server_t *srv)
{
    ingest_main_t *a = data;
    ingest_opts_t io;

    fill_opts(a->set, &io);
    return ingest_new(a->g.d.loop, srv, a->nats, a->g.d.metrics, &io, &a->ingest);
}

static void on_ingest_drained(void *arg)
{
    ingest_main_t *a = arg;

    kopt_grpc_daemon_drained(&a->g);
}

static void drain(void *data)
{
    ingest_main_t *a = data;

    if (a->ingest)
        ingest_drain(a->ingest, on_ingest_drained, a);
    else
        kopt_lifecycle_drained(a->g.d.lifecycle);
}

static void close_parts(void *data)
{
    ingest_main_t *a = data;

    ingest_free(a->ingest);
    a->ingest = NULL;
    kopt_nats_close(a->nats, 1000);
    a->nats = NULL;
}

static void apply_settings(void *data, const void *settings)
{
    ingest_main_t *a = data;
    ingest_opts_t io;

    a->set = settings;
    fill_opts(a->set, &io);
    if (a->ingest)
        ingest_set_rate(a->ingest, &io.rate);
}

int main(int argc, char **argv)
{
    ingest_main_t a = {0};
    const kopt_grpc_daemon_spec_t spec = {
        .service = "kopt.v1.Ingest",
        .reflected = served_services,
        .descriptors = kopt_descriptor_set,
        .descriptors_len = kopt_descriptor_set_len,
        .client_cert = KOPT_CLIENT_CERT_REQUIRED,
        .insecure_warning = "INSECURE: gRPC in plaintext without client certificates; any "
                            "client may write for any cluster. For local development only.",
    };
    const kopt_grpc_daemon_hooks_t hooks = {.add_services = add_services,
                                            .ready = ready,
                                            .drain = drain,
                                            .close = close_parts,
                                            .apply = apply_settings,
                                            .data = &a};
    kopt_grpc_server_opts_t go;
    kopt_grpc_daemon_listen_t l;
    int code;

    if (kopt_grpc_daemon_init(&a.g, "ingest", &ingest_settings_spec, argc, argv, &spec, &hooks,
                              &code) < 0)
        return code;
    a.set = kopt_daemon_settings(&a.g.d);
    go = (kopt_grpc_server_opts_t){
        /* Room above the batch limit so an oversized batch gets our precise error. */
        .max_recv_bytes = a.set->max_batch_bytes + (1 << 20),
        .keepalive_time_ms = a.set->keepalive_time_ms,
        .keepalive_min_ping_ms = a.set->keepalive_min_ping_ms,
    };
    l = (kopt_grpc_daemon_listen_t){.listen = a.set->listen.text,
                                    .insecure = a.set->insecure,
                                    .tls_ca = a.set->tls_ca,
                                    .tls_cert = a.set->tls_cert,
                                    .tls_key = a.set->tls_key,
                                    .server = &go};
    a.stream = (kopt_stream_spec_t){
        .name = "KOPT_METRICS",
        .subject = "kopt.metrics.>",
        .memory = a.set->stream_storage == 1,
        .replicas = (int)a.set->stream_replicas,
        .max_age_ms = a.set->stream_max_age_ms,
        .max_bytes = (int64_t)a.set->stream_max_bytes,
        .duplicates_ms = a.set->stream_duplicate_window_ms,
        .auth = &a.nats_auth,
    };
    kopt_admin_add_check(a.g.d.admin, "nats", check_nats, &a);
    kopt_admin_add_check(a.g.d.admin, "stream", check_stream, &a);
    if (kopt_nats_auth_copy(&a.nats_auth, &a.set->nats) < 0 ||
        kopt_nats_connect(a.g.d.loop, a.set->nats_url, "kopt-ingest", &a.nats_auth, on_nats_state,
                          &a, &a.nats) < 0 ||
        kopt_grpc_daemon_start(&a.g, &l) < 0)
        kopt_daemon_fail(&a.g.d, "start-up failed");
    else
        kopt_grpc_daemon_ensure_stream(&a.g, a.set->nats_url,
                                       a.set->stream_create ? &a.stream : NULL);
    code = kopt_grpc_daemon_run(&a.g);
    kopt_nats_auth_clear(&a.nats_auth);
    return code;
}
