/* JetStream -> ClickHouse: the control thread (set-up, lag, advisories,
 * rollups, retention) and the aggregator's lifecycle; the worker threads are
 * worker.c. consumer.h has the thread layout, docs/storage.md the promises. */
#include "consumer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include <kopt/backoff.h>
#include <kopt/log.h>
#include <kopt/url.h>
#include <kopt/util.h>

#include "consumer_internal.h"
#include "deadletter.h"
#include "rollup.h"
#include "schema.h"

#define TICK_MS 500
#define LAG_EVERY_MS 5000
#define RETENTION_EVERY_MS (24ULL * 3600 * 1000)
#define PROBE_EVERY_MS 1000 /* how soon /readyz sees ClickHouse go or come back */
#define PROBE_TIMEOUT_MS 2000

void agg_nap(struct agg *a, uint64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    if (!agg_stopping(a))
        pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    pthread_mutex_unlock(&a->mu);
}

static uint64_t now_ms(void)
{
    return kopt_now_ns() / MS;
}

/* ------------------------------------------------------------------------ */
/* Control thread                                                           */

static int migrate(struct agg *a, kopt_ch_client_t *ch)
{
    kopt_ch_error_t err = {0};
    unsigned applied = 0;
    int r = agg_schema_migrate(ch, NULL, &applied, &err);

    if (r == 0) {
        kopt_log_info("schema migrated", KOPT_UINT("applied", applied),
                      KOPT_STR("database", kopt_ch_database(ch)));
        atomic_store(&a->migrated, 1);
    } else {
        kopt_log_warn("migrations failed; retrying", KOPT_STR("clickhouse", kopt_ch_url(ch)),
                      KOPT_INT("code", err.code), KOPT_STR("detail", err.message), KOPT_ERR(r));
    }
    return r;
}

static int connect_nats(struct agg *a)
{
    natsOptions *no = NULL;
    char err[300];
    natsStatus s;

    if (kopt_nats_options_new(a->o.nats_url, "kopt-aggregator", a->o.nats_auth, &no, err,
                              sizeof(err)) < 0) {
        kopt_log_error("NATS settings refused; retrying",
                       KOPT_STR("url", KOPT_URL_REDACTED(a->o.nats_url)), KOPT_STR("reason", err));
        return -EINVAL;
    }
    s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 500);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, 5000);
    if (s == NATS_OK)
        s = natsConnection_Connect(&a->nc, no);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&a->js, a->nc, NULL);
    natsOptions_Destroy(no);
    if (s != NATS_OK) {
        kopt_log_warn(
            "cannot connect to NATS; retrying", KOPT_STR("url", KOPT_URL_REDACTED(a->o.nats_url)),
            KOPT_STR("status", natsStatus_GetText(s)), KOPT_STR("detail", nats_GetLastError(NULL)));
        natsConnection_Destroy(a->nc);
        a->nc = NULL;
        return -EIO;
    }
    atomic_store(&a->nats_ok, 1);
    kopt_log_info("connected to NATS", KOPT_STR("url", KOPT_URL_REDACTED(a->o.nats_url)));
    return 0;
}

/* Creates the durable, or updates it to the settings (fields JetStream
 * cannot change are kept and logged). */
