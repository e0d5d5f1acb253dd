/* JSON lines for --once, with jansson, from the packed batch itself: what
 * is printed is what would be sent. */
#include "output.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/v1/metrics.pb-c.h"

static const char *enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);

    return v ? v->name : "";
}

static int64_t ms_of(const Google__Protobuf__Timestamp *t)
{
    return t ? (int64_t)t->seconds * 1000 + t->nanos / 1000000 : 0;
}

static json_t *hpa_json(const Kopt__V1__HpaFacts *h)
{
    json_t *names = json_array();

    for (size_t i = 0; i < h->n_metric_names; i++)
        json_array_append_new(names, json_string(h->metric_names[i]));
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:o}", "name", h->name, "minReplicas",
                     (int)h->min_replicas, "maxReplicas", (int)h->max_replicas,
                     "targetCpuUtilizationPercent", (int)h->target_cpu_utilization_percent,
                     "targetMemoryUtilizationPercent", (int)h->target_memory_utilization_percent,
                     "metricNames", names);
}

/* The WorkloadFacts of the window's workload, or NULL. */
static json_t *workload_json(const Kopt__V1__MetricBatch *b, const Kopt__V1__ContainerWindow *w)
{
    for (size_t i = 0; i < b->n_workloads; i++) {
        const Kopt__V1__WorkloadFacts *f = b->workloads[i];
        json_t *o;

        if (f->kind != w->workload_kind || strcmp(f->name, w->workload_name) != 0 ||
            strcmp(f->namespace_, w->namespace_) != 0)
            continue;
        o = json_pack("{s:i, s:i, s:s}", "replicas", (int)f->replicas, "readyReplicas",
                      (int)f->ready_replicas, "qosClass",
                      enum_name(&kopt__v1__qos_class__descriptor, (int)f->qos_class));
        if (o && f->hpa)
            json_object_set_new(o, "hpa", hpa_json(f->hpa));
        return o;
    }
    return NULL;
}

static json_t *window_json(const Kopt__V1__MetricBatch *b, const Kopt__V1__ContainerWindow *w)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I, "
        "s:I, s:I, s:i, s:i, s:f, s:f, s:I, s:I, s:i}",
        "cluster", b->cluster, "node", b->node, "namespace", w->namespace_, "workloadKind",
        enum_name(&kopt__v1__workload_kind__descriptor, (int)w->workload_kind), "workloadName",
        w->workload_name, "pod", w->pod, "podUid", w->pod_uid, "container", w->container,
        "containerId", w->container_id, "windowStartMs", (json_int_t)ms_of(w->window_start),
        "windowEndMs", (json_int_t)ms_of(w->window_end), "cpuUsageMeanCores",
        w->cpu_usage_mean_cores, "cpuUsagePeakCores", w->cpu_usage_peak_cores,
        "cpuThrottledSeconds", w->cpu_throttled_seconds, "cpuThrottledPeriods",
        (json_int_t)w->cpu_throttled_periods, "cpuPeriods", (json_int_t)w->cpu_periods,
        "memoryWorkingSetPeakBytes", (json_int_t)w->memory_working_set_peak_bytes,
        "memoryWorkingSetLastBytes", (json_int_t)w->memory_working_set_last_bytes,
        "memoryRssPeakBytes", (json_int_t)w->memory_rss_peak_bytes, "oomKills", (int)w->oom_kills,
        "restarts", (int)w->restarts, "cpuRequestCores", w->cpu_request_cores, "cpuLimitCores",
        w->cpu_limit_cores, "memoryRequestBytes", (json_int_t)w->memory_request_bytes,
        "memoryLimitBytes", (json_int_t)w->memory_limit_bytes, "sampleCount", (int)w->sample_count);
    json_t *facts = o ? workload_json(b, w) : NULL;
    char num[32];

    if (!o)
        return NULL;
    if (facts)
        json_object_set_new(o, "workload", facts);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)b->epoch);
    json_object_set_new(o, "epoch", json_string(num)); /* 64-bit ints as strings */
    snprintf(num, sizeof(num), "%llu", (unsigned long long)b->seq);
    json_object_set_new(o, "seq", json_string(num));
    return o;
}

int agent_output_batch_json(FILE *f, const uint8_t *bytes, size_t len)
{
    Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, len, bytes);
    int r = 0;

    if (!b)
        return -EINVAL;
    for (size_t i = 0; i < b->n_windows && r == 0; i++) {
        json_t *o = window_json(b, b->windows[i]);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

        if (line)
            fprintf(f, "%s\n", line);
        else
            r = -ENOMEM;
        free(line);
        json_decref(o);
    }
    fflush(f);
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    return r;
}
