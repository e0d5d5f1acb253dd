/* Unit tests for kopt_proto: protoc-c code for the kopt.v1 contracts round-trips, refuses
 * malformed bytes without crashing, and the embedded FileDescriptorSet holds every file
 * and service that server reflection must describe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kopt/v1/advisor.pb-c.h"
#include "kopt/v1/ingest.pb-c.h"
#include "kopt/v1/metrics.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "kopt_descriptors.h"

#define GIB (1024ULL * 1024 * 1024)

/* Storage for a full MetricBatch: every field set, nothing heap-allocated. */
typedef struct {
    Kopt__V1__MetricBatch batch;
    Google__Protobuf__Timestamp created, start[2], end[2];
    Kopt__V1__NodeFacts node;
    Kopt__V1__NodeFacts__LabelsEntry label[2];
    Kopt__V1__NodeFacts__LabelsEntry *labels[2];
    Kopt__V1__ContainerWindow window[2];
    Kopt__V1__ContainerWindow *windows[2];
    Kopt__V1__HpaFacts hpa;
    char *hpa_metrics[2];
    Kopt__V1__WorkloadFacts workload;
    Kopt__V1__WorkloadFacts *workloads[1];
} full_batch_t;

static void window_fill(Kopt__V1__ContainerWindow *w, Google__Protobuf__Timestamp *start,
                        Google__Protobuf__Timestamp *end, int i)
{
    kopt__v1__container_window__init(w);
    google__protobuf__timestamp__init(start);
    google__protobuf__timestamp__init(end);
    start->seconds = 1700000000 + 60 * i;
    end->seconds = start->seconds + 60;
    end->nanos = 999999999;
    w->namespace_ = "shop";
    w->workload_kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    w->workload_name = "checkout";
    w->pod = i ? "checkout-7d9f-b" : "checkout-7d9f-a";
    w->container = "app";
    w->container_id = "containerd://4f1c2e";
    w->pod_uid = "0d3c4b2a-1111-2222-3333-444455556666";
    w->window_start = start;
    w->window_end = end;
    w->cpu_usage_mean_cores = 0.125 + i;
    w->cpu_usage_peak_cores = 1.75;
    w->cpu_throttled_seconds = 0.5;
    w->cpu_throttled_periods = 12;
    w->cpu_periods = 600;
    w->memory_working_set_peak_bytes = 3 * GIB + 1; /* above 2^32 on purpose */
    w->memory_working_set_last_bytes = 2 * GIB;
    w->memory_rss_peak_bytes = UINT64_MAX;
    w->oom_kills = 1;
    w->restarts = 2;
    w->cpu_request_cores = 0.5;
    w->cpu_limit_cores = 0; /* no limit */
    w->memory_request_bytes = GIB;
    w->memory_limit_bytes = 4 * GIB;
    w->sample_count = 60;
}