static int ensure_consumer(struct agg *a)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    jsConsumerConfig_Init(&cc);
    cc.Durable = a->o.consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = (int64_t)(a->o.ack_wait_ms * MS);
    cc.MaxAckPending = a->o.max_ack_pending;
    cc.MaxDeliver = a->o.max_deliver;
    s = js_GetConsumerInfo(&ci, a->js, a->o.stream, a->o.consumer, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    if (s == NATS_OK) {
        s = js_UpdateConsumer(&ci, a->js, a->o.stream, &cc, NULL, &jerr);
        if (s != NATS_OK)
            kopt_log_warn("cannot update the consumer; using it as it is",
                          KOPT_STR("consumer", a->o.consumer),
                          KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
        s = NATS_OK;
    } else {
        s = js_AddConsumer(&ci, a->js, a->o.stream, &cc, NULL, &jerr);
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        kopt_log_warn("cannot create the consumer (is the stream there?); retrying",
                      KOPT_STR("stream", a->o.stream), KOPT_STR("consumer", a->o.consumer),
                      KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
        return -EIO;
    }
    atomic_store(&a->consumer_ok, 1);
    kopt_log_info("consuming", KOPT_STR("stream", a->o.stream), KOPT_STR("consumer", a->o.consumer),
                  KOPT_UINT("workers", a->o.workers));
    return 0;
}

static void poll_lag(struct agg *a)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;

    if (js_GetConsumerInfo(&ci, a->js, a->o.stream, a->o.consumer, NULL, &jerr) == NATS_OK) {
        kopt_metric_gauge_set(a->lag, (double)ci->NumPending);
        kopt_metric_gauge_set(a->ack_pending, (double)ci->NumAckPending);
        atomic_store(&a->consumer_ok, 1);
    } else if (jerr == 10014) { /* consumer not found: deleted under us */
        atomic_store(&a->consumer_ok, 0);
        ensure_consumer(a);
    }
    jsConsumerInfo_Destroy(ci);
    atomic_store(&a->nats_ok, natsConnection_Status(a->nc) == NATS_CONN_STATUS_CONNECTED);
}

/* Rolls up the hours touched since the last run plus the lateness window;
 * hours that failed go back into the set for the next run. Then the
 * watermark moves to the moment the hours were taken (every window stored
 * before it was in the set, as workers add their hours before inserting)
 * and rollup_state gets it with the hours stored since. */
static void rollup_pass(struct agg *a, kopt_ch_client_t *ch, const atomic_int *stop)
{
    agg_rollup_stats_t st = {a->rollups, a->rollup_errors, a->rollup_seconds};
    agg_hourset_t taken, failed, pending;
    kopt_ch_error_t err = {0};
    int64_t snapshot;
    int r;

    agg_hourset_init(&failed);
    agg_hourset_init(&pending);
    pthread_mutex_lock(&a->mu);
    taken = a->touched;
    agg_hourset_init(&a->touched);
    snapshot = (int64_t)time(NULL);
    pthread_mutex_unlock(&a->mu);
    agg_rollup_pass(ch, &taken, a->o.rollup_lateness_ms, snapshot, stop, &st, &failed);
    if (atomic_load(stop)) /* cut short: nothing is known done */
        agg_hourset_merge(&failed, &taken);
    else
        agg_rollup_state_update(&a->rstate, &taken, &failed, snapshot);
    pthread_mutex_lock(&a->mu);
    agg_hourset_merge(&a->touched, &failed);
    agg_hourset_merge(&pending, &a->touched);
    pthread_mutex_unlock(&a->mu);
    kopt_metric_gauge_set(a->rollup_pending, (double)pending.n);
    kopt_metric_gauge_set(a->rollup_lag,
                          (double)agg_rollup_state_lag(&a->rstate, (int64_t)time(NULL)));
    r = atomic_load(stop) ? 0 : agg_rollup_state_write(ch, &a->rstate, &pending, time(NULL), &err);
    if (r < 0)
        kopt_log_warn("rollup state not written; the advisor sees the previous one",
                      KOPT_INT("code", err.code), KOPT_STR("detail", err.message), KOPT_ERR(r));
    agg_hourset_free(&taken);
    agg_hourset_free(&failed);
    agg_hourset_free(&pending);
}

/* At SIGTERM, once the workers stored what they held: their hours are
 * rolled up now, as no other replica knows them. Skipped when ClickHouse
 * is away (the lateness window of the next pass anywhere catches recent
 * hours; older ones stay listed as pending in rollup_state). */
static void last_rollup_pass(struct agg *a, kopt_ch_client_t *ch)
{
    atomic_int never = 0;
    char why[256];

    if (!a->o.rollup_interval_ms || !atomic_load(&a->migrated))
        return;
    if (agg_ch_health_check(a->health, why, sizeof(why)) < 0) {
        kopt_log_warn("no last rollup pass: ClickHouse is away", KOPT_STR("reason", why));
        return;
    }
    rollup_pass(a, ch, &never);
}

static int start_workers(struct agg *a)
{
    for (uint32_t i = 0; i < a->o.workers; i++) {
        worker_t *w = &a->workers[i];
        kopt_ch_error_t err;

        if (kopt_ch_client_new(&a->o.ch, &w->ch, &err) < 0 ||
            pthread_create(&w->thread, NULL, agg_worker_main, w) != 0) {
            kopt_ch_client_free(w->ch);
            w->ch = NULL;
            kopt_log_error("cannot start a worker", KOPT_STR("detail", err.message));
            return -ENOMEM;
        }
        a->n_workers = i + 1;
    }
    return 0;
}

/* Max-deliver advisories are plain NATS messages, sent when a fetch finds a
 * message past MaxDeliver: the subscription must exist before the first
 * fetch, or an advisory sent meanwhile is lost. A queue group: one replica
 * handles each advisory. */
static natsSubscription *watch_advisories(struct agg *a)
{
    char subject[512];
    natsSubscription *adv = NULL;

    snprintf(subject, sizeof(subject), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s",
             a->o.stream, a->o.consumer);
    if (natsConnection_QueueSubscribeSync(&adv, a->nc, subject, a->o.consumer) != NATS_OK ||
        natsConnection_Flush(a->nc) != NATS_OK)
        kopt_log_warn("cannot watch max-deliver advisories", KOPT_STR("subject", subject));
    return adv;
}

/* The advisory is not sent again: a failed dead letter is tried a few
 * times before the message is given up (and logged). */
static void on_advisory(struct agg *a, natsMsg *m)
{
    int r = -EIO;

    for (int attempt = 0; attempt < 5 && r == -EIO && !agg_stopping(a); attempt++) {
        if (attempt)
            agg_nap(a, 500ULL << attempt);
        r = agg_deadletter_advisory(a->nc, a->js, a->o.deadletter_prefix, a->o.stream,
                                    natsMsg_GetData(m), natsMsg_GetDataLength(m));
    }
    if (r == 0)
        kopt_metric_counter_inc(kopt_metric_counter_with(a->f_dead, AGG_DL_MAX_DELIVER));
    else
        kopt_log_error("a message past max-deliver could not be dead-lettered; it stays in the "
                       "stream, skipped by the consumer",
                       KOPT_INT("advisory_bytes", natsMsg_GetDataLength(m)), KOPT_ERR(r));
}

static void control_loop(struct agg *a, kopt_ch_client_t *ch, natsSubscription *adv)
{
    uint64_t next_lag = 0, next_rollup = now_ms() + a->o.rollup_interval_ms, next_retention = 0;

    while (!agg_stopping(a)) {
        natsMsg *m = NULL;
        uint64_t now;

        if (adv && natsSubscription_NextMsg(&m, adv, TICK_MS) == NATS_OK) {
            on_advisory(a, m);
            natsMsg_Destroy(m);
        } else if (!adv) {
            agg_nap(a, TICK_MS);
        }
        now = now_ms();
        if (now >= next_lag) {
            poll_lag(a);
            next_lag = now + LAG_EVERY_MS;
        }
        if (a->o.rollup_interval_ms && now >= next_rollup) {
            rollup_pass(a, ch, &a->stop);
            next_rollup = now_ms() + a->o.rollup_interval_ms;
        }
        kopt_metric_gauge_set(a->rollup_lag,
                              (double)agg_rollup_state_lag(&a->rstate, (int64_t)time(NULL)));
        if (now >= next_retention) {
            kopt_metric_counter_add(
                a->dropped_partitions,
                agg_rollup_retention(ch, a->o.retention_days, a->o.hourly_retention_days,
                                     a->o.retention_gate, a->o.retention_gate_ctx));
            next_retention = now + RETENTION_EVERY_MS;
        }
    }
}

static void *control_main(void *arg)
{
    struct agg *a = arg;
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t err;
    kopt_backoff_t b;

    kopt_backoff_init(&b, 250, 5000, kopt_now_ns());
    if (kopt_ch_client_new(&a->o.ch, &ch, &err) < 0) {
        kopt_log_error("cannot make a ClickHouse client", KOPT_STR("detail", err.message));
        return NULL;
    }
    while (!agg_stopping(a) && migrate(a, ch) < 0)
        agg_nap(a, kopt_backoff_next(&b));
    kopt_backoff_reset(&b);
    while (!agg_stopping(a) && connect_nats(a) < 0)
        agg_nap(a, kopt_backoff_next(&b));
    kopt_backoff_reset(&b);
    while (!agg_stopping(a) && ensure_consumer(a) < 0)
        agg_nap(a, kopt_backoff_next(&b));
    if (!agg_stopping(a)) {
        natsSubscription *adv;

        agg_deadletter_ensure_stream(a->js, a->o.deadletter_prefix);
        adv = watch_advisories(a);
        if (start_workers(a) == 0)
            control_loop(a, ch, adv);
        natsSubscription_Destroy(adv);
    }
    /* Workers finish their inserts and acks; then the acks are flushed. */
    for (uint32_t i = 0; i < a->n_workers; i++)
        pthread_join(a->workers[i].thread, NULL);
    last_rollup_pass(a, ch);
    if (a->nc) {
        natsConnection_FlushTimeout(a->nc, 2000);
        natsConnection_Close(a->nc);
    }
    kopt_ch_client_free(ch);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Public                                                                   */

static int register_metrics(struct agg *a, kopt_metrics_t *m)
{
    kopt_metric_family_t *f;
    size_t nb;
    const double *lat = kopt_metrics_latency_buckets(&nb);
    int r = 0;

#define COUNTER(field, name, help)                                                                 \
    if (r == 0 && (r = kopt_metrics_counter(m, name, help, NULL, &f)) == 0)                        \
    a->field = kopt_metric_counter_with(f)
#define GAUGE(field, name, help)                                                                   \
    if (r == 0 && (r = kopt_metrics_gauge(m, name, help, NULL, &f)) == 0)                          \
    a->field = kopt_metric_gauge_with(f)
#define HIST(field, name, help)                                                                    \
    if (r == 0 && (r = kopt_metrics_histogram(m, name, help, NULL, lat, nb, &f)) == 0)             \
    a->field = kopt_metric_histogram_with(f)

    COUNTER(consumed, "kopt_aggregator_consumed_total",
            "JetStream messages handled for good: stored and acked, or dead-lettered");
    COUNTER(inserted_rows, "kopt_aggregator_inserted_rows_total",
            "container_windows rows ClickHouse accepted (re-inserts included)");
    COUNTER(inserts, "kopt_aggregator_inserts_total", "successful RowBinary inserts");
    COUNTER(redeliveries, "kopt_aggregator_redeliveries_total",
            "messages delivered more than once (NumDelivered > 1)");
    COUNTER(rollups, "kopt_aggregator_rollups_total", "hours rolled up into container_hourly");
    GAUGE(rollup_lag, "kopt_aggregator_rollup_lag_seconds",
          "seconds since the oldest rollup watermark: windows stored since may not be in "
          "container_hourly yet");
    GAUGE(rollup_pending, "kopt_aggregator_rollup_pending_hours",
          "(cluster, hour) pairs with stored windows not rolled up yet, after the last pass");
    COUNTER(rollup_errors, "kopt_aggregator_rollup_errors_total", "rollups that failed");
    COUNTER(dropped_partitions, "kopt_aggregator_retention_dropped_partitions_total",
            "partitions dropped by the retention janitor");
    GAUGE(lag, "kopt_aggregator_consumer_lag_messages",
          "messages in the stream not yet delivered to the consumer");
    GAUGE(ack_pending, "kopt_aggregator_consumer_ack_pending_messages",
          "messages delivered and not yet acked");
    HIST(insert_seconds, "kopt_aggregator_insert_duration_seconds",
         "time of one ClickHouse insert");
    HIST(rollup_seconds, "kopt_aggregator_rollup_duration_seconds",
         "time of one rollup statement (the touched hours of one cluster and UTC day)");
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_aggregator_insert_errors_total",
                                 "failed inserts by error class and ClickHouse code", "class,code",
                                 &a->f_errors);
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_aggregator_dead_letters_total",
                                 "messages sent to the dead-letter subject, by reason", "reason",
                                 &a->f_dead);
#undef COUNTER
#undef GAUGE
#undef HIST
    return r;
}

