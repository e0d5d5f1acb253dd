/* Choosing and reading the measurement source, and the Kubernetes metadata
 * behind the windows (see sources.h). The cgroup and proc sources read small
 * kernel files on the loop thread (no blocking I/O); the kubelet fetch and
 * the metadata refresh are blocking HTTP and run in uv_queue_work, one of
 * each at a time, with their results handed back on the loop thread. */
#include "sources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kopt/log.h>
#include <kopt/names.h>

#include "cgroup.h"
#include "kopt/v1/metrics.pb-c.h"
#include "kube_client.h"
#include "kubelet_source.h"
#include "proc_source.h"
#include "settings.h"

#define MAX_RESTART_ENTRIES 4096
#define RESTART_FORGET_MS (3600 * 1000)
#define FIRST_BACKOFF_MS 2000

/* Last restartCount seen per pod UID + container name, for "restarts during
 * the window". */
typedef struct {
    char pod_uid[AGENT_KUBE_UID_MAX];
    char container[AGENT_KUBE_NS_MAX];
    uint32_t count;
    int64_t seen_ms;
} restart_t;

struct agent_sources {
    uv_loop_t *loop;
    agent_sources_opts_t o; /* strings borrowed from the settings */
    int kind;               /* SOURCE_CGROUP, SOURCE_KUBELET or SOURCE_PROC */
    int metric_source;
    agent_sample_fn add;
    void *data;
    agent_proc_source_t *proc;
    int64_t now_ms;

    /* Kubernetes: the API client belongs to the refresh worker, the kubelet
     * client to the fetch worker; each runs one job at a time. */
    agent_kube_client_t *api, *kubelet;
    agent_kube_cache_t *cache;
    uv_timer_t refresh_timer;
    uv_work_t refresh_req, fetch_req;
    bool refreshing, fetching, closing;
    int refresh_rc, fetch_rc;
    int64_t refresh_started_ms, fetch_started_ms;
    uint64_t generation;    /* refreshes completed */
    uint64_t ok_generation; /* the generation of the last successful one */
    uint64_t backoff_ms;
    bool fetch_failing;
    agent_kubelet_summary_t next, last; /* fetch worker's result; the last good one */
    int refs;                           /* open timer + jobs in flight: freed at 0 when closing */

    restart_t *restarts;
    size_t n_restarts, cap_restarts;

    kopt_metric_counter_t *refreshes, *refresh_errors, *kubelet_fetches, *kubelet_errors;
};

/* Copies src into dst of size n, cut to fit, NUL-terminated. */
static void put(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);

    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* --- choosing --------------------------------------------------------------- */

static bool exists(const char *root, const char *sub)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", root, sub);
    return stat(path, &st) == 0;
}

/* The kubepods hierarchy, where agent_cgroup_scan() looks for it. */
static bool has_kubepods(const char *root)
{
    static const char *const dirs[] = {"kubepods.slice", "kubepods",
                                       "kubelet.slice/kubelet-kubepods.slice", "kubelet/kubepods"};
    char sub[256];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        put(sub, sizeof(sub), dirs[i]);
        if (exists(root, sub))
            return true;
        snprintf(sub, sizeof(sub), "memory/%s", dirs[i]);
        if (exists(root, sub))
            return true;
    }
    return false;
}

/* The API server's config from the settings: kubeconfig, else api-server
 * with token and CA files, else in-cluster. -ENOENT when none is given. */
static int load_kube_config(const agent_sources_opts_t *o, agent_kube_config_t *cfg,
                            const char **how)
{
    int r;

    memset(cfg, 0, sizeof(*cfg));
    if (o->kubeconfig) {
        *how = "kubeconfig";
        r = agent_kube_config_from_kubeconfig(cfg, o->kubeconfig);
        cfg->allow_insecure_http = o->api_server_insecure_http;
        return r;
    }
    if (o->api_server) {
        *how = "api-server";
        cfg->server = strdup(o->api_server);
        cfg->token_file = o->token_file ? strdup(o->token_file) : NULL;
        cfg->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
        cfg->allow_insecure_http = o->api_server_insecure_http;
        if (!cfg->server || (o->token_file && !cfg->token_file) || (o->ca_file && !cfg->ca_file)) {
            agent_kube_config_clear(cfg);
            return -ENOMEM;
        }
        return 0;
    }
    *how = "in-cluster";
    r = agent_kube_config_in_cluster(cfg, NULL);
    cfg->allow_insecure_http = o->api_server_insecure_http;
    return r;
}

