/* The cgroup measurement source: finds every container of the kubepods
 * hierarchy (cgroup v1 and v2; systemd and cgroupfs drivers; containerd, CRI-O
 * and docker) and reads its cumulative counters. Pause (sandbox) containers
 * cannot be told apart from cgroups alone: they are listed, and the metadata
 * from the API server filters them out. Layouts: docs/agent.md. */
#ifndef AGENT_CGROUP_H
#define AGENT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup_parse.h"

typedef enum {
    AGENT_CGROUP_V1 = 1,
    AGENT_CGROUP_V2 = 2,
} agent_cgroup_version_t;

/* One container's cgroup. Paths are absolute and owned by the struct. */
typedef struct {
    agent_cgroup_version_t version;
    agent_cgroup_qos_t qos;
    agent_cgroup_runtime_t runtime;
    char pod_uid[AGENT_CGROUP_UID_MAX];     /* with dashes, as in the API */
    char container_id[AGENT_CGROUP_ID_MAX]; /* without the runtime:// prefix */
    char *path;                             /* v2: the cgroup; v1: the memory controller's */
    char *cpu_path;     /* v1: the cpu controller's (cpu.stat, cfs_*); v2: = path */
    char *cpuacct_path; /* v1: the cpuacct controller's (cpuacct.usage); v2: = path */
} agent_cgroup_container_t;

typedef struct {
    agent_cgroup_container_t *items;
    size_t n;
} agent_cgroup_list_t;

/* Which fields a sample has (a file may be missing: root cgroup, old kernel). */
enum {
    AGENT_CGROUP_HAVE_CPU = 1 << 0,       /* cpu_usage_ns */
    AGENT_CGROUP_HAVE_THROTTLE = 1 << 1,  /* cpu_periods, cpu_throttled_* */
    AGENT_CGROUP_HAVE_MEMORY = 1 << 2,    /* memory_usage_bytes */
    AGENT_CGROUP_HAVE_MEMSTAT = 1 << 3,   /* rss, inactive_file, working set */
    AGENT_CGROUP_HAVE_OOM = 1 << 4,       /* oom_kills */
    AGENT_CGROUP_HAVE_MEM_LIMIT = 1 << 5, /* memory_limit_bytes */
    AGENT_CGROUP_HAVE_CPU_LIMIT = 1 << 6, /* cpu_quota_us, cpu_period_us */
};

/* Cumulative counters and current values of one cgroup. */
typedef struct {
    uint32_t have;
    uint64_t cpu_usage_ns;
    uint64_t cpu_periods;
    uint64_t cpu_throttled_periods;
    uint64_t cpu_throttled_ns;
    uint64_t memory_usage_bytes;
    uint64_t memory_working_set_bytes; /* usage - inactive_file, as the kubelet */
    uint64_t memory_rss_bytes;         /* anonymous memory */
    uint64_t memory_inactive_file_bytes;
    uint64_t oom_kills;
    uint64_t memory_limit_bytes; /* 0 = no limit */
    uint64_t cpu_quota_us;       /* 0 = no limit */
    uint64_t cpu_period_us;
} agent_cgroup_sample_t;

/* Lists the containers under `root` (normally /sys/fs/cgroup), v2 when root is
 * a cgroup2 mount, v1 when it holds controller mounts (memory/, cpu,cpuacct/).
 * A node without kubepods gives an empty list. The caller frees with
 * agent_cgroup_list_free(). -ENOENT: root is no cgroup mount; -ENOMEM. */
int agent_cgroup_scan(const char *root, agent_cgroup_list_t *out);

/* Frees the items; the list is left empty. NULL is a no-op. */
void agent_cgroup_list_free(agent_cgroup_list_t *l);

/* The cgroup of a process, from the text of its /proc/<pid>/cgroup, under
 * `root`. Container ids are left empty. Free with agent_cgroup_container_clear(). */
int agent_cgroup_of_process(const char *root, const char *proc_cgroup, size_t len,
                            agent_cgroup_container_t *out);

void agent_cgroup_container_clear(agent_cgroup_container_t *c);

/* Reads one sample. -ENOENT: the cgroup is gone (the container exited); fields
 * whose files are missing in a cgroup that still exists are left out of
 * `have`. -EINVAL: a file did not parse. -EIO etc. from read(2). */
int agent_cgroup_read(const agent_cgroup_container_t *c, agent_cgroup_sample_t *s);

/* "containerd", "cri-o", "docker", or "" for UNKNOWN: the scheme of the
 * Kubernetes containerID ("containerd://<id>"). */
const char *agent_cgroup_runtime_name(agent_cgroup_runtime_t rt);

#endif
