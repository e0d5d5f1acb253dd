/* Who is pushing: the cluster and agent id named by an agent's client
 * certificate, spiffe://kopt/cluster/<cluster>/agent/<agent-id>. Pure. */
#ifndef KOPT_IDENTITY_H
#define KOPT_IDENTITY_H

#include <stddef.h>

typedef struct {
    char cluster[254];
    char agent_id[254];
} kopt_identity_t;

/* 0, or -EINVAL when `uri` is not an agent identity of that form with a
 * valid cluster name (a DNS subdomain) and agent id. */
int kopt_identity_parse(const char *uri, kopt_identity_t *out);

#endif