static void full_batch_fill(full_batch_t *f)
{
    memset(f, 0, sizeof(*f));
    kopt__v1__metric_batch__init(&f->batch);
    google__protobuf__timestamp__init(&f->created);
    f->created.seconds = 1700000123;
    f->created.nanos = 456000000;

    kopt__v1__node_facts__init(&f->node);
    f->node.cpu_capacity_cores = 16;
    f->node.cpu_allocatable_cores = 15.89;
    f->node.memory_capacity_bytes = 64 * GIB;
    f->node.memory_allocatable_bytes = 62 * GIB;
    f->node.kernel_version = "6.1.0-18-amd64";
    f->node.kubelet_version = "v1.29.2";
    f->node.container_runtime_version = "containerd://1.7.13";
    f->node.architecture = "amd64";
    f->node.instance_type = "m6i.4xlarge";
    f->node.zone = "eu-west-1a";
    f->node.region = "eu-west-1";
    f->node.metric_source = KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2;
    for (int i = 0; i < 2; i++) {
        kopt__v1__node_facts__labels_entry__init(&f->label[i]);
        f->labels[i] = &f->label[i];
    }
    f->label[0].key = "karpenter.sh/capacity-type";
    f->label[0].value = "spot";
    f->label[1].key = "team";
    f->label[1].value = "payments";
    f->node.n_labels = 2;
    f->node.labels = f->labels;

    for (int i = 0; i < 2; i++) {
        window_fill(&f->window[i], &f->start[i], &f->end[i], i);
        f->windows[i] = &f->window[i];
    }

    kopt__v1__hpa_facts__init(&f->hpa);
    f->hpa.name = "checkout";
    f->hpa.min_replicas = 2;
    f->hpa.max_replicas = 10;
    f->hpa.target_cpu_utilization_percent = 70;
    f->hpa_metrics[0] = "cpu";
    f->hpa_metrics[1] = "requests_per_second";
    f->hpa.n_metric_names = 2;
    f->hpa.metric_names = f->hpa_metrics;

    kopt__v1__workload_facts__init(&f->workload);
    f->workload.namespace_ = "shop";
    f->workload.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    f->workload.name = "checkout";
    f->workload.replicas = 3;
    f->workload.ready_replicas = 2;
    f->workload.hpa = &f->hpa;
    f->workload.qos_class = KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE;
    f->workloads[0] = &f->workload;

    f->batch.cluster = "prod-eu";
    f->batch.node = "ip-10-0-1-17";
    f->batch.agent_id = "agent-ip-10-0-1-17";
    f->batch.epoch = 1700000000123456789ULL;
    f->batch.seq = 42;
    f->batch.created = &f->created;
    f->batch.node_facts = &f->node;
    f->batch.n_windows = 2;
    f->batch.windows = f->windows;
    f->batch.n_workloads = 1;
    f->batch.workloads = f->workloads;
    f->batch.agent_version = "0.1.0";
}

static uint8_t *pack_batch(const Kopt__V1__MetricBatch *b, size_t *len)
{
    uint8_t *buf;

    *len = kopt__v1__metric_batch__get_packed_size(b);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(kopt__v1__metric_batch__pack(b, buf), *len);
    return buf;
}

static void assert_window_equal(const Kopt__V1__ContainerWindow *a,
                                const Kopt__V1__ContainerWindow *b)
{
    assert_string_equal(a->namespace_, b->namespace_);
    assert_int_equal(a->workload_kind, b->workload_kind);
    assert_string_equal(a->workload_name, b->workload_name);
    assert_string_equal(a->pod, b->pod);
    assert_string_equal(a->container, b->container);
    assert_string_equal(a->container_id, b->container_id);
    assert_string_equal(a->pod_uid, b->pod_uid);
    assert_int_equal(a->window_start->seconds, b->window_start->seconds);
    assert_int_equal(a->window_start->nanos, b->window_start->nanos);
    assert_int_equal(a->window_end->seconds, b->window_end->seconds);
    assert_int_equal(a->window_end->nanos, b->window_end->nanos);
    /* Doubles travel as 8 raw bytes: exact equality is right. */
    assert_true(a->cpu_usage_mean_cores == b->cpu_usage_mean_cores);
    assert_true(a->cpu_usage_peak_cores == b->cpu_usage_peak_cores);
    assert_true(a->cpu_throttled_seconds == b->cpu_throttled_seconds);
    assert_int_equal(a->cpu_throttled_periods, b->cpu_throttled_periods);
    assert_int_equal(a->cpu_periods, b->cpu_periods);
    assert_int_equal(a->memory_working_set_peak_bytes, b->memory_working_set_peak_bytes);
    assert_int_equal(a->memory_working_set_last_bytes, b->memory_working_set_last_bytes);
    assert_true(a->memory_rss_peak_bytes == b->memory_rss_peak_bytes);
    assert_int_equal(a->oom_kills, b->oom_kills);
    assert_int_equal(a->restarts, b->restarts);
    assert_true(a->cpu_request_cores == b->cpu_request_cores);
    assert_true(a->cpu_limit_cores == b->cpu_limit_cores);
    assert_int_equal(a->memory_request_bytes, b->memory_request_bytes);
    assert_int_equal(a->memory_limit_bytes, b->memory_limit_bytes);
    assert_int_equal(a->sample_count, b->sample_count);
}

