/* The config file: a YAML mapping of setting names to scalars or sequences of
 * scalars, read with libyaml's event parser. Anything else (nested mappings,
 * aliases, several documents, bad UTF-8) is refused with its line number; the
 * file is read whole, at most KOPT_CONFIG_MAX_FILE bytes. */
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

typedef struct {
    yaml_parser_t p;
    yaml_event_t ev; /* the current event, valid while have_ev */
    bool have_ev;
    kopt_config_t *c;
    const char *name; /* file name for messages */
    const char *text;
    size_t len;
    unsigned char *seen; /* per setting: key already given in this file */
    char *err;
    size_t errlen;
} yctx_t;

static size_t line_at(const char *text, size_t len, size_t offset)
{
    size_t line = 1;

    for (size_t i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static size_t ev_line(const yctx_t *y)
{
    return y->ev.start_mark.line + 1;
}

static int syntax_error(yctx_t *y)
{
    const char *problem = y->p.problem ? y->p.problem : "syntax error";
    size_t line;

    if (y->p.error == YAML_MEMORY_ERROR)
        return kcfg_error(y->err, y->errlen, -ENOMEM, "%s: out of memory", y->name);
    if (y->p.error == YAML_READER_ERROR)
        line = line_at(y->text, y->len, y->p.problem_offset);
    else
        line = y->p.problem_mark.line + 1;
    if (y->p.context)
        return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: invalid YAML: %s %s", y->name, line,
                          problem, y->p.context);
    return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: invalid YAML: %s", y->name, line,
                      problem);
}

static int next(yctx_t *y)
{
    if (y->have_ev)
        yaml_event_delete(&y->ev);
    y->have_ev = false;
    if (!yaml_parser_parse(&y->p, &y->ev))
        return syntax_error(y);
    y->have_ev = true;
    return 0;
}

/* A plain empty, "~" or "null": the key is present but sets nothing. */
static bool is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* The event is not what this file format allows here. */
static int shape_error(yctx_t *y, const char *what)
{
    const char *got = "this";

    switch (y->ev.type) {
    case YAML_MAPPING_START_EVENT:
        got = "a nested mapping";
        break;
    case YAML_SEQUENCE_START_EVENT:
        got = "a list";
        break;
    case YAML_ALIAS_EVENT:
        got = "an alias (*name)";
        break;
    case YAML_SCALAR_EVENT:
        got = "a single value";
        break;
    default:
        break;
    }
    return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: %s, not %s", y->name, ev_line(y), what,
                      got);
}

static int check_scalar(yctx_t *y, const char *key)
{
    if (strlen((const char *)y->ev.data.scalar.value) != y->ev.data.scalar.length)
        return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: %s: value contains a NUL byte",
                          y->name, ev_line(y), key);
    return 0;
}

/* A YAML sequence for a list setting: items must be scalars. */
static int apply_sequence(yctx_t *y, int idx, const char *from)
{
    const kopt_config_setting_t *s = &y->c->spec->settings[idx];
    char **items = NULL, why[KCFG_WHY_MAX];
    size_t n = 0;
    kcfg_value_t v;
    int r;

    while ((r = next(y)) == 0 && y->ev.type != YAML_SEQUENCE_END_EVENT) {
        char **grown;
        if (y->ev.type != YAML_SCALAR_EVENT) {
            r = shape_error(y, "list items must be single values");
            break;
        }
        if ((r = check_scalar(y, s->name)) < 0)
            break;
        grown = realloc(items, (n + 1) * sizeof(*items));
        if (!grown || !(grown[n] = strdup((const char *)y->ev.data.scalar.value))) {
            items = grown ? grown : items;
            r = kcfg_error(y->err, y->errlen, -ENOMEM, "%s: out of memory", y->name);
            break;
        }
        items = grown;
        n++;
    }
    if (r == 0) {
        r = kcfg_parse_items(s, items, n, &v, why, sizeof(why));
        if (r == 0)
            kcfg_put(y->c, idx, &v, KOPT_CONFIG_SRC_FILE);
        else
            r = kcfg_bad_value(s, "[...]", from, why, r, y->err, y->errlen);
    }
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return r;
}

/* One "key: value" pair; the current event is the key. */
static int apply_pair(yctx_t *y)
{
    char key[128], from[1100];
    const kopt_config_setting_t *s;
    const char *suggest;
    int idx, r;
    size_t line = ev_line(y);

    if (y->ev.type != YAML_SCALAR_EVENT)
        return shape_error(y, "keys must be setting names");
    idx = kcfg_find(y->c->spec, (const char *)y->ev.data.scalar.value, y->ev.data.scalar.length);
    if (idx < 0) {
        kcfg_quote(NULL, (const char *)y->ev.data.scalar.value, key, sizeof(key));
        suggest = kcfg_suggest(y->c->spec, (const char *)y->ev.data.scalar.value);
        if (suggest)
            return kcfg_error(y->err, y->errlen, -EINVAL,
                              "%s:%zu: unknown key %s (did you mean \"%s\"?)", y->name, line, key,
                              suggest);
        return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: unknown key %s", y->name, line, key);
    }
    s = &y->c->spec->settings[idx];
    if (y->seen[idx])
        return kcfg_error(y->err, y->errlen, -EINVAL, "%s:%zu: duplicate key \"%s\"", y->name, line,
                          s->name);
    y->seen[idx] = 1;
    if ((r = next(y)) < 0)
        return r;
    snprintf(from, sizeof(from), "%s:%zu", y->name, ev_line(y));
    if (y->ev.type == YAML_SEQUENCE_START_EVENT && s->type == KOPT_CONFIG_LIST)
        return apply_sequence(y, idx, from);
    if (y->ev.type != YAML_SCALAR_EVENT) {
        snprintf(key, sizeof(key), "%s: expected a single value", s->name);
        return shape_error(y, key);
    }
    if ((r = check_scalar(y, s->name)) < 0 || is_null(&y->ev))
        return r;
    return kcfg_set(y->c, idx, (const char *)y->ev.data.scalar.value, KOPT_CONFIG_SRC_FILE, from,
                    y->err, y->errlen);
}

