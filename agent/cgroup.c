/* The cgroup source's I/O: finds the cgroup hierarchy under a root, walks the
 * kubepods tree to list containers, and reads each one's files. The formats
 * are parsed by cgroup_parse.c. Errors are negative errno. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kopt/util.h>

/* A node runs at most a few hundred; this only bounds a broken tree. */
#define MAX_CONTAINERS 8192
/* Large enough for any memory.stat the kernel prints. */
#define FILE_BUF 16384

/* The controller directories under root. v2: all three are root. */
typedef struct {
    agent_cgroup_version_t version;
    char *mem, *cpu, *cpuacct;
} hier_t;

typedef struct {
    const hier_t *h;
    agent_cgroup_list_t *list;
    size_t cap;
    agent_cgroup_qos_t qos;
    char uid[AGENT_CGROUP_UID_MAX];
    int r;
} walk_t;

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *a, const char *b)
{
    char *s;

    return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

/* The first of `names` under root that is a directory, or NULL. */
static char *first_dir(const char *root, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *p = join(root, names[i]);
        if (p && is_dir(p))
            return p;
        free(p);
    }
    return NULL;
}

static void hier_clear(hier_t *h)
{
    free(h->mem);
    free(h->cpu);
    free(h->cpuacct);
    memset(h, 0, sizeof(*h));
}

static int detect(const char *root, hier_t *h)
{
    static const char *const mem[] = {"memory"};
    static const char *const cpu[] = {"cpu,cpuacct", "cpu", "cpuacct,cpu"};
    static const char *const acct[] = {"cpu,cpuacct", "cpuacct", "cpuacct,cpu", "cpu"};
    char *probe = join(root, "cgroup.controllers");

    memset(h, 0, sizeof(*h));
    if (!probe)
        return -ENOMEM;
    if (access(probe, F_OK) == 0) {
        free(probe);
        h->version = AGENT_CGROUP_V2;
        h->mem = strdup(root);
        h->cpu = strdup(root);
        h->cpuacct = strdup(root);
    } else {
        free(probe);
        h->version = AGENT_CGROUP_V1;
        h->mem = first_dir(root, mem, KOPT_ARRAY_SIZE(mem));
        h->cpu = first_dir(root, cpu, KOPT_ARRAY_SIZE(cpu));
        h->cpuacct = first_dir(root, acct, KOPT_ARRAY_SIZE(acct));
        if (!h->mem || !h->cpu || !h->cpuacct) {
            hier_clear(h);
            return -ENOENT;
        }
    }
    if (!h->mem || !h->cpu || !h->cpuacct) {
        hier_clear(h);
        return -ENOMEM;
    }
    return 0;
}

void agent_cgroup_container_clear(agent_cgroup_container_t *c)
{
    free(c->path);
    free(c->cpu_path);
    free(c->cpuacct_path);
    memset(c, 0, sizeof(*c));
}

void agent_cgroup_list_free(agent_cgroup_list_t *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        agent_cgroup_container_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Sets the three paths of c to the controller dirs joined with rel. */
static int set_paths(agent_cgroup_container_t *c, const hier_t *h, const char *mem_rel,
                     const char *cpu_rel, const char *acct_rel)
{
    c->version = h->version;
    c->path = join(h->mem, mem_rel);
    c->cpu_path = join(h->cpu, cpu_rel);
    c->cpuacct_path = join(h->cpuacct, acct_rel);
    if (!c->path || !c->cpu_path || !c->cpuacct_path) {
        agent_cgroup_container_clear(c);
        return -ENOMEM;
    }
    return 0;
}

/* Calls fn for each subdirectory of dir/rel; a directory gone meanwhile is empty. */
static int each_subdir(const char *dir, const char *rel,
                       int (*fn)(walk_t *, const char *, const char *), walk_t *w)
{
    char *path = join(dir, rel), *sub;
    struct dirent *e;
    DIR *d;
    int r = 0;

    if (!path)
        return -ENOMEM;
    d = opendir(path);
    if (!d) {
        r = errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        free(path);
        return r;
    }
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
            continue;
        sub = join(rel, e->d_name);
        if (!sub) {
            r = -ENOMEM;
            break;
        }
        r = fn(w, sub, e->d_name);
        free(sub);
    }
    closedir(d);
    free(path);
    return r;
}

