/* kopt-loadgen: what its parts share. Simulated agents push synthetic
 * MetricBatches to kopt-ingest over mutual-TLS gRPC (loadgen_client.c); the
 * same bytes feed two baselines, decode+validate in-process
 * (loadgen_decode.c) and a direct JetStream publish (loadgen_nats.c). */
#ifndef KOPT_LOADGEN_H
#define KOPT_LOADGEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LG_VARIANTS 4 /* value sets per node, sent in turn */
#define LG_TARGETS_MAX 8

typedef struct lg_keyset lg_keyset_t;

typedef struct {
    const char *target;                  /* ingest gRPC address(es), "127.0.0.1:7400[,..]" */
    const char *targets[LG_TARGETS_MAX]; /* target split at commas */
    int n_targets;
    const char *ca, *cert, *key;    /* PEM files for mutual TLS */
    const char *cluster, *agent_id; /* must match the client certificate */
    const char *nats_url;           /* JetStream baseline; NULL: skipped */
    int agents;                     /* concurrent Push streams */
    int containers_min, containers_max;
    int window;              /* unacked batches per stream */
    int threads;             /* completion-queue threads, 1 or 2 */
    int buffer_hint;         /* GRPC_WRITE_BUFFER_HINT when more follows */
    double duration, warmup; /* seconds */
    double rate;             /* container windows/s, all agents; 0: as fast as acked */
    double baseline_seconds;
    pid_t ingest_pid, nats_pid; /* 0: not sampled */
    unsigned phases;            /* LG_PHASE_* */
    const char *label;          /* names the run in the RESULT line */
    uint64_t seed;
    /* Distinct windows (scripts/bench-cluster counts them in ClickHouse):
     * when set, batch seq s of every agent holds the minute ending at
     * minute0 - (s - 1) * 60, packed at send time, and a container key
     * already on an earlier node is left out at build time. 0: off. */
    int64_t minute0;
    lg_keyset_t *keys;    /* set by lg_node_build's caller when minute0 is */
    const char *progress; /* file: "unix_time acked_windows" lines, 10 a second */
} lg_opts_t;

enum { LG_PHASE_DECODE = 1, LG_PHASE_NATS = 2, LG_PHASE_INGEST = 4 };

/* --- batch synthesis (loadgen_batch.c) ------------------------------------ */

/* One simulated node: a MetricBatch packed without epoch, seq and created
 * (fields 4-6), which lg_batch_suffix() appends per send. Protobuf allows
 * fields in any order, so body + suffix is a complete MetricBatch. */
typedef struct {
    char node[96];
    size_t n_windows;
    uint8_t *body[LG_VARIANTS]; /* owned */
    size_t body_len[LG_VARIANTS];
    struct lg_node_src *src; /* the unpacked batch, kept when o->minute0 is set */
} lg_node_t;

#define LG_SUFFIX_MAX 48 /* bytes lg_batch_suffix() writes at most */

/* Builds node `index` (names, containers, values) for windows ending at the
 * minute before `now_s`. 0 or -ENOMEM. */
int lg_node_build(lg_node_t *n, const lg_opts_t *o, int index, int64_t now_s);
void lg_node_free(lg_node_t *n);

/* The node's batch for the minute ending at end_s (fresh usage values), in
 * a malloc'd buffer with LG_SUFFIX_MAX bytes to spare. Needs o->minute0 at
 * build time. 0 or -ENOMEM/-EINVAL. */
int lg_node_minute(lg_node_t *n, int64_t end_s, uint8_t **out, size_t *len);

/* Container keys (namespace, kind, workload, pod, container) across nodes. */
lg_keyset_t *lg_keyset_new(size_t cap);
void lg_keyset_free(lg_keyset_t *k);

/* Encodes epoch (4), seq (5) and created (6) into buf; returns the length. */
size_t lg_batch_suffix(uint8_t *buf, uint64_t epoch, uint64_t seq, int64_t created_s,
                       int32_t created_ns);

/* --- latency histogram (loadgen_stats.c) ---------------------------------- */

/* Log-linear buckets: exact below 64 ns, then 32 per power of two (3 %). */
#define LG_HIST_BUCKETS (64 + 40 * 32)

typedef struct {
    uint64_t count[LG_HIST_BUCKETS];
    uint64_t n, max_ns;
} lg_hist_t;

void lg_hist_add(lg_hist_t *h, uint64_t ns);
void lg_hist_merge(lg_hist_t *into, const lg_hist_t *from);
/* Upper edge of the bucket holding quantile q (0..1), in ns; 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

/* --- process sampling (loadgen_proc.c) ------------------------------------ */

typedef struct {
    double user_s, sys_s;    /* CPU time used so far */
    uint64_t rss_kb, hwm_kb; /* VmRSS, VmHWM */
    double main_wait_s;      /* main thread: time runnable, waiting for a CPU */
} lg_proc_sample_t;

/* Reads /proc/<pid>/stat and /proc/<pid>/status. 0, or -errno. */
int lg_proc_sample(pid_t pid, lg_proc_sample_t *s);

/* --- the ingest run (loadgen_client.c) ------------------------------------ */

#define LG_STATUS_CODES 17 /* gRPC status codes 0..16 */
#define LG_REJECT_REASONS 4

typedef struct {
    double seconds;                         /* measured interval */
    uint64_t batches, windows, bytes, acks; /* acked within the interval */
    uint64_t sent_batches;
    uint64_t statuses[LG_STATUS_CODES]; /* streams ended, by status */
    uint64_t rejections[LG_REJECT_REASONS];
    uint64_t reconnects, unacked_at_end, behind_schedule;
    uint64_t failovers;                    /* streams moved to the next target */
    uint64_t total_windows, total_batches; /* acked over the whole run, drain included */
    uint64_t max_seq;                      /* highest seq any agent sent */
    lg_hist_t latency;                     /* send to covering ack */
    /* Processes over the measured interval (sampled only when the pid is set). */
    lg_proc_sample_t ingest_start, ingest_end, nats_start, nats_end;
    uint64_t ingest_rss_max_kb; /* highest VmRSS seen, sampled each second */
    double self_cpu_s;          /* kopt-loadgen's own user+sys CPU in the interval */
} lg_ingest_result_t;

/* Progress callback, called about once a second from the main thread while
 * the run lasts, with the totals acked so far. */
typedef void (*lg_tick_fn)(void *data, double t, uint64_t windows, uint64_t batches);

int lg_ingest_run(const lg_opts_t *o, lg_node_t *nodes, lg_tick_fn tick, void *data,
                  lg_ingest_result_t *res);

/* --- baselines (loadgen_decode.c, loadgen_nats.c) ------------------------- */

typedef struct {
    double seconds;
    uint64_t batches, windows, bytes, errors;
    double cpu_seconds;    /* decode baseline: CPU time of the thread */
    double unpack_seconds; /* decode baseline: CPU time of unpack alone, no validation */
    uint64_t unpack_windows;
} lg_baseline_result_t;

/* Unpacks and validates the nodes' batches on this thread for o->baseline_seconds. */
int lg_baseline_decode(const lg_opts_t *o, const lg_node_t *nodes, lg_baseline_result_t *res);

/* Publishes the same bytes to JetStream with nats.c async publish (window
 * 4096, Nats-Msg-Id set), into a stream of its own that it deletes after. */
int lg_baseline_nats(const lg_opts_t *o, const lg_node_t *nodes, lg_baseline_result_t *res);

/* Monotonic clock in nanoseconds. */
uint64_t lg_now_ns(void);

#endif
