/* Fuzz target: what ingest does with every received message — decode a
 * MetricBatch, validate it, and name its subject token. Must never crash,
 * hang or leak, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>

#include <kopt/names.h>
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, size, data);
    kopt_batch_limits_t lim;
    kopt_batch_problem_t problem;
    char token[256];

    if (!b)
        return 0;
    kopt_batch_limits_default(&lim);
    /* A fixed clock so a timestamp the fuzzer finds stays interesting. */
    kopt_batch_validate(b, &lim, 1800000000, &problem);
    if (b->node)
        kopt_name_subject_token(b->node, token, sizeof(token));
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    return 0;
}
