/* libFuzzer target for the S3 XML the object store client reads
 * (libkopt/objstore_xml.c): ListObjectsV2 pages and single elements (<Code>,
 * <Message>, <UploadId>), as bytes without a final NUL. Checks what each
 * promises: a failed page appends nothing, a truncated page has a token,
 * every key is a non-empty string, a text fits its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/objstore.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = malloc(size ? size : 1);
    kopt_objstore_entry_t *e = NULL;
    size_t n = 0;
    bool truncated = true;
    char *token = (char *)1;
    char out[32];

    if (!xml)
        abort();
    memcpy(xml, data, size);
    int r = kopt_objstore_parse_list(xml, size, &e, &n, &truncated, &token);
    if (r < 0 && (n != 0 || e != NULL || truncated || token))
        abort();
    if (r == 0) {
        if (truncated != (token != NULL))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!e[i].key || !e[i].key[0])
                abort();
        /* A second page appends to the first. */
        size_t n1 = n;
        bool t2;
        char *tok2 = NULL;
        if (kopt_objstore_parse_list(xml, size, &e, &n, &t2, &tok2) == 0 && n != 2 * n1)
            abort();
        free(tok2);
    }
    free(token);
    kopt_objstore_entries_free(e, n);

    size_t cap = size ? 1 + data[0] % sizeof(out) : sizeof(out);
    memset(out, 'x', sizeof(out));
    if (kopt_objstore_xml_text(xml, size, "Code", out, cap) == 0 && strnlen(out, cap) >= cap)
        abort();
    free(xml);
    return 0;
}
