/* The vpa strategy: the Kubernetes VPA recommender's algorithm with its
 * default constants (pkg/recommender/logic, pkg/recommender/model), fed
 * from kopt's hourly rollups. It keeps VPA's own histograms (buckets from
 * 10 millicores and 10 MB), aggregation intervals and integer amounts, so
 * that it lands on the values VPA would report. Constants and what the
 * rollups cannot carry are listed in docs/engine.md. */
#include "engine_internal.h"

#include <math.h>

#define VPA_HALF_LIFE_S 86400.0   /* CPU and memory histogram decay */
#define VPA_MIN_SAMPLE_WEIGHT 0.1 /* cores */
#define VPA_TARGET_CPU 0.90
#define VPA_LOWER_CPU 0.50
#define VPA_UPPER_CPU 0.95
#define VPA_TARGET_MEMORY 0.90 /* of interval peaks */
#define VPA_LOWER_MEMORY 0.50
#define VPA_UPPER_MEMORY 0.95
#define VPA_MARGIN 0.15
#define VPA_POD_MIN_MILLICORES 25.0
#define VPA_POD_MIN_MEMORY 262144000.0 /* bytes (250 MiB) */
#define VPA_OOM_BUMP 1.2
#define VPA_OOM_MIN_BUMP 104857600.0 /* bytes (100 MiB) */
#define VPA_INTERVAL 86400           /* memory aggregation interval: one peak each */
#define VPA_MAX_INTERVALS 64         /* older intervals weigh < 2^-63 anyway */
#define VPA_MAX_EXPONENT 100.0       /* decay exponent before the reference moves */
/* util/histogram.go: bucket b starts at first x (1.05^b - 1) / 0.05; both
 * histograms reach 1000 cores / 1e12 bytes in 176 buckets. */
#define VPA_RATIO 1.05
#define VPA_CPU_FIRST 0.01   /* cores */
#define VPA_MEMORY_FIRST 1e7 /* bytes */
#define VPA_CPU_MAX 1000.0   /* cores */
#define VPA_MEMORY_MAX 1e12  /* bytes */
#define VPA_MAX_BUCKETS 176

#define HOUR 3600

/* A decaying histogram in VPA's bucket scheme, private to this file. */
typedef struct {
    double first;
    int n;
    bool has_ref;
    int64_t ref;                /* decay reference, a multiple of the half-life */
    double last_t, last_factor; /* an hour's buckets share one time */
    double total;
    double weight[VPA_MAX_BUCKETS];
} vpa_hist_t;

/* Where the history lies inside its first and last hours, and the
 * aggregation intervals' origin derived from it. */
typedef struct {
    int64_t first_hour, last_hour;
    int64_t t0;         /* estimated first sample: intervals start here */
    double last_sample; /* estimated start of the last sample */
    int64_t k_max;      /* newest interval holding data */
} vpa_span_t;

static void hist_init(vpa_hist_t *h, double first, double max)
{
    int i;

    h->first = first;
    h->n = (int)ceil(log(max * (VPA_RATIO - 1) / first + 1) / log(VPA_RATIO)) + 1;
    if (h->n > VPA_MAX_BUCKETS)
        h->n = VPA_MAX_BUCKETS;
    h->has_ref = false;
    h->ref = 0;
    h->last_t = 0;
    h->last_factor = 0;
    h->total = 0;
    for (i = 0; i < VPA_MAX_BUCKETS; i++)
        h->weight[i] = 0;
}

static int hist_bucket(const vpa_hist_t *h, double v)
{
    int b;

    if (!(v >= h->first))
        return 0;
    b = (int)floor(log(v * (VPA_RATIO - 1) / h->first + 1) / log(VPA_RATIO));
    return b < h->n - 1 ? b : h->n - 1;
}

static double hist_start(const vpa_hist_t *h, int b)
{
    return b <= 0 ? 0 : h->first * (pow(VPA_RATIO, b) - 1) / (VPA_RATIO - 1);
}

/* Time.Round(half-life): to the nearest multiple, halves up. */
static int64_t round_half_life(double t)
{
    return (int64_t)floor((t + VPA_HALF_LIFE_S / 2) / VPA_HALF_LIFE_S) * (int64_t)VPA_HALF_LIFE_S;
}

