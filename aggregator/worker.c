/* The worker threads of kopt-aggregator: each fetches from the durable pull
 * consumer, decodes batches into RowBinary rows, inserts them in one insert,
 * and acks only after ClickHouse answered 200; a batch ClickHouse refuses is
 * halved until the bad message is alone and dead-lettered. See consumer.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/batch_subject.h>
#include <kopt/batch_validate.h>
#include <kopt/log.h>
#include <kopt/trace.h>
#include <kopt/util.h>

#include "consumer_internal.h"
#include "deadletter.h"
#include "trace_insert.h"
#include "kopt/v1/metrics.pb-c.h"

/* ------------------------------------------------------------------------ */
/* Worker: taking messages in                                               */

static void dead_letter(worker_t *w, natsMsg *m, const char *reason, const char *error)
{
    struct agg *a = w->a;

    if (agg_deadletter_msg(a->nc, a->js, a->o.deadletter_prefix, reason, error, m) < 0)
        return; /* not acked: it comes back after AckWait and is tried again */
    natsMsg_Ack(m, NULL);
    kopt_metric_counter_inc(kopt_metric_counter_with(a->f_dead, reason));
    kopt_metric_counter_inc(a->consumed);
}

/* Anyone allowed to publish on the metrics subjects reaches this point
 * without passing ingest, so every batch gets ingest's checks again, with
 * the same function and limits, and must have come on the subject ingest
 * would have published it on (one cluster's publisher cannot write another
 * cluster's rows). Age is not checked: JetStream may deliver a batch ingest
 * accepted long after, following an outage (docs/storage.md). -EINVAL when
 * the batch was refused (dead-lettered, or left unacked for another try
 * when the dead letter could not be published). */
static int refuse_bad_batch(worker_t *w, natsMsg *m, const Kopt__V1__MetricBatch *mb)
{
    const char *subject = natsMsg_GetSubject(m);
    kopt_batch_problem_t problem;
    char text[400], want[544];

    if (kopt_batch_validate(mb, &w->a->o.limits, (int64_t)time(NULL), &problem) < 0) {
        snprintf(text, sizeof(text), "%s: %s", problem.reason, problem.message);
        dead_letter(w, m, AGG_DL_INVALID, text);
        return -EINVAL;
    }
    if (kopt_batch_subject_check(subject, KOPT_BATCH_SUBJECT_PREFIX, mb->cluster, mb->node) == 0)
        return 0;
    /* Validated names fit; a subject is printable NATS text, bounded here. */
    kopt_batch_subject(KOPT_BATCH_SUBJECT_PREFIX, mb->cluster, mb->node, want, sizeof(want));
    snprintf(text, sizeof(text), "batch of cluster \"%.64s\" came on %.96s, not %.96s", mb->cluster,
             subject, want);
    dead_letter(w, m, AGG_DL_SUBJECT_MISMATCH, text);
    return -EINVAL;
}

/* Decodes one fetched message and appends its rows; takes ownership. */
static void accept_msg(worker_t *w, natsMsg *m)
{
    struct agg *a = w->a;
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
        dead_letter(w, m, AGG_DL_DECODE, "payload is not a protobuf kopt.v1.MetricBatch");
        natsMsg_Destroy(m);
        return;
    }
    if (refuse_bad_batch(w, m, mb) < 0)
        goto out; /* dead-lettered, or left unacked when that failed */
    r = agg_rowbinary_metric_batch(&w->buf, mb, (uint32_t)time(NULL), &rows);
    if (r == -EINVAL) {
        dead_letter(w, m, AGG_DL_INVALID, "a window has no start/end or one outside DateTime");
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
                agg_hourset_add(&w->hours, mb->cluster, mb->windows[i]->window_start->seconds);
        if (agg_facts_add_batch(&w->facts, mb) < 0)
            kopt_log_warn("out of memory keeping workload facts; this round goes without",
                          KOPT_INT("worker", w->idx));
        m = NULL;
    }
out:
    natsMsg_Destroy(m);
    kopt__v1__metric_batch__free_unpacked(mb, NULL);
}

