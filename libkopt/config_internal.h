/* Private to libkopt/config*.c: the loaded config object, the value parsers
 * (config_value.c) and the YAML file reader (config_yaml.c). config.c holds
 * the loader, the flag and env sources, reload, dump and usage. */
#ifndef KOPT_CONFIG_INTERNAL_H
#define KOPT_CONFIG_INTERNAL_H

#include <kopt/config.h>

#define KCFG_WHY_MAX 160   /* room for the reason a value is refused */
#define KCFG_QUOTE_MAX 100 /* values in messages are cut to about this */

struct kopt_config {
    const kopt_config_spec_t *spec; /* the daemon's static table */
    void *values;                   /* spec->size bytes, the daemon's struct */
    unsigned char *sources;         /* kopt_config_source_t per setting */
    char *file;                     /* the YAML file read, or NULL */
    int argc;
    char **argv; /* deep copy of the original argv, for reload */
    int nargs;
    char **args; /* positional arguments, pointing into argv */
};

/* A parsed value before it is stored in the struct; owns its strings. */
typedef union {
    char *s;
    int64_t i;
    bool b;
    uint64_t u;
    int e;
    kopt_config_addr_t a;
    kopt_config_list_t l;
} kcfg_value_t;

/* Parses `text` for setting `s` into *v. 0, or -EINVAL with the reason in
 * `why` ("port must be 1..65535"), or -ENOMEM. */
int kcfg_parse(const kopt_config_setting_t *s, const char *text, kcfg_value_t *v, char *why,
               size_t whylen);

/* A list setting from separate items (a YAML sequence). As kcfg_parse. */
int kcfg_parse_items(const kopt_config_setting_t *s, char *const *items, size_t n, kcfg_value_t *v,
                     char *why, size_t whylen);

/* Frees what a parsed value owns. */
void kcfg_value_release(const kopt_config_setting_t *s, kcfg_value_t *v);

/* Moves *v into the field at s->offset of `values`, freeing the old value. */
void kcfg_store(const kopt_config_setting_t *s, void *values, kcfg_value_t *v);

/* Frees the field's owned memory and zeroes it. */
void kcfg_clear(const kopt_config_setting_t *s, void *values);

/* Deep copy of one field from `src` to `dst` (dst's old value is freed). */
int kcfg_copy(const kopt_config_setting_t *s, void *dst, const void *src);

bool kcfg_equal(const kopt_config_setting_t *s, const void *a, const void *b);

/* The field as text ("5s", "64KiB", "a,b"); "[redacted]" for secrets, ""
 * when unset. */
void kcfg_format(const kopt_config_setting_t *s, const void *values, char *buf, size_t len);

/* `text` for a message: in double quotes, control bytes escaped, cut with
 * "..." past KCFG_QUOTE_MAX; [redacted] for secret settings. */
void kcfg_quote(const kopt_config_setting_t *s, const char *text, char *buf, size_t len);

/* The size of the field a setting of type `t` fills. */
size_t kcfg_field_size(kopt_config_type_t t);

/* "address", "duration", ... for "invalid <type>" in messages. */
const char *kcfg_type_name(kopt_config_type_t t);

/* "ADDR", "DURATION", ... for --help. */
const char *kcfg_metavar(kopt_config_type_t t);

/* Writes "config: " + the formatted message into err; returns `r`. */
int kcfg_error(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The index of setting `name` (length n), or -1. */
int kcfg_find(const kopt_config_spec_t *spec, const char *name, size_t n);

/* The closest setting name to `name` by edit distance, or NULL if none is close. */
const char *kcfg_suggest(const kopt_config_spec_t *spec, const char *name);

/* Parses `text` and stores it with its source; the error names the setting,
 * the value and `from` ("flag --listen", "env KOPT_LISTEN", "f.yaml:3"). */
int kcfg_set(kopt_config_t *c, int idx, const char *text, kopt_config_source_t src,
             const char *from, char *err, size_t errlen);

/* Stores a parsed value (moved) and records its source. */
void kcfg_put(kopt_config_t *c, int idx, kcfg_value_t *v, kopt_config_source_t src);

/* The message for a refused value: "config: NAME: invalid TYPE "TEXT" (from
 * FROM): WHY", TEXT redacted for secrets. Returns `r`. */
int kcfg_bad_value(const kopt_config_setting_t *s, const char *text, const char *from,
                   const char *why, int r, char *err, size_t errlen);

/* Applies a YAML document (the config file's bytes) over the current values;
 * `name` is the file name for messages. */
int kcfg_yaml_apply(kopt_config_t *c, const char *name, const char *text, size_t len, char *err,
                    size_t errlen);

/* Reads the config file (at most KOPT_CONFIG_MAX_FILE bytes) and applies it. */
int kcfg_yaml_load(kopt_config_t *c, const char *path, char *err, size_t errlen);

#endif
