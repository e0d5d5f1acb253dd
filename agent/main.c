/* kopt-agent: reads its settings, builds the parts (source and metadata,
 * windows, spool, transport to ingest, admin HTTP) and runs the loop. SIGTERM stops
 * measuring, lets the last acks arrive, and exits; whatever was not acked is
 * in the spool for the next start. --once measures one window and prints it. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopt/daemon.h>
#include <kopt/grpc_tls.h>
#include <kopt/identity.h>
#include <kopt/log.h>
#include <kopt/names.h>
#include <kopt/tls.h>
#include <kopt/util.h>

#include "collect.h"
#include "output.h"
#include "settings.h"
#include "spool.h"
#include "transport.h"

typedef struct {
    kopt_daemon_t d;
    const agent_settings_t *set;
    char node[254], agent_id[254];
    kopt_collector_t *collector;
    kopt_spool_t *spool;
    kopt_transport_t *transport;
    uv_timer_t tick;
    uint64_t once_epoch, once_seq;
    size_t once_windows;
} agent_t;

static agent_t app;

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the spool as the transport's batch source --- */

static int spool_next(void *data, kopt_batch_ref_t *out)
{
    kopt_spool_entry_t e;
    int r = kopt_spool_peek(data, &e);

    if (r < 0)
        return -EAGAIN;
    kopt_spool_next(data);
    *out = (kopt_batch_ref_t){e.data, e.len, e.epoch, e.seq};
    return 0;
}

static void spool_rewind(void *data)
{
    kopt_spool_rewind(data);
}

static void spool_ack(void *data, uint64_t epoch, uint64_t seq)
{
    int r = kopt_spool_ack(data, epoch, seq);

    if (r < 0)
        kopt_log_error("spool ack failed; the batches will be sent again", KOPT_ERR(r));
}

static void spool_rejected(void *data, uint64_t epoch, uint64_t seq, const char *reason)
{
    (void)data;
    kopt_log_warn("batch dropped: ingest refused it", KOPT_UINT("epoch", epoch),
                  KOPT_UINT("seq", seq), KOPT_STR("reason", reason));
}

/* --- where batches go --- */

static void take_spool_id(void *data, uint64_t *epoch, uint64_t *seq)
{
    (void)data;
    kopt_spool_take_id(app.spool, epoch, seq);
}

static int to_spool(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes, size_t len,
                    const kopt_window_t *wins, const kopt_container_meta_t *metas, size_t n)
{
    int r = kopt_spool_append(app.spool, epoch, seq, bytes, len);

    (void)data;
    (void)wins;
    (void)metas;
    if (r < 0) {
        kopt_log_error("spool append failed; batch lost", KOPT_UINT("seq", seq),
                       KOPT_UINT("windows", n), KOPT_ERR(r));
        return r;
    }
    kopt_transport_kick(app.transport);
    return 0;
}

static void take_once_id(void *data, uint64_t *epoch, uint64_t *seq)
{
    (void)data;
    *epoch = app.once_epoch;
    *seq = ++app.once_seq;
}

static int to_stdout(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes, size_t len,
                     const kopt_window_t *wins, const kopt_container_meta_t *metas, size_t n)
{
    int r = kopt_output_batch_json(stdout, bytes, len);

    (void)data;
    (void)wins;
    (void)metas;
    if (r < 0) {
        kopt_log_error("--once: cannot print the batch", KOPT_UINT("epoch", epoch),
                       KOPT_UINT("seq", seq), KOPT_ERR(r));
        return r;
    }
    app.once_windows += n;
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    int r;

    (void)t;
    r = kopt_collector_tick(app.collector, wall_ms());
    if (app.spool)
        kopt_spool_maintain(app.spool, wall_ms() / 1000);
    if (r < 0)
        kopt_log_warn("measuring failed", KOPT_ERR(r));
    if (app.set->once && app.once_windows > 0) {
        uv_timer_stop(&app.tick);
        kopt_lifecycle_begin_drain(app.d.lifecycle, "--once: one window printed");
    }
}

/* --- metrics read at scrape time: `data` is the offset of a uint64_t field
 * in the stats struct --- */

static double spool_stat(void *data)
{
    kopt_spool_stats_t st;

    if (!app.spool)
        return 0;
    kopt_spool_stats(app.spool, &st);
    return (double)*(const uint64_t *)((const char *)&st + (uintptr_t)data);
}

static double transport_stat(void *data)
{
    kopt_transport_stats_t st;

    if (!app.transport)
        return 0;
    kopt_transport_stats(app.transport, &st);
    return (double)*(const uint64_t *)((const char *)&st + (uintptr_t)data);
}

#define OFF(type, field) ((void *)(uintptr_t)offsetof(type, field))

static int check_ingest(void *data, char *reason, size_t len)
{
    kopt_transport_stats_t st;

    (void)data;
    if (!app.transport)
        return 0;
    kopt_transport_stats(app.transport, &st);
    if (st.connected)
        return 0;
    snprintf(reason, len, "not connected to ingest; batches wait in the spool");
    return -1;
}

