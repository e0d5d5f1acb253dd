/* The agent's two names: the node it measures and the agent id it sends
 * under, from its settings, the host name and its client certificate. Pure:
 * the caller reads the host name and the certificate. */
#ifndef AGENT_IDENTITY_H
#define AGENT_IDENTITY_H

#include <kopt/identity.h>

typedef struct {
    const char *node;     /* --node, or NULL: the host name */
    const char *hostname; /* gethostname(), or NULL when it failed: "localhost" */
    const char *agent_id; /* --agent-id, or NULL */
    const char *cert_uri; /* the client certificate's URI SAN; NULL without one */
    const char *cluster;  /* --cluster */
} agent_identity_in_t;

typedef struct {
    char node[254];       /* lower case, a valid Kubernetes node name */
    char agent_id[254];   /* the batches' agent_id */
    const char *rule;     /* -EINVAL: the naming rule the node name breaks */
    kopt_identity_t cert; /* -EPERM: what the certificate says (its cluster) */
} agent_identity_t;

/* Node name: the setting, else the host name, in lower case. Agent id: the
 * setting, else the certificate's id with ".<node>" appended (unique per node
 * when every agent of a DaemonSet shares one certificate), else "dev-agent".
 * 0; -EINVAL when the node name is not a valid subdomain; -EPERM when the
 * certificate names another cluster (ingest would refuse every batch). */
int agent_identify(const agent_identity_in_t *in, agent_identity_t *out);

#endif
