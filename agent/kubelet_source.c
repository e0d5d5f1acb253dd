/* kubelet Summary API (see kubelet_source.h): the pure parser of
 * /stats/summary and its fetch, directly or through the API server proxy. */
#include "kubelet_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define DEFAULT_MAX_PODS 1024
#define DEFAULT_MAX_CONTAINERS 32

static bool copy_str(char *dst, size_t cap, const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t n;

    dst[0] = '\0';
    if (!s || (n = strlen(s)) >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* A non-negative integer field; *has set when present. */
static uint64_t u64(const json_t *o, const char *key, bool *has)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    if (has)
        *has = true;
    return (uint64_t)json_integer_value(v);
}

static int64_t when(const json_t *o, const char *key)
{
    int64_t ms = 0;

    if (agent_kube_time_parse(json_string_value(json_object_get(o, key)), &ms) < 0)
        return 0;
    return ms;
}

static void parse_usage(const json_t *stats, uint64_t *cpu_ns, uint64_t *ws, uint64_t *rss,
                        uint64_t *usage, bool *has_cpu, bool *has_mem, int64_t *at_ms)
{
    const json_t *cpu = json_object_get(stats, "cpu");
    const json_t *mem = json_object_get(stats, "memory");

    *cpu_ns = u64(cpu, "usageCoreNanoSeconds", has_cpu);
    *ws = u64(mem, "workingSetBytes", has_mem);
    *rss = u64(mem, "rssBytes", NULL);
    *usage = u64(mem, "usageBytes", NULL);
    *at_ms = when(cpu, "time");
    if (!*at_ms)
        *at_ms = when(mem, "time");
}

static bool parse_pod(agent_kubelet_pod_t *p, const json_t *item, size_t max_c, size_t *dropped)
{
    const json_t *ref = json_object_get(item, "podRef");
    const json_t *list = json_object_get(item, "containers");
    const json_t *cj;
    size_t i, n = json_array_size(list);

    memset(p, 0, sizeof(*p));
    if (!copy_str(p->namespace_, sizeof(p->namespace_), ref, "namespace") ||
        !copy_str(p->name, sizeof(p->name), ref, "name") ||
        !copy_str(p->uid, sizeof(p->uid), ref, "uid"))
        return false;
    if (n > max_c) {
        *dropped += n - max_c;
        n = max_c;
    }
    if (n && !(p->containers = calloc(n, sizeof(*p->containers))))
        return false;
    json_array_foreach(list, i, cj)
    {
        agent_kubelet_container_t *c = &p->containers[p->n_containers];

        if (i >= n)
            break;
        if (!copy_str(c->name, sizeof(c->name), cj, "name")) {
            (*dropped)++;
            continue;
        }
        c->start_ms = when(cj, "startTime");
        parse_usage(cj, &c->cpu_usage_core_ns, &c->memory_working_set_bytes, &c->memory_rss_bytes,
                    &c->memory_usage_bytes, &c->has_cpu, &c->has_memory, &c->at_ms);
        p->n_containers++;
    }
    return true;
}

void agent_kubelet_summary_clear(agent_kubelet_summary_t *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n_pods; i++)
        free(s->pods[i].containers);
    free(s->pods);
    memset(s, 0, sizeof(*s));
}

int agent_kubelet_parse_summary(const char *json, size_t len, const agent_kube_limits_t *limits,
                                agent_kubelet_summary_t *out)
{
    size_t max_pods = limits && limits->max_items ? limits->max_items : DEFAULT_MAX_PODS;
    size_t max_c =
        limits && limits->max_containers ? limits->max_containers : DEFAULT_MAX_CONTAINERS;
    json_t *root = json_loadb(json, len, 0, NULL);
    const json_t *node = json_object_get(root, "node");
    const json_t *pods = json_object_get(root, "pods");
    const json_t *item;
    bool has_cpu = false, has_mem = false;
    size_t i, n;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(node) || (pods && !json_is_array(pods))) {
        json_decref(root);
        return -EINVAL;
    }
    (void)copy_str(out->node_name, sizeof(out->node_name), node, "nodeName");
    parse_usage(node, &out->cpu_usage_core_ns, &out->memory_working_set_bytes,
                &out->memory_rss_bytes, &out->memory_usage_bytes, &has_cpu, &has_mem, &out->at_ms);
    out->cpu_usage_nano_cores = u64(json_object_get(node, "cpu"), "usageNanoCores", NULL);
    out->memory_available_bytes = u64(json_object_get(node, "memory"), "availableBytes", NULL);
    n = json_array_size(pods) < max_pods ? json_array_size(pods) : max_pods;
    out->dropped_pods = json_array_size(pods) - n;
    if (n && !(out->pods = calloc(n, sizeof(*out->pods)))) {
        json_decref(root);
        return -ENOMEM;
    }
    json_array_foreach(pods, i, item)
    {
        if (i >= n)
            break;
        if (parse_pod(&out->pods[out->n_pods], item, max_c, &out->dropped_containers))
            out->n_pods++;
        else
            out->dropped_pods++;
    }
    json_decref(root);
    return 0;
}

const agent_kubelet_container_t *agent_kubelet_find(const agent_kubelet_summary_t *s,
                                                    const char *pod_uid, const char *container)
{
    size_t i, j;

    for (i = 0; i < s->n_pods; i++) {
        if (strcmp(s->pods[i].uid, pod_uid) != 0)
            continue;
        for (j = 0; j < s->pods[i].n_containers; j++)
            if (strcmp(s->pods[i].containers[j].name, container) == 0)
                return &s->pods[i].containers[j];
    }
    return NULL;
}

int agent_kubelet_config(const agent_kube_config_t *api, const char *host, int port,
                         agent_kube_config_t *out)
{
    bool v6 = strchr(host, ':') != NULL;
    char buf[320];
    int r;

    memset(out, 0, sizeof(*out));
    if (!*host || strlen(host) > 255 || port <= 0 || port > 65535)
        return -EINVAL;
    r = agent_kube_config_copy(out, api);
    if (r < 0)
        return r;
    snprintf(buf, sizeof(buf), "https://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    free(out->server);
    out->server = strdup(buf);
    if (!out->server) {
        agent_kube_config_clear(out);
        return -ENOMEM;
    }
    return 0;
}

int agent_kubelet_fetch(agent_kube_client_t *c, agent_kubelet_mode_t mode, const char *node,
                        const agent_kube_limits_t *limits, agent_kubelet_summary_t *out)
{
    char path[AGENT_KUBE_NAME_MAX + 64];
    char *body = NULL;
    size_t len;
    int r;

    memset(out, 0, sizeof(*out));
    if (mode == AGENT_KUBELET_PROXY) {
        if (!node || !*node || strlen(node) >= AGENT_KUBE_NAME_MAX || strchr(node, '/') ||
            strchr(node, '?'))
            return -EINVAL;
        snprintf(path, sizeof(path), "/api/v1/nodes/%s/proxy/stats/summary", node);
    } else {
        snprintf(path, sizeof(path), "/stats/summary");
    }
    r = agent_kube_client_get(c, path, &body, &len, NULL);
    if (r < 0)
        return r;
    r = agent_kubelet_parse_summary(body, len, limits, out);
    free(body);
    return r;
}
