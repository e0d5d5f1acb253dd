/* What the files of kopt-advisor share: the settings, the engine inputs read
 * from ClickHouse, the in-memory results, an analysis run, the publisher, the
 * API method table with its reply abstraction (one implementation serves
 * gRPC and the HTTP gateway), API keys, and the web page. docs/advisor.md
 * describes the whole. */
#ifndef ADV_H
#define ADV_H

#include <grpc/grpc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <kopt/clickhouse.h>
#include <kopt/config.h>
#include <kopt/daemon.h>
#include <kopt/engine.h>
#include <kopt/grpc_server.h>
#include <kopt/http.h>
#include <kopt/jwt.h>
#include <kopt/metrics.h>
#include <kopt/nats.h>
#include <kopt/nats_auth.h>
#include <kopt/objstore.h>
#include <kopt/objstore_settings.h>
#include <kopt/trace.h>

#include "filter.h"
#include "kopt/v1/advisor.pb-c.h"

/* ---- settings (settings.c) ------------------------------------------------ */

typedef struct {
    kopt_daemon_settings_t common; /* first: see kopt/daemon.h */
    kopt_config_addr_t listen, http_listen;
    char *tls_ca, *tls_cert, *tls_key;
    int http_tls;                                            /* off, on, mutual */
    char *http_tls_cert, *http_tls_key, *http_tls_client_ca; /* NULL: the tls-* files */
    int64_t http_max_conns_per_peer;                         /* 0: no per-address limit */
    bool insecure;
    char *api_keys_file;
    char *oidc_issuer, *oidc_audience, *oidc_ca, *oidc_jwks_file, *oidc_roles_claim;
    kopt_config_list_t oidc_viewer_values, oidc_operator_values;
    uint64_t oidc_clock_skew_ms, oidc_refresh_ms, oidc_refresh_min_ms, oidc_max_token_bytes;
    char *nats_url;
    kopt_nats_auth_t nats;
    int64_t stream_replicas;
    uint64_t stream_max_age_ms;
    int recommendations_encoding; /* protobuf, json (publish_contract.h) */
    char *clickhouse_url, *clickhouse_user, *clickhouse_password_file, *clickhouse_database;
    char *clickhouse_ca;
    uint64_t clickhouse_timeout_ms;
    uint64_t clickhouse_max_response_bytes;
    uint64_t analysis_interval_ms;
    bool analysis_lease;   /* take the kopt_leases lease before a scheduled run */
    uint64_t lease_ttl_ms; /* the bucket's max age */
    uint64_t lookback_ms;
    kopt_config_list_t strategy; /* kopt, vpa, simple: one to serve, any to backtest */
    int limits;                  /* keep-ratio, from-upper, leave */
    uint64_t rollup_wait_ms;
    uint64_t half_life_ms, memory_half_life_ms;
    int64_t cpu_percentile, cpu_max_percentile, memory_percentile; /* percent */
    char *cpu_step, *cpu_step_share, *cpu_floor_cores;
    uint64_t memory_headroom_bytes;
    int64_t safety_margin_percent, oom_bump_percent;
    char *cpu_min_cores;
    uint64_t memory_min_bytes;
    char *idle_cpu_cores;
    char *cpu_price, *memory_price, *currency;
    int64_t metrics_max_rec_series; /* --metrics-max-recommendation-series */
    bool once;
    bool include_archive; /* --include-archive (archive_input.c) */
    int64_t archive_max_days;
    uint64_t archive_max_bytes;
    kopt_object_store_settings_t store;
    char *cluster, *namespace_; /* analyze and backtest: the scope; NULL = all */
    int output;                 /* backtest: table, json */
} adv_settings_t;

extern const kopt_config_spec_t adv_settings_spec;

/* Engine options from the settings; -EINVAL with a sentence in err (also
 * when --strategy names more than one: only backtest takes several). */
int adv_settings_engine_options(const adv_settings_t *s, kopt_engine_options_t *o, char *err,
                                size_t errlen);
/* The strategies --strategy names, each once, in the order given: 0 and
 * out[0..*n) (room for three), or -EINVAL naming the bad one in err. */
int adv_settings_strategies(const adv_settings_t *s, kopt_engine_strategy_t *out, size_t *n,
                            char *err, size_t errlen);
