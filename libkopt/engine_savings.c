/* Savings and their roll-ups: current minus recommended requests, priced
 * per month. Per container for one replica; a workload multiplies by its
 * replicas; namespaces and clusters are sums. */
#include <kopt/engine.h>

#include <string.h>

#define GIB 1073741824.0

double kopt_engine_monthly_cost(const kopt_engine_prices_t *prices, double cores, double bytes)
{
    return (cores * prices->cpu_core_hour + bytes / GIB * prices->memory_gib_hour) *
           prices->hours_per_month;
}

void kopt_engine_savings(const kopt_engine_prices_t *prices, const kopt_resources_t *current,
                         const kopt_resources_t *recommended, kopt_engine_savings_t *out)
{
    out->cpu_cores = current->cpu_request_cores - recommended->cpu_request_cores;
    out->memory_bytes =
        (int64_t)current->memory_request_bytes - (int64_t)recommended->memory_request_bytes;
    out->monthly_cost = kopt_engine_monthly_cost(prices, out->cpu_cores, (double)out->memory_bytes);
}

void kopt_engine_totals_init(kopt_engine_totals_t *t)
{
    memset(t, 0, sizeof(*t));
}

void kopt_engine_totals_add_workload(kopt_engine_totals_t *t, const kopt_engine_prices_t *prices,
                                     const kopt_engine_result_t *results, size_t n_containers,
                                     double replicas, bool idle)
{
    double req_cpu = 0, req_mem = 0, rec_cpu = 0, rec_mem = 0;
    size_t i;

    for (i = 0; i < n_containers; i++) {
        req_cpu += results[i].current.cpu_request_cores;
        req_mem += (double)results[i].current.memory_request_bytes;
        rec_cpu += results[i].recommended.cpu_request_cores;
        rec_mem += (double)results[i].recommended.memory_request_bytes;
    }
    t->workloads++;
    t->idle_workloads += idle ? 1 : 0;
    t->containers += (uint32_t)n_containers;
    t->requested_cpu_cores += req_cpu * replicas;
    t->requested_memory_bytes += req_mem * replicas;
    t->recommended_cpu_cores += rec_cpu * replicas;
    t->recommended_memory_bytes += rec_mem * replicas;
    t->requested_monthly_cost += kopt_engine_monthly_cost(prices, req_cpu, req_mem) * replicas;
    t->recommended_monthly_cost += kopt_engine_monthly_cost(prices, rec_cpu, rec_mem) * replicas;
    t->savings.cpu_cores = t->requested_cpu_cores - t->recommended_cpu_cores;
    t->savings.memory_bytes = (int64_t)(t->requested_memory_bytes - t->recommended_memory_bytes);
    t->savings.monthly_cost = t->requested_monthly_cost - t->recommended_monthly_cost;
}

void kopt_engine_totals_merge(kopt_engine_totals_t *t, const kopt_engine_totals_t *other)
{
    t->workloads += other->workloads;
    t->idle_workloads += other->idle_workloads;
    t->containers += other->containers;
    t->requested_cpu_cores += other->requested_cpu_cores;
    t->requested_memory_bytes += other->requested_memory_bytes;
    t->recommended_cpu_cores += other->recommended_cpu_cores;
    t->recommended_memory_bytes += other->recommended_memory_bytes;
    t->requested_monthly_cost += other->requested_monthly_cost;
    t->recommended_monthly_cost += other->recommended_monthly_cost;
    t->savings.cpu_cores = t->requested_cpu_cores - t->recommended_cpu_cores;
    t->savings.memory_bytes = (int64_t)(t->requested_memory_bytes - t->recommended_memory_bytes);
    t->savings.monthly_cost = t->requested_monthly_cost - t->recommended_monthly_cost;
}