/* The stats offsets travel as the callbacks' data pointers, by design. */
/* NOLINTBEGIN(performance-no-int-to-ptr) */
static void register_metrics(void)
{
    kopt_metrics_t *m = app.d.metrics;

    kopt_metrics_gauge_func(m, "kopt_agent_spool_bytes", "Bytes in the spool now.", spool_stat,
                            OFF(kopt_spool_stats_t, bytes));
    kopt_metrics_counter_func(m, "kopt_agent_spool_dropped_total",
                              "Spooled batches dropped by the size or age bound.", spool_stat,
                              OFF(kopt_spool_stats_t, dropped_records));
    kopt_metrics_counter_func(m, "kopt_agent_spool_torn_total",
                              "Torn or corrupt spool records found at start.", spool_stat,
                              OFF(kopt_spool_stats_t, torn));
    kopt_metrics_counter_func(m, "kopt_agent_sent_batches_total", "Batches sent to ingest.",
                              transport_stat, OFF(kopt_transport_stats_t, sent));
    kopt_metrics_counter_func(m, "kopt_agent_acked_batches_total",
                              "Batches acknowledged by ingest.", transport_stat,
                              OFF(kopt_transport_stats_t, acked));
    kopt_metrics_counter_func(m, "kopt_agent_rejected_batches_total",
                              "Batches ingest refused for good.", transport_stat,
                              OFF(kopt_transport_stats_t, rejected));
    kopt_metrics_counter_func(m, "kopt_agent_reconnects_total",
                              "Push streams that ended and were opened again.", transport_stat,
                              OFF(kopt_transport_stats_t, reconnects));
    kopt_admin_add_check(app.d.admin, "ingest", check_ingest, NULL);
}
/* NOLINTEND(performance-no-int-to-ptr) */

/* --- identity --- */

/* Node name: the setting, else the host name. Agent id: the setting, else
 * the client certificate's id with the node appended, else "dev-agent"
 * (plaintext). */
