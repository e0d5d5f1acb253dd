/* The connection settings every command shares (cli.h): global flags, then
 * KOPT_* variables, then the config file's context, in that order of
 * precedence, and the one-line errors every command prints. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopt/tls.h>

#include "cli.h"
#include "config_file.h"

enum {
    OPT_CONFIG = 1000,
    OPT_CONTEXT,
    OPT_ADDRESS,
    OPT_CA_FILE,
    OPT_SERVER_NAME,
    OPT_API_KEY_FILE,
    OPT_TOKEN_FILE,
    OPT_INSECURE,
    OPT_TIMEOUT,
    OPT_NO_COLOR,
    OPT_CLUSTER = 'c',
};

static const struct option global_opts[CLI_GLOBAL_OPTS_N] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"server-name", required_argument, NULL, OPT_SERVER_NAME},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"help", no_argument, NULL, 'h'},
};

const char cli_global_help[] =
    "Connection (flag > KOPT_* environment > config file context):\n"
    "  -c, --cluster NAME      cluster (KOPT_CLUSTER; the context's cluster)\n"
    "      --config FILE       config file (KOPT_CONFIG; ~/.config/kopt/config.yaml)\n"
    "      --context NAME      context of the config file (KOPT_CONTEXT; current-context)\n"
    "      --address HOST:PORT advisor gRPC address (KOPT_ADDRESS)\n"
    "      --ca-file FILE      CA of the advisor's certificate (KOPT_CA_FILE)\n"
    "      --server-name NAME  TLS name to verify (KOPT_SERVER_NAME)\n"
    "      --api-key-file FILE API key (KOPT_API_KEY_FILE, or the key in KOPT_API_KEY)\n"
    "      --token-file FILE   OAuth bearer token (KOPT_TOKEN_FILE, or KOPT_TOKEN)\n"
    "      --insecure          plaintext gRPC, for an advisor run with --insecure\n"
    "      --timeout SECONDS   per call, default 30 (KOPT_TIMEOUT)\n"
    "      --no-color          no colours (also NO_COLOR)\n"
    "  -h, --help              this help\n";

void cli_global_options_add(struct option *table, size_t n_own)
{
    memcpy(table + n_own, global_opts, sizeof(global_opts));
    memset(&table[n_own + CLI_GLOBAL_OPTS_N], 0, sizeof(*table));
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

static int parse_timeout(const char *v, const char *from, double *out)
{
    char *end;
    double t;

    errno = 0;
    t = strtod(v, &end);
    if (errno || end == v || *end || !(t > 0) || t > 86400) {
        fprintf(stderr, "kopt: %s: '%s' is not a number of seconds between 0 and 86400\n", from, v);
        return -1;
    }
    *out = t;
    return 0;
}

int cli_global_option(cli_conn_t *c, int opt, const char *arg)
{
    switch (opt) {
    case OPT_CONFIG:
        set(&c->config_file, arg);
        return 1;
    case OPT_CONTEXT:
        set(&c->context, arg);
        return 1;
    case OPT_ADDRESS:
        set(&c->address, arg);
        return 1;
    case OPT_CA_FILE:
        set(&c->ca_file, arg);
        return 1;
    case OPT_SERVER_NAME:
        set(&c->server_name, arg);
        return 1;
    case OPT_API_KEY_FILE:
        set(&c->api_key_file, arg);
        return 1;
    case OPT_TOKEN_FILE:
        set(&c->token_file, arg);
        return 1;
    case OPT_INSECURE:
        c->insecure = true;
        return 1;
    case OPT_TIMEOUT:
        return parse_timeout(arg, "--timeout", &c->timeout_s) == 0 ? 1 : -1;
    case OPT_NO_COLOR:
        c->no_color = true;
        return 1;
    case OPT_CLUSTER:
        set(&c->cluster, arg);
        return 1;
    default:
        return 0;
    }
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && v[0] ? v : NULL;
}

/* A path from the config file, relative to the file's folder. */
static char *config_path(const char *file, const char *p)
{
    char *copy, *dir, *out = NULL;

    if (!p)
        return NULL;
    if (p[0] == '/')
        return strdup(p);
    copy = strdup(file);
    if (!copy)
        return NULL;
    dir = dirname(copy);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        out = NULL;
    free(copy);
    return out;
}

static void fill_path(char **dst, const char *file, const char *p)
{
    if (!*dst && p)
        *dst = config_path(file, p);
}

