/* One analysis run: load the lookback's hourly rollups from ClickHouse, run
 * the engine on every workload, turn each result into a kopt.v1.Recommendation,
 * write the rows, publish the messages. Blocking from start to end: it runs
 * on a libuv worker thread in the server and on the main thread of
 * `kopt-advisor analyze`. The caller logs the outcome and swaps the results
 * into memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <kopt/log.h>

#include "advisor.h"
#include "evidence.h"

#define MAX_REASONS 8

/* One container's message and what it points to. */
typedef struct {
    Kopt__V1__ContainerRecommendation c;
    Kopt__V1__ResourceValues cur, rec;
    Kopt__V1__CpuUsageStats cpu;
    Kopt__V1__MemoryUsageStats mem;
    Kopt__V1__RecommendationReason reasons[MAX_REASONS];
    adv_evidence_t ev; /* bounds, replayed risk, backtest */
} crec_t;

static int64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void make_id(char *out, size_t len, int64_t now)
{
    time_t t = (time_t)now;
    struct tm tm;
    uint8_t rnd[3] = {0};
    char when[32];

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memcpy(rnd, &now, sizeof(rnd) < sizeof(now) ? sizeof(rnd) : sizeof(now));
    snprintf(out, len, "an-%s-%02x%02x%02x", when, rnd[0], rnd[1], rnd[2]);
}

static void values(Kopt__V1__ResourceValues *v, const kopt_resources_t *r)
{
    kopt__v1__resource_values__init(v);
    v->cpu_request_cores = r->cpu_request_cores;
    v->cpu_limit_cores = r->cpu_limit_cores;
    v->memory_request_bytes = r->memory_request_bytes;
    v->memory_limit_bytes = r->memory_limit_bytes;
}

static void reasons(crec_t *x, const kopt_engine_result_t *r)
{
    static const struct {
        unsigned flags;
        Kopt__V1__RecommendationReason reason;
    } map[] = {
        {KOPT_ENGINE_OVER_PROVISIONED,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_OVER_PROVISIONED},
        {KOPT_ENGINE_UNDER_PROVISIONED,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_UNDER_PROVISIONED},
        {KOPT_ENGINE_OOM_BUMPED, KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_OOM_KILLED},
        {KOPT_ENGINE_CPU_THROTTLED,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_CPU_THROTTLED},
        {KOPT_ENGINE_MISSING_REQUESTS,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_MISSING_REQUESTS},
        {KOPT_ENGINE_LOW_CONFIDENCE,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_LOW_CONFIDENCE},
        {KOPT_ENGINE_IDLE, KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_IDLE},
        {KOPT_ENGINE_CPU_AT_MIN | KOPT_ENGINE_MEMORY_AT_MIN,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_AT_MINIMUM},
        {KOPT_ENGINE_CPU_AT_MAX | KOPT_ENGINE_MEMORY_AT_MAX,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_AT_MAXIMUM},
        {KOPT_ENGINE_HPA_ADJUSTED,
         KOPT__V1__RECOMMENDATION_REASON__RECOMMENDATION_REASON_HPA_TARGET_CHANGED},
    };
    unsigned flags = r->flags;

    if (r->history.oom_kills > 0)
        flags |= KOPT_ENGINE_OOM_BUMPED;
    x->c.reasons = x->reasons;
    x->c.n_reasons = 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (flags & map[i].flags)
            x->reasons[x->c.n_reasons++] = map[i].reason;
}