/* ClickHouse client options; the strings stay the settings'. */
void adv_settings_ch_options(const adv_settings_t *s, kopt_ch_options_t *o);

/* ---- workload kinds (store.c) -------------------------------------------- */

/* "Deployment" for KOPT__V1__WORKLOAD_KIND__..._DEPLOYMENT; "" when unknown. */
const char *adv_kind_name(int kind);
/* The enum of a Kubernetes kind, case-insensitive ("statefulset"); 0 if none. */
int adv_kind_parse(const char *text);

/* ---- engine inputs from container_hourly (hourly.c, hourly_read.c) -------- */

typedef struct {
    char *cluster, *namespace_, *kind, *name; /* kind: "Deployment" */
    size_t first_container, n_containers;
    double replicas; /* mean pods per hour */
} adv_workload_in_t;

typedef struct {
    char *name;
    kopt_resources_t current;        /* from the latest hour */
    const kopt_engine_hour_t *hours; /* n_hours in time order, in one of the input's parts */
    size_t n_hours;
} adv_container_in_t;

typedef struct adv_hourly_part adv_hourly_part_t;

/* Everything one run reads, in the primary key order of container_hourly.
 * The hours and their buckets live in the parts (one per range query). */
typedef struct {
    adv_workload_in_t *w;
    size_t n_w, cap_w;
    adv_container_in_t *c;
    size_t n_c, cap_c;
    adv_hourly_part_t **parts;
    size_t n_parts, cap_parts;
    size_t n_hours; /* in all containers */
} adv_input_t;

/* What the aggregators say about container_hourly for the clusters of a
 * scope (rollup_state; docs/storage.md, "Rollup state"). */
typedef struct {
    char cluster[254];
    int64_t hour;
} adv_partial_hour_t;

typedef struct {
    bool known;             /* rollup_state has rows for the scope's clusters */
    int64_t complete_until; /* the oldest watermark of the live replicas: every
                               window stored before it is rolled up */
    int64_t updated_at;     /* the newest row */
    /* Hours before `history_end` with windows stored after the watermark,
     * not rolled up yet: partial in container_hourly (an analysis waits for
     * them, analysis.c). */
    adv_partial_hour_t *partial;
    size_t n_partial;
} adv_rollup_t;

typedef struct {
    const char *cluster;    /* NULL or "": all */
    const char *namespace_; /* NULL or "": all */
    int64_t from, to;       /* hours in [from, to), unix seconds */
} adv_scope_t;

/* Reads rollup_state for the scope's cluster(s) (hourly_read.c). Replicas
 * whose row is older than the cluster's newest by more than three of their
 * intervals (at least 5 min) are gone and not counted. Partial hours are
 * those before history_end. -ENOENT without the table (an older
 * aggregator); otherwise as kopt_ch_query. */
int adv_ch_rollup_state(kopt_ch_client_t *ch, const char *cluster, int64_t history_end,
                        adv_rollup_t *out, kopt_ch_error_t *err);
void adv_rollup_free(adv_rollup_t *r);

/* --include-archive (archive_input.c; docs/operations.md, "Cold archive"). */
enum {
    ADV_ARCHIVE_OK,
    ADV_ARCHIVE_MISSING,    /* the object is not in the store */
    ADV_ARCHIVE_CORRUPT,    /* size, SHA-256 or gzip stream disagree with the record */
    ADV_ARCHIVE_STORE,      /* the store failed or is down */
    ADV_ARCHIVE_CLICKHOUSE, /* loading or rolling it up failed */
    ADV_ARCHIVE_LIMIT,      /* the range needs more than the limits allow */
    ADV_ARCHIVE_RESULTS
};

typedef struct {
    kopt_object_store_location_t where; /* --object-store-url */
    kopt_objstore_options_t store;      /* its strings are the settings' and where's */
    const char *prefix;                 /* where.prefix: records must name keys under it */
    uint32_t max_days;                  /* archived partitions one read may load */
    uint64_t max_bytes;                 /* their objects' bytes together */
    size_t max_native_bytes;            /* one object gunzipped; 0: 4 GiB */
    /* kopt_advisor_archive_loads_total{result}, one per result; NULL: not counted. */
    kopt_metric_counter_t *loads[ADV_ARCHIVE_RESULTS];
} adv_archive_t;

#define ADV_ARCHIVE_HOURLY "kopt_archive_hourly" /* the session's re-rolled hours */

