/* Dead letters: a JetStream message the aggregator can never store (bad
 * protobuf, a batch ingest would have refused, one on another cluster's
 * subject, rows ClickHouse refuses for good, too many deliveries) is
 * published to <prefix>.<reason> with its original payload and headers that
 * say why, and only then acked, so it never blocks the stream. The dead
 * letters are kept in the stream KOPT_DEADLETTER when it exists (the
 * aggregator creates it) and reach plain subscribers either way. */
#ifndef AGG_DEADLETTER_H
#define AGG_DEADLETTER_H

#include <stdint.h>

#include <nats/nats.h>

/* Headers of a dead letter. Nats-Msg-Id is the original one, so the same
 * message dead-lettered twice is stored once. */
#define AGG_DL_REASON "Kopt-Reason"
#define AGG_DL_ERROR "Kopt-Error"
#define AGG_DL_SUBJECT "Kopt-Subject"
#define AGG_DL_STREAM_SEQ "Kopt-Stream-Seq"

/* Reasons (bounded: they are metric labels and subject tokens). */
#define AGG_DL_DECODE "decode"           /* not a kopt.v1.MetricBatch */
#define AGG_DL_INVALID "invalid"         /* fails kopt_batch_validate, or cannot be rows */
#define AGG_DL_CLICKHOUSE "clickhouse"   /* ClickHouse refused its rows, permanently */
#define AGG_DL_MAX_DELIVER "max_deliver" /* delivered max-deliver times, never stored */

/* On a subject other than kopt_batch_subject() of its own cluster and node. */
#define AGG_DL_SUBJECT_MISMATCH "subject_mismatch"

/* Creates the stream KOPT_DEADLETTER on <prefix>.> if it is missing (file
 * storage, 14 days). Blocking. A failure is logged and harmless: dead
 * letters then go out as plain NATS messages. */
void agg_deadletter_ensure_stream(jsCtx *js, const char *prefix);

/* Publishes a dead letter: the payload `data`, from `subject` with the
 * original Nats-Msg-Id `msg_id` (may be NULL) and stream sequence (0: not
 * known). Waits for JetStream's PubAck, or for a flush of a plain publish
 * when no stream takes the subject. Blocking: worker threads only.
 * 0, or a negative errno (the caller does not ack then). */
int agg_deadletter_publish(natsConnection *nc, jsCtx *js, const char *prefix, const char *reason,
                           const char *error, const char *subject, const char *msg_id,
                           uint64_t stream_seq, const void *data, int len);

/* The same for a delivered message, taking subject, id and sequence from it. */
int agg_deadletter_msg(natsConnection *nc, jsCtx *js, const char *prefix, const char *reason,
                       const char *error, natsMsg *msg);

/* Handles one $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES advisory: reads the
 * message it names from `stream` and dead-letters it with max_deliver.
 * 0, -EINVAL for an advisory without stream_seq, or a negative errno. */
int agg_deadletter_advisory(natsConnection *nc, jsCtx *js, const char *prefix, const char *stream,
                            const char *json, int len);

#endif