static void container_msg(crec_t *x, const char *name, const kopt_engine_result_t *r)
{
    const kopt_engine_history_t *h = &r->history;

    kopt__v1__container_recommendation__init(&x->c);
    values(&x->cur, &r->current);
    values(&x->rec, &r->recommended);
    kopt__v1__cpu_usage_stats__init(&x->cpu);
    kopt__v1__memory_usage_stats__init(&x->mem);
    x->cpu = (Kopt__V1__CpuUsageStats){x->cpu.base, h->cpu.p50, h->cpu.p90,
                                       h->cpu.p95,  h->cpu.p99, h->cpu.max};
    x->mem = (Kopt__V1__MemoryUsageStats){x->mem.base,
                                          (uint64_t)h->memory.p50,
                                          (uint64_t)h->memory.p90,
                                          (uint64_t)h->memory.p95,
                                          (uint64_t)h->memory.p99,
                                          (uint64_t)h->memory.max};
    x->c.container = (char *)name;
    x->c.current = &x->cur;
    x->c.recommended = &x->rec;
    x->c.confidence = r->confidence;
    x->c.explanation = (char *)r->explanation;
    x->c.cpu_request_percentile = r->cpu_percentile;
    x->c.memory_request_percentile = r->memory_percentile;
    x->c.cpu_usage = &x->cpu;
    x->c.memory_usage = &x->mem;
    x->c.oom_kills = h->oom_kills;
    x->c.cpu_throttled_seconds = h->cpu_throttled_seconds;
    reasons(x, r);
    adv_evidence_fill(&x->ev, &x->c, r);
}

static Kopt__V1__QosClass qos(const kopt_engine_result_t *r, size_t n)
{
    bool guaranteed = n > 0, any = false;

    for (size_t i = 0; i < n; i++) {
        const kopt_resources_t *v = &r[i].recommended;

        any |= v->cpu_request_cores > 0 || v->memory_request_bytes > 0 || v->cpu_limit_cores > 0 ||
               v->memory_limit_bytes > 0;
        guaranteed &= v->cpu_request_cores > 0 && v->cpu_limit_cores == v->cpu_request_cores &&
                      v->memory_request_bytes > 0 &&
                      v->memory_limit_bytes == v->memory_request_bytes;
    }
    return guaranteed ? KOPT__V1__QOS_CLASS__QOS_CLASS_GUARANTEED
           : any      ? KOPT__V1__QOS_CLASS__QOS_CLASS_BURSTABLE
                      : KOPT__V1__QOS_CLASS__QOS_CLASS_BEST_EFFORT;
}

/* The workload's HPA as reported, and what to do with its CPU target. */
static void hpa_msgs(Kopt__V1__HpaFacts *hf, Kopt__V1__HpaAdvice *ha, const adv_hpa_t *h,
                     const kopt_engine_workload_result_t *wres)
{
    kopt__v1__hpa_facts__init(hf);
    kopt__v1__hpa_advice__init(ha);
    hf->name = h->hpa_name;
    hf->min_replicas = h->min_replicas;
    hf->max_replicas = h->max_replicas;
    hf->target_cpu_utilization_percent = h->target_cpu_percent;
    hf->target_memory_utilization_percent = h->target_memory_percent;
    hf->metric_names = h->metrics;
    hf->n_metric_names = h->n_metrics;
    ha->adjusted = wres->hpa_adjusted;
    ha->target_cpu_utilization_percent = wres->hpa_target_percent;
    ha->scale_out_cores_current = wres->hpa_scale_out_cores_old;
    ha->scale_out_cores_recommended = wres->hpa_scale_out_cores_new;
}

/* A container cannot be scheduled with more than a node offers: the
 * cluster's largest allocatable caps the recommendation, under any
 * configured maximum. */
static void cap_to_nodes(kopt_engine_options_t *o, const adv_node_totals_t *n)
{
    if (!n)
        return;
    if (n->cpu_largest_node_cores > 0 &&
        (o->cpu_max_cores == 0 || n->cpu_largest_node_cores < o->cpu_max_cores))
        o->cpu_max_cores = n->cpu_largest_node_cores;
    if (n->memory_largest_node_bytes > 0 &&
        (o->memory_max_bytes == 0 || n->memory_largest_node_bytes < o->memory_max_bytes))
        o->memory_max_bytes = n->memory_largest_node_bytes;
}

