/* A named lease in the JetStream key-value bucket kopt_leases (kopt/lease.h).
 * Blocking nats.c calls on a plain connection of its own, made on first use
 * and again after it broke; only worker threads call in, and the mutex
 * serialises a keeper's renewals with a scheduled run's check. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include <kopt/lease.h>
#include <kopt/log.h>

#define LEASE_WAIT_MS 5000

struct kopt_lease {
    pthread_mutex_t mu;
    char *url, *key, *client_name;
    kopt_nats_auth_t auth;
    uint64_t ttl_ms;
    int replicas;
    bool ttl_checked; /* the bucket's TTL compared with ours once */
    char me[KOPT_LEASE_HOLDER_MAX];
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
};

int kopt_lease_new(const kopt_lease_options_t *o, kopt_lease_t **out)
{
    kopt_lease_t *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (!l)
        return -ENOMEM;
    l->url = strdup(o->url);
    l->key = strdup(o->key);
    l->client_name = strdup(o->client_name ? o->client_name : "kopt-lease");
    if (!l->url || !l->key || !l->client_name || kopt_nats_auth_copy(&l->auth, o->auth) < 0) {
        free(l->url);
        free(l->key);
        free(l->client_name);
        free(l);
        return -ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->ttl_ms = o->ttl_ms;
    l->replicas = o->replicas > 0 ? o->replicas : 1;
    snprintf(l->me, sizeof(l->me), "%s", o->me);
    *out = l;
    return 0;
}

static void disconnect(kopt_lease_t *l)
{
    kvStore_Destroy(l->kv);
    jsCtx_Destroy(l->js);
    natsConnection_Destroy(l->nc);
    l->kv = NULL;
    l->js = NULL;
    l->nc = NULL;
}

static int fail(kopt_lease_t *l, natsStatus s, const char *what, char *err, size_t errlen)
{
    const char *why = nats_GetLastError(NULL);

    snprintf(err, errlen, "lease %s/%s: %s: %s", KOPT_LEASE_BUCKET, l->key, what,
             why && *why ? why : natsStatus_GetText(s));
    disconnect(l);
    return -EIO;
}

/* A bucket another daemon made keeps its own max age, which is then the
 * TTL of our lease too: say so once, as a keeper period made for a longer
 * TTL would let the lease lapse between renewals. */
static void check_ttl(kopt_lease_t *l)
{
    kvStatus *st = NULL;
    int64_t bucket_ms;

    if (l->ttl_checked || kvStore_Status(&st, l->kv) != NATS_OK)
        return;
    l->ttl_checked = true;
    bucket_ms = kvStatus_TTL(st) / 1000000; /* nanoseconds, as the stream's max age */
    kvStatus_Destroy(st);
    if (bucket_ms != (int64_t)l->ttl_ms)
        kopt_log_warn("the lease bucket's TTL is not this daemon's --lease-ttl; the bucket's "
                      "applies (give every daemon the same --lease-ttl)",
                      KOPT_STR("bucket", KOPT_LEASE_BUCKET), KOPT_STR("lease", l->key),
                      KOPT_INT("bucket_ttl_ms", bucket_ms), KOPT_UINT("lease_ttl_ms", l->ttl_ms));
}

/* The connection and the bucket, made with the TTL as max age and the
 * stream's replicas. Replicas
 * racing to create it with the same settings all succeed. */
static int ready(kopt_lease_t *l, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    jsOptions jo;
    kvConfig cfg;
    natsStatus s;
    char create_err[256] = "";

    if (l->kv && natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED)
        return 0;
    disconnect(l);
    if (kopt_nats_options_new(l->url, l->client_name, &l->auth, &o, err, errlen) < 0)
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
        s = js_KeyValue(&l->kv, l->js, KOPT_LEASE_BUCKET);
    if (s == NATS_NOT_FOUND) {
        kvConfig_Init(&cfg);
        cfg.Bucket = KOPT_LEASE_BUCKET;
        cfg.History = 1;
        cfg.Replicas = l->replicas;
        cfg.TTL = (int64_t)l->ttl_ms * 1000000; /* nanoseconds, as nats.c passes it on */
        s = js_CreateKeyValue(&l->kv, l->js, &cfg);
        if (s != NATS_OK) { /* another replica made it first? */
            const char *why = nats_GetLastError(NULL);

            snprintf(create_err, sizeof(create_err), "%s",
                     why && *why ? why : natsStatus_GetText(s));
            s = js_KeyValue(&l->kv, l->js, KOPT_LEASE_BUCKET);
        }
    }
    if (s != NATS_OK && create_err[0]) {
        snprintf(err, errlen,
                 "lease bucket %s not found nor created (%s); the NATS user needs "
                 "the permissions of docs/security.md",
                 KOPT_LEASE_BUCKET, create_err);
        disconnect(l);
        return -EIO;
    }
    if (s != NATS_OK)
        return fail(l, s, "bucket not found nor created (permissions: docs/security.md)", err,
                    errlen);
    check_ttl(l);
    return 0;
}

/* The key's value in out ("" when absent) and its revision. */
static natsStatus read_key(kopt_lease_t *l, const char *key, char *out, size_t len, uint64_t *rev)
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

int kopt_lease_acquire(kopt_lease_t *l, char *holder, size_t holder_len, char *err, size_t errlen)
{
    char cur[KOPT_LEASE_HOLDER_MAX];
    uint64_t rev = 0, new_rev = 0;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    r = ready(l, err, errlen);
    if (r < 0)
        goto out;
    s = read_key(l, l->key, cur, sizeof(cur), &rev);
    if (s != NATS_OK) {
        r = fail(l, s, "read", err, errlen);
        goto out;
    }
    switch (kopt_lease_decide(cur, l->me)) {
    case KOPT_LEASE_CREATE:
        s = kvStore_Create(&new_rev, l->kv, l->key, l->me, (int)strlen(l->me));
        break;
    case KOPT_LEASE_RENEW:
        s = kvStore_Update(&new_rev, l->kv, l->key, l->me, (int)strlen(l->me), rev);
        break;
    case KOPT_LEASE_ELSEWHERE:
        snprintf(holder, holder_len, "%s", cur);
        r = 0;
        goto out;
    }
    if (s == NATS_OK) {
        snprintf(holder, holder_len, "%s", l->me);
        r = 1;
    } else if (natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED && s != NATS_TIMEOUT) {
        /* Lost the race (wrong last sequence): someone else wrote first. */
        read_key(l, l->key, holder, holder_len, &rev);
        r = 0;
    } else {
        r = fail(l, s, "write", err, errlen);
    }
out:
    pthread_mutex_unlock(&l->mu);
    return r;
}

int kopt_lease_put(kopt_lease_t *l, const char *key, const char *value, char *err, size_t errlen)
{
    uint64_t rev;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    r = ready(l, err, errlen);
    if (r == 0) {
        s = kvStore_PutString(&rev, l->kv, key, value);
        if (s != NATS_OK)
            r = fail(l, s, "write beside the lease", err, errlen);
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

int kopt_lease_get(kopt_lease_t *l, const char *key, char *out, size_t len, char *err,
                   size_t errlen)
{
    uint64_t rev;
    natsStatus s;
    int r;

    pthread_mutex_lock(&l->mu);
    out[0] = '\0';
    r = ready(l, err, errlen);
    if (r == 0) {
        s = read_key(l, key, out, len, &rev);
        if (s != NATS_OK)
            r = fail(l, s, "read beside the lease", err, errlen);
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

void kopt_lease_release(kopt_lease_t *l)
{
    char cur[KOPT_LEASE_HOLDER_MAX], err[256];
    uint64_t rev;

    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    /* Only our own lease; a holder that changed in between keeps its own. */
    if (ready(l, err, sizeof(err)) == 0 && read_key(l, l->key, cur, sizeof(cur), &rev) == NATS_OK &&
        kopt_lease_decide(cur, l->me) == KOPT_LEASE_RENEW)
        kvStore_Delete(l->kv, l->key);
    pthread_mutex_unlock(&l->mu);
}

void kopt_lease_free(kopt_lease_t *l)
{
    if (!l)
        return;
    disconnect(l);
    pthread_mutex_destroy(&l->mu);
    kopt_nats_auth_clear(&l->auth);
    free(l->url);
    free(l->key);
    free(l->client_name);
    free(l);
}
