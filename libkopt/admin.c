/* The admin endpoints on top of the HTTP server: liveness, readiness from the
 * daemon's checks, and the metrics page. Handlers answer at once; the JSON
 * bodies are built with jansson. */
#include <kopt/admin.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHECKS 32
#define REASON_BYTES 256

typedef struct {
    char *name;
    kopt_admin_check_fn fn;
    void *data;
} check_t;

struct kopt_admin {
    kopt_http_server_t *srv;
    kopt_metrics_t *metrics;
    check_t checks[MAX_CHECKS];
    size_t nchecks;
};

static void send_json(kopt_http_response_t *res, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    if (s)
        kopt_http_response_send(res, status, NULL, s, strlen(s));
    else
        kopt_http_response_error(res, 500, "out of memory");
    free(s);
    json_decref(o);
}

/* Answering at all proves the loop turns, which is what liveness means here. */
static void on_healthz(kopt_http_response_t *res, void *data)
{
    (void)data;
    send_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_readyz(kopt_http_response_t *res, void *data)
{
    kopt_admin_t *a = data;
    json_t *checks = json_object(), *failed = json_array(), *js;
    char reason[REASON_BYTES];
    int ok = 1;

    for (size_t i = 0; i < a->nchecks; i++) {
        reason[0] = '\0';
        if (a->checks[i].fn(a->checks[i].data, reason, sizeof(reason)) == 0) {
            json_object_set_new(checks, a->checks[i].name, json_string("ok"));
            continue;
        }
        ok = 0;
        js = reason[0] ? json_string(reason) : NULL; /* NULL too when not UTF-8 */
        json_object_set_new(checks, a->checks[i].name, js ? js : json_string("failed"));
        json_array_append_new(failed, json_string(a->checks[i].name));
    }
    send_json(res, ok ? 200 : 503,
              json_pack("{s:s,s:o,s:o}", "status", ok ? "ok" : "unavailable", "checks", checks,
                        "failed", failed));
}

static void on_metrics(kopt_http_response_t *res, void *data)
{
    kopt_admin_t *a = data;
    char *text = NULL;
    size_t len = 0;

    if (kopt_metrics_expose(a->metrics, &text, &len) < 0) {
        kopt_http_response_error(res, 500, "out of memory");
        return;
    }
    kopt_http_response_send(res, 200, KOPT_METRICS_CONTENT_TYPE, text, len);
    free(text);
}

int kopt_admin_new(uv_loop_t *loop, const char *listen_addr, kopt_metrics_t *metrics,
                   const char *component, const kopt_http_server_options_t *opts,
                   kopt_admin_t **out)
{
    kopt_http_server_options_t o;
    kopt_admin_t *a;
    int r;

    if (!metrics)
        return -EINVAL;
    if (opts) {
        o = *opts;
    } else {
        kopt_http_server_options_default(&o);
        o.name = "admin";
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->metrics = metrics;
    r = kopt_metrics_process_register(metrics, component);
    if (r == 0)
        r = kopt_http_server_new(loop, &o, metrics, &a->srv);
    if (r == 0)
        r = kopt_http_server_route(a->srv, "GET", "/healthz", 0, "/healthz", on_healthz, a);
    if (r == 0)
        r = kopt_http_server_route(a->srv, "GET", "/readyz", 0, "/readyz", on_readyz, a);
    if (r == 0)
        r = kopt_http_server_route(a->srv, "GET", "/metrics", 0, "/metrics", on_metrics, a);
    if (r == 0)
        r = kopt_http_server_listen(a->srv, listen_addr);
    if (r < 0) {
        kopt_admin_free(a);
        return r;
    }
    *out = a;
    return 0;
}

int kopt_admin_add_check(kopt_admin_t *a, const char *name, kopt_admin_check_fn fn, void *data)
{
    check_t *c;

    if (!name || !fn)
        return -EINVAL;
    if (a->nchecks == MAX_CHECKS)
        return -ENOSPC;
    c = &a->checks[a->nchecks];
    c->name = strdup(name);
    if (!c->name)
        return -ENOMEM;
    c->fn = fn;
    c->data = data;
    a->nchecks++;
    return 0;
}

kopt_http_server_t *kopt_admin_server(kopt_admin_t *a)
{
    return a->srv;
}

int kopt_admin_port(const kopt_admin_t *a)
{
    return kopt_http_server_port(a->srv);
}

void kopt_admin_close(kopt_admin_t *a, void (*done)(void *data), void *data)
{
    kopt_http_server_close(a->srv, done, data);
}

void kopt_admin_free(kopt_admin_t *a)
{
    if (!a)
        return;
    kopt_http_server_free(a->srv);
    for (size_t i = 0; i < a->nchecks; i++)
        free(a->checks[i].name);
    free(a);
}
