/* ClickHouse health for /readyz; see health.h. Slot 0 is the probe, slot
 * i + 1 worker i. One mutex guards the slots: reports come once per insert
 * and reads once per /readyz, so it is never contended in earnest. */
#include "health.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>

typedef struct {
    bool failing;
    char why[320];
} slot_t;

struct agg_ch_health {
    kopt_ch_client_t *probe; /* used by the probe thread only */
    uint32_t every_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;     /* under mu */
    bool answered; /* under mu: the probe has an answer, good or bad */
    unsigned n_slots;
    slot_t *slots; /* under mu */
    kopt_metric_gauge_t *up;
    kopt_metric_family_t *f_failures;
};

/* A bounded label for a failed call. */
static const char *error_kind(const kopt_ch_error_t *err)
{
    switch (err->r) {
    case -EPROTO:
        return "tls";
    case -ECONNREFUSED:
        return "refused";
    case -ECONNRESET:
        return "reset";
    case -ETIMEDOUT:
        return "timeout";
    case -EHOSTUNREACH:
        return "unreachable";
    case -EACCES:
        return "auth";
    case -EREMOTEIO:
        return "server";
    default:
        return "other";
    }
}

static void describe(char *out, size_t len, const char *what, const char *url,
                     const kopt_ch_error_t *err)
{
    if (err->code)
        snprintf(out, len, "%s %s: ClickHouse code %d (HTTP %ld): %s", what, url, err->code,
                 err->http_status, err->message);
    else
        snprintf(out, len, "%s %s: %s (%s)", what, url, err->message, error_kind(err));
}

static bool any_failing(const agg_ch_health_t *h)
{
    for (unsigned i = 0; i < h->n_slots; i++)
        if (h->slots[i].failing)
            return true;
    return false;
}

static void probe_once(agg_ch_health_t *h)
{
    kopt_ch_error_t err = {0};
    int r = kopt_ch_query_flags(h->probe, "SELECT 1", KOPT_CH_NO_DATABASE, NULL, NULL, &err);
    slot_t *s = &h->slots[0];
    bool was_failing, was_answered;

    if (r < 0)
        kopt_metric_counter_inc(kopt_metric_counter_with(h->f_failures, error_kind(&err)));
    pthread_mutex_lock(&h->mu);
    was_failing = s->failing;
    was_answered = h->answered;
    h->answered = true;
    s->failing = r < 0;
    if (r < 0)
        describe(s->why, sizeof(s->why), "no answer from", kopt_ch_url(h->probe), &err);
    kopt_metric_gauge_set(h->up, any_failing(h) ? 0 : 1);
    pthread_mutex_unlock(&h->mu);
    /* Log changes only: one line when it goes away, one when it is back. */
    if (r < 0 && (!was_failing || !was_answered))
        kopt_log_warn("ClickHouse not answering; /readyz reports 503 until it does",
                      KOPT_STR("clickhouse", kopt_ch_url(h->probe)),
                      KOPT_STR("kind", error_kind(&err)), KOPT_INT("code", err.code),
                      KOPT_STR("detail", err.message), KOPT_ERR(r));
    else if (r == 0 && was_failing)
        kopt_log_info("ClickHouse answers again", KOPT_STR("clickhouse", kopt_ch_url(h->probe)));
}

static void *probe_main(void *arg)
{
    agg_ch_health_t *h = arg;

    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;

        pthread_mutex_unlock(&h->mu);
        probe_once(h);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(h->every_ms / 1000);
        ts.tv_nsec += (long)(h->every_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&h->mu);
        if (!h->stop)
            pthread_cond_timedwait(&h->cond, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int agg_ch_health_new(const kopt_ch_options_t *ch, unsigned workers, uint32_t every_ms,
                      uint32_t timeout_ms, kopt_metrics_t *m, agg_ch_health_t **out)
{
    agg_ch_health_t *h = calloc(1, sizeof(*h));
    kopt_ch_options_t o = *ch;
    kopt_metric_family_t *f = NULL;
    kopt_ch_error_t err = {0};
    int r;

    *out = NULL;
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->every_ms = every_ms ? every_ms : 1000;
    h->n_slots = workers + 1;
    h->slots = calloc(h->n_slots, sizeof(*h->slots));
    r = h->slots ? 0 : -ENOMEM;
    if (r == 0)
        r = kopt_metrics_gauge(m, "kopt_aggregator_clickhouse_up",
                               "1 when ClickHouse answers the probe and no insert is being "
                               "retried, else 0 (what /readyz reports)",
                               NULL, &f);
    if (r == 0) {
        h->up = kopt_metric_gauge_with(f);
        r = kopt_metrics_counter(m, "kopt_aggregator_clickhouse_probe_failures_total",
                                 "failed ClickHouse health probes (SELECT 1), by kind of error",
                                 "error", &h->f_failures);
    }
    /* A probe must not hang the answer: short timeouts whatever the
     * inserts use. */
    o.connect_timeout_ms = timeout_ms;
    o.timeout_ms = timeout_ms;
    o.compress = false;
    if (r == 0 && (r = kopt_ch_client_new(&o, &h->probe, &err)) < 0)
        kopt_log_error("bad ClickHouse settings", KOPT_STR("detail", err.message), KOPT_ERR(r));
    if (r < 0) {
        agg_ch_health_free(h);
        return r;
    }
    *out = h;
    return 0;
}

int agg_ch_health_start(agg_ch_health_t *h)
{
    h->started = pthread_create(&h->thread, NULL, probe_main, h) == 0;
    return h->started ? 0 : -EAGAIN;
}

void agg_ch_health_stop(agg_ch_health_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    if (h->started) {
        pthread_join(h->thread, NULL);
        h->started = false;
    }
}

void agg_ch_health_free(agg_ch_health_t *h)
{
    if (!h)
        return;
    agg_ch_health_stop(h);
    kopt_ch_client_free(h->probe);
    free(h->slots);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void agg_ch_health_report(agg_ch_health_t *h, unsigned worker, const kopt_ch_error_t *err)
{
    slot_t *s;

    if (worker + 1 >= h->n_slots)
        return;
    s = &h->slots[worker + 1];
    pthread_mutex_lock(&h->mu);
    s->failing = err != NULL;
    if (err) {
        char what[32];

        snprintf(what, sizeof(what), "worker %u: inserts into", worker);
        describe(s->why, sizeof(s->why), what, kopt_ch_url(h->probe), err);
    }
    kopt_metric_gauge_set(h->up, any_failing(h) || !h->answered ? 0 : 1);
    pthread_mutex_unlock(&h->mu);
}

int agg_ch_health_check(agg_ch_health_t *h, char *reason, size_t len)
{
    int r = 0;

    pthread_mutex_lock(&h->mu);
    if (!h->answered) {
        snprintf(reason, len, "no answer from %s yet", kopt_ch_url(h->probe));
        r = -EAGAIN;
    }
    for (unsigned i = 0; r == 0 && i < h->n_slots; i++)
        if (h->slots[i].failing) {
            snprintf(reason, len, "%s", h->slots[i].why);
            r = -EAGAIN;
        }
    pthread_mutex_unlock(&h->mu);
    return r;
}
