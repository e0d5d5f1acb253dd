/* An index over a serialized FileDescriptorSet: which file defines a symbol
 * ("kopt.v1.MetricBatch", "kopt.v1.Ingest.Push"), which file has a name, and
 * the file with everything it imports. Pure; the reflection service's data. */
#ifndef KOPT_DESCRIPTOR_INDEX_H
#define KOPT_DESCRIPTOR_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct kopt_descriptor_index kopt_descriptor_index_t;

/* -EINVAL when `set` does not parse; the bytes are copied. */
int kopt_descriptor_index_new(const uint8_t *set, size_t len, kopt_descriptor_index_t **out);
void kopt_descriptor_index_free(kopt_descriptor_index_t *idx);

/* File number, or -ENOENT. */
int kopt_descriptor_index_by_name(const kopt_descriptor_index_t *idx, const char *filename);
int kopt_descriptor_index_by_symbol(const kopt_descriptor_index_t *idx, const char *symbol);

/* `file` and the transitive closure of its imports, `file` first, each once;
 * writes up to `max` file numbers and returns how many, or -E2BIG. */
int kopt_descriptor_index_closure(const kopt_descriptor_index_t *idx, int file, int *files,
                                  int max);

/* The serialized FileDescriptorProto of a file. */
const uint8_t *kopt_descriptor_index_bytes(const kopt_descriptor_index_t *idx, int file,
                                           size_t *len);

#endif
