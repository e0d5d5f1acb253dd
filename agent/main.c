/* kopt-agent: reads its settings, builds the parts (source and metadata,
 * windows, spool, transport to ingest, admin HTTP) and runs the loop. SIGTERM stops
 * measuring, lets the last acks arrive, and exits; whatever was not acked is
 * in the spool for the next start. --once measures one window and prints it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopt/daemon.h>
#include <kopt/grpc_tls.h>
#include <kopt/log.h>
#include <kopt/tls.h>

#include "collect.h"
#include "identity.h"
#include "output.h"
#include "settings.h"
#include "spool_link.h"

typedef struct {
    kopt_daemon_t d;
    const agent_settings_t *set;
    agent_identity_t id;
    agent_collector_t *collector;
    agent_spool_link_t link; /* the spool and the transport */
    uv_timer_t tick;
    uint64_t once_epoch, once_seq; /* --once: ids of the printed batches */
    size_t once_windows;
    int64_t once_start_ms; /* --once: when measuring started */
} agent_t;

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- --once: batches go to stdout --- */

static void take_once_id(void *data, uint64_t *epoch, uint64_t *seq)
{
    agent_t *a = data;

    *epoch = a->once_epoch;
    *seq = ++a->once_seq;
}

static int to_stdout(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes, size_t len,
                     const agent_window_t *wins, const agent_container_meta_t *metas, size_t n)
{
    agent_t *a = data;
    int r = agent_output_batch_json(stdout, bytes, len);

    (void)wins;
    (void)metas;
    if (r < 0) {
        kopt_log_error("--once: cannot print the batch", KOPT_UINT("epoch", epoch),
                       KOPT_UINT("seq", seq), KOPT_ERR(r));
        return r;
    }
    a->once_windows += n;
    return 0;
}

/* --once gives up: stdout stays empty (zero JSON lines) and stderr says why,
 * so a script sees "nothing" plainly. `found` is whether the source read
 * anything at all. */
static void once_nothing(const agent_t *a, bool found)
{
    const agent_settings_t *s = a->set;
    char msg[512];

    if (found)
        snprintf(msg, sizeof(msg), "no window closed with readings in it");
    else if (s->source == SOURCE_CGROUP)
        snprintf(msg, sizeof(msg), "no containers found under %s", s->cgroup_root);
    else if (s->source == SOURCE_PROC)
        snprintf(msg, sizeof(msg), "no process groups found under %s", s->proc_root);
    else
        snprintf(msg, sizeof(msg), "no containers measured");
    kopt_log_warn(msg, KOPT_STR("result", "--once: no windows"),
                  KOPT_UINT("window_ms", s->window_ms));
}

/* --once without a window yet. Nothing read for a window and a tick: there
 * is nothing to measure, stop. Something read: its first whole window closes
 * within two windows of the start (the first is partial), and a window
 * waiting for Kubernetes metadata may take a refresh more; three windows and
 * a tick bound it all, so --once always ends. */
static bool once_give_up(const agent_t *a)
{
    const agent_settings_t *s = a->set;
    int64_t waited = wall_ms() - a->once_start_ms;
    int64_t window = (int64_t)s->window_ms, tick = (int64_t)s->sample_interval_ms;

    if (agent_collector_samples(a->collector) == 0)
        return waited >= window + tick;
    return waited >= 3 * window + tick;
}

static void on_tick(uv_timer_t *t)
{
    agent_t *a = t->data;
    int r;

    r = agent_collector_tick(a->collector, wall_ms());
    if (a->link.spool)
        agent_spool_maintain(a->link.spool, wall_ms() / 1000);
    if (r < 0)
        kopt_log_warn("measuring failed", KOPT_ERR(r));
    if (a->set->once && a->once_windows > 0) {
        uv_timer_stop(&a->tick);
        kopt_lifecycle_begin_drain(a->d.lifecycle, "--once: one window printed");
    } else if (a->set->once && once_give_up(a)) {
        uv_timer_stop(&a->tick);
        once_nothing(a, agent_collector_samples(a->collector) > 0);
        kopt_lifecycle_begin_drain(a->d.lifecycle, "--once: nothing to print");
    }
}

