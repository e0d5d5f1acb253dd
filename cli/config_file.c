/* The CLI config file parser (config_file.h), on libyaml's event API: the
 * file is small and its shape fixed, so events are read in order and any
 * surprise is an error naming the line. */
#include "config_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    yaml_parser_t p;
    yaml_event_t ev;
    bool have_ev;
    char *err;
    size_t errlen;
} reader_t;

static int fail(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(reader_t *r, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    snprintf(r->err, r->errlen, "line %zu: ", r->have_ev ? r->ev.start_mark.line + 1 : 0);
    n = strlen(r->err);
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Moves to the next event; the previous one is released. */
static int next(reader_t *r)
{
    if (r->have_ev)
        yaml_event_delete(&r->ev);
    r->have_ev = false;
    if (!yaml_parser_parse(&r->p, &r->ev)) {
        snprintf(r->err, r->errlen, "line %zu: %s", r->p.problem_mark.line + 1,
                 r->p.problem ? r->p.problem : "bad YAML");
        return -EINVAL;
    }
    r->have_ev = true;
    return 0;
}

static int expect(reader_t *r, yaml_event_type_t t, const char *what)
{
    int rc = next(r);

    if (rc == 0 && r->ev.type != t)
        rc = fail(r, "expected %s", what);
    return rc;
}

/* The current event is a scalar: a copy of its text. */
static int scalar_copy(reader_t *r, const char *key, char **out)
{
    if (r->ev.type != YAML_SCALAR_EVENT)
        return fail(r, "'%s' must be a plain value", key);
    if (*out)
        return fail(r, "'%s' is given twice", key);
    *out = strndup((const char *)r->ev.data.scalar.value, r->ev.data.scalar.length);
    return *out ? 0 : -ENOMEM;
}

/* The next key of a mapping, copied into key[len], with the event after it
 * (its value) read: 0; 1 at the mapping's end; or a negative errno. */
static int next_key(reader_t *r, char *key, size_t len, const char *refusal)
{
    int rc;

    if ((rc = next(r)) != 0)
        return rc;
    if (r->ev.type == YAML_MAPPING_END_EVENT)
        return 1;
    if (r->ev.type != YAML_SCALAR_EVENT)
        return fail(r, "%s", refusal);
    snprintf(key, len, "%s", (const char *)r->ev.data.scalar.value);
    return next(r);
}

static void context_clear(cli_context_t *c)
{
    free(c->name);
    free(c->address);
    free(c->ca_file);
    free(c->server_name);
    free(c->api_key_file);
    free(c->token_file);
    free(c->cluster);
    memset(c, 0, sizeof(*c));
}

static int parse_bool(reader_t *r, const char *key, bool *out)
{
    const char *v = (const char *)r->ev.data.scalar.value;

    if (r->ev.type != YAML_SCALAR_EVENT)
        return fail(r, "'%s' must be true or false", key);
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return fail(r, "'%s' must be true or false, not '%.40s'", key, v);
    return 0;
}

/* One context mapping; the MAPPING_START was read. */
static int parse_context(reader_t *r, cli_context_t *c)
{
    int rc;

    for (;;) {
        char key[64];

        rc = next_key(r, key, sizeof(key), "a context's keys must be plain words");
        if (rc > 0)
            break;
        if (rc < 0)
            return rc;
        if (strcmp(key, "name") == 0)
            rc = scalar_copy(r, key, &c->name);
        else if (strcmp(key, "address") == 0)
            rc = scalar_copy(r, key, &c->address);
        else if (strcmp(key, "ca-file") == 0)
            rc = scalar_copy(r, key, &c->ca_file);
        else if (strcmp(key, "server-name") == 0)
            rc = scalar_copy(r, key, &c->server_name);
        else if (strcmp(key, "api-key-file") == 0)
            rc = scalar_copy(r, key, &c->api_key_file);
        else if (strcmp(key, "token-file") == 0)
            rc = scalar_copy(r, key, &c->token_file);
        else if (strcmp(key, "cluster") == 0)
            rc = scalar_copy(r, key, &c->cluster);
        else if (strcmp(key, "insecure") == 0)
            rc = parse_bool(r, key, &c->insecure);
        else
            rc = fail(r,
                      "unknown context key '%s' (address, ca-file, server-name, "
                      "api-key-file, token-file, cluster, insecure, name)",
                      key);
        if (rc != 0)
            return rc;
    }
    if (!c->name || !c->name[0])
        return fail(r, "a context has no name");
    return 0;
}

static int parse_contexts(reader_t *r, cli_config_t *out)
{
    int rc;

    if (r->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail(r, "'contexts' must be a list of mappings");
    for (;;) {
        cli_context_t *grown;

        if ((rc = next(r)) != 0)
            return rc;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (r->ev.type != YAML_MAPPING_START_EVENT)
            return fail(r, "each context must be a mapping");
        if (out->n == CLI_CONFIG_MAX_CONTEXTS)
            return fail(r, "more than %d contexts", CLI_CONFIG_MAX_CONTEXTS);
        grown = realloc(out->contexts, (out->n + 1) * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        out->contexts = grown;
        memset(&out->contexts[out->n], 0, sizeof(*grown));
        out->n++;
        if ((rc = parse_context(r, &out->contexts[out->n - 1])) != 0)
            return rc;
        for (size_t i = 0; i + 1 < out->n; i++)
            if (strcmp(out->contexts[i].name, out->contexts[out->n - 1].name) == 0)
                return fail(r, "context '%.64s' is defined twice", out->contexts[i].name);
    }
}

static int parse_top(reader_t *r, cli_config_t *out)
{
    int rc;

    if ((rc = expect(r, YAML_STREAM_START_EVENT, "a YAML stream")) != 0)
        return rc;
    if ((rc = next(r)) != 0)
        return rc;
    if (r->ev.type == YAML_STREAM_END_EVENT)
        return 0; /* an empty file: no contexts */
    if (r->ev.type != YAML_DOCUMENT_START_EVENT)
        return fail(r, "expected a document");
    if ((rc = next(r)) != 0)
        return rc;
    if (r->ev.type == YAML_SCALAR_EVENT && r->ev.data.scalar.length == 0)
        return 0; /* a document with only comments */
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, "the file must be a mapping (current-context, contexts)");
    for (;;) {
        char key[64];

        rc = next_key(r, key, sizeof(key), "keys must be plain words");
        if (rc > 0)
            break;
        if (rc < 0)
            return rc;
        if (strcmp(key, "current-context") == 0)
            rc = scalar_copy(r, key, &out->current_context);
        else if (strcmp(key, "contexts") == 0)
            rc = out->contexts ? fail(r, "'contexts' is given twice") : parse_contexts(r, out);
        else
            rc = fail(r, "unknown key '%s' (current-context, contexts)", key);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cli_config_parse(const char *text, size_t len, cli_config_t *out, char *err, size_t errlen)
{
    reader_t r = {.err = err, .errlen = errlen};
    int rc;

    memset(out, 0, sizeof(*out));
    if (errlen)
        err[0] = '\0';
    if (!yaml_parser_initialize(&r.p))
        return -ENOMEM;
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
    rc = parse_top(&r, out);
    if (r.have_ev)
        yaml_event_delete(&r.ev);
    yaml_parser_delete(&r.p);
    if (rc == 0 && out->current_context && !cli_config_find(out, out->current_context)) {
        snprintf(err, errlen, "current-context '%.64s' is not among the contexts",
                 out->current_context);
        rc = -EINVAL;
    }
    if (rc != 0)
        cli_config_free(out);
    return rc;
}

void cli_config_free(cli_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        context_clear(&c->contexts[i]);
    free(c->contexts);
    free(c->current_context);
    memset(c, 0, sizeof(*c));
}

const cli_context_t *cli_config_find(const cli_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->contexts[i].name, name) == 0)
            return &c->contexts[i];
    return NULL;
}
