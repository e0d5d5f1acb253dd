/* Unit tests for libkopt/lifecycle.c: real signals to this process, a real
 * libuv loop; drain, reload, deadline, second signal, clean loop close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <kopt/lifecycle.h>
#include <kopt/log.h>

typedef struct {
    kopt_lifecycle_t *lc;
    uv_timer_t work; /* stands for in-flight work */
    uv_timer_t kick; /* sends the signals */
    int drains, stops, reloads;
    int finish_work; /* whether drain lets the work finish */
    int signals[3];
    int n_signals, sent;
} fixture_t;

static void on_work_done(uv_timer_t *t)
{
    fixture_t *f = t->data;

    kopt_lifecycle_drained(f->lc);
}

static void hook_drain(void *data)
{
    fixture_t *f = data;

    f->drains++;
    if (f->finish_work)
        uv_timer_start(&f->work, on_work_done, 20, 0);
}

static void hook_stop(void *data)
{
    fixture_t *f = data;

    f->stops++;
    uv_close((uv_handle_t *)&f->work, NULL);
    uv_close((uv_handle_t *)&f->kick, NULL);
}

static void hook_reload(void *data)
{
    ((fixture_t *)data)->reloads++;
}

static void on_kick(uv_timer_t *t)
{
    fixture_t *f = t->data;

    if (f->sent < f->n_signals)
        kill(getpid(), f->signals[f->sent++]);
}

static int run(fixture_t *f, uint64_t drain_timeout_ms)
{
    uv_loop_t loop;
    kopt_lifecycle_hooks_t hooks = {hook_drain, hook_stop, hook_reload, f};
    int code;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kopt_lifecycle_new(&loop, &hooks, drain_timeout_ms, &f->lc), 0);
    uv_timer_init(&loop, &f->work);
    uv_timer_init(&loop, &f->kick);
    f->work.data = f->kick.data = f;
    uv_timer_start(&f->kick, on_kick, 10, 30);
    uv_run(&loop, UV_RUN_DEFAULT);
    code = kopt_lifecycle_exit_code(f->lc);
    kopt_lifecycle_free(f->lc);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return code;
}

static void sigterm_drains_then_stops_cleanly(void **state)
{
    fixture_t f = {.finish_work = 1, .signals = {SIGHUP, SIGTERM}, .n_signals = 2};

    (void)state;
    assert_int_equal(run(&f, 5000), 0);
    assert_int_equal(f.reloads, 1);
    assert_int_equal(f.drains, 1);
    assert_int_equal(f.stops, 1);
}

static void drain_deadline_forces_stop_with_failure_code(void **state)
{
    fixture_t f = {.finish_work = 0, .signals = {SIGINT}, .n_signals = 1};

    (void)state;
    assert_int_equal(run(&f, 50), 1);
    assert_int_equal(f.drains, 1);
    assert_int_equal(f.stops, 1);
}

static void second_signal_stops_at_once(void **state)
{
    fixture_t f = {.finish_work = 0, .signals = {SIGTERM, SIGTERM}, .n_signals = 2};

    (void)state;
    assert_int_equal(run(&f, 60000), 1);
    assert_int_equal(f.drains, 1);
    assert_int_equal(f.stops, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigterm_drains_then_stops_cleanly),
        cmocka_unit_test(drain_deadline_forces_stop_with_failure_code),
        cmocka_unit_test(second_signal_stops_at_once),
    };

    kopt_log_setup("test", KOPT_LOG_FORMAT_TEXT, KOPT_LOG_WARN, 2);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