/* decayingHistogram.AddSample: weight x 2^((t - ref) / half-life), the
 * reference set at the first sample (rounded) and moved forward, with the
 * stored weights scaled down, when the exponent would pass 100. The factor
 * of the last t is kept: an hour's buckets share one time. */
static double decay_factor(vpa_hist_t *h, double t)
{
    double e;
    int i;

    if (h->last_factor > 0 && t == h->last_t)
        return h->last_factor;
    if (!h->has_ref) {
        h->ref = round_half_life(t);
        h->has_ref = true;
    }
    e = (t - (double)h->ref) / VPA_HALF_LIFE_S;
    if (e > VPA_MAX_EXPONENT) {
        int64_t ref = round_half_life(t);
        double f = exp2(-(double)(ref - h->ref) / VPA_HALF_LIFE_S);

        for (i = 0; i < h->n; i++)
            h->weight[i] *= f;
        h->total *= f;
        h->ref = ref;
        e = (t - (double)ref) / VPA_HALF_LIFE_S;
    }
    h->last_t = t;
    h->last_factor = exp2(e);
    return h->last_factor;
}

static void hist_add(vpa_hist_t *h, int b, double weight, double t)
{
    if (!(weight > 0))
        return;
    weight *= decay_factor(h, t);
    h->weight[b] += weight;
    h->total += weight;
}

/* histogram.Percentile: the end of the bucket where the running weight
 * reaches p x total (the last bucket reports its start). */
static double hist_percentile(const vpa_hist_t *h, double p)
{
    double threshold = p * h->total, sum = 0;
    int b, last = -1;

    for (b = 0; b < h->n; b++)
        if (h->weight[b] > 0)
            last = b;
    if (last < 0)
        return 0;
    for (b = 0; b < last; b++) {
        sum += h->weight[b];
        if (h->weight[b] > 0 && sum >= threshold)
            break;
    }
    return b < h->n - 1 ? hist_start(h, b + 1) : hist_start(h, b);
}

/* The VPA bucket of a CPU reading of m millicores (the metrics client
 * reports whole millicores, rounded up). */
static int cpu_bucket_mc(const vpa_hist_t *h, double m)
{
    return hist_bucket(h, m / 1000.0);
}

/* How kopt CPU bucket i = [lo, hi) maps onto VPA's buckets: a raw usage c
 * is read as ceil(c in millicores), so the raw values up to `edge` read as
 * VPA bucket b and those above as b + 1 (a kopt bucket, 5 % wide, never
 * spans more: VPA's are at least 10 millicores and wider than 5 %). */
typedef struct {
    bool known;
    int b;
    double lo, hi, edge;
} vpa_cpu_map_t;

static void cpu_map(const vpa_hist_t *h, int i, vpa_cpu_map_t *m)
{
    double mc;

    m->lo = i <= 0 ? 0 : kopt_cpu_bucket_lower(i);
    m->hi = i <= 0 ? KOPT_CPU_BUCKET_FIRST : kopt_cpu_bucket_upper(i);
    m->b = cpu_bucket_mc(h, ceil(m->lo * 1000.0 - 1e-6));
    m->edge = INFINITY;
    m->known = true;
    if (i >= KOPT_CPU_BUCKETS - 1 || m->b >= h->n - 1)
        return;
    /* mc: the first whole millicore of bucket b + 1. */
    mc = ceil(hist_start(h, m->b + 1) * 1000.0 - 1e-6);
    while (mc > 1 && cpu_bucket_mc(h, mc - 1) > m->b)
        mc--;
    while (cpu_bucket_mc(h, mc) <= m->b)
        mc++;
    m->edge = (mc - 1) / 1000.0;
}

/* The share of a kopt bucket's windows that VPA reads as bucket m->b:
 * usage taken as spread evenly over the bucket, but never above the hour's
 * peak when the peak lies in it. */
static double cpu_share(const vpa_cpu_map_t *m, double peak)
{
    double hi = peak >= m->lo && peak < m->hi ? peak + 1e-9 : m->hi;

    if (m->edge >= hi)
        return 1;
    return m->edge > m->lo ? (m->edge - m->lo) / (hi - m->lo) : 0;
}

