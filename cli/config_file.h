/* The CLI's config file: named contexts (address, CA, credentials, default
 * cluster) and the current one, like a kubeconfig. Pure parsing, no I/O, so
 * it is unit-tested and fuzzed (tests/fuzz/fuzz_cli_config.c):
 *
 *   current-context: local
 *   contexts:
 *     - name: local
 *       address: 127.0.0.1:7410
 *       ca-file: certs/ca.pem        # relative to the file's folder
 *       api-key-file: api-keys       # or token-file: FILE
 *       cluster: local
 */
#ifndef CLI_CONFIG_FILE_H
#define CLI_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_CONFIG_MAX_CONTEXTS 256

typedef struct {
    char *name, *address, *ca_file, *server_name, *api_key_file, *token_file, *cluster;
    bool insecure;
} cli_context_t;

typedef struct {
    char *current_context;
    cli_context_t *contexts;
    size_t n;
} cli_config_t;

/* Parses YAML text into *out (zeroed first). Unknown keys, wrong shapes and
 * duplicate context names are errors: -EINVAL with a sentence naming the key
 * and line in `err`; -ENOMEM. On error *out holds nothing to free. */
int cli_config_parse(const char *text, size_t len, cli_config_t *out, char *err, size_t errlen);

void cli_config_free(cli_config_t *c);

/* The context called `name`, or NULL. */
const cli_context_t *cli_config_find(const cli_config_t *c, const char *name);

#endif
