/* Unit tests for agent/kube_meta.c and the kubelet summary parser: Kubernetes
 * quantities and times, the recorded PodList, ReplicaSet/Job/workload lists,
 * HPAs (autoscaling/v2), a Node and a /stats/summary from
 * tests/fixtures/kube/, owner resolution, and the caps. argv[1] is the
 * source root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_meta.h"
#include "kubelet_source.h"

static const char *src_root = ".";

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    char *buf = malloc(1 << 20);

    snprintf(path, sizeof(path), "%s/tests/fixtures/kube/%s", src_root, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

static void quantities_cover_the_kubernetes_grammar(void **state)
{
    static const struct {
        const char *s;
        double v;
    } ok[] = {
        {"250m", 0.25},
        {"1", 1},
        {"1.5", 1.5},
        {"0.5", 0.5},
        {"100n", 1e-7},
        {"10u", 1e-5},
        {"512Mi", 536870912},
        {"1Gi", 1073741824},
        {"1G", 1e9},
        {"1e3", 1000},
        {"1E3", 1000},
        {"2k", 2000},
        {"1.5Ki", 1536},
        {"1e-3", 0.001},
        {"+3", 3},
        {"1E", 1e18},
        {"1Ei", 0x1p60},
        {".5", 0.5},
        {"15896064Ki", 15896064.0 * 1024},
        {"3920m", 3.92},
    };
    static const char *const bad[] = {"",     "m",  "1x",    "-1",   "1 ",  " 1", "inf", "nan",
                                      "0x10", "1e", "1.2.3", "1Mi2", "1e+", "Ki", "1ki", "1e3Mi"};
    uint64_t b;
    double v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(agent_kube_quantity_parse(ok[i].s, &v), 0);
        assert_true(v > ok[i].v * 0.999999 && v < ok[i].v * 1.000001 + 1e-12);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(agent_kube_quantity_parse(bad[i], &v), -EINVAL);
    assert_int_equal(agent_kube_quantity_parse(NULL, &v), -EINVAL);
    assert_int_equal(agent_kube_quantity_parse("9Ei", &v), -ERANGE);
    assert_int_equal(agent_kube_quantity_parse("1e400", &v), -ERANGE);
    /* Memory rounds up to whole bytes. */
    assert_int_equal(agent_kube_quantity_bytes("1500m", &b), 0);
    assert_int_equal(b, 2);
    assert_int_equal(agent_kube_quantity_bytes("512Mi", &b), 0);
    assert_int_equal(b, 536870912);
}

static void times_are_rfc3339(void **state)
{
    int64_t ms;

    (void)state;
    assert_int_equal(agent_kube_time_parse("2024-03-01T10:15:30Z", &ms), 0);
    assert_int_equal(ms, 1709288130000LL);
    assert_int_equal(agent_kube_time_parse("2024-03-01T10:15:30.250Z", &ms), 0);
    assert_int_equal(ms, 1709288130250LL);
    assert_int_equal(agent_kube_time_parse("2024-03-01T11:15:30+01:00", &ms), 0);
    assert_int_equal(ms, 1709288130000LL);
    assert_int_equal(agent_kube_time_parse("2024-03-01 10:15:30", &ms), -EINVAL);
    assert_int_equal(agent_kube_time_parse("2024-03-01T10:15:30Zjunk", &ms), -EINVAL);
    assert_int_equal(agent_kube_time_parse(NULL, &ms), -EINVAL);
}

static const agent_kube_pod_t *pod_named(const agent_kube_pod_list_t *l, const char *name)
{
    for (size_t i = 0; i < l->n_pods; i++)
        if (strcmp(l->pods[i].name, name) == 0)
            return &l->pods[i];
    fail_msg("no pod %s", name);
    return NULL;
}

