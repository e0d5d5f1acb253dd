/* Comma-separated NATS URL lists into natsOptions_SetServers(); see
 * kopt/nats_servers.h. */
#include "kopt/nats_servers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

void kopt_nats_servers_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

int kopt_nats_servers_split(const char *urls, char ***out, size_t *n)
{
    char **list;
    size_t count = 0;
    const char *p = urls;

    *out = NULL;
    *n = 0;
    if (!urls)
        return -EINVAL;
    list = calloc(KOPT_NATS_MAX_SERVERS, sizeof(*list));
    if (!list)
        return -ENOMEM;
    for (;;) {
        const char *end = strchr(p, ','), *a = p, *b;

        if (!end)
            end = p + strlen(p);
        b = end;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a == b || count == KOPT_NATS_MAX_SERVERS || memchr(a, ' ', (size_t)(b - a)) ||
            memchr(a, '\t', (size_t)(b - a))) {
            kopt_nats_servers_free(list, count);
            return -EINVAL;
        }
        list[count] = strndup(a, (size_t)(b - a));
        if (!list[count]) {
            kopt_nats_servers_free(list, count);
            return -ENOMEM;
        }
        count++;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = list;
    *n = count;
    return 0;
}

natsStatus kopt_nats_servers(natsOptions *o, const char *urls)
{
    char **list = NULL;
    size_t n = 0;
    natsStatus s;
    int r = kopt_nats_servers_split(urls, &list, &n);

    if (r < 0)
        return r == -ENOMEM ? NATS_NO_MEMORY : NATS_INVALID_ARG;
    s = natsOptions_SetServers(o, (const char **)list, (int)n);
    kopt_nats_servers_free(list, n);
    return s;
}
