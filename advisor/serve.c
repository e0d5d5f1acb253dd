/* kopt-advisor serving: builds the parts (TLS, gRPC with Advisor, health and
 * reflection, the HTTP gateway, API keys, the KOPT_RECOMMENDATIONS stream),
 * loads the newest results from ClickHouse at start, and runs analyses on
 * the libuv worker pool, on a schedule and on RunAnalysis, swapping each
 * run's results into memory on the loop thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/grpc_daemon.h>
#include <kopt/lease.h>
#include <kopt/log.h>
#include <kopt/util.h>

#include "advisor.h"
#include "kopt_descriptors.h"
#include "serve.h"

#define NOT_READY_RETRY_MS 15000

/* The analysis lease's key in kopt_leases, and the key beside it with the
 * id of the newest finished analysis, so replicas that did not run it
 * reload the results from ClickHouse (docs/advisor.md, "Replicas"). */
#define ADV_LEASE_KEY "analysis.all"
#define ADV_LEASE_RESULTS_KEY "results.all"

/* --http-tls, in the order of settings.c's list. */
enum { HTTP_TLS_OFF, HTTP_TLS_ON, HTTP_TLS_MUTUAL };

static const char *const served_services[] = {
    "kopt.v1.Advisor",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    NULL,
};

typedef struct {
    uv_work_t work;
    adv_analysis_ctx_t ctx;
    adv_run_request_t req;
    adv_run_result_t res;
    adv_run_done_fn done;
    void *done_data;
    /* start-up load instead of an analysis */
    bool load;
    Kopt__V1__Recommendation **recs;
    size_t n_recs;
    int load_status;
    char load_error[256];
    /* The snapshot to swap in, built on the worker thread: encoding every
     * list entry takes ~100 ms per 5,000 workloads, which must not stall
     * the loop. Only jobs swap, one at a time, so the snapshot it extends
     * is still current when job_after installs it. */
    adv_results_t *next;
    bool built; /* next was attempted (NULL then means out of memory) */
    /* Replicas (kopt/lease.h). */
    bool scheduled; /* a timer's run: only the lease holder analyses */
    bool skipped;   /* another replica holds the lease */
    bool reload;    /* a load for results another replica made: no rescheduling */
    char holder[KOPT_LEASE_HOLDER_MAX];
} job_t;

/* A renewal of the lease, and a look for newer results, off the loop. */
typedef struct {
    uv_work_t work;
    int held; /* kopt_lease_acquire's answer */
    int results_status;
    char holder[KOPT_LEASE_HOLDER_MAX], results[64], error[256];
} lease_job_t;

static struct {
    kopt_grpc_daemon_t g; /* TLS, gRPC, health, reflection, the stream, stop order */
    const adv_settings_t *set;
    kopt_engine_options_t engine;
    kopt_ch_options_t ch;
    char *ch_url, *ch_user, *ch_pw_file, *ch_db, *nats_url; /* outlive reloads */
    kopt_nats_auth_t nats_auth;                             /* the same */
    adv_publisher_t *publisher;
    uint32_t rollup_wait_s;
    kopt_object_store_settings_t object_store; /* copies that outlive reloads */
    adv_archive_t archive;                     /* --include-archive, when on */
    bool include_archive;
    adv_snapshot_t *store;
    adv_auth_t *auth;
    adv_oidc_t *oidc; /* NULL without --oidc-issuer */
    adv_api_t *api;
    adv_gateway_t *gateway;
    kopt_http_tls_t *http_tls; /* the gateway's, NULL without --http-tls */
    uv_timer_t schedule, drain_poll;
    bool running, loaded, gateway_down;
    kopt_metric_family_t *runs;
    kopt_metric_gauge_t *n_recs, *last_run, *last_duration;
    adv_rec_metrics_t *rec_metrics;
    /* Replicas: NULL without --analysis-lease or NATS. */
    kopt_lease_t *lease;
    uv_timer_t lease_timer;
    bool lease_busy;
    bool reloading; /* the running job is a reload, which a scheduled run waits out */
    char lease_me[KOPT_LEASE_HOLDER_MAX];
    char seen_results[64]; /* the newest analysis id this replica serves */
    kopt_metric_family_t *skipped;
    kopt_metric_gauge_t *lease_held;
} app;

static bool ready(void *data)
{
    (void)data;
    return app.loaded;
}

static void update_health(void)
{
    kopt_grpc_daemon_update_health(&app.g);
}

