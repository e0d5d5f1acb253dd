/* Archive and backup objects (kopt/archive_object.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <kopt/archive_object.h>

#define DEFAULT_LIMIT ((size_t)4 << 30) /* uncompressed Native of one partition */

int kopt_archive_gzip(const void *in, size_t len, unsigned char **out, size_t *out_len)
{
    z_stream z;
    uLong cap = compressBound((uLong)len) + 64;
    unsigned char *buf = malloc(cap);

    if (!buf)
        return -ENOMEM;
    memset(&z, 0, sizeof(z));
    /* windowBits 15 + 16: a gzip wrapper, which ClickHouse and zcat read. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(buf);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    return 0;
}

int kopt_archive_gunzip(const void *in, size_t len, size_t limit, unsigned char **out,
                        size_t *out_len)
{
    z_stream z;
    size_t cap = len * 4 + 1024, n = 0;
    unsigned char *buf = malloc(cap);
    int zr;

    if (!buf)
        return -ENOMEM;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        free(buf);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    do {
        if (n == cap) {
            if (cap >= limit) {
                inflateEnd(&z);
                free(buf);
                return -EFBIG;
            }
            size_t nc = cap * 2 > limit ? limit : cap * 2;
            unsigned char *g = realloc(buf, nc);
            if (!g) {
                inflateEnd(&z);
                free(buf);
                return -ENOMEM;
            }
            buf = g;
            cap = nc;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
    } while (zr == Z_OK);
    /* The whole input must be one complete gzip member: a truncated or
     * corrupt object ends in Z_BUF_ERROR or Z_DATA_ERROR here. */
    bool whole = zr == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) {
        free(buf);
        return -EBADMSG;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int kopt_archive_get_verified(kopt_objstore_t *st, const char *key, uint64_t bytes, const char *sha,
                              char **data, size_t *len, char *why, size_t why_len)
{
    kopt_objstore_error_t err = {0};
    char have[65];
    int r = kopt_objstore_get(st, key, data, len, &err);

    if (r < 0) {
        if (why)
            snprintf(why, why_len, "object store: %s: %s%s%s (HTTP %ld)", key, err.code,
                     err.code[0] ? ": " : "", err.message, err.http_status);
        return r;
    }
    kopt_objstore_sha256_hex(*data, *len, have);
    if ((bytes != UINT64_MAX && *len != bytes) || strcmp(have, sha) != 0) {
        char want[24] = "any";

        if (bytes != UINT64_MAX)
            snprintf(want, sizeof(want), "%" PRIu64, bytes);
        if (why)
            snprintf(why, why_len,
                     "%s is corrupt or truncated: %zu bytes, SHA-256 %.12s..., expected %s "
                     "bytes, %.12s...",
                     key, *len, have, want, sha);
        free(*data);
        *data = NULL;
        return -EBADMSG;
    }
    return 0;
}

int kopt_archive_load_native(kopt_ch_client_t *c, const char *table, unsigned flags, const void *gz,
                             size_t gz_len, size_t limit, const char *what, char *why,
                             size_t why_len)
{
    unsigned char *native = NULL;
    size_t native_len = 0;
    kopt_ch_error_t err = {0};
    int r = kopt_archive_gunzip(gz, gz_len, limit ? limit : DEFAULT_LIMIT, &native, &native_len);

    if (r < 0) {
        if (why)
            snprintf(why, why_len, "%s: not a whole gzip stream (%s)", what,
                     r == -EFBIG ? "too large" : "corrupt or truncated");
        return r == -EFBIG || r == -ENOMEM ? r : -EBADMSG;
    }
    r = kopt_ch_insert_flags(c, table, NULL, "Native", native, native_len, flags, &err);
    free(native);
    if (r < 0 && why)
        snprintf(why, why_len, "ClickHouse: insert of %s: %s", what, err.message);
    return r;
}
