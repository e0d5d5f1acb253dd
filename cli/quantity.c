/* Cores and bytes as Kubernetes quantities, rounded up (quantity.h). */
#include "quantity.h"

#include <math.h>
#include <stdio.h>

#define MIB (1024ull * 1024ull)

uint64_t cli_cpu_millicores(double cores)
{
    double m;

    if (!(cores > 0)) /* also NaN */
        return 0;
    m = cores * 1000.0;
    if (m > 1e15)
        return (uint64_t)1e15;
    /* 0.25 * 1000 may come out as 250.00000000000003: not a 251m request. */
    return (uint64_t)ceil(m - 1e-6);
}

const char *cli_cpu_quantity(double cores, char *buf, size_t len)
{
    uint64_t m = cli_cpu_millicores(cores);

    if (m % 1000 == 0)
        snprintf(buf, len, "%llu", (unsigned long long)(m / 1000));
    else
        snprintf(buf, len, "%llum", (unsigned long long)m);
    return buf;
}

uint64_t cli_memory_mib(uint64_t bytes)
{
    return bytes / MIB + (bytes % MIB != 0);
}

const char *cli_memory_quantity(uint64_t bytes, char *buf, size_t len)
{
    uint64_t mib = cli_memory_mib(bytes);

    if (mib == 0)
        snprintf(buf, len, "0");
    else if (mib % 1024 == 0)
        snprintf(buf, len, "%lluGi", (unsigned long long)(mib / 1024));
    else
        snprintf(buf, len, "%lluMi", (unsigned long long)mib);
    return buf;
}
