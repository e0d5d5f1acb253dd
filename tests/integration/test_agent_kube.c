/* kopt-agent, the real binary, on the kubelet source with its Kubernetes
 * metadata, against the harness's replayed API server and kubelet
 * (tests/harness/kube_replay.c, the recorded responses of
 * tests/fixtures/kube/), reached through a kubeconfig that the test writes
 * (server URL, the dev CA of scripts/certs, a bearer token):
 *   - --once --output json with the Summary API read through the API
 *     server's node proxy, then directly from the kubelet: every container
 *     with its namespace, its workload resolved through its owners
 *     (Pod → ReplicaSet → Deployment, Pod → Job → CronJob, StatefulSet,
 *     DaemonSet, bare Pod), its requests and limits, its usage at the
 *     recorded rates, and the WorkloadFacts with the HPA;
 *   - streaming to the real kopt-ingest and nats-server: the batches in
 *     KOPT_METRICS carry the WorkloadFacts with the HPA and the NodeFacts
 *     (allocatable, versions, zone) from the API server.
 *
 * usage: test_agent_kube SRCDIR KOPT_AGENT KOPT_INGEST */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_env.h"
#include "harness.h"
#include "kopt/v1/metrics.pb-c.h"

#define NODE "node-1"
#define TOKEN "replay-token-5f1c2e"
#define AGENT_ID "dev-agent.node-1" /* agent-local.pem's id, then the node */
#define N_CONTAINERS 7              /* running in summary-all-pods.json */

static const char *src_dir, *agent_exe, *ingest_exe;
static char *certs_dir;
static char kubeconfig[700];
static kopt_test_kube_t *kube;

/* ------------------------------------------------------------------------ */
/* kopt-agent on the kubelet source                                         */

typedef enum { VIA_PROXY, VIA_KUBELET } via_t;

/* argv for kopt-agent with the kubelet source; `extra` (NULL-terminated)
 * comes last. Strings live in `buf`. */
static void agent_argv(char **argv, size_t cap, char buf[4][700], const itest_child_t *c, via_t via,
                       const char *const *extra)
{
    size_t n = 0;

    snprintf(buf[0], 700, "127.0.0.1:%d", c->admin_port);
    snprintf(buf[1], 700, "%s/spool", c->dir);
    argv[n++] = (char *)agent_exe;
    argv[n++] = "--source";
    argv[n++] = "kubelet";
    argv[n++] = "--kubeconfig";
    argv[n++] = kubeconfig;
    argv[n++] = "--node";
    argv[n++] = NODE;
    argv[n++] = "--window";
    argv[n++] = "2s";
    argv[n++] = "--sample-interval";
    argv[n++] = "500ms";
    argv[n++] = "--admin-listen";
    argv[n++] = buf[0];
    argv[n++] = "--spool-dir";
    argv[n++] = buf[1];
    argv[n++] = "--log-format";
    argv[n++] = "text";
    if (via == VIA_KUBELET) {
        argv[n++] = "--kubelet-mode";
        argv[n++] = "direct";
        argv[n++] = "--kubelet-url";
        argv[n++] = (char *)kopt_test_kube_url(kube);
    }
    for (; extra && *extra; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    assert_true(n < cap);
}

static void assert_no_token_in(const char *log_path)
{
    if (kopt_test_log_contains(log_path, TOKEN))
        fail_msg("the bearer token is in %s", log_path);
}

/* ------------------------------------------------------------------------ */
/* --once --output json                                                     */

static json_t *find_window(json_t *lines, const char *pod, const char *container)
{
    size_t i;
    json_t *o;

    json_array_foreach(lines, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "pod")), pod) == 0 &&
            strcmp(json_string_value(json_object_get(o, "container")), container) == 0)
            return o;
    }
    fail_msg("no window for %s/%s", pod, container);
    return NULL;
}

