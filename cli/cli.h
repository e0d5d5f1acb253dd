/* What the parts of the kopt CLI share: exit codes, the connection settings
 * (flags > KOPT_* environment > config file context), and the commands. Each
 * command is one file (cmd_<name>.c) taking its own argv after the command
 * name; main.c only dispatches. See docs/cli.md. */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_UNAUTHENTICATED 3
#define CLI_EXIT_UNAVAILABLE 4

/* Where the advisor is and how to prove who we are. Strings are owned. */
typedef struct {
    char *config_file;  /* --config, KOPT_CONFIG, else ~/.config/kopt/config.yaml */
    char *context;      /* --context, KOPT_CONTEXT, else current-context */
    char *address;      /* host:port of the advisor's gRPC port */
    char *ca_file;      /* PEM CA that signs the advisor's certificate */
    char *server_name;  /* TLS name to verify instead of the address's host */
    char *api_key_file; /* first non-comment line is the key */
    char *token_file;   /* an OAuth bearer token */
    char *api_key;      /* KOPT_API_KEY itself (never printed) */
    char *token;        /* KOPT_TOKEN itself (never printed) */
    char *cluster;      /* -c, KOPT_CLUSTER, the context's cluster */
    bool insecure;      /* plaintext gRPC (an advisor started with --insecure) */
    bool no_color;
    double timeout_s; /* per call; RunAnalysis gets ten times as much */
} cli_conn_t;

/* The options every command accepts, for getopt_long tables. */
#define CLI_GLOBAL_OPTS_N 12
extern const char cli_global_help[];

/* Handles one global option (getopt_long's `opt` and optarg): 1 when it was
 * one, 0 when not, -1 after printing a usage error. */
int cli_global_option(cli_conn_t *c, int opt, const char *arg);

/* Appends the global options to a command's getopt_long table (the table
 * must have room for CLI_GLOBAL_OPTS_N more plus the terminator). */
struct option;
void cli_global_options_add(struct option *table, size_t n_own);

/* After the flags: fills what flags left unset from KOPT_* variables, then
 * from the config file's context. 0, or an exit code after printing. */
int cli_conn_resolve(cli_conn_t *c);
void cli_conn_clear(cli_conn_t *c);

/* Returned by cli_parse after printing --help: exit 0. */
#define CLI_HELP_SHOWN (-100)

/* A command's own option: 1 handled, or an exit code after printing. */
typedef int (*cli_own_option_fn)(int opt, const char *arg, void *data);

/* Parses argv (argv[0] is the command name) with the command's own options
 * (`own`, n_own entries, short options in `shortopts`) and the global ones,
 * then resolves the connection unless `no_conn`. *first_arg is the index of
 * the first positional argument. 0, CLI_HELP_SHOWN or an exit code. */
int cli_parse(const char *cmd, int argc, char **argv, const struct option *own, size_t n_own,
              const char *shortopts, cli_own_option_fn fn, void *data, const char *help,
              cli_conn_t *c, bool no_conn, int *first_arg);

/* 1 when `v` is one of the NULL-terminated `choices`. */
bool cli_one_of(const char *v, const char *const *choices);

/* -o/--output of the commands that print one message: text, json or yaml
 * into *out; 1, or the usage error's exit code (naming `cmd`). */
int cli_text_output_option(const char *cmd, const char *arg, const char **out);

/* A usage error naming the command: "kopt <cmd>: <msg>" and a --help hint. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Colours only on a terminal and without NO_COLOR. */
bool cli_use_color(const cli_conn_t *c, FILE *f);

int cli_cmd_recommendations(int argc, char **argv);
int cli_cmd_summary(int argc, char **argv);
int cli_cmd_explain(int argc, char **argv);
int cli_cmd_analyze(int argc, char **argv);
int cli_cmd_patch(int argc, char **argv);
int cli_cmd_version(int argc, char **argv);
int cli_cmd_completion(int argc, char **argv);

#endif