/* --- start and stop --- */

/* The node name and agent id (identity.h), with the reason logged. */
static int identify(agent_t *a, const kopt_tls_material_t *m)
{
    char host[254] = "";
    agent_identity_in_t in = {
        .node = a->set->node,
        .agent_id = a->set->agent_id,
        .cert_uri = m ? m->uri_san : NULL,
        .cluster = a->set->cluster,
    };
    int r;

    if (!in.node && gethostname(host, sizeof(host) - 1) == 0)
        in.hostname = host;
    r = agent_identify(&in, &a->id);

    if (r == -EINVAL)
        kopt_log_error("node name is not a valid Kubernetes name; set --node",
                       KOPT_STR("node", a->id.node), KOPT_STR("rule", a->id.rule));
    else if (r == -EPERM)
        kopt_log_error("the client certificate is for another cluster; ingest would refuse "
                       "every batch",
                       KOPT_STR("certificate_cluster", a->id.cert.cluster),
                       KOPT_STR("cluster", a->set->cluster));
    return r < 0 ? -EINVAL : 0;
}

static int start_transport(agent_t *a, kopt_tls_material_t *m)
{
    const agent_settings_t *s = a->set;
    agent_spool_opts_t so;
    agent_transport_opts_t to = {
        .targets = (const char *const *)s->ingest.items,
        .n_targets = s->ingest.n,
        .creds = s->insecure ? NULL : kopt_grpc_channel_credentials_new(m),
        .server_name = s->tls_server_name,
        .window = (uint32_t)s->send_window,
        .backoff_base_ms = 250,
        .backoff_max_ms = 30000,
        .poison_after = 3,
        .agent_id = a->id.agent_id,
    };
    agent_batch_source_t src;
    int r;

    agent_spool_opts_default(&so);
    so.max_bytes = s->spool_max_bytes;
    so.max_age_s = s->spool_max_age_ms / 1000;
    so.fsync = (agent_spool_fsync_t)s->spool_fsync;
    r = agent_spool_open(s->spool_dir, &so, &a->link.spool);
    if (r < 0) {
        kopt_log_error("cannot open the spool", KOPT_STR("dir", s->spool_dir), KOPT_ERR(r));
        if (to.creds)
            grpc_channel_credentials_release(to.creds);
        return r;
    }
    src = agent_spool_link_source(a->link.spool);
    r = agent_transport_new(a->d.loop, &to, &src, &a->link.transport);
    if (r == 0)
        r = agent_transport_start(a->link.transport);
    if (r < 0)
        kopt_log_error("transport failed to start", KOPT_ERR(r));
    return r;
}

static int start_collector(agent_t *a)
{
    const agent_settings_t *s = a->set;
    agent_sources_opts_t so = {
        .source = s->source,
        .node = a->id.node,
        .cgroup_root = s->cgroup_root,
        .proc_root = s->proc_root,
        .proc_rules = (const char *const *)s->proc_rules.items,
        .n_proc_rules = s->proc_rules.n,
        .proc_namespace = s->proc_namespace,
        .kubeconfig = s->kubeconfig,
        .api_server = s->api_server,
        .api_server_insecure_http = s->api_server_insecure_http,
        .token_file = s->token_file,
        .ca_file = s->ca_file,
        .metadata_refresh_ms = s->metadata_refresh_ms ? s->metadata_refresh_ms : 60000,
        .kubelet_mode = s->kubelet_mode,
        .kubelet_url = s->kubelet_url,
        .kubelet_insecure_tls = s->kubelet_insecure_tls,
    };
    agent_collector_opts_t co = {
        .cluster = s->cluster,
        .node = a->id.node,
        .agent_id = a->id.agent_id,
        .window_ms = (int64_t)s->window_ms,
        .max_containers = (size_t)s->max_containers,
        .max_windows_per_batch = 2000,
        .max_batch_bytes = (size_t)s->max_batch_bytes,
        .loop = a->d.loop,
        .sources = &so,
        .take_id = s->once ? take_once_id : agent_spool_link_take_id,
        .sink = s->once ? to_stdout : agent_spool_link_sink,
        .data = s->once ? (void *)a : (void *)&a->link,
    };

    if (s->window_ms == 0 || s->sample_interval_ms == 0) {
        kopt_log_error("--window and --sample-interval must be above 0");
        return -EINVAL;
    }
    return agent_collector_new(&co, a->d.metrics, &a->collector);
}

