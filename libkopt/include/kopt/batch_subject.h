/* The JetStream subject of a MetricBatch: <prefix>.<cluster>.<node>, each
 * name as one subject token (kopt_name_subject_token). kopt-ingest publishes
 * a batch on it and kopt-aggregator refuses a batch that came on any other,
 * so a publisher allowed on one cluster's subjects cannot write another
 * cluster's data. One definition for both. Pure. */
#ifndef KOPT_BATCH_SUBJECT_H
#define KOPT_BATCH_SUBJECT_H

#include <stddef.h>

#define KOPT_BATCH_SUBJECT_PREFIX "kopt.metrics"

/* Writes the subject of a batch of `cluster` from `node` into out[len].
 * 0, or -E2BIG when it does not fit. */
int kopt_batch_subject(const char *prefix, const char *cluster, const char *node, char *out,
                       size_t len);

/* 0 when `subject` is the one kopt_batch_subject() makes for this cluster
 * and node; -EINVAL otherwise (also for a name too long to be a subject). */
int kopt_batch_subject_check(const char *subject, const char *prefix, const char *cluster,
                             const char *node);

#endif
