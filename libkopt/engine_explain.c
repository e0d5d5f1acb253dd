/* The one-paragraph explanation of a recommendation, in words, written into
 * the result's bounded buffer (a long one is cut, never overflowed), and
 * the strategy names. */
#include <kopt/engine.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MIB 1048576.0

typedef struct {
    char *p;
    size_t cap, len;
} text_t;

__attribute__((format(printf, 2, 3))) static void say(text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->len + 1 >= t->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    t->len += (size_t)n;
    if (t->len >= t->cap)
        t->len = t->cap - 1;
}

const char *kopt_engine_strategy_name(kopt_engine_strategy_t s)
{
    switch (s) {
    case KOPT_STRATEGY_VPA:
        return "vpa";
    case KOPT_STRATEGY_SIMPLE:
        return "simple";
    case KOPT_STRATEGY_KOPT:
    default:
        return "kopt";
    }
}

int kopt_engine_strategy_parse(const char *name, kopt_engine_strategy_t *out)
{
    if (!name || !out)
        return -EINVAL;
    if (strcmp(name, "kopt") == 0)
        *out = KOPT_STRATEGY_KOPT;
    else if (strcmp(name, "vpa") == 0)
        *out = KOPT_STRATEGY_VPA;
    else if (strcmp(name, "simple") == 0)
        *out = KOPT_STRATEGY_SIMPLE;
    else
        return -EINVAL;
    return 0;
}

/* "over 8.0 days of history (2304 windows covering 8.0 days, confidence
 * 100 %)": the time the windows cover, whatever their length. */
static void say_history(text_t *t, const kopt_engine_result_t *r)
{
    const kopt_engine_history_t *h = &r->history;

    say(t, "over %.1f days of history (%llu windows covering %.1f days, confidence %.0f %%)",
        h->lifespan_days, (unsigned long long)h->windows, h->covered_s / 86400.0,
        r->confidence * 100);
}

static void say_cpu(text_t *t, const kopt_engine_options_t *o, const kopt_engine_result_t *r)
{
    say(t, "CPU request %.3f cores", r->recommended.cpu_request_cores);
    if (r->current.cpu_request_cores > 0)
        say(t, " (now %.3f)", r->current.cpu_request_cores);
    else
        say(t, " (none set now)");
    switch (r->strategy) {
    case KOPT_STRATEGY_KOPT:
        say(t, ": %.3f cores is the p%.1f of the time-weighted usage ", r->cpu_basis_cores,
            r->cpu_percentile * 100);
        say_history(t, r);
        say(t, "; %.0f %% more would cover only %.2f %% more of the time", (o->cpu_step - 1) * 100,
            r->cpu_next_share * 100);
        break;
    case KOPT_STRATEGY_SIMPLE:
        say(t, ": the simple rule's p95 of the window means, %.3f cores, ", r->cpu_basis_cores);
        say_history(t, r);
        break;
    case KOPT_STRATEGY_VPA:
    default:
        say(t, ": the VPA algorithm's p%.0f, %.3f cores, plus its margin, ",
            r->cpu_percentile * 100, r->cpu_basis_cores);
        say_history(t, r);
        break;
    }
    say(t, "; bounds %.3f to %.3f. ", r->cpu_lower, r->cpu_upper);
}

static void say_memory(text_t *t, const kopt_engine_result_t *r)
{
    const kopt_engine_history_t *h = &r->history;

    say(t, "Memory request %.0f MiB", (double)r->recommended.memory_request_bytes / MIB);
    if (r->current.memory_request_bytes > 0)
        say(t, " (now %.0f MiB)", (double)r->current.memory_request_bytes / MIB);
    else
        say(t, " (none set now)");
    if (r->flags & KOPT_ENGINE_OOM_BUMPED)
        say(t, ": %.0f MiB, the usage at an OOM kill times the bump", r->oom_floor_bytes / MIB);
    else if (r->strategy == KOPT_STRATEGY_KOPT)
        say(t,
            ": daily peaks weighted to the last days reach %.0f MiB (p%.0f), plus %.0f MiB "
            "headroom",
            r->memory_basis_bytes / MIB, r->memory_percentile * 100,
            r->memory_headroom_bytes / MIB);
    else if (r->strategy == KOPT_STRATEGY_SIMPLE)
        say(t, ": the highest peak, %.0f MiB, plus 15 %%", r->memory_basis_bytes / MIB);
    else
        say(t, ": the VPA algorithm's p%.0f of daily peaks, %.0f MiB, plus its margin",
            r->memory_percentile * 100, r->memory_basis_bytes / MIB);
    say(t, "; the highest peak seen was %.0f MiB; bounds %.0f to %.0f MiB. ", h->memory.max / MIB,
        (double)r->memory_lower / MIB, (double)r->memory_upper / MIB);
    if (h->oom_kills > 0)
        say(t, "%u OOM kill%s in the window, the largest at %.0f MiB. ", h->oom_kills,
            h->oom_kills == 1 ? "" : "s", h->oom_max_usage_bytes / MIB);
}

