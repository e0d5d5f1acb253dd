/* The recommendation engine: turns a container's hourly usage rollups into
 * CPU and memory requests and limits with evidence (percentiles, confidence,
 * replayed risk, savings) and a sentence for people. Three strategies: kopt
 * (decaying, usage-weighted histograms), vpa (the Kubernetes VPA
 * recommender's algorithm and constants) and simple (CPU p95, memory max +
 * 15 %). Histograms use the shared bucket scheme of kopt/usage_buckets.h.
 *
 * Pure: no I/O, no globals, no allocation; the caller passes "now" and owns
 * every buffer. docs/engine.md has the model and the formulas. */
#ifndef KOPT_ENGINE_H
#define KOPT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/usage_buckets.h>

/* ---- input: hourly rollups ------------------------------------------- */

/* One non-empty bucket of a rollup histogram (kopt usage bucket scheme). */
typedef struct {
    uint16_t index; /* bucket index */
    uint32_t count; /* 1-minute windows in that bucket */
} kopt_engine_bucket_t;

/* One hour of one container, summed over the workload's pods (a row of
 * container_hourly). The engine reads the arrays and keeps no pointer. */
typedef struct {
    int64_t start;    /* hour start, unix seconds */
    uint32_t windows; /* 1-minute windows in the hour (all pods) */
    uint32_t pods;    /* pods seen in the hour; 0 is read as 1 */
    /* CPU: histogram of per-window mean usage, the hour's peak and mean. */
    const kopt_engine_bucket_t *cpu_hist;
    size_t cpu_hist_len;
    double cpu_peak_cores;
    double cpu_mean_cores;
    /* Memory: histogram of per-window working-set peaks, the hour's peak. */
    const kopt_engine_bucket_t *mem_hist;
    size_t mem_hist_len;
    uint64_t mem_peak_bytes;
    /* OOM kills and the usage at the kill (0 = use mem_peak_bytes). */
    uint32_t oom_kills;
    uint64_t oom_usage_bytes;
    /* CFS throttling, summed over pods. */
    double cpu_throttled_seconds;
    uint64_t cpu_throttled_periods;
    uint64_t cpu_periods;
    /* CPU request in force in the hour (0 = unknown: the current one); the
     * vpa strategy weights CPU samples by it, as the VPA does. */
    double cpu_request_cores;
    /* Seconds the hour's windows cover, summed over pods (0 = windows x 60,
     * the agent's default one-minute window). History length and confidence
     * count this time, so agents may use any window length. */
    double covered_s;
} kopt_engine_hour_t;

/* Requests and limits of one container; 0 = not set. */
typedef struct {
    double cpu_request_cores;
    double cpu_limit_cores;
    uint64_t memory_request_bytes;
    uint64_t memory_limit_bytes;
} kopt_resources_t;

/* One container of a workload: its name, what it has now, its history. */
typedef struct {
    const char *name;
    kopt_resources_t current;
    const kopt_engine_hour_t *hours; /* any order */
    size_t n_hours;
} kopt_engine_container_t;

/* The HorizontalPodAutoscaler that scales the workload, if any. */
typedef struct {
    bool present;
    bool scales_on_cpu; /* has a CPU utilization target */
    uint32_t min_replicas;
    uint32_t max_replicas;
    uint32_t target_cpu_percent; /* of the pod's summed CPU requests */
} kopt_engine_hpa_t;

typedef struct {
    const char *kind; /* "Deployment", ... (for the explanation only) */
    const char *name;
    double replicas; /* mean over the window; savings are multiplied by it */
    kopt_engine_hpa_t hpa;
    const kopt_engine_container_t *containers;
    size_t n_containers;
} kopt_engine_workload_t;

/* ---- options --------------------------------------------------------- */

typedef enum {
    KOPT_STRATEGY_KOPT = 0,
    KOPT_STRATEGY_VPA,
    KOPT_STRATEGY_SIMPLE,
} kopt_engine_strategy_t;

typedef enum {
    KOPT_LIMITS_KEEP_RATIO = 0, /* limit = request x current limit/request */
    KOPT_LIMITS_FROM_UPPER,     /* limit = upper bound */
    KOPT_LIMITS_LEAVE,          /* keep the current limit (raised to the request) */
} kopt_limits_policy_t;