static void metric_batch_roundtrip_keeps_every_field(void **state)
{
    full_batch_t f;
    Kopt__V1__MetricBatch *u;
    uint8_t *buf, *again;
    size_t len, len2;

    (void)state;
    full_batch_fill(&f);
    buf = pack_batch(&f.batch, &len);
    u = kopt__v1__metric_batch__unpack(NULL, len, buf);
    assert_non_null(u);

    assert_string_equal(u->cluster, "prod-eu");
    assert_string_equal(u->node, "ip-10-0-1-17");
    assert_string_equal(u->agent_id, "agent-ip-10-0-1-17");
    assert_true(u->epoch == 1700000000123456789ULL);
    assert_int_equal(u->seq, 42);
    assert_string_equal(u->agent_version, "0.1.0");
    assert_non_null(u->created);
    assert_int_equal(u->created->seconds, 1700000123);
    assert_int_equal(u->created->nanos, 456000000);

    assert_non_null(u->node_facts);
    assert_true(u->node_facts->cpu_allocatable_cores == 15.89);
    assert_true(u->node_facts->cpu_capacity_cores == 16);
    assert_int_equal(u->node_facts->memory_capacity_bytes, 64 * GIB);
    assert_int_equal(u->node_facts->memory_allocatable_bytes, 62 * GIB);
    assert_string_equal(u->node_facts->kernel_version, "6.1.0-18-amd64");
    assert_string_equal(u->node_facts->kubelet_version, "v1.29.2");
    assert_string_equal(u->node_facts->container_runtime_version, "containerd://1.7.13");
    assert_string_equal(u->node_facts->architecture, "amd64");
    assert_string_equal(u->node_facts->instance_type, "m6i.4xlarge");
    assert_string_equal(u->node_facts->zone, "eu-west-1a");
    assert_string_equal(u->node_facts->region, "eu-west-1");
    assert_int_equal(u->node_facts->metric_source,
                     KOPT__V1__METRIC_SOURCE__METRIC_SOURCE_CGROUP_V2);
    assert_int_equal(u->node_facts->n_labels, 2);
    assert_string_equal(u->node_facts->labels[0]->key, "karpenter.sh/capacity-type");
    assert_string_equal(u->node_facts->labels[0]->value, "spot");
    assert_string_equal(u->node_facts->labels[1]->key, "team");
    assert_string_equal(u->node_facts->labels[1]->value, "payments");

    assert_int_equal(u->n_windows, 2);
    for (size_t i = 0; i < 2; i++)
        assert_window_equal(u->windows[i], &f.window[i]);

    assert_int_equal(u->n_workloads, 1);
    assert_string_equal(u->workloads[0]->namespace_, "shop");
    assert_int_equal(u->workloads[0]->kind, KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT);
    assert_string_equal(u->workloads[0]->name, "checkout");
    assert_int_equal(u->workloads[0]->replicas, 3);
    assert_int_equal(u->workloads[0]->ready_replicas, 2);
    assert_int_equal(u->workloads[0]->qos_class, KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE);
    assert_non_null(u->workloads[0]->hpa);
    assert_string_equal(u->workloads[0]->hpa->name, "checkout");
    assert_int_equal(u->workloads[0]->hpa->min_replicas, 2);
    assert_int_equal(u->workloads[0]->hpa->max_replicas, 10);
    assert_int_equal(u->workloads[0]->hpa->target_cpu_utilization_percent, 70);
    assert_int_equal(u->workloads[0]->hpa->target_memory_utilization_percent, 0);
    assert_int_equal(u->workloads[0]->hpa->n_metric_names, 2);
    assert_string_equal(u->workloads[0]->hpa->metric_names[1], "requests_per_second");

    /* Re-packing what was unpacked gives the same bytes. */
    again = pack_batch(u, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);

    free(again);
    free(buf);
    kopt__v1__metric_batch__free_unpacked(u, NULL);
}