static int check_loaded(void *data, char *reason, size_t len)
{
    (void)data;
    if (app.loaded)
        return 0;
    snprintf(reason, len, "no results yet: neither loaded from ClickHouse nor analysed");
    return -1;
}

/* ---- analyses on the worker pool ------------------------------------------ */

/* The new snapshot: the run's results, plus the old ones outside its scope.
 * Worker thread. */
static void build_next(job_t *j)
{
    adv_results_t *old = adv_snapshot_acquire(app.store), *next;
    Kopt__V1__Recommendation **recs = j->load ? j->recs : j->res.recs;
    size_t n = j->load ? j->n_recs : j->res.n_recs;

    if (!j->load && adv_results_keep_outside(old, j->req.cluster, j->req.namespace_, &recs, &n) < 0)
        kopt_log_error("out of memory merging results; keeping only this run's");
    if (j->load) {
        j->recs = NULL;
        j->n_recs = 0;
    } else {
        j->res.recs = NULL;
        j->res.n_recs = 0;
    }
    next = adv_results_new(recs, n, j->res.clusters, j->res.n_clusters, &app.engine.prices);
    adv_results_release(old);
    j->next = next;
    j->built = true;
}

/* Loop thread. */
static void swap_in(job_t *j)
{
    if (!j->built)
        return;
    if (!j->next) {
        kopt_log_error("out of memory building results; serving the previous ones");
        return;
    }
    kopt_metric_gauge_set(app.n_recs, (double)j->next->n);
    adv_snapshot_swap(app.store, j->next);
    j->next = NULL;
}

static void job_work(uv_work_t *w)
{
    job_t *j = kopt_container_of(w, job_t, work);
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t err = {0};

    if (!j->load) {
        char lerr[256] = "";

        if (j->scheduled && app.lease) {
            int held =
                kopt_lease_acquire(app.lease, j->holder, sizeof(j->holder), lerr, sizeof(lerr));

            if (held == 0) {
                j->skipped = true;
                return;
            }
            /* NATS away: analyse anyway. Availability over uniqueness: a
             * second analysis is only extra work (docs/advisor.md). */
            if (held < 0)
                kopt_log_warn("analysis lease unavailable; analysing without it",
                              KOPT_STR("error", lerr));
        }
        adv_analysis_run(&j->ctx, &j->req, &j->res);
        if (j->res.written > 0)
            build_next(j);
        if (app.lease && j->res.status == 0 && j->res.written > 0 && !j->req.dry_run &&
            kopt_lease_put(app.lease, ADV_LEASE_RESULTS_KEY, j->res.analysis_id, lerr,
                           sizeof(lerr)) < 0)
            kopt_log_warn("other replicas will not hear of this analysis until they restart",
                          KOPT_STR("error", lerr));
        return;
    }
    j->load_status = kopt_ch_client_new(&j->ctx.ch, &ch, &err);
    if (j->load_status == 0)
        j->load_status = adv_ch_load_latest(ch, &j->recs, &j->n_recs, &err);
    if (j->load_status == 0 &&
        adv_ch_cluster_info(ch, (int64_t)time(NULL) - j->ctx.engine.lookback_s, &j->res.clusters,
                            &j->res.n_clusters, &err) < 0)
        kopt_log_warn("node counts unavailable", KOPT_STR("error", err.message));
    if (j->load_status == 0 &&
        adv_facts_cluster_info(ch, (int64_t)time(NULL) - j->ctx.engine.lookback_s, &j->res.clusters,
                               &j->res.n_clusters, &err) < 0)
        kopt_log_warn("node sizes unavailable", KOPT_STR("error", err.message));
    snprintf(j->load_error, sizeof(j->load_error), "%s", err.message);
    kopt_ch_client_free(ch);
    if (j->load_status == 0)
        build_next(j);
}

static void on_schedule(uv_timer_t *t);

static void schedule_next(uint64_t ms)
{
    if (app.set->analysis_interval_ms > 0 && !kopt_lifecycle_draining(app.g.d.lifecycle))
        uv_timer_start(&app.schedule, on_schedule, ms, 0);
}

