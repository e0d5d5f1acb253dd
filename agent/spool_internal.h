/* What spool.c (appends, replay, acks, bounds) and spool_recover.c (opening:
 * state and ack files, crash recovery of segments) share. Not for callers. */
#ifndef AGENT_SPOOL_INTERNAL_H
#define AGENT_SPOOL_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "spool.h"
#include "spool_format.h"

/* Records are read back up to this size whatever max_record_bytes is now, so
 * lowering the option never turns stored records into "corrupt" ones. */
#define READ_MAX_LEN (256u << 20)

typedef struct {
    uint64_t epoch;
    uint64_t max_seq;
} seg_epoch_t;

typedef struct {
    uint32_t id;
    uint64_t size; /* bytes, header included */
    uint64_t records;
    int64_t mtime_s;  /* realtime of the last write */
    seg_epoch_t *eps; /* the epochs in it, with their highest seq */
    size_t n_eps;
} segment_t;

struct agent_spool {
    agent_spool_opts_t o;
    int dirfd, lockfd;
    segment_t *segs; /* oldest first; the last is the active one when wfd >= 0 */
    size_t n_segs, cap_segs;
    int wfd;
    uint32_t next_id;
    agent_spool_ack_t acks[AGENT_SPOOL_ACK_MAX];
    size_t n_acks;
    uint64_t epoch, next_seq;
    uint32_t cur_id; /* cursor: segment id and offset of the next record */
    uint64_t cur_off;
    size_t peeked; /* size of the record peek returned, 0 if none */
    int rfd;
    uint32_t rfd_id;
    uint8_t *buf;
    size_t buf_cap;
    uint64_t last_sync_ns;
    int dirty; /* appended since the last fsync */
    agent_spool_stats_t st;
};

typedef struct {
    agent_spool_t *sp;
    segment_t *seg;
    uint64_t count;
    uint64_t bytes;
    int fd; /* for copy_record */
} scan_ctx_t;

static inline uint64_t spool_now_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void spool_seg_name(uint32_t id, char *name, size_t cap)
{
    snprintf(name, cap, "%08u.seg", id);
}

uint64_t spool_acked_through(const agent_spool_t *sp, uint64_t epoch);
/* Notes a record of (epoch, seq) in seg's epoch list. */
int spool_seg_note(segment_t *seg, uint64_t epoch, uint64_t seq);
int spool_sync_dir(agent_spool_t *sp);
int spool_write_all(int fd, const void *buf, size_t len);
/* Replaces `name` in the spool directory through name.tmp and rename. */
int spool_write_atomic(agent_spool_t *sp, const char *name, const void *buf, size_t len, int sync);
/* Appends seg (taking its eps) to the list and the stats. */
int spool_push_segment(agent_spool_t *sp, const segment_t *seg);
/* Maps a segment file and scans it with fn. */
int spool_scan_file(agent_spool_t *sp, int fd, agent_spool_record_fn fn, scan_ctx_t *c,
                    agent_spool_scan_t *st);
/* Reads the ack file; a bad one is logged and treated as empty (replay is safe). */
void spool_load_acks(agent_spool_t *sp);
/* Picks and saves this session's epoch. */
int spool_start_epoch(agent_spool_t *sp);
/* Lists and recovers every segment, oldest first. */
int spool_recover(agent_spool_t *sp);

#endif