static void say_limits(text_t *t, const kopt_engine_options_t *o, const kopt_engine_result_t *r)
{
    static const char *policy[] = {"kept at the current limit/request ratio",
                                   "set from the upper bounds", "left as they are"};

    say(t, "Limits, %s: ", policy[o->limits]);
    if (r->recommended.cpu_limit_cores > 0)
        say(t, "CPU %.3f cores, ", r->recommended.cpu_limit_cores);
    else
        say(t, "no CPU limit, ");
    if (r->recommended.memory_limit_bytes > 0)
        say(t, "memory %.0f MiB. ", (double)r->recommended.memory_limit_bytes / MIB);
    else
        say(t, "no memory limit. ");
    if (r->flags & KOPT_ENGINE_CPU_THROTTLED)
        say(t,
            "It was throttled in %.0f %% of CPU periods, so the CPU limit stays at or "
            "above the upper bound. ",
            100.0 * (double)r->history.cpu_throttled_periods / (double)r->history.cpu_periods);
}

static void say_risk(text_t *t, const kopt_engine_result_t *r)
{
    const kopt_engine_risk_t *k = &r->risk;

    say(t, "Replayed on the history: %.1f %% of windows used more CPU than the new request",
        k->cpu_over_request_share * 100);
    if (r->recommended.cpu_limit_cores > 0)
        say(t, ", %.1f %% would have been throttled", k->cpu_throttled_share * 100);
    if (r->recommended.memory_limit_bytes > 0)
        say(t, ", %llu window%s would have passed the memory limit (OOM kills)",
            (unsigned long long)k->memory_windows_oom, k->memory_windows_oom == 1 ? "" : "s");
    say(t, ". ");
}

/* The out-of-sample check: fitted on the earlier part, scored on the rest. */
static void say_backtest(text_t *t, const kopt_engine_result_t *r)
{
    const kopt_engine_backtest_t *b = &r->backtest;

    if (!b->valid)
        return;
    say(t,
        "Backtest: fitted on the history before the last %.0f hours, the same rule was above "
        "the usage of those hours in all but %.1f %% (CPU) and %.1f %% (memory) of the windows. ",
        b->scored_hours, b->cpu_over_request_share * 100, b->memory_over_request_share * 100);
}

static void say_hpa(text_t *t, const kopt_engine_hpa_t *hpa, const kopt_engine_workload_result_t *w)
{
    if (!hpa || !w || !w->hpa_adjusted)
        return;
    say(t,
        "The HPA scales out at %u %% of the CPU request (%.3f cores a pod); with the new "
        "requests set its target to %u %%",
        hpa->target_cpu_percent, w->hpa_scale_out_cores_old, w->hpa_target_percent);
    if (w->hpa_scale_out_cores_new + 0.0005 < w->hpa_scale_out_cores_old ||
        w->hpa_scale_out_cores_new > w->hpa_scale_out_cores_old + 0.0005)
        say(t, ", the highest kopt sets, which moves scale-out to %.3f cores a pod. ",
            w->hpa_scale_out_cores_new);
    else
        say(t, " to keep the same scale-out point. ");
}

void kopt_engine_explain(const kopt_engine_options_t *opts, const kopt_engine_hpa_t *hpa,
                         const kopt_engine_workload_result_t *wres, kopt_engine_result_t *r)
{
    text_t t = {r->explanation, sizeof(r->explanation), 0};

    r->explanation[0] = '\0';
    if (r->history.windows == 0) {
        say(&t, "No usage history in the window: nothing to recommend yet.");
        return;
    }
    say_cpu(&t, opts, r);
    say_memory(&t, r);
    say_limits(&t, opts, r);
    say_risk(&t, r);
    say_backtest(&t, r);
    if (r->flags & KOPT_ENGINE_LOW_CONFIDENCE)
        say(&t, "Only %.2f days of history back this: the bounds are wide%s. ", r->history_days,
            r->strategy == KOPT_STRATEGY_KOPT ? " and requests are not lowered yet" : "");
    if (r->flags & KOPT_ENGINE_IDLE)
        say(&t,
            "CPU never passed %.3f cores: the workload looks idle; consider scaling it "
            "down or removing it. ",
            opts->idle_cpu_cores);
    if (r->flags & KOPT_ENGINE_CPU_AT_MAX)
        say(&t,
            "The CPU request is held at %.3f cores, the most one node offers (or the "
            "configured maximum). ",
            r->recommended.cpu_request_cores);
    if (r->flags & KOPT_ENGINE_MEMORY_AT_MAX)
        say(&t,
            "The memory request is held at %.0f MiB, the most one node offers (or the "
            "configured maximum). ",
            (double)r->recommended.memory_request_bytes / 1048576.0);
    say_hpa(&t, hpa, wres);
    while (t.len > 0 && r->explanation[t.len - 1] == ' ')
        r->explanation[--t.len] = '\0';
}
