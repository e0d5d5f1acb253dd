/* Storing a batch of messages when ClickHouse may refuse one of them: an
 * insert of messages [lo, hi) either works, fails for a reason that would
 * fail any insert (retried whole by the caller), or blames its rows, and
 * then the range is halved until the one message ClickHouse refuses is
 * alone, and that one is dead-lettered. Pure: the insert and the dead letter
 * are the caller's (worker.c: ClickHouse and JetStream; tests: fakes). */
#ifndef AGG_HALVING_H
#define AGG_HALVING_H

#include <stddef.h>

#include <kopt/clickhouse.h>

typedef enum { MSG_PENDING = 0, MSG_STORED, MSG_DEAD } msg_state_t;

typedef struct {
    /* Inserts the rows of messages [lo, hi); 0 or as kopt_ch_query. */
    int (*insert)(void *ctx, size_t lo, size_t hi, kopt_ch_error_t *err);
    /* Dead-letters message i that ClickHouse refused with err (and acks
     * it); 0, or a negative errno when it could not be published. */
    int (*dead_letter)(void *ctx, size_t i, const kopt_ch_error_t *err);
    void *ctx;
} agg_halving_ops_t;

/* Stores messages [lo, hi) whose state is MSG_PENDING, marking each
 * MSG_STORED or MSG_DEAD. 0 when every one is stored or dead; a negative
 * errno for a failure to retry (described in *last): -ENOMEM, an error that
 * does not blame the rows, or a dead letter that could not be published. */
int agg_store_range(const agg_halving_ops_t *ops, msg_state_t *state, size_t lo, size_t hi,
                    kopt_ch_error_t *last);

#endif
