/* The spool between the collector and the transport: the batches the
 * collector makes are appended to it (and the transport woken), the
 * transport reads them back from it and its acks settle them. Also what the
 * admin server shows of both: their counters as metrics, read at scrape
 * time, and the "ingest" readiness check. Loop thread. */
#ifndef AGENT_SPOOL_LINK_H
#define AGENT_SPOOL_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/admin.h>
#include <kopt/metrics.h>

#include "batch.h"
#include "spool.h"
#include "transport.h"

typedef struct agent_spool_link agent_spool_link_t;

/* One counter the admin server reads (private). */
typedef struct {
    const agent_spool_link_t *link;
    size_t offset; /* of a uint64_t in agent_spool_stats_t or agent_transport_stats_t */
} agent_spool_link_probe_t;

struct agent_spool_link {
    agent_spool_t *spool;         /* NULL until opened and once freed */
    agent_transport_t *transport; /* NULL until started and once stopped */
    agent_spool_link_probe_t probes[7];
};

/* The collector's id source and batch sink; `data` is the link. A batch
 * that cannot be appended is logged and lost (-errno). */
void agent_spool_link_take_id(void *data, uint64_t *epoch, uint64_t *seq);
int agent_spool_link_sink(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes,
                          size_t len, const agent_window_t *wins,
                          const agent_container_meta_t *metas, size_t n);

/* The transport's batch source over `spool` (kept). */
agent_batch_source_t agent_spool_link_source(agent_spool_t *spool);

/* Registers the spool and transport metrics and the "ingest" check; they
 * keep `l`, which must outlive `m` and `admin`. 0 or -errno. */
int agent_spool_link_register(agent_spool_link_t *l, kopt_metrics_t *m, kopt_admin_t *admin);

#endif
