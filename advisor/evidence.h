/* The engine's evidence for one container as kopt.v1 messages: the bounds
 * of the recommended requests, the replayed risk on the analysis window and
 * the out-of-sample backtest (ContainerRecommendation fields 13-15). Kept
 * apart from the snapshot and the analysis so any place that builds a
 * ContainerRecommendation from a kopt_engine_result_t fills them the same
 * way. Pure: no I/O, no allocation. */
#ifndef ADV_EVIDENCE_H
#define ADV_EVIDENCE_H

#include <kopt/engine.h>

#include "kopt/v1/advisor.pb-c.h"

/* The messages the container's fields point to: the caller's storage, kept
 * alive as long as the ContainerRecommendation is used (until it is packed,
 * for instance). */
typedef struct {
    Kopt__V1__ResourceBounds bounds;
    Kopt__V1__ReplayedRisk risk;
    Kopt__V1__Backtest backtest;
    Kopt__V1__ResourceValues backtest_recommended;
    Google__Protobuf__Timestamp fit_start, split, end;
} adv_evidence_t;

/* Fills *ev from r and points c->bounds, c->replayed_risk and c->backtest at
 * it. A result without history (no window in the lookback) leaves the three
 * unset; a backtest that is not valid is sent as {valid: false} alone. */
void adv_evidence_fill(adv_evidence_t *ev, Kopt__V1__ContainerRecommendation *c,
                       const kopt_engine_result_t *r);

#endif
