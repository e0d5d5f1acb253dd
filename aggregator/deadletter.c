/* Dead letters; see deadletter.h. Runs on the aggregator's worker and
 * control threads with their plain (not libuv) NATS connection. */
#include "deadletter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>

#define DL_STREAM "KOPT_DEADLETTER"
#define DL_MAX_AGE_NS (14LL * 24 * 3600 * 1000000000LL)
#define DL_WAIT_MS 5000

void agg_deadletter_ensure_stream(jsCtx *js, const char *prefix)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char subject[256];
    const char *subjects[1] = {subject};
    natsStatus s;

    if (js_GetStreamInfo(&si, js, DL_STREAM, NULL, &jerr) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return;
    }
    snprintf(subject, sizeof(subject), "%s.>", prefix);
    jsStreamConfig_Init(&cfg);
    cfg.Name = DL_STREAM;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = DL_MAX_AGE_NS;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        kopt_log_warn("cannot create the dead-letter stream; dead letters go out as plain NATS "
                      "messages only",
                      KOPT_STR("stream", DL_STREAM), KOPT_STR("subject", subject),
                      KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
}

/* A header value on one line, short. */
static void header_text(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; src && src[i] && i + 1 < size; i++)
        dst[i] = (src[i] == '\r' || src[i] == '\n') ? ' ' : src[i];
    dst[i] = '\0';
}

int agg_deadletter_publish(natsConnection *nc, jsCtx *js, const char *prefix, const char *reason,
                           const char *error, const char *subject, const char *msg_id,
                           uint64_t stream_seq, const void *data, int len)
{
    char dl_subject[256], text[240], seq[24];
    jsPubOptions po;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    natsStatus s;

    snprintf(dl_subject, sizeof(dl_subject), "%s.%s", prefix, reason);
    snprintf(seq, sizeof(seq), "%" PRIu64, stream_seq);
    header_text(text, sizeof(text), error);
    s = natsMsg_Create(&m, dl_subject, NULL, data, len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, AGG_DL_REASON, reason);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, AGG_DL_ERROR, text[0] ? text : "-");
    if (s == NATS_OK && subject)
        s = natsMsgHeader_Set(m, AGG_DL_SUBJECT, subject);
    if (s == NATS_OK && stream_seq)
        s = natsMsgHeader_Set(m, AGG_DL_STREAM_SEQ, seq);
    if (s == NATS_OK && msg_id && msg_id[0])
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (s == NATS_OK) {
        jsPubOptions_Init(&po);
        po.MaxWait = DL_WAIT_MS;
        s = js_PublishMsg(&pa, js, m, &po, &jerr);
        jsPubAck_Destroy(pa);
        if (s == NATS_NO_RESPONDERS) { /* no stream on the subject: plain NATS */
            s = natsConnection_PublishMsg(nc, m);
            if (s == NATS_OK)
                s = natsConnection_FlushTimeout(nc, DL_WAIT_MS);
        }
    }
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        kopt_log_error("dead letter not published; the message stays unacked and comes back",
                       KOPT_STR("subject", dl_subject), KOPT_STR("status", natsStatus_GetText(s)),
                       KOPT_INT("jerr", jerr));
        return -EIO;
    }
    kopt_log_warn("message dead-lettered", KOPT_STR("reason", reason), KOPT_STR("error", text),
                  KOPT_STR("from", subject ? subject : ""),
                  KOPT_STR("msg_id", msg_id ? msg_id : ""), KOPT_UINT("stream_seq", stream_seq));
    return 0;
}

int agg_deadletter_msg(natsConnection *nc, jsCtx *js, const char *prefix, const char *reason,
                       const char *error, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    const char *id = NULL;
    uint64_t seq = 0;
    int r;

    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK)
        seq = meta->Sequence.Stream;
    r = agg_deadletter_publish(nc, js, prefix, reason, error, natsMsg_GetSubject(msg), id, seq,
                               natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    jsMsgMetaData_Destroy(meta);
    return r;
}

int agg_deadletter_advisory(natsConnection *nc, jsCtx *js, const char *prefix, const char *stream,
                            const char *json, int len)
{
    char buf[2048], err[128];
    const char *p;
    const char *id = NULL;
    unsigned long long seq;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    int r;

    if (len <= 0 || (size_t)len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, json, (size_t)len);
    buf[len] = '\0';
    p = strstr(buf, "\"stream_seq\"");
    if (!p || !(p = strchr(p, ':')) || sscanf(p + 1, " %llu", &seq) != 1 || seq == 0)
        return -EINVAL;
    s = js_GetMsg(&m, js, stream, seq, NULL, &jerr);
    if (s != NATS_OK) {
        /* Gone already (max-age, or another replica's retention): nothing to keep. */
        kopt_log_warn("message past max-deliver is no longer in the stream",
                      KOPT_STR("stream", stream), KOPT_UINT("stream_seq", seq),
                      KOPT_STR("status", natsStatus_GetText(s)), KOPT_INT("jerr", jerr));
        return s == NATS_NOT_FOUND ? 0 : -EIO;
    }
    natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
    snprintf(err, sizeof(err), "delivered the maximum number of times without being stored");
    r = agg_deadletter_publish(nc, js, prefix, AGG_DL_MAX_DELIVER, err, natsMsg_GetSubject(m), id,
                               seq, natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
    return r;
}
