/* `kopt-advisor backtest`, the I/O half: the scope's container_hourly read
 * by the analysis' own reader (adv_ch_load_input), then every container
 * backtested with each strategy, as the analysis does it (same options,
 * lookback and containers per pod; the cap to the largest node and HPAs do
 * not apply: they do not change what is scored). Blocking: the CLI. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backtest.h"

/* Mean pods (0 read as 1) of the hours the backtest scored. */
static double scored_pods(const adv_container_in_t *c, const kopt_engine_backtest_t *b, int64_t now)
{
    double pods = 0;
    size_t n = 0;

    for (size_t i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];

        if (h->start >= b->split && h->start < now) {
            pods += h->pods ? h->pods : 1;
            n++;
        }
    }
    return n ? pods / (double)n : 1;
}

static int backtest_input(const adv_input_t *in, const kopt_engine_options_t *opts, int64_t now,
                          adv_backtest_totals_t *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < in->n_w; i++) {
        const adv_workload_in_t *w = &in->w[i];

        for (size_t k = 0; k < w->n_containers; k++) {
            const adv_container_in_t *c = &in->c[w->first_container + k];
            kopt_engine_container_t ec = {c->name, c->current, c->hours, c->n_hours};
            kopt_engine_backtest_t b;
            int r = kopt_engine_backtest(opts, &ec, w->n_containers, now, 0, &b);

            if (r < 0) {
                snprintf(err, errlen, "backtest of %s/%s/%s/%s/%s failed: %s", w->cluster,
                         w->namespace_, w->kind, w->name, c->name, strerror(-r));
                return r;
            }
            adv_backtest_totals_add(t, &b, b.valid ? scored_pods(c, &b, now) : 1);
        }
    }
    return 0;
}

int adv_backtest_run(const kopt_ch_options_t *ch_opts, const adv_archive_t *archive,
                     const kopt_engine_options_t *base, const adv_scope_t *scope,
                     const kopt_engine_strategy_t *strategies, size_t n, int64_t now, bool json,
                     FILE *out, char *err, size_t errlen)
{
    adv_backtest_totals_t totals[3];
    adv_backtest_report_t rep = {.cluster = scope->cluster,
                                 .namespace_ = scope->namespace_,
                                 .from = scope->from,
                                 .to = scope->to,
                                 .totals = totals,
                                 .n = n};
    kopt_ch_client_t *ch = NULL;
    kopt_ch_error_t cherr = {0};
    adv_input_t in = {0};
    int r;

    if (n == 0 || n > sizeof(totals) / sizeof(totals[0]))
        return -EINVAL;
    r = kopt_ch_client_new(ch_opts, &ch, &cherr);
    if (r == 0)
        r = adv_ch_load_input(ch, ch_opts, archive, scope, &in, &cherr);
    if (r < 0) {
        snprintf(err, errlen, "reading container_hourly failed: %s", cherr.message);
        goto out;
    }
    rep.containers = in.n_c;
    for (size_t s = 0; s < n && r == 0; s++) {
        kopt_engine_options_t opts = *base;

        opts.strategy = strategies[s];
        opts.lookback_s = scope->to - scope->from;
        adv_backtest_totals_init(&totals[s], strategies[s]);
        r = backtest_input(&in, &opts, now, &totals[s], err, errlen);
    }
    if (r == 0) {
        r = json ? adv_backtest_print_json(out, &rep) : adv_backtest_print_table(out, &rep);
        if (r < 0)
            snprintf(err, errlen, "writing the report failed: %s", strerror(-r));
    }
out:
    adv_input_free(&in);
    kopt_ch_client_free(ch);
    return r;
}
