/* Windows from samples: rates from cumulative counters, resets, gauges,
 * boundaries, and the bound on tracked containers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "window.h"

#define T0 1800000000000LL /* a window boundary, ms */

static agent_window_t got[16];
static size_t n_got;

static void collect(const agent_window_t *w, void *data)
{
    (void)data;
    if (n_got < 16)
        got[n_got++] = *w;
}

static agent_windower_t *make(size_t max)
{
    agent_windower_opts_t o = {
        .window_ms = 60000, .max_containers = max, .forget_after_ms = 180000};
    agent_windower_t *w;

    assert_int_equal(agent_windower_new(&o, &w), 0);
    n_got = 0;
    return w;
}

static agent_sample_t at(const char *key, int64_t ms, double cpu_s, uint64_t ws)
{
    agent_sample_t s;

    memset(&s, 0, sizeof(s));
    s.key = key;
    s.at_ms = ms;
    s.cpu_usage_ns = (uint64_t)(cpu_s * 1e9);
    s.memory_working_set = ws;
    s.memory_rss = ws / 2;
    return s;
}

static void steady_half_core(void **state)
{
    agent_windower_t *w = make(10);
    agent_sample_t s;

    (void)state;
    /* Every 10 s from T0 to T0+60 s, 0.5 core: 5 s of CPU per 10 s. */
    for (int i = 0; i <= 6; i++) {
        s = at("c1", T0 + i * 10000, i * 5.0, (uint64_t)(100 + i) << 20);
        if (i == 6)
            assert_int_equal(agent_windower_flush(w, T0 + 60000, collect, NULL), 1);
        assert_int_equal(agent_windower_add(w, &s), 0);
    }
    /* The first window: samples at 0..50 s, five rates of 0.5. */
    assert_int_equal(n_got, 1);
    assert_string_equal(got[0].key, "c1");
    assert_true(got[0].start_ms == T0 && got[0].end_ms == T0 + 60000);
    assert_true(fabs(got[0].cpu_mean_cores - 0.5) < 1e-9);
    assert_true(fabs(got[0].cpu_peak_cores - 0.5) < 1e-9);
    assert_int_equal(got[0].memory_working_set_peak, 105u << 20);
    assert_int_equal(got[0].memory_working_set_last, 105u << 20);
    assert_int_equal(got[0].memory_rss_peak, (105u << 20) / 2);
    assert_int_equal(got[0].samples, 6);
    agent_windower_free(w);
}

static void bursts_show_in_the_peak(void **state)
{
    agent_windower_t *w = make(10);
    double cpu = 0;
    agent_sample_t s;

    (void)state;
    /* 10 s steps: 0.1 core except one interval of 2 cores. */
    for (int i = 0; i <= 5; i++) {
        s = at("c1", T0 + i * 10000, cpu, 1 << 20);
        assert_int_equal(agent_windower_add(w, &s), 0);
        cpu += i == 2 ? 20.0 : 1.0;
    }
    assert_int_equal(agent_windower_flush(w, T0 + 60000, collect, NULL), 1);
    /* Rates 0.1, 0.1, 2, 0.1, 0.1 over 50 s: mean (4 + 20) / 50 = 0.48. */
    assert_true(fabs(got[0].cpu_mean_cores - 0.48) < 1e-9);
    assert_true(fabs(got[0].cpu_peak_cores - 2.0) < 1e-9);
    agent_windower_free(w);
}

static void a_restart_resets_counters(void **state)
{
    agent_windower_t *w = make(10);
    agent_sample_t s;

    (void)state;
    s = at("c1", T0 + 1000, 100.0, 1 << 20);
    agent_windower_add(w, &s);
    s = at("c1", T0 + 11000, 101.0, 1 << 20);
    s.oom_kills = 1;
    agent_windower_add(w, &s);
    s = at("c1", T0 + 21000, 0.5, 1 << 20); /* restarted: counters from 0 */
    s.oom_kills = 0;
    agent_windower_add(w, &s);
    s = at("c1", T0 + 31000, 1.5, 1 << 20);
    agent_windower_add(w, &s);
    assert_int_equal(agent_windower_flush(w, T0 + 60000, collect, NULL), 1);
    /* Two valid rates of 0.1 core; the reset interval gives none. */
    assert_true(fabs(got[0].cpu_mean_cores - 0.1) < 1e-9);
    assert_int_equal(got[0].resets, 1);
    assert_int_equal(got[0].oom_kills, 1);
    agent_windower_free(w);
}

static void limits_and_forgetting(void **state)
{
    agent_windower_t *w = make(2);
    agent_sample_t s;

    (void)state;
    s = at("a", T0, 0, 0);
    assert_int_equal(agent_windower_add(w, &s), 0);
    s = at("b", T0, 0, 0);
    assert_int_equal(agent_windower_add(w, &s), 0);
    s = at("c", T0, 0, 0);
    assert_int_equal(agent_windower_add(w, &s), -ENOSPC);
    assert_int_equal(agent_windower_dropped(w), 1);
    s = at("a", T0, 0, 0);
    assert_int_equal(agent_windower_add(w, &s), -EINVAL); /* not newer */
    /* Nothing seen for longer than forget_after: both go. */
    agent_windower_flush(w, T0 + 200000, collect, NULL);
    assert_int_equal(agent_windower_tracked(w), 0);
    assert_int_equal(n_got, 0); /* single samples give no rate, no window */
    agent_windower_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steady_half_core),
        cmocka_unit_test(bursts_show_in_the_peak),
        cmocka_unit_test(a_restart_resets_counters),
        cmocka_unit_test(limits_and_forgetting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
