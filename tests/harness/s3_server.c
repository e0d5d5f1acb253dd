/* A real S3-protocol server for a test: s3rver (npm, installed by
 * scripts/deps into .tools/s3rver) behind tests/harness/s3_front.mjs, which
 * verifies every request's AWS SigV4 signature against this server's own
 * random credentials, serves <bucket>.localhost virtual-host requests, and
 * injects faults on request (status codes, delays). Free loopback port,
 * everything in one temp dir, kill9 + restart keep the port and the objects. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READY_TIMEOUT_S 30.0
#define STOP_TIMEOUT_MS 5000

static int random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || nbytes > sizeof(b) || read(fd, b, nbytes) != (ssize_t)nbytes) {
        if (fd >= 0)
            close(fd);
        return -EIO;
    }
    close(fd);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

static int wait_ready(kopt_test_s3_t *s, double t0)
{
    char url[128];

    snprintf(url, sizeof(url), "%s/__kopt/stats", s->url);
    while (kopt_test_now() - t0 < READY_TIMEOUT_S) {
        long status = 0;

        if (!kopt_test_proc_alive(&s->proc))
            break;
        if (kopt_test_http(url, NULL, 1000, &status, NULL) == 0 && status == 200) {
            s->start_seconds = kopt_test_now() - t0;
            return 0;
        }
        usleep(50 * 1000);
    }
    kopt_test_log_tail(s->log_path, 30);
    return kopt_test_proc_alive(&s->proc) ? -ETIMEDOUT : -EIO;
}

static int spawn_and_wait(kopt_test_s3_t *s)
{
    char port[16], key_env[128], secret_env[128];
    char *argv[] = {"node", s->front, s->modules, port, s->store_dir, s->bucket, NULL};
    char *env[] = {key_env, secret_env, NULL};
    double t0;
    int r;

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(key_env, sizeof(key_env), "KOPT_TEST_S3_KEY=%s", s->access_key);
    snprintf(secret_env, sizeof(secret_env), "KOPT_TEST_S3_SECRET=%s", s->secret_key);
    t0 = kopt_test_now();
    r = kopt_test_proc_spawn(&s->proc, argv, env, s->log_path);
    if (r == 0) {
        s->pid = s->proc.pid;
        r = wait_ready(s, t0);
    }
    return r;
}

static void cleanup_cb(void *arg)
{
    kopt_test_s3_free(arg);
}

int kopt_test_s3_start(kopt_test_s3_t **out, const char *src_root)
{
    kopt_test_s3_t *s = calloc(1, sizeof(*s));
    FILE *f;
    int r = -ENOMEM;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    if (asprintf(&s->front, "%s/tests/harness/s3_front.mjs", src_root) < 0 ||
        asprintf(&s->modules, "%s/.tools/s3rver/node_modules", src_root) < 0)
        goto fail;
    {
        char probe[4096];

        snprintf(probe, sizeof(probe), "%s/s3rver/package.json", s->modules);
        if (access(probe, R_OK) != 0) {
            fprintf(stderr, "harness: s3rver is not installed in %s (run scripts/deps)\n",
                    s->modules);
            r = -ENOENT;
            goto fail;
        }
    }
    snprintf(s->bucket, sizeof(s->bucket), "kopt-test");
    if (random_hex(s->access_key, 8) < 0 || random_hex(s->secret_key, 20) < 0) {
        r = -EIO;
        goto fail;
    }
    s->dir = kopt_test_owned_tmpdir("kopt-s3");
    if (!s->dir || asprintf(&s->store_dir, "%s/store", s->dir) < 0 ||
        asprintf(&s->log_path, "%s/s3.log", s->dir) < 0 ||
        asprintf(&s->credentials_file, "%s/credentials", s->dir) < 0)
        goto fail;
    f = fopen(s->credentials_file, "w");
    if (!f) {
        r = -errno;
        goto fail;
    }
    fprintf(f, "%s\n%s\n", s->access_key, s->secret_key);
    fclose(f);
    for (int attempt = 0; attempt < 3; attempt++) {
        s->port = kopt_test_free_port();
        if (s->port < 0) {
            r = -EADDRNOTAVAIL;
            goto fail;
        }
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
        r = spawn_and_wait(s);
        if (r != -EIO || !kopt_test_log_contains(s->log_path, "EADDRINUSE"))
            break;
        kopt_test_proc_release(&s->proc);
    }
    if (r < 0)
        goto fail;
    kopt_test_cleanup_push(cleanup_cb, s);
    fprintf(stderr,
            "harness: s3 server (s3rver + SigV4 front) pid %d at %s, bucket %s, ready "
            "in %.2f s\n",
            (int)s->pid, s->url, s->bucket, s->start_seconds);
    *out = s;
    return 0;
fail:
    kopt_test_proc_release(&s->proc);
    if (s->dir)
        kopt_test_rmtree(s->dir);
    free(s->dir);
    free(s->store_dir);
    free(s->log_path);
    free(s->credentials_file);
    free(s->front);
    free(s->modules);
    free(s);
    return r;
}

int kopt_test_s3_fault(kopt_test_s3_t *s, const char *json_rule)
{
    char url[128];
    long status = 0;

    snprintf(url, sizeof(url), "%s/__kopt/fault", s->url);
    if (kopt_test_http(url, json_rule, 5000, &status, NULL) < 0 || status != 200)
        return -EIO;
    return 0;
}

long kopt_test_s3_stat(kopt_test_s3_t *s, const char *name)
{
    char url[128], *body = NULL;
    long status = 0, v = -1;

    snprintf(url, sizeof(url), "%s/__kopt/stats", s->url);
    if (kopt_test_http(url, NULL, 5000, &status, &body) == 0 && status == 200 && body) {
        json_t *j = json_loads(body, 0, NULL);
        json_t *x = j ? json_object_get(j, name) : NULL;

        if (json_is_integer(x))
            v = (long)json_integer_value(x);
        json_decref(j);
    }
    free(body);
    return v;
}

int kopt_test_s3_kill9(kopt_test_s3_t *s)
{
    int r = kopt_test_proc_kill9(&s->proc);

    s->pid = 0;
    return r;
}

int kopt_test_s3_restart(kopt_test_s3_t *s)
{
    int r;

    if (!s->proc.argv)
        return -EINVAL;
    kopt_test_proc_stop(&s->proc, STOP_TIMEOUT_MS);
    r = kopt_test_proc_respawn(&s->proc);
    if (r < 0)
        return r;
    s->pid = s->proc.pid;
    return wait_ready(s, kopt_test_now());
}

void kopt_test_s3_free(kopt_test_s3_t *s)
{
    if (!s)
        return;
    kopt_test_cleanup_forget(s);
    kopt_test_proc_stop(&s->proc, STOP_TIMEOUT_MS);
    kopt_test_proc_release(&s->proc);
    if (s->dir && access(s->dir, F_OK) == 0)
        kopt_test_rmtree(s->dir);
    free(s->dir);
    free(s->store_dir);
    free(s->log_path);
    free(s->credentials_file);
    free(s->front);
    free(s->modules);
    free(s);
}

void kopt_test_s3_store_url(const kopt_test_s3_t *s, const char *prefix, char *out, size_t len)
{
    snprintf(out, len, "%s/%s%s%s", s->url, s->bucket, prefix ? "/" : "", prefix ? prefix : "");
}
