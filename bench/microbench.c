/* See microbench.h. */
#include "microbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mb_args(int argc, char **argv, const char *usage, double *seconds, int *quick)
{
    *seconds = 2;
    *quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            *quick = 1;
            *seconds = 0.02;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;

            *seconds = strtod(argv[++i], &end);
            if (*end || *seconds <= 0) {
                fprintf(stderr, "%s: bad --seconds \"%s\"\n", argv[0], argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr, "%s", usage);
            return -1;
        }
    }
    return 0;
}

int mb_run(const char *name, mb_fn fn, void *arg, uint64_t round, double seconds, mb_result_t *out)
{
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w;
    uint64_t i = 0;

    memset(out, 0, sizeof(*out));
    out->name = name;
    do {
        for (uint64_t k = 0; k < round; k++, i++) {
            int r = fn(arg, i);

            if (r < 0) {
                fprintf(stderr, "benchmark case \"%s\" failed at call %llu: %s\n", name,
                        (unsigned long long)i, strerror(-r));
                return r;
            }
        }
        w = clock_s(CLOCK_MONOTONIC);
    } while (w - w0 < seconds);
    out->calls = i;
    out->wall_s = w - w0;
    out->cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    return 0;
}

void mb_machine(char *out, size_t len)
{
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");

    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = 0;
        fclose(f);
    }
    snprintf(out, len, "%ld cores, load %.2f %.2f %.2f", sysconf(_SC_NPROCESSORS_ONLN), load[0],
             load[1], load[2]);
}

void mb_print(const char *title, const mb_result_t *rows, size_t n, size_t baseline)
{
    char machine[128];
    double base = rows[baseline].calls ? rows[baseline].cpu_s / (double)rows[baseline].calls : 0;

    mb_machine(machine, sizeof(machine));
    printf("%s (%s)\n", title, machine);
    printf("%-36s %10s %10s %12s %14s %10s\n", "case", "us/call", "CPU us", "calls/CPU-s",
           "items/CPU-s", "x baseline");
    for (size_t i = 0; i < n; i++) {
        const mb_result_t *r = &rows[i];
        double cpu = r->calls ? r->cpu_s / (double)r->calls : 0;
        double per_s = cpu > 0 ? 1 / cpu : 0;
        char items[32] = "-";

        if (r->per_call_items > 0)
            snprintf(items, sizeof(items), "%.0f %s", per_s * r->per_call_items, r->item);
        printf("%-36s %10.3f %10.3f %12.0f %14s %9.2f%s\n", r->name,
               r->calls ? r->wall_s / (double)r->calls * 1e6 : 0, cpu * 1e6, per_s, items,
               base > 0 ? cpu / base : 0, i == baseline ? " (baseline)" : "");
    }
    fflush(stdout);
}
