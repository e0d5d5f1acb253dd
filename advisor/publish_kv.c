/* The key-value bucket kopt_recommendations: each workload's latest
 * recommendation under <cluster>.<namespace>.<Kind>.<name>, and each
 * cluster's latest AnalysisCompleted under <cluster>._completed, so an
 * integration reads the current state without replaying the stream. The
 * advisor writes it with plain JetStream publishes on $KV.<bucket>.<key>
 * (what kvStore_Put does), in the same asynchronous window as the stream. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "publish_contract.h"

static int safe_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int adv_kv_key_part(const char *s, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!s || !*s)
        return -EINVAL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (safe_byte(*p)) {
            if (o + 1 >= len)
                return -E2BIG;
            out[o++] = (char)*p;
            continue;
        }
        if (o + 3 >= len)
            return -E2BIG;
        out[o++] = '=';
        out[o++] = hex[*p >> 4];
        out[o++] = hex[*p & 15];
    }
    out[o] = '\0';
    return 0;
}

int adv_kv_key(const Kopt__V1__WorkloadRef *w, const char *kind, char *out, size_t len)
{
    const char *parts[] = {w->cluster, w->namespace_, kind, w->name};
    size_t o = 0;

    for (size_t i = 0; i < 4; i++) {
        int r;

        if (i > 0) {
            if (o + 1 >= len)
                return -E2BIG;
            out[o++] = '.';
        }
        r = adv_kv_key_part(parts[i], out + o, len - o);
        if (r < 0)
            return r;
        o += strlen(out + o);
    }
    return 0;
}

int adv_kv_ensure(jsCtx *js, int replicas, char *err, size_t errlen)
{
    kvStore *kv = NULL;
    kvConfig cfg;
    natsStatus s = js_KeyValue(&kv, js, ADV_KV_BUCKET);

    if (s == NATS_NOT_FOUND) {
        kvConfig_Init(&cfg);
        cfg.Bucket = ADV_KV_BUCKET;
        cfg.History = 1;
        cfg.Replicas = replicas > 0 ? replicas : 1;
        s = js_CreateKeyValue(&kv, js, &cfg);
    }
    kvStore_Destroy(kv);
    if (s != NATS_OK) {
        const char *why = nats_GetLastError(NULL);

        /* A permission violation shows as a timeout: no reply ever comes. */
        snprintf(err, errlen,
                 "key-value bucket %s not found nor created (%s); the advisor's NATS user "
                 "needs the permissions of docs/integrations.md",
                 ADV_KV_BUCKET, why && *why ? why : natsStatus_GetText(s));
        return -EIO;
    }
    return 0;
}
