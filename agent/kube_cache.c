/* The refresh cycle of the Kubernetes view (see kube_cache.h): list pods on
 * the node, fetch each owner ReplicaSet/Job and each top workload by name
 * into a bounded LRU of objects, list HPAs, GET the Node, resolve owners and
 * publish an immutable snapshot under a mutex for the readers. */
#include "kube_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>

#define DEFAULT_MAX_PODS 512
#define DEFAULT_MAX_CONTAINERS 32
#define DEFAULT_MAX_OBJECTS 1024
#define DEFAULT_MAX_HPAS 4096
#define DEFAULT_OBJECT_TTL_S 300

typedef struct {
    agent_kube_object_t obj; /* for a missing one: kind_name, namespace_ and name only */
    bool missing;            /* 404: negative entry, so it is not asked every cycle */
    int64_t fetched_ms;
    uint64_t used; /* LRU clock */
} entry_t;

/* What readers see; replaced whole by each refresh. */
typedef struct {
    agent_kube_pod_list_t pods;
    agent_kube_workload_ref_t *refs; /* one per pod */
    agent_kube_workload_t *workloads;
    size_t n_workloads;
    agent_kube_node_t node;
    bool has_node;
} snapshot_t;

struct agent_kube_cache {
    agent_kube_client_t *api;
    agent_kube_cache_config_t cfg;
    char node[AGENT_KUBE_NAME_MAX];
    char rv[AGENT_KUBE_RV_MAX]; /* of the last pod list */
    entry_t *objects;           /* refresher thread only */
    size_t n_objects;
    uint64_t clock;
    int64_t now_ms;
    bool hpa_denied_logged;
    pthread_mutex_t lock; /* guards snap and stats */
    snapshot_t *snap;
    agent_kube_cache_stats_t stats;
};

static const struct {
    const char *kind, *path; /* printf: namespace, name */
} object_paths[] = {
    {"ReplicaSet", "/apis/apps/v1/namespaces/%s/replicasets/%s"},
    {"Deployment", "/apis/apps/v1/namespaces/%s/deployments/%s"},
    {"StatefulSet", "/apis/apps/v1/namespaces/%s/statefulsets/%s"},
    {"DaemonSet", "/apis/apps/v1/namespaces/%s/daemonsets/%s"},
    {"Job", "/apis/batch/v1/namespaces/%s/jobs/%s"},
    {"CronJob", "/apis/batch/v1/namespaces/%s/cronjobs/%s"},
};

static void snapshot_free(snapshot_t *s)
{
    if (!s)
        return;
    agent_kube_pod_list_clear(&s->pods);
    free(s->refs);
    free(s->workloads);
    free(s);
}

/* Names go into URL paths unescaped: keep to what Kubernetes allows. */
static bool safe_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_'))
            return false;
    return true;
}

