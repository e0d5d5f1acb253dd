/* JetStream -> ClickHouse: the worker threads (fetch, decode, insert, ack)
 * and the control thread (set-up, lag, advisories, rollups, retention); see
 * consumer.h for the thread layout and docs/storage.md for the promises. */
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
#include <kopt/util.h>

#include "deadletter.h"
#include "facts.h"
#include "health.h"
#include "kopt/v1/metrics.pb-c.h"
#include "rollup.h"
#include "rowbinary.h"
#include "schema.h"

#define MS 1000000ULL /* ns */
#define TICK_MS 500
#define LAG_EVERY_MS 5000
#define RETENTION_EVERY_MS (24ULL * 3600 * 1000)
#define PROBE_EVERY_MS 1000 /* how soon /readyz sees ClickHouse go or come back */
#define PROBE_TIMEOUT_MS 2000

typedef enum { MSG_PENDING = 0, MSG_STORED, MSG_DEAD } msg_state_t;

typedef struct worker {
    struct kopt_agg *a;
    int idx;
    pthread_t thread;
    kopt_ch_client_t *ch;
    natsSubscription *sub;
    kopt_backoff_t backoff;
    /* What the worker holds: n messages, their rows in buf from off[i] to
     * off[i + 1], not acked yet. */
    natsMsg **msgs;
    size_t *off, *rows;
    msg_state_t *state;
    size_t n, total_rows;
    uint64_t first_ns, progress_ns;
    kopt_rowbinary_buf_t buf, scratch;
    kopt_hourset_t hours;
    kopt_facts_t facts; /* newest per workload and node, inserted after the windows */
} worker_t;

struct kopt_agg {
    kopt_agg_options_t o;
    atomic_int stop;
    atomic_int migrated, nats_ok, consumer_ok;
    kopt_ch_health_t *health; /* ClickHouse's state for /readyz */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    kopt_hourset_t touched; /* under mu */
    pthread_t control;
    bool control_started;
    natsConnection *nc;
    jsCtx *js;
    worker_t *workers;
    uint32_t n_workers;
    kopt_metric_family_t *f_errors, *f_dead;
    kopt_metric_counter_t *consumed, *inserted_rows, *inserts, *redeliveries, *rollups,
        *rollup_errors, *dropped_partitions;
    kopt_metric_histogram_t *insert_seconds, *rollup_seconds;
    kopt_metric_gauge_t *lag, *ack_pending, *held;
};

static bool stopping(struct kopt_agg *a)
{
    return atomic_load(&a->stop) != 0;
}

/* Sleeps up to ms, waking at once on stop. */
static void nap(struct kopt_agg *a, uint64_t ms)
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
    if (!stopping(a))
        pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    pthread_mutex_unlock(&a->mu);
}

static uint64_t now_ms(void)
{
    return kopt_now_ns() / MS;
}

/* ------------------------------------------------------------------------ */
/* Worker: taking messages in                                               */

static void dead_letter(worker_t *w, natsMsg *m, const char *reason, const char *error)
{
    struct kopt_agg *a = w->a;

    if (kopt_deadletter_msg(a->nc, a->js, a->o.deadletter_prefix, reason, error, m) < 0)
        return; /* not acked: it comes back after AckWait and is tried again */
    natsMsg_Ack(m, NULL);
    kopt_metric_counter_inc(kopt_metric_counter_with(a->f_dead, reason));
    kopt_metric_counter_inc(a->consumed);
}

