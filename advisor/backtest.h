/* `kopt-advisor backtest`: each strategy fitted on the earlier part of every
 * stored container history and scored on the part that followed
 * (kopt_engine_backtest), summed into one line per strategy. backtest.c is
 * the pure part (the sums and how they print), backtest_run.c reads
 * ClickHouse and runs the engine. docs/advisor.md shows a real run. */
#ifndef ADV_BACKTEST_H
#define ADV_BACKTEST_H

#include <stdint.h>
#include <stdio.h>

#include <kopt/engine.h>

#include "advisor.h"

/* A series whose mean CPU passed its fitted request in more than this share
 * of its scored windows counts as often short of CPU. */
#define ADV_BACKTEST_CPU_SERIES_SHARE 0.10

/* One strategy's sums over many series (a series: one container of one
 * workload). Windows count every pod's one-minute windows; core- and
 * GiB-hours are the engine's (one replica) times the series' mean pods in
 * the hours scored. */
typedef struct {
    kopt_engine_strategy_t strategy;
    uint32_t series;  /* with a valid backtest */
    uint32_t skipped; /* with history, but too little on one side of the split */
    uint64_t windows; /* scored */
    double cpu_windows_over_request, memory_windows_over_request;
    double cpu_windows_over_limit, memory_windows_over_limit;
    uint32_t series_memory_over_request; /* above the memory request in any window */
    uint32_t series_cpu_over_request;    /* above the CPU request in > 10 % of windows */
    double reserved_core_hours, reserved_gib_hours;
    double used_core_hours, used_gib_hours;
} adv_backtest_totals_t;

void adv_backtest_totals_init(adv_backtest_totals_t *t, kopt_engine_strategy_t strategy);
/* Adds one series' backtest; `pods` (mean pods in the scored hours; <= 0
 * is read as 1) multiplies its hours. An invalid backtest counts as
 * skipped. */
void adv_backtest_totals_add(adv_backtest_totals_t *t, const kopt_engine_backtest_t *b,
                             double pods);
/* part / windows, 0 with no window. */
double adv_backtest_share(const adv_backtest_totals_t *t, double part);

/* What one run covered, for the heading and the JSON. */
typedef struct {
    const char *cluster, *namespace_; /* NULL or "": all */
    int64_t from, to;                 /* history read, unix s */
    size_t containers;                /* series read */
    const adv_backtest_totals_t *totals;
    size_t n;
} adv_backtest_report_t;

/* The report as a table for people, or as one JSON object. 0, or -EIO
 * when writing fails (-ENOMEM for the JSON). */
int adv_backtest_print_table(FILE *f, const adv_backtest_report_t *rep);
int adv_backtest_print_json(FILE *f, const adv_backtest_report_t *rep);

/* Reads the scope's history with the analysis' reader, backtests every
 * container with each of strategies[0..n) (options: `base` with the
 * strategy set) as of `now`, and prints the report on `out` (json: as
 * JSON); with archive (NULL: off) the archived days too
 * (adv_ch_load_input). Blocking (the CLI). 0, or a negative errno with err
 * filled. */
int adv_backtest_run(const kopt_ch_options_t *ch, const adv_archive_t *archive,
                     const kopt_engine_options_t *base, const adv_scope_t *scope,
                     const kopt_engine_strategy_t *strategies, size_t n, int64_t now, bool json,
                     FILE *out, char *err, size_t errlen);

#endif
