/* `kopt-agent --once --output json`: windows as JSON lines for people and
 * scripts, one object a window, field names as in the proto's JSON form
 * (times as windowStartMs/windowEndMs, 64-bit ids as strings, bytes as
 * numbers), each with the facts of its workload ("workload", with "hpa")
 * when the batch carries them. */
#ifndef AGENT_OUTPUT_H
#define AGENT_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prints the windows of one packed MetricBatch (as sent to ingest).
 * 0, -EINVAL (not a MetricBatch), -ENOMEM. */
int agent_output_batch_json(FILE *f, const uint8_t *bytes, size_t len);

#endif
