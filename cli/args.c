/* Command-line parsing shared by every command (cli.h): getopt_long over the
 * command's options plus the global ones, so global flags may come before or
 * after the command's. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_one_of(const char *v, const char *const *choices)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0)
            return true;
    return false;
}

int cli_text_output_option(const char *cmd, const char *arg, const char **out)
{
    static const char *const formats[] = {"text", "json", "yaml", NULL};

    if (!cli_one_of(arg, formats))
        return cli_usage_error(cmd, "-o: '%s' is not text, json or yaml", arg);
    *out = arg;
    return 1;
}

int cli_parse(const char *cmd, int argc, char **argv, const struct option *own, size_t n_own,
              const char *shortopts, cli_own_option_fn fn, void *data, const char *help,
              cli_conn_t *c, bool no_conn, int *first_arg)
{
    struct option table[32 + CLI_GLOBAL_OPTS_N + 1];
    char shorts[64];
    int opt, rc;

    if (n_own > 32)
        return CLI_EXIT_ERROR;
    memcpy(table, own, n_own * sizeof(*own));
    cli_global_options_add(table, n_own);
    /* Leading ':' reports a missing argument as ':' instead of '?'. */
    snprintf(shorts, sizeof(shorts), ":hc:%s", shortopts ? shortopts : "");
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, shorts, table, NULL)) != -1) {
        if (opt == 'h') {
            fputs(help, stdout);
            fputs(cli_global_help, stdout);
            return CLI_HELP_SHOWN;
        }
        if (opt == '?') {
            if (optopt)
                return cli_usage_error(cmd, "unknown flag '-%c'", optopt);
            return cli_usage_error(cmd, "unknown flag '%s'", argv[optind - 1]);
        }
        if (opt == ':')
            return cli_usage_error(cmd, "flag '%s' needs a value", argv[optind - 1]);
        rc = cli_global_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc == 1)
            continue;
        rc = fn ? fn(opt, optarg, data) : 0;
        if (rc != 1)
            return rc ? rc : cli_usage_error(cmd, "unknown flag '%s'", argv[optind - 1]);
    }
    *first_arg = optind;
    if (no_conn)
        return 0;
    return cli_conn_resolve(c);
}
