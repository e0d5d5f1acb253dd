/* Settings for every daemon: one table of descriptors, four sources.
 *
 * A daemon declares its settings once (name, type, offset into its own plain
 * struct, default, help, flags); the loader fills the struct from, in rising
 * priority, the default, the YAML file (--config FILE or KOPT_CONFIG), KOPT_*
 * environment variables and command-line flags. See docs/configuration.md. */
#ifndef KOPT_CONFIG_H
#define KOPT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* kopt_config_load() printed --help or --version: the daemon exits 0. */
#define KOPT_CONFIG_EXIT_HELP 1
/* The exit code for any negative result of load (bad usage or config). */
#define KOPT_CONFIG_EXIT_USAGE 2
/* The YAML file may not be larger than this (bytes). */
#define KOPT_CONFIG_MAX_FILE (1024u * 1024u)

/* The field type each kind of setting fills in the daemon's struct. */
typedef enum {
    KOPT_CONFIG_STRING = 1, /* char *, NULL when unset */
    KOPT_CONFIG_INT,        /* int64_t, within [min, max] unless min == max == 0 */
    KOPT_CONFIG_BOOL,       /* bool */
    KOPT_CONFIG_DURATION,   /* uint64_t milliseconds: "250ms", "5s", "2m", "1h30m" */
    KOPT_CONFIG_BYTES,      /* uint64_t bytes: "512", "64KiB", "8MiB", "10MB" */
    KOPT_CONFIG_ENUM,       /* int: index into `choices` */
    KOPT_CONFIG_ADDRESS,    /* kopt_config_addr_t: "host:port", "[::1]:7400", ":7401" */
    KOPT_CONFIG_LIST,       /* kopt_config_list_t: "a,b,c" or a YAML sequence */
    KOPT_CONFIG_PATH,       /* char *, a file or directory path, NULL when unset */
} kopt_config_type_t;

/* Setting flags. */
#define KOPT_CONFIG_SECRET 0x1     /* value never printed: help, dumps, errors */
#define KOPT_CONFIG_RELOADABLE 0x2 /* may change on SIGHUP without a restart */
#define KOPT_CONFIG_REQUIRED 0x4   /* load fails when no source sets it */

typedef struct {
    char host[256]; /* "" means all interfaces; IPv6 without brackets */
    uint16_t port;  /* 1..65535 */
    char text[272]; /* normalised "host:port" / "[v6]:port" / ":port" ("" when unset) */
} kopt_config_addr_t;

typedef struct {
    char **items; /* owned by the config */
    size_t n;
} kopt_config_list_t;

typedef struct {
    const char *name; /* flag without "--", YAML key; env is KOPT_ + upper, '-' -> '_' */
    kopt_config_type_t type;
    size_t offset;              /* offsetof(daemon_settings_t, field) */
    const char *def;            /* default as text, parsed like any source; NULL: unset */
    const char *help;           /* one line for --help */
    unsigned flags;             /* KOPT_CONFIG_SECRET | _RELOADABLE | _REQUIRED */
    int64_t min, max;           /* KOPT_CONFIG_INT bounds */
    const char *const *choices; /* KOPT_CONFIG_ENUM: NULL-terminated list */
} kopt_config_setting_t;

typedef struct {
    const char *program; /* "kopt-ingest": --help and --version */
    const char *version; /* "0.1.0" */
    const char *summary; /* one line under the usage line; may be NULL */
    const kopt_config_setting_t *settings;
    size_t n_settings;
    size_t size; /* sizeof the daemon's settings struct */
} kopt_config_spec_t;

typedef enum {
    KOPT_CONFIG_SRC_UNSET = 0, /* no default and no source set it */
    KOPT_CONFIG_SRC_DEFAULT,
    KOPT_CONFIG_SRC_FILE,
    KOPT_CONFIG_SRC_ENV,
    KOPT_CONFIG_SRC_FLAG,
} kopt_config_source_t;

typedef struct kopt_config kopt_config_t;

/* Resolves every setting: default, then the YAML file named by --config or
 * KOPT_CONFIG, then KOPT_* variables from `envp` (NULL-terminated "K=V"
 * strings; pass `environ` in daemons, NULL for none), then the flags in argv
 * (argv[0] is the program name). Unknown flags and YAML keys are errors;
 * unknown KOPT_* variables are ignored; an empty variable counts as unset.
 * The config keeps `spec` (make it static) and copies argv and all values.
 * Returns 0 and *out; KOPT_CONFIG_EXIT_HELP after printing --help/--version
 * to `help_out` (NULL: print nothing), *out NULL; or a negative errno with a
 * one-line message in `err` that names the key, the source and the value:
 * -EINVAL bad usage or value, -ENOENT/-EACCES/-EISDIR unreadable file,
 * -EFBIG file over KOPT_CONFIG_MAX_FILE, -ENOMEM. Any negative result means
 * "print err, exit KOPT_CONFIG_EXIT_USAGE". */
int kopt_config_load(kopt_config_t **out, const kopt_config_spec_t *spec, int argc,
                     char *const argv[], char *const envp[], FILE *help_out, char *err,
                     size_t errlen);

/* Frees the config and every string and list in its settings struct. NULL ok. */
void kopt_config_free(kopt_config_t *cfg);

/* The daemon's settings struct, filled in; owned by cfg, valid until it is freed. */
const void *kopt_config_values(const kopt_config_t *cfg);

/* Positional arguments (subcommands), in order; owned by cfg. */
char *const *kopt_config_args(const kopt_config_t *cfg, int *n);

/* The YAML file that was read, or NULL. */
const char *kopt_config_file(const kopt_config_t *cfg);

/* Where a setting's value came from, or -ENOENT for an unknown name. */
int kopt_config_source(const kopt_config_t *cfg, const char *name);

/* Called by reload for each setting whose value differs. */
typedef void (*kopt_config_change_fn)(const kopt_config_setting_t *s, bool reloadable, void *data);

/* SIGHUP: resolves the settings again (file, `envp`, the original argv) into a
 * new config, *next. For each changed setting calls `cb` (may be NULL) and
 * counts it in *n_reload (RELOADABLE: apply it) or *n_restart (not reloadable:
 * needs a restart); either counter may be NULL. Settings that need a restart
 * keep their running value in *next, so *next always describes what is in
 * effect: the caller swaps it in and frees `cur`. Errors as for load; then
 * *next is NULL and `cur` stays valid and unchanged. */
int kopt_config_reload(const kopt_config_t *cur, char *const envp[], kopt_config_t **next,
                       kopt_config_change_fn cb, void *data, unsigned *n_reload,
                       unsigned *n_restart, char *err, size_t errlen);

/* Writes the effective settings as YAML, each with its source as a comment
 * ("listen: \":7400\"  # flag"), secrets as "[redacted]": --print-config. */
int kopt_config_dump(const kopt_config_t *cfg, FILE *f);

/* One line for the startup log: "name=value(source)" for each setting not at
 * its default, space-separated, secrets redacted; truncated to fit `len`. */
int kopt_config_summary(const kopt_config_t *cfg, char *buf, size_t len);

/* Writes --help: usage, then each flag with its env name, default and help. */
int kopt_config_usage(const kopt_config_spec_t *spec, FILE *f);

/* The environment variable for a setting: "admin-listen" -> "KOPT_ADMIN_LISTEN".
 * 0, or -ENAMETOOLONG when `len` is too small. */
int kopt_config_env_name(const char *name, char *buf, size_t len);

#endif
