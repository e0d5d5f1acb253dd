/* The keys that sign an OIDC issuer's tokens, kept fresh: discovery
 * (<issuer>/.well-known/openid-configuration) names the jwks_uri, both are
 * fetched over HTTPS with libcurl (--oidc-ca) on the loop's worker pool,
 * never on the loop thread, and the parsed key set is swapped in on the
 * loop thread. Fetched again every --oidc-refresh, sooner after a failure,
 * and when a token names a kid the set lacks (a key rotation), but at most
 * once per --oidc-refresh-min-interval, so a flood of made-up kids cannot
 * hammer the issuer. With --oidc-jwks-file the keys come from that file
 * (offline clusters), re-read on SIGHUP. The old keys stay in use while a
 * fetch fails. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <kopt/log.h>
#include <kopt/util.h>

#include "advisor.h"

#define FETCH_TIMEOUT_MS 10000L
#define MAX_DOC_BYTES KOPT_JWKS_MAX_BYTES
#define RETRY_MS 30000 /* after a failed fetch, unless the refresh is sooner */
#define MAX_VALUES 64

typedef struct {
    char *data;
    size_t len;
    bool too_big;
} body_t;

typedef struct {
    uv_work_t work;
    adv_oidc_t *o;
    char *issuer, *ca_file; /* copies: the worker reads them */
    kopt_jwks_t *keys;      /* the result */
    char err[512];
} fetch_t;

struct adv_oidc {
    uv_loop_t *loop;
    uv_timer_t timer;
    char *issuer, *audience, *ca_file, *jwks_file, *claim;
    char **viewer, **operator_;
    size_t n_viewer, n_operator;
    uint64_t refresh_ms, min_refresh_ms;
    int64_t skew_s;
    size_t max_token;
    kopt_jwks_t *keys;
    uint64_t keys_gen; /* bumped whenever keys is replaced (token_cache.c) */
    bool fetching, closing, timer_closed;
    uint64_t last_fetch_ms; /* when the last fetch started; 0: never */
    kopt_metric_counter_t *fetch_ok, *fetch_err;
    kopt_metric_gauge_t *n_keys;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    body_t *b = data;
    size_t add = size * n;
    char *grown;

    if (b->len + add > MAX_DOC_BYTES) {
        b->too_big = true;
        return 0;
    }
    grown = realloc(b->data, b->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, p, add);
    b->len += add;
    grown[b->len] = '\0';
    b->data = grown;
    return add;
}

/* One GET over HTTPS only; 0 with the body (200 only), or -EIO with err. */
static int get(const char *url, const char *ca_file, body_t *b, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    char cerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode rc;

    if (!c)
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "GET %.300s: %.150s", url,
                 b->too_big ? "answer larger than 1 MiB"
                 : cerr[0]  ? cerr
                            : curl_easy_strerror(rc));
        return -EIO;
    }
    if (status != 200) {
        snprintf(err, errlen, "GET %.300s: HTTP %ld", url, status);
        return -EIO;
    }
    return 0;
}

/* Discovery then the JWKS. Worker thread. */
static int fetch_keys(const char *issuer, const char *ca_file, kopt_jwks_t **out, char *err,
                      size_t errlen)
{
    size_t ilen = strlen(issuer);
    body_t doc = {0}, jwks = {0};
    char url[2048], e[256];
    const char *iss, *uri;
    json_t *d = NULL;
    int r;

    /* OIDC Discovery 1.0, section 4: the issuer without a trailing slash. */
    while (ilen > 0 && issuer[ilen - 1] == '/')
        ilen--;
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)ilen, issuer);
    r = get(url, ca_file, &doc, err, errlen);
    if (r < 0)
        goto out;
    d = json_loadb(doc.data ? doc.data : "", doc.len, 0, NULL);
    iss = json_string_value(json_object_get(d, "issuer"));
    uri = json_string_value(json_object_get(d, "jwks_uri"));
    if (!iss || !uri) {
        snprintf(err, errlen, "%.300s is not a discovery document (no issuer and jwks_uri)", url);
        r = -EINVAL;
        goto out;
    }
    /* Section 4.3: the document must name the issuer asked for. */
    if (strcmp(iss, issuer) != 0) {
        snprintf(err, errlen, "%.300s names issuer \"%.100s\", not --oidc-issuer", url, iss);
        r = -EINVAL;
        goto out;
    }
    r = get(uri, ca_file, &jwks, err, errlen);
    if (r == 0 &&
        (r = kopt_jwks_parse(jwks.data ? jwks.data : "", jwks.len, out, NULL, e, sizeof(e))) < 0)
        snprintf(err, errlen, "%.200s: %.250s", uri, e);
out:
    json_decref(d);
    free(doc.data);
    free(jwks.data);
    return r;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void oidc_free(adv_oidc_t *o)
{
    for (size_t i = 0; i < o->n_viewer; i++)
        free(o->viewer[i]);
    for (size_t i = 0; i < o->n_operator; i++)
        free(o->operator_[i]);
    free(o->viewer);
    free(o->operator_);
    kopt_jwks_free(o->keys);
    free(o->issuer);
    free(o->audience);
    free(o->ca_file);
    free(o->jwks_file);
    free(o->claim);
    free(o);
}