/* Runs --once and returns its JSON lines (one a window). */
static json_t *run_once(via_t via)
{
    itest_child_t *c = itest_child_new("kopt-itest-agent-kube-once", "once.log");
    char *argv[40], buf[4][700], line[8192];
    json_t *lines = json_array();
    FILE *f;

    itest_child_ports(c);
    {
        static const char *const once[] = {"--once", "--output", "json", NULL};

        agent_argv(argv, 40, buf, c, via, once);
    }
    itest_child_spawn(c, argv);
    itest_wait_exit_clean(c, 30, "kopt-agent --once");
    assert_no_token_in(c->log_path);
    f = fopen(c->log_path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        json_error_t err;
        json_t *o;

        if (line[0] != '{')
            continue; /* a --log-format text line */
        o = json_loads(line, 0, &err);
        if (!o)
            fail_msg("not JSON: %s (%s)", line, err.text);
        json_array_append_new(lines, o);
    }
    fclose(f);
    itest_child_free(c);
    fprintf(stderr, "  --once %s: %zu JSON window lines\n",
            via == VIA_PROXY ? "through the node proxy" : "directly from the kubelet",
            json_array_size(lines));
    return lines;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (!s)
        fail_msg("no string \"%s\"", key);
    return s;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_number(v))
        fail_msg("no number \"%s\"", key);
    return json_number_value(v);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-6 * (fabs(want) > 1 ? fabs(want) : 1))
        fail_msg("got %.9f, want %.9f", got, want);
}

/* Identity, owner, requests and limits of one window. */
static void assert_window(json_t *lines, const char *ns, const char *pod, const char *container,
                          const char *kind, const char *workload, double cpu_req, double cpu_lim,
                          double mem_req, double mem_lim)
{
    json_t *o = find_window(lines, pod, container);

    assert_string_equal(str(o, "cluster"), "local");
    assert_string_equal(str(o, "node"), NODE);
    assert_string_equal(str(o, "namespace"), ns);
    assert_string_equal(str(o, "workloadKind"), kind);
    assert_string_equal(str(o, "workloadName"), workload);
    assert_near(num(o, "cpuRequestCores"), cpu_req);
    assert_near(num(o, "cpuLimitCores"), cpu_lim);
    assert_near(num(o, "memoryRequestBytes"), mem_req);
    assert_near(num(o, "memoryLimitBytes"), mem_lim);
    assert_int_equal((int64_t)num(o, "windowEndMs") - (int64_t)num(o, "windowStartMs"), 2000);
    assert_true(num(o, "sampleCount") >= 2);
}

/* Usage at the rates the summary records (its counters grow at
 * usageNanoCores; memory stands still). */
static void assert_usage(json_t *lines, const char *pod, const char *container, double cores,
                         double working_set, double rss)
{
    json_t *o = find_window(lines, pod, container);

    assert_near(num(o, "cpuUsageMeanCores"), cores);
    assert_near(num(o, "cpuUsagePeakCores"), cores);
    assert_near(num(o, "memoryWorkingSetPeakBytes"), working_set);
    assert_near(num(o, "memoryWorkingSetLastBytes"), working_set);
    assert_near(num(o, "memoryRssPeakBytes"), rss);
}

static void assert_every_container(json_t *lines)
{
    const double mi = 1024.0 * 1024.0;

    assert_int_equal(json_array_size(lines), N_CONTAINERS);
    assert_window(lines, "shop", "web-7d9f8b6c5d-x2x7q", "app", "WORKLOAD_KIND_DEPLOYMENT", "web",
                  0.25, 1, 256 * mi, 512 * mi);
    assert_window(lines, "shop", "web-7d9f8b6c5d-x2x7q", "istio-proxy", "WORKLOAD_KIND_DEPLOYMENT",
                  "web", 0.1, 2, 128 * mi, 1024 * mi);
    assert_window(lines, "shop", "report-28484460-7kq2m", "report", "WORKLOAD_KIND_CRON_JOB",
                  "report", 0, 0, 0, 0);
    assert_window(lines, "db", "postgres-0", "postgres", "WORKLOAD_KIND_STATEFUL_SET", "postgres",
                  1.5, 1.5, 1e9, 1e9);
    /* Only limits in the spec: the requests are the limits, as Kubernetes defaults them. */
    assert_window(lines, "default", "debug", "debug", "WORKLOAD_KIND_POD", "debug", 0.5, 0.5,
                  64 * mi, 64 * mi);
    assert_window(lines, "monitoring", "node-exporter-8xk2p", "node-exporter",
                  "WORKLOAD_KIND_DAEMON_SET", "node-exporter", 0.102, 0, 180 * mi, 180 * mi);
    /* A static pod: its owner is the Node, so the pod is the workload. */
    assert_window(lines, "kube-system", "kube-proxy-node-1", "kube-proxy", "WORKLOAD_KIND_POD",
                  "kube-proxy-node-1", 0.1, 0, 0, 0);
    assert_usage(lines, "web-7d9f8b6c5d-x2x7q", "app", 0.187654321, 268435456, 234881024);
    assert_usage(lines, "postgres-0", "postgres", 0.812345678, 734003200, 629145600);
    assert_usage(lines, "report-28484460-7kq2m", "report", 0.95, 398458880, 377487360);
    assert_string_equal(str(find_window(lines, "web-7d9f8b6c5d-x2x7q", "app"), "containerId"),
                        "containerd://"
                        "4f1c9a8b7e6d5c4b3a29181716151413121110f0e0d0c0b0a090807060504030");
    assert_string_equal(str(find_window(lines, "postgres-0", "postgres"), "podUid"),
                        "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9");
}