const char *adv_archive_result_name(int result);

/* The archive options of --include-archive (no counters): -EINVAL with a
 * sentence (settings.c) in err without a valid --object-store-url. a->store
 * and a->prefix point into a->where: do not copy *a. */
int adv_settings_archive(const adv_settings_t *s, adv_archive_t *a, char *err, size_t errlen);

/* Finds the days of the scope container_hourly has no rows of but the
 * archive holds, and loads them into ADV_ARCHIVE_HOURLY of a new session
 * client made with opts (required; *out is NULL when no day is needed, after
 * one cheap query on ch).
 * A partition that cannot be loaded fails the whole call with err naming it
 * and the cause, counted in a->loads. */
int adv_archive_open(kopt_ch_client_t *ch, const kopt_ch_options_t *opts, const adv_archive_t *a,
                     const adv_scope_t *scope, kopt_ch_client_t **out, kopt_ch_error_t *err);
/* Drops the session's tables and frees the client; NULL is fine. */
void adv_archive_close(kopt_ch_client_t *s);

/* Reads the hours of the scope (hourly_read.c): range queries on `ch` and,
 * when opts is not NULL, on more connections opened with opts. With
 * `archive` (NULL: off), also the archived days container_hourly lacks
 * (adv_archive_open), all through that one session. 0, or a negative errno
 * with err filled. */
int adv_ch_load_input(kopt_ch_client_t *ch, const kopt_ch_options_t *opts,
                      const adv_archive_t *archive, const adv_scope_t *scope, adv_input_t *in,
                      kopt_ch_error_t *err);
void adv_input_free(adv_input_t *in);

/* The pure part (hourly.c): one answer of the hourly query in RowBinary,
 * each row (cluster, namespace, workload_kind, workload_name, container:
 * String; hour, window_count, pod_count: UInt32; cpu_usage_mean_cores,
 * cpu_usage_peak_cores, cpu_throttled_seconds: Float64;
 * cpu_throttled_periods, cpu_periods: UInt64; cpu_hist_index:
 * Array(UInt16); cpu_hist_count: Array(UInt32);
 * memory_working_set_peak_bytes: UInt64; mem_hist_index, mem_hist_count;
 * oom_kills: UInt32; cpu_request_cores, cpu_limit_cores: Float64;
 * memory_request_bytes, memory_limit_bytes: UInt64; rolled_at: UInt32;
 * covered_seconds: UInt64, into covered_s),
 * grouped per container in key order, each (container, hour) once: the row
 * with the newest rolled_at. Hours outside [from, to) make the answer bad.
 * `body` is freed on success only. -EBADMSG, -ENOMEM. */
int adv_hourly_parse(char *body, size_t len, int64_t from, int64_t to, adv_hourly_part_t **out);
/* Appends a part's workloads after what `in` holds (parts must come in key
 * order); `in` takes the part, also on failure. */
int adv_hourly_emit(adv_hourly_part_t *p, adv_input_t *in);
void adv_hourly_part_free(adv_hourly_part_t *p);

/* Nodes per cluster seen in container_windows since `since`, and the last
 * window; best effort (an empty answer when the table is empty). */
typedef struct {
    char *cluster;
    uint32_t nodes;
    int64_t last_seen;
    double cpu_allocatable_cores; /* of those nodes; 0 = unknown (facts.c) */
    uint64_t memory_allocatable_bytes;
} adv_cluster_info_t;

int adv_ch_cluster_info(kopt_ch_client_t *ch, int64_t since, adv_cluster_info_t **out, size_t *n,
                        kopt_ch_error_t *err);
void adv_cluster_info_free(adv_cluster_info_t *ci, size_t n);

/* ---- workload and node facts (facts.c) ------------------------------------ */

/* The HorizontalPodAutoscaler of one workload, as last reported. */
typedef struct {
    char *cluster, *namespace_, *kind, *name;
    char *hpa_name;
    uint32_t min_replicas, max_replicas;
    uint32_t target_cpu_percent, target_memory_percent; /* 0 = no such target */
    char **metrics;
    size_t n_metrics;
} adv_hpa_t;

/* A cluster's nodes seen in the lookback, with their allocatable resources
 * (each node's latest report). */
