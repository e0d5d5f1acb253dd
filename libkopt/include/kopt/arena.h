/* A bump allocator for decoding one message at a time: protobuf-c makes
 * about ten small allocations per container window, and an arena turns them
 * into pointer bumps and one reset. Not thread-safe: one owner at a time. */
#ifndef KOPT_ARENA_H
#define KOPT_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct kopt_arena_chunk kopt_arena_chunk_t;

typedef struct {
    kopt_arena_chunk_t *chunks;   /* newest first */
    size_t chunk_bytes;           /* size of a regular chunk */
    ProtobufCAllocator allocator; /* pass to *_unpack(); its free is a no-op */
} kopt_arena_t;

/* `chunk_bytes` 0: 64 KiB. Allocates nothing until first used. */
void kopt_arena_init(kopt_arena_t *a, size_t chunk_bytes);

/* Memory for `size` bytes, 16-byte aligned, or NULL. */
void *kopt_arena_alloc(kopt_arena_t *a, size_t size);

/* Forgets every allocation; keeps the first chunk for reuse. */
void kopt_arena_reset(kopt_arena_t *a);

/* Frees everything. */
void kopt_arena_free(kopt_arena_t *a);

#endif
