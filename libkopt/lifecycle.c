/* Signals and graceful drain on the libuv loop. See kopt/lifecycle.h.
 * Every handle here is closed by kopt_lifecycle_free(); the object itself is
 * released when the last close callback ran, so uv_loop_close() sees nothing. */
#include <kopt/lifecycle.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/log.h>

struct kopt_lifecycle {
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
    uv_timer_t deadline;
    kopt_lifecycle_hooks_t hooks;
    uint64_t drain_timeout_ms;
    int draining;
    int stopped;
    int exit_code;
    int open_handles;
    int freeing;
};


static void call_stop(kopt_lifecycle_t *lc, int exit_code)
{
    if (lc->stopped)
        return;
    lc->stopped = 1;
    lc->exit_code = exit_code;
    uv_timer_stop(&lc->deadline);
    /* Signals must not keep the loop alive once the daemon stopped. */
    uv_unref((uv_handle_t *)&lc->sigterm);
    uv_unref((uv_handle_t *)&lc->sigint);
    uv_unref((uv_handle_t *)&lc->sighup);
    lc->hooks.stop(lc->hooks.data);
}


static void on_deadline(uv_timer_t *t)
{
    kopt_lifecycle_t *lc = t->data;

    kopt_log_error("drain deadline passed, stopping with work in flight",
                   KOPT_UINT("drain_timeout_ms", lc->drain_timeout_ms));
    call_stop(lc, 1);
}


void kopt_lifecycle_begin_drain(kopt_lifecycle_t *lc, const char *reason)
{
    if (lc->draining || lc->stopped)
        return;
    lc->draining = 1;
    kopt_log_info("draining", KOPT_STR("reason", reason),
                  KOPT_UINT("drain_timeout_ms", lc->drain_timeout_ms));
    if (!lc->hooks.drain) {
        call_stop(lc, 0);
        return;
    }
    uv_timer_start(&lc->deadline, on_deadline, lc->drain_timeout_ms, 0);
    /* The deadline alone must not keep a finished loop running. */
    uv_unref((uv_handle_t *)&lc->deadline);
    lc->hooks.drain(lc->hooks.data);
}


static void on_signal(uv_signal_t *s, int signum)
{
    kopt_lifecycle_t *lc = s->data;

    if (signum == SIGHUP) {
        kopt_log_info("SIGHUP: reloading");
        if (lc->hooks.reload)
            lc->hooks.reload(lc->hooks.data);
        return;
    }
    if (lc->draining) {
        kopt_log_warn("second signal during drain, stopping now",
                      KOPT_STR("signal", strsignal(signum)));
        call_stop(lc, 1);
        return;
    }
    kopt_lifecycle_begin_drain(lc, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}


int kopt_lifecycle_new(uv_loop_t *loop, const kopt_lifecycle_hooks_t *hooks,
                       uint64_t drain_timeout_ms, kopt_lifecycle_t **out)
{
    kopt_lifecycle_t *lc;
    uv_signal_t *sigs[3];
    const int nums[3] = {SIGTERM, SIGINT, SIGHUP};
    int r;

    if (!hooks || !hooks->stop)
        return -EINVAL;
    lc = calloc(1, sizeof(*lc));
    if (!lc)
        return -ENOMEM;
    lc->hooks = *hooks;
    lc->drain_timeout_ms = drain_timeout_ms;
    signal(SIGPIPE, SIG_IGN);
    sigs[0] = &lc->sigterm;
    sigs[1] = &lc->sigint;
    sigs[2] = &lc->sighup;
    uv_timer_init(loop, &lc->deadline);
    lc->deadline.data = lc;
    lc->open_handles = 4;
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = lc;
    }
    for (int i = 0; i < 3; i++) {
        r = uv_signal_start(sigs[i], on_signal, nums[i]);
        if (r < 0) {
            kopt_lifecycle_free(lc);
            return r;
        }
        /* A daemon's own handles keep the loop alive, not the signals. */
        uv_unref((uv_handle_t *)sigs[i]);
    }
    *out = lc;
    return 0;
}


void kopt_lifecycle_drained(kopt_lifecycle_t *lc)
{
    call_stop(lc, 0);
}


int kopt_lifecycle_draining(const kopt_lifecycle_t *lc)
{
    return lc->draining;
}


int kopt_lifecycle_exit_code(const kopt_lifecycle_t *lc)
{
    return lc->exit_code;
}


static void on_closed(uv_handle_t *h)
{
    kopt_lifecycle_t *lc = h->data;

    if (--lc->open_handles == 0)
        free(lc);
}


void kopt_lifecycle_free(kopt_lifecycle_t *lc)
{
    if (!lc || lc->freeing)
        return;
    lc->freeing = 1;
    uv_close((uv_handle_t *)&lc->deadline, on_closed);
    uv_close((uv_handle_t *)&lc->sigterm, on_closed);
    uv_close((uv_handle_t *)&lc->sigint, on_closed);
    uv_close((uv_handle_t *)&lc->sighup, on_closed);
}
