/* The analysis lease in the JetStream key-value bucket kopt_leases (see
 * lease.h). Blocking nats.c calls on a plain connection of its own, made on
 * first use and again after it broke; only worker threads call in, so the
 * mutex serialises the keeper's renewals with a scheduled run's check. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "lease.h"

#define LEASE_WAIT_MS 5000

struct adv_lease {
    pthread_mutex_t mu;
    char *url;
    kopt_nats_auth_t auth;
    uint64_t ttl_ms;
    int replicas;
    char me[ADV_LEASE_HOLDER_MAX];
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
};

int adv_lease_new(const char *url, const kopt_nats_auth_t *auth, uint64_t ttl_ms, int replicas,
                  const char *me, adv_lease_t **out)
{
    adv_lease_t *l = calloc(1, sizeof(*l));

    if (!l)
        return -ENOMEM;
    l->url = strdup(url);
    if (!l->url || kopt_nats_auth_copy(&l->auth, auth) < 0) {
        free(l->url);
        free(l);
        return -ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->ttl_ms = ttl_ms;
    l->replicas = replicas > 0 ? replicas : 1;
    snprintf(l->me, sizeof(l->me), "%s", me);
    *out = l;
    return 0;
}

static void disconnect(adv_lease_t *l)
{
    kvStore_Destroy(l->kv);
    jsCtx_Destroy(l->js);
    natsConnection_Destroy(l->nc);
    l->kv = NULL;
    l->js = NULL;
    l->nc = NULL;
}

static int fail(adv_lease_t *l, natsStatus s, const char *what, char *err, size_t errlen)
{
    const char *why = nats_GetLastError(NULL);

    snprintf(err, errlen, "lease %s/%s: %s: %s", ADV_LEASE_BUCKET, ADV_LEASE_KEY, what,
             why && *why ? why : natsStatus_GetText(s));
    disconnect(l);
    return -EIO;
}

/* The connection and the bucket, made with the TTL as max age and the
 * stream's replicas. Replicas
 * racing to create it with the same settings all succeed. */
static int ready(adv_lease_t *l, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    jsOptions jo;
    kvConfig cfg;
    natsStatus s;
    char create_err[256] = "";

    if (l->kv && natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED)
        return 0;
    disconnect(l);
    if (kopt_nats_options_new(l->url, "kopt-advisor-lease", &l->auth, &o, err, errlen) < 0)
        return -EINVAL;
    s = natsOptions_SetMaxReconnect(o, 0);
    if (s == NATS_OK)
        s = natsConnection_Connect(&l->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return fail(l, s, "connect", err, errlen);
    jsOptions_Init(&jo);
    jo.Wait = LEASE_WAIT_MS;
    s = natsConnection_JetStream(&l->js, l->nc, &jo);
    if (s == NATS_OK)
        s = js_KeyValue(&l->kv, l->js, ADV_LEASE_BUCKET);
    if (s == NATS_NOT_FOUND) {
        kvConfig_Init(&cfg);
        cfg.Bucket = ADV_LEASE_BUCKET;
        cfg.History = 1;
        cfg.Replicas = l->replicas;
        cfg.TTL = (int64_t)l->ttl_ms * 1000000; /* nanoseconds, as nats.c passes it on */
        s = js_CreateKeyValue(&l->kv, l->js, &cfg);
        if (s != NATS_OK) { /* another replica made it first? */
            const char *why = nats_GetLastError(NULL);

            snprintf(create_err, sizeof(create_err), "%s",
                     why && *why ? why : natsStatus_GetText(s));
            s = js_KeyValue(&l->kv, l->js, ADV_LEASE_BUCKET);
        }
    }
    if (s != NATS_OK && create_err[0]) {
        snprintf(err, errlen,
                 "lease bucket %s not found nor created (%s); the advisor's NATS "
                 "user needs the permissions of docs/security.md",
                 ADV_LEASE_BUCKET, create_err);
        disconnect(l);
        return -EIO;
    }
    if (s != NATS_OK)
        return fail(l, s, "bucket not found nor created (permissions: docs/security.md)", err,
                    errlen);
    return 0;
}

/* The key's value in out ("" when absent) and its revision. */
static natsStatus read_key(adv_lease_t *l, const char *key, char *out, size_t len, uint64_t *rev)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, l->kv, key);

    out[0] = '\0';
    *rev = 0;
    if (s == NATS_NOT_FOUND)
        return NATS_OK;
    if (s == NATS_OK) {
        snprintf(out, len, "%s", kvEntry_ValueString(e) ? kvEntry_ValueString(e) : "");
        *rev = kvEntry_Revision(e);
    }
    kvEntry_Destroy(e);
    return s;
}

