/* The agent's crash-safe disk queue of serialized MetricBatch messages.
 *
 * A directory of segment files (00000001.seg, ...) of checksummed records, each
 * tagged with the batch's (epoch, seq); an ack file of the highest acked seq per
 * epoch; a state file with the last epoch handed out. Appends go to the newest
 * segment; a cursor replays unacked records oldest first; a cumulative ack per
 * epoch deletes segments whose records are all acked. Bounded in bytes and age:
 * the oldest segment goes first, counted. Opening recovers from a crash: torn
 * tails are cut, corrupt spans skipped, every intact record kept.
 *
 * One thread owns a spool; one process owns a directory (-EBUSY otherwise).
 * Formats and guarantees: docs/agent.md. */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct agent_spool agent_spool_t;

typedef enum {
    AGENT_SPOOL_FSYNC_ALWAYS = 0, /* every append and ack is on disk when it returns */
    AGENT_SPOOL_FSYNC_INTERVAL,   /* at most fsync_interval_ms of appends lost in an OS crash */
    AGENT_SPOOL_FSYNC_NEVER,      /* the page cache decides; a process crash still loses nothing */
} agent_spool_fsync_t;

typedef struct {
    uint64_t max_bytes;         /* whole spool, headers included; default 256 MiB */
    uint64_t max_age_s;         /* drop segments last written longer ago; 0 = no bound */
    uint64_t segment_bytes;     /* start a new segment past this; default 4 MiB */
    uint32_t max_record_bytes;  /* largest payload; default 16 MiB */
    agent_spool_fsync_t fsync;  /* default ALWAYS */
    uint32_t fsync_interval_ms; /* for INTERVAL; default 1000 */
} agent_spool_opts_t;

/* Counters and gauges for /metrics. */
typedef struct {
    uint64_t bytes;           /* on disk now, segment headers included */
    uint64_t records;         /* stored now, acked ones not yet deleted included */
    uint64_t segments;        /* files now */
    uint64_t appended;        /* records appended since open */
    uint64_t acked_segments;  /* segments deleted because all their records were acked */
    uint64_t dropped_records; /* unacked records dropped by the size or age bound */
    uint64_t dropped_segments;
    uint64_t torn;       /* torn tails and corrupt spans found */
    uint64_t torn_bytes; /* bytes they held */
} agent_spool_stats_t;

/* A record handed out by agent_spool_peek(). */
typedef struct {
    uint64_t epoch;
    uint64_t seq;
    const uint8_t *data; /* owned by the spool: valid until the next call on it */
    size_t len;
} agent_spool_entry_t;

void agent_spool_opts_default(agent_spool_opts_t *o);

/* Opens (creating the directory if needed) and recovers a spool, and starts a
 * new epoch: max(realtime ns, previous epoch + 1), on disk before it returns.
 * `opts` NULL means defaults. -EBUSY: another process has it open. -EINVAL:
 * bad options. Other -errno from the file system. */
int agent_spool_open(const char *dir, const agent_spool_opts_t *opts, agent_spool_t **out);

/* Syncs and closes. NULL is a no-op. */
void agent_spool_free(agent_spool_t *sp);

/* This session's epoch and the next seq (1, 2, 3, ... without gaps): call it
 * once per batch, when making it, and put both in the MetricBatch. */
void agent_spool_take_id(agent_spool_t *sp, uint64_t *epoch, uint64_t *seq);

/* Appends one record; the bytes are copied. Drops the oldest segments first
 * when the spool would grow past max_bytes. -EFBIG: larger than
 * max_record_bytes or than the whole spool. -EINVAL: seq 0. Other -errno: the
 * write failed and the segment was left as it was. */
int agent_spool_append(agent_spool_t *sp, uint64_t epoch, uint64_t seq, const void *data,
                       size_t len);

/* The oldest unacked record at or after the cursor. 0, -ENOENT when there is
 * none (everything was sent), other -errno on a read error. */
int agent_spool_peek(agent_spool_t *sp, agent_spool_entry_t *out);

/* Moves the cursor past the record peek returned (after sending it). */
void agent_spool_next(agent_spool_t *sp);

/* Moves the cursor back to the oldest unacked record (after a reconnect). */
void agent_spool_rewind(agent_spool_t *sp);

/* Acks every record of `epoch` with seq <= `seq`; deletes segments whose
 * records are all acked and saves the ack state (atomically, by rename). */
int agent_spool_ack(agent_spool_t *sp, uint64_t epoch, uint64_t seq);

/* Periodic work, about once a second: the INTERVAL fsync when due, and the
 * age bound against `now_s` (realtime seconds). */
int agent_spool_maintain(agent_spool_t *sp, int64_t now_s);

void agent_spool_stats(const agent_spool_t *sp, agent_spool_stats_t *out);

#endif
