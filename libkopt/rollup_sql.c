/* The rollup statement (kopt/rollup_sql.h). The bucket expression mirrors
 * libkopt/usage_buckets.c exactly, so the advisor reads a bucket index as
 * the same usage whether it came from here or from C. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <kopt/rollup_sql.h>
#include <kopt/usage_buckets.h>

int kopt_rollup_bucket_sql(const char *value, double first, int n, char **out)
{
    /* i = 1 + floor(log(v/first)/log(1.05)), then nudged by one where the
     * float result lands on the wrong side of a bound (as usage_buckets.c);
     * arrayMap binds i, since 18.16 has no other local variables. */
    int r = asprintf(
        out,
        "toUInt16(if(NOT ((%1$s) >= %2$.17g), 0, "
        "arrayMap(i -> least(%3$d, "
        "if(i > 1 AND (%1$s) < %2$.17g * pow(%4$.17g, i - 1), i - 1, "
        "if((%1$s) >= %2$.17g * pow(%4$.17g, i), i + 1, i))), "
        "[1 + toInt64(floor(log(greatest((%1$s), %2$.17g) / %2$.17g) / log(%4$.17g)))])[1]))",
        value, first, n - 1, KOPT_BUCKET_GROWTH);

    return r < 0 ? -ENOMEM : 0;
}

int kopt_rollup_insert_sql(const kopt_rollup_query_t *q, char **sql)
{
    char *cpu = NULL, *mem = NULL;
    int r;

    *sql = NULL;
    if (!q || !q->target || !q->source || !q->where)
        return -EINVAL;
    r = kopt_rollup_bucket_sql("cpu_usage_mean_cores", KOPT_CPU_BUCKET_FIRST, KOPT_CPU_BUCKETS,
                               &cpu);
    if (r == 0)
        r = kopt_rollup_bucket_sql("toFloat64(memory_working_set_peak_bytes)",
                                   KOPT_MEMORY_BUCKET_FIRST, KOPT_MEMORY_BUCKETS, &mem);
    /* The hour is the UTC hour (intDiv), not toStartOfHour, which follows
     * the server's time zone and is off for zones of half hours. */
    if (r == 0 &&
        asprintf(
            sql,
            "INSERT INTO %1$s (cluster, namespace, workload_kind, workload_name, "
            "container, hour, window_count, pod_count, sample_count, cpu_usage_mean_cores, "
            "cpu_usage_peak_cores, cpu_usage_core_seconds, cpu_throttled_seconds, "
            "cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "
            "memory_working_set_peak_bytes, memory_rss_peak_bytes, mem_hist_index, "
            "mem_hist_count, oom_kills, restarts, cpu_request_cores, cpu_limit_cores, "
            "memory_request_bytes, memory_limit_bytes, covered_seconds, rolled_at)\n"
            "SELECT cluster, namespace, workload_kind, workload_name, container, "
            "toDateTime(intDiv(toUInt32(window_start), 3600) * 3600) AS hour, "
            "toUInt32(count()), toUInt32(uniqExact(pod)), "
            "toUInt64(sum(sample_count)), avg(cpu_usage_mean_cores), max(cpu_usage_peak_cores), "
            "sum(cpu_usage_mean_cores * toFloat64(toUInt32(window_end) - "
            "toUInt32(window_start))), sum(cpu_throttled_seconds), "
            "toUInt64(sum(cpu_throttled_periods)), toUInt64(sum(cpu_periods)), "
            "arrayMap(x -> toUInt16(x), tupleElement(sumMap([%2$s], [toUInt64(1)]), 1)), "
            "arrayMap(x -> toUInt32(x), tupleElement(sumMap([%2$s], [toUInt64(1)]), 2)), "
            "max(memory_working_set_peak_bytes), max(memory_rss_peak_bytes), "
            "arrayMap(x -> toUInt16(x), tupleElement(sumMap([%3$s], [toUInt64(1)]), 1)), "
            "arrayMap(x -> toUInt32(x), tupleElement(sumMap([%3$s], [toUInt64(1)]), 2)), "
            "toUInt32(sum(oom_kills)), toUInt32(sum(restarts)), "
            "argMax(cpu_request_cores, window_start), argMax(cpu_limit_cores, window_start), "
            "argMax(memory_request_bytes, window_start), argMax(memory_limit_bytes, window_start), "
            "toUInt64(sum(if(window_end > window_start, "
            "toUInt32(window_end) - toUInt32(window_start), 0))), %4$s\n"
            "FROM %5$s%6$s\n"
            "WHERE %7$s\n"
            "GROUP BY cluster, namespace, workload_kind, workload_name, container, hour",
            q->target, cpu, mem, q->rolled_at ? q->rolled_at : "now()", q->source,
            q->final ? " FINAL" : "", q->where) < 0) {
        *sql = NULL;
        r = -ENOMEM;
    }
    free(cpu);
    free(mem);
    return r;
}