static void on_timer_closed(uv_handle_t *h)
{
    adv_oidc_t *o = h->data;

    o->timer_closed = true;
    if (!o->fetching)
        oidc_free(o);
}

static void on_timer(uv_timer_t *t);

static void fetch_work(uv_work_t *w)
{
    fetch_t *f = kopt_container_of(w, fetch_t, work);

    if (fetch_keys(f->issuer, f->ca_file, &f->keys, f->err, sizeof(f->err)) < 0)
        f->keys = NULL;
}

static void fetch_after(uv_work_t *w, int status)
{
    fetch_t *f = kopt_container_of(w, fetch_t, work);
    adv_oidc_t *o = f->o;
    uint64_t next = o->refresh_ms;

    o->fetching = false;
    if (o->closing) {
        /* Whichever of this and on_timer_closed comes last frees o. */
        kopt_jwks_free(f->keys);
        free(f->issuer);
        free(f->ca_file);
        free(f);
        if (o->timer_closed)
            oidc_free(o);
        return;
    }
    if (status == 0 && f->keys) {
        kopt_jwks_free(o->keys);
        o->keys = f->keys;
        o->keys_gen++;
        if (o->fetch_ok) {
            kopt_metric_counter_inc(o->fetch_ok);
            kopt_metric_gauge_set(o->n_keys, (double)kopt_jwks_count(o->keys));
        }
        kopt_log_info("OIDC signing keys fetched", KOPT_STR("issuer", o->issuer),
                      KOPT_UINT("keys", kopt_jwks_count(o->keys)));
    } else {
        if (o->fetch_err)
            kopt_metric_counter_inc(o->fetch_err);
        kopt_log_warn("OIDC signing keys not fetched; keeping the current ones",
                      KOPT_STR("issuer", o->issuer),
                      KOPT_STR("error", status == 0 ? f->err : "cancelled"),
                      KOPT_UINT("keys", kopt_jwks_count(o->keys)));
        if (next == 0 || next > RETRY_MS)
            next = RETRY_MS;
    }
    if (!o->closing && next > 0)
        uv_timer_start(&o->timer, on_timer, next, 0);
    free(f->issuer);
    free(f->ca_file);
    free(f);
}

/* Starts a fetch unless one runs. Loop thread. */
static void start_fetch(adv_oidc_t *o)
{
    fetch_t *f;

    if (o->fetching || o->closing || !o->issuer || o->jwks_file)
        return;
    f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->o = o;
    f->issuer = strdup(o->issuer);
    f->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    if (!f->issuer || (o->ca_file && !f->ca_file) ||
        uv_queue_work(o->loop, &f->work, fetch_work, fetch_after) < 0) {
        free(f->issuer);
        free(f->ca_file);
        free(f);
        return;
    }
    o->fetching = true;
    o->last_fetch_ms = now_ms();
    uv_timer_stop(&o->timer);
}

static void on_timer(uv_timer_t *t)
{
    start_fetch(t->data);
}

static int read_file(adv_oidc_t *o, char *err, size_t errlen)
{
    FILE *f = fopen(o->jwks_file, "r");
    char *buf = malloc(MAX_DOC_BYTES + 1), e[256];
    kopt_jwks_t *keys = NULL;
    size_t n = 0;
    int r = 0;

    if (!f || !buf) {
        r = f ? -ENOMEM : -errno;
        snprintf(err, errlen, "cannot read --oidc-jwks-file %s: %s", o->jwks_file, strerror(-r));
    } else {
        n = fread(buf, 1, MAX_DOC_BYTES + 1, f);
        r = ferror(f) ? -EIO : kopt_jwks_parse(buf, n, &keys, NULL, e, sizeof(e));
        if (r < 0)
            snprintf(err, errlen, "--oidc-jwks-file %s: %s", o->jwks_file,
                     r == -EIO ? "read error" : e);
    }
    if (f)
        fclose(f);
    free(buf);
    if (r < 0)
        return r;
    kopt_jwks_free(o->keys);
    o->keys = keys;
    o->keys_gen++;
    if (o->n_keys)
        kopt_metric_gauge_set(o->n_keys, (double)kopt_jwks_count(keys));
    return 0;
}

