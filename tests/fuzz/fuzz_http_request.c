/* libFuzzer target for libkopt/http_request.c: arbitrary bytes, cut into
 * chunks the input itself chooses, fed as one connection's stream with
 * pipelining (reset after each complete request), tight limits so the limit
 * paths run too. Checks the invariants a server relies on. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <kopt/http.h>

static void touch(const kopt_http_request_t *r)
{
    const char *n, *v;
    size_t len;

    assert(kopt_http_request_method(r) != NULL);
    (void)(strlen(kopt_http_request_path(r)) + strlen(kopt_http_request_query(r)));
    for (size_t i = 0; kopt_http_request_header_at(r, i, &n, &v) == 0; i++)
        (void)(strlen(n) + strlen(v));
    (void)kopt_http_request_header(r, "content-length");
    (void)kopt_http_request_body(r, &len);
    assert(len <= 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kopt_http_limits_t l = {
        .max_url_bytes = 256, .max_header_bytes = 1024, .max_headers = 16, .max_body_bytes = 4096};
    kopt_http_request_t *r;
    size_t off = 1, used;
    unsigned seed;
    int rc;

    if (size < 1 || kopt_http_request_new(&l, &r) < 0)
        return 0;
    seed = data[0] | 1u; /* the first byte picks the chunk sizes */
    while (off < size) {
        size_t chunk = 1 + (seed % 61);

        seed = seed * 1103515245u + 12345u;
        if (chunk > size - off)
            chunk = size - off;
        rc = kopt_http_request_feed(r, (const char *)data + off, chunk, &used);
        assert(used <= chunk);
        if (rc < 0) {
            int status = kopt_http_request_error(r, NULL);
            assert(status == 400 || status == 413 || status == 414 || status == 431);
            break;
        }
        if (rc == 1) {
            touch(r);
            kopt_http_request_reset(r);
        } else {
            assert(used == chunk);
        }
        if (used == 0) /* cannot happen: a request completes on some byte */
            break;
        off += used; /* after a complete one, the rest of the chunk goes again */
    }
    if (off >= size)
        (void)kopt_http_request_feed(r, "", 0, &used); /* the peer closes */
    kopt_http_request_free(r);
    return 0;
}
