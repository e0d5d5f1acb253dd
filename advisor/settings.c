/* The settings table of kopt-advisor, and the engine and ClickHouse options
 * made from it. Names are shared with the other daemons where the meaning is
 * the same (listen, tls-*, nats-url, clickhouse-*). Fractional numbers
 * (prices, cores) are strings parsed here, since the config has no float. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"

#define S adv_settings_t

static const char *const limits[] = {"keep-ratio", "from-upper", "leave", NULL};
static const char *const http_tls_modes[] = {"off", "on", "mutual", NULL};
static const char *const outputs[] = {"table", "json", NULL};
static const char *const encodings[] = {"protobuf", "json", NULL};

static const kopt_config_setting_t settings[] = {
    KOPT_DAEMON_SETTINGS(S, ":7412"),
    {"listen", KOPT_CONFIG_ADDRESS, offsetof(S, listen), ":7410",
     "gRPC address for kopt.v1.Advisor, health and reflection", 0, 0, 0, NULL},
    {"http-listen", KOPT_CONFIG_ADDRESS, offsetof(S, http_listen), ":7411",
     "HTTP address of the /v1 JSON gateway and the web UI at /", 0, 0, 0, NULL},
    {"tls-ca", KOPT_CONFIG_PATH, offsetof(S, tls_ca), NULL,
     "PEM CA that signs internal callers' client certificates (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"tls-cert", KOPT_CONFIG_PATH, offsetof(S, tls_cert), NULL,
     "PEM server certificate chain (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"tls-key", KOPT_CONFIG_PATH, offsetof(S, tls_key), NULL,
     "PEM server private key (re-read on SIGHUP)", 0, 0, 0, NULL},
    {"http-tls", KOPT_CONFIG_ENUM, offsetof(S, http_tls), "off",
     "HTTPS on --http-listen: off, on (client certificates verified when sent, if a client CA "
     "is known) or mutual (a verified client certificate required)",
     0, 0, 0, http_tls_modes},
    {"http-tls-cert", KOPT_CONFIG_PATH, offsetof(S, http_tls_cert), NULL,
     "PEM certificate chain of the HTTPS gateway (default: --tls-cert; re-read on SIGHUP)", 0, 0, 0,
     NULL},
    {"http-tls-key", KOPT_CONFIG_PATH, offsetof(S, http_tls_key), NULL,
     "PEM private key of the HTTPS gateway (default: --tls-key; re-read on SIGHUP)", 0, 0, 0, NULL},
    {"http-tls-client-ca", KOPT_CONFIG_PATH, offsetof(S, http_tls_client_ca), NULL,
     "PEM CA for the gateway's client certificates (default: --tls-ca; re-read on SIGHUP)", 0, 0, 0,
     NULL},
    {"http-max-connections-per-peer", KOPT_CONFIG_INT, offsetof(S, http_max_conns_per_peer), "64",
     "open gateway connections one client address (IPv6: one /64) may hold, of 1024; more get "
     "503 (0: no limit)",
     0, 0, 1024, NULL},
    {"insecure", KOPT_CONFIG_BOOL, offsetof(S, insecure), "false",
     "plaintext gRPC; without --api-keys-file also no API keys (local development only)", 0, 0, 0,
     NULL},
    {"api-keys-file", KOPT_CONFIG_PATH, offsetof(S, api_keys_file), NULL,
     "accepted API keys, one a line, each optionally followed by its role (viewer or "
     "operator; default operator); '#' comments; re-read on SIGHUP",
     0, 0, 0, NULL},
    {"oidc-issuer", KOPT_CONFIG_STRING, offsetof(S, oidc_issuer), NULL,
     "OpenID Connect issuer URL whose signed JWTs are accepted as bearer tokens (keys from its "
     "discovery document over HTTPS, or from --oidc-jwks-file)",
     0, 0, 0, NULL},
    {"oidc-audience", KOPT_CONFIG_STRING, offsetof(S, oidc_audience), NULL,
     "the aud a token must hold (required with --oidc-issuer)", 0, 0, 0, NULL},
    {"oidc-ca", KOPT_CONFIG_PATH, offsetof(S, oidc_ca), NULL,
     "PEM CA bundle for the issuer's HTTPS (default: the system CAs)", 0, 0, 0, NULL},
    {"oidc-jwks-file", KOPT_CONFIG_PATH, offsetof(S, oidc_jwks_file), NULL,
     "the issuer's keys (JWKS) from a file instead of over HTTPS; re-read on SIGHUP", 0, 0, 0,
     NULL},
    {"oidc-roles-claim", KOPT_CONFIG_STRING, offsetof(S, oidc_roles_claim), "groups",
     "claim the roles are read from (a string, space-separated words or an array; dots walk "
     "into objects: realm_access.roles)",
     0, 0, 0, NULL},
    {"oidc-viewer-values", KOPT_CONFIG_LIST, offsetof(S, oidc_viewer_values), "kopt-viewer",
     "values of the roles claim that grant the viewer role (read)", 0, 0, 0, NULL},
    {"oidc-operator-values", KOPT_CONFIG_LIST, offsetof(S, oidc_operator_values), "kopt-operator",
     "values of the roles claim that grant the operator role (read and "
     "RunAnalysis)",
     0, 0, 0, NULL},
    {"oidc-clock-skew", KOPT_CONFIG_DURATION, offsetof(S, oidc_clock_skew_ms), "60s",
     "allowance on a token's exp and nbf", 0, 0, 0, NULL},
    {"oidc-refresh", KOPT_CONFIG_DURATION, offsetof(S, oidc_refresh_ms), "1h",
     "how often the issuer's keys are fetched again", 0, 0, 0, NULL},
    {"oidc-refresh-min-interval", KOPT_CONFIG_DURATION, offsetof(S, oidc_refresh_min_ms), "30s",
     "least time between fetches a token with an unknown key id starts", 0, 0, 0, NULL},
    {"oidc-max-token-size", KOPT_CONFIG_BYTES, offsetof(S, oidc_max_token_bytes), "8KiB",
     "longest bearer token read (at most 15KiB); longer ones are refused", 0, 0, 0, NULL},
    {"nats-url", KOPT_CONFIG_STRING, offsetof(S, nats_url), "nats://127.0.0.1:4222",
     "NATS server(s), comma-separated; empty: do not publish", 0, 0, 0, NULL},
    KOPT_NATS_AUTH_SETTINGS(S),
    {"stream-replicas", KOPT_CONFIG_INT, offsetof(S, stream_replicas), "1",
     "KOPT_RECOMMENDATIONS replicas", 0, 1, 5, NULL},
    {"stream-max-age", KOPT_CONFIG_DURATION, offsetof(S, stream_max_age_ms), "720h",
     "how long KOPT_RECOMMENDATIONS keeps results (0: forever)", 0, 0, 0, NULL},
    {"recommendations-encoding", KOPT_CONFIG_ENUM, offsetof(S, recommendations_encoding),
     "protobuf",
     "what JetStream and the KV bucket carry: protobuf, or json (proto3 JSON); one per stream", 0,
     0, 0, encodings},
    {"clickhouse-url", KOPT_CONFIG_STRING, offsetof(S, clickhouse_url), "http://127.0.0.1:8123",
     "ClickHouse HTTP interface; replicas comma-separated: a failed request goes to the next", 0, 0,
     0, NULL},
    {"clickhouse-user", KOPT_CONFIG_STRING, offsetof(S, clickhouse_user), NULL,
     "ClickHouse user (default: ClickHouse's default user)", 0, 0, 0, NULL},
    {"clickhouse-password-file", KOPT_CONFIG_PATH, offsetof(S, clickhouse_password_file), NULL,
     "file whose first line is the ClickHouse password", 0, 0, 0, NULL},
    {"clickhouse-ca", KOPT_CONFIG_PATH, offsetof(S, clickhouse_ca), NULL,
     "PEM CA bundle that signs an https:// ClickHouse's certificate (default: the system CAs)", 0,
     0, 0, NULL},
    {"clickhouse-database", KOPT_CONFIG_STRING, offsetof(S, clickhouse_database), "kopt",
     "ClickHouse database", 0, 0, 0, NULL},
    {"clickhouse-timeout", KOPT_CONFIG_DURATION, offsetof(S, clickhouse_timeout_ms), "120s",
     "longest ClickHouse request", 0, 0, 0, NULL},
    {"clickhouse-max-response", KOPT_CONFIG_BYTES, offsetof(S, clickhouse_max_response_bytes),
     "1GiB", "largest ClickHouse answer read (the history of one analysis)", 0, 0, 0, NULL},
    {"metrics-max-recommendation-series", KOPT_CONFIG_INT, offsetof(S, metrics_max_rec_series),
     "10000",
     "most kopt_recommendation_* series on /metrics; whole workloads, largest savings first "
     "(the rest counted in kopt_recommendation_series_dropped_total)",
     0, 0, 100000000, NULL},
    {"analysis-interval", KOPT_CONFIG_DURATION, offsetof(S, analysis_interval_ms), "1h",
     "how often the server analyses (0: only on RunAnalysis)", 0, 0, 0, NULL},
    {"analysis-lease", KOPT_CONFIG_BOOL, offsetof(S, analysis_lease), "true",
     "with NATS: scheduled analyses run only on the replica holding the lease in the "
     "kopt_leases bucket, and every replica reloads the newest results (docs/advisor.md)",
     0, 0, 0, NULL},
    {"lease-ttl", KOPT_CONFIG_DURATION, offsetof(S, lease_ttl_ms), "2m",
     "how long the analysis lease outlives its holder's last renewal (at least 1s)", 0, 0, 0, NULL},
    {"rollup-wait", KOPT_CONFIG_DURATION, offsetof(S, rollup_wait_ms), "60s",
     "how long an analysis waits for hours a backfill left partial to be rolled up",
     KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"lookback", KOPT_CONFIG_DURATION, offsetof(S, lookback_ms), "192h",
     "history an analysis reads", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"strategy", KOPT_CONFIG_LIST, offsetof(S, strategy), "kopt",
     "recommendation strategy: kopt, vpa (the VPA recommender's rules) or simple; backtest "
     "takes a list (default there: all three)",
     KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"limits", KOPT_CONFIG_ENUM, offsetof(S, limits), "keep-ratio",
     "limits policy: keep the current limit/request ratio, set them from the upper bound, "
     "or leave them",
     KOPT_CONFIG_RELOADABLE, 0, 0, limits},
    {"half-life", KOPT_CONFIG_DURATION, offsetof(S, half_life_ms), "48h",
     "half-life of the CPU usage histogram (kopt strategy)", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"cpu-percentile", KOPT_CONFIG_INT, offsetof(S, cpu_percentile), "80",
     "percentile of the time where the CPU request starts (kopt; it rises from there while a "
     "step more still covers enough time)",
     KOPT_CONFIG_RELOADABLE, 1, 100, NULL},
    {"cpu-max-percentile", KOPT_CONFIG_INT, offsetof(S, cpu_max_percentile), "99",
     "percentile of the time the CPU request never passes (kopt)", KOPT_CONFIG_RELOADABLE, 1, 100,
     NULL},
    {"cpu-step", KOPT_CONFIG_STRING, offsetof(S, cpu_step), "1.3",
     "the step the CPU request looks ahead by, as a factor (kopt)", KOPT_CONFIG_RELOADABLE, 0, 0,
     NULL},
    {"cpu-step-share", KOPT_CONFIG_STRING, offsetof(S, cpu_step_share), "0.005",
     "the CPU request rises while a step more would cover at least this share of the time (kopt)",
     KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"cpu-floor-cores", KOPT_CONFIG_STRING, offsetof(S, cpu_floor_cores), "0.025",
     "CPU usage below this is noise to the CPU request (kopt), in cores", KOPT_CONFIG_RELOADABLE, 0,
     0, NULL},
    {"memory-percentile", KOPT_CONFIG_INT, offsetof(S, memory_percentile), "90",
     "percentile of the daily memory peaks the memory request is based on (kopt)",
     KOPT_CONFIG_RELOADABLE, 1, 100, NULL},
    {"memory-half-life", KOPT_CONFIG_DURATION, offsetof(S, memory_half_life_ms), "24h",
     "half-life of the daily memory peaks' weights (kopt)", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"memory-headroom", KOPT_CONFIG_BYTES, offsetof(S, memory_headroom_bytes), "256MiB",
     "memory added to the daily peak level (kopt)", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"safety-margin", KOPT_CONFIG_INT, offsetof(S, safety_margin_percent), "0",
     "percent of the daily peak level added instead of the headroom when larger (kopt)",
     KOPT_CONFIG_RELOADABLE, 0, 1000, NULL},
    {"oom-bump", KOPT_CONFIG_INT, offsetof(S, oom_bump_percent), "120",
     "after an OOM kill, memory is at least this percent of the usage at the kill",
     KOPT_CONFIG_RELOADABLE, 100, 1000, NULL},
    {"cpu-min-cores", KOPT_CONFIG_STRING, offsetof(S, cpu_min_cores), "0.01",
     "smallest CPU request recommended, in cores", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"memory-min", KOPT_CONFIG_BYTES, offsetof(S, memory_min_bytes), "16MiB",
     "smallest memory request recommended", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"idle-cpu-cores", KOPT_CONFIG_STRING, offsetof(S, idle_cpu_cores), "0.01",
     "a workload whose CPU peak stays below this all along is idle", KOPT_CONFIG_RELOADABLE, 0, 0,
     NULL},
    {"cpu-price-per-core-hour", KOPT_CONFIG_STRING, offsetof(S, cpu_price), "0.031611",
     "price of one CPU core for one hour", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"memory-price-per-gib-hour", KOPT_CONFIG_STRING, offsetof(S, memory_price), "0.004237",
     "price of one GiB of memory for one hour", KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"currency", KOPT_CONFIG_STRING, offsetof(S, currency), "USD", "ISO 4217 code of the prices",
     KOPT_CONFIG_RELOADABLE, 0, 0, NULL},
    {"once", KOPT_CONFIG_BOOL, offsetof(S, once), "false",
     "analyse once, write and publish, and exit 0 (or 1 on failure); what `analyze` does", 0, 0, 0,
     NULL},
    /* The cold archive (docs/operations.md, "Cold archive"). */
    {"include-archive", KOPT_CONFIG_BOOL, offsetof(S, include_archive), "false",
     "also read the days of the lookback that container_hourly lacks from the cold archive "
     "(needs --object-store-url; for long lookbacks and backtests)",
     0, 0, 0, NULL},
    {"archive-max-days", KOPT_CONFIG_INT, offsetof(S, archive_max_days), "62",
     "most archived days one analysis loads with --include-archive (more: it fails)", 0, 1, 100000,
     NULL},
    {"archive-max-bytes", KOPT_CONFIG_BYTES, offsetof(S, archive_max_bytes), "4GiB",
     "most bytes of archived objects one analysis loads with --include-archive (more: it fails)", 0,
     0, 0, NULL},
    KOPT_OBJECT_STORE_SETTINGS(S, store),
    {"cluster", KOPT_CONFIG_STRING, offsetof(S, cluster), NULL,
     "analyze and backtest: only this cluster (default: all; the server ignores it)", 0, 0, 0,
     NULL},
    {"namespace", KOPT_CONFIG_STRING, offsetof(S, namespace_), NULL,
     "analyze and backtest: only this namespace (default: all; the server ignores it)", 0, 0, 0,
     NULL},
    {"output", KOPT_CONFIG_ENUM, offsetof(S, output), "table",
     "backtest: print a table for people or json", 0, 0, 0, outputs},
};