typedef struct {
    char *cluster;
    uint32_t nodes;
    double cpu_allocatable_cores, cpu_largest_node_cores;
    uint64_t memory_allocatable_bytes, memory_largest_node_bytes;
} adv_node_totals_t;

typedef struct {
    adv_hpa_t *hpa; /* sorted by cluster, namespace, kind, name */
    size_t n_hpa;
    adv_node_totals_t *nodes;
    size_t n_nodes;
} adv_facts_t;

/* Reads the facts of the scope (observed since scope->from). -ENOENT when
 * the tables do not exist yet; otherwise as kopt_ch_query. */
int adv_facts_load(kopt_ch_client_t *ch, const adv_scope_t *scope, adv_facts_t *f,
                   kopt_ch_error_t *err);
void adv_facts_free(adv_facts_t *f);
const adv_hpa_t *adv_facts_hpa(const adv_facts_t *f, const char *cluster, const char *namespace_,
                               const char *kind, const char *name);
const adv_node_totals_t *adv_facts_nodes(const adv_facts_t *f, const char *cluster);
/* Adds the node totals of f to the cluster infos: allocatable resources,
 * the node count where ci has none, and clusters ci lacks. 0 or -ENOMEM. */
int adv_facts_merge_clusters(const adv_facts_t *f, adv_cluster_info_t **ci, size_t *n);
/* Reads node_facts since `since` and merges them into ci as above. */
int adv_facts_cluster_info(kopt_ch_client_t *ch, int64_t since, adv_cluster_info_t **ci, size_t *n,
                           kopt_ch_error_t *err);
/* The engine's view of h; h may be NULL (no HPA). */
void adv_facts_engine_hpa(const adv_hpa_t *h, kopt_engine_hpa_t *out);

/* Writes one row per container of every recommendation (details = the
 * whole Recommendation as JSON). 0 or a negative errno. */
int adv_ch_write_recommendations(kopt_ch_client_t *ch, Kopt__V1__Recommendation *const *recs,
                                 size_t n, kopt_ch_error_t *err);

/* The newest recommendation of every workload in `recommendations`, decoded
 * from `details` (at start-up, so a restarted advisor serves at once). */
int adv_ch_load_latest(kopt_ch_client_t *ch, Kopt__V1__Recommendation ***recs, size_t *n,
                       kopt_ch_error_t *err);

/* Hour rows of one workload for charts. */
typedef struct {
    char *container;
    int64_t hour;
    uint32_t pods, oom_kills;
    double cpu_peak, throttled_s;
    uint64_t mem_peak;
    kopt_resources_t res;
    kopt_engine_bucket_t *cpu, *mem; /* into the buffer's bucket array */
    size_t n_cpu, n_mem;
    size_t cpu_off, mem_off; /* while loading: offsets of cpu, mem */
} adv_usage_row_t;

typedef struct {
    adv_usage_row_t *rows;
    size_t n, cap;
    kopt_engine_bucket_t *b;
    size_t n_b, cap_b;
} adv_usage_rows_t;

int adv_ch_load_usage(kopt_ch_client_t *ch, const char *cluster, const char *namespace_,
                      const char *kind, const char *name, const char *container, int64_t from,
                      int64_t to, adv_usage_rows_t *out, kopt_ch_error_t *err);
void adv_usage_rows_free(adv_usage_rows_t *u);

/* ---- the in-memory results (results.c) ------------------------------------ */

/* An encoding made once per snapshot (owned by it). */
typedef struct {
    char *data;
    size_t len;
} adv_bytes_t;

typedef struct {
    const char *cluster, *namespace_, *name; /* point into rec */
    int kind;
    Kopt__V1__Recommendation *rec; /* owned (protobuf_c_message_free_unpacked) */
    double monthly_savings;
    int64_t generated_at;
    /* The RECOMMENDATION_VIEW_BASIC view of rec, as ListRecommendations
     * sends it by default: proto3 JSON (exactly kopt_pbjson_encode's) and
     * protobuf. The FULL view is encoded per call (page.c). */
    adv_bytes_t basic_json, basic_pb;
    /* What a list filter reads, made with the snapshot: a filtered list
     * reads it here instead of walking rec's scattered messages. Its
     * cluster and namespace may point into another entry's rec of the same
     * snapshot (equal strings shared). */
    adv_filter_item_t filter;
} adv_entry_t;

