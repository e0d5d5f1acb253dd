/* The sums of `kopt-advisor backtest` and how they print (backtest.h).
 * Shares are of windows, not of series, so a series with many pods weighs
 * more, as it does in the cluster; the per-series counts say how many
 * workloads a strategy would hurt. Pure: no I/O but the FILE given. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backtest.h"

void adv_backtest_totals_init(adv_backtest_totals_t *t, kopt_engine_strategy_t strategy)
{
    memset(t, 0, sizeof(*t));
    t->strategy = strategy;
}

void adv_backtest_totals_add(adv_backtest_totals_t *t, const kopt_engine_backtest_t *b, double pods)
{
    double w = (double)b->windows;

    if (!b->valid) {
        t->skipped++;
        return;
    }
    if (!(pods > 0))
        pods = 1;
    t->series++;
    t->windows += b->windows;
    /* The engine's shares are counts over b->windows: back to counts. */
    t->cpu_windows_over_request += b->cpu_over_request_share * w;
    t->memory_windows_over_request += b->memory_over_request_share * w;
    t->cpu_windows_over_limit += b->cpu_over_limit_share * w;
    t->memory_windows_over_limit += b->memory_over_limit_share * w;
    t->series_memory_over_request += b->memory_over_request_share > 0;
    t->series_cpu_over_request += b->cpu_over_request_share > ADV_BACKTEST_CPU_SERIES_SHARE;
    t->reserved_core_hours += b->reserved_core_hours * pods;
    t->reserved_gib_hours += b->reserved_gib_hours * pods;
    t->used_core_hours += b->used_core_hours * pods;
    t->used_gib_hours += b->used_gib_hours * pods;
}

double adv_backtest_share(const adv_backtest_totals_t *t, double part)
{
    return t->windows > 0 ? part / (double)t->windows : 0;
}

static void utc(int64_t when, char *out, size_t len)
{
    time_t t = (time_t)when;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *or_all(const char *s, const char *all)
{
    return s && *s ? s : all;
}

int adv_backtest_print_table(FILE *f, const adv_backtest_report_t *rep)
{
    char from[32], to[32];

    utc(rep->from, from, sizeof(from));
    utc(rep->to, to, sizeof(to));
    fprintf(f,
            "backtest of %zu series (cluster %s, namespace %s), history %s to %s: each fitted on "
            "the first 2/3 of its own history, scored on the rest\n",
            rep->containers, or_all(rep->cluster, "all"), or_all(rep->namespace_, "all"), from, to);
    fprintf(f, "%-8s %6s %7s %10s %10s %8s %8s %8s %8s %10s %10s\n", "STRATEGY", "SERIES",
            "SKIPPED", "RESERVED", "RESERVED", "WINDOWS", "WINDOWS", "SERIES", "SERIES", "USED",
            "USED");
    fprintf(f, "%-8s %6s %7s %10s %10s %8s %8s %8s %8s %10s %10s\n", "", "", "", "CORE-H", "GIB-H",
            "CPU>REQ", "MEM>REQ", "MEM>REQ", "CPU>10%", "CORE-H", "GIB-H");
    for (size_t i = 0; i < rep->n; i++) {
        const adv_backtest_totals_t *t = &rep->totals[i];

        fprintf(f, "%-8s %6u %7u %10.2f %10.2f %7.2f%% %7.2f%% %8u %8u %10.2f %10.2f\n",
                kopt_engine_strategy_name(t->strategy), t->series, t->skipped,
                t->reserved_core_hours, t->reserved_gib_hours,
                100 * adv_backtest_share(t, t->cpu_windows_over_request),
                100 * adv_backtest_share(t, t->memory_windows_over_request),
                t->series_memory_over_request, t->series_cpu_over_request, t->used_core_hours,
                t->used_gib_hours);
    }
    fputs("WINDOWS: share of scored windows above the fitted request. SERIES MEM>REQ: series "
          "above it in any window;\nSERIES CPU>10%: series above the CPU request in more than "
          "10 % of their windows. Hours are per container x its pods.\n",
          f);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}

static json_t *totals_json(const adv_backtest_totals_t *t)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f}",
                     "strategy", kopt_engine_strategy_name(t->strategy), "series",
                     (json_int_t)t->series, "skipped", (json_int_t)t->skipped, "windows",
                     (json_int_t)t->windows, "cpuOverRequestShare",
                     adv_backtest_share(t, t->cpu_windows_over_request), "memoryOverRequestShare",
                     adv_backtest_share(t, t->memory_windows_over_request), "cpuOverLimitShare",
                     adv_backtest_share(t, t->cpu_windows_over_limit), "memoryOverLimitShare",
                     adv_backtest_share(t, t->memory_windows_over_limit), "seriesMemoryOverRequest",
                     (json_int_t)t->series_memory_over_request, "seriesCpuOverRequest",
                     (json_int_t)t->series_cpu_over_request, "reservedCoreHours",
                     t->reserved_core_hours, "reservedGibHours", t->reserved_gib_hours,
                     "usedCoreHours", t->used_core_hours, "usedGibHours", t->used_gib_hours);
}

int adv_backtest_print_json(FILE *f, const adv_backtest_report_t *rep)
{
    char from[32], to[32];
    json_t *root, *list;
    int r = 0;

    utc(rep->from, from, sizeof(from));
    utc(rep->to, to, sizeof(to));
    list = json_array();
    root = json_pack("{s:s, s:s, s:s, s:s, s:I, s:f, s:o*}", "cluster", or_all(rep->cluster, ""),
                     "namespace", or_all(rep->namespace_, ""), "historyStart", from, "historyEnd",
                     to, "series", (json_int_t)rep->containers, "cpuSeriesShareThreshold",
                     ADV_BACKTEST_CPU_SERIES_SHARE, "strategies", list);
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; i < rep->n && r == 0; i++)
        if (json_array_append_new(list, totals_json(&rep->totals[i])) < 0)
            r = -ENOMEM;
    if (r == 0 && json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) < 0)
        r = -EIO;
    if (r == 0 && (fputc('\n', f) == EOF || fflush(f) != 0))
        r = -EIO;
    json_decref(root);
    return r;
}
