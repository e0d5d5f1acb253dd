/* `kopt-aggregator replay`: the JetStream half of a recovery. Deletes the
 * aggregator's durable consumer, so the next `run` creates it again with
 * DeliverAll and re-reads every batch the stream still holds (72 h by
 * default, kopt-ingest's --stream-max-age). Windows already in ClickHouse
 * are written again with the same key and collapse in ReplacingMergeTree,
 * so a restore followed by a replay loses only what is older than both the
 * backup and the stream (docs/operations.md). Run it with every aggregator
 * stopped. */
#include "backup.h"
#include "backup_internal.h"

#include <errno.h>
#include <nats/nats.h>

int agg_restore_replay(const char *nats_url, const char *stream, const char *consumer, char *why,
                       size_t why_len)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, nats_url);
    int r = 0;

    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        agg_backup_say(why, why_len, "NATS: %s", natsStatus_GetText(s));
        r = -ECONNREFUSED;
    } else {
        s = js_DeleteConsumer(js, stream, consumer, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
            r = 0; /* nothing to delete: the next run starts from the stream's start anyway */
        } else if (s != NATS_OK) {
            agg_backup_say(why, why_len, "JetStream: deleting consumer %s on %s: %s (%d)", consumer,
                           stream, natsStatus_GetText(s), (int)jerr);
            r = -EIO;
        }
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return r;
}
