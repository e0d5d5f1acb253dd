/* kopt_engine_result_t's bounds, replayed risk and backtest into the
 * messages of advisor.proto (see evidence.h). Shares the engine leaves out
 * (memory over request in the replay) are the counts over the windows. */
#include "evidence.h"

#define HOUR 3600

static double share(uint64_t part, uint64_t whole)
{
    return whole ? (double)part / (double)whole : 0;
}

static void fill_risk(Kopt__V1__ReplayedRisk *m, const kopt_engine_risk_t *r)
{
    kopt__v1__replayed_risk__init(m);
    m->windows = r->windows;
    m->cpu_windows_over_request = r->cpu_windows_over_request;
    m->cpu_over_request_share = r->cpu_over_request_share;
    m->cpu_windows_over_limit = r->cpu_windows_throttled;
    m->cpu_over_limit_share = r->cpu_throttled_share;
    m->cpu_hours_peak_over_limit = r->cpu_hours_peak_over_limit;
    m->memory_windows_over_request = r->memory_windows_over_request;
    m->memory_over_request_share = share(r->memory_windows_over_request, r->windows);
    m->memory_windows_over_limit = r->memory_windows_oom;
    m->memory_hours_over_limit = r->memory_hours_oom;
}

static void fill_backtest(adv_evidence_t *ev, const kopt_engine_result_t *r)
{
    const kopt_engine_backtest_t *b = &r->backtest;
    Kopt__V1__Backtest *m = &ev->backtest;
    Kopt__V1__ResourceValues *v = &ev->backtest_recommended;

    kopt__v1__backtest__init(m);
    m->valid = b->valid;
    if (!b->valid)
        return;
    google__protobuf__timestamp__init(&ev->fit_start);
    google__protobuf__timestamp__init(&ev->split);
    google__protobuf__timestamp__init(&ev->end);
    /* The backtest reads the same lookback as the result's history. */
    ev->fit_start.seconds = r->history.first_hour;
    ev->split.seconds = b->split;
    ev->end.seconds = r->history.last_hour + HOUR;
    kopt__v1__resource_values__init(v);
    v->cpu_request_cores = b->recommended.cpu_request_cores;
    v->cpu_limit_cores = b->recommended.cpu_limit_cores;
    v->memory_request_bytes = b->recommended.memory_request_bytes;
    v->memory_limit_bytes = b->recommended.memory_limit_bytes;
    m->fit_start_time = &ev->fit_start;
    m->split_time = &ev->split;
    m->end_time = &ev->end;
    m->recommended = v;
    m->windows = b->windows;
    m->scored_hours = b->scored_hours;
    m->cpu_over_request_share = b->cpu_over_request_share;
    m->memory_over_request_share = b->memory_over_request_share;
    m->cpu_over_limit_share = b->cpu_over_limit_share;
    m->memory_over_limit_share = b->memory_over_limit_share;
    m->reserved_core_hours = b->reserved_core_hours;
    m->reserved_gib_hours = b->reserved_gib_hours;
    m->used_core_hours = b->used_core_hours;
    m->used_gib_hours = b->used_gib_hours;
}

void adv_evidence_fill(adv_evidence_t *ev, Kopt__V1__ContainerRecommendation *c,
                       const kopt_engine_result_t *r)
{
    c->bounds = NULL;
    c->replayed_risk = NULL;
    c->backtest = NULL;
    if (r->history.windows == 0)
        return;
    kopt__v1__resource_bounds__init(&ev->bounds);
    ev->bounds.cpu_lower_cores = r->cpu_lower;
    ev->bounds.cpu_upper_cores = r->cpu_upper;
    ev->bounds.memory_lower_bytes = r->memory_lower;
    ev->bounds.memory_upper_bytes = r->memory_upper;
    fill_risk(&ev->risk, &r->risk);
    fill_backtest(ev, r);
    c->bounds = &ev->bounds;
    c->replayed_risk = &ev->risk;
    c->backtest = &ev->backtest;
}
