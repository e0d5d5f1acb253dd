/* Turns raw samples into windows (1 minute unless window_ms says otherwise).
 * Sources report cumulative counters (CPU nanoseconds, throttled periods, OOM
 * kills) and gauges (memory); this module derives rates between consecutive
 * samples of the same container, handles counter resets (a restarted
 * container starts its counters again), and closes a window per container at
 * each wall-clock window boundary. Pure: time comes in with the samples;
 * bounded in the number of containers it tracks. */
#ifndef AGENT_WINDOW_H
#define AGENT_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/* One reading of one container (or process group, for the proc source). */
typedef struct {
    const char *key;             /* stable identity: container id, or group name */
    int64_t at_ms;               /* wall clock, ms since the Unix epoch */
    uint64_t cpu_usage_ns;       /* cumulative */
    uint64_t cpu_periods;        /* cumulative CFS periods */
    uint64_t cpu_throttled;      /* cumulative throttled periods */
    uint64_t cpu_throttled_ns;   /* cumulative throttled time */
    uint64_t memory_working_set; /* bytes, now */
    uint64_t memory_rss;         /* bytes, now */
    uint64_t oom_kills;          /* cumulative */
} agent_sample_t;

/* A finished window for one container. */
typedef struct {
    char key[256];
    int64_t start_ms, end_ms;
    double cpu_mean_cores, cpu_peak_cores;
    double cpu_throttled_seconds;
    uint64_t cpu_throttled_periods, cpu_periods;
    uint64_t memory_working_set_peak, memory_working_set_last, memory_rss_peak;
    uint32_t oom_kills;
    uint32_t samples; /* readings that fell in the window */
    uint32_t resets;  /* counter resets seen (restarts) */
} agent_window_t;

typedef struct agent_windower agent_windower_t;

typedef struct {
    int64_t window_ms;       /* 60000 */
    size_t max_containers;   /* tracked at once; more are counted and skipped */
    int64_t forget_after_ms; /* a container not seen this long is forgotten */
} agent_windower_opts_t;

int agent_windower_new(const agent_windower_opts_t *opts, agent_windower_t **out);
void agent_windower_free(agent_windower_t *w);

/* Adds a reading. 0, or -ENOSPC when the container limit refused a new key
 * (counted in dropped), -EINVAL for a reading older than the last one. */
int agent_windower_add(agent_windower_t *w, const agent_sample_t *s);

/* Closes every window that ended at or before `now_ms` (boundaries are
 * multiples of window_ms), calling `emit` for each container that had at
 * least one rate in it. Returns how many windows were emitted. */
typedef void (*agent_window_emit_fn)(const agent_window_t *win, void *data);
size_t agent_windower_flush(agent_windower_t *w, int64_t now_ms, agent_window_emit_fn emit,
                            void *data);

size_t agent_windower_tracked(const agent_windower_t *w);
uint64_t agent_windower_dropped(const agent_windower_t *w);

#endif