static void podlist_gives_resources_states_and_ids(void **state)
{
    agent_kube_pod_list_t l;
    const agent_kube_pod_t *p;
    size_t len;
    char *json = fixture("pods.json", &len);

    (void)state;
    assert_int_equal(agent_kube_parse_pods(json, len, NULL, &l), 0);
    assert_int_equal(l.n_pods, 7);
    assert_int_equal(l.dropped_items, 0);
    assert_string_equal(l.resource_version, "918273");

    p = pod_named(&l, "web-7d9f8b6c5d-x2x7q");
    assert_string_equal(p->namespace_, "shop");
    assert_string_equal(p->uid, "0b6e4b8e-2f1c-4d3a-9a57-1c2d3e4f5a6b");
    assert_string_equal(p->owner_kind, "ReplicaSet");
    assert_string_equal(p->owner_name, "web-7d9f8b6c5d");
    assert_string_equal(p->template_hash, "7d9f8b6c5d");
    assert_int_equal(p->qos, AGENT_KUBE_QOS_BURSTABLE);
    assert_int_equal(p->n_containers, 2);
    assert_string_equal(p->containers[0].name, "app");
    assert_true(p->containers[0].cpu_request_cores == 0.25);
    assert_true(p->containers[0].cpu_limit_cores == 1.0);
    assert_int_equal(p->containers[0].memory_request_bytes, 256u << 20);
    assert_int_equal(p->containers[0].memory_limit_bytes, 512u << 20);
    assert_int_equal(p->containers[0].restart_count, 3);
    assert_true(p->containers[0].last_oom);
    assert_int_equal(p->containers[0].last_oom_finished_ms, 1709288130000LL);
    assert_string_equal(
        p->containers[0].id,
        "containerd://4f1c9a8b7e6d5c4b3a29181716151413121110f0e0d0c0b0a090807060504030");
    assert_false(p->containers[1].last_oom);
    assert_int_equal(p->containers[1].memory_limit_bytes, 1u << 30);

    p = pod_named(&l, "report-28484460-7kq2m");
    assert_int_equal(p->qos, AGENT_KUBE_QOS_BEST_EFFORT);
    assert_true(p->containers[0].cpu_request_cores == 0);
    assert_int_equal(p->containers[0].memory_limit_bytes, 0);
    assert_true(strncmp(p->containers[0].id, "cri-o://", 8) == 0);

    p = pod_named(&l, "postgres-0");
    assert_int_equal(p->qos, AGENT_KUBE_QOS_GUARANTEED);
    assert_true(p->containers[0].cpu_limit_cores == 1.5);
    assert_int_equal(p->containers[0].memory_limit_bytes, 1000000000u);
    assert_false(p->containers[0].last_oom); /* "Completed" is not an OOM kill */
    assert_true(strncmp(p->containers[0].id, "docker://", 9) == 0);

    /* Limits only: the API defaults requests to the limits. */
    p = pod_named(&l, "debug");
    assert_int_equal(p->owner_kind[0], '\0');
    assert_true(p->containers[0].cpu_request_cores == 0.5);
    assert_int_equal(p->containers[0].memory_request_bytes, 64u << 20);

    p = pod_named(&l, "node-exporter-8xk2p");
    assert_int_equal(p->n_containers, 2);
    assert_false(p->containers[0].init);
    assert_true(p->containers[1].init);
    assert_string_equal(p->containers[1].name, "init-textfile");
    assert_int_equal(p->containers[1].memory_request_bytes, 16u << 20);

    p = pod_named(&l, "api-5c6d7e8f9-qwert"); /* Pending: no statuses yet */
    assert_int_equal(p->containers[0].id[0], '\0');
    assert_int_equal(p->containers[0].memory_request_bytes, 1000000000u);

    agent_kube_pod_list_clear(&l);
    free(json);
}

static void caps_count_what_does_not_fit(void **state)
{
    agent_kube_limits_t lim = {.max_items = 3, .max_containers = 1};
    agent_kube_pod_list_t l;
    size_t len;
    char *json = fixture("pods.json", &len);

    (void)state;
    assert_int_equal(agent_kube_parse_pods(json, len, &lim, &l), 0);
    assert_int_equal(l.n_pods, 3);
    assert_int_equal(l.dropped_items, 4);
    assert_int_equal(l.pods[0].n_containers, 1);
    assert_int_equal(l.dropped_containers, 1); /* web's istio-proxy */
    agent_kube_pod_list_clear(&l);
    free(json);
}

