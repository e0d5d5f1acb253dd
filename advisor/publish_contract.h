/* The JetStream contract integrators read (docs/integrations.md): the
 * headers every message carries, the chosen encoding, the end-of-analysis
 * marker and the key-value bucket with each workload's latest
 * recommendation. Used by publish.c only. */
#ifndef ADV_PUBLISH_CONTRACT_H
#define ADV_PUBLISH_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "kopt/v1/advisor.pb-c.h"

#define ADV_KV_BUCKET "kopt_recommendations"
#define ADV_KV_SUBJECT_PREFIX "$KV." ADV_KV_BUCKET "."
/* The last token of the marker's subject and KV key; namespaces are DNS
 * labels and never hold '_', so it cannot collide with one. */
#define ADV_COMPLETED_TOKEN "_completed"
#define ADV_SCHEMA "kopt.v1"

enum { ADV_ENCODING_PROTOBUF = 0, ADV_ENCODING_JSON = 1 };

/* `m` as protobuf or proto3 JSON; *out is malloc'd. 0, -ENOMEM, -EINVAL. */
int adv_publish_encode(const ProtobufCMessage *m, int encoding, char **out, size_t *len);

/* A message on `subject` with `data` and the contract's headers:
 * Content-Type, Kopt-Type (the message's full proto name), Kopt-Schema and
 * Kopt-Analysis-Id; plus Nats-Msg-Id when `msg_id` is not NULL. */
natsStatus adv_publish_message(natsMsg **out, const char *subject, const char *data, size_t len,
                               int encoding, const char *type, const char *analysis_id,
                               const char *msg_id);

/* The KV key of a workload: <cluster>.<namespace>.<Kind>.<name>, each part
 * escaped by adv_kv_key_part(). -E2BIG when `len` is too small, -EINVAL
 * for an empty part. */
int adv_kv_key(const Kopt__V1__WorkloadRef *w, const char *kind, char *out, size_t len);

/* One key token: A-Z a-z 0-9 '-' '_' stay, every other byte (the '.' of a
 * DNS subdomain, anything odd) becomes =HH (upper-case hex), so a key splits
 * back into its parts at the dots. -E2BIG, -EINVAL for "". */
int adv_kv_key_part(const char *s, char *out, size_t len);

/* Looks the bucket up and creates it (history 1) when missing. Blocking. */
int adv_kv_ensure(jsCtx *js, int replicas, char *err, size_t errlen);

#endif
