/* The `proc` measurement source: processes of a plain machine (or a VM)
 * grouped into workloads by rules on their command line, for running kopt
 * without Kubernetes. Each group reports like a container: a cumulative CPU
 * counter kept by this module (processes come and go; the group's counter
 * only grows) and its resident memory. Reads /proc (the root is a
 * parameter, so tests and containers can point it elsewhere). */
#ifndef AGENT_PROC_SOURCE_H
#define AGENT_PROC_SOURCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct agent_proc_source agent_proc_source_t;

/* A rule "name=regex": processes whose command line (arguments joined by
 * spaces) matches the POSIX extended regex belong to group `name`. Rules
 * are tried in order; the first match wins; unmatched processes are ignored.
 * No rules (n_rules 0): each process belongs to the group named by its
 * executable (argv[0]'s last path part as a Kubernetes label: "python3.11"
 * is "python3-11"), up to 1024 groups; kernel threads are left out. */
int agent_proc_source_new(const char *proc_root, const char *const *rules, size_t n_rules,
                          agent_proc_source_t **out, char *err, size_t errlen);
void agent_proc_source_free(agent_proc_source_t *p);

typedef struct {
    const char *group;     /* the rule's name */
    uint64_t cpu_usage_ns; /* cumulative for the group */
    uint64_t rss_bytes;    /* sum over its processes now */
    uint32_t processes;
} agent_proc_group_t;

/* Scans /proc once at `now_ms` and calls `fn` for every group (also for
 * groups with no process now: zero memory, CPU unchanged). 0 or -errno. */
int agent_proc_source_scan(agent_proc_source_t *p, int64_t now_ms,
                           void (*fn)(const agent_proc_group_t *g, void *data), void *data);

#endif
