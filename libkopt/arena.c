/* The bump arena; see kopt/arena.h. Chunks are a singly linked list; an
 * allocation larger than a chunk gets a chunk of its own. */
#include <kopt/arena.h>

#include <stdint.h>
#include <stdlib.h>

struct kopt_arena_chunk {
    kopt_arena_chunk_t *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};


static void *pb_alloc(void *data, size_t size)
{
    return kopt_arena_alloc(data, size);
}


static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* freed by kopt_arena_reset */
}


void kopt_arena_init(kopt_arena_t *a, size_t chunk_bytes)
{
    a->chunks = NULL;
    a->chunk_bytes = chunk_bytes ? chunk_bytes : 64 * 1024;
    a->allocator.alloc = pb_alloc;
    a->allocator.free = pb_free;
    a->allocator.allocator_data = a;
}


void *kopt_arena_alloc(kopt_arena_t *a, size_t size)
{
    kopt_arena_chunk_t *c = a->chunks;
    size_t need = (size + 15) & ~(size_t)15;

    if (need < size)
        return NULL; /* overflow */
    if (!c || c->size - c->used < need) {
        size_t cap = need > a->chunk_bytes ? need : a->chunk_bytes;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->size = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    c->used += need;
    return c->data + c->used - need;
}


void kopt_arena_reset(kopt_arena_t *a)
{
    kopt_arena_chunk_t *c = a->chunks, *keep = NULL;

    while (c) {
        kopt_arena_chunk_t *next = c->next;
        if (!next && c->size == a->chunk_bytes)
            keep = c; /* the oldest, of regular size: reused */
        else
            free(c);
        c = next;
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->chunks = keep;
}


void kopt_arena_free(kopt_arena_t *a)
{
    while (a->chunks) {
        kopt_arena_chunk_t *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
}
