/* Fuzz target: ListRecommendationsRequest.filter (advisor/filter.c), text
 * a caller sends over gRPC or in ?filter=. A filter that parses is matched
 * against a workload; a refusal must say where ("filter: column N:" with N
 * inside the text or just past it). Must never crash, hang, leak or read
 * out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const adv_filter_item_t it = {.cluster = "prod",
                                  .namespace_ = "shop",
                                  .name = "web",
                                  .kind = 1,
                                  .savings = 12.5,
                                  .confidence = 0.5};
    char *text = malloc(size + 1), err[300];
    adv_filter_t *f = NULL;
    size_t col;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0; /* the filter is a C string: an embedded NUL ends it */
    if (adv_filter_parse(text, &f, err, sizeof(err)) == 0) {
        (void)adv_filter_match(f, &it);
        adv_filter_free(f);
    } else if (sscanf(err, "filter: column %zu:", &col) == 1 &&
               (col == 0 || col > strlen(text) + 1)) {
        abort(); /* a column outside the text */
    } else if (strncmp(err, "filter: ", 8) != 0) {
        abort(); /* a refusal without a sentence */
    }
    free(text);
    return 0;
}
