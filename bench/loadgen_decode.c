/* Baseline (a): the ceiling of ingest's per-batch CPU work on one thread,
 * unpack plus kopt_batch_validate() plus free, over the very bytes the agents
 * send. Ingest does this and more (TLS, HTTP/2, publish) on its loop thread,
 * so its throughput is compared against this figure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/batch_validate.h>

#include "kopt/v1/metrics.pb-c.h"
#include "loadgen.h"

/* CPU seconds of this thread: the machine may be shared, the CPU cost is not. */
static double thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int lg_baseline_decode(const lg_opts_t *o, const lg_node_t *nodes, lg_baseline_result_t *res)
{
    kopt_batch_limits_t lim;
    kopt_batch_problem_t problem;
    uint8_t **buf = calloc((size_t)o->agents, sizeof(*buf));
    size_t *len = calloc((size_t)o->agents, sizeof(*len));
    uint64_t t0, end, now;
    double cpu0;
    int r = 0;

    memset(res, 0, sizeof(*res));
    if (!buf || !len) {
        r = -ENOMEM;
        goto out;
    }
    kopt_batch_limits_default(&lim);
    /* Whole batches, as ingest receives them (one variant per node). */
    for (int i = 0; i < o->agents; i++) {
        buf[i] = malloc(nodes[i].body_len[0] + LG_SUFFIX_MAX);
        if (!buf[i]) {
            r = -ENOMEM;
            goto out;
        }
        memcpy(buf[i], nodes[i].body[0], nodes[i].body_len[0]);
        len[i] = nodes[i].body_len[0] + lg_batch_suffix(buf[i] + nodes[i].body_len[0],
                                                        1 + (uint64_t)i, 1, (int64_t)time(NULL), 0);
    }
    /* First unpack alone, to tell decoding from validation in the figure. */
    cpu0 = thread_cpu();
    t0 = lg_now_ns();
    end = t0 + (uint64_t)(o->baseline_seconds * 0.5e9);
    do {
        for (int i = 0; i < o->agents; i++) {
            Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, len[i], buf[i]);

            if (b)
                res->unpack_windows += b->n_windows;
            kopt__v1__metric_batch__free_unpacked(b, NULL);
        }
        now = lg_now_ns();
    } while (now < end);
    res->unpack_seconds = thread_cpu() - cpu0;
    cpu0 = thread_cpu();
    t0 = lg_now_ns();
    end = t0 + (uint64_t)(o->baseline_seconds * 1e9);
    do {
        for (int i = 0; i < o->agents; i++) {
            Kopt__V1__MetricBatch *b = kopt__v1__metric_batch__unpack(NULL, len[i], buf[i]);

            if (!b || kopt_batch_validate(b, &lim, (int64_t)time(NULL), &problem) < 0) {
                if (res->errors++ == 0)
                    fprintf(stderr, "kopt-loadgen: decode baseline: batch refused: %s\n",
                            b ? problem.message : "does not decode");
            } else {
                res->batches++;
                res->windows += b->n_windows;
                res->bytes += len[i];
            }
            kopt__v1__metric_batch__free_unpacked(b, NULL);
        }
        now = lg_now_ns();
    } while (now < end);
    res->seconds = (double)(now - t0) / 1e9;
    res->cpu_seconds = thread_cpu() - cpu0;
out:
    for (int i = 0; buf && i < o->agents; i++)
        free(buf[i]);
    free(buf);
    free(len);
    return r;
}
