/* kopt-advisor: reads its settings and either runs one analysis
 * (`kopt-advisor analyze [--once]`, what the Kubernetes CronJob runs),
 * backtests the strategies on the stored history (`kopt-advisor backtest`)
 * or serves: gRPC kopt.v1.Advisor + health + reflection, the HTTP gateway and
 * web page, the admin server, and scheduled analyses on the libuv worker
 * pool whose results are swapped into memory. SIGTERM drains; SIGHUP
 * re-reads API keys, certificates and the reloadable settings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/backoff.h>
#include <kopt/daemon.h>
#include <kopt/grpc_services.h>
#include <kopt/grpc_tls.h>
#include <kopt/log.h>
#include <kopt/tls.h>
#include <kopt/util.h>

#include "advisor.h"
#include "backtest.h"
#include "kopt_descriptors.h"
#include "serve.h"

extern char **environ;

static int analyze_once(const adv_settings_t *s)
{
    adv_analysis_ctx_t ctx = {0};
    adv_archive_t archive;
    adv_run_request_t req = {0};
    adv_run_result_t res;
    kopt_stream_spec_t spec;
    char err[512];
    int code;

    if (adv_settings_engine_options(s, &ctx.engine, err, sizeof(err)) < 0) {
        kopt_log_error("bad engine settings", KOPT_STR("error", err));
        return KOPT_CONFIG_EXIT_USAGE;
    }
    adv_settings_ch_options(s, &ctx.ch);
    ctx.rollup_wait_s = (uint32_t)(s->rollup_wait_ms / 1000);
    if (s->include_archive) {
        if (adv_settings_archive(s, &archive, err, sizeof(err)) < 0) {
            kopt_log_error("bad archive settings", KOPT_STR("error", err));
            return KOPT_CONFIG_EXIT_USAGE;
        }
        ctx.archive = &archive;
    }
    snprintf(req.cluster, sizeof(req.cluster), "%s", s->cluster ? s->cluster : "");
    snprintf(req.namespace_, sizeof(req.namespace_), "%s", s->namespace_ ? s->namespace_ : "");
    if (s->nats_url && *s->nats_url) {
        adv_stream_spec(s, &spec);
        if (adv_serve_ensure_stream_sync(s->nats_url, &spec) < 0)
            return 1;
        if (adv_publisher_new(s->nats_url, &s->nats, &ctx.publisher) < 0)
            return 1;
        adv_publisher_configure(ctx.publisher, s);
    }
    adv_analysis_run(&ctx, &req, &res);
    if (res.status < 0)
        kopt_log_error("analysis failed", KOPT_STR("analysis_id", res.analysis_id),
                       KOPT_STR("error", res.message), KOPT_UINT("written", res.written));
    else
        kopt_log_info("analysis done", KOPT_STR("analysis_id", res.analysis_id),
                      KOPT_UINT("workloads", res.analyzed), KOPT_UINT("written", res.written),
                      KOPT_UINT("published", res.published), KOPT_UINT("idle", res.idle),
                      KOPT_UINT("skipped", res.skipped),
                      KOPT_DBL("seconds", (double)(res.finished_ns - res.started_ns) / 1e9));
    code = res.status < 0 ? 1 : 0;
    adv_run_result_free(&res);
    adv_publisher_free(ctx.publisher);
    return code;
}

/* Every strategy unless --strategy (flag, variable or file) names some. */
static int backtest(const kopt_config_t *cfg, const adv_settings_t *s)
{
    kopt_engine_strategy_t st[3] = {KOPT_STRATEGY_KOPT, KOPT_STRATEGY_VPA, KOPT_STRATEGY_SIMPLE};
    size_t n = 3;
    kopt_engine_options_t eo;
    kopt_ch_options_t ch;
    adv_archive_t archive;
    adv_settings_t one = *s;
    kopt_config_list_t kopt_only = {(char *[]){"kopt"}, 1};
    adv_scope_t scope;
    int64_t now = (int64_t)time(NULL);
    char err[512];

    if (kopt_config_source(cfg, "strategy") != KOPT_CONFIG_SRC_DEFAULT &&
        adv_settings_strategies(s, st, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "kopt-advisor: %s\n", err);
        return KOPT_CONFIG_EXIT_USAGE;
    }
    /* The other engine settings, checked with any one strategy. */
    one.strategy = kopt_only;
    if (adv_settings_engine_options(&one, &eo, err, sizeof(err)) < 0) {
        fprintf(stderr, "kopt-advisor: %s\n", err);
        return KOPT_CONFIG_EXIT_USAGE;
    }
    adv_settings_ch_options(s, &ch);
    if (s->include_archive && adv_settings_archive(s, &archive, err, sizeof(err)) < 0) {
        fprintf(stderr, "kopt-advisor: %s\n", err);
        return KOPT_CONFIG_EXIT_USAGE;
    }
    scope = (adv_scope_t){.cluster = s->cluster,
                          .namespace_ = s->namespace_,
                          .from = eo.lookback_s > 0 ? now - eo.lookback_s : 0,
                          .to = now};
    if (adv_backtest_run(&ch, s->include_archive ? &archive : NULL, &eo, &scope, st, n, now,
                         s->output == 1, stdout, err, sizeof(err)) < 0) {
        kopt_log_error("backtest failed", KOPT_STR("error", err));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    kopt_config_t *cfg = NULL;
    const adv_settings_t *s;
    char err[1024];
    char *const *args;
    int n = 0, r, code;

    r = kopt_config_load(&cfg, &adv_settings_spec, argc, argv, environ, stdout, err, sizeof(err));
    if (r == KOPT_CONFIG_EXIT_HELP)
        return 0;
    if (r < 0) {
        fprintf(stderr, "kopt-advisor: %s\n", err);
        return KOPT_CONFIG_EXIT_USAGE;
    }
    s = kopt_config_values(cfg);
    args = kopt_config_args(cfg, &n);
    if (n > 1 || (n == 1 && strcmp(args[0], "analyze") != 0 && strcmp(args[0], "backtest") != 0)) {
        fprintf(stderr,
                "kopt-advisor: unknown subcommand \"%s\" (only: analyze [--once], backtest)\n",
                n > 1 ? args[1] : args[0]);
        kopt_config_free(cfg);
        return KOPT_CONFIG_EXIT_USAGE;
    }
    if (n == 1 && strcmp(args[0], "backtest") == 0) {
        kopt_log_setup("advisor", (kopt_log_format_t)s->common.log_format,
                       (kopt_log_level_t)s->common.log_level, 2);
        code = backtest(cfg, s);
        kopt_config_free(cfg);
        return code;
    }
    if (n == 1 || s->once) {
        kopt_log_setup("advisor", (kopt_log_format_t)s->common.log_format,
                       (kopt_log_level_t)s->common.log_level, 2);
        code = analyze_once(s);
        kopt_config_free(cfg);
        return code;
    }
    {
        kopt_engine_options_t eo;

        if (adv_settings_engine_options(s, &eo, err, sizeof(err)) < 0) {
            fprintf(stderr, "kopt-advisor: %s\n", err);
            kopt_config_free(cfg);
            return KOPT_CONFIG_EXIT_USAGE;
        }
    }
    kopt_config_free(cfg);
    return adv_serve(argc, argv);
}
