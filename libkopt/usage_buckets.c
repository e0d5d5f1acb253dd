/* Exponential usage buckets; see kopt/usage_buckets.h. */
#include <kopt/usage_buckets.h>

#include <math.h>

static int bucket(double v, double first, int n)
{
    int i;

    if (!(v >= first)) /* also NaN */
        return 0;
    i = 1 + (int)floor(log(v / first) / log(KOPT_BUCKET_GROWTH));
    /* Guard the float edge: v exactly on a bound belongs to the upper bucket. */
    if (i > 1 && v < first * pow(KOPT_BUCKET_GROWTH, i - 1))
        i--;
    else if (v >= first * pow(KOPT_BUCKET_GROWTH, i))
        i++;
    return i < n ? i : n - 1;
}

static double lower(int i, double first)
{
    return i <= 0 ? 0 : first * pow(KOPT_BUCKET_GROWTH, i - 1);
}

int kopt_cpu_bucket(double cores)
{
    return bucket(cores, KOPT_CPU_BUCKET_FIRST, KOPT_CPU_BUCKETS);
}

int kopt_memory_bucket(double bytes)
{
    return bucket(bytes, KOPT_MEMORY_BUCKET_FIRST, KOPT_MEMORY_BUCKETS);
}

double kopt_cpu_bucket_lower(int i)
{
    return lower(i, KOPT_CPU_BUCKET_FIRST);
}

double kopt_cpu_bucket_upper(int i)
{
    return i >= KOPT_CPU_BUCKETS - 1 ? lower(i, KOPT_CPU_BUCKET_FIRST) * KOPT_BUCKET_GROWTH
                                     : lower(i + 1, KOPT_CPU_BUCKET_FIRST);
}

double kopt_memory_bucket_lower(int i)
{
    return lower(i, KOPT_MEMORY_BUCKET_FIRST);
}

double kopt_memory_bucket_upper(int i)
{
    return i >= KOPT_MEMORY_BUCKETS - 1 ? lower(i, KOPT_MEMORY_BUCKET_FIRST) * KOPT_BUCKET_GROWTH
                                        : lower(i + 1, KOPT_MEMORY_BUCKET_FIRST);
}