/* --once listens only when --admin-listen was set (flag, variable or file),
 * so a one-shot command works beside the agent already running on the node. */
static bool admin_wanted(const kopt_config_t *cfg)
{
    const agent_settings_t *s = kopt_config_values(cfg);

    return !s->once || kopt_config_source(cfg, "admin-listen") > KOPT_CONFIG_SRC_DEFAULT;
}

static void close_all(agent_t *a)
{
    uv_close((uv_handle_t *)&a->tick, NULL);
    agent_collector_free(a->collector);
    agent_spool_free(a->link.spool);
    a->collector = NULL;
    a->link.spool = NULL;
    kopt_daemon_close(&a->d);
}

static void on_transport_stopped(void *arg)
{
    agent_t *a = arg;

    a->link.transport = NULL;
    kopt_lifecycle_drained(a->d.lifecycle);
}

static void on_drain(void *data)
{
    agent_t *a = data;

    uv_timer_stop(&a->tick);
    if (a->link.transport)
        agent_transport_stop(a->link.transport, 5000, on_transport_stopped, a);
    else
        kopt_lifecycle_drained(a->d.lifecycle);
}

static void on_stop(void *data)
{
    agent_t *a = data;

    if (a->link.transport) /* the drain deadline passed: stop now */
        agent_transport_stop(a->link.transport, 0, NULL, NULL);
    a->link.transport = NULL;
    close_all(a);
}

int main(int argc, char **argv)
{
    agent_t a = {0};
    kopt_lifecycle_hooks_t hooks = {.drain = on_drain, .stop = on_stop, .data = &a};
    kopt_tls_material_t m;
    char err[512];
    int code, r = 0;

    if (kopt_daemon_init_with(&a.d, "agent", &agent_settings_spec, argc, argv, &hooks, admin_wanted,
                              &code) < 0)
        return code;
    a.set = kopt_daemon_settings(&a.d);
    memset(&m, 0, sizeof(m));
    grpc_init();
    uv_timer_init(a.d.loop, &a.tick);
    a.tick.data = &a;
    if (!a.set->insecure && !a.set->once) {
        r = kopt_tls_material_load(a.set->tls_ca, a.set->tls_cert, a.set->tls_key, &m, err,
                                   sizeof(err));
        if (r < 0)
            kopt_log_error("TLS set-up failed (or use --insecure for local development)",
                           KOPT_STR("error", err));
        else
            kopt_tls_export_not_after(a.d.metrics, a.set->tls_cert, m.not_after_unix);
    } else if (a.set->insecure) {
        kopt_log_warn("INSECURE: plaintext gRPC to ingest. For local development only.");
    }
    if (r == 0)
        r = identify(&a, m.cert_pem ? &m : NULL);
    if (r == 0)
        r = start_collector(&a);
    if (r == 0 && !a.set->once)
        r = agent_spool_link_register(&a.link, a.d.metrics, a.d.admin);
    if (r == 0 && !a.set->once)
        r = start_transport(&a, &m);
    kopt_tls_material_clear(&m);
    a.once_epoch = (uint64_t)wall_ms() * 1000000;
    a.once_start_ms = wall_ms();
    if (r < 0) {
        kopt_daemon_fail(&a.d, "start-up failed");
    } else {
        kopt_log_info("measuring", KOPT_STR("node", a.id.node), KOPT_STR("agent_id", a.id.agent_id),
                      KOPT_UINT("sample_interval_ms", a.set->sample_interval_ms),
                      KOPT_UINT("window_ms", a.set->window_ms));
        uv_timer_start(&a.tick, on_tick, 0, a.set->sample_interval_ms);
    }
    code = kopt_daemon_run(&a.d);
    grpc_shutdown();
    return code;
}
