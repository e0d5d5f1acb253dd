/* The agent's measuring side: each tick reads the chosen source (sources.h)
 * into the windower; each closed window gets its container's metadata (held
 * back for at most one metadata refresh when it has none yet); the windows
 * ready at a tick become MetricBatches, with the facts of their workloads
 * and of the node, handed to `sink` (the spool, or stdout with --once). */
#ifndef KOPT_AGENT_COLLECT_H
#define KOPT_AGENT_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/metrics.h>

#include "batch.h"
#include "sources.h"
#include "window.h"

typedef struct kopt_collector kopt_collector_t;

/* Receives each batch: its id and serialized bytes, and the windows in it. */
typedef int (*kopt_batch_sink_fn)(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes,
                                  size_t len, const kopt_window_t *wins,
                                  const kopt_container_meta_t *metas, size_t n);

/* Hands out (epoch, seq) for a new batch (the spool's counter). */
typedef void (*kopt_batch_id_fn)(void *data, uint64_t *epoch, uint64_t *seq);

typedef struct {
    const char *cluster, *node, *agent_id;
    int64_t window_ms;
    size_t max_containers;
    size_t max_windows_per_batch;
    uv_loop_t *loop;
    const kopt_sources_opts_t *sources; /* copied; the strings must outlive the collector */
    kopt_batch_id_fn take_id;
    kopt_batch_sink_fn sink;
    void *data;
} kopt_collector_opts_t;

/* Builds the collector and its source. -EINVAL (bad source settings,
 * logged), -ENOMEM. */
int kopt_collector_new(const kopt_collector_opts_t *opts, kopt_metrics_t *metrics,
                       kopt_collector_t **out);

/* Frees the collector; its source goes once its in-flight work is back
 * (run the loop). NULL is a no-op. */
void kopt_collector_free(kopt_collector_t *c);

/* One sampling tick at wall-clock `now_ms`: read, add, and flush windows
 * that closed. Returns the number of windows emitted, or -errno. */
int kopt_collector_tick(kopt_collector_t *c, int64_t now_ms);

#endif
