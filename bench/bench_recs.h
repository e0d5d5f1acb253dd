/* Synthetic recommendations for the advisor's benchmarks: the shape the
 * engine produces (two containers, bounds, usage statistics, an
 * explanation, timestamps) with values that are not round numbers, so JSON
 * encoding writes doubles like the engine's (0.2863, not 0.25). */
#ifndef BENCH_RECS_H
#define BENCH_RECS_H

#include <stddef.h>

#include "advisor.h"

/* Workload i of n: cluster "cluster-<i % 4>", namespace "ns-<i / 4 % 50>",
 * kinds Deployment, StatefulSet, DaemonSet in turn, name "app-<i>",
 * monthly savings spread over -20..480. Unpacked, as the analysis makes them
 * (free with protobuf_c_message_free_unpacked). NULL on ENOMEM. */
Kopt__V1__Recommendation *bench_rec(size_t i);

/* n of them, as a snapshot (adv_results_new); NULL on ENOMEM. */
adv_results_t *bench_results(size_t n);

#endif
