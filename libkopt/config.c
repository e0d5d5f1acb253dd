/* Settings loader: default < YAML file < KOPT_* env < flags, driven by the
 * daemon's table of descriptors. Also --help, reload (what changed, what needs
 * a restart) and the effective-settings dump. Values: config_value.c; the
 * file: config_yaml.c. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/url.h>

#define NAME_MAX_LEN 64 /* setting names; longer input gets no suggestion */

static const char *const source_names[] = {"unset", "default", "file", "env", "flag"};

int kcfg_error(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err || errlen == 0)
        return r;
    n = snprintf(err, errlen, "config: ");
    if (n > 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return r;
}

int kopt_config_env_name(const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);

    if (len < n + 6)
        return -ENAMETOOLONG;
    memcpy(buf, "KOPT_", 5);
    for (size_t i = 0; i <= n; i++)
        buf[5 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    return 0;
}

int kcfg_find(const kopt_config_spec_t *spec, const char *name, size_t n)
{
    for (size_t i = 0; i < spec->n_settings; i++) {
        const char *s = spec->settings[i].name;
        if (strlen(s) == n && memcmp(s, name, n) == 0)
            return (int)i;
    }
    return -1;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[NAME_MAX_LEN + 1];

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], tmp;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            tmp = row[j];
            row[j] = best;
            diag = tmp;
        }
    }
    return row[lb];
}

const char *kcfg_suggest(const kopt_config_spec_t *spec, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    if (strlen(name) > NAME_MAX_LEN)
        return NULL;
    for (size_t i = 0; i < spec->n_settings; i++) {
        const char *cand = spec->settings[i].name;
        size_t d = edit_distance(name, cand), n = strlen(cand);
        if (d < best_d && d < n && (d <= 2 || d <= n / 3)) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

int kcfg_bad_value(const kopt_config_setting_t *s, const char *text, const char *from,
                   const char *why, int r, char *err, size_t errlen)
{
    char q[KCFG_QUOTE_MAX * 4 + 16];

    if (r == -ENOMEM)
        return kcfg_error(err, errlen, r, "%s: out of memory (from %s)", s->name, from);
    kcfg_quote(s, text, q, sizeof(q));
    return kcfg_error(err, errlen, r, "%s: invalid %s %s (from %s): %s", s->name,
                      kcfg_type_name(s->type), q, from, why);
}

void kcfg_put(kopt_config_t *c, int idx, kcfg_value_t *v, kopt_config_source_t src)
{
    kcfg_store(&c->spec->settings[idx], c->values, v);
    c->sources[idx] = (unsigned char)src;
}

int kcfg_set(kopt_config_t *c, int idx, const char *text, kopt_config_source_t src,
             const char *from, char *err, size_t errlen)
{
    const kopt_config_setting_t *s = &c->spec->settings[idx];
    char why[KCFG_WHY_MAX];
    kcfg_value_t v;
    int r = kcfg_parse(s, text, &v, why, sizeof(why));

    if (r < 0)
        return kcfg_bad_value(s, text, from, why, r, err, errlen);
    kcfg_put(c, idx, &v, src);
    return 0;
}

static bool name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > NAME_MAX_LEN || !strcmp(n, "config") || !strcmp(n, "help") ||
        !strcmp(n, "version"))
        return false;
    for (; *n; n++) {
        if (!islower((unsigned char)*n) && !isdigit((unsigned char)*n) && *n != '-')
            return false;
    }
    return true;
}

/* The table is the daemon's code: a mistake in it is reported, not crashed on. */
static int check_spec(const kopt_config_spec_t *spec, char *err, size_t errlen)
{
    if (!spec || (!spec->settings && spec->n_settings))
        return kcfg_error(err, errlen, -EINVAL, "bad settings table");
    for (size_t i = 0; i < spec->n_settings; i++) {
        const kopt_config_setting_t *s = &spec->settings[i];
        if (!name_ok(s->name) || kcfg_find(spec, s->name, strlen(s->name)) != (int)i)
            return kcfg_error(err, errlen, -EINVAL, "bad settings table: name #%zu", i);
        if (s->type < KOPT_CONFIG_STRING || s->type > KOPT_CONFIG_PATH ||
            s->offset + kcfg_field_size(s->type) > spec->size ||
            (s->type == KOPT_CONFIG_ENUM && (!s->choices || !s->choices[0])))
            return kcfg_error(err, errlen, -EINVAL, "bad settings table: %s", s->name);
    }
    return 0;
}