static void bad_bodies_are_clean_errors(void **state)
{
    static const char *const bodies[] = {"",           "null", "[]", "{\"items\": 3}",
                                         "{\"kind\":", "42",   "{}"};
    agent_kube_pod_list_t pl;
    agent_kube_object_list_t ol;
    agent_kube_hpa_list_t hl;
    agent_kube_node_t node;
    agent_kubelet_summary_t sum;
    const char *one_bad = "{\"items\":[{\"metadata\":{\"name\":\"x\"}},"
                          "{\"metadata\":{\"name\":\"ok\",\"namespace\":\"n\",\"uid\":\"u\"}}]}";

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t n = strlen(bodies[i]);

        assert_int_equal(agent_kube_parse_pods(bodies[i], n, NULL, &pl), -EINVAL);
        assert_int_equal(agent_kube_parse_objects(bodies[i], n, NULL, &ol), -EINVAL);
        assert_int_equal(agent_kube_parse_hpas(bodies[i], n, NULL, &hl), -EINVAL);
        assert_int_equal(agent_kube_parse_node(bodies[i], n, &node), -EINVAL);
        assert_int_equal(agent_kubelet_parse_summary(bodies[i], n, NULL, &sum), -EINVAL);
    }
    /* A pod without namespace or uid is skipped and counted, not fatal. */
    assert_int_equal(agent_kube_parse_pods(one_bad, strlen(one_bad), NULL, &pl), 0);
    assert_int_equal(pl.n_pods, 1);
    assert_int_equal(pl.dropped_items, 1);
    agent_kube_pod_list_clear(&pl);
}

/* A find callback over the recorded lists. */
typedef struct {
    agent_kube_object_list_t lists[3];
} objects_t;

static const agent_kube_object_t *find(void *data, const char *ns, const char *kind,
                                       const char *name)
{
    objects_t *o = data;

    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < o->lists[l].n_items; i++) {
            const agent_kube_object_t *x = &o->lists[l].items[i];

            if (!strcmp(x->namespace_, ns) && !strcmp(x->kind_name, kind) && !strcmp(x->name, name))
                return x;
        }
    return NULL;
}