static void assert_workload_facts(json_t *lines)
{
    json_t *web = json_object_get(find_window(lines, "web-7d9f8b6c5d-x2x7q", "app"), "workload");
    json_t *pg = json_object_get(find_window(lines, "postgres-0", "postgres"), "workload");
    json_t *ds =
        json_object_get(find_window(lines, "node-exporter-8xk2p", "node-exporter"), "workload");
    json_t *hpa = json_object_get(web, "hpa"), *names = json_object_get(hpa, "metricNames");

    assert_non_null(web);
    assert_int_equal((int)num(web, "replicas"), 4);
    assert_int_equal((int)num(web, "readyReplicas"), 3);
    assert_string_equal(str(web, "qosClass"), "QOS_CLASS_BURSTABLE");
    assert_non_null(hpa);
    assert_string_equal(str(hpa, "name"), "web");
    assert_int_equal((int)num(hpa, "minReplicas"), 2);
    assert_int_equal((int)num(hpa, "maxReplicas"), 10);
    assert_int_equal((int)num(hpa, "targetCpuUtilizationPercent"), 70);
    assert_int_equal((int)num(hpa, "targetMemoryUtilizationPercent"), 0); /* AverageValue */
    assert_int_equal(json_array_size(names), 4);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "cpu");
    assert_string_equal(json_string_value(json_array_get(names, 2)), "http_requests_per_second");
    assert_string_equal(json_string_value(json_array_get(names, 3)), "queue_depth");

    assert_non_null(pg);
    assert_int_equal((int)num(pg, "replicas"), 3);
    assert_string_equal(str(pg, "qosClass"), "QOS_CLASS_GUARANTEED");
    assert_string_equal(str(json_object_get(pg, "hpa"), "name"), "postgres-hpa");
    assert_int_equal((int)num(json_object_get(pg, "hpa"), "minReplicas"), 1); /* the default */
    assert_int_equal((int)num(json_object_get(pg, "hpa"), "maxReplicas"), 5);

    assert_non_null(ds);
    assert_int_equal((int)num(ds, "replicas"), 12);
    assert_int_equal((int)num(ds, "readyReplicas"), 11);
    assert_null(json_object_get(ds, "hpa"));
}

static void once_through_the_node_proxy(void **state)
{
    kopt_test_kube_stats_t before, after;
    json_t *lines;

    (void)state;
    kopt_test_kube_stats(kube, &before);
    lines = run_once(VIA_PROXY);
    kopt_test_kube_stats(kube, &after);
    assert_every_container(lines);
    assert_workload_facts(lines);
    fprintf(stderr, "  requests: %d summaries through the proxy, %d direct, %d pod lists\n",
            after.summaries_proxy - before.summaries_proxy,
            after.summaries_direct - before.summaries_direct, after.pod_lists - before.pod_lists);
    assert_true(after.summaries_proxy - before.summaries_proxy >= 2);
    assert_int_equal(after.summaries_direct, before.summaries_direct);
    assert_true(after.pod_lists > before.pod_lists);
    assert_true(after.hpa_lists > before.hpa_lists);
    assert_true(after.node_gets > before.node_gets);
    assert_int_equal(after.unauthorized, before.unauthorized);
    json_decref(lines);
}

