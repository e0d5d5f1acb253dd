/* `kopt-agent --once --output json`: windows as JSON lines for people and
 * scripts, one object a window, field names as in the proto's JSON form. */
#ifndef KOPT_AGENT_OUTPUT_H
#define KOPT_AGENT_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "batch.h"
#include "window.h"

int kopt_output_windows_json(FILE *f, const char *cluster, const char *node, uint64_t epoch,
                             uint64_t seq, const kopt_window_t *wins,
                             const kopt_container_meta_t *metas, size_t n);

#endif