/* Decodes one fetched message and appends its rows; takes ownership. */
static void accept_msg(worker_t *w, natsMsg *m)
{
    struct kopt_agg *a = w->a;
    jsMsgMetaData *meta = NULL;
    Kopt__V1__MetricBatch *mb;
    size_t before = w->buf.len, rows = 0;
    int r;

    if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta->NumDelivered > 1)
        kopt_metric_counter_inc(a->redeliveries);
    jsMsgMetaData_Destroy(meta);
    mb = kopt__v1__metric_batch__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                        (const uint8_t *)natsMsg_GetData(m));
    if (!mb) {
        dead_letter(w, m, KOPT_DL_DECODE, "payload is not a protobuf kopt.v1.MetricBatch");
        natsMsg_Destroy(m);
        return;
    }
    r = kopt_rowbinary_metric_batch(&w->buf, mb, (uint32_t)time(NULL), &rows);
    if (r == -EINVAL) {
        dead_letter(w, m, KOPT_DL_INVALID, "a window has no start/end or one outside DateTime");
    } else if (r < 0) {
        kopt_log_error("cannot encode a batch; it comes back", KOPT_ERR(r));
        natsMsg_Nak(m, NULL);
    } else {
        if (w->n == 0)
            w->first_ns = w->progress_ns = kopt_now_ns();
        w->msgs[w->n] = m;
        w->off[w->n] = before;
        w->rows[w->n] = rows;
        w->state[w->n] = MSG_PENDING;
        w->n++;
        w->total_rows += rows;
        for (size_t i = 0; i < mb->n_windows; i++)
            if (mb->windows[i]->window_start)
                kopt_hourset_add(&w->hours, mb->cluster, mb->windows[i]->window_start->seconds);
        if (kopt_facts_add_batch(&w->facts, mb) < 0)
            kopt_log_warn("out of memory keeping workload facts; this round goes without",
                          KOPT_INT("worker", w->idx));
        m = NULL;
    }
    natsMsg_Destroy(m);
    kopt__v1__metric_batch__free_unpacked(mb, NULL);
}