int adv_lease_acquire(adv_lease_t *l, char *holder, size_t holder_len, char *err, size_t errlen)
{
    char cur[ADV_LEASE_HOLDER_MAX];
    uint64_t rev = 0, new_rev = 0;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    r = ready(l, err, errlen);
    if (r < 0)
        goto out;
    s = read_key(l, ADV_LEASE_KEY, cur, sizeof(cur), &rev);
    if (s != NATS_OK) {
        r = fail(l, s, "read", err, errlen);
        goto out;
    }
    switch (adv_lease_decide(cur, l->me)) {
    case ADV_LEASE_CREATE:
        s = kvStore_Create(&new_rev, l->kv, ADV_LEASE_KEY, l->me, (int)strlen(l->me));
        break;
    case ADV_LEASE_RENEW:
        s = kvStore_Update(&new_rev, l->kv, ADV_LEASE_KEY, l->me, (int)strlen(l->me), rev);
        break;
    case ADV_LEASE_ELSEWHERE:
        snprintf(holder, holder_len, "%s", cur);
        r = 0;
        goto out;
    }
    if (s == NATS_OK) {
        snprintf(holder, holder_len, "%s", l->me);
        r = 1;
    } else if (natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED && s != NATS_TIMEOUT) {
        /* Lost the race (wrong last sequence): someone else wrote first. */
        read_key(l, ADV_LEASE_KEY, holder, holder_len, &rev);
        r = 0;
    } else {
        r = fail(l, s, "write", err, errlen);
    }
out:
    pthread_mutex_unlock(&l->mu);
    return r;
}

int adv_lease_put_results(adv_lease_t *l, const char *analysis_id, char *err, size_t errlen)
{
    uint64_t rev;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    r = ready(l, err, errlen);
    if (r == 0) {
        s = kvStore_PutString(&rev, l->kv, ADV_LEASE_RESULTS_KEY, analysis_id);
        if (s != NATS_OK)
            r = fail(l, s, "results write", err, errlen);
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

int adv_lease_get_results(adv_lease_t *l, char *out, size_t len, char *err, size_t errlen)
{
    uint64_t rev;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    out[0] = '\0';
    r = ready(l, err, errlen);
    if (r == 0) {
        s = read_key(l, ADV_LEASE_RESULTS_KEY, out, len, &rev);
        if (s != NATS_OK)
            r = fail(l, s, "results read", err, errlen);
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

void adv_lease_release(adv_lease_t *l)
{
    char cur[ADV_LEASE_HOLDER_MAX], err[256];
    uint64_t rev;

    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    /* Only our own lease; a holder that changed in between keeps its own. */
    if (ready(l, err, sizeof(err)) == 0 &&
        read_key(l, ADV_LEASE_KEY, cur, sizeof(cur), &rev) == NATS_OK &&
        adv_lease_decide(cur, l->me) == ADV_LEASE_RENEW)
        kvStore_Delete(l->kv, ADV_LEASE_KEY);
    pthread_mutex_unlock(&l->mu);
}

void adv_lease_free(adv_lease_t *l)
{
    if (!l)
        return;
    disconnect(l);
    pthread_mutex_destroy(&l->mu);
    kopt_nats_auth_clear(&l->auth);
    free(l->url);
    free(l);
}