static void once_directly_from_the_kubelet(void **state)
{
    kopt_test_kube_stats_t before, after;
    json_t *lines;

    (void)state;
    kopt_test_kube_stats(kube, &before);
    lines = run_once(VIA_KUBELET);
    kopt_test_kube_stats(kube, &after);
    assert_every_container(lines);
    assert_workload_facts(lines);
    assert_true(after.summaries_direct - before.summaries_direct >= 2);
    assert_int_equal(after.summaries_proxy, before.summaries_proxy);
    assert_int_equal(after.unauthorized, before.unauthorized);
    json_decref(lines);
}

/* ------------------------------------------------------------------------ */
/* Streaming: the facts in what lands in KOPT_METRICS                        */

static itest_child_t *agent_start(const itest_child_t *ing)
{
    itest_child_t *c = itest_child_new("kopt-itest-agent-kube", "agent.log");
    char *argv[40], buf[4][700], ca[600], cert[600], key[600];
    const char *const extra[] = {"--ingest", ing->target, "--tls-ca", ca,  "--tls-cert",
                                 cert,       "--tls-key", key,        NULL};

    snprintf(ca, sizeof(ca), "%s/ca.pem", certs_dir);
    snprintf(cert, sizeof(cert), "%s/agent-local.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/agent-local-key.pem", certs_dir);
    itest_child_ports(c);
    agent_argv(argv, 40, buf, c, VIA_PROXY, extra);
    itest_child_spawn(c, argv);
    itest_wait_http(c, "/readyz", "kopt-agent (streaming to ingest)");
    return c;
}

static const Kopt__V1__WorkloadFacts *find_facts(const Kopt__V1__MetricBatch *b, const char *ns,
                                                 Kopt__V1__WorkloadKind kind, const char *name)
{
    for (size_t i = 0; i < b->n_workloads; i++)
        if (b->workloads[i]->kind == kind && strcmp(b->workloads[i]->name, name) == 0 &&
            strcmp(b->workloads[i]->namespace_, ns) == 0)
            return b->workloads[i];
    return NULL;
}

/* A batch with windows, as stored: its node and workload facts. */
static void assert_batch_facts(const Kopt__V1__MetricBatch *b)
{
    const Kopt__V1__NodeFacts *nf = b->node_facts;
    const Kopt__V1__WorkloadFacts *web, *pg, *cj;

    assert_string_equal(b->cluster, "local");
    assert_string_equal(b->node, NODE);
    assert_int_equal(b->n_windows, N_CONTAINERS);
    assert_non_null(nf);
    assert_near(nf->cpu_capacity_cores, 4);
    assert_near(nf->cpu_allocatable_cores, 3.92);
    assert_int_equal(nf->memory_capacity_bytes, 15896064ull * 1024);
    assert_int_equal(nf->memory_allocatable_bytes, 14879232ull * 1024);
    assert_string_equal(nf->kubelet_version, "v1.29.2");
    assert_string_equal(nf->kernel_version, "6.1.0-18-amd64");
    assert_string_equal(nf->container_runtime_version, "containerd://1.7.13");
    assert_string_equal(nf->architecture, "amd64");
    assert_string_equal(nf->instance_type, "m6i.xlarge");
    assert_string_equal(nf->zone, "eu-west-1b");
    assert_string_equal(nf->region, "eu-west-1");
    assert_int_equal(nf->metric_source, KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_KUBELET);

    /* One WorkloadFacts a workload: web has two containers here. */
    assert_int_equal(b->n_workloads, 6);
    web = find_facts(b, "shop", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT, "web");
    assert_non_null(web);
    assert_int_equal(web->replicas, 4);
    assert_int_equal(web->ready_replicas, 3);
    assert_int_equal(web->qos_class, KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE);
    assert_non_null(web->hpa);
    assert_string_equal(web->hpa->name, "web");
    assert_int_equal(web->hpa->min_replicas, 2);
    assert_int_equal(web->hpa->max_replicas, 10);
    assert_int_equal(web->hpa->target_cpu_utilization_percent, 70);
    assert_int_equal(web->hpa->n_metric_names, 4);
    assert_string_equal(web->hpa->metric_names[1], "memory");
    pg = find_facts(b, "db", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET, "postgres");
    assert_non_null(pg);
    assert_non_null(pg->hpa);
    assert_int_equal(pg->hpa->max_replicas, 5);
    cj = find_facts(b, "shop", KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_CRON_JOB, "report");
    assert_non_null(cj);
    assert_null(cj->hpa);
    assert_int_equal(cj->qos_class, KOPT__V1__QOS_CLASS__QOS_CLASS_BEST_EFFORT);
}

