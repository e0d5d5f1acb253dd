/* The C side of tests/sdk/test_python_sdk.py: proves that bytes made by a generated SDK
 * mean the same to protoc-c code, and the other way round.
 *
 *   proto_roundtrip decode   MetricBatch bytes on stdin -> JSON of every field on stdout
 *   proto_roundtrip repack   MetricBatch bytes on stdin -> unpack, pack again, to stdout
 *   proto_roundtrip encode   a fixed, full MetricBatch built in C -> bytes on stdout
 *
 * Exit 0 on success, 1 if the input does not parse or output fails, 2 on bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/v1/metrics.pb-c.h"

#define GIB (1024ULL * 1024 * 1024)

static int read_all(FILE *in, uint8_t **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);

    if (!buf)
        return -1;
    for (;;) {
        size_t got;

        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);

            if (!bigger) {
                free(buf);
                return -1;
            }
            buf = bigger;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(in)) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* A JSON string; protobuf strings are UTF-8 already, so only escapes are needed. */
static void put_json_string(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void put_str(const char *key, const char *s, const char *sep)
{
    put_json_string(key);
    putchar(':');
    put_json_string(s);
    fputs(sep, stdout);
}

static void put_u64(const char *key, uint64_t v, const char *sep)
{
    printf("\"%s\":%" PRIu64 "%s", key, v, sep);
}

/* %.17g prints every double so that it reads back to the same bits. */
static void put_dbl(const char *key, double v, const char *sep)
{
    printf("\"%s\":%.17g%s", key, v, sep);
}

static void put_ts(const char *key, const Google__Protobuf__Timestamp *ts, const char *sep)
{
    if (!ts)
        printf("\"%s\":null%s", key, sep);
    else
        printf("\"%s\":{\"seconds\":%" PRId64 ",\"nanos\":%" PRId32 "}%s", key, ts->seconds,
               ts->nanos, sep);
}

static void put_window(const Kopt__V1__ContainerWindow *w, const char *sep)
{
    printf("{");
    put_str("namespace", w->namespace_, ",");
    put_u64("workload_kind", (uint64_t)w->workload_kind, ",");
    put_str("workload_name", w->workload_name, ",");
    put_str("pod", w->pod, ",");
    put_str("container", w->container, ",");
    put_str("container_id", w->container_id, ",");
    put_str("pod_uid", w->pod_uid, ",");
    put_ts("window_start", w->window_start, ",");
    put_ts("window_end", w->window_end, ",");
    put_dbl("cpu_usage_mean_cores", w->cpu_usage_mean_cores, ",");
    put_dbl("cpu_usage_peak_cores", w->cpu_usage_peak_cores, ",");
    put_dbl("cpu_throttled_seconds", w->cpu_throttled_seconds, ",");
    put_u64("cpu_throttled_periods", w->cpu_throttled_periods, ",");
    put_u64("cpu_periods", w->cpu_periods, ",");
    put_u64("memory_working_set_peak_bytes", w->memory_working_set_peak_bytes, ",");
    put_u64("memory_working_set_last_bytes", w->memory_working_set_last_bytes, ",");
    put_u64("memory_rss_peak_bytes", w->memory_rss_peak_bytes, ",");
    put_u64("oom_kills", w->oom_kills, ",");
    put_u64("restarts", w->restarts, ",");
    put_dbl("cpu_request_cores", w->cpu_request_cores, ",");
    put_dbl("cpu_limit_cores", w->cpu_limit_cores, ",");
    put_u64("memory_request_bytes", w->memory_request_bytes, ",");
    put_u64("memory_limit_bytes", w->memory_limit_bytes, ",");
    put_u64("sample_count", w->sample_count, "");
    printf("}%s", sep);
}

static void put_node(const Kopt__V1__NodeFacts *n)
{
    printf("\"node_facts\":{");
    put_dbl("cpu_capacity_cores", n->cpu_capacity_cores, ",");
    put_dbl("cpu_allocatable_cores", n->cpu_allocatable_cores, ",");
    put_u64("memory_capacity_bytes", n->memory_capacity_bytes, ",");
    put_u64("memory_allocatable_bytes", n->memory_allocatable_bytes, ",");
    put_str("kernel_version", n->kernel_version, ",");
    put_str("kubelet_version", n->kubelet_version, ",");
    put_str("container_runtime_version", n->container_runtime_version, ",");
    put_str("architecture", n->architecture, ",");
    put_str("instance_type", n->instance_type, ",");
    put_str("zone", n->zone, ",");
    put_str("region", n->region, ",");
    put_u64("metric_source", (uint64_t)n->metric_source, ",");
    printf("\"labels\":{");
    for (size_t i = 0; i < n->n_labels; i++)
        put_str(n->labels[i]->key, n->labels[i]->value, i + 1 < n->n_labels ? "," : "");
    printf("}},");
}

static void put_workload(const Kopt__V1__WorkloadFacts *w, const char *sep)
{
    printf("{");
    put_str("namespace", w->namespace_, ",");
    put_u64("kind", (uint64_t)w->kind, ",");
    put_str("name", w->name, ",");
    put_u64("replicas", w->replicas, ",");
    put_u64("ready_replicas", w->ready_replicas, ",");
    put_u64("qos_class", (uint64_t)w->qos_class, ",");
    if (!w->hpa) {
        printf("\"hpa\":null");
    } else {
        printf("\"hpa\":{");
        put_str("name", w->hpa->name, ",");
        put_u64("min_replicas", w->hpa->min_replicas, ",");
        put_u64("max_replicas", w->hpa->max_replicas, ",");
        put_u64("target_cpu_utilization_percent", w->hpa->target_cpu_utilization_percent, ",");
        put_u64("target_memory_utilization_percent", w->hpa->target_memory_utilization_percent,
                ",");
        printf("\"metric_names\":[");
        for (size_t i = 0; i < w->hpa->n_metric_names; i++) {
            put_json_string(w->hpa->metric_names[i]);
            fputs(i + 1 < w->hpa->n_metric_names ? "," : "", stdout);
        }
        printf("]}");
    }
    printf("}%s", sep);
}

static void put_batch(const Kopt__V1__MetricBatch *b)
{
    printf("{");
    put_str("cluster", b->cluster, ",");
    put_str("node", b->node, ",");
    put_str("agent_id", b->agent_id, ",");
    put_u64("epoch", b->epoch, ",");
    put_u64("seq", b->seq, ",");
    put_str("agent_version", b->agent_version, ",");
    put_ts("created", b->created, ",");
    if (b->node_facts)
        put_node(b->node_facts);
    printf("\"windows\":[");
    for (size_t i = 0; i < b->n_windows; i++)
        put_window(b->windows[i], i + 1 < b->n_windows ? "," : "");
    printf("],\"workloads\":[");
    for (size_t i = 0; i < b->n_workloads; i++)
        put_workload(b->workloads[i], i + 1 < b->n_workloads ? "," : "");
    printf("]}\n");
}

static int write_packed(const Kopt__V1__MetricBatch *b)
{
    size_t len = kopt__v1__metric_batch__get_packed_size(b);
    uint8_t *buf = malloc(len ? len : 1);
    int r = 0;

    if (!buf)
        return -1;
    kopt__v1__metric_batch__pack(b, buf);
    if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0)
        r = -1;
    free(buf);
    return r;
}

