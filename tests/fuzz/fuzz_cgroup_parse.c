/* Fuzz target: every parser of cgroup v1/v2 and /proc files, and of kubepods
 * directory names, on arbitrary bytes. Must never crash, hang or read past
 * the input (the file parsers get no NUL terminator). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    agent_cgroup_cpu_t cpu;
    agent_cgroup_memstat_t ms;
    agent_proc_stat_t ps;
    agent_cgroup_qos_t qos;
    agent_cgroup_runtime_t rt;
    char path[256], uid[AGENT_CGROUP_UID_MAX], id[AGENT_CGROUP_ID_MAX], *name;
    uint64_t v, q, p;
    int64_t sv;

    agent_cgroup_parse_u64(buf, size, &v);
    agent_cgroup_parse_s64(buf, size, &sv);
    agent_cgroup_parse_v1_limit(buf, size, &v);
    agent_cgroup_parse_cpu_max(buf, size, &q, &p);
    agent_cgroup_parse_cpu_stat_v2(buf, size, &cpu);
    agent_cgroup_parse_cpu_stat_v1(buf, size, &cpu);
    agent_cgroup_parse_memory_stat_v2(buf, size, &ms);
    agent_cgroup_parse_memory_stat_v1(buf, size, &ms);
    agent_cgroup_parse_oom_kill(buf, size, &v);
    if (agent_cgroup_parse_proc_cgroup(buf, size, "memory", path, sizeof(path)) == 0 &&
        strlen(path) >= sizeof(path))
        abort();
    agent_cgroup_parse_proc_cgroup(buf, size, "", path, sizeof(path));
    agent_proc_parse_stat(buf, size, &ps);

    /* Directory names are C strings: the input up to its first NUL. */
    name = malloc(size + 1);
    if (!name)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    agent_cgroup_parse_qos_dir(name, &qos);
    if (agent_cgroup_parse_pod_dir(name, uid) == 0 && strlen(uid) >= AGENT_CGROUP_UID_MAX)
        abort();
    if (agent_cgroup_parse_container_dir(name, id, &rt) == 0 && strlen(id) >= AGENT_CGROUP_ID_MAX)
        abort();
    free(name);
    return 0;
}