int agent_kube_cache_new(agent_kube_client_t *api, const agent_kube_cache_config_t *cfg,
                         agent_kube_cache_t **out)
{
    agent_kube_cache_t *c;

    *out = NULL;
    if (!api || !cfg || !cfg->node || strlen(cfg->node) >= AGENT_KUBE_NAME_MAX ||
        !safe_name(cfg->node))
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->api = api;
    c->cfg = *cfg;
    c->cfg.node = c->node;
    strcpy(c->node, cfg->node);
#define DEF(f, d) c->cfg.f = c->cfg.f ? c->cfg.f : (d)
    DEF(max_pods, DEFAULT_MAX_PODS);
    DEF(max_containers, DEFAULT_MAX_CONTAINERS);
    DEF(max_objects, DEFAULT_MAX_OBJECTS);
    DEF(max_hpas, DEFAULT_MAX_HPAS);
    DEF(object_ttl_s, DEFAULT_OBJECT_TTL_S);
#undef DEF
    c->objects = calloc(c->cfg.max_objects, sizeof(*c->objects));
    if (!c->objects || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->objects);
        free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void agent_kube_cache_free(agent_kube_cache_t *c)
{
    if (!c)
        return;
    snapshot_free(c->snap);
    free(c->objects);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* --- Object cache (refresher thread only) ---------------------------------- */

static entry_t *object_find(agent_kube_cache_t *c, const char *ns, const char *kind,
                            const char *name)
{
    size_t i;

    for (i = 0; i < c->n_objects; i++) {
        entry_t *e = &c->objects[i];

        if (strcmp(e->obj.name, name) == 0 && strcmp(e->obj.namespace_, ns) == 0 &&
            strcmp(e->obj.kind_name, kind) == 0) {
            e->used = ++c->clock;
            return e;
        }
    }
    return NULL;
}

/* A slot for a new entry: a free one, or the least recently used (counted). */
static entry_t *object_slot(agent_kube_cache_t *c)
{
    entry_t *lru;
    size_t i;

    if (c->n_objects < c->cfg.max_objects)
        return &c->objects[c->n_objects++];
    lru = &c->objects[0];
    for (i = 1; i < c->n_objects; i++)
        if (c->objects[i].used < lru->used)
            lru = &c->objects[i];
    pthread_mutex_lock(&c->lock);
    c->stats.objects_evicted++;
    pthread_mutex_unlock(&c->lock);
    return lru;
}

static void count(agent_kube_cache_t *c, uint64_t *field)
{
    pthread_mutex_lock(&c->lock);
    (*field)++;
    pthread_mutex_unlock(&c->lock);
}

/* The object, fetched when unknown or older than the TTL; NULL if missing or
 * unreadable (a failed re-read keeps the stale copy). */
static const agent_kube_object_t *object_get(agent_kube_cache_t *c, const char *ns,
                                             const char *kind, const char *name)
{
    entry_t *e = object_find(c, ns, kind, name);
    agent_kube_object_list_t list = {0};
    char path[512];
    const char *fmt = NULL;
    char *body = NULL;
    size_t i, len;
    int r;

    if (e && c->now_ms - e->fetched_ms < (int64_t)c->cfg.object_ttl_s * 1000)
        return e->missing ? NULL : &e->obj;
    for (i = 0; i < sizeof(object_paths) / sizeof(object_paths[0]); i++)
        if (strcmp(object_paths[i].kind, kind) == 0)
            fmt = object_paths[i].path;
    if (!fmt || !safe_name(ns) || !safe_name(name) || strlen(kind) >= AGENT_KUBE_KIND_MAX)
        return NULL;
    snprintf(path, sizeof(path), fmt, ns, name);
    count(c, &c->stats.object_fetches);
    r = agent_kube_client_get(c->api, path, &body, &len, NULL);
    if (r == 0) {
        r = agent_kube_parse_objects(body, len, NULL, &list);
        free(body);
        if (r == 0 && list.n_items != 1) {
            agent_kube_object_list_clear(&list);
            r = -EINVAL;
        }
    }
    if (r < 0 && r != -ENOENT) {
        count(c, &c->stats.object_errors);
        kopt_log_warn("cannot read workload object, using what is known", KOPT_STR("kind", kind),
                      KOPT_STR("namespace", ns), KOPT_STR("name", name), KOPT_ERR(r));
        return e && !e->missing ? &e->obj : NULL;
    }
    if (!e)
        e = object_slot(c);
    memset(e, 0, sizeof(*e));
    e->used = ++c->clock;
    e->fetched_ms = c->now_ms;
    if (r < 0) {
        e->missing = true;
        strcpy(e->obj.kind_name, kind);
        snprintf(e->obj.namespace_, sizeof(e->obj.namespace_), "%s", ns);
        snprintf(e->obj.name, sizeof(e->obj.name), "%s", name);
        return NULL;
    }
    e->obj = list.items[0];
    agent_kube_object_list_clear(&list);
    return &e->obj;
}

static const agent_kube_object_t *find_owner(void *data, const char *ns, const char *kind,
                                             const char *name)
{
    return object_get(data, ns, kind, name);
}

/* --- Refresh ----------------------------------------------------------------- */

static int list_pods(agent_kube_cache_t *c, agent_kube_pod_list_t *pods)
{
    agent_kube_limits_t lim = {.max_items = c->cfg.max_pods,
                               .max_containers = c->cfg.max_containers};
    char path[768];
    char *body = NULL;
    size_t len;
    int r;

    /* resourceVersion + NotOlderThan lets the API server answer from its watch
     * cache instead of etcd; an expired version is a 410 and a full relist. */
    for (;;) {
        if (c->rv[0])
            snprintf(path, sizeof(path),
                     "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&resourceVersion=%s"
                     "&resourceVersionMatch=NotOlderThan",
                     c->node, c->rv);
        else
            snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", c->node);
        r = agent_kube_client_get(c->api, path, &body, &len, NULL);
        if (r != -ESTALE || !c->rv[0])
            break;
        count(c, &c->stats.relists);
        kopt_log_info("pod list resourceVersion expired (410 Gone), relisting",
                      KOPT_STR("resource_version", c->rv));
        c->rv[0] = '\0';
    }
    if (r < 0)
        return r;
    r = agent_kube_parse_pods(body, len, &lim, pods);
    free(body);
    if (r == 0 && pods->resource_version[0] && safe_name(pods->resource_version))
        strcpy(c->rv, pods->resource_version);
    return r;
}

static void add_workload(snapshot_t *s, const agent_kube_pod_t *pod,
                         const agent_kube_workload_ref_t *ref, const agent_kube_object_t *obj)
{
    agent_kube_workload_t *w;
    size_t i;

    for (i = 0; i < s->n_workloads; i++) {
        w = &s->workloads[i];
        if (w->kind == ref->kind && strcmp(w->name, ref->name) == 0 &&
            strcmp(w->namespace_, pod->namespace_) == 0)
            return;
    }
    w = &s->workloads[s->n_workloads++];
    memset(w, 0, sizeof(*w));
    strcpy(w->namespace_, pod->namespace_);
    w->kind = ref->kind;
    strcpy(w->name, ref->name);
    w->qos = pod->qos;
    if (obj) {
        w->replicas = obj->replicas;
        w->ready_replicas = obj->ready_replicas;
    } else if (ref->kind == AGENT_KUBE_KIND_POD) {
        w->replicas = 1;
        w->ready_replicas = pod->terminal ? 0 : 1;
    }
}

static void attach_hpas(agent_kube_cache_t *c, snapshot_t *s)
{
    agent_kube_limits_t lim = {.max_items = c->cfg.max_hpas};
    agent_kube_hpa_list_t hpas = {0};
    char *body = NULL;
    size_t i, len;
    int r;

    r = agent_kube_client_get(c->api, "/apis/autoscaling/v2/horizontalpodautoscalers", &body, &len,
                              NULL);
    if (r == 0) {
        r = agent_kube_parse_hpas(body, len, &lim, &hpas);
        free(body);
    }
    if (r < 0) {
        /* Without RBAC for HPAs kopt still works: say so once. */
        if (r != -EACCES || !c->hpa_denied_logged)
            kopt_log_warn("cannot list HorizontalPodAutoscalers, workloads reported without",
                          KOPT_ERR(r));
        c->hpa_denied_logged = c->hpa_denied_logged || r == -EACCES;
        return;
    }
    for (i = 0; i < s->n_workloads; i++) {
        agent_kube_workload_t *w = &s->workloads[i];
        const agent_kube_hpa_t *h =
            agent_kube_hpa_for(hpas.items, hpas.n_items, w->namespace_, w->kind, w->name);

        if (h) {
            w->has_hpa = true;
            w->hpa = *h;
        }
    }
    pthread_mutex_lock(&c->lock);
    c->stats.hpas_dropped = hpas.dropped_items;
    pthread_mutex_unlock(&c->lock);
    agent_kube_hpa_list_clear(&hpas);
}

static void read_node(agent_kube_cache_t *c, snapshot_t *s)
{
    char path[AGENT_KUBE_NAME_MAX + 32];
    char *body = NULL;
    size_t len;
    int r;

    snprintf(path, sizeof(path), "/api/v1/nodes/%s", c->node);
    r = agent_kube_client_get(c->api, path, &body, &len, NULL);
    if (r == 0) {
        r = agent_kube_parse_node(body, len, &s->node);
        free(body);
    }
    if (r < 0) {
        kopt_log_warn("cannot read the Node, keeping its last facts", KOPT_STR("node", c->node),
                      KOPT_ERR(r));
        pthread_mutex_lock(&c->lock);
        if (c->snap && c->snap->has_node) {
            s->node = c->snap->node;
            s->has_node = true;
        }
        pthread_mutex_unlock(&c->lock);
        return;
    }
    s->has_node = true;
}

int agent_kube_cache_refresh(agent_kube_cache_t *c, int64_t now_ms)
{
    snapshot_t *s = calloc(1, sizeof(*s)), *old;
    size_t i, n_hpas = 0;
    int r;

    if (!s)
        return -ENOMEM;
    c->now_ms = now_ms;
    r = list_pods(c, &s->pods);
    if (r < 0) {
        count(c, &c->stats.refresh_errors);
        snapshot_free(s);
        return r;
    }
    if (s->pods.n_pods) {
        s->refs = calloc(s->pods.n_pods, sizeof(*s->refs));
        s->workloads = calloc(s->pods.n_pods, sizeof(*s->workloads));
        if (!s->refs || !s->workloads) {
            snapshot_free(s);
            return -ENOMEM;
        }
    }
    for (i = 0; i < s->pods.n_pods; i++) {
        const agent_kube_pod_t *pod = &s->pods.pods[i];
        agent_kube_workload_ref_t *ref = &s->refs[i];
        const agent_kube_object_t *obj = NULL;

        agent_kube_resolve_owner(pod, find_owner, c, ref);
        if (ref->kind != AGENT_KUBE_KIND_POD && ref->kind != AGENT_KUBE_KIND_UNSPECIFIED)
            obj = object_get(c, pod->namespace_, agent_kube_kind_name(ref->kind), ref->name);
        add_workload(s, pod, ref, obj);
    }
    if (!c->cfg.no_hpas)
        attach_hpas(c, s);
    if (!c->cfg.no_node)
        read_node(c, s);
    for (i = 0; i < s->n_workloads; i++)
        n_hpas += s->workloads[i].has_hpa;
    pthread_mutex_lock(&c->lock);
    old = c->snap;
    c->snap = s;
    c->stats.refreshes++;
    c->stats.pods_dropped = s->pods.dropped_items;
    c->stats.containers_dropped = s->pods.dropped_containers;
    c->stats.pods = s->pods.n_pods;
    c->stats.objects = c->n_objects;
    c->stats.workloads = s->n_workloads;
    c->stats.hpas = n_hpas;
    pthread_mutex_unlock(&c->lock);
    snapshot_free(old);
    return 0;
}

/* --- Readers ----------------------------------------------------------------- */

/* "containerd://abc" and "abc" name the same container. */
static bool same_container_id(const char *full, const char *id)
{
    const char *sep = strstr(full, "://");

    if (strcmp(full, id) == 0)
        return true;
    return sep && !strstr(id, "://") && strcmp(sep + 3, id) == 0;
}

/* Pod UIDs: systemd cgroup names write their dashes as underscores. */
static bool same_uid(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
            return false;
    return *a == *b;
}

static void fill_meta(agent_kube_container_meta_t *m, const agent_kube_pod_t *pod,
                      const agent_kube_container_t *ct, const agent_kube_workload_ref_t *ref)
{
    memset(m, 0, sizeof(*m));
    strcpy(m->namespace_, pod->namespace_);
    strcpy(m->pod, pod->name);
    strcpy(m->pod_uid, pod->uid);
    strcpy(m->container, ct->name);
    strcpy(m->container_id, ct->id);
    m->workload_kind = ref->kind;
    strcpy(m->workload_name, ref->name);
    m->qos = pod->qos;
    m->cpu_request_cores = ct->cpu_request_cores;
    m->cpu_limit_cores = ct->cpu_limit_cores;
    m->memory_request_bytes = ct->memory_request_bytes;
    m->memory_limit_bytes = ct->memory_limit_bytes;
    m->restart_count = ct->restart_count;
    m->last_oom = ct->last_oom;
    m->last_oom_finished_ms = ct->last_oom_finished_ms;
}

int agent_kube_cache_container(agent_kube_cache_t *c, const char *container_id, const char *pod_uid,
                               const char *container_name, agent_kube_container_meta_t *out)
{
    const snapshot_t *s;
    int pass, r = -ENOENT;
    size_t i, j;

    pthread_mutex_lock(&c->lock);
    s = c->snap;
    for (pass = 0; s && pass < 2 && r < 0; pass++) {
        for (i = 0; i < s->pods.n_pods && r < 0; i++) {
            const agent_kube_pod_t *pod = &s->pods.pods[i];

            if (pass == 1 && (!pod_uid || !container_name || !same_uid(pod->uid, pod_uid)))
                continue;
            for (j = 0; j < pod->n_containers && r < 0; j++) {
                const agent_kube_container_t *ct = &pod->containers[j];
                bool hit = pass == 0 ? container_id && *container_id && ct->id[0] &&
                                           same_container_id(ct->id, container_id)
                                     : strcmp(ct->name, container_name) == 0;

                if (hit) {
                    fill_meta(out, pod, ct, &s->refs[i]);
                    r = 0;
                }
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

int agent_kube_cache_workload(agent_kube_cache_t *c, const char *ns, agent_kube_kind_t kind,
                              const char *name, agent_kube_workload_t *out)
{
    int r = -ENOENT;
    size_t i;

    pthread_mutex_lock(&c->lock);
    for (i = 0; c->snap && i < c->snap->n_workloads; i++) {
        const agent_kube_workload_t *w = &c->snap->workloads[i];

        if (w->kind == kind && strcmp(w->name, name) == 0 && strcmp(w->namespace_, ns) == 0) {
            *out = *w;
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

int agent_kube_cache_node(agent_kube_cache_t *c, agent_kube_node_t *out)
{
    int r = -ENOENT;

    pthread_mutex_lock(&c->lock);
    if (c->snap && c->snap->has_node) {
        *out = c->snap->node;
        r = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

void agent_kube_cache_stats(agent_kube_cache_t *c, agent_kube_cache_stats_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}