static int on_container(walk_t *w, const char *rel, const char *name)
{
    agent_cgroup_container_t c = {0};
    agent_cgroup_list_t *l = w->list;
    int r;

    if (agent_cgroup_parse_container_dir(name, c.container_id, &c.runtime) < 0)
        return 0;
    if (l->n == MAX_CONTAINERS)
        return 0;
    if (l->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        agent_cgroup_container_t *items = realloc(l->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        l->items = items;
        w->cap = cap;
    }
    c.qos = w->qos;
    memcpy(c.pod_uid, w->uid, sizeof(c.pod_uid));
    r = set_paths(&c, w->h, rel, rel, rel);
    if (r == 0)
        l->items[l->n++] = c;
    return r;
}

static int on_pod_or_qos(walk_t *w, const char *rel, const char *name)
{
    agent_cgroup_qos_t qos;

    if (agent_cgroup_parse_pod_dir(name, w->uid) == 0)
        return each_subdir(w->h->mem, rel, on_container, w);
    if (w->qos == AGENT_CGROUP_QOS_GUARANTEED && agent_cgroup_parse_qos_dir(name, &qos) == 0) {
        int r;
        w->qos = qos;
        r = each_subdir(w->h->mem, rel, on_pod_or_qos, w);
        w->qos = AGENT_CGROUP_QOS_GUARANTEED;
        return r;
    }
    return 0;
}

int agent_cgroup_scan(const char *root, agent_cgroup_list_t *out)
{
    /* systemd driver, cgroupfs driver, and both under a kubelet slice (kind). */
    static const char *const tops[] = {"kubepods.slice", "kubepods",
                                       "kubelet.slice/kubelet-kubepods.slice", "kubelet/kubepods"};
    walk_t w = {.list = out};
    hier_t h;
    int r;

    out->items = NULL;
    out->n = 0;
    r = detect(root, &h);
    if (r < 0)
        return r;
    w.h = &h;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(tops); i++) {
        char *top = join(h.mem, tops[i]);
        int found = top && is_dir(top);
        free(top);
        if (!found)
            continue;
        r = each_subdir(h.mem, tops[i], on_pod_or_qos, &w);
        break;
    }
    hier_clear(&h);
    if (r < 0)
        agent_cgroup_list_free(out);
    return r;
}

int agent_cgroup_of_process(const char *root, const char *proc_cgroup, size_t len,
                            agent_cgroup_container_t *out)
{
    char mem[4096], cpu[4096], acct[4096];
    hier_t h;
    int r;

    memset(out, 0, sizeof(*out));
    r = detect(root, &h);
    if (r < 0)
        return r;
    if (h.version == AGENT_CGROUP_V2) {
        r = agent_cgroup_parse_proc_cgroup(proc_cgroup, len, "", mem, sizeof(mem));
        if (r == 0)
            r = set_paths(out, &h, mem, mem, mem);
    } else {
        r = agent_cgroup_parse_proc_cgroup(proc_cgroup, len, "memory", mem, sizeof(mem));
        if (r == 0)
            r = agent_cgroup_parse_proc_cgroup(proc_cgroup, len, "cpu", cpu, sizeof(cpu));
        if (r == 0)
            r = agent_cgroup_parse_proc_cgroup(proc_cgroup, len, "cpuacct", acct, sizeof(acct));
        if (r == 0)
            r = set_paths(out, &h, mem, cpu, acct);
    }
    hier_clear(&h);
    return r;
}

/* Reads dir/name whole. -ENOENT: dir is gone (the container exited);
 * -ENODATA: dir is there but the file is not (an optional file). */
static int read_file(const char *dir, const char *name, char *buf, size_t cap, size_t *len)
{
    char path[4352];
    size_t got = 0;
    int fd, r = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        if (r == -ENOENT && access(dir, F_OK) == 0)
            return -ENODATA;
        return r;
    }
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* A removed cgroup's open files answer ENODEV. */
            r = errno == ENODEV ? -ENOENT : -errno;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return r;
}

/* Reads and parses one file into s when it exists; r is 1 when it was read. */
#define READ_OR_SKIP(dir, name)                                                                    \
    do {                                                                                           \
        r = read_file((dir), (name), buf, FILE_BUF, &len);                                         \
        if (r < 0 && r != -ENODATA)                                                                \
            goto out;                                                                              \
        r = r == 0;                                                                                \
    } while (0)

static int read_v2(const agent_cgroup_container_t *c, agent_cgroup_sample_t *s, char *buf)
{
    agent_cgroup_cpu_t cpu;
    agent_cgroup_memstat_t ms;
    uint64_t v, quota, period;
    size_t len;
    int r;

    READ_OR_SKIP(c->cpuacct_path, "cpu.stat");
    if (r && agent_cgroup_parse_cpu_stat_v2(buf, len, &cpu) == 0) {
        s->cpu_usage_ns = cpu.usage_ns;
        s->cpu_periods = cpu.periods;
        s->cpu_throttled_periods = cpu.throttled_periods;
        s->cpu_throttled_ns = cpu.throttled_ns;
        s->have |= AGENT_CGROUP_HAVE_CPU | AGENT_CGROUP_HAVE_THROTTLE;
    } else if (r) {
        return -EINVAL;
    }
    READ_OR_SKIP(c->path, "memory.current");
    if (r && agent_cgroup_parse_u64(buf, len, &s->memory_usage_bytes) == 0)
        s->have |= AGENT_CGROUP_HAVE_MEMORY;
    READ_OR_SKIP(c->path, "memory.stat");
    if (r && agent_cgroup_parse_memory_stat_v2(buf, len, &ms) == 0) {
        s->memory_rss_bytes = ms.anon;
        s->memory_inactive_file_bytes = ms.inactive_file;
        s->have |= AGENT_CGROUP_HAVE_MEMSTAT;
    }
    READ_OR_SKIP(c->path, "memory.events");
    if (r && agent_cgroup_parse_oom_kill(buf, len, &s->oom_kills) == 0)
        s->have |= AGENT_CGROUP_HAVE_OOM;
    READ_OR_SKIP(c->path, "memory.max");
    if (r && agent_cgroup_parse_u64(buf, len, &v) == 0) {
        s->memory_limit_bytes = v == AGENT_CGROUP_UNLIMITED ? 0 : v;
        s->have |= AGENT_CGROUP_HAVE_MEM_LIMIT;
    }
    READ_OR_SKIP(c->cpu_path, "cpu.max");
    if (r && agent_cgroup_parse_cpu_max(buf, len, &quota, &period) == 0) {
        s->cpu_quota_us = quota == AGENT_CGROUP_UNLIMITED ? 0 : quota;
        s->cpu_period_us = period;
        s->have |= AGENT_CGROUP_HAVE_CPU_LIMIT;
    }
    r = 0;
out:
    return r;
}

