/* The spool's on-disk formats, as pure functions over byte buffers: the record
 * codec, the segment scanner that finds every intact record (and the torn or
 * corrupt bytes between them), and the small ack and state files. No I/O and no
 * globals, so it is unit-tested and fuzzed on its own; agent/spool.c does the
 * files. All integers are little-endian. Layouts are in docs/agent.md. */
#ifndef AGENT_SPOOL_FORMAT_H
#define AGENT_SPOOL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* A segment file starts with these 8 bytes. */
#define AGENT_SPOOL_SEGMENT_MAGIC "KOPTSEG1"
#define AGENT_SPOOL_SEGMENT_HEADER 8

/* A record: magic u32, payload length u32, epoch u64, seq u64, crc32c u32 of
 * the 24 bytes before it and of the payload; then the payload. */
#define AGENT_SPOOL_RECORD_MAGIC 0x3152534bU /* "KSR1" */
#define AGENT_SPOOL_RECORD_HEADER 28

/* Ack file: magic u32, count u32, count x (epoch u64, acked-through seq u64),
 * crc32c u32 of everything before it. */
#define AGENT_SPOOL_ACK_MAGIC 0x314b434bU /* "KCK1" */
#define AGENT_SPOOL_ACK_MAX 1024

/* State file: magic u32, epoch u64, crc32c u32 of the 12 bytes before it. */
#define AGENT_SPOOL_STATE_MAGIC 0x31545348U /* "HST1" */
#define AGENT_SPOOL_STATE_SIZE 16

/* CRC-32C (Castagnoli), as in iSCSI and ext4: start with 0, chain calls. */
uint32_t agent_crc32c(uint32_t crc, const void *buf, size_t len);

typedef struct {
    uint64_t epoch;
    uint64_t seq;
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t len;           /* payload bytes */
    size_t size;            /* whole record: header + payload */
} agent_spool_record_t;

/* Fills hdr[AGENT_SPOOL_RECORD_HEADER] for a record; write hdr then payload. */
void agent_spool_record_header(uint8_t *hdr, uint64_t epoch, uint64_t seq, const void *payload,
                               uint32_t len);

/* Decodes the record at the start of buf[0..avail). 0: *out is a valid record.
 * -EAGAIN: buf ends inside what may be a record (a torn write).
 * -EBADMSG: no valid record starts here (bad magic, length over max_len, bad crc). */
int agent_spool_record_decode(const uint8_t *buf, size_t avail, uint32_t max_len,
                              agent_spool_record_t *out);

/* What a scan of one segment found. */
typedef struct {
    size_t records;     /* intact records */
    size_t valid_end;   /* end of the last intact record (or of the header) */
    size_t bad_regions; /* corrupt spans between intact records (not the tail) */
    size_t bad_bytes;   /* bytes in those spans, header damage included */
    size_t tail_bytes;  /* bytes after valid_end: a torn or corrupt tail */
    int header_ok;      /* the segment header is intact */
} agent_spool_scan_t;

/* Called for each intact record, in file order, with its offset. A non-zero
 * return stops the scan and is returned by it. */
typedef int (*agent_spool_record_fn)(void *ud, size_t off, const agent_spool_record_t *r);

/* Scans a whole segment's bytes. Corrupt spans are skipped by looking for the
 * next intact record, so a flipped byte loses one record, not the rest. */
int agent_spool_segment_scan(const uint8_t *buf, size_t len, uint32_t max_len,
                             agent_spool_record_fn fn, void *ud, agent_spool_scan_t *st);

typedef struct {
    uint64_t epoch;
    uint64_t seq; /* every record of epoch with seq <= this is acked */
} agent_spool_ack_t;

/* Encoded size of n acks. */
size_t agent_spool_ack_size(size_t n);
/* Writes n acks to buf (agent_spool_ack_size(n) bytes). */
void agent_spool_ack_encode(const agent_spool_ack_t *acks, size_t n, uint8_t *buf);
/* 0 and *n, or -EBADMSG for anything that is not a whole, intact ack file. */
int agent_spool_ack_decode(const uint8_t *buf, size_t len, agent_spool_ack_t *acks, size_t cap,
                           size_t *n);

void agent_spool_state_encode(uint64_t epoch, uint8_t *buf);
int agent_spool_state_decode(const uint8_t *buf, size_t len, uint64_t *epoch);

#endif
