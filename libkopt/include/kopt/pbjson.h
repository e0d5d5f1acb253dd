/* The proto3 JSON mapping for protobuf-c messages, driven by the message
 * descriptors (no generated code per message): field names in
 * lowerCamelCase (proto names are accepted on input too), 64-bit integers
 * as strings, enums by name, bytes as base64, google.protobuf.Timestamp as
 * RFC 3339 and Duration as "1.5s", default values omitted on output. What
 * the advisor's HTTP gateway speaks. */
#ifndef KOPT_PBJSON_H
#define KOPT_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Encodes `m` as one JSON object; *out is malloc'd and NUL-terminated.
 * 0 or -ENOMEM / -EINVAL (a value JSON cannot hold, e.g. NaN). */
int kopt_pbjson_encode(const ProtobufCMessage *m, char **out, size_t *len);

/* Decodes a JSON object into a new message of type `d`; free it with
 * protobuf_c_message_free_unpacked(*out, NULL). Unknown fields, wrong types
 * and bad enum names are errors with a sentence in `err` naming the field.
 * 0 or -EINVAL / -ENOMEM. */
int kopt_pbjson_decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                       ProtobufCMessage **out, char *err, size_t errlen);

/* Sets one scalar field of `m` from text, as a URL path or query parameter
 * would: `path` is a field name (JSON or proto form), dotted into
 * sub-messages ("window.seconds"); repeated fields append. 0, -ENOENT (no
 * such field), -EINVAL (bad value, with `err`). */
int kopt_pbjson_set_field(ProtobufCMessage *m, const char *path, const char *value, char *err,
                          size_t errlen);

/* The field of `d` named `name` in JSON (lowerCamelCase) or proto form, or
 * NULL: what kopt_pbjson_set_field takes, so callers can tell that
 * "page_size" and "pageSize" are one field. */
const ProtobufCFieldDescriptor *kopt_pbjson_field(const ProtobufCMessageDescriptor *d,
                                                  const char *name);

/* The shortest "%g" text of a finite value that strtod (strtof) reads
 * back to the same bits, as the encoder writes numbers: "0.286" (not
 * 0.28600000000000003), "730" (not 730.0), "1e+21", "5e-324", "-0".
 * Returns its length, -EINVAL for NaN and infinities (the mapping writes
 * those as the strings "NaN", "Infinity", "-Infinity"), -ENOSPC when `len`
 * is short; 32 bytes always suffice. */
int kopt_pbjson_format_double(double v, char *out, size_t len);
int kopt_pbjson_format_float(float v, char *out, size_t len);

#endif
