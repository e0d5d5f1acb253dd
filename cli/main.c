/* kopt: the users' command-line client of kopt-advisor (docs/cli.md). main
 * only picks the command; each command parses its own flags. */
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"recommendations", cli_cmd_recommendations, "list recommendations (table, json, yaml, csv)"},
    {"summary", cli_cmd_summary, "totals of a cluster: requested, recommended, savings"},
    {"explain", cli_cmd_explain, "one workload's evidence, bounds, backtest and explanation"},
    {"analyze", cli_cmd_analyze, "run an analysis now and wait for it"},
    {"patch", cli_cmd_patch, "write kustomize patches that apply the recommendations"},
    {"version", cli_cmd_version, "print the version"},
    {"completion", cli_cmd_completion, "shell completion script (bash or zsh)"},
};

static void usage(FILE *f)
{
    fputs("Usage: kopt COMMAND [FLAGS]\n\nkopt asks kopt-advisor how to right-size Kubernetes "
          "workloads.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'kopt COMMAND --help' shows a command's flags and examples.\n"
          "Exit codes: 0 ok, 1 error, 2 usage, 3 unauthenticated, 4 advisor unavailable.\n",
          f);
}

/* Global flags may come before the command ("kopt --config F recommendations"):
 * the index of the command word, skipping flags and the values of those that
 * take one; argc when there is none. */
static int command_index(int argc, char **argv)
{
    static const char *const with_value[] = {"--config",
                                             "--context",
                                             "--address",
                                             "--ca-file",
                                             "--server-name",
                                             "--api-key-file",
                                             "--token-file",
                                             "--timeout",
                                             "--cluster",
                                             "-c",
                                             NULL};

    for (int i = 1; i < argc; i++) {
        bool takes = false;

        if (argv[i][0] != '-')
            return i;
        for (size_t k = 0; with_value[k]; k++)
            takes = takes || strcmp(argv[i], with_value[k]) == 0;
        if (takes)
            i++;
    }
    return argc;
}

/* gRPC C core logs connection failures on stderr on its own; the CLI says
 * what went wrong in one line instead. KOPT_GRPC_LOG=1 keeps gRPC's lines. */
static void quiet_log(gpr_log_func_args *args)
{
    (void)args;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    int at, rc;

    if (!cmd || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return cmd ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (strcmp(cmd, "--version") == 0)
        cmd = "version";
    at = strcmp(cmd, "version") == 0 ? 1 : command_index(argc, argv);
    if (at == argc) {
        fprintf(stderr, "kopt: no command after the flags (see kopt --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (at > 1) {
        /* The command word first, then the flags that came before it. */
        char *word = argv[at];

        memmove(argv + 2, argv + 1, (size_t)(at - 1) * sizeof(*argv));
        argv[1] = word;
        cmd = word;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        if (!getenv("KOPT_GRPC_LOG"))
            gpr_set_log_function(quiet_log);
        grpc_init();
        rc = commands[i].run(argc - 1, argv + 1);
        grpc_shutdown();
        if (fflush(stdout) != 0 && rc == 0)
            rc = CLI_EXIT_ERROR;
        return rc;
    }
    fprintf(stderr, "kopt: unknown command '%s' (see kopt --help)\n", cmd);
    return CLI_EXIT_USAGE;
}