typedef struct {
    char *name;
    uint32_t nodes;
    int64_t last_seen, last_analysis; /* unix s; 0 = unknown */
    char analysis_id[48];
    uint32_t workloads, idle;
    double alloc_cpu, alloc_mem;               /* of the nodes; 0 = unknown */
    double req_cpu, rec_cpu, req_mem, rec_mem; /* cores, bytes, x replicas */
    double req_cost, rec_cost;                 /* per month */
} adv_cluster_t;

/* An immutable snapshot, shared by reference: readers take a reference, the
 * analysis builds a new one and swaps it in; the last release frees it. */
typedef struct {
    atomic_int refs;
    adv_entry_t *e; /* sorted by cluster, namespace, kind, name */
    size_t n;
    /* e in ListRecommendations' other orders, sorted once per snapshot. */
    const adv_entry_t **by_savings, **by_generated;
    adv_cluster_t *clusters; /* sorted by name */
    size_t n_clusters;
} adv_results_t;

/* Builds a snapshot from `recs` (taken, and the array freed) and cluster
 * infos (copied); prices cost the summaries. NULL on ENOMEM. */
adv_results_t *adv_results_new(Kopt__V1__Recommendation **recs, size_t n,
                               const adv_cluster_info_t *ci, size_t n_ci,
                               const kopt_engine_prices_t *prices);
/* A copy of every recommendation of `r` outside cluster/namespace (NULL or
 * "": everything is inside), appended to *recs (realloc'd). */
int adv_results_keep_outside(const adv_results_t *r, const char *cluster, const char *namespace_,
                             Kopt__V1__Recommendation ***recs, size_t *n);
const adv_entry_t *adv_results_find(const adv_results_t *r, const char *cluster,
                                    const char *namespace_, int kind, const char *name);
const adv_cluster_t *adv_results_cluster(const adv_results_t *r, const char *name);
/* The filter's view of an entry built from its message (e->filter holds it
 * once the snapshot is made); confidence is the least-backed container's. */
void adv_entry_filter_item(const adv_entry_t *e, adv_filter_item_t *it);
void adv_results_release(adv_results_t *r);

typedef struct adv_snapshot adv_snapshot_t;
int adv_snapshot_new(adv_snapshot_t **out);
void adv_snapshot_free(adv_snapshot_t *s);
/* A reference to the current snapshot (never NULL); release it when done. */
adv_results_t *adv_snapshot_acquire(adv_snapshot_t *s);
/* Replaces the snapshot (taken); readers holding the old one keep it. */
void adv_snapshot_swap(adv_snapshot_t *s, adv_results_t *next);

/* ---- recommendation series on /metrics (metrics_recommendations.c) -------- */

typedef struct adv_rec_metrics adv_rec_metrics_t;

/* Registers the kopt_recommendation_* families and a collector that fills
 * them from `store` at each scrape, at most `max_series` series (whole
 * workloads, largest savings first); the rest are counted in
 * kopt_recommendation_series_dropped_total. `store` must outlive scrapes. */
int adv_rec_metrics_register(kopt_metrics_t *m, adv_snapshot_t *store, uint64_t max_series,
                             adv_rec_metrics_t **out);
/* After the registry stopped being scraped. */
void adv_rec_metrics_free(adv_rec_metrics_t *rm);

/* ---- publishing (publish.c) ------------------------------------------------ */

typedef struct adv_publisher adv_publisher_t;

#define ADV_STREAM_NAME "KOPT_RECOMMENDATIONS"
#define ADV_STREAM_SUBJECTS "kopt.recommendations.>"
#define ADV_SUBJECT_PREFIX "kopt.recommendations"

/* Keeps `url` (the settings') and a copy of `auth` (NULL: none); connects at
 * the first send. */
int adv_publisher_new(const char *url, const kopt_nats_auth_t *auth, adv_publisher_t **out);
/* Takes the encoding and the KV bucket's replicas from the settings. */
void adv_publisher_configure(adv_publisher_t *p, const adv_settings_t *s);
/* Publishes each workload's Recommendation (protobuf or JSON, with the
 * headers of docs/integrations.md) on
 * kopt.recommendations.<cluster>.<namespace> with Nats-Msg-Id
 * <analysis_id>/<cluster>/<namespace>/<kind>/<name> and into the KV bucket
 * kopt_recommendations, waits for every PubAck, then one AnalysisCompleted
 * per cluster. Blocking: a worker thread, never the loop. *sent counts
 * acked results. */
