/* libFuzzer target for the Kubernetes JSON parsers of kopt-agent: every input
 * goes through the PodList, workload object, HPA, Node and kubelet summary
 * parsers (with small caps, so the caps' paths run too), owner resolution
 * over what parsed, and, as a string, the quantity and time parsers. Each
 * must give 0 or a clean error; never a crash, a leak or unbounded memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_meta.h"
#include "kubelet_source.h"

static const agent_kube_object_t *find(void *data, const char *ns, const char *kind,
                                       const char *name)
{
    const agent_kube_object_list_t *l = data;

    for (size_t i = 0; i < l->n_items; i++)
        if (!strcmp(l->items[i].namespace_, ns) && !strcmp(l->items[i].kind_name, kind) &&
            !strcmp(l->items[i].name, name))
            return &l->items[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agent_kube_limits_t lim = {.max_items = 16, .max_containers = 4};
    const char *json = (const char *)data;
    agent_kube_pod_list_t pods;
    agent_kube_object_list_t objs;
    agent_kube_hpa_list_t hpas;
    agent_kube_node_t node;
    agent_kubelet_summary_t sum;
    agent_kube_workload_ref_t ref;

    if (agent_kube_parse_objects(json, size, &lim, &objs) < 0)
        memset(&objs, 0, sizeof(objs));
    if (agent_kube_parse_pods(json, size, &lim, &pods) == 0) {
        for (size_t i = 0; i < pods.n_pods; i++)
            agent_kube_resolve_owner(&pods.pods[i], find, &objs, &ref);
        agent_kube_pod_list_clear(&pods);
    }
    if (agent_kube_parse_hpas(json, size, &lim, &hpas) == 0) {
        for (size_t i = 0; i < objs.n_items; i++)
            (void)agent_kube_hpa_for(hpas.items, hpas.n_items, objs.items[i].namespace_,
                                     objs.items[i].kind, objs.items[i].name);
        agent_kube_hpa_list_clear(&hpas);
    }
    agent_kube_object_list_clear(&objs);
    (void)agent_kube_parse_node(json, size, &node);
    if (agent_kubelet_parse_summary(json, size, &lim, &sum) == 0)
        agent_kubelet_summary_clear(&sum);
    if (size < 256) {
        char s[256];
        double v;
        uint64_t b;
        int64_t t;

        memcpy(s, data, size);
        s[size] = '\0';
        (void)agent_kube_quantity_parse(s, &v);
        (void)agent_kube_quantity_bytes(s, &b);
        (void)agent_kube_time_parse(s, &t);
    }
    return 0;
}