static kopt_config_t *config_new(const kopt_config_spec_t *spec, int argc, char *const argv[])
{
    kopt_config_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->spec = spec;
    c->values = calloc(1, spec->size ? spec->size : 1);
    c->sources = calloc(spec->n_settings + 1, 1);
    c->argv = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof(char *));
    c->args = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof(char *));
    if (!c->values || !c->sources || !c->argv || !c->args) {
        kopt_config_free(c);
        return NULL;
    }
    for (int i = 0; i < argc; i++) {
        c->argc = i + 1;
        if (!(c->argv[i] = strdup(argv[i] ? argv[i] : ""))) {
            kopt_config_free(c);
            return NULL;
        }
    }
    return c;
}

void kopt_config_free(kopt_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->values && i < c->spec->n_settings; i++)
        kcfg_clear(&c->spec->settings[i], c->values);
    for (int i = 0; c->argv && i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->args);
    free(c->values);
    free(c->sources);
    free(c->file);
    free(c);
}

static int apply_defaults(kopt_config_t *c, char *err, size_t errlen)
{
    int r;

    for (size_t i = 0; i < c->spec->n_settings; i++) {
        const char *def = c->spec->settings[i].def;
        if (def &&
            (r = kcfg_set(c, (int)i, def, KOPT_CONFIG_SRC_DEFAULT, "default", err, errlen)) < 0)
            return r;
    }
    return 0;
}

/* --help, -h or --version anywhere before "--" wins over every other flag. */
static int wants_help(const kopt_config_t *c, FILE *out)
{
    for (int i = 1; i < c->argc && strcmp(c->argv[i], "--") != 0; i++) {
        const char *a = c->argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (out)
                kopt_config_usage(c->spec, out);
            return KOPT_CONFIG_EXIT_HELP;
        }
        if (!strcmp(a, "--version")) {
            if (out)
                fprintf(out, "%s %s\n", c->spec->program ? c->spec->program : "kopt",
                        c->spec->version ? c->spec->version : "");
            return KOPT_CONFIG_EXIT_HELP;
        }
    }
    return 0;
}

static int unknown_flag(const kopt_config_t *c, const char *arg, size_t n, char *err, size_t errlen)
{
    char name[NAME_MAX_LEN + 2], flag[KCFG_QUOTE_MAX + 4], q[KCFG_QUOTE_MAX * 4 + 16];
    const char *sug = NULL;

    /* Only the name: "--clickhouse-pasword=hunter2" must not print the value. */
    snprintf(flag, sizeof(flag), "%.*s", (int)(n + 2 < sizeof(flag) ? n + 2 : sizeof(flag) - 1),
             arg);
    kcfg_quote(NULL, flag, q, sizeof(q));
    if (n <= NAME_MAX_LEN) {
        memcpy(name, arg + 2, n);
        name[n] = '\0';
        sug = kcfg_suggest(c->spec, name);
    }
    if (sug)
        return kcfg_error(err, errlen, -EINVAL, "unknown flag %s (did you mean --%s?)", q, sug);
    return kcfg_error(err, errlen, -EINVAL, "unknown flag %s (see --help)", q);
}

/* Walks argv. The first pass (apply false) checks every flag, collects the
 * positional arguments and the --config file; the second sets the values. */