static int start_kube(agent_sources_t *s, agent_kube_config_t *api_cfg)
{
    agent_kube_cache_config_t cc = {.node = s->o.node};
    agent_kube_config_t kc;
    int r;

    r = agent_kube_client_new(api_cfg, &s->api);
    if (r == 0)
        r = agent_kube_cache_new(s->api, &cc, &s->cache);
    if (r < 0 || s->kind != SOURCE_KUBELET)
        return r;
    r = agent_kube_config_copy(&kc, api_cfg);
    if (r < 0)
        return r;
    if (s->o.kubelet_mode == KUBELET_MODE_DIRECT) {
        char url[512];

        put(url, sizeof(url), s->o.kubelet_url ? s->o.kubelet_url : "");
        if (!s->o.kubelet_url)
            snprintf(url, sizeof(url), "https://%s:10250", s->o.node);
        free(kc.server);
        kc.server = strdup(url);
        kc.insecure_skip_verify = s->o.kubelet_insecure_tls;
        r = kc.server ? 0 : -ENOMEM;
    }
    if (r == 0)
        r = agent_kube_client_new(&kc, &s->kubelet);
    agent_kube_config_clear(&kc);
    return r;
}

static int start_proc(agent_sources_t *s)
{
    char err[512];
    int r;

    if (s->o.n_proc_rules == 0)
        kopt_log_info("proc source without --proc-rules: one group per executable name");
    for (size_t i = 0; i < s->o.n_proc_rules; i++) {
        char name[64];
        const char *eq = strchr(s->o.proc_rules[i], '=');
        snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - s->o.proc_rules[i]) : 0,
                 s->o.proc_rules[i]);
        if (kopt_name_check(name, KOPT_NAME_LABEL) < 0) {
            kopt_log_error("a proc rule's name must be a Kubernetes label (a-z, 0-9, '-')",
                           KOPT_STR("rule", s->o.proc_rules[i]));
            return -EINVAL;
        }
    }
    r = agent_proc_source_new(s->o.proc_root, s->o.proc_rules, s->o.n_proc_rules, &s->proc, err,
                              sizeof(err));
    if (r < 0)
        kopt_log_error("bad proc rules", KOPT_STR("error", err));
    return r;
}

/* auto: cgroup if kubepods is there, else kubelet if the API is known,
 * else proc. Sets s->kind; logs the choice with its reason. */
static void choose(agent_sources_t *s, bool have_kube, const char *how)
{
    const char *why;

    if (s->o.source != SOURCE_AUTO) {
        s->kind = s->o.source;
        why = "--source";
    } else if (has_kubepods(s->o.cgroup_root)) {
        s->kind = SOURCE_CGROUP;
        why = "the kubepods cgroup hierarchy exists under --cgroup-root";
    } else if (have_kube) {
        s->kind = SOURCE_KUBELET;
        why = "no kubepods cgroup hierarchy, but the Kubernetes API is configured";
    } else {
        s->kind = SOURCE_PROC;
        why = "no kubepods cgroup hierarchy and no Kubernetes config (in-cluster, --kubeconfig "
              "or --api-server)";
    }
    kopt_log_info("measurement source chosen",
                  KOPT_STR("source", s->kind == SOURCE_CGROUP    ? "cgroup"
                                     : s->kind == SOURCE_KUBELET ? "kubelet"
                                                                 : "proc"),
                  KOPT_STR("why", why), KOPT_STR("cgroup_root", s->o.cgroup_root),
                  KOPT_STR("kubernetes", have_kube ? how : "none"));
}

/* --- the metadata refresh ---------------------------------------------------- */

static void maybe_free(agent_sources_t *s);

static void refresh_work(uv_work_t *req)
{
    agent_sources_t *s = req->data;

    s->refresh_rc = agent_kube_cache_refresh(s->cache, s->refresh_started_ms);
}

static void on_refresh_timer(uv_timer_t *t);

