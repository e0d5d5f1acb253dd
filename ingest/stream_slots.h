/* How many Push streams each client identity holds, so one certificate
 * cannot take every stream slot (--max-streams-per-agent). Exact counts in
 * a hash table that holds only identities with a stream open: memory is
 * bounded by --max-streams. Pure; one owner thread (the loop). */
#ifndef INGEST_STREAM_SLOTS_H
#define INGEST_STREAM_SLOTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ingest_stream_slots ingest_stream_slots_t;

int ingest_stream_slots_new(ingest_stream_slots_t **out);
void ingest_stream_slots_free(ingest_stream_slots_t *sl); /* NULL ok */

/* Takes a slot for `key` ("cluster/agent-id") if it holds fewer than `max`.
 * 0; -EBUSY when it holds `max` already; -ENOMEM. */
int ingest_stream_slots_take(ingest_stream_slots_t *sl, const char *key, uint32_t max);

/* Gives back a slot taken for `key`. */
void ingest_stream_slots_put(ingest_stream_slots_t *sl, const char *key);

/* Slots `key` holds now. */
uint32_t ingest_stream_slots_held(const ingest_stream_slots_t *sl, const char *key);

#endif