static int apply_document(yctx_t *y)
{
    int r;

    if ((r = next(y)) < 0)
        return r;
    if (y->ev.type == YAML_SCALAR_EVENT && is_null(&y->ev))
        return next(y); /* an empty document: only comments, or "---" */
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return shape_error(y, "the file must be a mapping of settings (key: value)");
    while ((r = next(y)) == 0 && y->ev.type != YAML_MAPPING_END_EVENT) {
        if ((r = apply_pair(y)) < 0)
            return r;
    }
    return r < 0 ? r : next(y);
}

static int apply_stream(yctx_t *y)
{
    int r;

    if ((r = next(y)) < 0 || (r = next(y)) < 0) /* stream start, then the document */
        return r;
    if (y->ev.type == YAML_STREAM_END_EVENT)
        return 0; /* an empty file */
    if ((r = apply_document(y)) < 0)
        return r;
    if (y->ev.type != YAML_DOCUMENT_END_EVENT)
        return shape_error(y, "the file must be a mapping of settings (key: value)");
    if ((r = next(y)) < 0)
        return r;
    if (y->ev.type != YAML_STREAM_END_EVENT)
        return kcfg_error(y->err, y->errlen, -EINVAL,
                          "%s:%zu: only one YAML document is allowed (found \"---\")", y->name,
                          ev_line(y));
    return 0;
}

int kcfg_yaml_apply(kopt_config_t *c, const char *name, const char *text, size_t len, char *err,
                    size_t errlen)
{
    yctx_t y = {.c = c, .name = name, .text = text, .len = len, .err = err, .errlen = errlen};
    int r;

    if (len > KOPT_CONFIG_MAX_FILE)
        return kcfg_error(err, errlen, -EFBIG,
                          "%s: file is larger than %u KiB; is it the right file?", name,
                          KOPT_CONFIG_MAX_FILE / 1024);
    y.seen = calloc(c->spec->n_settings + 1, 1);
    if (!y.seen || !yaml_parser_initialize(&y.p)) {
        free(y.seen);
        return kcfg_error(err, errlen, -ENOMEM, "%s: out of memory", name);
    }
    yaml_parser_set_encoding(&y.p, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    r = apply_stream(&y);
    if (y.have_ev)
        yaml_event_delete(&y.ev);
    yaml_parser_delete(&y.p);
    free(y.seen);
    return r;
}

/* Reads at most KOPT_CONFIG_MAX_FILE + 1 bytes, so an oversize file is seen;
 * the buffer starts at the file's size (pipes and /proc files grow it). */
static int read_all(int fd, size_t hint, char **out, size_t *len)
{
    size_t cap = hint < KOPT_CONFIG_MAX_FILE ? hint + 1 : KOPT_CONFIG_MAX_FILE + 1, n = 0;
    char *buf = malloc(cap), *grown;
    ssize_t got;

    while (buf) {
        if (n == cap && cap > KOPT_CONFIG_MAX_FILE)
            break; /* one byte past the limit: enough to refuse the file */
        if (n == cap) {
            cap = cap * 2 > KOPT_CONFIG_MAX_FILE + 1 ? KOPT_CONFIG_MAX_FILE + 1 : cap * 2;
            if (!(grown = realloc(buf, cap)))
                break;
            buf = grown;
        }
        got = read(fd, buf + n, cap - n);
        if (got == 0) {
            *out = buf;
            *len = n;
            return 0;
        }
        if (got < 0 && errno != EINTR) {
            int e = errno;
            free(buf);
            return -e;
        }
        n += got > 0 ? (size_t)got : 0;
    }
    if (!buf || n < cap) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), r;

    if (fd < 0)
        return kcfg_error(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0)
        st.st_size = 0, st.st_mode = 0;
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return kcfg_error(err, errlen, -EISDIR, "cannot read %s: it is a directory", path);
    }
    r = read_all(fd, st.st_size > 4096 ? (size_t)st.st_size : 4096, out, len);
    close(fd);
    if (r < 0)
        return kcfg_error(err, errlen, r, "cannot read %s: %s", path, strerror(-r));
    return 0;
}

int kcfg_yaml_load(kopt_config_t *c, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, &text, &len, err, errlen);

    if (r < 0)
        return r;
    r = kcfg_yaml_apply(c, path, text, len, err, errlen);
    free(text);
    return r;
}
