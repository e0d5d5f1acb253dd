/* kustomize patches from recommendations (kopt patch): the text of one
 * workload's patch, strategic merge or JSON 6902 (in YAML), with a header
 * comment, and the kustomization.yaml listing them. Pure text generation
 * into a FILE, so it is unit-tested without a server. docs/cli.md, 'patch'. */
#ifndef CLI_PATCH_H
#define CLI_PATCH_H

#include <stdbool.h>
#include <stdio.h>

#include "kopt/v1/advisor.pb-c.h"

typedef enum {
    CLI_PATCH_STRATEGIC = 0,
    CLI_PATCH_JSON6902,
} cli_patch_format_t;

typedef struct {
    cli_patch_format_t format;
    bool containers_only; /* no kopt.io/analysis annotation on the workload */
} cli_patch_opts_t;

/* 1 when kopt writes patches for this kind (Deployment, StatefulSet,
 * DaemonSet, CronJob), 0 otherwise. */
int cli_patch_supported(int kind);

/* "deployment-shop-web.yaml": the patch's file name. */
void cli_patch_file_name(const Kopt__V1__Recommendation *r, char *out, size_t len);

/* Writes the patch of `r`; 0, or -EINVAL for an unsupported kind. */
int cli_patch_write(FILE *f, const Kopt__V1__Recommendation *r, const cli_patch_opts_t *o);

/* The kustomization.yaml: `base` (may be NULL) as its resource, then every
 * file of recs[0..n) in order. */
void cli_patch_kustomization(FILE *f, const Kopt__V1__Recommendation *const *recs, size_t n,
                             const char *base, const cli_patch_opts_t *o);

#endif