static int copy_list(const kopt_config_list_t *l, char ***out, size_t *n)
{
    size_t count = l ? l->n : 0;

    if (count > MAX_VALUES)
        return -E2BIG;
    *out = calloc(count ? count : 1, sizeof(char *));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        (*out)[i] = strdup(l->items[i]);
        if (!(*out)[i])
            return -ENOMEM;
        *n = i + 1;
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int adv_oidc_new(uv_loop_t *loop, kopt_metrics_t *metrics, const adv_oidc_opts_t *opts,
                 adv_oidc_t **out, char *err, size_t errlen)
{
    adv_oidc_t *o;
    kopt_metric_family_t *f = NULL;
    int r;

    *out = NULL;
    if (!opts->issuer || !*opts->issuer || !opts->audience || !*opts->audience) {
        snprintf(err, errlen, "--oidc-issuer and --oidc-audience are both needed");
        return -EINVAL;
    }
    if (!opts->jwks_file && strncmp(opts->issuer, "https://", 8) != 0) {
        snprintf(err, errlen, "--oidc-issuer must be an https:// URL (or give --oidc-jwks-file)");
        return -EINVAL;
    }
    if (opts->max_token < 256 || opts->max_token > 15 * 1024) {
        snprintf(err, errlen, "--oidc-max-token-size must be between 256B and 15KiB");
        return -EINVAL;
    }
    o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->loop = loop;
    o->issuer = strdup(opts->issuer);
    o->audience = strdup(opts->audience);
    o->ca_file = dup_or_null(opts->ca_file);
    o->jwks_file = dup_or_null(opts->jwks_file);
    o->claim = strdup(opts->roles_claim && *opts->roles_claim ? opts->roles_claim : "groups");
    o->refresh_ms = opts->refresh_ms;
    o->min_refresh_ms = opts->min_refresh_ms;
    o->skew_s = opts->skew_s;
    o->max_token = opts->max_token;
    r = copy_list(opts->viewer_values, &o->viewer, &o->n_viewer);
    if (r == 0)
        r = copy_list(opts->operator_values, &o->operator_, &o->n_operator);
    if (r == 0 && (!o->issuer || !o->audience || !o->claim || (opts->ca_file && !o->ca_file) ||
                   (opts->jwks_file && !o->jwks_file)))
        r = -ENOMEM;
    if (r == -E2BIG)
        snprintf(err, errlen, "--oidc-viewer-values and --oidc-operator-values: %d values at most",
                 MAX_VALUES);
    if (r == 0 && o->jwks_file)
        r = read_file(o, err, errlen);
    if (r == 0 && metrics) {
        r = kopt_metrics_counter(metrics, "kopt_advisor_oidc_key_fetches_total",
                                 "Fetches of the OIDC issuer's signing keys, by result", "result",
                                 &f);
        if (r == 0) {
            o->fetch_ok = kopt_metric_counter_with(f, "ok");
            o->fetch_err = kopt_metric_counter_with(f, "error");
            r = kopt_metrics_gauge(metrics, "kopt_advisor_oidc_keys", "OIDC signing keys held now",
                                   NULL, &f);
        }
        if (r == 0) {
            o->n_keys = kopt_metric_gauge_with(f);
            kopt_metric_gauge_set(o->n_keys, (double)kopt_jwks_count(o->keys));
        }
    }
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        oidc_free(o);
        return r;
    }
    pthread_once(&curl_once, curl_init);
    uv_timer_init(loop, &o->timer);
    o->timer.data = o;
    start_fetch(o);
    *out = o;
    return 0;
}

static int has_value(char *const *values, size_t n, const kopt_jwt_t *t, const char *claim)
{
    for (size_t i = 0; i < n; i++)
        if (kopt_jwt_claim_has(t, claim, values[i]))
            return 1;
    return 0;
}

kopt_jwt_result_t adv_oidc_verify(adv_oidc_t *o, const char *token, size_t len, kopt_jwt_t **t,
                                  int *roles)
{
    kopt_jwt_policy_t p = {.issuer = o->issuer,
                           .audience = o->audience,
                           .now = (int64_t)time(NULL),
                           .skew_s = o->skew_s,
                           .max_len = o->max_token};
    kopt_jwt_result_t r;
    char kid[128];

    *roles = 0;
    r = kopt_jwt_verify(token, len, o->keys, &p, t, kid, sizeof(kid));
    if (r == KOPT_JWT_UNKNOWN_KID || r == KOPT_JWT_NO_KEYS) {
        uint64_t now = now_ms();

        if (o->last_fetch_ms == 0 || now - o->last_fetch_ms >= o->min_refresh_ms)
            start_fetch(o);
    }
    if (r != KOPT_JWT_OK)
        return r;
    if (has_value(o->operator_, o->n_operator, *t, o->claim))
        *roles = ADV_ROLE_OPERATOR;
    else if (has_value(o->viewer, o->n_viewer, *t, o->claim))
        *roles = ADV_ROLE_VIEWER;
    return r;
}

size_t adv_oidc_max_token(const adv_oidc_t *o)
{
    return o->max_token;
}

uint64_t adv_oidc_keys_generation(const adv_oidc_t *o)
{
    return o->keys_gen;
}

int adv_oidc_reload(adv_oidc_t *o, char *err, size_t errlen)
{
    if (o->jwks_file)
        return read_file(o, err, errlen);
    start_fetch(o);
    return 0;
}

void adv_oidc_close(adv_oidc_t *o)
{
    if (!o || o->closing)
        return;
    o->closing = true;
    uv_close((uv_handle_t *)&o->timer, on_timer_closed);
}