static void owners_resolve_to_the_top_workload(void **state)
{
    static const struct {
        const char *pod;
        agent_kube_kind_t kind;
        const char *name;
        bool complete;
    } want[] = {
        {"web-7d9f8b6c5d-x2x7q", AGENT_KUBE_KIND_DEPLOYMENT, "web", true},
        {"report-28484460-7kq2m", AGENT_KUBE_KIND_CRON_JOB, "report", true},
        {"postgres-0", AGENT_KUBE_KIND_STATEFUL_SET, "postgres", true},
        {"debug", AGENT_KUBE_KIND_POD, "debug", true},
        {"node-exporter-8xk2p", AGENT_KUBE_KIND_DAEMON_SET, "node-exporter", true},
        {"api-5c6d7e8f9-qwert", AGENT_KUBE_KIND_DEPLOYMENT, "api", false},     /* RS unknown */
        {"kube-proxy-node-1", AGENT_KUBE_KIND_POD, "kube-proxy-node-1", true}, /* static */
    };
    static const char *const files[] = {"replicasets.json", "jobs.json", "workloads.json"};
    objects_t o;
    agent_kube_pod_list_t pods;
    agent_kube_workload_ref_t ref;
    size_t len;
    char *json;

    (void)state;
    for (int i = 0; i < 3; i++) {
        json = fixture(files[i], &len);
        assert_int_equal(agent_kube_parse_objects(json, len, NULL, &o.lists[i]), 0);
        free(json);
    }
    /* Items of typed lists take their kind from the list. */
    assert_int_equal(o.lists[0].n_items, 2);
    assert_string_equal(o.lists[0].items[0].kind_name, "ReplicaSet");
    assert_string_equal(o.lists[0].items[0].owner_kind, "Deployment");
    assert_string_equal(o.lists[0].items[0].owner_name, "web");
    assert_int_equal(o.lists[0].items[1].replicas, 2);
    assert_int_equal(o.lists[0].items[1].ready_replicas, 1);
    assert_string_equal(o.lists[1].items[0].owner_kind, "CronJob");
    assert_int_equal(o.lists[1].items[1].replicas, 3);
    assert_int_equal(o.lists[2].n_items, 4);
    assert_int_equal(o.lists[2].items[0].kind, AGENT_KUBE_KIND_DEPLOYMENT);
    assert_int_equal(o.lists[2].items[0].replicas, 4);
    assert_int_equal(o.lists[2].items[0].ready_replicas, 3);
    assert_int_equal(o.lists[2].items[2].kind, AGENT_KUBE_KIND_DAEMON_SET);
    assert_int_equal(o.lists[2].items[2].replicas, 12);
    assert_int_equal(o.lists[2].items[2].ready_replicas, 11);
    assert_int_equal(o.lists[2].items[3].replicas, 1); /* one active Job */

    json = fixture("pods.json", &len);
    assert_int_equal(agent_kube_parse_pods(json, len, NULL, &pods), 0);
    free(json);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        agent_kube_resolve_owner(pod_named(&pods, want[i].pod), find, &o, &ref);
        assert_int_equal(ref.kind, want[i].kind);
        assert_string_equal(ref.name, want[i].name);
        assert_int_equal(ref.complete, want[i].complete);
    }
    /* Without any owner objects: the Job stays a Job (incomplete). */
    agent_kube_resolve_owner(pod_named(&pods, "report-28484460-7kq2m"), NULL, NULL, &ref);
    assert_int_equal(ref.kind, AGENT_KUBE_KIND_JOB);
    assert_string_equal(ref.name, "report-28484460");
    assert_false(ref.complete);
    agent_kube_pod_list_clear(&pods);
    for (int i = 0; i < 3; i++)
        agent_kube_object_list_clear(&o.lists[i]);
}

static void hpas_give_targets_and_metric_names(void **state)
{
    agent_kube_hpa_list_t l;
    const agent_kube_hpa_t *h;
    size_t len;
    char *json = fixture("hpas.json", &len);

    (void)state;
    assert_int_equal(agent_kube_parse_hpas(json, len, NULL, &l), 0);
    assert_int_equal(l.n_items, 3);
    h = agent_kube_hpa_for(l.items, l.n_items, "shop", AGENT_KUBE_KIND_DEPLOYMENT, "web");
    assert_non_null(h);
    assert_string_equal(h->name, "web");
    assert_int_equal(h->min_replicas, 2);
    assert_int_equal(h->max_replicas, 10);
    assert_int_equal(h->target_cpu_utilization_percent, 70);
    assert_int_equal(h->target_memory_utilization_percent, 0); /* AverageValue, not % */
    assert_int_equal(h->n_metrics, 4);
    assert_string_equal(h->metric_names[0], "cpu");
    assert_string_equal(h->metric_names[1], "memory");
    assert_string_equal(h->metric_names[2], "http_requests_per_second");
    assert_string_equal(h->metric_names[3], "queue_depth");

    h = agent_kube_hpa_for(l.items, l.n_items, "db", AGENT_KUBE_KIND_STATEFUL_SET, "postgres");
    assert_non_null(h);
    assert_int_equal(h->min_replicas, 1); /* defaulted */
    assert_int_equal(h->target_memory_utilization_percent, 85);
    assert_int_equal(h->n_metrics, 2);
    assert_string_equal(h->metric_names[1], "replication_lag_seconds");

    /* No metrics: autoscaling/v2 defaults to 80 % CPU. */
    h = agent_kube_hpa_for(l.items, l.n_items, "shop", AGENT_KUBE_KIND_DEPLOYMENT, "checkout");
    assert_non_null(h);
    assert_int_equal(h->target_cpu_utilization_percent, 80);
    assert_null(
        agent_kube_hpa_for(l.items, l.n_items, "shop", AGENT_KUBE_KIND_STATEFUL_SET, "web"));
    agent_kube_hpa_list_clear(&l);
    free(json);
}