int adv_publisher_send(adv_publisher_t *p, Kopt__V1__Recommendation *const *recs, size_t n,
                       size_t *sent, char *err, size_t errlen);
void adv_publisher_free(adv_publisher_t *p);
void adv_stream_spec(const adv_settings_t *s, kopt_stream_spec_t *spec);

/* ---- an analysis run (analysis.c) -------------------------------------- */

typedef struct {
    kopt_engine_options_t engine;
    kopt_ch_options_t ch;
    adv_publisher_t *publisher;   /* NULL: do not publish */
    uint32_t rollup_wait_s;       /* longest wait for a backfill's rollup (analysis.c) */
    const adv_archive_t *archive; /* --include-archive; NULL: off */
} adv_analysis_ctx_t;

typedef struct {
    char cluster[254], namespace_[64]; /* "" = all */
    int64_t lookback_s;                /* 0: the engine options' */
    bool dry_run;
} adv_run_request_t;

typedef struct {
    int status; /* 0 or a negative errno */
    char message[512];
    char analysis_id[48];
    uint32_t analyzed, written, idle, skipped, published;
    int64_t started_ns, finished_ns; /* unix time, ns */
    Kopt__V1__Recommendation **recs; /* made by the run (owned until taken) */
    size_t n_recs;
    adv_cluster_info_t *clusters;
    size_t n_clusters;
    /* container_hourly's completeness when the run read it (rollup_state):
     * 0 when unknown; hours still not rolled up after the wait, read as
     * they are. */
    int64_t rollup_complete_until;
    uint32_t rollup_partial_hours;
} adv_run_result_t;

/* Load, engine, store, publish. Blocking (a worker thread or the CLI). */
void adv_analysis_run(const adv_analysis_ctx_t *ctx, const adv_run_request_t *req,
                      adv_run_result_t *out);
void adv_run_result_free(adv_run_result_t *r);

/* ---- OIDC bearer tokens (oidc.c) ------------------------------------------- */

/* Roles: a viewer reads (list, get, usage, summary); an operator also runs
 * analyses. Bits, so an operator holds both. */
enum { ADV_ROLE_VIEWER = 1, ADV_ROLE_OPERATOR = 2 | 1 };

typedef struct adv_oidc adv_oidc_t;

typedef struct {
    const char *issuer;    /* discovery at <issuer>/.well-known/openid-configuration */
    const char *audience;  /* required: a token for another service is refused */
    const char *ca_file;   /* NULL: the system CAs */
    const char *jwks_file; /* instead of discovery (offline clusters) */
    uint64_t refresh_ms, min_refresh_ms;
    int64_t skew_s;
    size_t max_token;
    const char *roles_claim; /* "groups"; dots walk into objects */
    const kopt_config_list_t *viewer_values, *operator_values;
} adv_oidc_opts_t;

/* Copies the options; with an issuer, starts fetching the keys (a worker
 * thread; never the loop) and refreshes them every refresh_ms. A JWKS file
 * is read now. -EINVAL with err on bad options or an unreadable file. */
int adv_oidc_new(uv_loop_t *loop, kopt_metrics_t *metrics, const adv_oidc_opts_t *o,
                 adv_oidc_t **out, char *err, size_t errlen);
/* Loop thread. Verifies a token with the keys held now; an unknown kid
 * starts a refresh (at most one per min_refresh_ms). On KOPT_JWT_OK, *roles
 * (ADV_ROLE_* bits from the roles claim; 0 = none) and *t are set. */
kopt_jwt_result_t adv_oidc_verify(adv_oidc_t *o, const char *token, size_t len, kopt_jwt_t **t,
                                  int *roles);
size_t adv_oidc_max_token(const adv_oidc_t *o);
/* Changes whenever the key set is replaced (fetched, re-read). */
uint64_t adv_oidc_keys_generation(const adv_oidc_t *o);
/* SIGHUP: re-reads the JWKS file, or refetches from the issuer. */
int adv_oidc_reload(adv_oidc_t *o, char *err, size_t errlen);
/* Stops the timer; frees once a fetch in flight is done. NULL: no-op. */
void adv_oidc_close(adv_oidc_t *o);

/* ---- API keys, tokens and roles (auth.c) ------------------------------------ */

typedef struct adv_auth adv_auth_t;