static void job_after(uv_work_t *w, int status)
{
    job_t *j = kopt_container_of(w, job_t, work);
    adv_run_result_t *res = &j->res;

    app.running = false;
    app.reloading = false;
    if (j->skipped) {
        kopt_metric_counter_inc(kopt_metric_counter_with(app.skipped, "lease_held"));
        kopt_log_info("scheduled analysis skipped: another replica holds the lease",
                      KOPT_STR("holder", j->holder));
        schedule_next(app.set->analysis_interval_ms);
    } else if (j->load && j->reload) {
        if (status == 0 && j->load_status == 0) {
            kopt_log_info("newer results from another replica loaded",
                          KOPT_STR("analysis_id", app.seen_results),
                          KOPT_UINT("workloads", (uint64_t)(j->next ? j->next->n : 0)));
            swap_in(j);
            if (!app.loaded) {
                app.loaded = true;
                update_health();
            }
        } else {
            app.seen_results[0] = '\0'; /* try again on the next look */
            kopt_log_warn("could not load another replica's results",
                          KOPT_STR("error", j->load_error));
        }
    } else if (j->load) {
        size_t loaded = j->n_recs;

        if (status == 0 && j->load_status == 0) {
            kopt_log_info("latest recommendations loaded", KOPT_UINT("workloads", loaded));
            swap_in(j);
            app.loaded = true; /* ready: there is something to serve */
        } else {
            kopt_log_warn("could not load the latest recommendations; analysing instead",
                          KOPT_STR("error", j->load_error));
        }
        update_health();
        /* Nothing to serve yet: analyse at once; else on the schedule. */
        schedule_next(loaded > 0 ? app.set->analysis_interval_ms : 0);
    } else {
        bool ok = status == 0 && res->status == 0;

        kopt_metric_counter_inc(kopt_metric_counter_with(app.runs, ok ? "ok" : "error"));
        kopt_metric_gauge_set(app.last_duration,
                              (double)(res->finished_ns - res->started_ns) / 1e9);
        if (ok)
            kopt_metric_gauge_set(app.last_run, (double)res->finished_ns / 1e9);
        if (ok)
            kopt_log_info("analysis done", KOPT_STR("analysis_id", res->analysis_id),
                          KOPT_UINT("workloads", res->analyzed), KOPT_UINT("written", res->written),
                          KOPT_UINT("published", res->published), KOPT_UINT("idle", res->idle),
                          KOPT_UINT("skipped", res->skipped), KOPT_BOOL("dry_run", j->req.dry_run));
        else
            kopt_log_error("analysis failed", KOPT_STR("analysis_id", res->analysis_id),
                           KOPT_STR("error", res->message), KOPT_UINT("written", res->written));
        if (res->written > 0)
            swap_in(j);
        if (ok && res->written > 0 && !j->req.dry_run)
            snprintf(app.seen_results, sizeof(app.seen_results), "%s", res->analysis_id);
        if (ok && !j->req.dry_run && !app.loaded) {
            app.loaded = true;
            update_health();
        }
        if (j->done)
            j->done(j->done_data, res);
        /* Not ready yet (ClickHouse away at start): retry soon, not in an hour. */
        schedule_next(!app.loaded && app.set->analysis_interval_ms > NOT_READY_RETRY_MS
                          ? NOT_READY_RETRY_MS
                          : app.set->analysis_interval_ms);
    }
    for (size_t i = 0; i < j->n_recs; i++)
        protobuf_c_message_free_unpacked(&j->recs[i]->base, NULL);
    free(j->recs);
    adv_run_result_free(res);
    adv_results_release(j->next); /* not installed */
    free(j);
}

static int start_job_as(const adv_run_request_t *req, bool load, bool scheduled, bool reload,
                        adv_run_done_fn done, void *done_data)
{
    job_t *j;

    if (app.running)
        return -EBUSY;
    if (kopt_lifecycle_draining(app.g.d.lifecycle))
        return -ECANCELED;
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->ctx = (adv_analysis_ctx_t){.engine = app.engine,
                                  .ch = app.ch,
                                  .publisher = app.publisher,
                                  .rollup_wait_s = app.rollup_wait_s,
                                  .archive = app.include_archive ? &app.archive : NULL};
    if (req)
        j->req = *req;
    j->load = load;
    j->scheduled = scheduled;
    j->reload = reload;
    j->done = done;
    j->done_data = done_data;
    if (uv_queue_work(app.g.d.loop, &j->work, job_work, job_after) < 0) {
        free(j);
        return -ENOMEM;
    }
    app.running = true;
    app.reloading = reload;
    if (!reload) /* a reload leaves the schedule as it is */
        uv_timer_stop(&app.schedule);
    return 0;
}

