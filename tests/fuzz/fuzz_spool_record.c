/* Fuzz target: the spool's recovery view of a segment file. Arbitrary bytes
 * are scanned as a segment (records, torn tails, corrupt spans) and decoded
 * as an ack file and a state file. Must never crash or read out of bounds;
 * every record it accepts must re-encode to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool_format.h"

typedef struct {
    const uint8_t *buf;
    size_t len;
} input_t;

static int check_record(void *ud, size_t off, const agent_spool_record_t *r)
{
    const input_t *in = ud;
    uint8_t hdr[AGENT_SPOOL_RECORD_HEADER];

    if (off + r->size > in->len || r->payload != in->buf + off + AGENT_SPOOL_RECORD_HEADER)
        abort();
    agent_spool_record_header(hdr, r->epoch, r->seq, r->payload, r->len);
    if (memcmp(hdr, in->buf + off, sizeof(hdr)) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    agent_spool_scan_t st;
    agent_spool_ack_t acks[AGENT_SPOOL_ACK_MAX];
    agent_spool_record_t r;
    size_t n;
    uint64_t epoch;

    agent_spool_segment_scan(data, size, 1u << 20, check_record, &in, &st);
    if (st.valid_end > size || st.valid_end + st.tail_bytes != size)
        abort();
    agent_spool_record_decode(data, size, 1u << 20, &r);
    agent_spool_ack_decode(data, size, acks, AGENT_SPOOL_ACK_MAX, &n);
    agent_spool_state_decode(data, size, &epoch);
    return 0;
}