int agg_new(const agg_options_t *o, kopt_metrics_t *m, agg_t **out)
{
    struct agg *a = calloc(1, sizeof(*a));
    kopt_ch_client_t *probe = NULL;
    kopt_ch_error_t err = {0};
    int r;

    *out = NULL;
    if (!a)
        return -ENOMEM;
    a->o = *o;
    if (a->o.workers == 0)
        a->o.workers = 1;
    if (a->o.fetch_batch == 0)
        a->o.fetch_batch = 1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    agg_hourset_init(&a->touched);
    agg_rollup_state_init(&a->rstate, NULL, (uint32_t)((a->o.rollup_interval_ms + 999) / 1000),
                          (int64_t)time(NULL));
    a->workers = calloc(a->o.workers, sizeof(*a->workers));
    r = a->workers ? register_metrics(a, m) : -ENOMEM;
    for (uint32_t i = 0; r == 0 && i < a->o.workers; i++) {
        worker_t *w = &a->workers[i];

        w->a = a;
        w->idx = (int)i;
        kopt_backoff_init(&w->backoff, 200, 5000, kopt_now_ns() + i);
        w->msgs = calloc(a->o.fetch_batch, sizeof(*w->msgs));
        w->off = calloc(a->o.fetch_batch + 1, sizeof(*w->off));
        w->rows = calloc(a->o.fetch_batch, sizeof(*w->rows));
        w->state = calloc(a->o.fetch_batch, sizeof(*w->state));
        if (!w->msgs || !w->off || !w->rows || !w->state)
            r = -ENOMEM;
    }
    /* Fail now on options no retry can fix (URL, password file). */
    if (r == 0 && (r = kopt_ch_client_new(&a->o.ch, &probe, &err)) < 0)
        kopt_log_error("bad ClickHouse settings", KOPT_STR("detail", err.message), KOPT_ERR(r));
    kopt_ch_client_free(probe);
    if (r == 0)
        r = agg_ch_health_new(&a->o.ch, a->o.workers, PROBE_EVERY_MS, PROBE_TIMEOUT_MS, m,
                              &a->health);
    if (r < 0) {
        agg_free(a);
        return r;
    }
    *out = a;
    return 0;
}

