/* The agent's measuring side: each tick reads the chosen source (sources.h)
 * into the windower; each closed window gets its container's metadata (held
 * back for at most one metadata refresh when it has none yet); the windows
 * ready at a tick become MetricBatches, with the facts of their workloads
 * and of the node, handed to `sink` (the spool, or stdout with --once). */
#ifndef AGENT_COLLECT_H
#define AGENT_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/metrics.h>

#include "batch.h"
#include "sources.h"
#include "window.h"

typedef struct agent_collector agent_collector_t;

/* Receives each batch: its id and serialized bytes, and the windows in it. */
typedef int (*agent_batch_sink_fn)(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes,
                                   size_t len, const agent_window_t *wins,
                                   const agent_container_meta_t *metas, size_t n);

/* Hands out (epoch, seq) for a new batch (the spool's counter). */
typedef void (*agent_batch_id_fn)(void *data, uint64_t *epoch, uint64_t *seq);

typedef struct {
    const char *cluster, *node, *agent_id;
    int64_t window_ms;
    size_t max_containers;
    size_t max_windows_per_batch;
    /* Packed batches stay at or under this many bytes, the windows ready at
     * once being split over as many batches as needed; 0:
     * AGENT_BATCH_MAX_BYTES_DEFAULT (fits NATS's default max_payload). */
    size_t max_batch_bytes;
    uv_loop_t *loop;
    const agent_sources_opts_t *sources; /* copied; the strings must outlive the collector */
    agent_batch_id_fn take_id;
    agent_batch_sink_fn sink;
    void *data;
} agent_collector_opts_t;

/* Builds the collector and its source. -EINVAL (bad source settings,
 * logged), -ENOMEM. */
int agent_collector_new(const agent_collector_opts_t *opts, kopt_metrics_t *metrics,
                        agent_collector_t **out);

/* A new batch size bound (0: the default), e.g. one learned from ingest;
 * batches made from now on keep to it. */
void agent_collector_set_max_batch_bytes(agent_collector_t *c, size_t max_bytes);

/* Frees the collector; its source goes once its in-flight work is back
 * (run the loop). NULL is a no-op. */
void agent_collector_free(agent_collector_t *c);

/* One sampling tick at wall-clock `now_ms`: read, add, and flush windows
 * that closed. Returns the number of windows emitted, or -errno. */
int agent_collector_tick(agent_collector_t *c, int64_t now_ms);

/* Readings taken so far (kopt_agent_samples_total): 0 means the source has
 * found nothing to measure yet (--once uses it to stop early). */
uint64_t agent_collector_samples(const agent_collector_t *c);

#endif
