/* kopt-agent-bench: the sampler of scripts/bench-agent. Every second it reads
 * each named process's CPU time (utime + stime) and memory (VmRSS, VmHWM)
 * from /proc with loadgen_proc.c, for --duration seconds, then prints one
 * RESULT line per process. Each process is measured on its own, so what the
 * tree updater or the scraper costs never lands on the agent.
 *
 *   kopt-agent-bench --duration S [--interval S] NAME=PID...
 *
 * cpu_pct is percent of one core over the run (first to last sample);
 * cpu_peak_pct the busiest single interval; rss_max_mb the largest VmRSS
 * seen; hwm_mb VmHWM at the end (the peak since the process started);
 * anon_mb, file_mb, shmem_mb and threads are from the last sample. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen.h"

#define MAX_PROCS 16

typedef struct {
    const char *name;
    pid_t pid;
    int samples, gone;
    double t0, cpu0, t_last, cpu_last, peak_pct;
    uint64_t rss_max_kb, rss_sum_kb, hwm_kb;
    uint64_t anon_kb, file_kb, shmem_kb, threads; /* at the last sample */
} proc_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the RSS is made of (loadgen_proc.c reads only the totals): anonymous
 * memory is the process's own; file pages are mostly shared libraries' code,
 * which every process mapping them also counts. */
static void read_breakdown(proc_t *p)
{
    char path[64], line[256];
    unsigned long long v;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssAnon: %llu kB", &v) == 1)
            p->anon_kb = v;
        else if (sscanf(line, "RssFile: %llu kB", &v) == 1)
            p->file_kb = v;
        else if (sscanf(line, "RssShmem: %llu kB", &v) == 1)
            p->shmem_kb = v;
        else if (sscanf(line, "Threads: %llu", &v) == 1)
            p->threads = v;
    }
    fclose(f);
}

static void sample(proc_t *p)
{
    lg_proc_sample_t s;
    double t, cpu;

    if (p->gone)
        return;
    if (lg_proc_sample(p->pid, &s) < 0) {
        fprintf(stderr, "kopt-agent-bench: %s (pid %d) is gone; its figures end here\n", p->name,
                (int)p->pid);
        p->gone = 1;
        return;
    }
    t = now_s();
    cpu = s.user_s + s.sys_s;
    if (p->samples == 0) {
        p->t0 = t;
        p->cpu0 = cpu;
    } else if (t > p->t_last) {
        double pct = 100.0 * (cpu - p->cpu_last) / (t - p->t_last);
        if (pct > p->peak_pct)
            p->peak_pct = pct;
    }
    p->t_last = t;
    p->cpu_last = cpu;
    p->samples++;
    if (s.rss_kb > p->rss_max_kb)
        p->rss_max_kb = s.rss_kb;
    p->rss_sum_kb += s.rss_kb;
    p->hwm_kb = s.hwm_kb;
    read_breakdown(p);
}

static void report(const proc_t *p)
{
    double secs = p->t_last - p->t0, cpu = p->cpu_last - p->cpu0;

    printf("RESULT name=%s pid=%d samples=%d seconds=%.1f cpu_s=%.2f cpu_pct=%.3f "
           "cpu_peak_pct=%.1f rss_max_mb=%.2f rss_avg_mb=%.2f hwm_mb=%.2f anon_mb=%.2f "
           "file_mb=%.2f shmem_mb=%.2f threads=%llu gone=%d\n",
           p->name, (int)p->pid, p->samples, secs, cpu, secs > 0 ? 100.0 * cpu / secs : 0.0,
           p->peak_pct, (double)p->rss_max_kb / 1024.0,
           p->samples ? (double)p->rss_sum_kb / p->samples / 1024.0 : 0.0,
           (double)p->hwm_kb / 1024.0, (double)p->anon_kb / 1024.0, (double)p->file_kb / 1024.0,
           (double)p->shmem_kb / 1024.0, (unsigned long long)p->threads, p->gone);
}

static int usage(void)
{
    fprintf(stderr, "usage: kopt-agent-bench --duration S [--interval S] NAME=PID...\n");
    return 2;
}

int main(int argc, char **argv)
{
    proc_t procs[MAX_PROCS];
    double duration = 0, interval = 1, start;
    struct timespec next;
    int n = 0;

    memset(procs, 0, sizeof(procs));
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');

        if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc) {
            duration = atof(argv[++i]);
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = atof(argv[++i]);
        } else if (eq && eq != argv[i] && n < MAX_PROCS && atoi(eq + 1) > 0) {
            *eq = '\0';
            procs[n].name = argv[i];
            procs[n].pid = (pid_t)atoi(eq + 1);
            n++;
        } else {
            return usage();
        }
    }
    if (duration <= 0 || interval <= 0 || n == 0)
        return usage();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    start = now_s();
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        long ns = (long)(interval * 1e9);

        for (int i = 0; i < n; i++)
            sample(&procs[i]);
        if (stop || now_s() - start >= duration)
            break;
        next.tv_sec += ns / 1000000000L;
        next.tv_nsec += ns % 1000000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
            ;
    }
    for (int i = 0; i < n; i++)
        report(&procs[i]);
    return 0;
}
