/* The process collector: the standard process_* metrics read from /proc/self at
 * scrape time (names as the Prometheus client libraries use them, so stock
 * dashboards work), plus kopt_build_info{version,component} 1. */
#include <kopt/metrics.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef KOPT_VERSION
#define KOPT_VERSION "unknown"
#endif

typedef struct {
    double utime, stime; /* clock ticks */
    double starttime;    /* clock ticks after boot */
    double vsize;        /* bytes */
    double rss;          /* pages */
} proc_stat_t;

/* Fields 14, 15, 22, 23, 24 of /proc/self/stat (proc(5)); the command name
 * may hold spaces and parentheses, so parsing starts after the last ')'. */
static int read_stat(proc_stat_t *st)
{
    char buf[1024], *p;
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n;
    int r;

    if (!f)
        return -errno;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    r = sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lf %lf %*d %*d %*d %*d %*d %*d"
               " %lf %lf %lf",
               &st->utime, &st->stime, &st->starttime, &st->vsize, &st->rss);
    return r == 5 ? 0 : -EINVAL;
}

static double cpu_seconds(void *data)
{
    proc_stat_t st;

    (void)data;
    if (read_stat(&st) < 0)
        return 0;
    return (st.utime + st.stime) / (double)sysconf(_SC_CLK_TCK);
}

static double resident_bytes(void *data)
{
    proc_stat_t st;

    (void)data;
    if (read_stat(&st) < 0)
        return 0;
    return st.rss * (double)sysconf(_SC_PAGESIZE);
}

static double virtual_bytes(void *data)
{
    proc_stat_t st;

    (void)data;
    return read_stat(&st) < 0 ? 0 : st.vsize;
}

static double boot_time(void)
{
    char line[256];
    double btime = 0;
    FILE *f = fopen("/proc/stat", "re");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lf", &btime) == 1)
            break;
    fclose(f);
    return btime;
}

static double start_time(void *data)
{
    proc_stat_t st;

    (void)data;
    if (read_stat(&st) < 0)
        return 0;
    return boot_time() + st.starttime / (double)sysconf(_SC_CLK_TCK);
}

static double open_fds(void *data)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    double n = 0;

    (void)data;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the fd of this opendir() itself */
}

static double max_fds(void *data)
{
    struct rlimit rl;

    (void)data;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (double)rl.rlim_cur;
}

int kopt_metrics_process_register(kopt_metrics_t *m, const char *component)
{
    static const struct {
        const char *name, *help;
        kopt_metrics_value_fn fn;
        int counter;
    } defs[] = {
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         cpu_seconds, 1},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", resident_bytes, 0},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", virtual_bytes, 0},
        {"process_open_fds", "Number of open file descriptors.", open_fds, 0},
        {"process_max_fds", "Maximum number of open file descriptors.", max_fds, 0},
        {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         start_time, 0},
    };
    kopt_metric_family_t *info;
    int r;

    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        if (defs[i].counter)
            r = kopt_metrics_counter_func(m, defs[i].name, defs[i].help, defs[i].fn, NULL);
        else
            r = kopt_metrics_gauge_func(m, defs[i].name, defs[i].help, defs[i].fn, NULL);
        if (r < 0 && r != -EEXIST) /* -EEXIST: registered already; fine */
            return r;
    }
    r = kopt_metrics_gauge(m, "kopt_build_info", "Build of this binary; the value is always 1.",
                           "version,component", &info);
    if (r < 0)
        return r;
    kopt_metric_gauge_set(kopt_metric_gauge_with(info, KOPT_VERSION, component ? component : ""),
                          1);
    return 0;
}
