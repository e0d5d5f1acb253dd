/* Kubernetes JSON to kopt structs (see kube_meta.h): pods with their
 * containers' resources and states, workload objects with their owners,
 * autoscaling/v2 HPAs, a Node; quantities and RFC 3339 times; owner chains.
 * Pure and bounded: the parsed jansson tree lives only inside a call. */
#include "kube_meta.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define DEFAULT_MAX_ITEMS 1024
#define DEFAULT_MAX_CONTAINERS 32

static const struct {
    const char *name;
    agent_kube_kind_t kind;
} kinds[] = {
    {"Deployment", AGENT_KUBE_KIND_DEPLOYMENT},
    {"StatefulSet", AGENT_KUBE_KIND_STATEFUL_SET},
    {"DaemonSet", AGENT_KUBE_KIND_DAEMON_SET},
    {"Job", AGENT_KUBE_KIND_JOB},
    {"CronJob", AGENT_KUBE_KIND_CRON_JOB},
    {"ReplicaSet", AGENT_KUBE_KIND_REPLICA_SET},
    {"Pod", AGENT_KUBE_KIND_POD},
};

agent_kube_kind_t agent_kube_kind_from_name(const char *kind)
{
    size_t i;

    for (i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, kind) == 0)
            return kinds[i].kind;
    return AGENT_KUBE_KIND_UNSPECIFIED;
}

const char *agent_kube_kind_name(agent_kube_kind_t kind)
{
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "";
}

/* --- Quantities ---------------------------------------------------------- */

/* The suffix's multiplier; *ok false for an unknown suffix. */
static double suffix_scale(const char *s, bool *ok)
{
    static const struct {
        const char *sfx;
        double scale;
    } table[] = {
        {"", 1},        {"n", 1e-9},    {"u", 1e-6},    {"m", 1e-3},
        {"k", 1e3},     {"M", 1e6},     {"G", 1e9},     {"T", 1e12},
        {"P", 1e15},    {"E", 1e18},    {"Ki", 1024.0}, {"Mi", 1048576.0},
        {"Gi", 0x1p30}, {"Ti", 0x1p40}, {"Pi", 0x1p50}, {"Ei", 0x1p60},
    };
    size_t i;

    *ok = true;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(s, table[i].sfx) == 0)
            return table[i].scale;
    *ok = false;
    return 0;
}

int agent_kube_quantity_parse(const char *s, double *out)
{
    double mant = 0, frac_scale = 1, v;
    bool digits = false, ok;
    const char *p = s;

    if (!s)
        return -EINVAL;
    if (*p == '+')
        p++;
    /* Digits by hand, not strtod: strtod also takes "inf", hex and spaces. */
    for (; *p >= '0' && *p <= '9'; p++, digits = true)
        mant = mant * 10 + (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
            frac_scale /= 10;
            mant += (*p - '0') * frac_scale;
        }
    if (!digits)
        return -EINVAL;
    /* "1e3" is an exponent, "1E" is exa: an exponent needs a digit or sign. */
    if ((*p == 'e' || *p == 'E') &&
        ((p[1] >= '0' && p[1] <= '9') ||
         ((p[1] == '+' || p[1] == '-') && p[2] >= '0' && p[2] <= '9'))) {
        int sign = 1, exp = 0;

        p++;
        if (*p == '+' || *p == '-')
            sign = *p++ == '-' ? -1 : 1;
        for (; *p >= '0' && *p <= '9'; p++)
            if (exp < 1000)
                exp = exp * 10 + (*p - '0');
        if (*p)
            return -EINVAL;
        v = mant * pow(10, sign * exp);
    } else {
        double scale = suffix_scale(p, &ok);

        if (!ok)
            return -EINVAL;
        v = mant * scale;
    }
    if (!isfinite(v) || v > 0x1p63)
        return -ERANGE;
    *out = v;
    return 0;
}