/* Where an hour's windows most likely started. The rollup gives them all
 * the hour's start; per pod there are n windows of w seconds (covered
 * seconds / windows), taken as back to back: a history starts at its first
 * sample, so the first hour's windows are its last ones and end with the
 * hour; every later hour's run from its start (the last hour stops when
 * the history does). Window j starts at s + j w. */
typedef struct {
    double s, w;
    int n;
} vpa_windows_t;

static void hour_windows(int64_t first_hour, const kopt_engine_hour_t *h, vpa_windows_t *win)
{
    double pods = (double)(h->pods > 0 ? h->pods : 1);
    double n = fmax(1, floor((double)h->windows / pods + 0.5));
    double cov = fmin(HOUR, kopt_engine_hour_covered_s(h) / pods);

    win->n = (int)n;
    win->w = cov / n;
    win->s = h->start == first_hour ? (double)h->start + HOUR - cov : (double)h->start;
}

/* The interval a sample starting at t belongs to: intervals run from the
 * first sample, [t0 + k day, t0 + (k + 1) day). */
static int64_t interval_of(const vpa_span_t *sp, double t)
{
    return (int64_t)floor((t - (double)sp->t0) / VPA_INTERVAL);
}

/* The interval an hour's peak goes to: an hour whose windows straddle a
 * boundary goes where most of them start (the later one on a tie). */
static int64_t hour_interval(const vpa_span_t *sp, const kopt_engine_hour_t *h)
{
    vpa_windows_t win;
    int64_t ks, kl;
    double b, before;

    hour_windows(sp->first_hour, h, &win);
    ks = interval_of(sp, win.s);
    kl = interval_of(sp, win.s + (win.n - 1) * win.w);
    if (ks >= kl)
        return ks > 0 ? ks : 0;
    b = (double)sp->t0 + (double)kl * VPA_INTERVAL;
    before = fmin(win.n, ceil((b - win.s) / win.w));
    return (double)win.n - before >= before ? kl : ks;
}

static void find_span(const kopt_engine_container_t *c, const kopt_engine_history_t *hist,
                      int64_t now, int64_t lookback_s, vpa_span_t *sp)
{
    vpa_windows_t win;
    size_t i;

    sp->first_hour = hist->first_hour;
    sp->last_hour = hist->last_hour;
    sp->t0 = sp->first_hour;
    sp->last_sample = (double)sp->last_hour;
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];

        if (!kopt_engine_in_lookback(h, now, lookback_s))
            continue;
        hour_windows(sp->first_hour, h, &win);
        if (h->start == sp->first_hour)
            sp->t0 = (int64_t)llround(win.s);
        if (h->start == sp->last_hour)
            sp->last_sample = win.s + (win.n - 1) * win.w;
    }
    sp->k_max = 0;
}

/* Share of an hour's windows whose working set read 0 (bucket 0: < 1 MiB). */
static double zero_share(const kopt_engine_hour_t *h)
{
    size_t j;

    if (h->mem_peak_bytes == 0)
        return 1;
    for (j = 0; j < h->mem_hist_len; j++)
        if (h->mem_hist[j].index == 0)
            return (double)h->mem_hist[j].count / (double)h->windows;
    return 0;
}

/* One peak per aggregation interval, each added with the decay of the
 * interval's END (as VPA's addMemorySample adds the running peak at
 * WindowEnd). VPA only replaces a non-zero peak: an interval whose first
 * sample reads 0 bytes keeps 0; the first sample is taken as 0 when most
 * windows of the hour that opens the interval were. OOM kills: RecordOOM
 * puts max(usage x 1.2, usage + 100 MiB) into the interval. */