static void refresh_done(uv_work_t *req, int status)
{
    agent_sources_t *s = req->data;
    uint64_t next;

    (void)status;
    s->refreshing = false;
    s->refs--;
    if (s->closing) {
        maybe_free(s);
        return;
    }
    s->generation++;
    if (s->refresh_rc == 0) {
        agent_kube_cache_stats_t st;

        agent_kube_cache_stats(s->cache, &st);
        if (s->ok_generation == 0 || s->backoff_ms)
            kopt_log_info("Kubernetes metadata read", KOPT_UINT("pods", st.pods),
                          KOPT_UINT("workloads", st.workloads), KOPT_UINT("hpas", st.hpas));
        s->ok_generation = s->generation;
        s->backoff_ms = 0;
        kopt_metric_counter_inc(s->refreshes);
        next = s->o.metadata_refresh_ms;
    } else {
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : FIRST_BACKOFF_MS;
        if (s->backoff_ms > s->o.metadata_refresh_ms)
            s->backoff_ms = s->o.metadata_refresh_ms;
        next = s->backoff_ms;
        kopt_metric_counter_inc(s->refresh_errors);
        kopt_log_warn("reading Kubernetes metadata failed; keeping the last view, retrying",
                      KOPT_ERR(s->refresh_rc), KOPT_UINT("retry_ms", next));
    }
    uv_timer_start(&s->refresh_timer, on_refresh_timer, next ? next : 1000, 0);
}

static void on_refresh_timer(uv_timer_t *t)
{
    agent_sources_t *s = t->data;

    if (s->refreshing || s->closing)
        return;
    s->refresh_req.data = s;
    s->refresh_started_ms = s->now_ms;
    if (uv_queue_work(s->loop, &s->refresh_req, refresh_work, refresh_done) == 0) {
        s->refreshing = true;
        s->refs++;
    }
}

/* --- reading ------------------------------------------------------------------ */

static void on_group(const agent_proc_group_t *g, void *data)
{
    agent_sources_t *s = data;
    agent_sample_t x;

    memset(&x, 0, sizeof(x));
    x.key = g->group;
    x.at_ms = s->now_ms;
    x.cpu_usage_ns = g->cpu_usage_ns;
    x.memory_working_set = g->rss_bytes; /* no cgroup: RSS is the best working set we have */
    x.memory_rss = g->rss_bytes;
    s->add(s->data, &x);
}

static int read_cgroups(agent_sources_t *s)
{
    agent_cgroup_list_t l = {0};
    int r = agent_cgroup_scan(s->o.cgroup_root, &l);

    if (r < 0)
        return r;
    for (size_t i = 0; i < l.n; i++) {
        const agent_cgroup_container_t *c = &l.items[i];
        agent_cgroup_sample_t cs;
        agent_sample_t x;
        char key[256];

        if (agent_cgroup_read(c, &cs) < 0 || !(cs.have & AGENT_CGROUP_HAVE_CPU))
            continue; /* gone since the scan, or unreadable: the next tick sees */
        s->metric_source = c->version == AGENT_CGROUP_V1
                               ? KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V1
                               : KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2;
        snprintf(key, sizeof(key), "c/%s/%s", c->pod_uid, c->container_id);
        memset(&x, 0, sizeof(x));
        x.key = key;
        x.at_ms = s->now_ms;
        x.cpu_usage_ns = cs.cpu_usage_ns;
        x.cpu_periods = cs.cpu_periods;
        x.cpu_throttled = cs.cpu_throttled_periods;
        x.cpu_throttled_ns = cs.cpu_throttled_ns;
        x.memory_working_set = cs.memory_working_set_bytes;
        x.memory_rss = cs.memory_rss_bytes;
        x.oom_kills = cs.oom_kills;
        s->add(s->data, &x);
    }
    agent_cgroup_list_free(&l);
    return 0;
}

static void fetch_work(uv_work_t *req)
{
    agent_sources_t *s = req->data;

    s->fetch_rc = agent_kubelet_fetch(
        s->kubelet,
        s->o.kubelet_mode == KUBELET_MODE_DIRECT ? AGENT_KUBELET_DIRECT : AGENT_KUBELET_PROXY,
        s->o.node, NULL, &s->next);
}

/* Readings carry the kubelet's own sample time: a summary answered from the
 * kubelet's cache repeats the last one, which the windower refuses (not
 * newer), so no zero-length interval is counted. */
static void feed_summary(agent_sources_t *s, const agent_kubelet_summary_t *sum)
{
    for (size_t i = 0; i < sum->n_pods; i++) {
        const agent_kubelet_pod_t *p = &sum->pods[i];

        for (size_t j = 0; j < p->n_containers; j++) {
            const agent_kubelet_container_t *c = &p->containers[j];
            agent_sample_t x;
            char key[256];

            if (!c->has_cpu)
                continue;
            snprintf(key, sizeof(key), "k/%s/%s", p->uid, c->name);
            memset(&x, 0, sizeof(x));
            x.key = key;
            x.at_ms = c->at_ms ? c->at_ms : s->fetch_started_ms;
            x.cpu_usage_ns = c->cpu_usage_core_ns;
            x.memory_working_set = c->memory_working_set_bytes;
            x.memory_rss = c->memory_rss_bytes;
            s->add(s->data, &x);
        }
    }
}

