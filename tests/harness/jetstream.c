/* JetStream for the tests (harness.h): a stream made as kopt-ingest makes
 * KOPT_METRICS, and one KV read. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int kopt_test_js_add_stream(jsCtx *js, const char *name, const char *subject, int replicas)
{
    const char *subjects[] = {subject};
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    int r = 0;

    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    cfg.Duplicates = 120LL * 1000 * 1000 * 1000; /* 2 min, in ns */
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "stream %s: %s (JetStream error %d)\n", name, natsStatus_GetText(s),
                (int)jerr);
        r = -EIO;
    } else if (si->Config->Replicas != replicas) {
        fprintf(stderr, "stream %s: %d replicas, not %d\n", name, (int)si->Config->Replicas,
                replicas);
        r = -EIO;
    }
    jsStreamInfo_Destroy(si);
    return r;
}

int kopt_test_kv_get(jsCtx *js, const char *bucket, const char *key, char *out, size_t len)
{
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    natsStatus s;
    int r = -EIO;

    out[0] = '\0';
    if (js_KeyValue(&kv, js, bucket) != NATS_OK)
        return -EIO;
    s = kvStore_Get(&e, kv, key);
    if (s == NATS_NOT_FOUND) {
        r = -ENOENT;
    } else if (s == NATS_OK) {
        snprintf(out, len, "%.*s", kvEntry_ValueLen(e), (const char *)kvEntry_Value(e));
        r = 0;
    }
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    return r;
}
