/* libFuzzer target for kopt_nats_servers_split (--nats-url lists): any input
 * gives a list whose entries are non-empty, blank-free and within the input,
 * or a clean -EINVAL; never a crash or a leak. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/nats_servers.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size), **l = NULL;
    size_t n = 0;
    int r;

    if (!s)
        return 0;
    r = kopt_nats_servers_split(s, &l, &n);
    assert(r == 0 || r == -EINVAL || r == -ENOMEM);
    if (r == 0) {
        assert(n >= 1 && n <= KOPT_NATS_MAX_SERVERS);
        for (size_t i = 0; i < n; i++) {
            assert(l[i][0] != '\0' && !strchr(l[i], ' ') && !strchr(l[i], ','));
            assert(strstr(s, l[i]) != NULL);
        }
    } else {
        assert(l == NULL && n == 0);
    }
    kopt_nats_servers_free(l, n);
    free(s);
    return 0;
}