/* What api.c passes as the authorization when the metadata was larger than
 * its buffer: counted as too_large. */
extern const char adv_auth_oversized[];

/* `path` NULL: no keys (then only mTLS service identities and tokens, or
 * anyone with `open`, the --insecure development mode, when no issuer is
 * set either). Lines are "key" or "key role" (viewer, operator; no role:
 * operator, as before roles existed). -errno with err on a bad file. */
int adv_auth_new(const char *path, bool open, adv_auth_t **out, char *err, size_t errlen);
/* Accepts bearer tokens verified by `oidc` (kept, not owned) from now on. */
void adv_auth_set_oidc(adv_auth_t *a, adv_oidc_t *oidc);
/* Verified tokens are cached (token_cache.h) unless turned off here. */
void adv_auth_cache_tokens(adv_auth_t *a, bool on);
/* Counts decisions in kopt_advisor_auth_total{method,result}. */
int adv_auth_set_metrics(adv_auth_t *a, kopt_metrics_t *m);
/* Re-reads the file (SIGHUP); keeps the old keys on error. */
int adv_auth_reload(adv_auth_t *a, char *err, size_t errlen);
/* The role a method needs: ADV_ROLE_OPERATOR for RunAnalysis and anything
 * not known to only read, ADV_ROLE_VIEWER for the reads. */
int adv_auth_required_role(const char *method);
/* GRPC_STATUS_OK, UNAUTHENTICATED (no or a bad credential) or
 * PERMISSION_DENIED (a good one without the role `method` needs), with a
 * message naming the reason or the missing role. `authorization` is the
 * header or metadata value (NULL if absent); `peer_uri` the client
 * certificate's URI SAN (NULL if none). Loop thread. */
grpc_status_code adv_auth_check(adv_auth_t *a, const char *authorization, const char *peer_uri,
                                const char *method, const char **why);
size_t adv_auth_count(const adv_auth_t *a);
void adv_auth_free(adv_auth_t *a);

/* ---- the API (api.c, api_list.c, api_usage.c) ------------------------------ */

typedef struct adv_reply adv_reply_t;
/* Called exactly once per call, on the loop thread; `resp` only with OK. */
typedef void (*adv_reply_fn)(adv_reply_t *r, grpc_status_code code, const char *message,
                             const ProtobufCMessage *resp);
/* One page of ListRecommendations, still in the snapshot: the transport
 * encodes it from the entries' cached views (page.c) instead of building a
 * response message. The entries stay valid during the call only. */
typedef struct {
    const adv_entry_t *const *items;
    size_t n;
    bool full;                   /* RECOMMENDATION_VIEW_FULL, else BASIC */
    const char *next_page_token; /* "" on the last page */
    uint32_t total_size;
} adv_page_t;

typedef void (*adv_page_fn)(adv_reply_t *r, const adv_page_t *page);

struct adv_reply {
    adv_reply_fn fn;
    adv_page_fn page; /* ListRecommendations' answer on success (both transports set it) */
    kopt_span_t span; /* the call's server span (trace_call.c); inactive with tracing off */
};

/* ---- list pages (page.c) ---------------------------------------------------- */

/* The BASIC view of rec: a shallow copy whose containers leave out the
 * evidence. It points into rec and *containers (n_containers of them, the
 * caller's storage); nothing to free. */
void adv_recommendation_basic(const Kopt__V1__Recommendation *rec, Kopt__V1__Recommendation *out,
                              Kopt__V1__ContainerRecommendation *containers,
                              Kopt__V1__ContainerRecommendation **ptrs);
/* The entry's BASIC encodings (results.c calls it once per entry). */
int adv_entry_encode(adv_entry_t *e);
/* A page as the proto3 JSON of ListRecommendationsResponse, byte for byte
 * what kopt_pbjson_encode gives for the same message; or as its protobuf.
 * *out is malloc'd. 0, -ENOMEM or -EINVAL. */
int adv_page_json(const adv_page_t *p, char **out, size_t *len);
int adv_page_pb(const adv_page_t *p, uint8_t **out, size_t *len);

typedef struct adv_api adv_api_t;

typedef void (*adv_method_fn)(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *reply);

