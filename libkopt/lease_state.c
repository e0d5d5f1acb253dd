/* The lease's decision and timing, apart from NATS so a unit test covers
 * them. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kopt/lease.h>

kopt_lease_action_t kopt_lease_decide(const char *holder, const char *me)
{
    if (!holder || !*holder)
        return KOPT_LEASE_CREATE;
    return strcmp(holder, me) == 0 ? KOPT_LEASE_RENEW : KOPT_LEASE_ELSEWHERE;
}

uint64_t kopt_lease_period_ms(uint64_t ttl_ms)
{
    uint64_t p = ttl_ms / 3;

    if (p > 5000)
        p = 5000;
    return p < 100 ? 100 : p;
}

void kopt_lease_self_id(char *out, size_t len)
{
    char host[64] = "";

    if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
        snprintf(host, sizeof(host), "kopt");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "%s/%ld", host, (long)getpid());
}
