/* kopt: the users' command-line client of kopt-advisor (docs/cli.md). main
 * only picks the command; each command parses its own flags. */
#include <grpc/grpc.h>
#include <grpc/support/log.h>
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

/* gRPC C core logs connection failures on stderr on its own; the CLI says
 * what went wrong in one line instead. KOPT_GRPC_LOG=1 keeps gRPC's lines. */
static void quiet_log(gpr_log_func_args *args)
{
    (void)args;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    int rc;

    if (!cmd || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return cmd ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (strcmp(cmd, "--version") == 0)
        cmd = "version";
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