/* The message of one analysed workload, as an owned (unpacked) copy. */
static Kopt__V1__Recommendation *
workload_msg(const adv_analysis_ctx_t *ctx, const adv_input_t *in, const adv_workload_in_t *w,
             const kopt_engine_result_t *res, const kopt_engine_workload_result_t *wres,
             const adv_hpa_t *hpa, const char *id, int64_t now, int64_t lookback)
{
    Kopt__V1__Recommendation rec;
    Kopt__V1__WorkloadRef ref;
    Kopt__V1__WorkloadSavings sav;
    Kopt__V1__HpaFacts hf;
    Kopt__V1__HpaAdvice ha;
    Google__Protobuf__Timestamp gen, ws, we;
    Kopt__V1__ContainerRecommendation **cp = calloc(w->n_containers + 1, sizeof(*cp));
    crec_t *x = calloc(w->n_containers + 1, sizeof(*x));
    Kopt__V1__Recommendation *out = NULL;
    uint8_t *buf = NULL;
    size_t len;

    if (!cp || !x)
        goto out;
    kopt__v1__recommendation__init(&rec);
    kopt__v1__workload_ref__init(&ref);
    kopt__v1__workload_savings__init(&sav);
    google__protobuf__timestamp__init(&gen);
    google__protobuf__timestamp__init(&ws);
    google__protobuf__timestamp__init(&we);
    ref.cluster = w->cluster;
    ref.namespace_ = w->namespace_;
    ref.kind = (Kopt__V1__WorkloadKind)adv_kind_parse(w->kind);
    ref.name = w->name;
    sav.cpu_cores = wres->savings.cpu_cores;
    sav.memory_bytes = wres->savings.memory_bytes;
    sav.monthly_cost = wres->savings.monthly_cost;
    sav.currency = (char *)ctx->engine.prices.currency;
    gen.seconds = now;
    ws.seconds = lookback > 0 ? now - lookback : 0;
    we.seconds = now;
    for (size_t i = 0; i < w->n_containers; i++) {
        container_msg(&x[i], in->c[w->first_container + i].name, &res[i]);
        cp[i] = &x[i].c;
    }
    rec.workload = &ref;
    rec.n_containers = w->n_containers;
    rec.containers = cp;
    rec.savings = &sav;
    rec.idle = wres->idle;
    rec.replicas = w->replicas;
    rec.generated_at = &gen;
    rec.window_start = &ws;
    rec.window_end = &we;
    rec.data_points = wres->windows;
    rec.analysis_id = (char *)id;
    rec.qos_class = qos(res, w->n_containers);
    if (hpa) {
        hpa_msgs(&hf, &ha, hpa, wres);
        rec.hpa = &hf;
        rec.hpa_advice = hpa->target_cpu_percent > 0 ? &ha : NULL;
    }
    len = kopt__v1__recommendation__get_packed_size(&rec);
    buf = malloc(len ? len : 1);
    if (buf) {
        kopt__v1__recommendation__pack(&rec, buf);
        out = kopt__v1__recommendation__unpack(NULL, len, buf);
    }
out:
    free(buf);
    free(cp);
    free(x);
    return out;
}

/* Runs the engine on every workload of `in`; appends to out->recs. */
static int analyse(const adv_analysis_ctx_t *ctx, const adv_input_t *in, const adv_facts_t *facts,
                   int64_t now, int64_t lookback, adv_run_result_t *out)
{
    kopt_engine_options_t opts = ctx->engine;
    size_t max_c = 1;

    opts.lookback_s = lookback;
    for (size_t i = 0; i < in->n_w; i++)
        max_c = in->w[i].n_containers > max_c ? in->w[i].n_containers : max_c;
    kopt_engine_container_t *ec = calloc(max_c, sizeof(*ec));
    kopt_engine_result_t *res = calloc(max_c, sizeof(*res));
    out->recs = calloc(in->n_w ? in->n_w : 1, sizeof(*out->recs));
    if (!ec || !res || !out->recs) {
        free(ec);
        free(res);
        return -ENOMEM;
    }
    for (size_t i = 0; i < in->n_w; i++) {
        const adv_workload_in_t *w = &in->w[i];
        kopt_engine_workload_t ew = {.kind = w->kind,
                                     .name = w->name,
                                     .replicas = w->replicas,
                                     .containers = ec,
                                     .n_containers = w->n_containers};
        const adv_hpa_t *hpa = adv_facts_hpa(facts, w->cluster, w->namespace_, w->kind, w->name);
        kopt_engine_options_t wopts = opts;
        kopt_engine_workload_result_t wres;
        Kopt__V1__Recommendation *rec;
        int r;

        adv_facts_engine_hpa(hpa, &ew.hpa);
        cap_to_nodes(&wopts, adv_facts_nodes(facts, w->cluster));
        for (size_t k = 0; k < w->n_containers; k++) {
            const adv_container_in_t *c = &in->c[w->first_container + k];

            ec[k] = (kopt_engine_container_t){c->name, c->current, c->hours, c->n_hours};
        }
        r = kopt_engine_analyze_workload(&wopts, &ew, now, res, &wres);
        if (r < 0) {
            if (r != -ENODATA)
                kopt_log_warn("workload not analysed", KOPT_STR("cluster", w->cluster),
                              KOPT_STR("namespace", w->namespace_), KOPT_STR("name", w->name),
                              KOPT_ERR(r));
            out->skipped++;
            continue;
        }
        rec = workload_msg(ctx, in, w, res, &wres, hpa, out->analysis_id, now, lookback);
        if (!rec) {
            free(ec);
            free(res);
            return -ENOMEM;
        }
        out->recs[out->n_recs++] = rec;
        out->analyzed++;
        out->idle += wres.idle;
    }
    free(ec);
    free(res);
    return 0;
}

