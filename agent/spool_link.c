/* The spool as the collector's sink and the transport's source, and their
 * counters for the admin server (see spool_link.h). */
#include "spool_link.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include <kopt/log.h>

/* --- what the collector writes --- */

void agent_spool_link_take_id(void *data, uint64_t *epoch, uint64_t *seq)
{
    agent_spool_link_t *l = data;

    agent_spool_take_id(l->spool, epoch, seq);
}

int agent_spool_link_sink(void *data, uint64_t epoch, uint64_t seq, const uint8_t *bytes,
                          size_t len, const agent_window_t *wins,
                          const agent_container_meta_t *metas, size_t n)
{
    agent_spool_link_t *l = data;
    int r = agent_spool_append(l->spool, epoch, seq, bytes, len);

    (void)wins;
    (void)metas;
    if (r < 0) {
        kopt_log_error("spool append failed; batch lost", KOPT_UINT("seq", seq),
                       KOPT_UINT("windows", n), KOPT_ERR(r));
        return r;
    }
    agent_transport_kick(l->transport);
    return 0;
}

/* --- what the transport reads --- */

static int source_next(void *data, agent_batch_ref_t *out)
{
    agent_spool_entry_t e;
    int r = agent_spool_peek(data, &e);

    if (r < 0)
        return -EAGAIN;
    agent_spool_next(data);
    *out = (agent_batch_ref_t){e.data, e.len, e.epoch, e.seq};
    return 0;
}

static void source_rewind(void *data)
{
    agent_spool_rewind(data);
}

static void source_ack(void *data, uint64_t epoch, uint64_t seq)
{
    int r = agent_spool_ack(data, epoch, seq);

    if (r < 0)
        kopt_log_error("spool ack failed; the batches will be sent again", KOPT_ERR(r));
}

static void source_rejected(void *data, uint64_t epoch, uint64_t seq, const char *reason)
{
    (void)data;
    kopt_log_warn("batch dropped: ingest refused it", KOPT_UINT("epoch", epoch),
                  KOPT_UINT("seq", seq), KOPT_STR("reason", reason));
}

agent_batch_source_t agent_spool_link_source(agent_spool_t *spool)
{
    return (agent_batch_source_t){source_next, source_rewind, source_ack, source_rejected, spool};
}

/* --- what the admin server reads --- */

static double field(const void *stats, size_t offset)
{
    return (double)*(const uint64_t *)((const char *)stats + offset);
}

static double spool_stat(void *data)
{
    const agent_spool_link_probe_t *p = data;
    agent_spool_stats_t st;

    if (!p->link->spool)
        return 0;
    agent_spool_stats(p->link->spool, &st);
    return field(&st, p->offset);
}

static double transport_stat(void *data)
{
    const agent_spool_link_probe_t *p = data;
    agent_transport_stats_t st;

    if (!p->link->transport)
        return 0;
    agent_transport_stats(p->link->transport, &st);
    return field(&st, p->offset);
}

static int check_ingest(void *data, char *reason, size_t len)
{
    const agent_spool_link_t *l = data;

    if (!l->transport)
        return 0;
    return agent_transport_ready(l->transport, reason, len);
}

int agent_spool_link_register(agent_spool_link_t *l, kopt_metrics_t *m, kopt_admin_t *admin)
{
    static const struct {
        const char *name, *help;
        bool gauge, transport;
        size_t offset;
    } defs[] = {
        {"kopt_agent_spool_bytes", "Bytes in the spool now.", true, false,
         offsetof(agent_spool_stats_t, bytes)},
        {"kopt_agent_spool_dropped_total", "Spooled batches dropped by the size or age bound.",
         false, false, offsetof(agent_spool_stats_t, dropped_records)},
        {"kopt_agent_spool_torn_total", "Torn or corrupt spool records found at start.", false,
         false, offsetof(agent_spool_stats_t, torn)},
        {"kopt_agent_sent_batches_total", "Batches sent to ingest.", false, true,
         offsetof(agent_transport_stats_t, sent)},
        {"kopt_agent_acked_batches_total", "Batches acknowledged by ingest.", false, true,
         offsetof(agent_transport_stats_t, acked)},
        {"kopt_agent_rejected_batches_total", "Batches ingest refused for good.", false, true,
         offsetof(agent_transport_stats_t, rejected)},
        {"kopt_agent_reconnects_total", "Push streams that ended and were opened again.", false,
         true, offsetof(agent_transport_stats_t, reconnects)},
    };
    _Static_assert(sizeof(defs) / sizeof(defs[0]) == sizeof(l->probes) / sizeof(l->probes[0]),
                   "one probe a metric");
    int r = 0;

    for (size_t i = 0; r == 0 && i < sizeof(defs) / sizeof(defs[0]); i++) {
        kopt_metrics_value_fn fn = defs[i].transport ? transport_stat : spool_stat;

        l->probes[i] = (agent_spool_link_probe_t){l, defs[i].offset};
        r = defs[i].gauge
                ? kopt_metrics_gauge_func(m, defs[i].name, defs[i].help, fn, &l->probes[i])
                : kopt_metrics_counter_func(m, defs[i].name, defs[i].help, fn, &l->probes[i]);
    }
    if (r == 0)
        r = kopt_admin_add_check(admin, "ingest", check_ingest, l);
    return r;
}
