/* What the pbjson encoder and decoder share: field access through
 * protobuf-c descriptors, names, and the well-known types' text forms. */
#ifndef KOPT_PBJSON_INTERNAL_H
#define KOPT_PBJSON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* "cpu_usage_mean_cores" -> "cpuUsageMeanCores". */
void pbjson_camel(const char *proto_name, char *out, size_t len);

/* The field of `d` named `name` in JSON (camel) or proto form, or NULL. */
const ProtobufCFieldDescriptor *pbjson_field(const ProtobufCMessageDescriptor *d, const char *name);

/* The member's address inside message `m`. */
static inline void *pbjson_member(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

/* Size of one element of a field in memory. */
size_t pbjson_elem_size(const ProtobufCFieldDescriptor *f);

/* A map entry message (key = 1, value = 2, named "...Entry")? */
int pbjson_is_map_entry(const ProtobufCMessageDescriptor *d);

/* Well-known types by full name. */
int pbjson_is_timestamp(const ProtobufCMessageDescriptor *d);
int pbjson_is_duration(const ProtobufCMessageDescriptor *d);

/* seconds/nanos <-> "2026-11-25T20:41:56.123Z" and "1.500s". */
int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *out, size_t len);
int pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);
int pbjson_format_duration(int64_t seconds, int32_t nanos, char *out, size_t len);
int pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos);

/* `j` as compact JSON, reals through kopt_pbjson_format_double; *out is
 * malloc'd and NUL-terminated. 0, -ENOMEM, or -EINVAL for a non-finite real. */
int pbjson_write(const json_t *j, char **out, size_t *len);

/* A new message of type `d`, initialised; NULL on allocation failure. */
ProtobufCMessage *pbjson_new_message(const ProtobufCMessageDescriptor *d);

#endif
