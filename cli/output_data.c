/* The machine outputs of the CLI: proto3 JSON (libkopt's pbjson), the same
 * tree as YAML through libyaml's emitter, and CSV with plain numbers (cores,
 * bytes) so nothing is lost to rounding. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include <kopt/pbjson.h>

#include "recs.h"

/* The shortest %g that reads back as the same double. */
static void fmt_double(char *out, size_t len, double v)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(out, len, "%.*g", p, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* A YAML plain scalar that a YAML 1.1 reader (PyYAML) would take for a
 * number, bool, null or timestamp must be quoted to stay a string. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
                                        "null", "y",     "n",   "~",  NULL};

    if (!s[0] || strchr("0123456789-+.", s[0]))
        return true;
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    return false;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev)
{
    return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *e, const char *v, bool quoted)
{
    yaml_event_t ev;

    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v), !quoted, 1,
                                 quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    return emit(e, &ev);
}

static int emit_json(yaml_emitter_t *e, json_t *j, int depth)
{
    yaml_event_t ev;
    char num[40];
    int rc = 0;

    if (depth > 64)
        return -EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;

        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        rc = emit(e, &ev);
        json_object_foreach(j, k, v)
        {
            if (rc == 0)
                rc = emit_scalar(e, k, needs_quotes(k));
            if (rc == 0)
                rc = emit_json(e, v, depth + 1);
        }
        yaml_mapping_end_event_initialize(&ev);
        return rc ? rc : emit(e, &ev);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;

        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        rc = emit(e, &ev);
        json_array_foreach(j, i, v)
        {
            if (rc == 0)
                rc = emit_json(e, v, depth + 1);
        }
        yaml_sequence_end_event_initialize(&ev);
        return rc ? rc : emit(e, &ev);
    }
    case JSON_STRING:
        return emit_scalar(e, json_string_value(j), needs_quotes(json_string_value(j)));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(j));
        return emit_scalar(e, num, false);
    case JSON_REAL:
        fmt_double(num, sizeof(num), json_real_value(j));
        return emit_scalar(e, num, false);
    case JSON_TRUE:
        return emit_scalar(e, "true", false);
    case JSON_FALSE:
        return emit_scalar(e, "false", false);
    case JSON_NULL:
        return emit_scalar(e, "null", false);
    }
    return -EINVAL;
}

static int file_writer(void *data, unsigned char *buf, size_t size)
{
    return fwrite(buf, 1, size, data) == size;
}

static int json_to_yaml(FILE *f, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    yaml_emitter_t e;
    yaml_event_t ev;
    int rc;

    if (!j)
        return -EINVAL;
    if (!yaml_emitter_initialize(&e)) {
        json_decref(j);
        return -ENOMEM;
    }
    yaml_emitter_set_output(&e, file_writer, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    rc = emit(&e, &ev);
    if (rc == 0) {
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        rc = emit(&e, &ev);
    }
    if (rc == 0)
        rc = emit_json(&e, j, 0);
    if (rc == 0) {
        yaml_document_end_event_initialize(&ev, 1);
        rc = emit(&e, &ev);
    }
    if (rc == 0) {
        yaml_stream_end_event_initialize(&ev);
        rc = emit(&e, &ev);
    }
    yaml_emitter_delete(&e);
    json_decref(j);
    return rc;
}

int cli_print_message(FILE *f, const ProtobufCMessage *m, bool yaml)
{
    char *text = NULL;
    size_t len = 0;
    int rc = kopt_pbjson_encode(m, &text, &len);

    if (rc != 0)
        return cli_error("cannot write the answer as JSON: %s", strerror(-rc));
    if (yaml)
        rc = json_to_yaml(f, text, len);
    else
        rc = fprintf(f, "%s\n", text) < 0 ? -EIO : 0;
    free(text);
    return rc == 0 ? 0 : cli_error("cannot write the output: %s", strerror(-rc));
}

int cli_recs_json(FILE *f, const cli_recs_t *r, bool yaml)
{
    Kopt__V1__ListRecommendationsResponse all = KOPT__V1__LIST_RECOMMENDATIONS_RESPONSE__INIT;

    all.recommendations = r->items;
    all.n_recommendations = r->n;
    all.next_page_token = "";
    all.total_size = (uint32_t)r->n;
    return cli_print_message(f, &all.base, yaml);
}

static void csv_field(FILE *f, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_double(FILE *f, double v)
{
    char b[40];

    fmt_double(b, sizeof(b), v);
    csv_field(f, b, false);
}

static void csv_u64(FILE *f, uint64_t v)
{
    char b[32];

    snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    csv_field(f, b, false);
}

int cli_recs_csv(FILE *f, const cli_recs_t *r)
{
    static const Kopt__V1__ResourceValues zero = KOPT__V1__RESOURCE_VALUES__INIT;

    fputs("cluster,namespace,kind,name,container,cpu_request_current_cores,"
          "cpu_request_recommended_cores,cpu_limit_current_cores,cpu_limit_recommended_cores,"
          "memory_request_current_bytes,memory_request_recommended_bytes,"
          "memory_limit_current_bytes,memory_limit_recommended_bytes,confidence,risk,"
          "monthly_savings,currency\n",
          f);
    for (size_t i = 0; i < r->n; i++) {
        const Kopt__V1__Recommendation *rec = r->items[i];

        for (size_t k = 0; k < rec->n_containers; k++) {
            const Kopt__V1__ContainerRecommendation *c = rec->containers[k];
            const Kopt__V1__ResourceValues *now = c->current ? c->current : &zero;
            const Kopt__V1__ResourceValues *to = c->recommended ? c->recommended : &zero;

            csv_field(f, rec->workload->cluster, false);
            csv_field(f, rec->workload->namespace_, false);
            csv_field(f, cli_kind_name(rec->workload->kind), false);
            csv_field(f, rec->workload->name, false);
            csv_field(f, c->container, false);
            csv_double(f, now->cpu_request_cores);
            csv_double(f, to->cpu_request_cores);
            csv_double(f, now->cpu_limit_cores);
            csv_double(f, to->cpu_limit_cores);
            csv_u64(f, now->memory_request_bytes);
            csv_u64(f, to->memory_request_bytes);
            csv_u64(f, now->memory_limit_bytes);
            csv_u64(f, to->memory_limit_bytes);
            csv_double(f, c->confidence);
            csv_double(f, cli_rec_risk(c));
            csv_double(f, rec->savings ? rec->savings->monthly_cost : 0);
            csv_field(f, rec->savings ? rec->savings->currency : "", true);
        }
    }
    return ferror(f) ? cli_error("cannot write the output") : 0;
}
