/* Fuzz target: what ingest does with every received message — decode a
 * MetricBatch, validate it, leave out its too-old windows and re-pack the
 * rest, and name its subject — and the aggregator's check of that subject
 * (libkopt's batch_validate and batch_subject). Must never crash, hang or
 * leak, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <kopt/batch_subject.h>
#include <kopt/batch_validate.h>
#include <kopt/names.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, size, data);
    kopt_batch_limits_t lim;
    kopt_batch_problem_t problem;
    kopt_batch_split_t split;
    char token[256], subject[544];

    if (!b)
        return 0;
    kopt_batch_limits_default(&lim);
    /* A fixed clock so a timestamp the fuzzer finds stays interesting. */
    if (kopt_batch_validate(b, &lim, 1800000000, &problem) == 0) {
        size_t n = b->n_windows;
        uint8_t *buf;

        kopt_batch_split_old(b, &lim, 1800000000, &split);
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
    /* The subject both sides derive from the batch, and the aggregator's
     * check of it against the subject a message came on. */
    if (b->cluster && b->node &&
        kopt_batch_subject(KOPT_BATCH_SUBJECT_PREFIX, b->cluster, b->node, subject,
                           sizeof(subject)) == 0 &&
        kopt_batch_subject_check(subject, KOPT_BATCH_SUBJECT_PREFIX, b->cluster, b->node) != 0)
        abort(); /* the subject made for a batch must pass its own check */
    kopt__v1__metric_batch__free_unpacked(b, NULL);
    return 0;
}