/* What the aggregators say about container_hourly (docs/storage.md,
 * "Rollup state"). Hours before the previous one are history: a history
 * hour with windows stored but not rolled up yet (a backfill, a spool
 * replayed after an outage) is partial in container_hourly. The run waits
 * for the rollup to take it (at most --rollup-wait: a rollup of days
 * takes seconds) rather than analyse a history with holes; what is
 * still partial after the wait is read as it is and reported, never left
 * out (leaving out most of a backfilled week would turn eight days of
 * history into one hour). The current and previous hours are partial by
 * nature; the engine counts the time their windows cover. Unknown state
 * (an older aggregator) reads every hour. */
#define ROLLUP_POLL_S 2

static int read_rollup(kopt_ch_client_t *ch, const adv_run_request_t *req, int64_t now,
                       adv_rollup_t *ru)
{
    kopt_ch_error_t err = {0};
    int r;

    adv_rollup_free(ru);
    r = adv_ch_rollup_state(ch, req->cluster, now - now % 3600 - 3600, ru, &err);
    if (r < 0 && r != -ENOENT)
        kopt_log_warn("rollup state unavailable; reading every hour as complete",
                      KOPT_STR("error", err.message), KOPT_ERR(r));
    return r;
}

static void rollup_state(kopt_ch_client_t *ch, const adv_run_request_t *req, int64_t now,
                         uint32_t wait_s, adv_rollup_t *ru, adv_run_result_t *out)
{
    uint32_t waited = 0;

    if (read_rollup(ch, req, now, ru) < 0 || !ru->known)
        return;
    if (ru->n_partial > 0)
        kopt_log_info("hours not rolled up yet (backfill in progress); waiting for the rollup",
                      KOPT_UINT("hours", ru->n_partial), KOPT_UINT("most_s", wait_s));
    while (ru->known && ru->n_partial > 0 && waited < wait_s) {
        struct timespec pause = {ROLLUP_POLL_S, 0};

        nanosleep(&pause, NULL);
        waited += ROLLUP_POLL_S;
        if (read_rollup(ch, req, now, ru) < 0)
            return;
    }
    out->rollup_complete_until = ru->complete_until;
    out->rollup_partial_hours = (uint32_t)ru->n_partial;
    if (ru->n_partial > 0)
        kopt_log_warn(
            "hours still not rolled up after the wait; read as they are",
            KOPT_UINT("hours", ru->n_partial), KOPT_STR("cluster", ru->partial[0].cluster),
            KOPT_INT("first_hour", ru->partial[0].hour),
            KOPT_INT("complete_until", ru->complete_until),
            KOPT_INT("rollup_lag_s", now - ru->complete_until), KOPT_UINT("waited_s", waited));
    else
        kopt_log_info("container_hourly rolled up", KOPT_INT("complete_until", ru->complete_until),
                      KOPT_INT("rollup_lag_s", now - ru->complete_until),
                      KOPT_UINT("waited_s", waited));
}

