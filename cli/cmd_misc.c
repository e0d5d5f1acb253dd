/* kopt version and kopt completion bash|zsh. The completion scripts list the
 * commands and flags; they need no server. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs("Usage: kopt version\n\nPrints the version of this kopt.\n\nExample:\n"
              "  kopt version\n",
              stdout);
        return 0;
    }
    if (argc > 1)
        return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    printf("kopt %s\n", KOPT_VERSION);
    return 0;
}

#define COMMON                                                                                     \
    "--cluster --config --context --address --ca-file --server-name "                              \
    "--api-key-file --token-file --insecure --timeout --no-color --help"

static const char bash_script[] =
    "# kopt bash completion: source <(kopt completion bash)\n"
    "_kopt() {\n"
    "  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} flags\n"
    "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
    "    COMPREPLY=($(compgen -W 'recommendations summary explain analyze patch version "
    "completion' -- \"$cur\"))\n"
    "    return\n"
    "  fi\n"
    "  case \"$cmd\" in\n"
    "    recommendations) flags='--namespace --kind --name --min-savings --sort --output "
    "--page-size' ;;\n"
    "    summary|explain) flags='--output' ;;\n"
    "    analyze) flags='--namespace --history --dry-run --output' ;;\n"
    "    patch) flags='--out --namespace --min-savings --containers-only --format --base' ;;\n"
    "    completion) COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\")); return ;;\n"
    "    *) flags='' ;;\n"
    "  esac\n"
    "  case \"${COMP_WORDS[COMP_CWORD-1]}\" in\n"
    "    -o|--output) COMPREPLY=($(compgen -W 'table wide json yaml csv text' -- \"$cur\")); "
    "return ;;\n"
    "    --sort) COMPREPLY=($(compgen -W 'savings cpu memory name' -- \"$cur\")); return ;;\n"
    "    --format) COMPREPLY=($(compgen -W 'strategic json6902' -- \"$cur\")); return ;;\n"
    "    --kind) COMPREPLY=($(compgen -W 'Deployment StatefulSet DaemonSet Job CronJob ReplicaSet "
    "Pod ProcessGroup' "
    "-- \"$cur\")); return ;;\n"
    "    --config|--ca-file|--api-key-file|--token-file|--out|--base) "
    "COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
    "  esac\n"
    "  COMPREPLY=($(compgen -W \"$flags " COMMON "\" -- \"$cur\"))\n"
    "}\n"
    "complete -F _kopt kopt\n";

static const char zsh_script[] =
    "#compdef kopt\n"
    "# kopt zsh completion: kopt completion zsh > \"${fpath[1]}/_kopt\"\n"
    "_kopt() {\n"
    "  local -a commands flags\n"
    "  commands=(recommendations summary explain analyze patch version completion)\n"
    "  if (( CURRENT == 2 )); then\n"
    "    _describe 'command' commands\n"
    "    return\n"
    "  fi\n"
    "  case $words[2] in\n"
    "    recommendations) flags=(--namespace --kind --name --min-savings --sort --output "
    "--page-size) ;;\n"
    "    summary|explain) flags=(--output) ;;\n"
    "    analyze) flags=(--namespace --history --dry-run --output) ;;\n"
    "    patch) flags=(--out --namespace --min-savings --containers-only --format --base) ;;\n"
    "    completion) compadd bash zsh; return ;;\n"
    "  esac\n"
    "  case $words[CURRENT-1] in\n"
    "    -o|--output) compadd table wide json yaml csv text; return ;;\n"
    "    --sort) compadd savings cpu memory name; return ;;\n"
    "    --format) compadd strategic json6902; return ;;\n"
    "    --config|--ca-file|--api-key-file|--token-file|--out|--base) _files; return ;;\n"
    "  esac\n"
    "  compadd -- $flags " COMMON "\n"
    "}\n"
    "_kopt \"$@\"\n";

int cli_cmd_completion(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs("Usage: kopt completion bash|zsh\n\nPrints a shell completion script.\n\n"
              "Examples:\n  source <(kopt completion bash)\n"
              "  kopt completion zsh > \"${fpath[1]}/_kopt\"\n",
              stdout);
        return 0;
    }
    if (argc != 2)
        return cli_usage_error("completion", "give one shell: bash or zsh");
    if (strcmp(argv[1], "bash") == 0)
        fputs(bash_script, stdout);
    else if (strcmp(argv[1], "zsh") == 0)
        fputs(zsh_script, stdout);
    else
        return cli_usage_error("completion", "'%s' is not bash or zsh", argv[1]);
    return 0;
}
