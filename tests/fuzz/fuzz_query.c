/* Fuzz target: the HTTP gateway's query strings into a ListRecommendations
 * request (advisor/api_query.c): %-decoding, fields by either spelling,
 * enum names and numbers, several values of one field turned into filter
 * text. Must never crash, hang, leak or read out of bounds, and the filter
 * it ends with must parse whenever the caller's own filter parses alone
 * (short of the filter's size limits). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "api_query.h"
#include "filter.h"

/* Whether the filter= value in `query` (the last, if several) parses alone. */
static int own_filter_parses(char *query)
{
    const char *own = "";
    char *save = NULL, err[300];
    adv_filter_t *f = NULL;
    int r;

    for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');

        if (v)
            *v++ = '\0';
        if (adv_query_unescape(kv, 1) == 0 && strcmp(kv, "filter") == 0 && v &&
            adv_query_unescape(v, 1) == 0)
            own = v;
    }
    r = adv_filter_parse(own, &f, err, sizeof(err));
    adv_filter_free(f);
    return r == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Kopt__V1__ListRecommendationsRequest *q = malloc(sizeof(*q));
    char *text = malloc(size + 1), *copy = malloc(size + 1), err[600];
    adv_filter_t *f = NULL;

    if (!q || !text || !copy)
        goto out;
    kopt__v1__list_recommendations_request__init(q);
    memcpy(text, data, size);
    text[size] = 0; /* a C string, as the gateway hands it over */
    memcpy(copy, text, size + 1);
    if (adv_query_params(&q->base, text, NULL, 0, err, sizeof(err)) == 0 &&
        adv_filter_parse(q->filter, &f, err, sizeof(err)) < 0 && !strstr(err, "longer than") &&
        !strstr(err, "comparisons") && own_filter_parses(copy))
        abort(); /* what adv_query_params added to a good filter broke it */
    adv_filter_free(f);
    protobuf_c_message_free_unpacked(&q->base, NULL);
    q = NULL;
out:
    free(q);
    free(text);
    free(copy);
    return 0;
}
