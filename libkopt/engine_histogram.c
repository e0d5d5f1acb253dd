/* Decaying histograms over the shared usage buckets (kopt/usage_buckets.h),
 * the core of the kopt and vpa strategies. Weights are stored relative to a
 * reference time, as the VPA recommender does, so they never overflow. */
#include <kopt/engine.h>

#include <math.h>

void kopt_dhist_init(kopt_dhist_t *h, kopt_dhist_kind_t kind, double half_life_s)
{
    int i;

    h->kind = kind;
    h->n_buckets = kind == KOPT_DHIST_CPU ? KOPT_CPU_BUCKETS : KOPT_MEMORY_BUCKETS;
    h->half_life_s = half_life_s > 0 ? half_life_s : 0;
    h->ref = 0;
    h->has_ref = false;
    h->min_bucket = h->n_buckets;
    h->max_bucket = -1;
    h->total = 0;
    h->last_t = 0;
    h->last_factor = 0;
    for (i = 0; i < KOPT_DHIST_MAX_BUCKETS; i++)
        h->weight[i] = 0;
}

bool kopt_dhist_empty(const kopt_dhist_t *h)
{
    return h->min_bucket > h->max_bucket || !(h->total > 0);
}

/* Moves the reference time to `ref`, scaling what is stored so that every
 * sample keeps its weight relative to the new reference. */
static void shift_reference(kopt_dhist_t *h, int64_t ref)
{
    double f = exp2(-(double)(ref - h->ref) / h->half_life_s);
    int i;

    for (i = h->min_bucket; i <= h->max_bucket; i++)
        h->weight[i] *= f;
    h->total *= f;
    h->ref = ref;
    h->last_factor = 0; /* stale */
}

void kopt_dhist_add(kopt_dhist_t *h, int index, double weight, int64_t t)
{
    double exponent = 0;

    if (!(weight > 0))
        return;
    if (index < 0)
        index = 0;
    if (index >= h->n_buckets)
        index = h->n_buckets - 1;
    if (h->half_life_s > 0) {
        if (!h->has_ref) {
            h->ref = t;
            h->has_ref = true;
        }
        if (!(h->last_factor > 0) || t != h->last_t) {
            exponent = (double)(t - h->ref) / h->half_life_s;
            if (exponent > KOPT_DHIST_MAX_EXPONENT) {
                shift_reference(h, t);
                exponent = 0;
            }
            h->last_t = t;
            h->last_factor = exp2(exponent);
        }
        weight *= h->last_factor;
    }
    h->weight[index] += weight;
    h->total += weight;
    if (index < h->min_bucket)
        h->min_bucket = index;
    if (index > h->max_bucket)
        h->max_bucket = index;
}

static double bucket_upper(const kopt_dhist_t *h, int i)
{
    if (i >= h->n_buckets - 1) /* the open last bucket: its start */
        return h->kind == KOPT_DHIST_CPU ? kopt_cpu_bucket_lower(i) : kopt_memory_bucket_lower(i);
    return h->kind == KOPT_DHIST_CPU ? kopt_cpu_bucket_upper(i) : kopt_memory_bucket_upper(i);
}

double kopt_dhist_percentile(const kopt_dhist_t *h, double p)
{
    double threshold, sum = 0;
    int i;

    if (kopt_dhist_empty(h))
        return 0;
    threshold = p * h->total;
    for (i = h->min_bucket; i < h->max_bucket; i++) {
        sum += h->weight[i];
        if (sum >= threshold)
            break;
    }
    return bucket_upper(h, i);
}
