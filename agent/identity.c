/* The agent's node name and agent id (see identity.h). */
#include "identity.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <kopt/names.h>

int agent_identify(const agent_identity_in_t *in, agent_identity_t *out)
{
    bool has_cert;

    memset(out, 0, sizeof(*out));
    snprintf(out->node, sizeof(out->node), "%s",
             in->node       ? in->node
             : in->hostname ? in->hostname
                            : "localhost");
    for (char *p = out->node; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (kopt_name_check_why(out->node, KOPT_NAME_SUBDOMAIN, &out->rule) < 0)
        return -EINVAL;
    has_cert = in->cert_uri && kopt_identity_parse(in->cert_uri, &out->cert) == 0;
    if (in->agent_id)
        snprintf(out->agent_id, sizeof(out->agent_id), "%s", in->agent_id);
    else if (has_cert)
        snprintf(out->agent_id, sizeof(out->agent_id), "%.120s.%.120s", out->cert.agent_id,
                 out->node);
    else
        snprintf(out->agent_id, sizeof(out->agent_id), "dev-agent");
    if (has_cert && strcmp(out->cert.cluster, in->cluster) != 0)
        return -EPERM;
    return 0;
}
