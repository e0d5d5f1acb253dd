/* Kubernetes quantities for what the advisor sends in cores and bytes. Both
 * round up, so a printed (or patched) value is never below the
 * recommendation: CPU to whole millicores ("250m", "2" for whole cores),
 * memory to whole MiB ("512Mi", "2Gi" when a whole number of GiB). See
 * docs/cli.md, 'Quantities'. */
#ifndef CLI_QUANTITY_H
#define CLI_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

/* Millicores for `cores`, rounded up; float noise below 1e-6 millicores is
 * ignored so 0.25 stays 250. Negative or NaN counts as 0. */
uint64_t cli_cpu_millicores(double cores);

/* "250m", "2", "0"; returns buf. */
const char *cli_cpu_quantity(double cores, char *buf, size_t len);

/* MiB for `bytes`, rounded up. */
uint64_t cli_memory_mib(uint64_t bytes);

/* "512Mi", "2Gi", "0"; returns buf. */
const char *cli_memory_quantity(uint64_t bytes, char *buf, size_t len);

#endif