int agent_kube_quantity_bytes(const char *s, uint64_t *out)
{
    double v;
    int r = agent_kube_quantity_parse(s, &v);

    if (r < 0)
        return r;
    v = ceil(v);
    if (v >= 0x1p63)
        return -ERANGE;
    *out = (uint64_t)v;
    return 0;
}

int agent_kube_time_parse(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int64_t ms = 0, off_min = 0, scale = 100;
    const char *p;
    time_t t;

    if (!s)
        return -EINVAL;
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh = atoi(p + 1), mm = atoi(p + 4);

        off_min = (*p == '-' ? -1 : 1) * (hh * 60 + mm);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = ((int64_t)t - off_min * 60) * 1000 + ms;
    return 0;
}

/* --- JSON helpers ---------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Copies o[key] into dst; false when missing (unless optional) or too long. */
static bool jcopy(char *dst, size_t cap, const json_t *o, const char *key, bool optional)
{
    const char *s = jstr(o, key);
    size_t n;

    dst[0] = '\0';
    if (!s)
        return optional;
    n = strlen(s);
    if (n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

static uint32_t juint(const json_t *o, const char *key, uint32_t def)
{
    json_t *v = json_object_get(o, key);
    json_int_t i;

    if (!json_is_integer(v))
        return def;
    i = json_integer_value(v);
    return i < 0 ? 0 : i > UINT32_MAX ? UINT32_MAX : (uint32_t)i;
}

/* A quantity as the API writes it (a string; numbers are tolerated). */
static double jquantity(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    double d = 0;

    if (json_is_number(v))
        d = json_number_value(v);
    else if (agent_kube_quantity_parse(json_string_value(v), &d) < 0)
        d = 0;
    return d > 0 && d < 0x1p63 ? d : 0;
}

static uint64_t jbytes(const json_t *o, const char *key)
{
    return (uint64_t)ceil(jquantity(o, key));
}

static json_t *load(const char *json, size_t len)
{
    /* Kubernetes never sends NUL in JSON; JSON_REJECT_DUPLICATES is not used
     * because the API server does not promise unique keys either. */
    return json_loadb(json, len, 0, NULL);
}

/* The items of a List, or the body itself as a one-item array for a single
 * object. Returns a new reference, or NULL when the body is neither. */
static json_t *items_of(json_t *root, char *rv, size_t rv_cap)
{
    json_t *items = json_object_get(root, "items");
    json_t *meta = json_object_get(root, "metadata");

    if (!json_is_object(root))
        return NULL;
    if (!jcopy(rv, rv_cap, meta, "resourceVersion", true))
        rv[0] = '\0';
    if (json_is_array(items))
        return json_incref(items);
    if (json_is_object(meta) && json_object_get(root, "items") == NULL) {
        json_t *one = json_array();

        if (one && json_array_append(one, root) < 0) {
            json_decref(one);
            return NULL;
        }
        rv[0] = '\0'; /* an object's resourceVersion is not a list's */
        return one;
    }
    return NULL;
}

/* The owner reference with controller: true (the first one if none says so
 * but there is exactly one). */
static const json_t *controller_ref(const json_t *meta)
{
    const json_t *refs = json_object_get(meta, "ownerReferences");
    const json_t *r;
    size_t i;

    json_array_foreach(refs, i, r) if (json_is_true(json_object_get(r, "controller"))) return r;
    return json_array_size(refs) == 1 ? json_array_get(refs, 0) : NULL;
}

static bool copy_owner(const json_t *meta, char *kind, char *name, char *uid)
{
    const json_t *ref = controller_ref(meta);

    if (!ref) {
        kind[0] = name[0] = uid[0] = '\0';
        return true;
    }
    return jcopy(kind, AGENT_KUBE_KIND_MAX, ref, "kind", false) &&
           jcopy(name, AGENT_KUBE_NAME_MAX, ref, "name", false) &&
           jcopy(uid, AGENT_KUBE_UID_MAX, ref, "uid", true);
}

static size_t limit_or(size_t v, size_t def)
{
    return v ? v : def;
}

/* --- Pods ------------------------------------------------------------------ */

static agent_kube_qos_t qos_from(const char *s)
{
    if (!s)
        return AGENT_KUBE_QOS_UNSPECIFIED;
    if (strcmp(s, "Guaranteed") == 0)
        return AGENT_KUBE_QOS_GUARANTEED;
    if (strcmp(s, "Burstable") == 0)
        return AGENT_KUBE_QOS_BURSTABLE;
    if (strcmp(s, "BestEffort") == 0)
        return AGENT_KUBE_QOS_BEST_EFFORT;
    return AGENT_KUBE_QOS_UNSPECIFIED;
}

static void container_spec(agent_kube_container_t *c, const json_t *spec)
{
    const json_t *res = json_object_get(spec, "resources");
    const json_t *req = json_object_get(res, "requests");
    const json_t *lim = json_object_get(res, "limits");

    c->cpu_request_cores = jquantity(req, "cpu");
    c->cpu_limit_cores = jquantity(lim, "cpu");
    c->memory_request_bytes = jbytes(req, "memory");
    c->memory_limit_bytes = jbytes(lim, "memory");
    /* A limit without a request means request = limit (API defaulting). */
    if (c->cpu_request_cores == 0)
        c->cpu_request_cores = c->cpu_limit_cores;
    if (c->memory_request_bytes == 0)
        c->memory_request_bytes = c->memory_limit_bytes;
}

static void container_status(agent_kube_container_t *c, const json_t *st)
{
    const json_t *term = json_object_get(json_object_get(st, "lastState"), "terminated");
    const char *reason = jstr(term, "reason");

    if (!jcopy(c->id, sizeof(c->id), st, "containerID", true))
        c->id[0] = '\0';
    c->restart_count = juint(st, "restartCount", 0);
    if (reason && strcmp(reason, "OOMKilled") == 0) {
        c->last_oom = true;
        if (agent_kube_time_parse(jstr(term, "finishedAt"), &c->last_oom_finished_ms) < 0)
            c->last_oom_finished_ms = 0;
    }
}

/* Adds the containers of spec[key] with their statuses from status[skey]. */
static int add_containers(agent_kube_pod_t *pod, size_t cap, const json_t *spec, const char *key,
                          const json_t *status, const char *skey, size_t *dropped)
{
    const json_t *list = json_object_get(spec, key), *statuses = json_object_get(status, skey);
    const json_t *cs, *st;
    size_t i, j;

    json_array_foreach(list, i, cs)
    {
        agent_kube_container_t *c;

        if (pod->n_containers >= cap) {
            (*dropped)++;
            continue;
        }
        c = &pod->containers[pod->n_containers];
        memset(c, 0, sizeof(*c));
        if (!jcopy(c->name, sizeof(c->name), cs, "name", false)) {
            (*dropped)++;
            continue;
        }
        c->init = strcmp(key, "initContainers") == 0;
        container_spec(c, cs);
        json_array_foreach(statuses, j, st)
        {
            const char *n = jstr(st, "name");

            if (n && strcmp(n, c->name) == 0) {
                container_status(c, st);
                break;
            }
        }
        pod->n_containers++;
    }
    return 0;
}

static bool parse_pod(agent_kube_pod_t *pod, const json_t *item, size_t max_containers,
                      size_t *dropped_containers)
{
    const json_t *meta = json_object_get(item, "metadata");
    const json_t *spec = json_object_get(item, "spec");
    const json_t *status = json_object_get(item, "status");
    const char *phase = jstr(status, "phase");
    size_t n = json_array_size(json_object_get(spec, "containers")) +
               json_array_size(json_object_get(spec, "initContainers"));

    memset(pod, 0, sizeof(*pod));
    if (!jcopy(pod->namespace_, sizeof(pod->namespace_), meta, "namespace", false) ||
        !jcopy(pod->name, sizeof(pod->name), meta, "name", false) ||
        !jcopy(pod->uid, sizeof(pod->uid), meta, "uid", false) ||
        !copy_owner(meta, pod->owner_kind, pod->owner_name, pod->owner_uid))
        return false;
    if (!jcopy(pod->template_hash, sizeof(pod->template_hash), json_object_get(meta, "labels"),
               "pod-template-hash", true))
        pod->template_hash[0] = '\0';
    pod->qos = qos_from(jstr(status, "qosClass"));
    pod->terminal = phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
    if (n > max_containers)
        n = max_containers;
    if (n) {
        pod->containers = calloc(n, sizeof(*pod->containers));
        if (!pod->containers)
            return false;
    }
    add_containers(pod, n, spec, "containers", status, "containerStatuses", dropped_containers);
    add_containers(pod, n, spec, "initContainers", status, "initContainerStatuses",
                   dropped_containers);
    return true;
}

void agent_kube_pod_list_clear(agent_kube_pod_list_t *l)
{
    size_t i;

    if (!l)
        return;
    for (i = 0; i < l->n_pods; i++)
        free(l->pods[i].containers);
    free(l->pods);
    memset(l, 0, sizeof(*l));
}

int agent_kube_parse_pods(const char *json, size_t len, const agent_kube_limits_t *limits,
                          agent_kube_pod_list_t *out)
{
    size_t max_items = limit_or(limits ? limits->max_items : 0, DEFAULT_MAX_ITEMS);
    size_t max_c = limit_or(limits ? limits->max_containers : 0, DEFAULT_MAX_CONTAINERS);
    json_t *root, *items, *item;
    size_t i, n;
    int r = 0;

    memset(out, 0, sizeof(*out));
    root = load(json, len);
    items = items_of(root, out->resource_version, sizeof(out->resource_version));
    if (!items) {
        json_decref(root);
        return -EINVAL;
    }
    n = json_array_size(items) < max_items ? json_array_size(items) : max_items;
    out->dropped_items = json_array_size(items) - n;
    if (n && !(out->pods = calloc(n, sizeof(*out->pods))))
        r = -ENOMEM;
    json_array_foreach(items, i, item)
    {
        if (r < 0 || i >= n)
            break;
        if (parse_pod(&out->pods[out->n_pods], item, max_c, &out->dropped_containers))
            out->n_pods++;
        else
            out->dropped_items++;
    }
    json_decref(items);
    json_decref(root);
    if (r < 0)
        agent_kube_pod_list_clear(out);
    return r;
}

/* --- Workload objects ------------------------------------------------------- */

static void object_counts(agent_kube_object_t *o, const json_t *spec, const json_t *status)
{
    switch (o->kind) {
    case AGENT_KUBE_KIND_DAEMON_SET:
        o->replicas = juint(status, "desiredNumberScheduled", 0);
        o->ready_replicas = juint(status, "numberReady", 0);
        break;
    case AGENT_KUBE_KIND_JOB:
        o->replicas = juint(spec, "parallelism", 1);
        o->ready_replicas = juint(status, "ready", juint(status, "active", 0));
        break;
    case AGENT_KUBE_KIND_CRON_JOB:
        o->replicas = o->ready_replicas =
            (uint32_t)json_array_size(json_object_get(status, "active"));
        break;
    default:
        o->replicas = juint(spec, "replicas", 1);
        o->ready_replicas = juint(status, "readyReplicas", 0);
        break;
    }
}

static bool parse_object(agent_kube_object_t *o, const json_t *item, const char *list_kind)
{
    const json_t *meta = json_object_get(item, "metadata");

    memset(o, 0, sizeof(*o));
    /* Items of a typed List carry no kind; the List's own kind names it. */
    if (!jcopy(o->kind_name, sizeof(o->kind_name), item, "kind", true))
        return false;
    if (!o->kind_name[0] && list_kind) {
        size_t n = strlen(list_kind);

        if (n < 5 || n - 4 >= sizeof(o->kind_name) || strcmp(list_kind + n - 4, "List") != 0)
            return false;
        memcpy(o->kind_name, list_kind, n - 4);
        o->kind_name[n - 4] = '\0';
    }
    o->kind = agent_kube_kind_from_name(o->kind_name);
    if (!jcopy(o->namespace_, sizeof(o->namespace_), meta, "namespace", false) ||
        !jcopy(o->name, sizeof(o->name), meta, "name", false) ||
        !jcopy(o->uid, sizeof(o->uid), meta, "uid", true) ||
        !copy_owner(meta, o->owner_kind, o->owner_name, o->owner_uid))
        return false;
    object_counts(o, json_object_get(item, "spec"), json_object_get(item, "status"));
    return true;
}

void agent_kube_object_list_clear(agent_kube_object_list_t *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int agent_kube_parse_objects(const char *json, size_t len, const agent_kube_limits_t *limits,
                             agent_kube_object_list_t *out)
{
    size_t max_items = limit_or(limits ? limits->max_items : 0, DEFAULT_MAX_ITEMS);
    json_t *root, *items, *item;
    const char *list_kind;
    size_t i, n;

    memset(out, 0, sizeof(*out));
    root = load(json, len);
    items = items_of(root, out->resource_version, sizeof(out->resource_version));
    if (!items) {
        json_decref(root);
        return -EINVAL;
    }
    list_kind = jstr(root, "kind");
    n = json_array_size(items) < max_items ? json_array_size(items) : max_items;
    out->dropped_items = json_array_size(items) - n;
    if (n && !(out->items = calloc(n, sizeof(*out->items)))) {
        json_decref(items);
        json_decref(root);
        return -ENOMEM;
    }
    json_array_foreach(items, i, item)
    {
        if (i >= n)
            break;
        if (parse_object(&out->items[out->n_items], item, list_kind))
            out->n_items++;
        else
            out->dropped_items++;
    }
    json_decref(items);
    json_decref(root);
    return 0;
}

/* --- HorizontalPodAutoscalers (autoscaling/v2) ------------------------------- */

static void hpa_add_metric(agent_kube_hpa_t *h, const char *name)
{
    size_t i, n;

    if (!name || h->n_metrics >= AGENT_KUBE_HPA_MAX_METRICS)
        return;
    n = strlen(name);
    if (n == 0 || n >= AGENT_KUBE_METRIC_NAME_MAX)
        return;
    for (i = 0; i < h->n_metrics; i++)
        if (strcmp(h->metric_names[i], name) == 0)
            return;
    memcpy(h->metric_names[h->n_metrics++], name, n + 1);
}

/* One spec.metrics[] entry: Resource and ContainerResource name a resource
 * ("cpu", "memory") with a target; Pods, Object and External name a metric. */
static void hpa_metric(agent_kube_hpa_t *h, const json_t *m)
{
    static const char *const by_metric[] = {"pods", "object", "external"};
    const json_t *res = json_object_get(m, "resource");
    const char *name;
    size_t i;

    if (!res)
        res = json_object_get(m, "containerResource");
    if (res) {
        const json_t *target = json_object_get(res, "target");
        const char *type = jstr(target, "type");
        uint32_t pct = juint(target, "averageUtilization", 0);

        name = jstr(res, "name");
        hpa_add_metric(h, name);
        if (!name || !type || strcmp(type, "Utilization") != 0 || pct == 0)
            return;
        if (strcmp(name, "cpu") == 0 && !h->target_cpu_utilization_percent)
            h->target_cpu_utilization_percent = pct;
        else if (strcmp(name, "memory") == 0 && !h->target_memory_utilization_percent)
            h->target_memory_utilization_percent = pct;
        return;
    }
    for (i = 0; i < sizeof(by_metric) / sizeof(by_metric[0]); i++) {
        const json_t *src = json_object_get(m, by_metric[i]);

        if (src)
            hpa_add_metric(h, jstr(json_object_get(src, "metric"), "name"));
    }
}

static bool parse_hpa(agent_kube_hpa_t *h, const json_t *item)
{
    const json_t *meta = json_object_get(item, "metadata");
    const json_t *spec = json_object_get(item, "spec");
    const json_t *ref = json_object_get(spec, "scaleTargetRef");
    const json_t *metrics = json_object_get(spec, "metrics");
    const json_t *m;
    size_t i;

    memset(h, 0, sizeof(*h));
    if (!jcopy(h->namespace_, sizeof(h->namespace_), meta, "namespace", false) ||
        !jcopy(h->name, sizeof(h->name), meta, "name", false) ||
        !jcopy(h->target_kind, sizeof(h->target_kind), ref, "kind", false) ||
        !jcopy(h->target_name, sizeof(h->target_name), ref, "name", false))
        return false;
    h->min_replicas = juint(spec, "minReplicas", 1);
    h->max_replicas = juint(spec, "maxReplicas", 0);
    json_array_foreach(metrics, i, m) hpa_metric(h, m);
    /* autoscaling/v2 defaults an HPA without metrics to 80 % CPU. */
    if (!json_array_size(metrics)) {
        hpa_add_metric(h, "cpu");
        h->target_cpu_utilization_percent = 80;
    }
    return true;
}

void agent_kube_hpa_list_clear(agent_kube_hpa_list_t *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int agent_kube_parse_hpas(const char *json, size_t len, const agent_kube_limits_t *limits,
                          agent_kube_hpa_list_t *out)
{
    size_t max_items = limit_or(limits ? limits->max_items : 0, DEFAULT_MAX_ITEMS);
    json_t *root, *items, *item;
    size_t i, n;

    memset(out, 0, sizeof(*out));
    root = load(json, len);
    items = items_of(root, out->resource_version, sizeof(out->resource_version));
    if (!items) {
        json_decref(root);
        return -EINVAL;
    }
    n = json_array_size(items) < max_items ? json_array_size(items) : max_items;
    out->dropped_items = json_array_size(items) - n;
    if (n && !(out->items = calloc(n, sizeof(*out->items)))) {
        json_decref(items);
        json_decref(root);
        return -ENOMEM;
    }
    json_array_foreach(items, i, item)
    {
        if (i >= n)
            break;
        if (parse_hpa(&out->items[out->n_items], item))
            out->n_items++;
        else
            out->dropped_items++;
    }
    json_decref(items);
    json_decref(root);
    return 0;
}

const agent_kube_hpa_t *agent_kube_hpa_for(const agent_kube_hpa_t *hpas, size_t n, const char *ns,
                                           agent_kube_kind_t kind, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (agent_kube_kind_from_name(hpas[i].target_kind) == kind &&
            strcmp(hpas[i].namespace_, ns) == 0 && strcmp(hpas[i].target_name, name) == 0)
            return &hpas[i];
    return NULL;
}

/* --- Node ------------------------------------------------------------------- */

int agent_kube_parse_node(const char *json, size_t len, agent_kube_node_t *out)
{
    json_t *root = load(json, len);
    const json_t *meta = json_object_get(root, "metadata");
    const json_t *labels = json_object_get(meta, "labels");
    const json_t *status = json_object_get(root, "status");
    const json_t *cap = json_object_get(status, "capacity");
    const json_t *alloc = json_object_get(status, "allocatable");
    const json_t *info = json_object_get(status, "nodeInfo");
    bool ok;

    memset(out, 0, sizeof(*out));
    ok = json_is_object(root) && jcopy(out->name, sizeof(out->name), meta, "name", false);
    if (ok) {
        out->cpu_capacity_cores = jquantity(cap, "cpu");
        out->cpu_allocatable_cores = jquantity(alloc, "cpu");
        out->memory_capacity_bytes = jbytes(cap, "memory");
        out->memory_allocatable_bytes = jbytes(alloc, "memory");
        /* Optional strings: one too long for its field is left empty. */
        (void)jcopy(out->kernel_version, sizeof(out->kernel_version), info, "kernelVersion", true);
        (void)jcopy(out->kubelet_version, sizeof(out->kubelet_version), info, "kubeletVersion",
                    true);
        (void)jcopy(out->container_runtime_version, sizeof(out->container_runtime_version), info,
                    "containerRuntimeVersion", true);
        (void)jcopy(out->architecture, sizeof(out->architecture), info, "architecture", true);
        (void)jcopy(out->instance_type, sizeof(out->instance_type), labels,
                    "node.kubernetes.io/instance-type", true);
        (void)jcopy(out->zone, sizeof(out->zone), labels, "topology.kubernetes.io/zone", true);
        (void)jcopy(out->region, sizeof(out->region), labels, "topology.kubernetes.io/region",
                    true);
    }
    json_decref(root);
    return ok ? 0 : -EINVAL;
}

/* --- Owner resolution ---------------------------------------------------------- */

static void set_ref(agent_kube_workload_ref_t *out, agent_kube_kind_t kind, const char *name,
                    bool complete)
{
    size_t n = strlen(name);

    out->kind = kind;
    out->complete = complete;
    if (n >= sizeof(out->name))
        n = sizeof(out->name) - 1;
    memcpy(out->name, name, n);
    out->name[n] = '\0';
}

void agent_kube_resolve_owner(const agent_kube_pod_t *pod, agent_kube_find_fn find, void *data,
                              agent_kube_workload_ref_t *out)
{
    agent_kube_kind_t kind = agent_kube_kind_from_name(pod->owner_kind);
    const agent_kube_object_t *o;

    memset(out, 0, sizeof(*out));
    /* A bare pod, or a static (mirror) pod whose owner is its Node. */
    if (!pod->owner_kind[0] || strcmp(pod->owner_kind, "Node") == 0) {
        set_ref(out, AGENT_KUBE_KIND_POD, pod->name, true);
        return;
    }
    if (kind != AGENT_KUBE_KIND_REPLICA_SET && kind != AGENT_KUBE_KIND_JOB) {
        set_ref(out, kind, pod->owner_name, true);
        return;
    }
    o = find ? find(data, pod->namespace_, pod->owner_kind, pod->owner_name) : NULL;
    if (o && o->owner_kind[0]) {
        agent_kube_kind_t top = agent_kube_kind_from_name(o->owner_kind);
        bool expected =
            (kind == AGENT_KUBE_KIND_REPLICA_SET && top == AGENT_KUBE_KIND_DEPLOYMENT) ||
            (kind == AGENT_KUBE_KIND_JOB && top == AGENT_KUBE_KIND_CRON_JOB);

        /* An unexpected owner (an Argo Rollout owning a ReplicaSet) is the
         * workload too, with an unspecified kind. */
        set_ref(out, expected ? top : AGENT_KUBE_KIND_UNSPECIFIED, o->owner_name, true);
        return;
    }
    if (o) {
        set_ref(out, kind, pod->owner_name, true);
        return;
    }
    set_ref(out, kind, pod->owner_name, false);
    if (kind == AGENT_KUBE_KIND_REPLICA_SET && pod->template_hash[0]) {
        size_t n = strlen(out->name), h = strlen(pod->template_hash);

        if (n > h + 1 && out->name[n - h - 1] == '-' &&
            strcmp(out->name + n - h, pod->template_hash) == 0) {
            out->name[n - h - 1] = '\0';
            out->kind = AGENT_KUBE_KIND_DEPLOYMENT;
        }
    }
}
