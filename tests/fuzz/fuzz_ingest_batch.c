/* Fuzz target: what ingest does with every received message — decode a
 * MetricBatch, validate it, leave out its too-old windows and re-pack the
 * rest, and name its subject token. Must never crash, hang or leak, whatever
 * the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <kopt/names.h>
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, size, data);
    ingest_batch_limits_t lim;
    ingest_batch_problem_t problem;
    ingest_batch_split_t split;
    char token[256];

    if (!b)
        return 0;
    ingest_batch_limits_default(&lim);
    /* A fixed clock so a timestamp the fuzzer finds stays interesting. */
    if (ingest_batch_validate(b, &lim, 1800000000, &problem) == 0) {
        size_t n = b->n_windows;
        uint8_t *buf;

        ingest_batch_split_old(b, &lim, 1800000000, &split);
        if (split.kept > n || split.kept + split.too_old != n)
            abort(); /* the split lost or invented windows */
        b->n_windows = split.kept;
        buf = malloc(kopt__v1__metric_batch__get_packed_size(b) + 1);
        if (buf) {
            kopt__v1__metric_batch__pack(b, buf);
            free(buf);
        }
        b->n_windows = n; /* free_unpacked frees every window */
    }
    if (b->node)
        kopt_name_subject_token(b->node, token, sizeof(token));
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    return 0;
}
