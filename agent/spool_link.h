/* The spool between the collector and the transport: the batches the
 * collector makes are appended to it (and the transport woken), the
 * transport reads them back from it and its acks settle them. Also what the
 * admin server shows of both: their counters as metrics, read at scrape
 * time, and the "ingest" readiness check. Loop thread. */
#ifndef KOPT_AGENT_SPOOL_LINK_H
#define KOPT_AGENT_SPOOL_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/admin.h>
#include <kopt/metrics.h>

#include "batch.h"
#include "spool.h"
#include "transport.h"

typedef struct kopt_spool_link kopt_spool_link_t;

/* One counter the admin server reads (private). */
typedef struct {
    const kopt_spool_link_t *link;
    size_t offset; /* of a uint64_t in kopt_spool_stats_t or kopt_transport_stats_t */
} kopt_spool_link_probe_t;

struct kopt_spool_link {
    kopt_spool_t *spool;         /* NULL until opened and once freed */
    kopt_transport_t *transport; /* NULL until started and once stopped */
    kopt_spool_link_probe_t probes[7];
};

/* The collector's id source and batch sink; `data` is the link. A batch
 * that cannot be appended is logged and lost (-errno). */
void kopt_spool_link_take_id(void *data, uint64_t *epoch, uint64_t *seq);
int kopt_spool_link_sink(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes, size_t len,
                         const kopt_window_t *wins, const kopt_container_meta_t *metas, size_t n);

/* The transport's batch source over `spool` (kept). */
kopt_batch_source_t kopt_spool_link_source(kopt_spool_t *spool);

/* Registers the spool and transport metrics and the "ingest" check; they
 * keep `l`, which must outlive `m` and `admin`. 0 or -errno. */
int kopt_spool_link_register(kopt_spool_link_t *l, kopt_metrics_t *m, kopt_admin_t *admin);

#endif
