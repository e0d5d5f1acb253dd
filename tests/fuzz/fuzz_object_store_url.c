/* libFuzzer target for kopt_object_store_locate (--object-store-url): any
 * input is located or refused with a sentence; a located one has a bucket S3
 * accepts, an http(s) endpoint and a prefix without slashes at its ends;
 * never a crash or a read past the input. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/objstore_settings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *u = strndup((const char *)data, size), err[256] = "";
    kopt_object_store_settings_t s = {.region = "us-east-1", .path_style = true};
    kopt_object_store_location_t loc;
    int r;

    if (!u)
        return 0;
    s.url = u;
    r = kopt_object_store_locate(&s, &loc, err, sizeof(err));
    assert(r == 0 || r == -EINVAL || r == -ENOENT);
    if (r == 0) {
        size_t b = strlen(loc.bucket), p = strlen(loc.prefix);

        assert(b >= 3 && b <= 63);
        assert(strncmp(loc.endpoint, "http", 4) == 0);
        assert(p > 0 && loc.prefix[0] != '/' && loc.prefix[p - 1] != '/');
    } else if (r == -EINVAL) {
        assert(strncmp(err, "--object-store-url: ", 20) == 0);
    }
    free(u);
    return 0;
}
