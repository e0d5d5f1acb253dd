/* Workload and node facts (replicas, the HPA, allocatable resources) on
 * their way from MetricBatches to the workload_facts and node_facts tables.
 *
 * Every agent repeats the facts of the workloads it sees in every batch, so
 * a Deployment spread over fifty nodes arrives fifty times a minute. A
 * worker keeps only the newest row per key until its next insert, and
 * inserts them after the windows: one row per workload and node per insert.
 * Not thread-safe: one per worker. */
#ifndef AGG_FACTS_H
#define AGG_FACTS_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/clickhouse.h>

#include "kopt/v1/metrics.pb-c.h"
#include "rows.h"

/* Newest row per key; rows are kept encoded (a replaced row's bytes stay
 * in `rows` until the set is cleared). */
typedef struct {
    kopt_ch_buf_t rows;
    struct agg_fact_slot *slots; /* open addressing, cap a power of two */
    size_t cap, used;
} agg_fact_set_t;

typedef struct {
    agg_fact_set_t workloads, nodes;
} agg_facts_t;

/* Zero-initialising is the same as _init. */
void agg_facts_init(agg_facts_t *f);
void agg_facts_free(agg_facts_t *f);
/* Forgets every row, keeping the memory for the next round. */
void agg_facts_clear(agg_facts_t *f);

/* Takes the facts of one batch. A batch without a created time has nothing
 * to version its facts with and adds none. 0 or -ENOMEM. */
int agg_facts_add_batch(agg_facts_t *f, const Kopt__V1__MetricBatch *m);

/* Rows held: distinct workloads plus distinct nodes. */
size_t agg_facts_count(const agg_facts_t *f);

/* Inserts the held rows into workload_facts and node_facts (RowBinary);
 * does not clear. 0 when there was nothing to insert or both inserts were
 * answered 200; otherwise what kopt_ch_insert returned, with *err. */
int agg_facts_insert(const agg_facts_t *f, kopt_ch_client_t *c, kopt_ch_error_t *err);

#endif