static int subscribe(worker_t *w)
{
    struct kopt_agg *a = w->a;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    jsSubOptions_Init(&so);
    so.Stream = a->o.stream;
    so.Consumer = a->o.consumer; /* bind: the control thread made it */
    so.ManualAck = true;
    s = js_PullSubscribe(&w->sub, a->js, NULL, a->o.consumer, NULL, &so, &jerr);
    if (s != NATS_OK) {
        w->sub = NULL;
        kopt_log_warn("cannot bind to the consumer; retrying", KOPT_INT("worker", w->idx),
                      KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
        return -EIO;
    }
    return 0;
}

static void fetch(worker_t *w)
{
    struct kopt_agg *a = w->a;
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    int64_t timeout = (int64_t)a->o.fetch_timeout_ms;
    natsStatus s;

    if (w->n > 0) {
        uint64_t due = w->first_ns + a->o.insert_max_delay_ms * MS, now = kopt_now_ns();
        int64_t left = now >= due ? 0 : (int64_t)((due - now) / MS);

        if (left < timeout)
            timeout = left;
    }
    if (timeout < 5)
        timeout = 5;
    s = natsSubscription_Fetch(&list, w->sub, (int)(a->o.fetch_batch - w->n), timeout, &jerr);
    for (int i = 0; i < list.Count; i++) {
        accept_msg(w, list.Msgs[i]);
        list.Msgs[i] = NULL;
    }
    natsMsgList_Destroy(&list);
    if (s == NATS_OK || s == NATS_TIMEOUT)
        return;
    kopt_log_warn("fetch failed; retrying", KOPT_INT("worker", w->idx),
                  KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
    if (s == NATS_INVALID_SUBSCRIPTION || s == NATS_CONNECTION_CLOSED || s == NATS_NOT_FOUND) {
        natsSubscription_Destroy(w->sub);
        w->sub = NULL;
    }
    nap(a, kopt_backoff_next(&w->backoff));
}

/* ------------------------------------------------------------------------ */
/* Worker: inserting and acking                                             */

static void count_error(worker_t *w, const kopt_ch_error_t *err)
{
    char code[16];

    snprintf(code, sizeof(code), "%d", err->code);
    kopt_metric_counter_inc(
        kopt_metric_counter_with(w->a->f_errors, kopt_ch_class_name(err->cls), code));
}

/* One insert of the rows of the not-dead messages in [lo, hi). */
static int insert_range(worker_t *w, size_t lo, size_t hi, kopt_ch_error_t *err)
{
    struct kopt_agg *a = w->a;
    const uint8_t *data = w->buf.data + w->off[lo];
    size_t len = w->off[hi] - w->off[lo], rows = 0;
    bool contiguous = true;
    uint64_t t0;
    int r;

    /* Only pending messages: after a halving, a half already stored must
     * not be inserted again when the other half is retried. */
    for (size_t i = lo; i < hi; i++) {
        if (w->state[i] != MSG_PENDING)
            contiguous = false;
        else
            rows += w->rows[i];
    }
    if (rows == 0)
        return 0;
    if (!contiguous) {
        w->scratch.len = 0;
        for (size_t i = lo; i < hi; i++) {
            size_t n = w->off[i + 1] - w->off[i];

            if (w->state[i] != MSG_PENDING || n == 0)
                continue;
            if (w->scratch.len + n > w->scratch.cap) {
                size_t cap = 2 * (w->scratch.len + n);
                uint8_t *p = realloc(w->scratch.data, cap);

                if (!p)
                    return -ENOMEM;
                w->scratch.data = p;
                w->scratch.cap = cap;
            }
            memcpy(w->scratch.data + w->scratch.len, w->buf.data + w->off[i], n);
            w->scratch.len += n;
        }
        data = w->scratch.data;
        len = w->scratch.len;
    }
    t0 = kopt_now_ns();
    r = kopt_ch_insert(w->ch, "container_windows", KOPT_ROWBINARY_WINDOW_COLUMNS, "RowBinary", data,
                       len, err);
    kopt_metric_histogram_observe(a->insert_seconds, (double)(kopt_now_ns() - t0) / 1e9);
    if (r == 0) {
        kopt_metric_counter_inc(a->inserts);
        kopt_metric_counter_add(a->inserted_rows, (double)rows);
        return 0;
    }
    count_error(w, err);
    return r;
}

/* Stores [lo, hi): on a permanent error that blames the rows, halves the
 * range until the message ClickHouse refuses is alone, and dead-letters it.
 * A permanent error of the statement itself (unknown table, ...) would hit
 * every message alike, so it is retried like a retryable one instead of
 * dead-lettering the whole stream. 0 when every message is stored or dead;
 * a negative errno for a failure to retry, described in *last. */
static int store_range(worker_t *w, size_t lo, size_t hi, kopt_ch_error_t *last)
{
    kopt_ch_error_t err = {0};
    size_t mid;
    int r = insert_range(w, lo, hi, &err);

    if (r == 0) {
        for (size_t i = lo; i < hi; i++)
            if (w->state[i] == MSG_PENDING)
                w->state[i] = MSG_STORED;
        return 0;
    }
    if (r == -ENOMEM || !kopt_ch_blames_rows(&err)) {
        *last = err;
        return r;
    }
    if (hi - lo == 1) {
        char text[320];

        snprintf(text, sizeof(text), "ClickHouse code %d (HTTP %ld): %s", err.code, err.http_status,
                 err.message);
        if (kopt_deadletter_msg(w->a->nc, w->a->js, w->a->o.deadletter_prefix, KOPT_DL_CLICKHOUSE,
                                text, w->msgs[lo]) < 0) {
            *last = (kopt_ch_error_t){.r = -EIO, .cls = KOPT_CH_RETRYABLE};
            snprintf(last->message, sizeof(last->message), "dead letter not published");
            return -EIO;
        }
        natsMsg_Ack(w->msgs[lo], NULL);
        kopt_metric_counter_inc(kopt_metric_counter_with(w->a->f_dead, KOPT_DL_CLICKHOUSE));
        kopt_metric_counter_inc(w->a->consumed);
        w->state[lo] = MSG_DEAD;
        return 0;
    }
    mid = lo + (hi - lo) / 2;
    r = store_range(w, lo, mid, last);
    return r < 0 ? r : store_range(w, mid, hi, last);
}

/* While retrying, tells JetStream the held messages are still being worked
 * on (+WPI resets their AckWait), so they are not handed to another worker. */
static void keep_alive(worker_t *w)
{
    uint64_t every = w->a->o.ack_wait_ms * MS / 3;

    if (kopt_now_ns() - w->progress_ns < every)
        return;
    for (size_t i = 0; i < w->n; i++)
        if (w->state[i] == MSG_PENDING)
            natsMsg_InProgress(w->msgs[i], NULL);
    w->progress_ns = kopt_now_ns();
}

/* Facts are best effort: every batch repeats them, so a failed insert
 * costs one round of freshness, while holding the windows' acks for it
 * would stall the stream. The failure is logged and counted. */
static void store_facts(worker_t *w)
{
    kopt_ch_error_t err = {0};
    int r;

    if (kopt_facts_count(&w->facts) == 0)
        return;
    r = kopt_facts_insert(&w->facts, w->ch, &err);
    if (r == 0)
        return;
    count_error(w, &err);
    kopt_log_warn("workload/node facts not stored this round", KOPT_INT("worker", w->idx),
                  KOPT_INT("code", err.code), KOPT_STR("message", err.message), KOPT_ERR(r));
}

static void flush(worker_t *w)
{
    struct kopt_agg *a = w->a;
    kopt_ch_error_t err = {0};
    size_t acked = 0;
    int r;

    w->off[w->n] = w->buf.len;
    while ((r = store_range(w, 0, w->n, &err)) < 0) {
        uint64_t wait = kopt_backoff_next(&w->backoff), slice = a->o.ack_wait_ms / 3;

        /* Until an insert works again, /readyz says why not. */
        kopt_ch_health_report(a->health, (unsigned)w->idx, &err);
        if (stopping(a)) {
            kopt_log_warn("stopping with an insert that failed; handing the messages back",
                          KOPT_INT("worker", w->idx), KOPT_UINT("messages", w->n), KOPT_ERR(r));
            /* A half stored by a halving is acked; the rest comes back. */
            for (size_t i = 0; i < w->n; i++)
                if (w->state[i] == MSG_STORED)
                    natsMsg_Ack(w->msgs[i], NULL);
                else if (w->state[i] == MSG_PENDING)
                    natsMsg_Nak(w->msgs[i], NULL);
            goto out;
        }
        kopt_log_warn("insert failed; retrying the same rows, not acking",
                      KOPT_INT("worker", w->idx), KOPT_UINT("rows", w->total_rows),
                      KOPT_UINT("retry_ms", wait), KOPT_INT("code", err.code),
                      KOPT_STR("class", kopt_ch_class_name(err.cls)),
                      KOPT_STR("detail", err.message), KOPT_ERR(r));
        while (wait > 0 && !stopping(a)) {
            uint64_t step = wait < slice || slice == 0 ? wait : slice;

            keep_alive(w);
            nap(a, step);
            wait -= step;
        }
        keep_alive(w);
    }
    kopt_backoff_reset(&w->backoff);
    store_facts(w);
    for (size_t i = 0; i < w->n; i++)
        if (w->state[i] == MSG_STORED) {
            natsMsg_Ack(w->msgs[i], NULL);
            acked++;
        }
    kopt_metric_counter_add(a->consumed, (double)acked);
    pthread_mutex_lock(&a->mu);
    kopt_hourset_merge(&a->touched, &w->hours);
    pthread_mutex_unlock(&a->mu);
out:
    kopt_ch_health_report(a->health, (unsigned)w->idx, NULL); /* stored, or handed back */
    for (size_t i = 0; i < w->n; i++)
        natsMsg_Destroy(w->msgs[i]);
    w->n = 0;
    w->total_rows = 0;
    w->buf.len = 0;
    kopt_hourset_clear(&w->hours);
    kopt_facts_clear(&w->facts);
}

static bool due(worker_t *w)
{
    struct kopt_agg *a = w->a;

    return w->n > 0 &&
           (w->n >= a->o.fetch_batch || w->total_rows >= a->o.insert_max_rows ||
            kopt_now_ns() >= w->first_ns + a->o.insert_max_delay_ms * MS || stopping(a));
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;

    while (!stopping(w->a)) {
        if (!w->sub && subscribe(w) < 0) {
            nap(w->a, kopt_backoff_next(&w->backoff));
            continue;
        }
        fetch(w);
        if (due(w))
            flush(w);
    }
    if (w->n > 0)
        flush(w);
    natsSubscription_Destroy(w->sub); /* keeps the durable */
    w->sub = NULL;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Control thread                                                           */

static int migrate(struct kopt_agg *a, kopt_ch_client_t *ch)
{
    kopt_ch_error_t err = {0};
    unsigned applied = 0;
    int r = kopt_schema_migrate(ch, NULL, &applied, &err);

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

static int connect_nats(struct kopt_agg *a)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);

    if (s == NATS_OK)
        s = natsOptions_SetURL(no, a->o.nats_url);
    if (s == NATS_OK)
        s = natsOptions_SetName(no, "kopt-aggregator");
    if (s == NATS_OK)
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
        kopt_log_warn("cannot connect to NATS; retrying", KOPT_STR("url", a->o.nats_url),
                      KOPT_STR("status", natsStatus_GetText(s)));
        natsConnection_Destroy(a->nc);
        a->nc = NULL;
        return -EIO;
    }
    atomic_store(&a->nats_ok, 1);
    kopt_log_info("connected to NATS", KOPT_STR("url", a->o.nats_url));
    return 0;
}

/* Creates the durable, or updates it to the settings (fields JetStream
 * cannot change are kept and logged). */
static int ensure_consumer(struct kopt_agg *a)
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

static void poll_lag(struct kopt_agg *a)
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
 * hours that failed go back into the set for the next run. */
static void rollup_pass(struct kopt_agg *a, kopt_ch_client_t *ch)
{
    kopt_rollup_stats_t st = {a->rollups, a->rollup_errors, a->rollup_seconds};
    kopt_hourset_t todo, failed;

    kopt_hourset_init(&failed);
    pthread_mutex_lock(&a->mu);
    todo = a->touched;
    kopt_hourset_init(&a->touched);
    pthread_mutex_unlock(&a->mu);
    kopt_rollup_pass(ch, &todo, a->o.rollup_lateness_ms, (int64_t)time(NULL), &a->stop, &st,
                     &failed);
    pthread_mutex_lock(&a->mu);
    kopt_hourset_merge(&a->touched, &failed);
    pthread_mutex_unlock(&a->mu);
    kopt_hourset_free(&todo);
    kopt_hourset_free(&failed);
}

static int start_workers(struct kopt_agg *a)
{
    for (uint32_t i = 0; i < a->o.workers; i++) {
        worker_t *w = &a->workers[i];
        kopt_ch_error_t err;

        if (kopt_ch_client_new(&a->o.ch, &w->ch, &err) < 0 ||
            pthread_create(&w->thread, NULL, worker_main, w) != 0) {
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
static natsSubscription *watch_advisories(struct kopt_agg *a)
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
static void on_advisory(struct kopt_agg *a, natsMsg *m)
{
    int r = -EIO;

    for (int attempt = 0; attempt < 5 && r == -EIO && !stopping(a); attempt++) {
        if (attempt)
            nap(a, 500ULL << attempt);
        r = kopt_deadletter_advisory(a->nc, a->js, a->o.deadletter_prefix, a->o.stream,
                                     natsMsg_GetData(m), natsMsg_GetDataLength(m));
    }
    if (r == 0)
        kopt_metric_counter_inc(kopt_metric_counter_with(a->f_dead, KOPT_DL_MAX_DELIVER));
    else
        kopt_log_error("a message past max-deliver could not be dead-lettered; it stays in the "
                       "stream, skipped by the consumer",
                       KOPT_INT("advisory_bytes", natsMsg_GetDataLength(m)), KOPT_ERR(r));
}

static void control_loop(struct kopt_agg *a, kopt_ch_client_t *ch, natsSubscription *adv)
{
    uint64_t next_lag = 0, next_rollup = now_ms() + a->o.rollup_interval_ms, next_retention = 0;

    while (!stopping(a)) {
        natsMsg *m = NULL;
        uint64_t now;

        if (adv && natsSubscription_NextMsg(&m, adv, TICK_MS) == NATS_OK) {
            on_advisory(a, m);
            natsMsg_Destroy(m);
        } else if (!adv) {
            nap(a, TICK_MS);
        }
        now = now_ms();
        if (now >= next_lag) {
            poll_lag(a);
            next_lag = now + LAG_EVERY_MS;
        }
        if (a->o.rollup_interval_ms && now >= next_rollup) {
            rollup_pass(a, ch);
            next_rollup = now_ms() + a->o.rollup_interval_ms;
        }
        if (now >= next_retention) {
            kopt_metric_counter_add(
                a->dropped_partitions,
                kopt_rollup_retention(ch, a->o.retention_days, a->o.hourly_retention_days));
            next_retention = now + RETENTION_EVERY_MS;
        }
    }
}

static void *control_main(void *arg)
{
    struct kopt_agg *a = arg;
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t err;
    kopt_backoff_t b;

    kopt_backoff_init(&b, 250, 5000, kopt_now_ns());
    if (kopt_ch_client_new(&a->o.ch, &ch, &err) < 0) {
        kopt_log_error("cannot make a ClickHouse client", KOPT_STR("detail", err.message));
        return NULL;
    }
    while (!stopping(a) && migrate(a, ch) < 0)
        nap(a, kopt_backoff_next(&b));
    kopt_backoff_reset(&b);
    while (!stopping(a) && connect_nats(a) < 0)
        nap(a, kopt_backoff_next(&b));
    kopt_backoff_reset(&b);
    while (!stopping(a) && ensure_consumer(a) < 0)
        nap(a, kopt_backoff_next(&b));
    if (!stopping(a)) {
        natsSubscription *adv;

        kopt_deadletter_ensure_stream(a->js, a->o.deadletter_prefix);
        adv = watch_advisories(a);
        if (start_workers(a) == 0)
            control_loop(a, ch, adv);
        natsSubscription_Destroy(adv);
    }
    /* Workers finish their inserts and acks; then the acks are flushed. */
    for (uint32_t i = 0; i < a->n_workers; i++)
        pthread_join(a->workers[i].thread, NULL);
    if (a->nc) {
        natsConnection_FlushTimeout(a->nc, 2000);
        natsConnection_Close(a->nc);
    }
    kopt_ch_client_free(ch);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Public                                                                   */

static int register_metrics(struct kopt_agg *a, kopt_metrics_t *m)
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
    COUNTER(rollup_errors, "kopt_aggregator_rollup_errors_total", "rollups that failed");
    COUNTER(dropped_partitions, "kopt_aggregator_retention_dropped_partitions_total",
            "partitions dropped by the retention janitor");
    GAUGE(lag, "kopt_aggregator_consumer_lag_messages",
          "messages in the stream not yet delivered to the consumer");
    GAUGE(ack_pending, "kopt_aggregator_consumer_ack_pending_messages",
          "messages delivered and not yet acked");
    HIST(insert_seconds, "kopt_aggregator_insert_duration_seconds",
         "time of one ClickHouse insert");
    HIST(rollup_seconds, "kopt_aggregator_rollup_duration_seconds", "time of one hour's rollup");
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

int kopt_agg_new(const kopt_agg_options_t *o, kopt_metrics_t *m, kopt_agg_t **out)
{
    struct kopt_agg *a = calloc(1, sizeof(*a));
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
    kopt_hourset_init(&a->touched);
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
        r = kopt_ch_health_new(&a->o.ch, a->o.workers, PROBE_EVERY_MS, PROBE_TIMEOUT_MS, m,
                               &a->health);
    if (r < 0) {
        kopt_agg_free(a);
        return r;
    }
    *out = a;
    return 0;
}

int kopt_agg_start(kopt_agg_t *a)
{
    if (kopt_ch_health_start(a->health) < 0)
        return -EAGAIN;
    a->control_started = pthread_create(&a->control, NULL, control_main, a) == 0;
    return a->control_started ? 0 : -EAGAIN;
}

void kopt_agg_stop(kopt_agg_t *a)
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
        kopt_ch_health_stop(a->health);
}

void kopt_agg_free(kopt_agg_t *a)
{
    if (!a)
        return;
    kopt_agg_stop(a); /* joins every thread: nothing below is shared any more */
    for (uint32_t i = 0; a->workers && i < a->o.workers; i++) {
        worker_t *w = &a->workers[i];

        kopt_ch_client_free(w->ch);
        free(w->msgs);
        free(w->off);
        free(w->rows);
        free(w->state);
        kopt_rowbinary_buf_free(&w->buf);
        kopt_rowbinary_buf_free(&w->scratch);
        kopt_hourset_free(&w->hours);
        kopt_facts_free(&w->facts);
    }
    free(a->workers);
    kopt_ch_health_free(a->health);
    jsCtx_Destroy(a->js);
    natsConnection_Destroy(a->nc);
    kopt_hourset_free(&a->touched);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int kopt_agg_ready(const kopt_agg_t *a, char *reason, size_t len)
{
    struct kopt_agg *m = (struct kopt_agg *)a; /* atomic_load wants non-const in C17 */

    /* ClickHouse first: its reason (refused, TLS, auth) also explains why
     * the migrations are not done. */
    if (kopt_ch_health_check(m->health, reason, len) < 0)
        return -EAGAIN;
    if (!atomic_load(&m->migrated))
        snprintf(reason, len, "ClickHouse migrations not done yet");
    else if (!atomic_load(&m->nats_ok))
        snprintf(reason, len, "not connected to NATS at %s", a->o.nats_url);
    else if (!atomic_load(&m->consumer_ok))
        snprintf(reason, len, "consumer %s on stream %s not set up", a->o.consumer, a->o.stream);
    else
        return 0;
    return -EAGAIN;
}
