/* Pure parsers for the kernel's cgroup (v1 and v2) and /proc file formats, and
 * for the kubepods directory names the kubelet makes. No I/O: buffers need not
 * be NUL-terminated, and any bytes give an error code, never a crash, so the
 * fuzzer runs them directly. agent/cgroup.c reads the files. */
#ifndef AGENT_CGROUP_PARSE_H
#define AGENT_CGROUP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* "max" in memory.max / cpu.max; v1's huge "unlimited" values map to it too. */
#define AGENT_CGROUP_UNLIMITED UINT64_MAX

/* Pod UIDs: 36 chars with dashes (or 32 hex for static pods), plus NUL. */
#define AGENT_CGROUP_UID_MAX 37
/* Container ids: 64 hex chars in practice; up to 128 accepted, plus NUL. */
#define AGENT_CGROUP_ID_MAX 129

typedef enum {
    AGENT_CGROUP_QOS_GUARANTEED = 0,
    AGENT_CGROUP_QOS_BURSTABLE,
    AGENT_CGROUP_QOS_BESTEFFORT,
} agent_cgroup_qos_t;

typedef enum {
    AGENT_CGROUP_RUNTIME_UNKNOWN = 0, /* cgroupfs driver: a bare id (containerd or docker) */
    AGENT_CGROUP_RUNTIME_CONTAINERD,
    AGENT_CGROUP_RUNTIME_CRIO,
    AGENT_CGROUP_RUNTIME_DOCKER,
} agent_cgroup_runtime_t;

/* One wanted key of a flat-keyed file ("key value" lines). */
typedef struct {
    const char *key;
    uint64_t *val; /* set when the key is found */
} agent_cgroup_key_t;

/* Flat-keyed files: cpu.stat, memory.stat, memory.events, memory.oom_control.
 * Sets every wanted key found and returns how many were found; unknown keys
 * are skipped. -EINVAL: a wanted key with a value that is not a number. */
int agent_cgroup_parse_keyed(const char *buf, size_t len, const agent_cgroup_key_t *keys, size_t n);

/* One-value files: memory.current, memory.max, cpuacct.usage,
 * memory.usage_in_bytes, memory.limit_in_bytes, cpu.cfs_period_us. "max" is
 * AGENT_CGROUP_UNLIMITED. -EINVAL otherwise. */
int agent_cgroup_parse_u64(const char *buf, size_t len, uint64_t *out);

/* Signed one-value files: cpu.cfs_quota_us ("-1" = no limit). */
int agent_cgroup_parse_s64(const char *buf, size_t len, int64_t *out);

/* v2 cpu.max: "<quota|max> <period>". quota is AGENT_CGROUP_UNLIMITED for max. */
int agent_cgroup_parse_cpu_max(const char *buf, size_t len, uint64_t *quota_us,
                               uint64_t *period_us);

typedef struct {
    uint64_t usage_ns;          /* cumulative CPU time */
    uint64_t periods;           /* CFS periods with runnable tasks */
    uint64_t throttled_periods; /* of which throttled */
    uint64_t throttled_ns;      /* total throttled time */
} agent_cgroup_cpu_t;

/* v2 cpu.stat: usage_usec (required), nr_periods, nr_throttled, throttled_usec
 * (absent without the cpu controller: left 0). -EINVAL without usage_usec. */
int agent_cgroup_parse_cpu_stat_v2(const char *buf, size_t len, agent_cgroup_cpu_t *out);

/* v1 cpu.stat: nr_periods, nr_throttled, throttled_time (ns); usage_ns is not
 * touched (it is cpuacct.usage). -EINVAL when none is there. */
int agent_cgroup_parse_cpu_stat_v1(const char *buf, size_t len, agent_cgroup_cpu_t *out);

typedef struct {
    uint64_t anon; /* RSS: anonymous memory (v1 total_rss) */
    uint64_t file; /* page cache (v1 total_cache) */
    uint64_t active_file;
    uint64_t inactive_file; /* subtracted from usage for the working set */
    uint64_t shmem;
} agent_cgroup_memstat_t;

/* v2 memory.stat (anon, file, active_file, inactive_file, shmem). -EINVAL
 * without anon and inactive_file. */
int agent_cgroup_parse_memory_stat_v2(const char *buf, size_t len, agent_cgroup_memstat_t *out);

/* v1 memory.stat: the hierarchical total_* keys (total_rss, total_cache,
 * total_active_file, total_inactive_file, total_shmem), or the local ones
 * where the total_ ones are missing. -EINVAL without rss and inactive_file. */
int agent_cgroup_parse_memory_stat_v1(const char *buf, size_t len, agent_cgroup_memstat_t *out);

/* v2 memory.events and v1 memory.oom_control: the oom_kill count. -ENOENT
 * when the file has no oom_kill line (v1 before Linux 4.13). */
int agent_cgroup_parse_oom_kill(const char *buf, size_t len, uint64_t *out);

/* v1 memory.limit_in_bytes: values from 2^62 up mean no limit (the kernel
 * prints PAGE_COUNTER_MAX pages, 9223372036854771712 on 4 KiB pages). */
int agent_cgroup_parse_v1_limit(const char *buf, size_t len, uint64_t *out);

/* /proc/<pid>/cgroup: the path of `controller` ("memory", "cpu", ...), or of
 * the v2 line ("0::/...") when controller is "". -ENOENT: no such line;
 * -ENAMETOOLONG: path does not fit in cap. */
int agent_cgroup_parse_proc_cgroup(const char *buf, size_t len, const char *controller, char *path,
                                   size_t cap);

typedef struct {
    uint64_t utime_ticks; /* clock ticks (sysconf(_SC_CLK_TCK)) */
    uint64_t stime_ticks;
    uint64_t starttime_ticks; /* after boot */
    uint64_t rss_pages;
} agent_proc_stat_t;

/* /proc/<pid>/stat; comm may hold spaces and parentheses. */
int agent_proc_parse_stat(const char *buf, size_t len, agent_proc_stat_t *out);

/* Kubepods directory names. Each returns 0 on a match, -EINVAL otherwise. */
/* "burstable", "besteffort" (cgroupfs) or kubepods-<qos>.slice (systemd). */
int agent_cgroup_parse_qos_dir(const char *name, agent_cgroup_qos_t *qos);
/* "pod<uid>" (cgroupfs) or kubepods[-<qos>]-pod<uid with _ for ->.slice
 * (systemd); uid gets the UID with its dashes. */
int agent_cgroup_parse_pod_dir(const char *name, char uid[AGENT_CGROUP_UID_MAX]);
/* cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope (systemd),
 * crio-<id> or a bare 64-hex id (cgroupfs). crio-conmon-<id> (CRI-O's monitor
 * process) is not a container: -EINVAL. */
int agent_cgroup_parse_container_dir(const char *name, char id[AGENT_CGROUP_ID_MAX],
                                     agent_cgroup_runtime_t *rt);

#endif