static void facts_stream_into_jetstream(void **state)
{
    kopt_test_nats_t *nats = itest_nats_or_skip();
    itest_child_t *ing = itest_ingest_start(ingest_exe, certs_dir, nats);
    itest_child_t *agent = agent_start(ing);
    double until = kopt_test_now() + 30;
    itest_stream_t s = {0};
    size_t checked = 0;

    (void)state;
    /* Two batches with windows, stored and acked. */
    while (kopt_test_now() < until) {
        if (itest_stream_count(nats) >= 2 &&
            itest_metric(agent, "kopt_agent_acked_batches_total") >= 2)
            break;
        usleep(200000);
    }
    assert_int_equal(itest_stream_read(nats, &s), 0);
    assert_true(s.n >= 2);
    itest_assert_unique_ids(&s, AGENT_ID);
    for (size_t i = 0; i < s.n; i++) {
        Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, s.m[i].len, s.m[i].data);

        assert_non_null(b);
        assert_batch_facts(b);
        kopt__v1__metric_batch__free_unpacked(b, NULL);
        checked++;
    }
    fprintf(stderr,
            "  %zu batches in KOPT_METRICS, each with %d windows, 6 WorkloadFacts (HPAs of web "
            "and postgres) and the Node's facts; metadata refreshes %.0f, kubelet reads %.0f\n",
            checked, N_CONTAINERS, itest_metric(agent, "kopt_agent_metadata_refreshes_total"),
            itest_metric(agent, "kopt_agent_kubelet_fetches_total"));
    assert_int_equal(itest_metric(agent, "kopt_agent_windows_partial_total"), 0);
    assert_int_equal(itest_metric(agent, "kopt_agent_kubelet_errors_total"), 0);
    itest_stream_free(&s);
    itest_stop_clean(agent, "kopt-agent");
    assert_no_token_in(agent->log_path);
    itest_child_free(agent);
    itest_child_free(ing);
    kopt_test_nats_free(nats);
}

/* ------------------------------------------------------------------------ */
/* --api-server http:// (issue 15)                                          */