void adv_analysis_run(const adv_analysis_ctx_t *ctx, const adv_run_request_t *req,
                      adv_run_result_t *out)
{
    adv_rollup_t ru = {0};
    int64_t lookback = req->lookback_s > 0 ? req->lookback_s : ctx->engine.lookback_s;
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t err = {0};
    adv_input_t in = {0};
    adv_facts_t facts = {0};
    adv_scope_t scope;
    int64_t now;
    size_t sent = 0;
    int r;

    memset(out, 0, sizeof(*out));
    out->started_ns = now_ns();
    now = out->started_ns / 1000000000LL;
    make_id(out->analysis_id, sizeof(out->analysis_id), now);
    scope = (adv_scope_t){req->cluster, req->namespace_, lookback > 0 ? now - lookback : 0, now};
    r = kopt_ch_client_new(&ctx->ch, &ch, &err);
    if (r == 0)
        rollup_state(ch, req, now, ctx->rollup_wait_s, &ru, out);
    if (r == 0)
        r = adv_ch_load_input(ch, &ctx->ch, ctx->archive, &scope, &in, &err);
    if (r < 0) {
        snprintf(out->message, sizeof(out->message), "reading container_hourly failed: %s",
                 err.message);
        goto out;
    }
    /* Node counts, HPAs and node sizes make better advice, but their absence
     * (a missing table, an old aggregator) is no failure. */
    if (adv_ch_cluster_info(ch, scope.from, &out->clusters, &out->n_clusters, &err) < 0)
        kopt_log_warn("node counts unavailable", KOPT_STR("error", err.message));
    if (adv_facts_load(ch, &scope, &facts, &err) < 0)
        kopt_log_warn("workload and node facts unavailable; analysing without HPAs and node sizes",
                      KOPT_STR("error", err.message));
    if (adv_facts_merge_clusters(&facts, &out->clusters, &out->n_clusters) < 0) {
        r = -ENOMEM;
        snprintf(out->message, sizeof(out->message), "analysis failed: out of memory");
        goto out;
    }
    r = analyse(ctx, &in, &facts, now, lookback, out);
    if (r < 0) {
        snprintf(out->message, sizeof(out->message), "analysis failed: out of memory");
        goto out;
    }
    if (req->dry_run) {
        snprintf(out->message, sizeof(out->message), "dry run: nothing written");
        goto out;
    }
    r = adv_ch_write_recommendations(ch, out->recs, out->n_recs, &err);
    if (r < 0) {
        snprintf(out->message, sizeof(out->message), "writing recommendations failed: %s",
                 err.message);
        goto out;
    }
    out->written = (uint32_t)out->n_recs;
    if (ctx->publisher && out->n_recs > 0) {
        r = adv_publisher_send(ctx->publisher, out->recs, out->n_recs, &sent, out->message,
                               sizeof(out->message));
        out->published = (uint32_t)sent;
    }
    if (r == 0 && out->rollup_partial_hours > 0)
        snprintf(
            out->message, sizeof(out->message),
            "analysis done; %u hours not rolled up yet were read as they are (rollup lag %lld s)",
            out->rollup_partial_hours, (long long)(now - out->rollup_complete_until));
    else if (r == 0)
        snprintf(out->message, sizeof(out->message), "analysis done");
out:
    out->status = r;
    out->finished_ns = now_ns();
    adv_input_free(&in);
    adv_facts_free(&facts);
    adv_rollup_free(&ru);
    kopt_ch_client_free(ch);
}

void adv_run_result_free(adv_run_result_t *r)
{
    for (size_t i = 0; i < r->n_recs; i++)
        if (r->recs[i])
            protobuf_c_message_free_unpacked(&r->recs[i]->base, NULL);
    free(r->recs);
    adv_cluster_info_free(r->clusters, r->n_clusters);
    r->recs = NULL;
    r->n_recs = 0;
    r->clusters = NULL;
    r->n_clusters = 0;
}