static void fetch_done(uv_work_t *req, int status)
{
    agent_sources_t *s = req->data;

    (void)status;
    s->fetching = false;
    s->refs--;
    if (s->closing) {
        agent_kubelet_summary_clear(&s->next);
        maybe_free(s);
        return;
    }
    kopt_metric_counter_inc(s->kubelet_fetches);
    if (s->fetch_rc < 0) {
        kopt_metric_counter_inc(s->kubelet_errors);
        if (!s->fetch_failing)
            kopt_log_warn("reading the kubelet's /stats/summary failed; retrying each tick",
                          KOPT_ERR(s->fetch_rc));
        s->fetch_failing = true;
        agent_kubelet_summary_clear(&s->next);
        return;
    }
    if (s->fetch_failing)
        kopt_log_info("the kubelet's /stats/summary answers again");
    s->fetch_failing = false;
    agent_kubelet_summary_clear(&s->last);
    s->last = s->next;
    memset(&s->next, 0, sizeof(s->next));
    feed_summary(s, &s->last);
}

int agent_sources_tick(agent_sources_t *s, int64_t now_ms)
{
    s->now_ms = now_ms;
    switch (s->kind) {
    case SOURCE_PROC:
        return agent_proc_source_scan(s->proc, now_ms, on_group, s);
    case SOURCE_CGROUP:
        return read_cgroups(s);
    default:
        if (s->fetching)
            return 0; /* slower than the interval: skip a reading */
        s->fetch_req.data = s;
        s->fetch_started_ms = now_ms;
        if (uv_queue_work(s->loop, &s->fetch_req, fetch_work, fetch_done) < 0)
            return -EAGAIN;
        s->fetching = true;
        s->refs++;
        return 0;
    }
}

/* --- metadata for windows ----------------------------------------------------- */

static uint32_t restarts_since(agent_sources_t *s, const agent_kube_container_meta_t *km,
                               int64_t now_ms)
{
    restart_t *e = NULL;
    uint32_t d = 0;
    size_t i, kept = 0;

    for (i = 0; i < s->n_restarts; i++) {
        restart_t *r = &s->restarts[i];

        if (strcmp(r->pod_uid, km->pod_uid) == 0 && strcmp(r->container, km->container) == 0)
            e = r;
    }
    if (e) {
        d = km->restart_count > e->count ? km->restart_count - e->count : 0;
    } else {
        if (s->n_restarts == MAX_RESTART_ENTRIES) { /* forget the long gone */
            for (i = 0; i < s->n_restarts; i++)
                if (now_ms - s->restarts[i].seen_ms < RESTART_FORGET_MS)
                    s->restarts[kept++] = s->restarts[i];
            s->n_restarts = kept;
        }
        if (s->n_restarts == s->cap_restarts && s->n_restarts < MAX_RESTART_ENTRIES) {
            size_t cap = s->cap_restarts ? 2 * s->cap_restarts : 64;
            restart_t *v = realloc(s->restarts, cap * sizeof(*v));

            if (v) {
                s->restarts = v;
                s->cap_restarts = cap;
            }
        }
        if (s->n_restarts == s->cap_restarts)
            return 0;
        e = &s->restarts[s->n_restarts++];
        put(e->pod_uid, sizeof(e->pod_uid), km->pod_uid);
        put(e->container, sizeof(e->container), km->container);
    }
    e->count = km->restart_count;
    e->seen_ms = now_ms;
    return d;
}

static void from_kube(agent_sources_t *s, const agent_kube_container_meta_t *km,
                      const agent_window_t *w, agent_window_meta_t *m)
{
    uint32_t d = restarts_since(s, km, w->end_ms);

    put(m->namespace_, sizeof(m->namespace_), km->namespace_);
    put(m->pod, sizeof(m->pod), km->pod);
    put(m->pod_uid, sizeof(m->pod_uid), km->pod_uid);
    put(m->container, sizeof(m->container), km->container);
    put(m->container_id, sizeof(m->container_id), km->container_id);
    put(m->workload_name, sizeof(m->workload_name), km->workload_name);
    m->workload_kind = (int)km->workload_kind;
    if (km->workload_kind == AGENT_KUBE_KIND_UNSPECIFIED)
        /* a controller kopt does not know: ingest needs a kind; the pod is
         * the workload we can name for sure */
        m->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_POD;
    m->cpu_request_cores = km->cpu_request_cores;
    m->cpu_limit_cores = km->cpu_limit_cores;
    m->memory_request_bytes = km->memory_request_bytes;
    m->memory_limit_bytes = km->memory_limit_bytes;
    m->restarts = d > w->resets ? d : w->resets;
}

