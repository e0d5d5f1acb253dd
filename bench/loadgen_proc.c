/* CPU time and memory of another process (kopt-ingest, nats-server), read
 * from /proc/<pid>/stat (utime, stime in clock ticks) and /proc/<pid>/status
 * (VmRSS, VmHWM in kB) and /proc/<pid>/schedstat (run-queue wait of the
 * main thread), so the bench needs no cooperation from it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

static int read_stat(pid_t pid, lg_proc_sample_t *s)
{
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    double tick = (double)sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields start after the last ')'. */
    p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -EIO;
    s->user_s = (double)utime / tick;
    s->sys_s = (double)stime / tick;
    return 0;
}

static int read_status(pid_t pid, lg_proc_sample_t *s)
{
    char path[64], line[256];
    unsigned long long kb;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            s->rss_kb = kb;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            s->hwm_kb = kb;
    }
    fclose(f);
    return 0;
}

/* The main thread's time runnable but not running (ns): how long the
 * loop thread of a daemon waited for a CPU, e.g. on a busy machine. */
static void read_schedstat(pid_t pid, lg_proc_sample_t *s)
{
    char path[64];
    unsigned long long run, wait;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return;
    if (fscanf(f, "%llu %llu", &run, &wait) == 2)
        s->main_wait_s = (double)wait / 1e9;
    fclose(f);
}

int lg_proc_sample(pid_t pid, lg_proc_sample_t *s)
{
    int r;

    memset(s, 0, sizeof(*s));
    r = read_stat(pid, s);
    if (r == 0)
        read_schedstat(pid, s);
    return r < 0 ? r : read_status(pid, s);
}