const kopt_config_spec_t adv_settings_spec = {
    .program = "kopt-advisor",
    .version = KOPT_VERSION,
    .summary = "right-sizing advice: analyses ClickHouse history and serves it over gRPC, "
               "HTTP/JSON and a web page. Subcommands: analyze [--once] runs one analysis; "
               "backtest scores the strategies out of sample on the stored history",
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .size = sizeof(adv_settings_t),
};

static int number(const char *name, const char *text, double min, double *out, char *err,
                  size_t errlen)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < min) {
        snprintf(err, errlen, "--%s: \"%s\" is not a number >= %g", name, text ? text : "", min);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int adv_settings_strategies(const adv_settings_t *s, kopt_engine_strategy_t *out, size_t *n,
                            char *err, size_t errlen)
{
    *n = 0;
    for (size_t i = 0; i < s->strategy.n; i++) {
        kopt_engine_strategy_t st;
        bool seen = false;

        if (kopt_engine_strategy_parse(s->strategy.items[i], &st) < 0) {
            snprintf(err, errlen, "--strategy: \"%s\" is not kopt, vpa or simple",
                     s->strategy.items[i]);
            return -EINVAL;
        }
        for (size_t k = 0; k < *n; k++)
            seen |= out[k] == st;
        if (!seen)
            out[(*n)++] = st;
    }
    if (*n == 0) {
        snprintf(err, errlen, "--strategy: name kopt, vpa or simple");
        return -EINVAL;
    }
    return 0;
}

int adv_settings_engine_options(const adv_settings_t *s, kopt_engine_options_t *o, char *err,
                                size_t errlen)
{
    kopt_engine_strategy_t st[3];
    size_t n;
    int r;

    kopt_engine_options_default(o);
    r = adv_settings_strategies(s, st, &n, err, errlen);
    if (r < 0)
        return r;
    if (n > 1) {
        snprintf(err, errlen,
                 "--strategy: the server and analyze use one strategy; only backtest takes "
                 "several");
        return -EINVAL;
    }
    o->strategy = st[0];
    o->limits = (kopt_limits_policy_t)s->limits;
    o->half_life_s = (double)s->half_life_ms / 1000.0;
    o->memory_half_life_s = (double)s->memory_half_life_ms / 1000.0;
    o->cpu_percentile = (double)s->cpu_percentile / 100.0;
    o->cpu_max_percentile = (double)s->cpu_max_percentile / 100.0;
    o->memory_percentile = (double)s->memory_percentile / 100.0;
    o->memory_headroom_bytes = s->memory_headroom_bytes;
    if (o->cpu_max_percentile < o->cpu_percentile)
        o->cpu_max_percentile = o->cpu_percentile;
    if (o->cpu_upper_percentile < o->cpu_percentile)
        o->cpu_upper_percentile = o->cpu_percentile;
    if (o->memory_upper_percentile < o->memory_percentile)
        o->memory_upper_percentile = o->memory_percentile;
    if (o->cpu_lower_percentile > o->cpu_percentile)
        o->cpu_lower_percentile = o->cpu_percentile;
    if (o->memory_lower_percentile > o->memory_percentile)
        o->memory_lower_percentile = o->memory_percentile;
    o->safety_margin = (double)s->safety_margin_percent / 100.0;
    o->oom_bump = (double)s->oom_bump_percent / 100.0;
    o->memory_min_bytes = s->memory_min_bytes;
    o->lookback_s = (int64_t)(s->lookback_ms / 1000);
    r = number("cpu-min-cores", s->cpu_min_cores, 0, &o->cpu_min_cores, err, errlen);
    if (r == 0)
        r = number("cpu-floor-cores", s->cpu_floor_cores, 0, &o->cpu_floor_cores, err, errlen);
    if (r == 0)
        r = number("cpu-step", s->cpu_step, 1, &o->cpu_step, err, errlen);
    if (r == 0)
        r = number("cpu-step-share", s->cpu_step_share, 0, &o->cpu_step_share, err, errlen);
    if (r == 0)
        r = number("idle-cpu-cores", s->idle_cpu_cores, 0, &o->idle_cpu_cores, err, errlen);
    if (r == 0)
        r = number("cpu-price-per-core-hour", s->cpu_price, 0, &o->prices.cpu_core_hour, err,
                   errlen);
    if (r == 0)
        r = number("memory-price-per-gib-hour", s->memory_price, 0, &o->prices.memory_gib_hour, err,
                   errlen);
    if (r < 0)
        return r;
    if (!s->currency || strlen(s->currency) != 3) {
        snprintf(err, errlen, "--currency: \"%s\" is not an ISO 4217 code",
                 s->currency ? s->currency : "");
        return -EINVAL;
    }
    snprintf(o->prices.currency, sizeof(o->prices.currency), "%s", s->currency);
    if (kopt_engine_options_check(o) < 0) {
        snprintf(err, errlen, "engine options out of range (percentiles, margin, prices)");
        return -EINVAL;
    }
    return 0;
}

void adv_settings_ch_options(const adv_settings_t *s, kopt_ch_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->url = s->clickhouse_url;
    o->database = s->clickhouse_database;
    o->user = s->clickhouse_user;
    o->password_file = s->clickhouse_password_file;
    o->ca_file = s->clickhouse_ca;
    o->password_env = "KOPT_CLICKHOUSE_PASSWORD";
    o->timeout_ms =
        (uint32_t)(s->clickhouse_timeout_ms > UINT32_MAX ? UINT32_MAX : s->clickhouse_timeout_ms);
    o->max_response_bytes = (size_t)s->clickhouse_max_response_bytes;
}

int adv_settings_archive(const adv_settings_t *s, adv_archive_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    int r = kopt_object_store_locate(&s->store, &a->where, err, errlen);

    if (r == -ENOENT)
        snprintf(err, errlen, "--include-archive needs --object-store-url");
    if (r < 0)
        return -EINVAL;
    kopt_object_store_options(
        &s->store, &a->where,
        (uint32_t)(s->clickhouse_timeout_ms > UINT32_MAX ? UINT32_MAX : s->clickhouse_timeout_ms),
        &a->store);
    a->prefix = a->where.prefix;
    a->max_days = (uint32_t)s->archive_max_days;
    a->max_bytes = s->archive_max_bytes;
    return 0;
}
