/* Parsing the agent identity from its certificate's URI SAN. */
#include <kopt/identity.h>

#include <errno.h>
#include <string.h>

#include <kopt/names.h>

#define PREFIX "spiffe://kopt/cluster/"

int kopt_identity_parse(const char *uri, kopt_identity_t *out)
{
    const char *cluster, *slash, *agent;
    size_t clen;

    if (strncmp(uri, PREFIX, strlen(PREFIX)) != 0)
        return -EINVAL;
    cluster = uri + strlen(PREFIX);
    slash = strchr(cluster, '/');
    if (!slash || strncmp(slash, "/agent/", 7) != 0)
        return -EINVAL;
    clen = (size_t)(slash - cluster);
    agent = slash + 7;
    if (clen == 0 || clen >= sizeof(out->cluster) || strlen(agent) >= sizeof(out->agent_id))
        return -EINVAL;
    memcpy(out->cluster, cluster, clen);
    out->cluster[clen] = 0;
    strcpy(out->agent_id, agent);
    if (kopt_name_check(out->cluster, KOPT_NAME_SUBDOMAIN) < 0 ||
        kopt_name_check(out->agent_id, KOPT_NAME_AGENT_ID) < 0)
        return -EINVAL;
    return 0;
}