typedef struct {
    const char *name;      /* "ListRecommendations" */
    const char *grpc_path; /* "/kopt.v1.Advisor/ListRecommendations" */
    const char *verb;      /* HTTP */
    const char *pattern;   /* "/v1/recommendations/{cluster}/..." */
    bool body;             /* body: "*" */
    const ProtobufCMessageDescriptor *request;
    adv_method_fn fn;
} adv_method_t;

/* ---- tracing (trace_call.c) ------------------------------------------------- */

/* Starts the call's span "kopt.v1.Advisor/<Method>", a child of the caller's
 * `traceparent` (gRPC metadata or HTTP header; NULL or invalid: a new trace). */
void adv_trace_call_start(adv_reply_t *r, const adv_method_t *m, const char *traceparent,
                          const char *transport);
/* Ends it with the call's status; every reply function calls this. */
void adv_trace_call_end(adv_reply_t *r, grpc_status_code code, const char *message);

extern const adv_method_t adv_methods[];
extern const size_t adv_n_methods;

/* Runs an analysis on the loop's worker pool; done() on the loop thread. */
typedef void (*adv_run_done_fn)(void *data, const adv_run_result_t *r);

typedef struct {
    uv_loop_t *loop;
    adv_snapshot_t *store;
    adv_auth_t *auth;
    kopt_metrics_t *metrics;
    const kopt_engine_options_t *engine; /* prices, lookback */
    const kopt_ch_options_t *ch;
    /* Starts a run; -EBUSY when one is running. */
    int (*run)(void *data, const adv_run_request_t *req, adv_run_done_fn done, void *done_data);
    void *run_data;
} adv_api_opts_t;

int adv_api_new(const adv_api_opts_t *o, adv_api_t **out);
/* Registers every method on the gRPC server. */
int adv_api_register_grpc(adv_api_t *api, kopt_grpc_server_t *s);
/* Counts a finished call in kopt_advisor_requests_total{method,code}. */
void adv_api_count(adv_api_t *api, const adv_method_t *m, grpc_status_code code);
const adv_api_opts_t *adv_api_opts(const adv_api_t *api);
/* Calls still waiting on a worker (usage queries, analyses). */
int adv_api_pending(const adv_api_t *api);
void adv_api_free(adv_api_t *api);

/* Implementations (api_list.c, api_usage.c). */
void adv_api_list_recommendations(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);
/* Whether the list request `q` with its parsed filter `f` (NULL: none)
 * selects `e`: ListRecommendations' test of each entry (bench/ uses it). */
bool adv_list_matches(const adv_entry_t *e, const Kopt__V1__ListRecommendationsRequest *q,
                      const adv_filter_t *f);
void adv_api_get_recommendation(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);
void adv_api_get_cluster_summary(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);
void adv_api_list_clusters(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);
void adv_api_get_workload_usage(adv_api_t *api, const ProtobufCMessage *req, adv_reply_t *r);
void adv_api_pending_add(adv_api_t *api, int d);

/* Page tokens: an offset bound to a hash of the request's filters. */
void adv_page_token(uint64_t filter_hash, size_t offset, char *out, size_t len);
int adv_page_token_parse(const char *token, uint64_t filter_hash, size_t *offset);
uint64_t adv_hash(uint64_t h, const void *data, size_t len);

/* google.rpc code mapping: the HTTP status of a gRPC code. */
int adv_http_status(grpc_status_code code);

/* ---- HTTP gateway and web page (gateway.c, web.c) -------------------------- */

typedef struct adv_gateway adv_gateway_t;

/* `tls` (NULL: plain HTTP) must outlive the gateway. `max_per_peer`: open
 * connections one client address may hold (0: no such limit). */
int adv_gateway_new(uv_loop_t *loop, adv_api_t *api, kopt_metrics_t *metrics, const char *listen,
                    kopt_http_tls_t *tls, int max_per_peer, adv_gateway_t **out, int *port);
void adv_gateway_close(adv_gateway_t *g, void (*done)(void *data), void *data);

/* The web page's files (advisor/web/), embedded by advisor/web/embed_web.py. */
typedef struct {
    const char *path, *content_type, *data;
    size_t len;
} adv_web_asset_t;

extern const adv_web_asset_t adv_web_assets[];
extern const size_t adv_n_web_assets;

/* Routes GET of every web asset on srv (web.c), with the page's security
 * headers. 0 or a negative errno. */
int adv_web_routes(kopt_http_server_t *srv);

#endif
