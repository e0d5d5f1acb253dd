/* A named lease in the JetStream key-value bucket kopt_leases: which replica
 * of a daemon runs a scheduled job (the advisor's analyses, docs/advisor.md
 * "Replicas"; the aggregator's archive and backup, docs/operations.md). The
 * lease's key holds the holder's id; the bucket's max age is the TTL, so a
 * holder that dies loses the lease when its last write expires. The holder
 * renews by compare-and-set on the revision it read. Other keys of the same
 * bucket can carry small values beside a lease (the advisor's newest
 * results), read and written with kopt_lease_get/put. */
#ifndef KOPT_LEASE_H
#define KOPT_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopt/nats_auth.h>

#define KOPT_LEASE_BUCKET "kopt_leases"
#define KOPT_LEASE_HOLDER_MAX 128

/* ---- the decision (lease_state.c): no I/O, unit-tested ------------------ */

typedef enum {
    KOPT_LEASE_CREATE,   /* nobody holds it: create the key (fails if someone was faster) */
    KOPT_LEASE_RENEW,    /* we hold it: update at the revision read */
    KOPT_LEASE_ELSEWHERE /* another replica holds it */
} kopt_lease_action_t;

/* `holder`: the key's value, NULL when the key is absent, deleted or
 * expired; `me`: this replica's id. */
kopt_lease_action_t kopt_lease_decide(const char *holder, const char *me);

/* How often a replica renews (holder) or tries (others): a third of the
 * TTL, at most 5 s (the advisor also looks for new results then), at least
 * 100 ms. */
uint64_t kopt_lease_period_ms(uint64_t ttl_ms);

/* This replica's id: host name (the pod's name on Kubernetes) and pid. */
void kopt_lease_self_id(char *out, size_t len);

/* ---- the bucket (lease.c): blocking, worker threads only ---------------- */

typedef struct kopt_lease kopt_lease_t;

/* Strings are copied. */
typedef struct {
    const char *url;              /* NATS */
    const kopt_nats_auth_t *auth; /* the daemon's NATS user */
    const char *client_name;      /* the connection's name, e.g. "kopt-advisor-lease" */
    const char *key;              /* the lease's key, e.g. "analysis.all" */
    const char *me;               /* this replica's id (kopt_lease_self_id) */
    uint64_t ttl_ms;              /* the bucket's max age when this replica creates it */
    int replicas;                 /* the bucket's replicas when this replica creates it */
} kopt_lease_options_t;

/* Nothing connects until the first call. A missing bucket is created with
 * `ttl_ms` and `replicas`; an existing one is used as it is, so the first
 * daemon to create it sets the TTL of every lease in it. */
int kopt_lease_new(const kopt_lease_options_t *o, kopt_lease_t **out);
/* Takes or renews the lease: 1 held by us, 0 held by another (its id in
 * `holder`), <0 NATS failed (a sentence in err). Thread-safe. */
int kopt_lease_acquire(kopt_lease_t *l, char *holder, size_t holder_len, char *err, size_t errlen);
/* Another key of the bucket, beside the lease: puts `value` under `key`. */
int kopt_lease_put(kopt_lease_t *l, const char *key, const char *value, char *err, size_t errlen);
/* The value under `key` in `out` ("" when none or expired): 0, or <0. */
int kopt_lease_get(kopt_lease_t *l, const char *key, char *out, size_t len, char *err,
                   size_t errlen);
/* Gives the lease up if we hold it (at shutdown), so another replica need
 * not wait for the TTL. */
void kopt_lease_release(kopt_lease_t *l);
void kopt_lease_free(kopt_lease_t *l);

#endif