typedef enum {
    /* VPA's multipliers: upper x (1 + 1/d), lower x (1 + 0.001/d)^-2, d = days
     * of history. */
    KOPT_CONFIDENCE_VPA = 0,
    KOPT_CONFIDENCE_NONE, /* bounds are the bare percentiles */
} kopt_confidence_model_t;

typedef struct {
    double cpu_core_hour;   /* price of one core for one hour */
    double memory_gib_hour; /* price of one GiB (2^30 bytes) for one hour */
    double hours_per_month; /* usually 730 */
    char currency[8];       /* ISO 4217, "USD" */
} kopt_engine_prices_t;

typedef struct {
    kopt_engine_strategy_t strategy;
    /* kopt, CPU: a time-weighted histogram of window means decaying with
     * half_life_s (default 48 h). The request starts at cpu_percentile
     * (0.80) and rises while raising it by cpu_step (x 1.3) would still
     * cover at least cpu_step_share (0.5 %) more of the time, up to
     * cpu_max_percentile (0.99). */
    double half_life_s;
    double cpu_percentile;
    double cpu_max_percentile;
    double cpu_step;
    double cpu_step_share;
    double cpu_floor_cores;      /* below this, usage is noise: 0.025 (the VPA's pod minimum) */
    double cpu_lower_percentile; /* bounds, default 0.50 */
    double cpu_upper_percentile; /* default 0.99 */
    /* kopt, memory: one peak per day (days counted back from the last hour
     * with data) weighted by memory_half_life_s (24 h); request =
     * memory_percentile (0.90) of them + max(memory_headroom_bytes
     * (256 MiB), safety_margin (0) x that peak). */
    double memory_half_life_s;
    double memory_percentile;
    uint64_t memory_headroom_bytes;
    double memory_lower_percentile; /* bounds, of daily peaks, default 0.50 */
    double memory_upper_percentile; /* default 1.0: the highest daily peak */
    double safety_margin;
    double oom_bump; /* default 1.2 */
    kopt_limits_policy_t limits;
    double throttle_share;                       /* throttled/periods above which CPU limits stay
                                                    >= the upper bound; default 0.05 */
    double cpu_min_cores, cpu_max_cores;         /* 0.01, 0 = no max */
    uint64_t memory_min_bytes, memory_max_bytes; /* 16 MiB, 0 = no max */
    double cpu_round_cores;                      /* 0.001 (millicores) */
    uint64_t memory_round_bytes;                 /* 1 MiB */
    int64_t lookback_s;                          /* history read, default 8 days; 0 = all */
    double idle_cpu_cores;                       /* idle: CPU peak below this, default 0.01 */
    uint64_t idle_memory_bytes;                  /* ... and memory peak below this; 0 = any */
    int64_t idle_min_history_s;                  /* ... seen for at least this, default 1 day */
    double low_confidence_days;                  /* kopt: below this, never cut; default 1 */
    uint32_t hpa_max_target_percent;             /* clamp of the new HPA target, default 100 */
    kopt_engine_prices_t prices;
    kopt_confidence_model_t confidence;
} kopt_engine_options_t;

/* Fills the defaults listed above (prices: 0.031611 per core-hour, 0.004237
 * per GiB-hour, 730 h, "USD" — on-demand list prices of a general-purpose
 * cloud VM, an estimate only). */
void kopt_engine_options_default(kopt_engine_options_t *opts);

/* 0, or -EINVAL when a percentile, margin, price or bound is out of range. */
int kopt_engine_options_check(const kopt_engine_options_t *opts);

/* ---- output ------------------------------------------------------------ */

