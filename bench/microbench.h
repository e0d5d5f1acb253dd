/* A small harness for the single-threaded benchmarks of one function
 * (kopt-auth-bench, kopt-filter-bench, ...): runs a case for a while, in
 * rounds of a fixed number of calls, and prints a table with each case's
 * cost relative to the baseline case of the same run. CPU time of the
 * calling thread is the figure that counts: the machine may be shared, and
 * wall time then measures the neighbours too (both are printed). */
#ifndef MICROBENCH_H
#define MICROBENCH_H

#include <stddef.h>
#include <stdint.h>

/* One call of the measured work; `i` counts calls from 0. 0, or a negative
 * errno that stops the case (the benchmark then fails: a wrong answer is
 * not a figure). */
typedef int (*mb_fn)(void *arg, uint64_t i);

typedef struct {
    const char *name;
    uint64_t calls;
    double wall_s, cpu_s;
    double per_call_items; /* items one call handles (rows, series, bytes); 0: none */
    const char *item;      /* "recs", "series", "B": the item's name */
} mb_result_t;

/* Command line shared by the benchmarks: --quick (a few milliseconds per
 * case, for scripts/bench-smoke) and --seconds S (default 2). Prints usage
 * and returns -1 on a bad argument or --help. */
int mb_args(int argc, char **argv, const char *usage, double *seconds, int *quick);

/* Calls fn in rounds of `round` calls for at least `seconds` (one round at
 * least) and fills *out. 0, or what fn returned. */
int mb_run(const char *name, mb_fn fn, void *arg, uint64_t round, double seconds, mb_result_t *out);

/* The table: per case, µs per call (wall and CPU), calls per CPU-second
 * (per core), items per CPU-second, and CPU per call as a multiple of the
 * baseline row's. Also prints the machine line (cores, load average). */
void mb_print(const char *title, const mb_result_t *rows, size_t n, size_t baseline);

/* "cores N, load a b c" into out. */
void mb_machine(char *out, size_t len);

#endif
