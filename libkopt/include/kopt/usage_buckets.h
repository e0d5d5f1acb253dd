/* The bucket scheme shared by the aggregator's hourly rollups and the
 * advisor's decaying histograms: exponential buckets growing 5 % each (as
 * the Kubernetes VPA recommender uses), so a bucket index means the same
 * usage everywhere and rollups of different hours merge by adding counts.
 *
 *   CPU:    bucket 0 holds [0, 1 millicore); bucket i >= 1 holds
 *           [0.001 * 1.05^(i-1), 0.001 * 1.05^i) cores; the last is open.
 *   memory: bucket 0 holds [0, 1 MiB); bucket i >= 1 holds
 *           [2^20 * 1.05^(i-1), 2^20 * 1.05^i) bytes; the last is open.
 * Pure. */
#ifndef KOPT_USAGE_BUCKETS_H
#define KOPT_USAGE_BUCKETS_H

#include <stdint.h>

#define KOPT_CPU_BUCKETS 260    /* last bound ~ 0.001 * 1.05^259: about 310 cores */
#define KOPT_MEMORY_BUCKETS 300 /* last bound ~ 1 MiB * 1.05^299: about 2 TiB */
#define KOPT_BUCKET_GROWTH 1.05
#define KOPT_CPU_BUCKET_FIRST 0.001        /* cores */
#define KOPT_MEMORY_BUCKET_FIRST 1048576.0 /* bytes */

/* The bucket a value falls in (negative and NaN go to 0). */
int kopt_cpu_bucket(double cores);
int kopt_memory_bucket(double bytes);

/* Bucket bounds: the lower bound of `i` and its upper bound (the lower bound
 * of i + 1; the last bucket's upper bound is reported as its lower * 1.05). */
double kopt_cpu_bucket_lower(int i);
double kopt_cpu_bucket_upper(int i);
double kopt_memory_bucket_lower(int i);
double kopt_memory_bucket_upper(int i);

#endif
