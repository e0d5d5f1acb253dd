/* JSON lines for --once, with jansson. */
#include "output.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

int kopt_output_windows_json(FILE *f, const char *cluster, const char *node, uint64_t epoch,
                             uint64_t seq, const kopt_window_t *wins,
                             const kopt_container_meta_t *metas, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const kopt_window_t *w = &wins[i];
        const kopt_container_meta_t *m = &metas[i];
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:i, s:i, "
            "s:s, s:s}",
            "cluster", cluster, "node", node, "namespace", m->namespace_, "workloadName",
            m->workload_name, "pod", m->pod, "container", m->container, "windowStartMs",
            (json_int_t)w->start_ms, "windowEndMs", (json_int_t)w->end_ms, "cpuUsageMeanCores",
            w->cpu_mean_cores, "cpuUsagePeakCores", w->cpu_peak_cores, "memoryWorkingSetPeakBytes",
            (json_int_t)w->memory_working_set_peak, "memoryWorkingSetLastBytes",
            (json_int_t)w->memory_working_set_last, "memoryRssPeakBytes",
            (json_int_t)w->memory_rss_peak, "oomKills", (int)w->oom_kills, "sampleCount",
            (int)w->samples, "epoch", "", "seq", "");
        char *line, num[32];

        if (!o)
            return -ENOMEM;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)epoch);
        json_object_set_new(o, "epoch", json_string(num)); /* 64-bit ints as strings */
        snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
        json_object_set_new(o, "seq", json_string(num));
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!line)
            return -ENOMEM;
        fprintf(f, "%s\n", line);
        free(line);
    }
    fflush(f);
    return 0;
}
