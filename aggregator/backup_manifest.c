/* The backup manifest as JSON: what agg_backup_run writes last and
 * agg_restore_run trusts only after checking every field, since an object
 * store is outside kopt's control (docs/operations.md). */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!why || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

/* uint64 values beyond JSON's safe integers travel as decimal strings. */
static json_t *u64(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return json_string(b);
}

int agg_manifest_encode(const agg_manifest_t *m, char **out)
{
    json_t *root = json_object(), *tables = json_array();
    if (!root || !tables) {
        json_decref(root);
        json_decref(tables);
        return -ENOMEM;
    }
    json_object_set_new(root, "format", json_integer(m->format));
    json_object_set_new(root, "id", json_string(m->id));
    json_object_set_new(root, "database", json_string(m->database));
    json_object_set_new(root, "server_version", json_string(m->server_version));
    json_object_set_new(root, "schema_version", json_integer(m->schema_version));
    json_object_set_new(root, "started_at", json_integer(m->started_at));
    json_object_set_new(root, "finished_at", json_integer(m->finished_at));
    for (size_t i = 0; i < m->n_tables; i++) {
        const agg_manifest_table_t *t = &m->tables[i];
        json_t *jt = json_object(), *parts = json_array();
        json_object_set_new(jt, "name", json_string(t->name));
        json_object_set_new(jt, "schema_key", json_string(t->schema_key));
        json_object_set_new(jt, "schema_sha256", json_string(t->schema_sha256));
        json_object_set_new(jt, "final", json_boolean(t->final));
        for (size_t k = 0; k < t->n_parts; k++) {
            const agg_manifest_part_t *p = &t->parts[k];
            json_t *jp = json_object();
            json_object_set_new(jp, "partition_id", json_string(p->partition_id));
            json_object_set_new(jp, "key", json_string(p->key));
            json_object_set_new(jp, "rows", u64(p->rows));
            json_object_set_new(jp, "checksum", u64(p->checksum));
            json_object_set_new(jp, "bytes", u64(p->bytes));
            json_object_set_new(jp, "sha256", json_string(p->sha256));
            json_array_append_new(parts, jp);
        }
        json_object_set_new(jt, "partitions", parts);
        json_array_append_new(tables, jt);
    }
    json_object_set_new(root, "tables", tables);
    *out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return *out ? 0 : -ENOMEM;
}

static bool ident_ok(const char *s)
{
    return s && kopt_ch_identifier_ok(s);
}

/* partition_id: ClickHouse writes digits, letters, '-' and '_' ("all" too). */
static bool partition_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

static bool hex64_ok(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 31)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

static int get_u64(json_t *o, const char *name, uint64_t *v)
{
    const char *s = json_string_value(json_object_get(o, name));
    char *end;
    if (!s || !*s || *s == '-' || strlen(s) > 20)
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static char *get_str(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? strdup(s) : NULL;
}

int agg_manifest_parse(const char *json, size_t len, const char *prefix, agg_manifest_t *m,
                       char *why, size_t why_len)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    char dir[512];
    int r = -EBADMSG;

    memset(m, 0, sizeof *m);
    if (!root || !json_is_object(root)) {
        say(why, why_len, "manifest is not a JSON object: %s", root ? "" : je.text);
        json_decref(root);
        return -EBADMSG;
    }
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != AGG_MANIFEST_FORMAT) {
        say(why, why_len, "manifest format is not %d", AGG_MANIFEST_FORMAT);
        goto out;
    }
    m->format = AGG_MANIFEST_FORMAT;
    m->id = get_str(root, "id");
    m->database = get_str(root, "database");
    m->server_version = get_str(root, "server_version");
    json_t *sv = json_object_get(root, "schema_version");
    json_t *sa = json_object_get(root, "started_at"), *fa = json_object_get(root, "finished_at");
    json_t *tables = json_object_get(root, "tables");
    if (!id_ok(m->id) || !ident_ok(m->database) || !m->server_version || !json_is_integer(sv) ||
        json_integer_value(sv) < 0 || json_integer_value(sv) > UINT32_MAX || !json_is_integer(sa) ||
        !json_is_integer(fa) || !json_is_array(tables) || json_array_size(tables) > 1000) {
        say(why, why_len,
            "manifest: id, database, server_version, schema_version, started_at, "
            "finished_at or tables missing or malformed");
        goto out;
    }
    m->schema_version = (uint32_t)json_integer_value(sv);
    m->started_at = json_integer_value(sa);
    m->finished_at = json_integer_value(fa);
    snprintf(dir, sizeof dir, "%s/backups/%s/", prefix, m->id);
    m->tables = calloc(json_array_size(tables) + 1, sizeof *m->tables);
    if (!m->tables) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(tables); i++) {
        json_t *jt = json_array_get(tables, i);
        agg_manifest_table_t *t = &m->tables[m->n_tables++];
        json_t *parts = json_object_get(jt, "partitions");
        t->name = get_str(jt, "name");
        t->schema_key = get_str(jt, "schema_key");
        const char *ssha = json_string_value(json_object_get(jt, "schema_sha256"));
        json_t *fin = json_object_get(jt, "final");
        if (!ident_ok(t->name) || !t->schema_key || strncmp(t->schema_key, dir, strlen(dir)) != 0 ||
            !hex64_ok(ssha) || !json_is_boolean(fin) || !json_is_array(parts) ||
            json_array_size(parts) > 100000) {
            say(why, why_len,
                "manifest: table %zu malformed (name, schema_key in %s, "
                "schema_sha256, final, partitions)",
                i, dir);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->tables[k].name, t->name) == 0) {
                say(why, why_len, "manifest: table %s twice", t->name);
                goto out;
            }
        memcpy(t->schema_sha256, ssha, 65);
        t->final = json_is_true(fin);
        t->parts = calloc(json_array_size(parts) + 1, sizeof *t->parts);
        if (!t->parts) {
            r = -ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < json_array_size(parts); k++) {
            json_t *jp = json_array_get(parts, k);
            agg_manifest_part_t *p = &t->parts[t->n_parts++];
            const char *sha = json_string_value(json_object_get(jp, "sha256"));
            p->partition_id = get_str(jp, "partition_id");
            p->key = get_str(jp, "key");
            if (!partition_ok(p->partition_id) || !p->key ||
                strncmp(p->key, dir, strlen(dir)) != 0 || get_u64(jp, "rows", &p->rows) < 0 ||
                get_u64(jp, "checksum", &p->checksum) < 0 || get_u64(jp, "bytes", &p->bytes) < 0 ||
                !hex64_ok(sha)) {
                say(why, why_len, "manifest: table %s partition %zu malformed", t->name, k);
                goto out;
            }
            memcpy(p->sha256, sha, 65);
        }
    }
    r = 0;
out:
    json_decref(root);
    if (r < 0)
        agg_manifest_free(m);
    return r;
}

void agg_manifest_free(agg_manifest_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_tables; i++) {
        agg_manifest_table_t *t = &m->tables[i];
        for (size_t k = 0; k < t->n_parts; k++) {
            free(t->parts[k].partition_id);
            free(t->parts[k].key);
        }
        free(t->parts);
        free(t->name);
        free(t->schema_key);
    }
    free(m->tables);
    free(m->id);
    free(m->database);
    free(m->server_version);
    memset(m, 0, sizeof *m);
}