static void memory_peaks(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                         vpa_span_t *sp, vpa_hist_t *mem)
{
    double peak[VPA_MAX_INTERVALS] = {0}, oom[VPA_MAX_INTERVALS] = {0};
    int64_t opener[VPA_MAX_INTERVALS];
    bool seen[VPA_MAX_INTERVALS] = {false}, zero[VPA_MAX_INTERVALS] = {false};
    int64_t k, k_min;
    size_t i;
    int d;

    for (i = 0; i < c->n_hours; i++)
        if (kopt_engine_in_lookback(&c->hours[i], now, lookback_s)) {
            k = hour_interval(sp, &c->hours[i]);
            if (k > sp->k_max)
                sp->k_max = k;
        }
    k_min = sp->k_max - (VPA_MAX_INTERVALS - 1);
    for (d = 0; d < VPA_MAX_INTERVALS; d++)
        opener[d] = INT64_MAX;
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        vpa_windows_t win;
        int64_t ks, ke;

        if (!kopt_engine_in_lookback(h, now, lookback_s))
            continue;
        /* The intervals this hour holds samples of, and whether it opens them. */
        hour_windows(sp->first_hour, h, &win);
        ks = interval_of(sp, win.s);
        ke = interval_of(sp, win.s + (win.n - 1) * win.w);
        for (k = ks > k_min ? ks : k_min; k <= ke && k <= sp->k_max; k++) {
            d = (int)(k - k_min);
            if (h->start < opener[d]) {
                opener[d] = h->start;
                zero[d] = zero_share(h) > 0.5;
            }
        }
        k = hour_interval(sp, h);
        if (k < k_min)
            continue;
        d = (int)(k - k_min);
        seen[d] = true;
        peak[d] = fmax(peak[d], (double)h->mem_peak_bytes);
        if (h->oom_kills > 0) {
            double u = (double)(h->oom_usage_bytes ? h->oom_usage_bytes : h->mem_peak_bytes);

            oom[d] = fmax(oom[d], fmax(u * VPA_OOM_BUMP, u + VPA_OOM_MIN_BUMP));
        }
    }
    for (k = k_min; k <= sp->k_max; k++) {
        double v;

        d = (int)(k - k_min);
        if (!seen[d])
            continue;
        v = fmax(zero[d] ? 0 : peak[d], oom[d]);
        hist_add(mem, hist_bucket(mem, ceil(v)), 1.0,
                 (double)sp->t0 + (double)(k + 1) * VPA_INTERVAL);
    }
}

/* Where in its stretch an hour's windows weigh on average: window j weighs
 * 2^((s + j w - ref) / half-life), a geometric series, so n windows weigh
 * n x 2^((s + offset - ref) / half-life) with the offset below (0 when
 * n = 1). Full hours share n and w, so the last answer is kept. */
typedef struct {
    int n;
    double w, offset;
} vpa_decay_cache_t;

static double windows_time(const vpa_windows_t *win, vpa_decay_cache_t *cache)
{
    double q;

    if (win->n != cache->n || win->w != cache->w) {
        q = exp2(win->w / VPA_HALF_LIFE_S);
        cache->n = win->n;
        cache->w = win->w;
        cache->offset = win->n <= 1 || !(q > 1)
                            ? 0
                            : VPA_HALF_LIFE_S * log2((pow(q, win->n) - 1) / (win->n * (q - 1)));
    }
    return win->s + cache->offset;
}

/* CPU: every window is a sample of weight max(request, 0.1 core), decayed
 * from where in the hour it most likely started. */
static void cpu_samples(const kopt_engine_container_t *c, int64_t now, int64_t lookback_s,
                        const vpa_span_t *sp, vpa_hist_t *cpu)
{
    vpa_cpu_map_t map[KOPT_CPU_BUCKETS];
    vpa_decay_cache_t cache = {0, 0, 0};
    size_t i, j;

    for (j = 0; j < KOPT_CPU_BUCKETS; j++)
        map[j].known = false;
    for (i = 0; i < c->n_hours; i++) {
        const kopt_engine_hour_t *h = &c->hours[i];
        double req = h->cpu_request_cores > 0 ? h->cpu_request_cores : c->current.cpu_request_cores;
        double w = req > VPA_MIN_SAMPLE_WEIGHT ? req : VPA_MIN_SAMPLE_WEIGHT;
        vpa_windows_t win;
        double t;

        if (!kopt_engine_in_lookback(h, now, lookback_s))
            continue;
        hour_windows(sp->first_hour, h, &win);
        t = windows_time(&win, &cache);
        for (j = 0; j < h->cpu_hist_len; j++) {
            int k = h->cpu_hist[j].index < KOPT_CPU_BUCKETS ? h->cpu_hist[j].index
                                                            : KOPT_CPU_BUCKETS - 1;
            double weight = (double)h->cpu_hist[j].count * w, share;

            if (!map[k].known)
                cpu_map(cpu, k, &map[k]);
            share = cpu_share(&map[k], h->cpu_peak_cores);
            hist_add(cpu, map[k].b, weight * share, t);
            if (share < 1)
                hist_add(cpu, map[k].b + 1, weight * (1 - share), t);
        }
    }
}