static int read_config(cli_conn_t *c)
{
    const char *home = getenv("HOME");
    char *text = NULL, err[400], def[1024];
    bool explicit_file = c->config_file != NULL;
    cli_config_t cfg;
    const cli_context_t *ctx = NULL;
    const char *name;
    int rc;

    if (!c->config_file && env("KOPT_CONFIG"))
        set(&c->config_file, env("KOPT_CONFIG"));
    explicit_file = explicit_file || c->config_file;
    if (!c->config_file) {
        if (!home)
            return 0;
        snprintf(def, sizeof(def), "%s/.config/kopt/config.yaml", home);
        if (access(def, F_OK) != 0)
            return 0; /* no file is fine: flags and environment suffice */
        set(&c->config_file, def);
    }
    /* kopt_tls_read_pem reads any small text file (1 MiB cap) with an error naming it. */
    rc = kopt_tls_read_pem(c->config_file, &text, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "kopt: %s: cannot read the config file %s: %s\n",
                explicit_file ? "--config" : "config", c->config_file, strerror(-rc));
        return CLI_EXIT_USAGE;
    }
    rc = cli_config_parse(text, strlen(text), &cfg, err, sizeof(err));
    free(text);
    if (rc != 0) {
        fprintf(stderr, "kopt: config file %s: %s\n", c->config_file, err);
        return CLI_EXIT_USAGE;
    }
    if (!c->context && env("KOPT_CONTEXT"))
        set(&c->context, env("KOPT_CONTEXT"));
    name = c->context ? c->context : cfg.current_context;
    if (name && !(ctx = cli_config_find(&cfg, name))) {
        fprintf(stderr, "kopt: --context: no context '%s' in %s\n", name, c->config_file);
        cli_config_free(&cfg);
        return CLI_EXIT_USAGE;
    }
    if (!ctx && cfg.n == 1)
        ctx = &cfg.contexts[0];
    if (ctx) {
        bool has_cred = c->api_key || c->token || c->api_key_file || c->token_file;

        if (!c->address && ctx->address)
            c->address = strdup(ctx->address);
        fill_path(&c->ca_file, c->config_file, ctx->ca_file);
        if (!c->server_name && ctx->server_name)
            c->server_name = strdup(ctx->server_name);
        if (!has_cred) {
            fill_path(&c->api_key_file, c->config_file, ctx->api_key_file);
            fill_path(&c->token_file, c->config_file, ctx->token_file);
        }
        if (!c->cluster && ctx->cluster)
            c->cluster = strdup(ctx->cluster);
        c->insecure = c->insecure || ctx->insecure;
    }
    cli_config_free(&cfg);
    return 0;
}

int cli_conn_resolve(cli_conn_t *c)
{
    int rc;

    if (c->api_key_file && c->token_file) {
        fprintf(stderr, "kopt: --api-key-file and --token-file: give one credential, not both\n");
        return CLI_EXIT_USAGE;
    }
    if (!c->api_key_file && !c->token_file) {
        int n = !!env("KOPT_API_KEY") + !!env("KOPT_API_KEY_FILE") + !!env("KOPT_TOKEN") +
                !!env("KOPT_TOKEN_FILE");

        if (n > 1) {
            fprintf(stderr, "kopt: set only one of KOPT_API_KEY, KOPT_API_KEY_FILE, KOPT_TOKEN "
                            "and KOPT_TOKEN_FILE\n");
            return CLI_EXIT_USAGE;
        }
        set(&c->api_key, env("KOPT_API_KEY"));
        set(&c->token, env("KOPT_TOKEN"));
        set(&c->api_key_file, env("KOPT_API_KEY_FILE"));
        set(&c->token_file, env("KOPT_TOKEN_FILE"));
    }
    if (!c->address)
        set(&c->address, env("KOPT_ADDRESS"));
    if (!c->ca_file)
        set(&c->ca_file, env("KOPT_CA_FILE"));
    if (!c->server_name)
        set(&c->server_name, env("KOPT_SERVER_NAME"));
    if (!c->cluster)
        set(&c->cluster, env("KOPT_CLUSTER"));
    if (c->timeout_s == 0 && env("KOPT_TIMEOUT") &&
        parse_timeout(env("KOPT_TIMEOUT"), "KOPT_TIMEOUT", &c->timeout_s) != 0)
        return CLI_EXIT_USAGE;
    if (c->timeout_s == 0)
        c->timeout_s = 30;
    if ((rc = read_config(c)) != 0)
        return rc;
    if (!c->address) {
        fprintf(stderr, "kopt: no advisor address: give --address HOST:PORT, KOPT_ADDRESS or a "
                        "config file context (docs/cli.md)\n");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

void cli_conn_clear(cli_conn_t *c)
{
    free(c->config_file);
    free(c->context);
    free(c->address);
    free(c->ca_file);
    free(c->server_name);
    free(c->api_key_file);
    free(c->token_file);
    if (c->api_key)
        explicit_bzero(c->api_key, strlen(c->api_key));
    free(c->api_key);
    if (c->token)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    free(c->cluster);
    memset(c, 0, sizeof(*c));
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kopt %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see kopt %s --help)\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("kopt: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_ERROR;
}

bool cli_use_color(const cli_conn_t *c, FILE *f)
{
    const char *nc = getenv("NO_COLOR");

    return !c->no_color && !(nc && nc[0]) && isatty(fileno(f));
}
