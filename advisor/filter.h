/* ListRecommendationsRequest.filter: a small subset of AIP-160 filters
 * ("namespace = shop AND savings > 12.5", "kind = Deployment OR kind =
 * StatefulSet"), parsed once per call and matched against each workload.
 * The grammar and its refusals are in docs/api.md "Filtering". */
#ifndef ADV_FILTER_H
#define ADV_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/* Filters longer than this are refused (bytes), and so are more comparisons. */
#define ADV_FILTER_MAX_LEN 2048
#define ADV_FILTER_MAX_TERMS 64

typedef struct adv_filter adv_filter_t;

/* What a filter can ask of one workload's latest recommendation. */
typedef struct {
    const char *cluster, *namespace_, *name;
    int kind;              /* kopt.v1.WorkloadKind */
    double savings;        /* savings.monthly_cost */
    double cpu_savings;    /* savings.cpu_cores */
    double memory_savings; /* savings.memory_bytes */
    double confidence;     /* the lowest of its containers' */
    bool idle;
} adv_filter_item_t;

/* Parses `text` (NUL-terminated). An empty or blank filter gives *out =
 * NULL, which matches everything. -EINVAL with a sentence in `err` that
 * starts "filter: column N:" (1-based, in bytes) for text it refuses;
 * -ENOMEM. */
int adv_filter_parse(const char *text, adv_filter_t **out, char *err, size_t errlen);

/* Whether `it` passes the filter; NULL passes everything. */
bool adv_filter_match(const adv_filter_t *f, const adv_filter_item_t *it);

/* NULL is fine. */
void adv_filter_free(adv_filter_t *f);

#endif