int agg_start(agg_t *a)
{
    if (agg_ch_health_start(a->health) < 0)
        return -EAGAIN;
    a->control_started = pthread_create(&a->control, NULL, control_main, a) == 0;
    return a->control_started ? 0 : -EAGAIN;
}

void agg_stop(agg_t *a)
{
    pthread_mutex_lock(&a->mu);
    atomic_store(&a->stop, 1);
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mu);
    if (a->control_started) {
        pthread_join(a->control, NULL);
        a->control_started = false;
    }
    if (a->health)
        agg_ch_health_stop(a->health);
}

void agg_free(agg_t *a)
{
    if (!a)
        return;
    agg_stop(a); /* joins every thread: nothing below is shared any more */
    for (uint32_t i = 0; a->workers && i < a->o.workers; i++) {
        worker_t *w = &a->workers[i];

        kopt_ch_client_free(w->ch);
        free(w->msgs);
        free(w->off);
        free(w->rows);
        free(w->state);
        kopt_ch_buf_free(&w->buf);
        kopt_ch_buf_free(&w->scratch);
        agg_hourset_free(&w->hours);
        agg_facts_free(&w->facts);
    }
    free(a->workers);
    agg_ch_health_free(a->health);
    jsCtx_Destroy(a->js);
    natsConnection_Destroy(a->nc);
    agg_hourset_free(&a->touched);
    agg_rollup_state_free(&a->rstate);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int agg_ready(const agg_t *a, char *reason, size_t len)
{
    struct agg *m = (struct agg *)a; /* atomic_load wants non-const in C17 */

    /* ClickHouse first: its reason (refused, TLS, auth) also explains why
     * the migrations are not done. */
    if (agg_ch_health_check(m->health, reason, len) < 0)
        return -EAGAIN;
    if (!atomic_load(&m->migrated))
        snprintf(reason, len, "ClickHouse migrations not done yet");
    else if (!atomic_load(&m->nats_ok))
        snprintf(reason, len, "not connected to NATS at %s", KOPT_URL_REDACTED(a->o.nats_url));
    else if (!atomic_load(&m->consumer_ok))
        snprintf(reason, len, "consumer %s on stream %s not set up", a->o.consumer, a->o.stream);
    else
        return 0;
    return -EAGAIN;
}