enum {
    KOPT_ENGINE_IDLE = 1u << 0,           /* close to idle all along */
    KOPT_ENGINE_OOM_BUMPED = 1u << 1,     /* memory raised to the OOM floor */
    KOPT_ENGINE_HPA_ADJUSTED = 1u << 2,   /* see hpa_target_percent */
    KOPT_ENGINE_LOW_CONFIDENCE = 1u << 3, /* less than low_confidence_days */
    KOPT_ENGINE_CPU_THROTTLED = 1u << 4,  /* throttled more than throttle_share */
    KOPT_ENGINE_CPU_AT_MIN = 1u << 5,     /* held at the minimum */
    KOPT_ENGINE_MEMORY_AT_MIN = 1u << 6,
    KOPT_ENGINE_CPU_AT_MAX = 1u << 7, /* capped at the maximum */
    KOPT_ENGINE_MEMORY_AT_MAX = 1u << 8,
    KOPT_ENGINE_MISSING_REQUESTS = 1u << 9,    /* no CPU or no memory request now */
    KOPT_ENGINE_OVER_PROVISIONED = 1u << 10,   /* a request drops by more than 10 % */
    KOPT_ENGINE_UNDER_PROVISIONED = 1u << 11,  /* a request grows by more than 10 % */
    KOPT_ENGINE_HPA_TARGET_CLAMPED = 1u << 12, /* new HPA target hit its clamp */
};

/* Percentiles of the history (undecayed, one weight per window): bucket
 * upper bounds, as the VPA reports them; max is the exact hourly peak. */
typedef struct {
    double p50, p90, p95, p99, max;
} kopt_engine_stats_t;

/* What a strategy estimates before policies (limits, rounding, ...). */
typedef struct {
    double cpu_target, cpu_lower, cpu_upper;          /* cores */
    double memory_target, memory_lower, memory_upper; /* bytes */
    double cpu_percentile, memory_percentile;         /* used for the targets */
    double history_days;                              /* "d" of the confidence multipliers */
    double oom_floor_bytes;                           /* memory floor after OOM kills (0 = none) */
    bool oom_bumped;
    /* Where the targets came from, for the explanation: the usage level
     * read from the history and what was added to it. */
    double cpu_basis;       /* cores at cpu_percentile */
    double cpu_next_share;  /* kopt: time a step higher would have covered */
    double memory_basis;    /* bytes at memory_percentile (of daily peaks for kopt) */
    double memory_headroom; /* bytes added to memory_basis */
} kopt_engine_estimate_t;

/* A summary of the history inside the lookback. */
typedef struct {
    int64_t first_hour, last_hour; /* starts of the first and last hour read */
    uint32_t hours;
    uint64_t windows;     /* windows (all pods), of any length */
    double covered_s;     /* seconds the windows cover (all pods) */
    double mean_pods;     /* pods per hour, averaged; >= 1 */
    double lifespan_days; /* (last_hour + 1 h - first_hour) in days */
    uint32_t oom_kills;
    double oom_max_usage_bytes; /* highest usage at a kill */
    double cpu_throttled_seconds;
    uint64_t cpu_throttled_periods, cpu_periods;
    kopt_engine_stats_t cpu;    /* cores, of window means */
    kopt_engine_stats_t memory; /* bytes, of window peaks */
} kopt_engine_history_t;

/* The history replayed against the recommended values. */
typedef struct {
    uint64_t windows;                   /* windows replayed */
    uint64_t cpu_windows_over_request;  /* window mean above the request */
    double cpu_over_request_share;      /* of windows */
    uint64_t cpu_windows_throttled;     /* window mean above the limit */
    double cpu_throttled_share;         /* of windows; 0 when no limit */
    uint32_t cpu_hours_peak_over_limit; /* hours whose peak passes the limit */
    uint64_t memory_windows_over_request;
    uint64_t memory_windows_oom; /* window peak above the limit: OOMs */
    uint32_t memory_hours_oom;   /* hours with such a window */
} kopt_engine_risk_t;

/* The strategy's recommendation made out of sample: fitted on the earlier
 * part of the container's own history (before `split`) and scored on the
 * part that followed, which the fit never saw. */
typedef struct {
    bool valid;                       /* false: too little history on one side */
    int64_t split;                    /* hour start: fit before, score from here */
    kopt_resources_t recommended;     /* what the fit recommended */
    uint64_t windows;                 /* windows scored */
    double scored_hours;              /* hours scored */
    double cpu_over_request_share;    /* of scored windows, mean CPU above the request */
    double memory_over_request_share; /* working-set peak above the request */
    double cpu_over_limit_share;      /* mean CPU above the limit (0: no limit) */
    double memory_over_limit_share;   /* peak above the limit: OOM kills (0: no limit) */
    double reserved_core_hours;       /* request x scored hours */
    double reserved_gib_hours;
    double used_core_hours; /* what the scored windows used */
    double used_gib_hours;  /* mean working-set peak x hours */
} kopt_engine_backtest_t;

