/* kopt-agent-benchtree: the synthetic node for scripts/bench-agent. Writes a
 * kubepods tree of N containers in the cgroup v2 (or v1) systemd layout, in
 * the kernel's file formats (see tests/fixtures/cgroup/), prints "ready",
 * then advances the counters every second until SIGTERM so that rates are not
 * zero. Each file is replaced by rename, so a reader never sees half a file.
 *
 *   kopt-agent-benchtree DIR [--containers N] [--layout v2|v1]
 *
 * Pods hold a pause container and 1-3 app containers (containerd scopes) and
 * are Guaranteed, Burstable and BestEffort in turn. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTAINERS 100000
#define PERIOD_US 100000 /* cpu.max / cpu.cfs_period_us */

typedef enum { QOS_GUARANTEED, QOS_BURSTABLE, QOS_BESTEFFORT } qos_t;

/* One container's counters; mem and cpu are its directories (equal for v2). */
typedef struct {
    char *mem, *cpu;
    qos_t qos;
    double cores;      /* mean CPU use */
    uint64_t usage_us; /* cumulative CPU time */
    uint64_t periods, throttled, throttled_us;
    uint64_t mem_base;  /* bytes */
    uint64_t mem_limit; /* bytes, 0 = none */
    uint64_t quota_us;  /* 0 = none */
    uint64_t oom_kills;
    uint64_t mem_now; /* bytes, memory.current */
} ctr_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A uniform double in [0, 1) from (seed, salt). */
static double unit(uint64_t seed, uint64_t salt)
{
    return (double)(mix(seed * 1000003u + salt) >> 11) / 9007199254740992.0;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* Replaces dir/name with text: a temp file (a dot name, which no reader
 * lists) renamed over it. */
static int put(const char *dir, const char *name, const char *text, size_t len)
{
    char tmp[4352], path[4352];
    int fd, r = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (write(fd, text, len) != (ssize_t)len)
        r = -EIO;
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    return r;
}

static int putf(const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int putf(const char *dir, const char *name, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(text))
        return -EOVERFLOW;
    return put(dir, name, text, (size_t)n);
}

/* memory.stat as the v2 kernel prints it (the keys of Linux 6.1). */
static int put_memstat_v2(const ctr_t *c, uint64_t anon, uint64_t file, uint64_t inactive_file)
{
    return putf(c->mem, "memory.stat",
                "anon %llu\nfile %llu\nkernel 1310720\nkernel_stack 147456\npagetables "
                "413696\nsec_pagetables 0\npercpu 2880\nsock 0\nvmalloc 0\nshmem 0\nzswap "
                "0\nzswapped 0\nfile_mapped 3244032\nfile_dirty 4096\nfile_writeback "
                "0\nswapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon "
                "%llu\nactive_anon 0\ninactive_file %llu\nactive_file %llu\nunevictable "
                "0\nslab_reclaimable 511256\nslab_unreclaimable 228680\nslab "
                "739936\nworkingset_refault_anon 0\nworkingset_refault_file "
                "12\nworkingset_activate_anon 0\nworkingset_activate_file "
                "0\nworkingset_restore_anon 0\nworkingset_restore_file "
                "0\nworkingset_nodereclaim 0\npgscan 0\npgsteal 0\npgscan_kswapd "
                "0\npgscan_direct 0\npgsteal_kswapd 0\npgsteal_direct 0\npgfault "
                "98234\npgmajfault 17\npgrefill 0\npgactivate 3\npgdeactivate 0\npglazyfree "
                "0\npglazyfreed 0\nzswpin 0\nzswpout 0\nthp_fault_alloc 0\nthp_collapse_alloc 0\n",
                (unsigned long long)anon, (unsigned long long)file, (unsigned long long)anon,
                (unsigned long long)inactive_file, (unsigned long long)(file - inactive_file));
}

/* memory.stat as the v1 kernel prints it (local, then hierarchical total_). */
static int put_memstat_v1(const ctr_t *c, uint64_t anon, uint64_t file, uint64_t inactive_file)
{
    unsigned long long a = anon, f = file, i = inactive_file, act = file - inactive_file;
    unsigned long long lim = c->mem_limit ? c->mem_limit : 9223372036854771712ull;

    return putf(c->mem, "memory.stat",
                "cache %llu\nrss %llu\nrss_huge 0\nshmem 0\nmapped_file 3244032\ndirty "
                "4096\nwriteback 0\nworkingset_refault_anon 0\nworkingset_refault_file 12\nswap "
                "0\nswapcached 0\npgpgin 40211\npgpgout 19876\npgfault 98234\npgmajfault "
                "17\ninactive_anon %llu\nactive_anon 0\ninactive_file %llu\nactive_file "
                "%llu\nunevictable 0\nhierarchical_memory_limit "
                "%llu\nhierarchical_memsw_limit 9223372036854771712\ntotal_cache "
                "%llu\ntotal_rss %llu\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file "
                "3244032\ntotal_dirty 4096\ntotal_writeback 0\ntotal_workingset_refault_anon "
                "0\ntotal_workingset_refault_file 12\ntotal_swap 0\ntotal_swapcached "
                "0\ntotal_pgpgin 40211\ntotal_pgpgout 19876\ntotal_pgfault "
                "98234\ntotal_pgmajfault 17\ntotal_inactive_anon %llu\ntotal_active_anon "
                "0\ntotal_inactive_file %llu\ntotal_active_file %llu\ntotal_unevictable 0\n",
                f, a, a, i, act, lim, f, a, a, i, act);
}

/* Writes the files that change: CPU counters and memory. tick is seconds
 * since start. */
static int update(ctr_t *c, int v2, uint64_t seed, uint64_t tick)
{
    double wave = 0.5 + unit(seed, tick * 7 + 1);      /* 0.5-1.5, mean 1 */
    uint64_t used = (uint64_t)(c->cores * 1e6 * wave); /* us this second */
    uint64_t anon, file, inactive;
    int r;

    if (c->quota_us) {
        uint64_t cap = c->quota_us * 10; /* us per second at the quota */
        c->periods += 10;
        if (used > cap) {
            c->throttled += 1 + (used - cap) * 10 / (cap + 1);
            c->throttled_us += used - cap;
            used = cap;
        }
    }
    c->usage_us += used;
    c->mem_now = c->mem_base + (uint64_t)((double)c->mem_base * 0.3 * unit(seed, tick * 7 + 2));
    if (c->mem_limit && c->mem_now > c->mem_limit)
        c->mem_now = c->mem_limit;
    /* A rare OOM kill, so the counter is exercised too. */
    if (unit(seed, tick * 7 + 3) < 0.0005)
        c->oom_kills++;
    anon = c->mem_now / 10 * 7;
    file = c->mem_now - anon;
    inactive = file / 2;
    if (v2) {
        r = putf(c->cpu, "cpu.stat",
                 "usage_usec %llu\nuser_usec %llu\nsystem_usec %llu\nnr_periods "
                 "%llu\nnr_throttled %llu\nthrottled_usec %llu\nnr_bursts 0\nburst_usec 0\n",
                 (unsigned long long)c->usage_us, (unsigned long long)c->usage_us / 4 * 3,
                 (unsigned long long)c->usage_us - (unsigned long long)c->usage_us / 4 * 3,
                 (unsigned long long)c->periods, (unsigned long long)c->throttled,
                 (unsigned long long)c->throttled_us);
        if (r == 0)
            r = putf(c->mem, "memory.current", "%llu\n", (unsigned long long)c->mem_now);
        if (r == 0)
            r = put_memstat_v2(c, anon, file, inactive);
        if (r == 0)
            r = putf(c->mem, "memory.events",
                     "low 0\nhigh 0\nmax %llu\noom %llu\noom_kill %llu\noom_group_kill 0\n",
                     (unsigned long long)c->oom_kills * 3, (unsigned long long)c->oom_kills,
                     (unsigned long long)c->oom_kills);
        return r;
    }
    r = putf(c->cpu, "cpuacct.usage", "%llu\n", (unsigned long long)c->usage_us * 1000);
    if (r == 0)
        r = putf(c->cpu, "cpu.stat",
                 "nr_periods %llu\nnr_throttled %llu\nthrottled_time %llu\nnr_bursts "
                 "0\nburst_time 0\n",
                 (unsigned long long)c->periods, (unsigned long long)c->throttled,
                 (unsigned long long)c->throttled_us * 1000);
    if (r == 0)
        r = putf(c->mem, "memory.usage_in_bytes", "%llu\n", (unsigned long long)c->mem_now);
    if (r == 0)
        r = put_memstat_v1(c, anon, file, inactive);
    if (r == 0)
        r = putf(c->mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill %llu\n",
                 (unsigned long long)c->oom_kills);
    return r;
}

/* Files written once: limits and cgroup.procs. */
static int put_static(const ctr_t *c, int v2, int pid)
{
    int r;

    if (v2) {
        r = putf(c->mem, "cgroup.procs", "%d\n", pid);
        if (r == 0 && c->mem_limit)
            r = putf(c->mem, "memory.max", "%llu\n", (unsigned long long)c->mem_limit);
        else if (r == 0)
            r = putf(c->mem, "memory.max", "max\n");
        if (r == 0 && c->quota_us)
            r = putf(c->cpu, "cpu.max", "%llu %d\n", (unsigned long long)c->quota_us, PERIOD_US);
        else if (r == 0)
            r = putf(c->cpu, "cpu.max", "max %d\n", PERIOD_US);
        return r;
    }
    r = putf(c->mem, "cgroup.procs", "%d\n", pid);
    if (r == 0)
        r = putf(c->mem, "memory.limit_in_bytes", "%llu\n",
                 c->mem_limit ? (unsigned long long)c->mem_limit : 9223372036854771712ull);
    if (r == 0)
        r = putf(c->cpu, "cpu.cfs_quota_us", "%lld\n", c->quota_us ? (long long)c->quota_us : -1ll);
    if (r == 0)
        r = putf(c->cpu, "cpu.cfs_period_us", "%d\n", PERIOD_US);
    if (r == 0)
        r = putf(c->cpu, "cpu.shares", "%d\n", c->qos == QOS_BESTEFFORT ? 2 : 1024);
    return r;
}

/* The pod directory relative to a hierarchy: kubepods.slice/[<qos>/]<pod>. */
static void pod_rel(char *out, size_t cap, int pod, qos_t qos)
{
    static const char *const qname[] = {"", "burstable", "besteffort"};
    uint64_t h = mix((uint64_t)pod + 77), g = mix(h);
    char uid[40];

    snprintf(uid, sizeof(uid), "%08llx_%04llx_4%03llx_%04llx_%012llx",
             (unsigned long long)(h >> 32), (unsigned long long)(h >> 16 & 0xffff),
             (unsigned long long)(h & 0xfff), (unsigned long long)(0x8000 | (g >> 48 & 0x3fff)),
             (unsigned long long)(g & 0xffffffffffffull));
    if (qos == QOS_GUARANTEED)
        snprintf(out, cap, "kubepods.slice/kubepods-pod%s.slice", uid);
    else
        snprintf(out, cap, "kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice", qname[qos],
                 qname[qos], uid);
}

static int make_container(ctr_t *c, const char *root, int v2, const char *pod, int idx, qos_t qos,
                          int pause)
{
    char rel[1024];
    uint64_t a = mix((uint64_t)idx * 4 + 1), b = mix(a), d = mix(b), e = mix(d);
    int r;

    snprintf(rel, sizeof(rel), "%s/cri-containerd-%016llx%016llx%016llx%016llx.scope", pod,
             (unsigned long long)a, (unsigned long long)b, (unsigned long long)d,
             (unsigned long long)e);
    memset(c, 0, sizeof(*c));
    c->qos = qos;
    /* Pause containers idle; the rest between 0.002 and ~0.8 cores. */
    c->cores = pause ? 0.0001 : 0.002 + 0.8 * unit(a, 1) * unit(a, 2);
    c->usage_us = (uint64_t)(unit(a, 3) * 1e10);
    c->mem_base = pause ? 700 * 1024 : (uint64_t)(16 + 1000 * unit(a, 4) * unit(a, 5)) << 20;
    if (qos != QOS_BESTEFFORT && !pause) {
        c->mem_limit = c->mem_base * 2;
        c->quota_us = (uint64_t)(c->cores * 1.3 * PERIOD_US) + 1000;
    }
    if (v2) {
        if (asprintf(&c->mem, "%s/%s", root, rel) < 0)
            return -ENOMEM;
        c->cpu = c->mem;
    } else if (asprintf(&c->mem, "%s/memory/%s", root, rel) < 0 ||
               asprintf(&c->cpu, "%s/cpu,cpuacct/%s", root, rel) < 0) {
        return -ENOMEM;
    }
    r = mkdirs(c->mem);
    if (r == 0 && c->cpu != c->mem)
        r = mkdirs(c->cpu);
    if (r == 0)
        r = put_static(c, v2, 1000 + idx);
    if (r == 0)
        r = update(c, v2, a, 0);
    return r;
}

static int make_tree(const char *root, int v2, int n, ctr_t *cs)
{
    char pod[256], path[4352];
    int made = 0, r = 0;

    if (v2)
        r = putf(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    for (int p = 0; r == 0 && made < n; p++) {
        qos_t qos = (qos_t)(p % 3);
        int apps = 1 + p % 3;

        pod_rel(pod, sizeof(pod), p, qos);
        /* The pod slice itself, with cgroup.procs empty as the kernel has it. */
        snprintf(path, sizeof(path), "%s%s/%s", root, v2 ? "" : "/memory", pod);
        r = mkdirs(path);
        if (r == 0)
            r = putf(path, "cgroup.procs", "%s", "");
        for (int i = 0; r == 0 && i <= apps && made < n; i++, made++)
            r = make_container(&cs[made], root, v2, pod, made, qos, i == 0);
    }
    return r;
}

static int usage(void)
{
    fprintf(stderr, "usage: kopt-agent-benchtree DIR [--containers N] [--layout v2|v1]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct timespec next;
    const char *root = NULL;
    int n = 300, v2 = 1, r, code = 0;
    uint64_t tick = 0;
    ctr_t *cs;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--containers") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--layout") == 0 && i + 1 < argc)
            v2 = strcmp(argv[++i], "v1") != 0;
        else if (argv[i][0] != '-' && !root)
            root = argv[i];
        else
            return usage();
    }
    if (!root || n < 1 || n > MAX_CONTAINERS)
        return usage();
    cs = calloc((size_t)n, sizeof(*cs));
    if (!cs)
        return 1;
    r = mkdirs(root);
    if (r == 0)
        r = make_tree(root, v2, n, cs);
    if (r < 0) {
        fprintf(stderr, "kopt-agent-benchtree: writing the tree under %s: %s\n", root,
                strerror(-r));
        free(cs);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready containers=%d layout=%s root=%s\n", n, v2 ? "v2" : "v1", root);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!stop) {
        next.tv_sec++;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
            ;
        tick++;
        for (int i = 0; i < n && !stop; i++) {
            r = update(&cs[i], v2, mix((uint64_t)i * 4 + 1), tick);
            if (r < 0) {
                fprintf(stderr, "kopt-agent-benchtree: updating %s: %s; stopping\n", cs[i].mem,
                        strerror(-r));
                code = 1;
                stop = 1;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (cs[i].cpu != cs[i].mem)
            free(cs[i].cpu);
        free(cs[i].mem);
    }
    free(cs);
    return code;
}
