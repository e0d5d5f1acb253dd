/* The standard services every kopt gRPC server offers besides its own:
 * grpc.health.v1.Health (Check) and server reflection, v1 and v1alpha, from
 * the FileDescriptorSet built into the binary (proto/), so buf curl, grpcurl
 * and SDK generators can discover the API without a copy of our protos. */
#ifndef KOPT_GRPC_SERVICES_H
#define KOPT_GRPC_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include <kopt/grpc_server.h>

typedef struct kopt_grpc_health kopt_grpc_health_t;

/* Registers Health/Check on `s`. Every service starts NOT_SERVING; the
 * overall status ("") is SERVING only when all registered services are.
 * Health/Watch is answered with UNIMPLEMENTED (probes use Check). */
int kopt_grpc_health_register(kopt_grpc_server_t *s, kopt_grpc_health_t **out);

/* Adds or updates a service's status ("kopt.v1.Ingest"). Loop thread. */
int kopt_grpc_health_set(kopt_grpc_health_t *h, const char *service, int serving);

void kopt_grpc_health_free(kopt_grpc_health_t *h);

typedef struct kopt_grpc_reflection kopt_grpc_reflection_t;

/* Registers ServerReflectionInfo (v1 and v1alpha) on `s`, answering from the
 * serialized FileDescriptorSet `set` (kept, not copied: a static array) and
 * listing `services` (NULL-terminated, kept). -EINVAL when the set does not
 * parse or lacks a descriptor for a listed service. */
int kopt_grpc_reflection_register(kopt_grpc_server_t *s, const uint8_t *set, size_t len,
                                  const char *const *services, kopt_grpc_reflection_t **out);

void kopt_grpc_reflection_free(kopt_grpc_reflection_t *r);

#endif