/* Current minus recommended requests (negative: more is recommended). */
typedef struct {
    double cpu_cores;
    int64_t memory_bytes;
    double monthly_cost; /* at the options' prices */
} kopt_engine_savings_t;

#define KOPT_ENGINE_EXPLANATION_MAX 1024

typedef struct {
    kopt_resources_t current;
    kopt_resources_t recommended;
    double cpu_lower, cpu_upper;         /* bounds, cores, rounded */
    uint64_t memory_lower, memory_upper; /* bytes, rounded */
    double confidence;                   /* 0..1: days of history / lookback */
    double history_days;                 /* d used by the bounds */
    double cpu_percentile, memory_percentile;
    kopt_engine_strategy_t strategy;
    kopt_engine_history_t history; /* counts, percentiles, OOMs, throttling */
    kopt_engine_risk_t risk;
    kopt_engine_backtest_t backtest; /* out of sample, on the container's own history */
    kopt_engine_savings_t savings;   /* for one replica */
    unsigned flags;                  /* KOPT_ENGINE_* */
    uint32_t hpa_target_percent;     /* recommended HPA target when adjusted */
    double oom_floor_bytes;
    /* The usage levels the requests came from (estimate's basis fields). */
    double cpu_basis_cores, cpu_next_share;
    double memory_basis_bytes, memory_headroom_bytes;
    char explanation[KOPT_ENGINE_EXPLANATION_MAX];
} kopt_engine_result_t;

/* A workload's advice: the per-container results go to a caller array. */
typedef struct {
    kopt_engine_savings_t savings; /* per-replica savings x replicas */
    bool idle;                     /* every container idle */
    bool hpa_adjusted;
    uint32_t hpa_target_percent;    /* new target (the old one when unchanged) */
    double hpa_scale_out_cores_old; /* per-pod CPU at which the HPA scales out */
    double hpa_scale_out_cores_new;
    uint64_t windows;
} kopt_engine_workload_result_t;

/* ---- analysis ---------------------------------------------------------- */

/* Analyses one container with no workload context (no HPA). `now` is unix
 * seconds; hours at or after it, or before now - lookback, are ignored.
 * 0; -EINVAL on bad options or input; -ENODATA when no window lies in the
 * lookback (out is then zeroed but for `current`). */
int kopt_engine_analyze_container(const kopt_engine_options_t *opts,
                                  const kopt_engine_container_t *c, size_t containers_per_pod,
                                  int64_t now, kopt_engine_result_t *out);

/* Analyses every container of `w` into out[0..n_containers) and the
 * workload roll-up into *wout; adjusts the HPA target (T' = T x sum R / sum
 * R') when the HPA scales on CPU. Returns as kopt_engine_analyze_container
 * (-ENODATA only when no container has data; containers without data keep
 * their current values and zero savings). */
int kopt_engine_analyze_workload(const kopt_engine_options_t *opts, const kopt_engine_workload_t *w,
                                 int64_t now, kopt_engine_result_t *out,
                                 kopt_engine_workload_result_t *wout);

/* ---- the parts, each usable alone ------------------------------------- */

/* Decaying histogram over the kopt usage buckets. Weights are stored
 * relative to a reference time (VPA style): a sample at t adds
 * weight x 2^((t - ref) / half_life); when that exponent would pass
 * KOPT_DHIST_MAX_EXPONENT the reference moves forward and the stored weights
 * shrink, so nothing overflows however long it runs. */
#define KOPT_DHIST_MAX_BUCKETS KOPT_MEMORY_BUCKETS
#define KOPT_DHIST_MAX_EXPONENT 100.0
typedef enum { KOPT_DHIST_CPU = 0, KOPT_DHIST_MEMORY } kopt_dhist_kind_t;