static int start_job(const adv_run_request_t *req, bool load, adv_run_done_fn done, void *done_data)
{
    return start_job_as(req, load, false, false, done, done_data);
}

static int api_run(void *data, const adv_run_request_t *req, adv_run_done_fn done, void *done_data)
{
    (void)data;
    return start_job(req, false, done, done_data);
}

static void on_schedule(uv_timer_t *t)
{
    adv_run_request_t req = {0};

    (void)t;
    /* Busy: a RunAnalysis just made fresh results, so wait an interval;
     * a reload is over in a moment. */
    if (start_job_as(&req, false, true, false, NULL, NULL) == -EBUSY)
        schedule_next(app.reloading ? 1000 : app.set->analysis_interval_ms);
}

/* ---- the lease's keeper ------------------------------------------------------ */

static void lease_work(uv_work_t *w)
{
    lease_job_t *lj = kopt_container_of(w, lease_job_t, work);

    lj->held =
        kopt_lease_acquire(app.lease, lj->holder, sizeof(lj->holder), lj->error, sizeof(lj->error));
    if (lj->held >= 0)
        lj->results_status = kopt_lease_get(app.lease, ADV_LEASE_RESULTS_KEY, lj->results,
                                            sizeof(lj->results), lj->error, sizeof(lj->error));
}

static void lease_after(uv_work_t *w, int status)
{
    lease_job_t *lj = kopt_container_of(w, lease_job_t, work);
    bool was = kopt_metric_gauge_value(app.lease_held) > 0;

    app.lease_busy = false;
    if (status == 0 && lj->held < 0)
        kopt_log_warn("analysis lease not renewed", KOPT_STR("error", lj->error));
    if (status == 0 && lj->held >= 0) {
        if ((lj->held == 1) != was)
            kopt_log_info(lj->held == 1 ? "analysis lease taken" : "analysis lease held elsewhere",
                          KOPT_STR("holder", lj->holder));
        kopt_metric_gauge_set(app.lease_held, lj->held == 1 ? 1 : 0);
    }
    /* Another replica finished an analysis: its results are in ClickHouse. */
    if (status == 0 && lj->held >= 0 && lj->results_status == 0 && lj->results[0] &&
        strcmp(lj->results, app.seen_results) != 0 && !kopt_lifecycle_draining(app.g.d.lifecycle) &&
        start_job_as(NULL, true, false, true, NULL, NULL) == 0)
        snprintf(app.seen_results, sizeof(app.seen_results), "%s", lj->results);
    free(lj);
}

static void on_lease_timer(uv_timer_t *t)
{
    lease_job_t *lj;

    (void)t;
    if (app.lease_busy || kopt_lifecycle_draining(app.g.d.lifecycle))
        return;
    lj = calloc(1, sizeof(*lj));
    if (!lj)
        return;
    if (uv_queue_work(app.g.d.loop, &lj->work, lease_work, lease_after) < 0) {
        free(lj);
        return;
    }
    app.lease_busy = true;
}

/* ---- the stream, for the CLI --------------------------------------------- */

typedef struct {
    int status;
    bool done;
} sync_stream_t;

static void on_stream_sync(void *data, int status, const char *message)
{
    sync_stream_t *st = data;

    st->status = status;
    st->done = true;
    if (status < 0)
        kopt_log_error("JetStream stream set-up failed", KOPT_STR("detail", message));
}