static int walk_flags(kopt_config_t *c, bool apply, const char **config, char *err, size_t errlen)
{
    bool rest = false;
    char from[NAME_MAX_LEN + 16];
    int r;

    for (int i = 1; i < c->argc; i++) {
        const char *a = c->argv[i], *name = a + 2, *eq, *val;
        size_t n;
        int idx;
        if (rest || a[0] != '-' || a[1] == '\0') {
            if (!apply)
                c->args[c->nargs++] = c->argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            rest = true;
            continue;
        }
        if (a[1] != '-')
            return kcfg_error(err, errlen, -EINVAL, "unknown flag \"%.*s\" (flags start with --)",
                              (int)strcspn(a, "=\"\\"), a);
        eq = strchr(name, '=');
        n = eq ? (size_t)(eq - name) : strlen(name);
        val = eq ? eq + 1 : NULL;
        idx = kcfg_find(c->spec, name, n);
        if (idx < 0 && !(n == 6 && !strncmp(name, "config", 6)))
            return unknown_flag(c, a, n, err, errlen);
        if (!val && idx >= 0 && c->spec->settings[idx].type == KOPT_CONFIG_BOOL)
            val = "true"; /* a bare bool flag: --insecure */
        if (!val && i + 1 >= c->argc)
            return kcfg_error(err, errlen, -EINVAL, "flag --%.*s needs a value", (int)n, name);
        if (!val)
            val = c->argv[++i];
        if (idx < 0) {
            *config = val;
            continue;
        }
        snprintf(from, sizeof(from), "flag --%s", c->spec->settings[idx].name);
        if (apply && (r = kcfg_set(c, idx, val, KOPT_CONFIG_SRC_FLAG, from, err, errlen)) < 0)
            return r;
    }
    return 0;
}

static int apply_env(kopt_config_t *c, char *const envp[], char *err, size_t errlen)
{
    char env[NAME_MAX_LEN + 8], from[NAME_MAX_LEN + 16];
    int r;

    for (size_t i = 0; envp && i < c->spec->n_settings; i++) {
        const char *val = NULL;
        size_t n;
        kopt_config_env_name(c->spec->settings[i].name, env, sizeof(env));
        n = strlen(env);
        for (char *const *e = envp; *e; e++) {
            if (!strncmp(*e, env, n) && (*e)[n] == '=')
                val = *e + n + 1; /* the last one wins, as in getenv() order */
        }
        if (!val || !*val)
            continue;
        snprintf(from, sizeof(from), "env %s", env);
        if ((r = kcfg_set(c, (int)i, val, KOPT_CONFIG_SRC_ENV, from, err, errlen)) < 0)
            return r;
    }
    return 0;
}

static const char *env_config(char *const envp[])
{
    const char *val = NULL;

    for (char *const *e = envp; e && *e; e++) {
        if (!strncmp(*e, "KOPT_CONFIG=", 12))
            val = *e + 12;
    }
    return val && *val ? val : NULL;
}

static int check_required(const kopt_config_t *c, char *err, size_t errlen)
{
    char env[NAME_MAX_LEN + 8];

    for (size_t i = 0; i < c->spec->n_settings; i++) {
        const kopt_config_setting_t *s = &c->spec->settings[i];
        if (!(s->flags & KOPT_CONFIG_REQUIRED) || c->sources[i] != KOPT_CONFIG_SRC_UNSET)
            continue;
        kopt_config_env_name(s->name, env, sizeof(env));
        return kcfg_error(err, errlen, -EINVAL,
                          "%s: required but not set (use --%s, %s or \"%s:\" in the config file)",
                          s->name, s->name, env, s->name);
    }
    return 0;
}

/* The whole resolution, into a fresh config made from argv. */
static int resolve(kopt_config_t *c, char *const envp[], FILE *help_out, char *err, size_t errlen)
{
    const char *file = NULL;
    int r;

    if ((r = wants_help(c, help_out)) != 0)
        return r;
    if ((r = apply_defaults(c, err, errlen)) < 0 ||
        (r = walk_flags(c, false, &file, err, errlen)) < 0)
        return r;
    if (!file)
        file = env_config(envp);
    if (file) {
        if (!(c->file = strdup(file)))
            return kcfg_error(err, errlen, -ENOMEM, "out of memory");
        if ((r = kcfg_yaml_load(c, c->file, err, errlen)) < 0)
            return r;
    }
    if ((r = apply_env(c, envp, err, errlen)) < 0 ||
        (r = walk_flags(c, true, &file, err, errlen)) < 0)
        return r;
    return check_required(c, err, errlen);
}