/* What is known without the API: the pod UID and the runtime id (cgroup), or
 * namespace, pod and container names (kubelet). Every name stays valid for
 * ingest's checks. */
static void partial(const agent_sources_t *s, char src, const char *uid, const char *rest,
                    agent_window_meta_t *m)
{
    snprintf(m->namespace_, sizeof(m->namespace_), "unknown");
    snprintf(m->pod, sizeof(m->pod), "pod-%s", uid);
    put(m->pod_uid, sizeof(m->pod_uid), uid);
    for (char *p = m->pod; *p; p++)
        *p = *p == '_' ? '-' : *p;
    if (src == 'c') {
        put(m->container_id, sizeof(m->container_id), rest);
        snprintf(m->container, sizeof(m->container), "c-%.12s", rest);
    } else {
        put(m->container, sizeof(m->container), rest);
        for (size_t i = 0; i < s->last.n_pods; i++)
            if (strcmp(s->last.pods[i].uid, uid) == 0) {
                put(m->namespace_, sizeof(m->namespace_), s->last.pods[i].namespace_);
                put(m->pod, sizeof(m->pod), s->last.pods[i].name);
            }
    }
    put(m->workload_name, sizeof(m->workload_name), m->pod);
    m->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_POD;
}

agent_meta_result_t agent_sources_describe(agent_sources_t *s, const agent_window_t *w,
                                           uint64_t held_gen, agent_window_meta_t *m)
{
    agent_kube_container_meta_t km;
    char src, uid[AGENT_KUBE_UID_MAX], rest[AGENT_KUBE_CID_MAX];
    const char *a, *b;
    int r;

    memset(m, 0, sizeof(*m));
    if (s->kind == SOURCE_PROC) {
        put(m->namespace_, sizeof(m->namespace_), s->o.proc_namespace);
        put(m->workload_name, sizeof(m->workload_name), w->key);
        put(m->pod, sizeof(m->pod), w->key);
        put(m->container, sizeof(m->container), w->key);
        m->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_PROCESS_GROUP;
        return AGENT_META_FOUND;
    }
    /* "c/<uid>/<id>" or "k/<uid>/<name>" */
    a = strchr(w->key, '/');
    b = a ? strchr(a + 1, '/') : NULL;
    if (!b || (size_t)(b - a - 1) >= sizeof(uid))
        return AGENT_META_DROP;
    src = w->key[0];
    snprintf(uid, sizeof(uid), "%.*s", (int)(b - a - 1), a + 1);
    put(rest, sizeof(rest), b + 1);
    r = s->cache ? agent_kube_cache_container(s->cache, src == 'c' ? rest : NULL, uid,
                                              src == 'k' ? rest : NULL, &km)
                 : -ENOENT;
    if (r == 0) {
        from_kube(s, &km, w, m);
        return AGENT_META_FOUND;
    }
    if (s->cache && s->generation <= held_gen)
        return AGENT_META_WAIT;
    /* The API answered after the window closed and does not list this
     * cgroup: a pod sandbox (pause) container, or one gone before the list. */
    if (s->cache && src == 'c' && s->ok_generation > held_gen)
        return AGENT_META_DROP;
    partial(s, src, uid, rest, m);
    return AGENT_META_PARTIAL;
}

void agent_window_meta_view(const agent_window_meta_t *m, agent_container_meta_t *out)
{
    memset(out, 0, sizeof(*out));
    out->namespace_ = m->namespace_;
    out->workload_name = m->workload_name;
    out->pod = m->pod;
    out->container = m->container;
    out->container_id = m->container_id[0] ? m->container_id : NULL;
    out->pod_uid = m->pod_uid[0] ? m->pod_uid : NULL;
    out->workload_kind = m->workload_kind;
    out->cpu_request_cores = m->cpu_request_cores;
    out->cpu_limit_cores = m->cpu_limit_cores;
    out->memory_request_bytes = m->memory_request_bytes;
    out->memory_limit_bytes = m->memory_limit_bytes;
    out->restarts = m->restarts;
}

