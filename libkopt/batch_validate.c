/* What makes a MetricBatch storable, and which of its windows are too old to
 * keep. Each check names the field it failed on, so the agent's operator can
 * find the bug from the gRPC status (ingest) or the dead letter (aggregator)
 * alone. */
#include <kopt/batch_validate.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include <kopt/names.h>

#define MAX_CORES 100000.0 /* no node has more; catches unit mistakes (millicores) */

void kopt_batch_limits_default(kopt_batch_limits_t *lim)
{
    lim->max_windows = 20000;
    lim->max_workloads = 5000;
    /* The advisor's 8-day lookback plus 6 days for an agent's outage, and
     * well inside the aggregator's 35 days of container_windows
     * (docs/configuration.md, "kopt-ingest: how old a window may be"). */
    lim->max_age_seconds = (int64_t)14 * 24 * 3600;
    lim->max_future_seconds = 300;
    lim->max_window_seconds = 3600;
}

static int fail(kopt_batch_problem_t *p, const char *reason, const char *fmt, ...)
{
    va_list ap;

    p->reason = reason;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A field named for people, formatted only when a check fails: valid
 * batches are the common case and must not pay for the message. */
typedef struct {
    const char *list; /* "windows", "workloads", or NULL at the top */
    size_t i;
    const char *name;
} field_t;

#define TOP(name) ((field_t){NULL, 0, (name)})

static const char *field_text(field_t f, char *buf, size_t len)
{
    if (!f.list)
        return f.name;
    snprintf(buf, len, "%s[%zu].%s", f.list, f.i, f.name);
    return buf;
}

/* The first 64 bytes of a refused name, printable: the message goes into a
 * gRPC status, a log line and a dead letter's header, so a name made of
 * control bytes, quotes or UTF-8 must not break any of them. Bytes outside
 * printable ASCII, a double quote and a backslash become \xHH. */
static const char *name_text(const char *v, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; v[i] && i < 64 && o + 5 <= len; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    out[o] = '\0';
    return out;
}

static int check_name(kopt_batch_problem_t *p, field_t f, const char *v, kopt_name_kind_t kind)
{
    const char *why;
    char buf[64], text[4 * 64 + 1];

    if (!v || !*v)
        return fail(p, "missing_field", "%s: missing", field_text(f, buf, sizeof(buf)));
    if (kopt_name_check_why(v, kind, &why) < 0)
        return fail(p, "bad_name", "%s: \"%s\" is not a valid name: %s",
                    field_text(f, buf, sizeof(buf)), name_text(v, text, sizeof(text)), why);
    return 0;
}

/* Present, well-formed, not before 1970 (no measurement is; and it keeps the
 * arithmetic on times from overflowing) and not in the future. How old it is
 * does not matter here: see kopt_batch_split_old. */
static int check_time(kopt_batch_problem_t *p, field_t fl, const Google__Protobuf__Timestamp *t,
                      const kopt_batch_limits_t *lim, int64_t now)
{
    char buf[64];
    const char *field;

    if (t && t->nanos >= 0 && t->nanos <= 999999999 && t->seconds >= 0 &&
        t->seconds <= now + lim->max_future_seconds)
        return 0;
    field = field_text(fl, buf, sizeof(buf));
    if (!t)
        return fail(p, "missing_field", "%s: missing", field);
    if (t->nanos < 0 || t->nanos > 999999999)
        return fail(p, "bad_time", "%s: nanos %d out of range", field, t->nanos);
    if (t->seconds < 0)
        return fail(p, "bad_time", "%s: %lld s is before 1970", field, (long long)t->seconds);
    if (t->seconds > now + lim->max_future_seconds)
        return fail(p, "bad_time", "%s: %lld s in the future (clock skew?)", field,
                    (long long)(t->seconds - now));
    return 0;
}

static int check_number(kopt_batch_problem_t *p, field_t f, double v, double max)
{
    char buf[64];

    if (!isfinite(v) || v < 0 || v > max)
        return fail(p, "bad_number", "%s: %g is not a finite number in [0, %g]",
                    field_text(f, buf, sizeof(buf)), v, max);
    return 0;
}

static int check_window(const Kopt__V1__ContainerWindow *w, size_t i,
                        const kopt_batch_limits_t *lim, int64_t now, kopt_batch_problem_t *p)
{
    int64_t len;

#define FIELD(name) ((field_t){"windows", i, (name)})
    if (check_name(p, FIELD("namespace"), w->namespace_, KOPT_NAME_LABEL) < 0 ||
        check_name(p, FIELD("pod"), w->pod, KOPT_NAME_SUBDOMAIN) < 0 ||
        check_name(p, FIELD("container"), w->container, KOPT_NAME_LABEL) < 0 ||
        check_name(p, FIELD("workload_name"), w->workload_name, KOPT_NAME_SUBDOMAIN) < 0)
        return -EINVAL;
    if (w->workload_kind <= KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_UNSPECIFIED ||
        w->workload_kind > KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_PROCESS_GROUP)
        return fail(p, "missing_field", "windows[%zu].workload_kind: unknown kind %d", i,
                    (int)w->workload_kind);
    if (check_time(p, FIELD("window_start"), w->window_start, lim, now) < 0 ||
        check_time(p, FIELD("window_end"), w->window_end, lim, now) < 0)
        return -EINVAL;
    len = w->window_end->seconds - w->window_start->seconds;
    if (len < 0 || (len == 0 && w->window_end->nanos <= w->window_start->nanos))
        return fail(p, "bad_time", "windows[%zu]: window_end is not after window_start", i);
    if (len > lim->max_window_seconds)
        return fail(p, "bad_time", "windows[%zu]: window of %lld s is longer than %lld s", i,
                    (long long)len, (long long)lim->max_window_seconds);
    if (check_number(p, FIELD("cpu_usage_mean_cores"), w->cpu_usage_mean_cores, MAX_CORES) < 0 ||
        check_number(p, FIELD("cpu_usage_peak_cores"), w->cpu_usage_peak_cores, MAX_CORES) < 0 ||
        check_number(p, FIELD("cpu_throttled_seconds"), w->cpu_throttled_seconds, 1e9) < 0 ||
        check_number(p, FIELD("cpu_request_cores"), w->cpu_request_cores, MAX_CORES) < 0 ||
        check_number(p, FIELD("cpu_limit_cores"), w->cpu_limit_cores, MAX_CORES) < 0)
        return -EINVAL;
    /* Peak below mean means the agent mixed units; allow rounding noise. */
    if (w->cpu_usage_peak_cores + 1e-6 < w->cpu_usage_mean_cores)
        return fail(p, "bad_number", "windows[%zu]: cpu_usage_peak_cores %g below mean %g", i,
                    w->cpu_usage_peak_cores, w->cpu_usage_mean_cores);
    if (w->memory_working_set_last_bytes > w->memory_working_set_peak_bytes)
        return fail(p, "bad_number", "windows[%zu]: memory_working_set_last_bytes above peak", i);
#undef FIELD
    return 0;
}

static int check_workload(const Kopt__V1__WorkloadFacts *wl, size_t i, kopt_batch_problem_t *p)
{
    if (check_name(p, (field_t){"workloads", i, "namespace"}, wl->namespace_, KOPT_NAME_LABEL) <
            0 ||
        check_name(p, (field_t){"workloads", i, "name"}, wl->name, KOPT_NAME_SUBDOMAIN) < 0)
        return -EINVAL;
    if (wl->hpa && wl->hpa->min_replicas > wl->hpa->max_replicas)
        return fail(p, "bad_number", "workloads[%zu].hpa: min_replicas above max_replicas", i);
    return 0;
}

static int check_node(const Kopt__V1__NodeFacts *n, kopt_batch_problem_t *p)
{
    if (!n)
        return 0; /* optional: the agent may not know yet */
    if (check_number(p, TOP("node_facts.cpu_capacity_cores"), n->cpu_capacity_cores, MAX_CORES) <
            0 ||
        check_number(p, TOP("node_facts.cpu_allocatable_cores"), n->cpu_allocatable_cores,
                     MAX_CORES) < 0)
        return -EINVAL;
    if (n->n_labels > 256)
        return fail(p, "too_many", "node_facts.labels: %zu labels, at most 256", n->n_labels);
    return 0;
}

int kopt_batch_validate(const Kopt__V1__MetricBatch *b, const kopt_batch_limits_t *lim, int64_t now,
                        kopt_batch_problem_t *p)
{
    if (check_name(p, TOP("cluster"), b->cluster, KOPT_NAME_SUBDOMAIN) < 0 ||
        check_name(p, TOP("node"), b->node, KOPT_NAME_SUBDOMAIN) < 0 ||
        check_name(p, TOP("agent_id"), b->agent_id, KOPT_NAME_AGENT_ID) < 0)
        return -EINVAL;
    if (b->epoch == 0)
        return fail(p, "missing_field", "epoch: must not be 0");
    if (b->seq == 0)
        return fail(p, "missing_field", "seq: must not be 0");
    if (check_time(p, TOP("created"), b->created, lim, now) < 0 || check_node(b->node_facts, p) < 0)
        return -EINVAL;
    if (b->n_windows > lim->max_windows)
        return fail(p, "too_many", "windows: %zu windows, at most %u", b->n_windows,
                    lim->max_windows);
    if (b->n_workloads > lim->max_workloads)
        return fail(p, "too_many", "workloads: %zu workloads, at most %u", b->n_workloads,
                    lim->max_workloads);
    for (size_t i = 0; i < b->n_windows; i++)
        if (check_window(b->windows[i], i, lim, now, p) < 0)
            return -EINVAL;
    for (size_t i = 0; i < b->n_workloads; i++)
        if (check_workload(b->workloads[i], i, p) < 0)
            return -EINVAL;
    return 0;
}

void kopt_batch_split_old(Kopt__V1__MetricBatch *b, const kopt_batch_limits_t *lim, int64_t now,
                          kopt_batch_split_t *split)
{
    /* Retention and the advisor's lookback both go by window_start. */
    int64_t oldest_ok = now - lim->max_age_seconds, oldest = now;
    size_t kept = 0;

    split->batch_too_old = b->created->seconds < oldest_ok;
    if (split->batch_too_old)
        oldest = b->created->seconds;
    for (size_t i = 0; i < b->n_windows; i++) {
        Kopt__V1__ContainerWindow *w = b->windows[i];
        int64_t start = w->window_start->seconds;

        if (start < oldest_ok || split->batch_too_old) {
            if (start < oldest_ok && start < oldest)
                oldest = start;
            continue;
        }
        /* Young: swap it to the front. Young windows keep their order; the
         * old ones behind them may not, which nothing relies on. */
        b->windows[i] = b->windows[kept];
        b->windows[kept++] = w;
    }
    split->kept = kept;
    split->too_old = b->n_windows - kept;
    /* Validated times are in [0, now + skew]: no overflow. */
    split->oldest_seconds = now - oldest;
    split->store_nothing = split->batch_too_old || (b->n_windows > 0 && kept == 0);
}