/* kopt-agent --api-server http://... with a token file; `extra` last. */
static itest_child_t *start_plain_http_agent(const char *const *extra)
{
    itest_child_t *c = itest_child_new("kopt-itest-agent-kube-http", "agent.log");
    char url[64], admin[64], spool[700], token[700], *argv[32];
    size_t n = 0;
    FILE *f;

    itest_child_ports(c);
    /* c->port: free, nothing listens; the agent must not even try. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", c->port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", c->admin_port);
    snprintf(spool, sizeof(spool), "%s/spool", c->dir);
    snprintf(token, sizeof(token), "%s/token", c->dir);
    f = fopen(token, "w");
    assert_non_null(f);
    fputs(TOKEN "\n", f);
    assert_int_equal(fclose(f), 0);
    argv[n++] = (char *)agent_exe;
    argv[n++] = "--source";
    argv[n++] = "kubelet";
    argv[n++] = "--api-server";
    argv[n++] = url;
    argv[n++] = "--token-file";
    argv[n++] = token;
    argv[n++] = "--node";
    argv[n++] = NODE;
    argv[n++] = "--admin-listen";
    argv[n++] = admin;
    argv[n++] = "--spool-dir";
    argv[n++] = spool;
    argv[n++] = "--once";
    argv[n++] = "--output";
    argv[n++] = "json";
    for (; extra && *extra; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    itest_child_spawn(c, argv);
    return c;
}

static void plain_http_api_server_is_refused(void **state)
{
    static const char *const allow[] = {"--api-server-insecure-http", NULL};
    itest_child_t *c;
    double t0;

    (void)state;
    /* Without the flag: the agent stops at start, saying which flag would do. */
    c = start_plain_http_agent(NULL);
    t0 = kopt_test_now();
    while (kopt_test_proc_alive(&c->proc) && kopt_test_now() - t0 < 15)
        usleep(50000);
    if (kopt_test_proc_alive(&c->proc))
        fail_msg("kopt-agent kept running with --api-server http://");
    assert_true(c->proc.status != 0);
    assert_true(kopt_test_log_contains(c->log_path, "--api-server-insecure-http"));
    assert_no_token_in(c->log_path);
    itest_child_free(c);

    /* With it: taken, with a warning. */
    c = start_plain_http_agent(allow);
    t0 = kopt_test_now();
    while (!kopt_test_log_contains(c->log_path, "travels in clear") && kopt_test_now() - t0 < 15)
        usleep(50000);
    assert_true(kopt_test_log_contains(c->log_path, "travels in clear"));
    assert_no_token_in(c->log_path);
    kopt_test_proc_kill9(&c->proc);
    itest_child_free(c);
}

/* ------------------------------------------------------------------------ */

static void write_kubeconfig(void)
{
    FILE *f;

    snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", certs_dir);
    f = fopen(kubeconfig, "w");
    assert_non_null(f);
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: replay\n"
            "clusters:\n- name: replay\n  cluster:\n    server: %s\n"
            "    certificate-authority: %s/ca.pem\n"
            "contexts:\n- name: replay\n  context:\n    cluster: replay\n    user: agent\n"
            "users:\n- name: agent\n  user:\n    token: %s\n",
            kopt_test_kube_url(kube), certs_dir, TOKEN);
    assert_int_equal(fclose(f), 0);
}

static int make_certs(void **state)
{
    (void)state;
    certs_dir = kopt_test_tmpdir("kopt-itest-agent-kube");
    return certs_dir ? kopt_test_make_certs(src_dir, certs_dir) : -1;
}

/* A replay server for each test (it starts in a few ms), so that the
 * per-test cleanup may stop everything. */
static int kube_up(void **state)
{
    char fixtures[700], cert[700], key[700];
    kopt_test_kube_opts_t o = {.fixtures_dir = fixtures,
                               .cert_file = cert,
                               .key_file = key,
                               .token = TOKEN,
                               .node = NODE,
                               .summary = "summary-all-pods.json"};

    (void)state;
    snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/kube", src_dir);
    snprintf(cert, sizeof(cert), "%s/server.pem", certs_dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", certs_dir);
    if (kopt_test_kube_start(&kube, &o) < 0)
        return -1;
    write_kubeconfig();
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    kopt_test_cleanup_all(); /* children, servers, the replay server */
    kube = NULL;
    return 0;
}

static int teardown_all(void **state)
{
    kopt_test_teardown_all(state);
    if (certs_dir) {
        kopt_test_rmtree(certs_dir);
        free(certs_dir);
        certs_dir = NULL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(once_through_the_node_proxy, kube_up, test_teardown),
        cmocka_unit_test_setup_teardown(once_directly_from_the_kubelet, kube_up, test_teardown),
        cmocka_unit_test_setup_teardown(facts_stream_into_jetstream, kube_up, test_teardown),
        cmocka_unit_test_setup_teardown(plain_http_api_server_is_refused, kube_up, test_teardown),
    };
    double t0 = kopt_test_now();
    int failed;

    if (argc < 4) {
        fprintf(stderr, "usage: %s SRCDIR KOPT_AGENT KOPT_INGEST\n", argv[0]);
        return 2;
    }
    src_dir = argv[1];
    agent_exe = argv[2];
    ingest_exe = argv[3];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, make_certs, teardown_all);
    nats_Close();
    fprintf(stderr, "timing: test_agent_kube %.3f s\n", kopt_test_now() - t0);
    return failed;
}
