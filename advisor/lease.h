/* The analysis lease (docs/advisor.md, "Replicas"): which advisor replica
 * runs the scheduled analyses. A key in the JetStream key-value bucket
 * kopt_leases holds the holder's id; the bucket's max age is the lease's
 * TTL, so a holder that dies loses it when its last write expires. The
 * holder renews by compare-and-set on the revision it read. A second key
 * carries the id of the newest finished analysis, so replicas that did not
 * run it reload the results from ClickHouse. */
#ifndef ADV_LEASE_H
#define ADV_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/nats_auth.h>

#define ADV_LEASE_BUCKET "kopt_leases"
#define ADV_LEASE_KEY "analysis.all"
#define ADV_LEASE_RESULTS_KEY "results.all"
#define ADV_LEASE_HOLDER_MAX 128

/* ---- the decision (lease_state.c): no I/O, unit-tested ------------------ */

typedef enum {
    ADV_LEASE_CREATE,   /* nobody holds it: create the key (fails if someone was faster) */
    ADV_LEASE_RENEW,    /* we hold it: update at the revision read */
    ADV_LEASE_ELSEWHERE /* another replica holds it */
} adv_lease_action_t;

/* `holder`: the key's value, NULL when the key is absent, deleted or
 * expired; `me`: this replica's id. */
adv_lease_action_t adv_lease_decide(const char *holder, const char *me);

/* How often a replica renews (holder) or tries and looks for new results
 * (others): a third of the TTL, at most 5 s so new results are picked up
 * within seconds, at least 100 ms. */
uint64_t adv_lease_period_ms(uint64_t ttl_ms);

/* This replica's id: host name (the pod's name on Kubernetes) and pid. */
void adv_lease_self_id(char *out, size_t len);

/* ---- the bucket (lease.c): blocking, worker threads only ---------------- */

typedef struct adv_lease adv_lease_t;

/* `url` and `auth` are copied. Nothing connects until the first call. A
 * missing bucket is created with `replicas` (the advisor's stream-replicas,
 * so the lease survives a node as the results stream does). */
int adv_lease_new(const char *url, const kopt_nats_auth_t *auth, uint64_t ttl_ms, int replicas,
                  const char *me, adv_lease_t **out);
/* Takes or renews the lease: 1 held by us, 0 held by another (its id in
 * `holder`), <0 NATS failed (a sentence in err). Thread-safe. */
int adv_lease_acquire(adv_lease_t *l, char *holder, size_t holder_len, char *err, size_t errlen);
/* Records `analysis_id` as the newest finished analysis. */
int adv_lease_put_results(adv_lease_t *l, const char *analysis_id, char *err, size_t errlen);
/* The newest finished analysis in `out` ("" when none or expired): 0, or <0. */
int adv_lease_get_results(adv_lease_t *l, char *out, size_t len, char *err, size_t errlen);
/* Gives the lease up if we hold it (at shutdown), so another replica need
 * not wait for the TTL. */
void adv_lease_release(adv_lease_t *l);
void adv_lease_free(adv_lease_t *l);

#endif