int agent_sources_metric_source(const agent_sources_t *s)
{
    return s->metric_source;
}

agent_kube_cache_t *agent_sources_kube(const agent_sources_t *s)
{
    return s->cache;
}

uint64_t agent_sources_generation(const agent_sources_t *s)
{
    return s->generation;
}

/* --- life ---------------------------------------------------------------------- */

static int counters(agent_sources_t *s, kopt_metrics_t *m)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } defs[] = {
        {"kopt_agent_metadata_refreshes_total", "Kubernetes metadata refreshes that succeeded.",
         offsetof(agent_sources_t, refreshes)},
        {"kopt_agent_metadata_errors_total", "Kubernetes metadata refreshes that failed.",
         offsetof(agent_sources_t, refresh_errors)},
        {"kopt_agent_kubelet_fetches_total", "Reads of the kubelet's /stats/summary.",
         offsetof(agent_sources_t, kubelet_fetches)},
        {"kopt_agent_kubelet_errors_total", "Reads of the kubelet's /stats/summary that failed.",
         offsetof(agent_sources_t, kubelet_errors)},
    };

    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        kopt_metric_family_t *f;
        int r = kopt_metrics_counter(m, defs[i].name, defs[i].help, NULL, &f);

        if (r < 0)
            return r;
        *(kopt_metric_counter_t **)((char *)s + defs[i].off) = kopt_metric_counter_with(f);
    }
    return 0;
}

int agent_sources_new(uv_loop_t *loop, const agent_sources_opts_t *opts, kopt_metrics_t *metrics,
                      agent_sample_fn add, void *data, agent_sources_t **out)
{
    agent_sources_t *s = calloc(1, sizeof(*s));
    agent_kube_config_t kc;
    const char *how = "none";
    bool have_kube = false;
    int r;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->o = *opts;
    s->add = add;
    s->data = data;
    uv_timer_init(loop, &s->refresh_timer);
    s->refresh_timer.data = s;
    s->refs = 1;
    memset(&kc, 0, sizeof(kc));
    if (opts->source != SOURCE_PROC) {
        r = load_kube_config(opts, &kc, &how);
        if (r < 0 && r != -ENOENT)
            kopt_log_error("cannot use the Kubernetes config", KOPT_STR("from", how), KOPT_ERR(r));
        have_kube = r == 0;
    }
    choose(s, have_kube, how);
    r = counters(s, metrics);
    if (r == 0 && s->kind == SOURCE_PROC) {
        s->metric_source = KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_PROC;
        r = start_proc(s);
    } else if (r == 0) {
        s->metric_source = s->kind == SOURCE_KUBELET
                               ? KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_KUBELET
                           : exists(s->o.cgroup_root, "cgroup.controllers")
                               ? KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2
                               : KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V1;
        if (s->kind == SOURCE_KUBELET && !have_kube) {
            kopt_log_error("the kubelet source needs the Kubernetes API config: in-cluster, "
                           "--kubeconfig, or --api-server with --token-file and --ca-file");
            r = -EINVAL;
        } else if (have_kube) {
            r = start_kube(s, &kc);
            if (r < 0)
                kopt_log_error("cannot set up the Kubernetes client", KOPT_ERR(r));
        } else {
            kopt_log_warn("no Kubernetes config: cgroup windows are sent without names "
                          "(namespace \"unknown\", pod \"pod-<uid>\")");
        }
    }
    agent_kube_config_clear(&kc);
    if (r < 0) {
        agent_sources_free(s);
        return r;
    }
    if (s->cache)
        uv_timer_start(&s->refresh_timer, on_refresh_timer, 0, 0);
    *out = s;
    return 0;
}

static void really_free(agent_sources_t *s)
{
    agent_kube_cache_free(s->cache);
    agent_kube_client_free(s->api);
    agent_kube_client_free(s->kubelet);
    agent_kubelet_summary_clear(&s->last);
    agent_kubelet_summary_clear(&s->next);
    agent_proc_source_free(s->proc);
    free(s->restarts);
    free(s);
}

static void maybe_free(agent_sources_t *s)
{
    if (s->refs == 0)
        really_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    agent_sources_t *s = h->data;

    s->refs--;
    maybe_free(s);
}

void agent_sources_free(agent_sources_t *s)
{
    if (!s)
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->refresh_timer, on_timer_closed);
}
