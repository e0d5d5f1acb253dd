/* libFuzzer target for the kopt CLI's config file parser (cli/config_file.c):
 * any input gives 0 or -EINVAL with a message, never a crash or a leak; on
 * success every context has a name and current-context names one of them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_config_t c;
    char err[300];
    int rc = cli_config_parse((const char *)data, size, &c, err, sizeof(err));

    if (rc == 0) {
        for (size_t i = 0; i < c.n; i++)
            if (!c.contexts[i].name || cli_config_find(&c, c.contexts[i].name) == NULL)
                abort();
        if (c.current_context && !cli_config_find(&c, c.current_context))
            abort();
        cli_config_free(&c);
    } else if ((rc != -EINVAL && rc != -ENOMEM) || (rc == -EINVAL && !err[0])) {
        abort();
    }
    return 0;
}