static int read_v1(const agent_cgroup_container_t *c, agent_cgroup_sample_t *s, char *buf)
{
    agent_cgroup_cpu_t cpu;
    agent_cgroup_memstat_t ms;
    uint64_t v, period;
    int64_t quota;
    size_t len;
    int r;

    READ_OR_SKIP(c->cpuacct_path, "cpuacct.usage");
    if (r && agent_cgroup_parse_u64(buf, len, &s->cpu_usage_ns) == 0)
        s->have |= AGENT_CGROUP_HAVE_CPU;
    READ_OR_SKIP(c->cpu_path, "cpu.stat");
    if (r && agent_cgroup_parse_cpu_stat_v1(buf, len, &cpu) == 0) {
        s->cpu_periods = cpu.periods;
        s->cpu_throttled_periods = cpu.throttled_periods;
        s->cpu_throttled_ns = cpu.throttled_ns;
        s->have |= AGENT_CGROUP_HAVE_THROTTLE;
    }
    READ_OR_SKIP(c->path, "memory.usage_in_bytes");
    if (r && agent_cgroup_parse_u64(buf, len, &s->memory_usage_bytes) == 0)
        s->have |= AGENT_CGROUP_HAVE_MEMORY;
    READ_OR_SKIP(c->path, "memory.stat");
    if (r && agent_cgroup_parse_memory_stat_v1(buf, len, &ms) == 0) {
        s->memory_rss_bytes = ms.anon;
        s->memory_inactive_file_bytes = ms.inactive_file;
        s->have |= AGENT_CGROUP_HAVE_MEMSTAT;
    }
    READ_OR_SKIP(c->path, "memory.oom_control");
    if (r && agent_cgroup_parse_oom_kill(buf, len, &s->oom_kills) == 0)
        s->have |= AGENT_CGROUP_HAVE_OOM;
    READ_OR_SKIP(c->path, "memory.limit_in_bytes");
    if (r && agent_cgroup_parse_v1_limit(buf, len, &v) == 0) {
        s->memory_limit_bytes = v == AGENT_CGROUP_UNLIMITED ? 0 : v;
        s->have |= AGENT_CGROUP_HAVE_MEM_LIMIT;
    }
    READ_OR_SKIP(c->cpu_path, "cpu.cfs_quota_us");
    if (r && agent_cgroup_parse_s64(buf, len, &quota) == 0) {
        READ_OR_SKIP(c->cpu_path, "cpu.cfs_period_us");
        if (r && agent_cgroup_parse_u64(buf, len, &period) == 0 && period > 0) {
            s->cpu_quota_us = quota > 0 ? (uint64_t)quota : 0;
            s->cpu_period_us = period;
            s->have |= AGENT_CGROUP_HAVE_CPU_LIMIT;
        }
    }
    r = 0;
out:
    return r;
}

int agent_cgroup_read(const agent_cgroup_container_t *c, agent_cgroup_sample_t *s)
{
    char *buf = malloc(FILE_BUF);
    int r;

    memset(s, 0, sizeof(*s));
    if (!buf)
        return -ENOMEM;
    r = c->version == AGENT_CGROUP_V2 ? read_v2(c, s, buf) : read_v1(c, s, buf);
    free(buf);
    if (r < 0) {
        memset(s, 0, sizeof(*s));
        return r;
    }
    if ((s->have & AGENT_CGROUP_HAVE_MEMORY) && (s->have & AGENT_CGROUP_HAVE_MEMSTAT))
        s->memory_working_set_bytes = s->memory_usage_bytes > s->memory_inactive_file_bytes
                                          ? s->memory_usage_bytes - s->memory_inactive_file_bytes
                                          : 0;
    /* Nothing at all means this is not a cgroup directory. */
    return s->have ? 0 : -ENOENT;
}

const char *agent_cgroup_runtime_name(agent_cgroup_runtime_t rt)
{
    switch (rt) {
    case AGENT_CGROUP_RUNTIME_CONTAINERD:
        return "containerd";
    case AGENT_CGROUP_RUNTIME_CRIO:
        return "cri-o";
    case AGENT_CGROUP_RUNTIME_DOCKER:
        return "docker";
    default:
        return "";
    }
}