typedef struct {
    kopt_dhist_kind_t kind;
    int n_buckets;
    double half_life_s; /* 0 = no decay */
    int64_t ref;        /* reference time, unix s */
    bool has_ref;
    int min_bucket, max_bucket; /* non-empty range; min > max when empty */
    int64_t last_t;             /* the decay factor of last_t, kept: an hour's buckets share it */
    double last_factor;
    double total;
    double weight[KOPT_DHIST_MAX_BUCKETS];
} kopt_dhist_t;

void kopt_dhist_init(kopt_dhist_t *h, kopt_dhist_kind_t kind, double half_life_s);
/* Adds `weight` to bucket `index` (clamped to the scheme) as of time t. */
void kopt_dhist_add(kopt_dhist_t *h, int index, double weight, int64_t t);
/* The value below which `p` (0..1) of the weight lies: the upper bound of
 * the bucket where the running sum reaches p x total (the VPA's rule; the
 * last, open bucket reports its lower bound). 0 when empty. */
double kopt_dhist_percentile(const kopt_dhist_t *h, double p);
bool kopt_dhist_empty(const kopt_dhist_t *h);

/* Summarises the hours in [now - lookback, now) (lookback 0 = all). */
void kopt_engine_history(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                         kopt_engine_history_t *out);

/* The three strategies' estimates (before limits, min/max and rounding). */
void kopt_engine_estimate_kopt(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                               const kopt_engine_history_t *hist, int64_t now,
                               kopt_engine_estimate_t *est);
void kopt_engine_estimate_vpa(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                              const kopt_engine_history_t *hist, size_t containers_per_pod,
                              int64_t now, kopt_engine_estimate_t *est);
void kopt_engine_estimate_simple(const kopt_engine_options_t *opts,
                                 const kopt_engine_container_t *c,
                                 const kopt_engine_history_t *hist, int64_t now,
                                 kopt_engine_estimate_t *est);

/* Replays the hours in [now - lookback, now) against `rec`. */
void kopt_engine_replay(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                        const kopt_resources_t *rec, kopt_engine_risk_t *out);

/* Fits the strategy on the hours before a split of [now - lookback, now)
 * (at `fit_share` of the history's span, on an hour; 2/3 when 0) and scores
 * what it recommends on the hours from the split on. out->valid is false
 * when either side has less than two hours. 0, or -EINVAL. */
int kopt_engine_backtest(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                         size_t containers_per_pod, int64_t now, double fit_share,
                         kopt_engine_backtest_t *out);

/* Savings of one container (one replica): current minus recommended. */
void kopt_engine_savings(const kopt_engine_prices_t *prices, const kopt_resources_t *current,
                         const kopt_resources_t *recommended, kopt_engine_savings_t *out);

/* Roll-ups: a workload's, a namespace's or a cluster's totals. Add
 * workloads to a namespace's totals, and namespaces' totals to a
 * cluster's with kopt_engine_totals_merge. */
typedef struct {
    uint32_t workloads;
    uint32_t idle_workloads;
    uint32_t containers;
    double requested_cpu_cores; /* times replicas */
    double requested_memory_bytes;
    double recommended_cpu_cores;
    double recommended_memory_bytes;
    double requested_monthly_cost;
    double recommended_monthly_cost;
    kopt_engine_savings_t savings;
} kopt_engine_totals_t;

void kopt_engine_totals_init(kopt_engine_totals_t *t);
void kopt_engine_totals_add_workload(kopt_engine_totals_t *t, const kopt_engine_prices_t *prices,
                                     const kopt_engine_result_t *results, size_t n_containers,
                                     double replicas, bool idle);
void kopt_engine_totals_merge(kopt_engine_totals_t *t, const kopt_engine_totals_t *other);

/* Monthly cost of `cores` and `bytes` at `prices`. */
double kopt_engine_monthly_cost(const kopt_engine_prices_t *prices, double cores, double bytes);

/* (Re)writes r->explanation from the result's fields; hpa may be NULL. */
void kopt_engine_explain(const kopt_engine_options_t *opts, const kopt_engine_hpa_t *hpa,
                         const kopt_engine_workload_result_t *wres, kopt_engine_result_t *r);

const char *kopt_engine_strategy_name(kopt_engine_strategy_t s);
/* 0 and *out set, or -EINVAL for a name other than kopt, vpa, simple. */
int kopt_engine_strategy_parse(const char *name, kopt_engine_strategy_t *out);

#endif