/* The batch test_python_sdk.py expects from "encode"; keep the two in step. */
static int encode(void)
{
    Kopt__V1__MetricBatch b = KOPT__V1__METRIC_BATCH__INIT;
    Google__Protobuf__Timestamp created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp end = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Kopt__V1__NodeFacts node = KOPT__V1__NODE_FACTS__INIT;
    Kopt__V1__NodeFacts__LabelsEntry label = KOPT__V1__NODE_FACTS__LABELS_ENTRY__INIT;
    Kopt__V1__NodeFacts__LabelsEntry *labels[1] = {&label};
    Kopt__V1__ContainerWindow w = KOPT__V1__CONTAINER_WINDOW__INIT;
    Kopt__V1__ContainerWindow *windows[1] = {&w};
    Kopt__V1__HpaFacts hpa = KOPT__V1__HPA_FACTS__INIT;
    char *metric_names[2] = {"cpu", "memory"};
    Kopt__V1__WorkloadFacts wl = KOPT__V1__WORKLOAD_FACTS__INIT;
    Kopt__V1__WorkloadFacts *workloads[1] = {&wl};

    created.seconds = 1700000000;
    created.nanos = 5;
    start.seconds = 1699999940;
    end.seconds = 1700000000;

    node.cpu_capacity_cores = 8;
    node.cpu_allocatable_cores = 7.91;
    node.memory_capacity_bytes = 32 * GIB;
    node.memory_allocatable_bytes = 31 * GIB;
    node.kernel_version = "6.1.0";
    node.kubelet_version = "v1.30.0";
    node.instance_type = "c7g.2xlarge";
    node.architecture = "arm64";
    node.zone = "us-east-1b";
    node.metric_source = KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V1;
    label.key = "team";
    label.value = "search \"core\"";
    node.n_labels = 1;
    node.labels = labels;

    w.namespace_ = "search";
    w.workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET;
    w.workload_name = "index";
    w.pod = "index-0";
    w.container = "lucene";
    w.container_id = "containerd://abc";
    w.window_start = &start;
    w.window_end = &end;
    w.cpu_usage_mean_cores = 2.5;
    w.cpu_usage_peak_cores = 3.9999999999999996;
    w.cpu_throttled_seconds = 1e-6;
    w.cpu_throttled_periods = 3;
    w.cpu_periods = 600;
    w.memory_working_set_peak_bytes = 9007199254740993ULL; /* 2^53 + 1: not a double */
    w.memory_working_set_last_bytes = 5 * GIB;
    w.memory_rss_peak_bytes = 4 * GIB;
    w.oom_kills = 0;
    w.restarts = 4294967295U;
    w.cpu_request_cores = 2;
    w.cpu_limit_cores = 4;
    w.memory_request_bytes = 6 * GIB;
    w.memory_limit_bytes = 0;
    w.sample_count = 12;

    hpa.name = "index-hpa";
    hpa.min_replicas = 1;
    hpa.max_replicas = 5;
    hpa.target_memory_utilization_percent = 80;
    hpa.n_metric_names = 2;
    hpa.metric_names = metric_names;
    wl.namespace_ = "search";
    wl.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_STATEFUL_SET;
    wl.name = "index";
    wl.replicas = 3;
    wl.ready_replicas = 3;
    wl.hpa = &hpa;
    wl.qos_class = KOPT__V1__QOS_CLASS__QOS_CLASS_GUARANTEED;

    b.cluster = "lab";
    b.node = "node-a";
    b.agent_id = "agent-a";
    b.epoch = UINT64_MAX;
    b.seq = 1;
    b.created = &created;
    b.node_facts = &node;
    b.n_windows = 1;
    b.windows = windows;
    b.n_workloads = 1;
    b.workloads = workloads;
    b.agent_version = "0.1.0-test";
    return write_packed(&b);
}

int main(int argc, char **argv)
{
    Kopt__V1__MetricBatch *b;
    uint8_t *data;
    size_t len;
    int r;

    if (argc != 2 || (strcmp(argv[1], "decode") != 0 && strcmp(argv[1], "repack") != 0 &&
                      strcmp(argv[1], "encode") != 0)) {
        fprintf(stderr, "usage: %s decode|repack|encode\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "encode") == 0)
        return encode() == 0 ? 0 : 1;

    if (read_all(stdin, &data, &len) < 0) {
        fprintf(stderr, "proto_roundtrip: reading stdin failed\n");
        return 1;
    }
    b = kopt__v1__metric_batch__unpack(NULL, len, data);
    free(data);
    if (!b) {
        fprintf(stderr, "proto_roundtrip: %zu bytes on stdin are not a kopt.v1.MetricBatch\n", len);
        return 1;
    }
    if (strcmp(argv[1], "decode") == 0) {
        put_batch(b);
        r = fflush(stdout) == 0 ? 0 : -1;
    } else {
        r = write_packed(b);
    }
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    if (r < 0)
        fprintf(stderr, "proto_roundtrip: writing stdout failed\n");
    return r == 0 ? 0 : 1;
}