int kopt_config_load(kopt_config_t **out, const kopt_config_spec_t *spec, int argc,
                     char *const argv[], char *const envp[], FILE *help_out, char *err,
                     size_t errlen)
{
    kopt_config_t *c;
    int r;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if ((r = check_spec(spec, err, errlen)) < 0)
        return r;
    if (!(c = config_new(spec, argv ? argc : 0, argv)))
        return kcfg_error(err, errlen, -ENOMEM, "out of memory");
    r = resolve(c, envp, help_out, err, errlen);
    if (r != 0) {
        kopt_config_free(c);
        return r;
    }
    *out = c;
    return 0;
}

const void *kopt_config_values(const kopt_config_t *c)
{
    return c->values;
}

char *const *kopt_config_args(const kopt_config_t *c, int *n)
{
    if (n)
        *n = c->nargs;
    return c->args;
}

const char *kopt_config_file(const kopt_config_t *c)
{
    return c->file;
}

int kopt_config_source(const kopt_config_t *c, const char *name)
{
    int idx = kcfg_find(c->spec, name, strlen(name));

    return idx < 0 ? -ENOENT : c->sources[idx];
}

int kopt_config_reload(const kopt_config_t *cur, char *const envp[], kopt_config_t **next,
                       kopt_config_change_fn cb, void *data, unsigned *n_reload,
                       unsigned *n_restart, char *err, size_t errlen)
{
    kopt_config_t *c;
    int r;

    *next = NULL;
    if (n_reload)
        *n_reload = 0;
    if (n_restart)
        *n_restart = 0;
    if (!(c = config_new(cur->spec, cur->argc, cur->argv)))
        return kcfg_error(err, errlen, -ENOMEM, "out of memory");
    if ((r = resolve(c, envp, NULL, err, errlen)) != 0) {
        kopt_config_free(c);
        return r < 0 ? r : -EINVAL; /* help in a saved argv cannot happen */
    }
    for (size_t i = 0; i < c->spec->n_settings; i++) {
        const kopt_config_setting_t *s = &c->spec->settings[i];
        bool reloadable = s->flags & KOPT_CONFIG_RELOADABLE;
        if (kcfg_equal(s, cur->values, c->values))
            continue;
        if (!reloadable) {
            /* Keep what is running, so `next` tells the truth about it. */
            if ((r = kcfg_copy(s, c->values, cur->values)) < 0) {
                kopt_config_free(c);
                return kcfg_error(err, errlen, r, "out of memory");
            }
            c->sources[i] = cur->sources[i];
        }
        if (reloadable && n_reload)
            (*n_reload)++;
        if (!reloadable && n_restart)
            (*n_restart)++;
        if (cb)
            cb(s, reloadable, data);
    }
    *next = c;
    return 0;
}

/* A YAML double-quoted scalar: safe for any bytes the config holds. */
static void put_yaml_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void dump_one(const kopt_config_t *c, size_t i, FILE *f)
{
    const kopt_config_setting_t *s = &c->spec->settings[i];
    char buf[4096];

    fprintf(f, "%s: ", s->name);
    if (c->sources[i] == KOPT_CONFIG_SRC_UNSET) {
        fputs("~", f);
    } else if (s->flags & KOPT_CONFIG_SECRET) {
        fputs("\"[redacted]\"", f);
    } else if (s->type == KOPT_CONFIG_LIST) {
        const kopt_config_list_t *l = (const void *)((const char *)c->values + s->offset);
        fputc('[', f);
        for (size_t j = 0; j < l->n; j++) {
            fputs(j ? ", " : "", f);
            kopt_url_redact(l->items[j], buf, sizeof(buf));
            put_yaml_string(f, buf);
        }
        fputc(']', f);
    } else if (s->type == KOPT_CONFIG_STRING) {
        kcfg_format(s, c->values, buf, sizeof(buf)); /* URLs without their userinfo */
        put_yaml_string(f, buf);
    } else if (s->type == KOPT_CONFIG_PATH) {
        const char *v = *(char *const *)((const char *)c->values + s->offset);
        put_yaml_string(f, v ? v : "");
    } else {
        kcfg_format(s, c->values, buf, sizeof(buf));
        if (s->type == KOPT_CONFIG_ENUM || s->type == KOPT_CONFIG_ADDRESS)
            put_yaml_string(f, buf);
        else
            fputs(buf, f); /* numbers, bools, "5s", "8MiB": plain YAML */
    }
    fprintf(f, "  # %s\n", source_names[c->sources[i]]);
}

