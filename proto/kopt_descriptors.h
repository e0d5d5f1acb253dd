/* The protobuf descriptors of kopt's API, built into kopt_proto.
 *
 * kopt_descriptor_set is a serialized google.protobuf.FileDescriptorSet (made by
 * protoc --include_imports --include_source_info) holding the kopt/v1 protos and every
 * file they import, plus grpc/health/v1/health.proto and grpc/reflection/{v1,v1alpha}/
 * reflection.proto: what a server-reflection service needs to answer for every service
 * it lists. The same bytes are installed as share/kopt/kopt.binpb. */
#ifndef KOPT_DESCRIPTORS_H
#define KOPT_DESCRIPTORS_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t kopt_descriptor_set[];
/* bytes */
extern const size_t kopt_descriptor_set_len;

#endif
