/* Prometheus metrics: a registry of counter, gauge and histogram families, and
 * their text exposition (format 0.0.4) for GET /metrics.
 *
 * Families declare their label names once; a child per label-value tuple is
 * looked up once (under a mutex) and its handle is then updated from any thread
 * with lock-free C11 atomics. Children are bounded per family; see below. */
#ifndef KOPT_METRICS_H
#define KOPT_METRICS_H

#include <stddef.h>

typedef struct kopt_metrics kopt_metrics_t;
typedef struct kopt_metric_family kopt_metric_family_t;
typedef struct kopt_metric_counter kopt_metric_counter_t;
typedef struct kopt_metric_gauge kopt_metric_gauge_t;
typedef struct kopt_metric_histogram kopt_metric_histogram_t;

/* A family holds at most this many children. Past it, _with() returns a shared
 * handle that is never exposed and kopt_metrics_dropped_series_total counts it,
 * so a bad label (a pod name, a path) cannot grow memory without limit. */
#define KOPT_METRICS_MAX_CHILDREN 1000
#define KOPT_METRICS_MAX_LABELS 8
#define KOPT_METRICS_MAX_BUCKETS 64

/* Normally one registry a process; tests make their own. */
int kopt_metrics_new(kopt_metrics_t **out);

/* Frees the registry with every family and child: handles die with it. */
void kopt_metrics_free(kopt_metrics_t *m);

/* Registers a family, or finds the one registered with the same name, type,
 * labels (and buckets): registering twice is safe, so two servers can share
 * kopt_http_requests_total. `labels` is a comma-separated list of label names
 * ("handler,code"), or NULL/"" for none. Strings are copied.
 * -EINVAL: bad metric or label name (programmer error), bad buckets.
 * -EEXIST: the name is taken by a different definition. -ENOMEM. */
int kopt_metrics_counter(kopt_metrics_t *m, const char *name, const char *help, const char *labels,
                         kopt_metric_family_t **out);
int kopt_metrics_gauge(kopt_metrics_t *m, const char *name, const char *help, const char *labels,
                       kopt_metric_family_t **out);
/* `bounds`: the upper bounds of the buckets, strictly increasing and finite
 * (seconds or bytes); +Inf is added. At most KOPT_METRICS_MAX_BUCKETS. */
int kopt_metrics_histogram(kopt_metrics_t *m, const char *name, const char *help,
                           const char *labels, const double *bounds, size_t n_bounds,
                           kopt_metric_family_t **out);

/* Families whose single unlabeled value comes from `fn(data)` at scrape time,
 * on the scraping thread (queue depth, open fds). `data` is kept, not owned.
 * -EEXIST when the name is taken at all. */
typedef double (*kopt_metrics_value_fn)(void *data);
int kopt_metrics_gauge_func(kopt_metrics_t *m, const char *name, const char *help,
                            kopt_metrics_value_fn fn, void *data);
int kopt_metrics_counter_func(kopt_metrics_t *m, const char *name, const char *help,
                              kopt_metrics_value_fn fn, void *data);

/* Collected gauges: families whose samples are made at scrape time by a
 * collector, for series that mirror another structure (the advisor's latest
 * recommendations) and would not fit the bounded children above. Register the
 * families, then the collector; at each scrape every collector runs once, on
 * the scraping thread and outside the registry mutex (so it may take its own
 * locks and register or look up children), and emits samples into its
 * families with kopt_metrics_emit(). A family with no sample in a scrape is
 * left out. The collector bounds what it emits itself. */
typedef struct kopt_metrics_emitter kopt_metrics_emitter_t;
typedef void (*kopt_metrics_collect_fn)(void *data, kopt_metrics_emitter_t *e);
int kopt_metrics_gauge_collected(kopt_metrics_t *m, const char *name, const char *help,
                                 const char *labels, kopt_metric_family_t **out);
/* `data` is kept, not owned. -ENOMEM, -EINVAL. */
int kopt_metrics_add_collector(kopt_metrics_t *m, kopt_metrics_collect_fn fn, void *data);
/* One sample of `f` (a collected family): the label values in the declared
 * order, exactly as many; escaped as the exposition format wants. Samples
 * come out in the order emitted. Ignored for any other family. */
void kopt_metrics_emit(kopt_metrics_emitter_t *e, kopt_metric_family_t *f, double v, ...);

/* The child for one tuple of label values, in the order the family declared its
 * labels; pass exactly that many strings (none for an unlabeled family). Values
 * are copied. Never NULL: on overflow, allocation failure or a family of the
 * wrong type it returns a handle that counts nowhere. Takes the registry mutex:
 * look children up once and keep the handle. */
kopt_metric_counter_t *kopt_metric_counter_with(kopt_metric_family_t *f, ...);
kopt_metric_gauge_t *kopt_metric_gauge_with(kopt_metric_family_t *f, ...);
kopt_metric_histogram_t *kopt_metric_histogram_with(kopt_metric_family_t *f, ...);

/* Hot path: lock-free, any thread. Counters only go up (negative adds are ignored). */
void kopt_metric_counter_inc(kopt_metric_counter_t *c);
void kopt_metric_counter_add(kopt_metric_counter_t *c, double v);
double kopt_metric_counter_value(const kopt_metric_counter_t *c);
void kopt_metric_gauge_set(kopt_metric_gauge_t *g, double v);
void kopt_metric_gauge_add(kopt_metric_gauge_t *g, double v);
double kopt_metric_gauge_value(const kopt_metric_gauge_t *g);
void kopt_metric_histogram_observe(kopt_metric_histogram_t *h, double v);

/* Prometheus' default latency buckets, in seconds: 5 ms .. 10 s (11 bounds). */
const double *kopt_metrics_latency_buckets(size_t *n);

/* Fills out[0..count) with start, start*factor, ...: -EINVAL unless start > 0,
 * factor > 1 and 0 < count <= KOPT_METRICS_MAX_BUCKETS. */
int kopt_metrics_exponential_buckets(double start, double factor, size_t count, double *out);

/* The whole registry in the text format 0.0.4: families sorted by name,
 * children by label values; a family without samples yet shows only its
 * HELP and TYPE lines. *out is malloc'd and NUL-terminated; the caller
 * frees it. 0 or -ENOMEM. */
int kopt_metrics_expose(kopt_metrics_t *m, char **out, size_t *len);

#define KOPT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The process collector (metrics_process.c): process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds from
 * /proc/self, and kopt_build_info{version,component} 1. Safe to call twice. */
int kopt_metrics_process_register(kopt_metrics_t *m, const char *component);

#endif