static int subscribe(worker_t *w)
{
    struct agg *a = w->a;
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
    struct agg *a = w->a;
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
    agg_nap(a, kopt_backoff_next(&w->backoff));
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
    struct agg *a = w->a;
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
    r = kopt_ch_insert(w->ch, "container_windows", AGG_ROWBINARY_WINDOW_COLUMNS, "RowBinary", data,
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

static int insert_op(void *ctx, size_t lo, size_t hi, kopt_ch_error_t *err)
{
    return insert_range(ctx, lo, hi, err);
}

/* The message ClickHouse refuses alone: to the dead letters, then acked. */
static int dead_letter_op(void *ctx, size_t i, const kopt_ch_error_t *err)
{
    worker_t *w = ctx;
    char text[320];

    snprintf(text, sizeof(text), "ClickHouse code %d (HTTP %ld): %s", err->code, err->http_status,
             err->message);
    if (agg_deadletter_msg(w->a->nc, w->a->js, w->a->o.deadletter_prefix, AGG_DL_CLICKHOUSE, text,
                           w->msgs[i]) < 0)
        return -EIO;
    natsMsg_Ack(w->msgs[i], NULL);
    kopt_metric_counter_inc(kopt_metric_counter_with(w->a->f_dead, AGG_DL_CLICKHOUSE));
    kopt_metric_counter_inc(w->a->consumed);
    return 0;
}

/* Stores the held messages, halving a refused insert down to the message
 * to blame (halving.h). */
static int store_all(worker_t *w, kopt_ch_error_t *last)
{
    agg_halving_ops_t ops = {insert_op, dead_letter_op, w};

    return agg_store_range(&ops, w->state, 0, w->n, last);
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

    if (agg_facts_count(&w->facts) == 0)
        return;
    r = agg_facts_insert(&w->facts, w->ch, &err);
    if (r == 0)
        return;
    count_error(w, &err);
    kopt_log_warn("workload/node facts not stored this round", KOPT_INT("worker", w->idx),
                  KOPT_INT("code", err.code), KOPT_STR("message", err.message), KOPT_ERR(r));
}

static void flush(worker_t *w)
{
    struct agg *a = w->a;
    kopt_ch_error_t err = {0};
    size_t acked = 0;
    uint64_t trace_start = kopt_trace_now_ns();
    int r;

    w->off[w->n] = w->buf.len;
    /* The hours go into the set before the insert too: a rollup pass that
     * takes the set after this insert returned then has them, which is
     * what its watermark promises (rollup_state.h). After the acks they are
     * added again, for a pass that took them while the insert ran. */
    pthread_mutex_lock(&a->mu);
    agg_hourset_merge(&a->touched, &w->hours);
    pthread_mutex_unlock(&a->mu);
    while ((r = store_all(w, &err)) < 0) {
        uint64_t wait = kopt_backoff_next(&w->backoff), slice = a->o.ack_wait_ms / 3;

        /* Until an insert works again, /readyz says why not. */
        agg_ch_health_report(a->health, (unsigned)w->idx, &err);
        if (agg_stopping(a)) {
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
        while (wait > 0 && !agg_stopping(a)) {
            uint64_t step = wait < slice || slice == 0 ? wait : slice;

            keep_alive(w);
            agg_nap(a, step);
            wait -= step;
        }
        keep_alive(w);
    }
    kopt_backoff_reset(&w->backoff);
    agg_trace_insert_done(w->msgs, w->state, w->n, trace_start);
    store_facts(w);
    for (size_t i = 0; i < w->n; i++)
        if (w->state[i] == MSG_STORED) {
            natsMsg_Ack(w->msgs[i], NULL);
            acked++;
        }
    kopt_metric_counter_add(a->consumed, (double)acked);
    pthread_mutex_lock(&a->mu);
    agg_hourset_merge(&a->touched, &w->hours);
    pthread_mutex_unlock(&a->mu);
out:
    agg_ch_health_report(a->health, (unsigned)w->idx, NULL); /* stored, or handed back */
    for (size_t i = 0; i < w->n; i++)
        natsMsg_Destroy(w->msgs[i]);
    w->n = 0;
    w->total_rows = 0;
    w->buf.len = 0;
    agg_hourset_clear(&w->hours);
    agg_facts_clear(&w->facts);
}

static bool due(worker_t *w)
{
    struct agg *a = w->a;

    return w->n > 0 &&
           (w->n >= a->o.fetch_batch || w->total_rows >= a->o.insert_max_rows ||
            kopt_now_ns() >= w->first_ns + a->o.insert_max_delay_ms * MS || agg_stopping(a));
}

void *agg_worker_main(void *arg)
{
    worker_t *w = arg;

    while (!agg_stopping(w->a)) {
        if (!w->sub && subscribe(w) < 0) {
            agg_nap(w->a, kopt_backoff_next(&w->backoff));
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
