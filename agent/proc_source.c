/* Scanning /proc for the `proc` source. A process first seen is a baseline
 * (its past CPU is not this window's), unless it started after the previous
 * scan; from then on its CPU deltas add to its group's counter. The pid
 * table is bounded and rebuilt each scan from the processes still alive. */
#include "proc_source.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PIDS 65536
#define MAX_EXE_GROUPS 1024 /* without rules: distinct executable names kept */

typedef struct {
    char *name;
    regex_t re;
    uint64_t cpu_ns;
} group_t;

typedef struct {
    int pid;
    uint64_t ticks;      /* utime + stime at the last scan */
    uint64_t start_tick; /* to tell a reused pid from the same process */
    int group;
} proc_t;

struct agent_proc_source {
    char *root;
    group_t *groups;
    size_t n_groups, cap_groups;
    int by_exe; /* no rules: one group per executable name, new ones ignored past the bound */
    proc_t *procs, *next; /* last scan's table, and the one being built */
    size_t n_procs;
    long hz, page;
    uint64_t last_scan_tick; /* boot ticks of the previous scan; 0 before the first */
};

int agent_proc_source_new(const char *proc_root, const char *const *rules, size_t n_rules,
                          agent_proc_source_t **out, char *err, size_t errlen)
{
    agent_proc_source_t *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->root = strdup(proc_root);
    p->groups = calloc(n_rules ? n_rules : 1, sizeof(group_t));
    p->procs = calloc(MAX_PIDS, sizeof(proc_t));
    p->next = calloc(MAX_PIDS, sizeof(proc_t));
    p->hz = sysconf(_SC_CLK_TCK);
    p->page = sysconf(_SC_PAGESIZE);
    if (!p->root || !p->groups || !p->procs || !p->next) {
        agent_proc_source_free(p);
        return -ENOMEM;
    }
    p->by_exe = n_rules == 0;
    p->cap_groups = n_rules ? n_rules : 1;
    for (size_t i = 0; i < n_rules; i++) {
        const char *eq = strchr(rules[i], '=');
        group_t *g = &p->groups[i];
        if (!eq || eq == rules[i] || !eq[1]) {
            snprintf(err, errlen, "proc rule \"%s\": expected name=regex", rules[i]);
            agent_proc_source_free(p);
            return -EINVAL;
        }
        g->name = strndup(rules[i], (size_t)(eq - rules[i]));
        if (!g->name || regcomp(&g->re, eq + 1, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(err, errlen, "proc rule \"%s\": bad regular expression", rules[i]);
            free(g->name);
            g->name = NULL;
            agent_proc_source_free(p);
            return -EINVAL;
        }
        p->n_groups++;
    }
    *out = p;
    return 0;
}

void agent_proc_source_free(agent_proc_source_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_groups; i++) {
        free(p->groups[i].name);
        if (!p->by_exe)
            regfree(&p->groups[i].re);
    }
    free(p->groups);
    free(p->procs);
    free(p->next);
    free(p->root);
    free(p);
}

/* Reads a whole small file into buf (NUL-terminated); bytes read or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return n;
}

/* utime+stime, start time and RSS pages from /proc/<pid>/stat (proc(5));
 * the command may hold spaces and ')', so fields count from the last ')'. */
static int read_stat(const agent_proc_source_t *p, int pid, uint64_t *ticks, uint64_t *start,
                     uint64_t *rss_pages)
{
    char path[300], buf[1024], *s;
    unsigned long long ut, st, start_t;
    long long rss;

    snprintf(path, sizeof(path), "%s/%d/stat", p->root, pid);
    if (read_small(path, buf, sizeof(buf)) < 0 || !(s = strrchr(buf, ')')))
        return -ENOENT;
    if (sscanf(s + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d"
               " %llu %*u %lld",
               &ut, &st, &start_t, &rss) != 4)
        return -EINVAL;
    *ticks = ut + st;
    *start = start_t;
    *rss_pages = rss > 0 ? (uint64_t)rss : 0;
    return 0;
}

/* Clock ticks since boot, the unit of a process's start time. */
static uint64_t uptime_ticks(const agent_proc_source_t *p)
{
    char path[300], buf[128];
    double up = 0;

    snprintf(path, sizeof(path), "%s/uptime", p->root);
    if (read_small(path, buf, sizeof(buf)) > 0)
        up = strtod(buf, NULL);
    return (uint64_t)(up * (double)p->hz);
}

/* The executable's name from argv[0] (its last path part, a login shell's
 * leading '-' dropped) as a Kubernetes label: lower case, any other
 * character '-', no '-' at either end, at most 63. "" when nothing is left. */