static void node_gives_facts(void **state)
{
    agent_kube_node_t n;
    size_t len;
    char *json = fixture("node.json", &len);

    (void)state;
    assert_int_equal(agent_kube_parse_node(json, len, &n), 0);
    assert_string_equal(n.name, "node-1");
    assert_true(n.cpu_capacity_cores == 4);
    assert_true(n.cpu_allocatable_cores > 3.919 && n.cpu_allocatable_cores < 3.921);
    assert_int_equal(n.memory_capacity_bytes, 15896064ull * 1024);
    assert_int_equal(n.memory_allocatable_bytes, 14879232ull * 1024);
    assert_string_equal(n.kernel_version, "6.1.0-18-amd64");
    assert_string_equal(n.kubelet_version, "v1.29.2");
    assert_string_equal(n.container_runtime_version, "containerd://1.7.13");
    assert_string_equal(n.architecture, "amd64");
    assert_string_equal(n.instance_type, "m6i.xlarge");
    assert_string_equal(n.zone, "eu-west-1b");
    assert_string_equal(n.region, "eu-west-1");
    free(json);
}

static void kubelet_summary_gives_usage(void **state)
{
    agent_kubelet_summary_t s;
    const agent_kubelet_container_t *c;
    agent_kube_limits_t lim = {.max_items = 2, .max_containers = 1};
    size_t len;
    char *json = fixture("summary.json", &len);

    (void)state;
    assert_int_equal(agent_kubelet_parse_summary(json, len, NULL, &s), 0);
    assert_string_equal(s.node_name, "node-1");
    assert_int_equal(s.cpu_usage_core_ns, 45678901234567ull);
    assert_int_equal(s.cpu_usage_nano_cores, 1234567890ull);
    assert_int_equal(s.memory_working_set_bytes, 6291456000ull);
    assert_int_equal(s.memory_available_bytes, 9876543210ull);
    assert_int_equal(s.n_pods, 3);
    c = agent_kubelet_find(&s, "0b6e4b8e-2f1c-4d3a-9a57-1c2d3e4f5a6b", "app");
    assert_non_null(c);
    assert_true(c->has_cpu && c->has_memory);
    assert_int_equal(c->cpu_usage_core_ns, 61234567890ull);
    assert_int_equal(c->memory_working_set_bytes, 268435456);
    assert_int_equal(c->memory_rss_bytes, 234881024);
    assert_int_equal(c->start_ms, 1709288131000LL);
    assert_int_equal(c->at_ms, 1709288400000LL);
    assert_null(agent_kubelet_find(&s, "0b6e4b8e-2f1c-4d3a-9a57-1c2d3e4f5a6b", "nope"));
    agent_kubelet_summary_clear(&s);

    assert_int_equal(agent_kubelet_parse_summary(json, len, &lim, &s), 0);
    assert_int_equal(s.n_pods, 2);
    assert_int_equal(s.dropped_pods, 1);
    assert_int_equal(s.dropped_containers, 1);
    agent_kubelet_summary_clear(&s);
    free(json);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantities_cover_the_kubernetes_grammar),
        cmocka_unit_test(times_are_rfc3339),
        cmocka_unit_test(podlist_gives_resources_states_and_ids),
        cmocka_unit_test(caps_count_what_does_not_fit),
        cmocka_unit_test(bad_bodies_are_clean_errors),
        cmocka_unit_test(owners_resolve_to_the_top_workload),
        cmocka_unit_test(hpas_give_targets_and_metric_names),
        cmocka_unit_test(node_gives_facts),
        cmocka_unit_test(kubelet_summary_gives_usage),
    };

    if (argc > 1)
        src_root = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
