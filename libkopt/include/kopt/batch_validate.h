/* Validation of a decoded MetricBatch: identity fields, Kubernetes names,
 * counts, timestamps not in the future, numbers finite and non-negative; and
 * the split of windows too old to store from the rest. kopt-ingest checks
 * every batch before it publishes it, kopt-aggregator every batch it
 * consumes (NATS is a second way in), with the same function and limits.
 * Pure: the clock and the limits are arguments. */
#ifndef KOPT_BATCH_VALIDATE_H
#define KOPT_BATCH_VALIDATE_H

#include <stdint.h>

#include "kopt/v1/metrics.pb-c.h"

typedef struct {
    uint32_t max_windows;       /* windows in one batch */
    uint32_t max_workloads;     /* workload facts in one batch */
    int64_t max_age_seconds;    /* older windows are left out, not the batch */
    int64_t max_future_seconds; /* clock skew allowed ahead of ours */
    int64_t max_window_seconds; /* longest window */
} kopt_batch_limits_t;

/* Defaults: 20000 windows, 5000 workloads, 14 days old, 5 minutes ahead,
 * windows up to 1 hour. */
void kopt_batch_limits_default(kopt_batch_limits_t *lim);

typedef struct {
    /* Short, bounded, for the metric label: "missing_field", "bad_name",
     * "bad_time", "bad_number", "too_many". */
    const char *reason;
    char message[256]; /* for people: "windows[3].pod: ..." */
} kopt_batch_problem_t;

/* 0 when the batch may be stored, else -EINVAL and *problem says why. Age is
 * no problem here: a window that starts before now - max_age_seconds (and a
 * `created` that old) is valid, and kopt_batch_split_old() takes such windows
 * out. A timestamp beyond now + max_future_seconds is a problem: the
 * agent's clock is wrong, so every time in the batch is suspect. */
int kopt_batch_validate(const Kopt__V1__MetricBatch *b, const kopt_batch_limits_t *lim,
                        int64_t now_unix, kopt_batch_problem_t *problem);

typedef struct {
    size_t kept;            /* windows[0, kept) are young enough to store */
    size_t too_old;         /* windows[kept, n_windows) are not */
    int64_t oldest_seconds; /* age of the oldest time that was too old; 0: none */
    int batch_too_old;      /* `created` itself is too old: kept is 0 */
    int store_nothing;      /* nothing of the batch is to be published */
} kopt_batch_split_t;

/* For a batch kopt_batch_validate() accepted: reorders b->windows so the
 * windows that start before now - max_age_seconds come last, the others
 * first in their original order, and says where the two parts meet. A batch
 * created before that is too old as a whole: every window counts as too
 * old. store_nothing is set then, and when the batch had windows and none
 * is young enough (a batch that never had windows is stored as it is).
 * n_windows is unchanged, so the batch is still freed as unpacked; to store
 * only the young windows, pack it with n_windows = split->kept. */
void kopt_batch_split_old(Kopt__V1__MetricBatch *b, const kopt_batch_limits_t *lim,
                          int64_t now_unix, kopt_batch_split_t *split);

#endif
