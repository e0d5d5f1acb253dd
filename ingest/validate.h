/* Validation of a decoded MetricBatch before it is published: identity fields,
 * Kubernetes names, counts, timestamps within a sane window, numbers finite
 * and non-negative. Pure: the clock and the limits are arguments. */
#ifndef KOPT_INGEST_VALIDATE_H
#define KOPT_INGEST_VALIDATE_H

#include <stdint.h>

#include "kopt/v1/metrics.pb-c.h"

typedef struct {
    uint32_t max_windows;       /* windows in one batch */
    uint32_t max_workloads;     /* workload facts in one batch */
    int64_t max_age_seconds;    /* how old a batch or window may be (spooled data) */
    int64_t max_future_seconds; /* clock skew allowed ahead of ours */
    int64_t max_window_seconds; /* longest window */
} kopt_batch_limits_t;

/* Defaults: 20000 windows, 5000 workloads, 7 days old, 5 minutes ahead,
 * windows up to 1 hour. */
void kopt_batch_limits_default(kopt_batch_limits_t *lim);

typedef struct {
    /* Short, bounded, for the metric label: "missing_field", "bad_name",
     * "bad_time", "bad_number", "too_many". */
    const char *reason;
    char message[256]; /* for people: "windows[3].pod: ..." */
} kopt_batch_problem_t;

/* 0 when the batch may be stored, else -EINVAL and *problem says why. */
int kopt_batch_validate(const Kopt__V1__MetricBatch *b, const kopt_batch_limits_t *lim,
                        int64_t now_unix, kopt_batch_problem_t *problem);

#endif
