/* kopt-agent-baseline: the floor for kopt-agent's cost in scripts/bench-agent.
 * Every interval it walks the kubepods tree under ROOT and reads each
 * container's files, the same ones the agent's cgroup source reads
 * (agent/cgroup.c), taking only the first number of each with strtoull: no
 * parsing, no windows, no network. Deliberately standalone (libc only), so
 * its memory is what reading the files costs.
 *
 *   kopt-agent-baseline ROOT [--interval SECONDS] */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const v2_files[] = {"cpu.stat",      "memory.current", "memory.stat",
                                       "memory.events", "memory.max",     "cpu.max"};
static const char *const v1_mem_files[] = {"memory.usage_in_bytes", "memory.stat",
                                           "memory.oom_control", "memory.limit_in_bytes"};
static const char *const v1_cpu_files[] = {"cpuacct.usage", "cpu.stat", "cpu.cfs_quota_us",
                                           "cpu.cfs_period_us"};

static volatile sig_atomic_t stop;
static unsigned long long checksum; /* keeps the reads from being optimised away */
static char buf[16384];

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void read_one(const char *dir, const char *name)
{
    char path[4352];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* "usage_usec 123": skip to the first digit. */
    checksum += strtoull(buf + strcspn(buf, "0123456789"), NULL, 10);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* mem and cpu are the same directory in both hierarchies (v1) or one (v2). */
static int walk(const char *mem, const char *cpu, int v2, int depth)
{
    char sub_mem[4096], sub_cpu[4096];
    struct dirent *e;
    int found = 0;
    DIR *d = opendir(mem);

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        snprintf(sub_mem, sizeof(sub_mem), "%s/%s", mem, e->d_name);
        snprintf(sub_cpu, sizeof(sub_cpu), "%s/%s", cpu, e->d_name);
        if (ends_with(e->d_name, ".scope")) {
            if (strstr(e->d_name, "-conmon-"))
                continue;
            found++;
            if (v2) {
                for (size_t i = 0; i < sizeof(v2_files) / sizeof(v2_files[0]); i++)
                    read_one(sub_mem, v2_files[i]);
            } else {
                for (size_t i = 0; i < sizeof(v1_mem_files) / sizeof(v1_mem_files[0]); i++)
                    read_one(sub_mem, v1_mem_files[i]);
                for (size_t i = 0; i < sizeof(v1_cpu_files) / sizeof(v1_cpu_files[0]); i++)
                    read_one(sub_cpu, v1_cpu_files[i]);
            }
        } else if (depth < 2 && ends_with(e->d_name, ".slice")) {
            found += walk(sub_mem, sub_cpu, v2, depth + 1);
        }
    }
    closedir(d);
    return found;
}

int main(int argc, char **argv)
{
    char probe[4096], mem[4096], cpu[4096];
    struct timespec next;
    const char *root = NULL;
    long interval = 10;
    unsigned long ticks = 0;
    int v2, n;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc)
            interval = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !root)
            root = argv[i];
        else {
            root = NULL;
            break;
        }
    }
    if (!root || interval < 1) {
        fprintf(stderr, "usage: kopt-agent-baseline ROOT [--interval SECONDS]\n");
        return 2;
    }
    snprintf(probe, sizeof(probe), "%s/cgroup.controllers", root);
    v2 = access(probe, F_OK) == 0;
    snprintf(mem, sizeof(mem), "%s%s/kubepods.slice", root, v2 ? "" : "/memory");
    snprintf(cpu, sizeof(cpu), "%s%s/kubepods.slice", root, v2 ? "" : "/cpu,cpuacct");
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!stop) {
        n = walk(mem, cpu, v2, 0);
        if (ticks++ == 0) {
            printf("first pass: %d containers (cgroup %s)\n", n, v2 ? "v2" : "v1");
            fflush(stdout);
        }
        next.tv_sec += interval;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
            ;
    }
    printf("passes %lu, checksum %llu\n", ticks, checksum);
    return 0;
}