int kopt_config_dump(const kopt_config_t *c, FILE *f)
{
    fprintf(f, "# %s %s effective settings", c->spec->program ? c->spec->program : "kopt",
            c->spec->version ? c->spec->version : "");
    if (c->file)
        fprintf(f, "; config file %s", c->file);
    fputc('\n', f);
    for (size_t i = 0; i < c->spec->n_settings; i++)
        dump_one(c, i, f);
    return ferror(f) ? -EIO : 0;
}

int kopt_config_summary(const kopt_config_t *c, char *buf, size_t len)
{
    size_t used = 0;
    char val[256];

    if (!len)
        return -ENOSPC;
    buf[0] = '\0';
    for (size_t i = 0; i < c->spec->n_settings && used < len; i++) {
        const kopt_config_setting_t *s = &c->spec->settings[i];
        if (c->sources[i] <= KOPT_CONFIG_SRC_DEFAULT)
            continue;
        kcfg_format(s, c->values, val, sizeof(val));
        used += (size_t)snprintf(buf + used, len - used, "%s%s=%s(%s)", used ? " " : "", s->name,
                                 val, source_names[c->sources[i]]);
    }
    return used < len ? 0 : -ENOSPC;
}

static void usage_one(const kopt_config_setting_t *s, FILE *f)
{
    char env[NAME_MAX_LEN + 8];

    kopt_config_env_name(s->name, env, sizeof(env));
    fprintf(f, "  --%s", s->name);
    if (s->type != KOPT_CONFIG_BOOL)
        fprintf(f, " %s", kcfg_metavar(s->type));
    fprintf(f, "\n        %s\n        env %s", s->help ? s->help : "", env);
    if (s->def && (s->flags & KOPT_CONFIG_SECRET))
        fputs(", default [redacted]", f);
    else if (s->def)
        fprintf(f, ", default \"%s\"", s->def);
    if (s->type == KOPT_CONFIG_ENUM) {
        fputs(", one of ", f);
        for (size_t j = 0; s->choices[j]; j++)
            fprintf(f, "%s%s", j ? "|" : "", s->choices[j]);
    }
    if (s->type == KOPT_CONFIG_INT && (s->min || s->max))
        fprintf(f, ", %lld..%lld", (long long)s->min, (long long)s->max);
    if (s->flags & KOPT_CONFIG_REQUIRED)
        fputs(", required", f);
    if (s->flags & KOPT_CONFIG_RELOADABLE)
        fputs(", reloadable (SIGHUP)", f);
    fputc('\n', f);
}

int kopt_config_usage(const kopt_config_spec_t *spec, FILE *f)
{
    const char *prog = spec->program ? spec->program : "kopt";

    fprintf(f, "Usage: %s [flags]\n", prog);
    if (spec->summary)
        fprintf(f, "%s\n", spec->summary);
    fputs("\nEvery setting is a flag, an environment variable KOPT_<NAME> (upper case, '-' as\n"
          "'_') and a key of the --config YAML file. Flags win over the environment, the\n"
          "environment over the file, the file over the default.\n\nFlags:\n",
          f);
    fputs("  --config FILE\n        YAML settings file\n        env KOPT_CONFIG\n", f);
    for (size_t i = 0; i < spec->n_settings; i++)
        usage_one(&spec->settings[i], f);
    fputs("  --help\n        show this help and exit\n", f);
    fputs("  --version\n        show the version and exit\n", f);
    return ferror(f) ? -EIO : 0;
}