/* ScaleResource: amounts are whole millicores and bytes, truncated. */
static double scale(double amount, double f)
{
    return floor(fmin(amount * f, ldexp(1, 62)));
}

/* The estimator chain on one percentile: amount, + 15 % margin, confidence
 * multiplier (1 + m/d)^x when asked, then the pod minimum. */
static double amount_of(double percentile, double unit, bool bound, double mult, double expo,
                        double d, double min_amount)
{
    double a = floor(percentile * unit);

    a += scale(a, VPA_MARGIN);
    if (bound)
        a = d > 0 ? scale(a, pow(1.0 + mult / d, expo)) : (expo > 0 ? ldexp(1, 62) : 0);
    return fmax(a, min_amount);
}

void kopt_engine_estimate_vpa(const kopt_engine_options_t *opts, const kopt_engine_container_t *c,
                              const kopt_engine_history_t *hist, size_t containers_per_pod,
                              int64_t now, kopt_engine_estimate_t *est)
{
    vpa_hist_t cpu, mem;
    vpa_span_t sp;
    double n, d, lifespan, fraction, min_mc, min_bytes;
    bool bounds = opts->confidence != KOPT_CONFIDENCE_NONE;

    hist_init(&cpu, VPA_CPU_FIRST, VPA_CPU_MAX);
    hist_init(&mem, VPA_MEMORY_FIRST, VPA_MEMORY_MAX);
    find_span(c, hist, now, opts->lookback_s, &sp);
    cpu_samples(c, now, opts->lookback_s, &sp, &cpu);
    memory_peaks(c, now, opts->lookback_s, &sp, &mem);

    /* getConfidence: min(last sample start - first, in days; samples /
     * (60 x 24)). */
    lifespan = fmax(0, sp.last_sample - (double)sp.t0) / 86400.0;
    n = (double)hist->windows / 1440.0;
    d = n < lifespan ? n : lifespan;
    est->history_days = d;

    /* Pod minimums split evenly over the pod's containers (truncated). */
    fraction = 1.0 / (double)(containers_per_pod > 0 ? containers_per_pod : 1);
    min_mc = scale(VPA_POD_MIN_MILLICORES, fraction);
    min_bytes = scale(VPA_POD_MIN_MEMORY, fraction);

    est->cpu_percentile = VPA_TARGET_CPU;
    est->memory_percentile = VPA_TARGET_MEMORY;
    est->cpu_target =
        amount_of(hist_percentile(&cpu, VPA_TARGET_CPU), 1000, false, 0, 0, d, min_mc) / 1000;
    est->cpu_lower =
        amount_of(hist_percentile(&cpu, VPA_LOWER_CPU), 1000, bounds, 0.001, -2.0, d, min_mc) /
        1000;
    est->cpu_upper =
        amount_of(hist_percentile(&cpu, VPA_UPPER_CPU), 1000, bounds, 1.0, 1.0, d, min_mc) / 1000;
    est->memory_target =
        amount_of(hist_percentile(&mem, VPA_TARGET_MEMORY), 1, false, 0, 0, d, min_bytes);
    est->memory_lower =
        amount_of(hist_percentile(&mem, VPA_LOWER_MEMORY), 1, bounds, 0.001, -2.0, d, min_bytes);
    est->memory_upper =
        amount_of(hist_percentile(&mem, VPA_UPPER_MEMORY), 1, bounds, 1.0, 1.0, d, min_bytes);
    est->oom_floor_bytes = 0;
    est->oom_bumped = false;
}
