/* Halving a refused insert down to the message to blame; see halving.h. */
#include "halving.h"

#include <errno.h>
#include <stdio.h>

int agg_store_range(const agg_halving_ops_t *ops, msg_state_t *state, size_t lo, size_t hi,
                    kopt_ch_error_t *last)
{
    kopt_ch_error_t err = {0};
    size_t mid;
    int r;

    if (lo >= hi)
        return 0;
    r = ops->insert(ops->ctx, lo, hi, &err);
    if (r == 0) {
        for (size_t i = lo; i < hi; i++)
            if (state[i] == MSG_PENDING)
                state[i] = MSG_STORED;
        return 0;
    }
    if (r == -ENOMEM || !kopt_ch_blames_rows(&err)) {
        *last = err;
        return r;
    }
    if (hi - lo == 1) {
        r = ops->dead_letter(ops->ctx, lo, &err);
        if (r < 0) {
            *last = (kopt_ch_error_t){.r = r, .cls = KOPT_CH_RETRYABLE};
            snprintf(last->message, sizeof(last->message), "dead letter not published");
            return r;
        }
        state[lo] = MSG_DEAD;
        return 0;
    }
    mid = lo + (hi - lo) / 2;
    r = agg_store_range(ops, state, lo, mid, last);
    return r < 0 ? r : agg_store_range(ops, state, mid, hi, last);
}