static void empty_input_is_an_empty_batch(void **state)
{
    Kopt__V1__MetricBatch *u;

    (void)state;
    /* Protobuf has no required fields: rejecting an empty batch is validation's job. */
    u = kopt__v1__metric_batch__unpack(NULL, 0, (const uint8_t *)"");
    assert_non_null(u);
    assert_string_equal(u->cluster, "");
    assert_int_equal(u->seq, 0);
    assert_null(u->created);
    assert_int_equal(u->n_windows, 0);
    kopt__v1__metric_batch__free_unpacked(u, NULL);
}

static void garbage_and_truncated_bytes_are_refused(void **state)
{
    static const struct {
        const char *what;
        uint8_t bytes[8];
        size_t len;
    } bad[] = {
        {"varint tag cut short", {0xff}, 1},
        {"wire type 7 does not exist", {0x0f}, 1},
        {"field number 0", {0x02, 0x00}, 2},
        {"string longer than the input", {0x0a, 0x05, 'p', 'r'}, 4},
        {"length near 2^32", {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
        {"varint of 11 bytes", {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
        {"windows message truncated", {0x42, 0x06, 0x0a, 0x04, 's', 'h'}, 6},
        {"end group with no start group", {0x0c}, 1},
    };
    full_batch_t f;
    uint8_t *buf;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Kopt__V1__MetricBatch *u = kopt__v1__metric_batch__unpack(NULL, bad[i].len, bad[i].bytes);
        if (u)
            fail_msg("unpack accepted: %s", bad[i].what);
    }

    /* Cut inside the last field (agent_version, a string): refused. */
    full_batch_fill(&f);
    buf = pack_batch(&f.batch, &len);
    assert_null(kopt__v1__metric_batch__unpack(NULL, len - 1, buf));
    /* Cut inside the first window (field 8, after the header fields): refused. */
    assert_null(kopt__v1__metric_batch__unpack(NULL, len / 2, buf));
    /* Every other prefix either parses or is refused, never crashes or leaks (ASan). */
    for (size_t n = 0; n < len; n++) {
        Kopt__V1__MetricBatch *u = kopt__v1__metric_batch__unpack(NULL, n, buf);
        kopt__v1__metric_batch__free_unpacked(u, NULL);
    }
    /* And every single flipped byte. */
    for (size_t n = 0; n < len; n++) {
        Kopt__V1__MetricBatch *u;

        buf[n] ^= 0xa5;
        u = kopt__v1__metric_batch__unpack(NULL, len, buf);
        kopt__v1__metric_batch__free_unpacked(u, NULL);
        buf[n] ^= 0xa5;
    }
    free(buf);
}

static void push_ack_roundtrip_with_rejection(void **state)
{
    Kopt__V1__PushAck ack = KOPT__V1__PUSH_ACK__INIT;
    Kopt__V1__BatchRejection rej = KOPT__V1__BATCH_REJECTION__INIT;
    Kopt__V1__BatchRejection *rejs[1] = {&rej};
    Kopt__V1__PushAck *u;
    uint8_t buf[128];
    size_t len;

    (void)state;
    ack.epoch = 7;
    ack.acked_through_seq = 1000;
    rej.epoch = 7;
    rej.seq = 998;
    rej.reason = KOPT__V1__REJECT_REASON__REJECT_REASON_INVALID;
    rej.message = "window 3: window_end before window_start";
    ack.n_rejections = 1;
    ack.rejections = rejs;
    len = kopt__v1__push_ack__get_packed_size(&ack);
    assert_true(len <= sizeof(buf));
    assert_int_equal(kopt__v1__push_ack__pack(&ack, buf), len);
    u = kopt__v1__push_ack__unpack(NULL, len, buf);
    assert_non_null(u);
    assert_int_equal(u->epoch, 7);
    assert_int_equal(u->acked_through_seq, 1000);
    assert_int_equal(u->n_rejections, 1);
    assert_int_equal(u->rejections[0]->seq, 998);
    assert_int_equal(u->rejections[0]->reason, KOPT__V1__REJECT_REASON__REJECT_REASON_INVALID);
    assert_string_equal(u->rejections[0]->message, rej.message);
    kopt__v1__push_ack__free_unpacked(u, NULL);
}

static const Google__Protobuf__FileDescriptorProto *
find_file(const Google__Protobuf__FileDescriptorSet *set, const char *name)
{
    for (size_t i = 0; i < set->n_file; i++)
        if (strcmp(set->file[i]->name, name) == 0)
            return set->file[i];
    return NULL;
}

static const Google__Protobuf__ServiceDescriptorProto *
find_service(const Google__Protobuf__FileDescriptorSet *set, const char *package, const char *name)
{
    for (size_t i = 0; i < set->n_file; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = set->file[i];

        if (!fd->package || strcmp(fd->package, package) != 0)
            continue;
        for (size_t j = 0; j < fd->n_service; j++)
            if (strcmp(fd->service[j]->name, name) == 0)
                return fd->service[j];
    }
    return NULL;
}

static void descriptor_set_describes_every_served_service(void **state)
{
    static const char *const files[] = {
        "kopt/v1/metrics.proto",
        "kopt/v1/ingest.proto",
        "kopt/v1/advisor.proto",
        "grpc/health/v1/health.proto",
        "grpc/reflection/v1alpha/reflection.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/descriptor.proto",
    };
    static const char *const advisor_methods[] = {
        "ListRecommendations", "GetRecommendation", "GetWorkloadUsage",
        "GetClusterSummary",   "ListClusters",      "RunAnalysis",
    };
    Google__Protobuf__FileDescriptorSet *set;
    const Google__Protobuf__ServiceDescriptorProto *svc;
    const Google__Protobuf__FileDescriptorProto *fd;

    (void)state;
    assert_true(kopt_descriptor_set_len > 1000);
    set = google__protobuf__file_descriptor_set__unpack(NULL, kopt_descriptor_set_len,
                                                        kopt_descriptor_set);
    assert_non_null(set);

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (!find_file(set, files[i]))
            fail_msg("descriptor set lacks %s", files[i]);
    /* Closed under imports: reflection can answer for every dependency. */
    for (size_t i = 0; i < set->n_file; i++)
        for (size_t j = 0; j < set->file[i]->n_dependency; j++)
            if (!find_file(set, set->file[i]->dependency[j]))
                fail_msg("%s imports %s, which is missing", set->file[i]->name,
                         set->file[i]->dependency[j]);

    svc = find_service(set, "kopt.v1", "Ingest");
    assert_non_null(svc);
    assert_int_equal(svc->n_method, 1);
    assert_string_equal(svc->method[0]->name, "Push");
    assert_string_equal(svc->method[0]->input_type, ".kopt.v1.MetricBatch");
    assert_string_equal(svc->method[0]->output_type, ".kopt.v1.PushAck");
    assert_true(svc->method[0]->has_client_streaming && svc->method[0]->client_streaming);
    assert_true(svc->method[0]->has_server_streaming && svc->method[0]->server_streaming);

    svc = find_service(set, "kopt.v1", "Advisor");
    assert_non_null(svc);
    assert_int_equal(svc->n_method, sizeof(advisor_methods) / sizeof(advisor_methods[0]));
    for (size_t i = 0; i < svc->n_method; i++) {
        assert_string_equal(svc->method[i]->name, advisor_methods[i]);
        assert_false(svc->method[i]->client_streaming || svc->method[i]->server_streaming);
        /* The google.api.http option is an extension protobuf-c keeps as unknown bytes. */
        assert_non_null(svc->method[i]->options);
    }

    assert_non_null(find_service(set, "grpc.health.v1", "Health"));
    assert_non_null(find_service(set, "grpc.reflection.v1alpha", "ServerReflection"));

    /* Comments travel with our files so reflection clients can show the docs. */
    fd = find_file(set, "kopt/v1/metrics.proto");
    assert_non_null(fd->source_code_info);
    assert_true(fd->source_code_info->n_location > 50);

    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metric_batch_roundtrip_keeps_every_field),
        cmocka_unit_test(empty_input_is_an_empty_batch),
        cmocka_unit_test(garbage_and_truncated_bytes_are_refused),
        cmocka_unit_test(push_ack_roundtrip_with_rejection),
        cmocka_unit_test(descriptor_set_describes_every_served_service),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
