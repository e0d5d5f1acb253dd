/* The aggregator's halving of a refused insert (aggregator/halving.c),
 * with a fake ClickHouse: an insert fails when its range holds a "poison"
 * message, with a code that blames the rows (6, CANNOT_PARSE_TEXT) or one
 * that blames the statement (60, UNKNOWN_TABLE), or fails retryably. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "halving.h"

#define N 8

typedef struct {
    bool poison[N];
    int code;            /* ClickHouse code of a refusal */
    kopt_ch_class_t cls; /* its class */
    int inserts;         /* calls to insert */
    int stored[N];       /* times each message was in a successful insert */
    int dead[N];         /* times each message was dead-lettered */
    bool dead_letter_fails;
} fake_t;

static int fake_insert(void *ctx, size_t lo, size_t hi, kopt_ch_error_t *err)
{
    fake_t *f = ctx;

    f->inserts++;
    for (size_t i = lo; i < hi; i++)
        if (f->poison[i]) {
            *err = (kopt_ch_error_t){.r = -EPROTO, .code = f->code, .cls = f->cls};
            snprintf(err->message, sizeof(err->message), "refused");
            return -EPROTO;
        }
    for (size_t i = lo; i < hi; i++)
        f->stored[i]++;
    return 0;
}

static int fake_dead_letter(void *ctx, size_t i, const kopt_ch_error_t *err)
{
    fake_t *f = ctx;

    assert_int_equal(err->code, f->code);
    if (f->dead_letter_fails)
        return -EIO;
    f->dead[i]++;
    return 0;
}

static int run(fake_t *f, msg_state_t *state, kopt_ch_error_t *last)
{
    agg_halving_ops_t ops = {fake_insert, fake_dead_letter, f};

    memset(state, 0, N * sizeof(*state));
    return agg_store_range(&ops, state, 0, N, last);
}

/* No poison: one insert stores all eight. */
static void clean_batch_is_one_insert(void **state)
{
    fake_t f = {.code = 6, .cls = KOPT_CH_PERMANENT};
    msg_state_t st[N];
    kopt_ch_error_t last = {0};

    (void)state;
    assert_int_equal(run(&f, st, &last), 0);
    assert_int_equal(f.inserts, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(st[i], MSG_STORED);
        assert_int_equal(f.stored[i], 1);
    }
}

/* Message 5 is refused for its rows: [0,8) fails, [0,4) is stored, [4,8)
 * fails, [4,6) fails, [4,5) is stored, [5,6) alone is dead-lettered, [6,8)
 * is stored: 7 inserts, every other message stored exactly once. */
static void one_bad_message_is_dead_lettered_alone(void **state)
{
    fake_t f = {.code = 6, .cls = KOPT_CH_PERMANENT};
    msg_state_t st[N];
    kopt_ch_error_t last = {0};

    (void)state;
    f.poison[5] = true;
    assert_int_equal(run(&f, st, &last), 0);
    assert_int_equal(f.inserts, 7);
    for (int i = 0; i < N; i++) {
        assert_int_equal(st[i], i == 5 ? MSG_DEAD : MSG_STORED);
        assert_int_equal(f.stored[i], i == 5 ? 0 : 1);
        assert_int_equal(f.dead[i], i == 5 ? 1 : 0);
    }
}

/* Two bad messages in different halves: both dead, the six others stored. */
static void two_bad_messages(void **state)
{
    fake_t f = {.code = 6, .cls = KOPT_CH_PERMANENT};
    msg_state_t st[N];
    kopt_ch_error_t last = {0};

    (void)state;
    f.poison[0] = f.poison[7] = true;
    assert_int_equal(run(&f, st, &last), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], i == 0 || i == 7 ? MSG_DEAD : MSG_STORED);
}

/* An error about the statement (unknown table) or a retryable one would
 * hit every insert alike: nothing is halved or dead-lettered, the caller
 * retries the whole batch. */
static void statement_and_retryable_errors_are_not_halved(void **state)
{
    static const struct {
        int code;
        kopt_ch_class_t cls;
    } cases[] = {{60, KOPT_CH_PERMANENT}, {0, KOPT_CH_RETRYABLE}, {6, KOPT_CH_RETRYABLE}};

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        fake_t f = {.code = cases[c].code, .cls = cases[c].cls};
        msg_state_t st[N];
        kopt_ch_error_t last = {0};

        f.poison[3] = true;
        assert_int_equal(run(&f, st, &last), -EPROTO);
        assert_int_equal(f.inserts, 1);
        assert_int_equal(last.code, cases[c].code);
        for (int i = 0; i < N; i++) {
            assert_int_equal(st[i], MSG_PENDING);
            assert_int_equal(f.dead[i], 0);
        }
    }
}

/* A dead letter that cannot be published stops the halving with -EIO; what
 * was stored before it stays stored (the caller acks it), the rest pending. */
static void failed_dead_letter_is_retried(void **state)
{
    fake_t f = {.code = 6, .cls = KOPT_CH_PERMANENT, .dead_letter_fails = true};
    msg_state_t st[N];
    kopt_ch_error_t last = {0};

    (void)state;
    f.poison[5] = true;
    assert_int_equal(run(&f, st, &last), -EIO);
    assert_non_null(strstr(last.message, "dead letter not published"));
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], i < 5 ? MSG_STORED : MSG_PENDING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_batch_is_one_insert),
        cmocka_unit_test(one_bad_message_is_dead_lettered_alone),
        cmocka_unit_test(two_bad_messages),
        cmocka_unit_test(statement_and_retryable_errors_are_not_halved),
        cmocka_unit_test(failed_dead_letter_is_retried),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