static void exe_name(const char *argv0, char *out, size_t len)
{
    const char *base = strrchr(argv0, '/');
    size_t n = 0;

    base = base ? base + 1 : argv0;
    for (; *base && n + 1 < len && n < 63; base++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*base);
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (ok || (n > 0 && out[n - 1] != '-'))
            out[n++] = ok ? (char)c : '-';
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = 0;
}

/* The group of executable `name`, added when new; -1 when the table is full. */
static int exe_group(agent_proc_source_t *p, const char *name)
{
    group_t *g;

    for (size_t i = 0; i < p->n_groups; i++)
        if (strcmp(p->groups[i].name, name) == 0)
            return (int)i;
    if (p->n_groups >= MAX_EXE_GROUPS)
        return -1;
    if (p->n_groups == p->cap_groups) {
        size_t cap = p->cap_groups ? 2 * p->cap_groups : 16;

        g = realloc(p->groups, cap * sizeof(group_t));
        if (!g)
            return -1;
        p->groups = g;
        p->cap_groups = cap;
    }
    g = &p->groups[p->n_groups];
    memset(g, 0, sizeof(*g));
    g->name = strdup(name);
    if (!g->name)
        return -1;
    return (int)p->n_groups++;
}

static int match(agent_proc_source_t *p, int pid)
{
    char path[300], buf[4096], name[64];
    ssize_t n;

    snprintf(path, sizeof(path), "%s/%d/cmdline", p->root, pid);
    n = read_small(path, buf, sizeof(buf));
    if (n <= 0)
        return -1; /* kernel threads have no command line */
    if (p->by_exe) {
        exe_name(buf[0] == '-' ? buf + 1 : buf, name, sizeof(name));
        return name[0] ? exe_group(p, name) : -1;
    }
    for (ssize_t i = 0; i < n - 1; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    for (size_t g = 0; g < p->n_groups; g++)
        if (regexec(&p->groups[g].re, buf, 0, NULL, 0) == 0)
            return (int)g;
    return -1;
}

static const proc_t *previous(const agent_proc_source_t *p, int pid, uint64_t start)
{
    size_t lo = 0, hi = p->n_procs;

    while (lo < hi) { /* the table is in readdir order: sorted by pid below */
        size_t mid = (lo + hi) / 2;
        if (p->procs[mid].pid == pid)
            return p->procs[mid].start_tick == start ? &p->procs[mid] : NULL;
        if (p->procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int by_pid(const void *a, const void *b)
{
    return ((const proc_t *)a)->pid - ((const proc_t *)b)->pid;
}

int agent_proc_source_scan(agent_proc_source_t *p, int64_t now_ms,
                           void (*fn)(const agent_proc_group_t *g, void *data), void *data)
{
    DIR *d = opendir(p->root);
    struct dirent *e;
    /* Without rules, groups are added during the scan: room for all of them. */
    size_t slots = p->by_exe ? MAX_EXE_GROUPS : p->n_groups ? p->n_groups : 1;
    uint64_t *rss = calloc(slots, sizeof(uint64_t));
    uint32_t *count = calloc(slots, sizeof(uint32_t));
    uint64_t tick_ns = 1000000000ULL / (uint64_t)p->hz, now_tick = uptime_ticks(p);
    size_t n = 0;

    (void)now_ms;
    if (!d || !rss || !count) {
        int r = d ? -ENOMEM : -errno;
        if (d)
            closedir(d);
        free(rss);
        free(count);
        return r;
    }
    while ((e = readdir(d)) && n < MAX_PIDS) {
        uint64_t ticks, start, pages;
        const proc_t *prev;
        int pid, g;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid = atoi(e->d_name);
        if (read_stat(p, pid, &ticks, &start, &pages) < 0 || (g = match(p, pid)) < 0)
            continue;
        prev = previous(p, pid, start);
        if (prev && ticks >= prev->ticks)
            p->groups[g].cpu_ns += (ticks - prev->ticks) * tick_ns;
        else if (!prev && p->last_scan_tick && start >= p->last_scan_tick)
            p->groups[g].cpu_ns += ticks * tick_ns; /* born since the last scan */
        rss[g] += pages * (uint64_t)p->page;
        count[g]++;
        p->next[n++] = (proc_t){pid, ticks, start, g};
    }
    closedir(d);
    qsort(p->next, n, sizeof(proc_t), by_pid);
    {
        proc_t *t = p->procs;
        p->procs = p->next;
        p->next = t;
        p->n_procs = n;
    }
    /* A process started after this moment is wholly new at the next scan. */
    p->last_scan_tick = now_tick;
    for (size_t g = 0; g < p->n_groups; g++) {
        agent_proc_group_t out = {p->groups[g].name, p->groups[g].cpu_ns, rss[g], count[g]};
        fn(&out, data);
    }
    free(rss);
    free(count);
    return 0;
}
