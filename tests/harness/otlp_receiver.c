/* A tiny OTLP/HTTP JSON receiver for tests (harness.h): one thread, one
 * connection at a time, "Connection: close" answers. It checks only what the
 * tests rely on: POST, a Content-Length body that is JSON with
 * resourceSpans[].scopeSpans[].spans[]. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (8u << 20)

struct kopt_test_otlp {
    int fd, stop_pipe[2];
    char url[64];
    pthread_t thread;
    pthread_mutex_t mu;
    json_t *spans; /* guarded by mu */
    size_t posts, bad;
    int status;
};

/* Appends the spans of one OTLP JSON body; -1 when it is not one. */
static int take_spans(kopt_test_otlp_t *o, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL), *rs, *r;
    size_t i, j, k;
    int ok = 0;

    rs = root ? json_object_get(root, "resourceSpans") : NULL;
    if (!json_is_array(rs)) {
        json_decref(root);
        return -1;
    }
    json_array_foreach(rs, i, r)
    {
        const char *service = "";
        json_t *attrs = json_object_get(json_object_get(r, "resource"), "attributes"), *a, *ss, *s;

        json_array_foreach(attrs, j, a)
        {
            if (json_is_string(json_object_get(a, "key")) &&
                strcmp(json_string_value(json_object_get(a, "key")), "service.name") == 0)
                service =
                    json_string_value(json_object_get(json_object_get(a, "value"), "stringValue"));
        }
        json_array_foreach(json_object_get(r, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, s)
            {
                json_t *copy = json_deep_copy(s);

                json_object_set_new(copy, "service", json_string(service ? service : ""));
                json_array_append_new(o->spans, copy);
                ok = 1;
            }
        }
    }
    json_decref(root);
    return ok ? 0 : -1;
}

static void serve_one(kopt_test_otlp_t *o, int c)
{
    char head[8192], reply[256];
    size_t have = 0, want = 0, body_len;
    char *end = NULL, *body = NULL, *p;
    int status, parsed = -1;
    ssize_t n;

    while (have < sizeof(head) - 1 && !end) {
        n = read(c, head + have, sizeof(head) - 1 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        head[have] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    if (!end)
        return;
    for (p = head; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL)
        if (strncasecmp(p, "content-length:", 15) == 0)
            want = strtoul(p + 15, NULL, 10);
    if (want > MAX_BODY)
        return;
    body = malloc(want + 1);
    if (!body)
        return;
    body_len = have - (size_t)(end + 4 - head);
    if (body_len > want)
        body_len = want;
    memcpy(body, end + 4, body_len);
    while (body_len < want && (n = read(c, body + body_len, want - body_len)) > 0)
        body_len += (size_t)n;
    pthread_mutex_lock(&o->mu);
    status = o->status;
    if (strncmp(head, "POST /v1/traces ", 16) == 0 && body_len == want) {
        o->posts++;
        parsed = take_spans(o, body, body_len);
        if (parsed < 0)
            o->bad++;
    }
    pthread_mutex_unlock(&o->mu);
    free(body);
    if (parsed < 0 && status == 200)
        status = 400;
    snprintf(reply, sizeof(reply),
             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
             "Connection: close\r\n\r\n{}",
             status);
    n = write(c, reply, strlen(reply));
    (void)n;
}

static void *run(void *arg)
{
    kopt_test_otlp_t *o = arg;

    for (;;) {
        struct pollfd p[2] = {{o->fd, POLLIN, 0}, {o->stop_pipe[0], POLLIN, 0}};
        int c;

        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        c = accept(o->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(o, c);
        close(c);
    }
    return NULL;
}

static void cleanup(void *arg)
{
    kopt_test_otlp_free(arg);
}

int kopt_test_otlp_start(kopt_test_otlp_t **out)
{
    kopt_test_otlp_t *o = calloc(1, sizeof(*o));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    if (!o)
        return -ENOMEM;
    o->status = 200;
    o->spans = json_array();
    pthread_mutex_init(&o->mu, NULL);
    o->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (o->fd < 0 || bind(o->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(o->fd, 16) < 0 ||
        getsockname(o->fd, (struct sockaddr *)&a, &alen) < 0 || pipe(o->stop_pipe) < 0) {
        int r = -errno;

        if (o->fd >= 0)
            close(o->fd);
        json_decref(o->spans);
        free(o);
        return r;
    }
    snprintf(o->url, sizeof(o->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    if (pthread_create(&o->thread, NULL, run, o) != 0) {
        close(o->fd);
        close(o->stop_pipe[0]);
        close(o->stop_pipe[1]);
        json_decref(o->spans);
        free(o);
        return -EAGAIN;
    }
    kopt_test_cleanup_push(cleanup, o);
    *out = o;
    return 0;
}

const char *kopt_test_otlp_url(const kopt_test_otlp_t *o)
{
    return o->url;
}

void kopt_test_otlp_set_status(kopt_test_otlp_t *o, int status)
{
    pthread_mutex_lock(&o->mu);
    o->status = status;
    pthread_mutex_unlock(&o->mu);
}

json_t *kopt_test_otlp_spans(kopt_test_otlp_t *o)
{
    json_t *copy;

    pthread_mutex_lock(&o->mu);
    copy = json_deep_copy(o->spans);
    pthread_mutex_unlock(&o->mu);
    return copy;
}

void kopt_test_otlp_counts(kopt_test_otlp_t *o, size_t *posts, size_t *bad)
{
    pthread_mutex_lock(&o->mu);
    if (posts)
        *posts = o->posts;
    if (bad)
        *bad = o->bad;
    pthread_mutex_unlock(&o->mu);
}

void kopt_test_otlp_free(kopt_test_otlp_t *o)
{
    ssize_t n;

    if (!o)
        return;
    kopt_test_cleanup_forget(o);
    n = write(o->stop_pipe[1], "x", 1);
    (void)n;
    pthread_join(o->thread, NULL);
    close(o->fd);
    close(o->stop_pipe[0]);
    close(o->stop_pipe[1]);
    json_decref(o->spans);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