static int identify(kopt_tls_material_t *m)
{
    kopt_identity_t id;
    const char *why;

    if (app.set->node)
        snprintf(app.node, sizeof(app.node), "%s", app.set->node);
    else if (gethostname(app.node, sizeof(app.node)) < 0)
        snprintf(app.node, sizeof(app.node), "localhost");
    for (char *p = app.node; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (kopt_name_check_why(app.node, KOPT_NAME_SUBDOMAIN, &why) < 0) {
        kopt_log_error("node name is not a valid Kubernetes name; set --node",
                       KOPT_STR("node", app.node), KOPT_STR("rule", why));
        return -EINVAL;
    }
    if (app.set->agent_id)
        snprintf(app.agent_id, sizeof(app.agent_id), "%s", app.set->agent_id);
    else if (m && kopt_identity_parse(m->uri_san, &id) == 0)
        /* "<certificate id>.<node>": unique per node even when every agent
         * of a DaemonSet shares one certificate (ingest allows the suffix). */
        snprintf(app.agent_id, sizeof(app.agent_id), "%.120s.%.120s", id.agent_id, app.node);
    else
        snprintf(app.agent_id, sizeof(app.agent_id), "dev-agent");
    if (m && kopt_identity_parse(m->uri_san, &id) == 0 &&
        strcmp(id.cluster, app.set->cluster) != 0) {
        kopt_log_error("the client certificate is for another cluster; ingest would refuse "
                       "every batch",
                       KOPT_STR("certificate_cluster", id.cluster),
                       KOPT_STR("cluster", app.set->cluster));
        return -EINVAL;
    }
    return 0;
}

/* --- start and stop --- */

static int start_transport(kopt_tls_material_t *m)
{
    const agent_settings_t *s = app.set;
    kopt_spool_opts_t so;
    kopt_transport_opts_t to = {
        .targets = (const char *const *)s->ingest.items,
        .n_targets = s->ingest.n,
        .creds = s->insecure ? NULL : kopt_grpc_channel_credentials_new(m),
        .server_name = s->tls_server_name,
        .window = (uint32_t)s->send_window,
        .backoff_base_ms = 250,
        .backoff_max_ms = 30000,
        .poison_after = 3,
    };
    kopt_batch_source_t src;
    int r;

    kopt_spool_opts_default(&so);
    so.max_bytes = s->spool_max_bytes;
    so.max_age_s = s->spool_max_age_ms / 1000;
    so.fsync = (kopt_spool_fsync_t)s->spool_fsync;
    r = kopt_spool_open(s->spool_dir, &so, &app.spool);
    if (r < 0) {
        kopt_log_error("cannot open the spool", KOPT_STR("dir", s->spool_dir), KOPT_ERR(r));
        if (to.creds)
            grpc_channel_credentials_release(to.creds);
        return r;
    }
    src = (kopt_batch_source_t){spool_next, spool_rewind, spool_ack, spool_rejected, app.spool};
    r = kopt_transport_new(app.d.loop, &to, &src, &app.transport);
    if (r == 0)
        r = kopt_transport_start(app.transport);
    if (r < 0)
        kopt_log_error("transport failed to start", KOPT_ERR(r));
    return r;
}

static int start_collector(void)
{
    const agent_settings_t *s = app.set;
    kopt_sources_opts_t so = {
        .source = s->source,
        .node = app.node,
        .cgroup_root = s->cgroup_root,
        .proc_root = s->proc_root,
        .proc_rules = (const char *const *)s->proc_rules.items,
        .n_proc_rules = s->proc_rules.n,
        .proc_namespace = s->proc_namespace,
        .kubeconfig = s->kubeconfig,
        .api_server = s->api_server,
        .token_file = s->token_file,
        .ca_file = s->ca_file,
        .metadata_refresh_ms = s->metadata_refresh_ms ? s->metadata_refresh_ms : 60000,
        .kubelet_mode = s->kubelet_mode,
        .kubelet_url = s->kubelet_url,
        .kubelet_insecure_tls = s->kubelet_insecure_tls,
    };
    kopt_collector_opts_t co = {
        .cluster = s->cluster,
        .node = app.node,
        .agent_id = app.agent_id,
        .window_ms = (int64_t)s->window_ms,
        .max_containers = (size_t)s->max_containers,
        .max_windows_per_batch = 2000,
        .loop = app.d.loop,
        .sources = &so,
        .take_id = s->once ? take_once_id : take_spool_id,
        .sink = s->once ? to_stdout : to_spool,
    };

    if (s->window_ms == 0 || s->sample_interval_ms == 0) {
        kopt_log_error("--window and --sample-interval must be above 0");
        return -EINVAL;
    }
    return kopt_collector_new(&co, app.d.metrics, &app.collector);
}

static void close_all(void)
{
    uv_close((uv_handle_t *)&app.tick, NULL);
    kopt_collector_free(app.collector);
    kopt_spool_free(app.spool);
    app.collector = NULL;
    app.spool = NULL;
    kopt_daemon_close(&app.d);
}

static void on_transport_stopped(void *arg)
{
    (void)arg;
    app.transport = NULL;
    kopt_lifecycle_drained(app.d.lifecycle);
}

static void on_drain(void *data)
{
    (void)data;
    uv_timer_stop(&app.tick);
    if (app.transport)
        kopt_transport_stop(app.transport, 5000, on_transport_stopped, NULL);
    else
        kopt_lifecycle_drained(app.d.lifecycle);
}

static void on_stop(void *data)
{
    (void)data;
    if (app.transport) /* the drain deadline passed: stop now */
        kopt_transport_stop(app.transport, 0, NULL, NULL);
    app.transport = NULL;
    close_all();
}

int main(int argc, char **argv)
{
    kopt_lifecycle_hooks_t hooks = {.drain = on_drain, .stop = on_stop};
    kopt_tls_material_t m;
    char err[512];
    int code, r = 0;

    if (kopt_daemon_init(&app.d, "agent", &agent_settings_spec, argc, argv, &hooks, &code) < 0)
        return code;
    app.set = kopt_daemon_settings(&app.d);
    memset(&m, 0, sizeof(m));
    grpc_init();
    uv_timer_init(app.d.loop, &app.tick);
    if (!app.set->insecure && !app.set->once) {
        r = kopt_tls_material_load(app.set->tls_ca, app.set->tls_cert, app.set->tls_key, &m, err,
                                   sizeof(err));
        if (r < 0)
            kopt_log_error("TLS set-up failed (or use --insecure for local development)",
                           KOPT_STR("error", err));
    } else if (app.set->insecure) {
        kopt_log_warn("INSECURE: plaintext gRPC to ingest. For local development only.");
    }
    if (r == 0)
        r = identify(r == 0 && m.cert_pem ? &m : NULL);
    if (r == 0)
        r = start_collector();
    if (r == 0 && !app.set->once) {
        register_metrics();
        r = start_transport(&m);
    }
    kopt_tls_material_clear(&m);
    app.once_epoch = (uint64_t)wall_ms() * 1000000;
    if (r < 0) {
        app.d.exit_code = 1;
        kopt_lifecycle_begin_drain(app.d.lifecycle, "start-up failed");
    } else {
        kopt_log_info("measuring", KOPT_STR("node", app.node), KOPT_STR("agent_id", app.agent_id),
                      KOPT_UINT("sample_interval_ms", app.set->sample_interval_ms),
                      KOPT_UINT("window_ms", app.set->window_ms));
        uv_timer_start(&app.tick, on_tick, 0, app.set->sample_interval_ms);
    }
    code = kopt_daemon_run(&app.d);
    grpc_shutdown();
    return code;
}