int adv_serve_ensure_stream_sync(const char *url, const kopt_stream_spec_t *spec)
{
    sync_stream_t st = {0};
    uv_loop_t loop;
    int r = uv_loop_init(&loop);

    if (r < 0)
        return r;
    r = kopt_nats_ensure_stream(&loop, url, spec, on_stream_sync, &st);
    if (r == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return r < 0 ? r : st.status;
}

/* ---- gRPC and HTTP ------------------------------------------------------------ */

/* The gateway's HTTPS: its own files, else the gRPC port's. As on gRPC,
 * client certificates are verified when sent once a CA is known; "mutual"
 * requires one. Off by default: TLS often ends at an Ingress in front. */
/* kopt_tls_certificate_not_after_seconds for the gateway's certificate when
 * it is not the gRPC one (which the skeleton exports). Best effort: the file
 * was just loaded by kopt_http_tls_new or _reload. */
static void export_http_cert(void)
{
    const adv_settings_t *s = app.set;
    kopt_tls_material_t m;
    char err[256];

    if (!app.http_tls || !s->http_tls_cert ||
        (s->tls_cert && strcmp(s->http_tls_cert, s->tls_cert) == 0))
        return;
    if (kopt_tls_material_load(NULL, s->http_tls_cert, s->http_tls_key, &m, err, sizeof(err)) < 0)
        return;
    kopt_tls_export_not_after(app.g.d.metrics, s->http_tls_cert, m.not_after_unix);
    kopt_tls_material_clear(&m);
}

static int http_tls(void)
{
    const adv_settings_t *s = app.set;
    kopt_http_tls_options_t o = {
        .cert_file = s->http_tls_cert ? s->http_tls_cert : s->tls_cert,
        .key_file = s->http_tls_key ? s->http_tls_key : s->tls_key,
        .client_ca_file = s->http_tls_client_ca ? s->http_tls_client_ca : s->tls_ca,
    };
    char err[512] = "";
    int r;

    if (s->http_tls == HTTP_TLS_OFF) {
        if (s->http_tls_cert || s->http_tls_key || s->http_tls_client_ca)
            kopt_log_warn("--http-tls is off: --http-tls-cert, --http-tls-key and "
                          "--http-tls-client-ca are not used");
        return 0;
    }
    if (!o.cert_file || !o.key_file) {
        kopt_log_error("--http-tls needs --http-tls-cert and --http-tls-key (or --tls-cert and "
                       "--tls-key)");
        return -EINVAL;
    }
    if (s->http_tls == HTTP_TLS_MUTUAL && !o.client_ca_file) {
        kopt_log_error("--http-tls mutual needs --http-tls-client-ca (or --tls-ca)");
        return -EINVAL;
    }
    o.client_cert = s->http_tls == HTTP_TLS_MUTUAL ? KOPT_HTTP_CLIENT_CERT_REQUIRE
                    : o.client_ca_file             ? KOPT_HTTP_CLIENT_CERT_OPTIONAL
                                                   : KOPT_HTTP_CLIENT_CERT_NONE;
    r = kopt_http_tls_new(&o, &app.http_tls, err, sizeof(err));
    if (r < 0)
        kopt_log_error("HTTPS set-up failed", KOPT_STR("error", err), KOPT_ERR(r));
    else
        export_http_cert();
    return r;
}

static int start_servers(void)
{
    const adv_settings_t *s = app.set;
    adv_api_opts_t ao = {.loop = app.g.d.loop,
                         .store = app.store,
                         .auth = app.auth,
                         .metrics = app.g.d.metrics,
                         .engine = &app.engine,
                         .ch = &app.ch,
                         .run = api_run};
    kopt_grpc_daemon_listen_t l = {.listen = s->listen.text,
                                   .insecure = s->insecure,
                                   .tls_ca = s->tls_ca,
                                   .tls_cert = s->tls_cert,
                                   .tls_key = s->tls_key};
    int http_port = 0, r;

    r = http_tls(); /* checked, and logged, before anything listens */
    if (r < 0)
        return r;
    r = adv_api_new(&ao, &app.api);
    if (r == 0)
        r = kopt_grpc_daemon_start(&app.g, &l);
    if (r < 0)
        return r;
    r = adv_gateway_new(app.g.d.loop, app.api, app.g.d.metrics, s->http_listen.text, app.http_tls,
                        (int)s->http_max_conns_per_peer, &app.gateway, &http_port);
    if (r < 0) {
        kopt_log_error("HTTP gateway failed to start", KOPT_STR("listen", s->http_listen.text),
                       KOPT_ERR(r));
        return r;
    }
    kopt_log_info("HTTP gateway and web UI listening", KOPT_STR("listen", s->http_listen.text),
                  KOPT_INT("port", http_port),
                  KOPT_STR("tls", s->http_tls == HTTP_TLS_MUTUAL ? "mutual"
                                  : s->http_tls == HTTP_TLS_ON   ? "on"
                                                                 : "off"));
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int add_services(void *data, kopt_grpc_server_t *srv)
{
    (void)data;
    return adv_api_register_grpc(app.api, srv);
}

/* gRPC is down: the gateway and the timers (the skeleton closes the rest). */
static void close_parts(void *data)
{
    (void)data;
    if (app.gateway && !app.gateway_down) {
        app.gateway_down = true;
        adv_gateway_close(app.gateway, NULL, NULL);
    }
    app.gateway = NULL;
    adv_oidc_close(app.oidc); /* freed once a fetch in flight ends */
    app.oidc = NULL;
    uv_close((uv_handle_t *)&app.schedule, NULL);
    uv_close((uv_handle_t *)&app.drain_poll, NULL);
    uv_close((uv_handle_t *)&app.lease_timer, NULL);
    /* Give the lease up so another replica need not wait for the TTL.
     * Blocking, at most a few seconds, on a loop that only winds down now;
     * before the skeleton shuts nats.c down (after the loop). */
    kopt_lease_release(app.lease);
    kopt_lease_free(app.lease);
    app.lease = NULL;
}

/* Waits for calls on the worker pool (usage, analyses) before closing gRPC. */
static void on_drain_poll(uv_timer_t *t)
{
    (void)t;
    if ((app.api && adv_api_pending(app.api) > 0) || app.running || app.lease_busy)
        return;
    uv_timer_stop(&app.drain_poll);
    kopt_grpc_daemon_drained(&app.g);
}

static void drain(void *data)
{
    (void)data;
    uv_timer_stop(&app.schedule);
    uv_timer_stop(&app.lease_timer);
    uv_timer_start(&app.drain_poll, on_drain_poll, 0, 100);
}

static void apply_settings(void *data, const void *settings)
{
    const adv_settings_t *s = settings;
    kopt_engine_options_t eo;
    char err[512];
    int changed = 0;

    (void)data;
    app.set = s;
    if (adv_settings_engine_options(s, &eo, err, sizeof(err)) < 0)
        kopt_log_error("engine settings not applied", KOPT_STR("error", err));
    else
        app.engine = eo; /* the next analysis uses them */
    if (adv_auth_reload(app.auth, err, sizeof(err)) < 0)
        kopt_log_error("API keys reload failed; keeping the current keys", KOPT_STR("error", err));
    else
        kopt_log_info("API keys re-read", KOPT_UINT("keys", adv_auth_count(app.auth)));
    if (app.oidc && adv_oidc_reload(app.oidc, err, sizeof(err)) < 0)
        kopt_log_error("OIDC keys reload failed; keeping the current keys", KOPT_STR("error", err));
    /* The gRPC certificates: the skeleton re-reads them after this. */
    if (app.http_tls && kopt_http_tls_reload(app.http_tls, &changed, err, sizeof(err)) < 0)
        kopt_log_error("HTTPS reload failed; keeping the current certificates",
                       KOPT_STR("error", err));
    else if (changed) {
        export_http_cert();
        kopt_log_info("HTTPS certificates re-read; new connections use them");
    }
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int start_oidc(void)
{
    const adv_settings_t *s = app.set;
    adv_oidc_opts_t o = {.issuer = s->oidc_issuer,
                         .audience = s->oidc_audience,
                         .ca_file = s->oidc_ca,
                         .jwks_file = s->oidc_jwks_file,
                         .refresh_ms = s->oidc_refresh_ms,
                         .min_refresh_ms = s->oidc_refresh_min_ms,
                         .skew_s = (int64_t)(s->oidc_clock_skew_ms / 1000),
                         .max_token = (size_t)s->oidc_max_token_bytes,
                         .roles_claim = s->oidc_roles_claim,
                         .viewer_values = &s->oidc_viewer_values,
                         .operator_values = &s->oidc_operator_values};
    char err[512];
    int r = adv_oidc_new(app.g.d.loop, app.g.d.metrics, &o, &app.oidc, err, sizeof(err));

    if (r < 0) {
        kopt_log_error("OIDC not set up", KOPT_STR("error", err));
        return r;
    }
    adv_auth_set_oidc(app.auth, app.oidc);
    kopt_log_info("bearer tokens accepted", KOPT_STR("issuer", s->oidc_issuer),
                  KOPT_STR("audience", s->oidc_audience),
                  KOPT_STR("keys", s->oidc_jwks_file ? "file" : "discovery"),
                  KOPT_STR("roles_claim", s->oidc_roles_claim));
    return 0;
}

/* --include-archive: the store's settings, copied, and the loads counted
 * by result (docs/operations.md, "Cold archive"). */
static int start_archive(void)
{
    const adv_settings_t *s = app.set;
    adv_settings_t copy = *s;
    kopt_metric_family_t *f;
    char err[256];
    int r;

    app.object_store =
        (kopt_object_store_settings_t){.url = dup_or_null(s->store.url),
                                       .region = dup_or_null(s->store.region),
                                       .ca = dup_or_null(s->store.ca),
                                       .credentials_file = dup_or_null(s->store.credentials_file),
                                       .path_style = s->store.path_style};
    copy.store = app.object_store;
    r = adv_settings_archive(&copy, &app.archive, err, sizeof(err));
    if (r < 0) {
        kopt_log_error("bad archive settings", KOPT_STR("error", err));
        return r;
    }
    r = kopt_metrics_counter(app.g.d.metrics, "kopt_advisor_archive_loads_total",
                             "Archived partitions --include-archive loaded, by result", "result",
                             &f);
    if (r < 0)
        return r;
    for (int i = 0; i < ADV_ARCHIVE_RESULTS; i++)
        app.archive.loads[i] = kopt_metric_counter_with(f, adv_archive_result_name(i));
    app.include_archive = true;
    return 0;
}

/* The analysis lease, with NATS and --analysis-lease (docs/advisor.md). */
static int start_lease(void)
{
    const adv_settings_t *s = app.set;
    kopt_metric_family_t *f;
    int r;

    r = kopt_metrics_counter(app.g.d.metrics, "kopt_advisor_analysis_skipped_total",
                             "Scheduled analyses not run, by reason", "reason", &app.skipped);
    if (r == 0)
        r = kopt_metrics_gauge(app.g.d.metrics, "kopt_advisor_analysis_lease_held",
                               "1 while this replica holds the analysis lease", NULL, &f);
    if (r < 0)
        return r;
    app.lease_held = kopt_metric_gauge_with(f);
    if (!s->analysis_lease || !app.nats_url || !*app.nats_url)
        return 0;
    if (s->lease_ttl_ms < 1000) {
        kopt_log_error("--lease-ttl must be at least 1s");
        return -EINVAL;
    }
    kopt_lease_self_id(app.lease_me, sizeof(app.lease_me));
    kopt_lease_options_t lo = {.url = app.nats_url,
                               .auth = &app.nats_auth,
                               .client_name = "kopt-advisor-lease",
                               .key = ADV_LEASE_KEY,
                               .me = app.lease_me,
                               .ttl_ms = s->lease_ttl_ms,
                               .replicas = (int)s->stream_replicas};
    r = kopt_lease_new(&lo, &app.lease);
    if (r < 0)
        return r;
    kopt_log_info("analysis lease on", KOPT_STR("bucket", KOPT_LEASE_BUCKET),
                  KOPT_STR("key", ADV_LEASE_KEY), KOPT_STR("replica", app.lease_me),
                  KOPT_UINT("ttl_ms", s->lease_ttl_ms));
    uv_timer_start(&app.lease_timer, on_lease_timer, 0, kopt_lease_period_ms(s->lease_ttl_ms));
    return 0;
}

static int init_parts(void)
{
    const adv_settings_t *s = app.set;
    char err[512];
    int r;

    if (adv_settings_engine_options(s, &app.engine, err, sizeof(err)) < 0) {
        kopt_log_error("bad engine settings", KOPT_STR("error", err));
        return -EINVAL;
    }
    /* Copies: a SIGHUP frees the settings, and workers read these. */
    app.ch_url = dup_or_null(s->clickhouse_url);
    app.ch_user = dup_or_null(s->clickhouse_user);
    app.ch_pw_file = dup_or_null(s->clickhouse_password_file);
    app.ch_db = dup_or_null(s->clickhouse_database);
    app.nats_url = dup_or_null(s->nats_url);
    if (kopt_nats_auth_copy(&app.nats_auth, &s->nats) < 0)
        return -ENOMEM;
    adv_settings_ch_options(s, &app.ch);
    app.rollup_wait_s = (uint32_t)(s->rollup_wait_ms / 1000);
    app.ch.url = app.ch_url;
    app.ch.user = app.ch_user;
    app.ch.password_file = app.ch_pw_file;
    app.ch.database = app.ch_db;
    if (s->include_archive && start_archive() < 0)
        return -EINVAL;
    if (!s->api_keys_file && !s->oidc_issuer && !s->insecure)
        kopt_log_warn("no --api-keys-file nor --oidc-issuer: only mTLS callers with a kopt "
                      "service identity are let in");
    if (!s->api_keys_file && !s->oidc_issuer && s->insecure)
        kopt_log_warn("INSECURE: no --api-keys-file nor --oidc-issuer, so the API is open to "
                      "anyone");
    r = adv_auth_new(s->api_keys_file, s->insecure, &app.auth, err, sizeof(err));
    if (r < 0) {
        kopt_log_error("API keys not loaded", KOPT_STR("error", err));
        return r;
    }
    r = adv_auth_set_metrics(app.auth, app.g.d.metrics);
    if (r == 0 && (s->oidc_issuer || s->oidc_jwks_file))
        r = start_oidc();
    if (r < 0)
        return r;
    r = adv_snapshot_new(&app.store);
    if (r == 0)
        r = adv_rec_metrics_register(app.g.d.metrics, app.store,
                                     (uint64_t)s->metrics_max_rec_series, &app.rec_metrics);
    if (r == 0 && app.nats_url && *app.nats_url)
        r = adv_publisher_new(app.nats_url, &app.nats_auth, &app.publisher);
    if (r == 0 && app.publisher)
        adv_publisher_configure(app.publisher, s);
    if (r == 0)
        r = kopt_metrics_counter(app.g.d.metrics, "kopt_advisor_analysis_runs_total",
                                 "Analyses finished, by result", "result", &app.runs);
    if (r == 0) {
        kopt_metric_family_t *f;

        kopt_metrics_gauge(app.g.d.metrics, "kopt_advisor_recommendations",
                           "Workloads with a recommendation in memory", NULL, &f);
        app.n_recs = kopt_metric_gauge_with(f);
        kopt_metrics_gauge(app.g.d.metrics, "kopt_advisor_last_analysis_timestamp_seconds",
                           "When the last successful analysis finished", NULL, &f);
        app.last_run = kopt_metric_gauge_with(f);
        kopt_metrics_gauge(app.g.d.metrics, "kopt_advisor_last_analysis_duration_seconds",
                           "How long the last analysis took", NULL, &f);
        app.last_duration = kopt_metric_gauge_with(f);
    }
    if (r == 0)
        r = start_lease();
    return r;
}

int adv_serve(int argc, char **argv)
{
    const kopt_grpc_daemon_spec_t spec = {
        .service = "kopt.v1.Advisor",
        .reflected = served_services,
        .descriptors = kopt_descriptor_set,
        .descriptors_len = kopt_descriptor_set_len,
        .client_cert = KOPT_CLIENT_CERT_OPTIONAL,
        .insecure_warning = "INSECURE: gRPC in plaintext; for local development only",
    };
    const kopt_grpc_daemon_hooks_t hooks = {.add_services = add_services,
                                            .ready = ready,
                                            .drain = drain,
                                            .close = close_parts,
                                            .apply = apply_settings};
    kopt_stream_spec_t stream;
    int code;

    if (kopt_grpc_daemon_init(&app.g, "advisor", &adv_settings_spec, argc, argv, &spec, &hooks,
                              &code) < 0)
        return code;
    app.set = kopt_daemon_settings(&app.g.d);
    uv_timer_init(app.g.d.loop, &app.schedule);
    uv_timer_init(app.g.d.loop, &app.drain_poll);
    uv_timer_init(app.g.d.loop, &app.lease_timer);
    adv_stream_spec(app.set, &stream);
    stream.auth = &app.nats_auth; /* filled by init_parts, kept across reloads */
    kopt_admin_add_check(app.g.d.admin, "results", check_loaded, NULL);
    if (init_parts() < 0 || start_servers() < 0 || start_job(NULL, true, NULL, NULL) < 0)
        kopt_daemon_fail(&app.g.d, "start-up failed");
    else if (app.nats_url && *app.nats_url)
        kopt_grpc_daemon_ensure_stream(&app.g, app.nats_url, &stream);
    code = kopt_grpc_daemon_run(&app.g);
    kopt_http_tls_free(app.http_tls); /* the gateway, closed, no longer needs it */
    adv_api_free(app.api);
    adv_publisher_free(app.publisher);
    adv_auth_free(app.auth);
    adv_rec_metrics_free(app.rec_metrics);
    adv_snapshot_free(app.store);
    free(app.ch_url);
    free(app.object_store.url);
    free(app.object_store.region);
    free(app.object_store.ca);
    free(app.object_store.credentials_file);
    free(app.ch_user);
    free(app.ch_pw_file);
    free(app.ch_db);
    free(app.nats_url);
    kopt_nats_auth_clear(&app.nats_auth);
    return code;
}
