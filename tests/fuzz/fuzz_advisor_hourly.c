/* Fuzz target: the advisor's read of a container_hourly answer
 * (advisor/hourly.c on kopt/rowbinary.h's reader), the bytes a streamed
 * ClickHouse answer brings, into engine inputs. Any hour is in range, so
 * inputs get past the hour check to the grouping and sorting. Must never
 * crash, hang, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adv_hourly_part_t *part = NULL;
    adv_input_t in = {0};
    char *body = malloc(size ? size : 1);

    if (!body)
        return 0;
    memcpy(body, data, size);
    if (adv_hourly_parse(body, size, 0, INT64_C(1) << 32, &part) < 0) {
        free(body); /* freed by the parse on success only */
        return 0;
    }
    adv_hourly_emit(part, &in); /* in takes the part */
    adv_input_free(&in);
    return 0;
}
