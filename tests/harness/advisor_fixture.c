/* "An advisor with seeded data", as the advisor, CLI, SDK and web tests
 * start it: real nats-server and clickhouse-server, the aggregator's schema,
 * 48 (or N) hourly rollups of each seeded container in container_hourly, an
 * API keys file, and kopt-advisor on free loopback ports, ready (/readyz).
 * Each test keeps its own seed table, since its assertions depend on it. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kopt/clickhouse.h>
#include <kopt/usage_buckets.h>

#include "schema.h"

#define MAX_ARGS 64

int kopt_test_seed_hours(kopt_test_clickhouse_t *ch, const kopt_test_seed_t *seed, size_t n,
                         int hours)
{
    int64_t now = (int64_t)time(NULL) / 3600 * 3600;
    char *sql = NULL, *out = NULL;
    size_t len = 0;
    int rows = 0, rc;
    FILE *f;

    if (n == 0)
        return 0;
    f = open_memstream(&sql, &len);
    if (!f)
        return -ENOMEM;
    fputs("INSERT INTO kopt.container_hourly (cluster, namespace, workload_kind, workload_name, "
          "container, hour, window_count, pod_count, sample_count, cpu_usage_mean_cores, "
          "cpu_usage_peak_cores, cpu_usage_core_seconds, cpu_throttled_seconds, "
          "cpu_throttled_periods, cpu_periods, cpu_hist_index, cpu_hist_count, "
          "memory_working_set_peak_bytes, memory_rss_peak_bytes, mem_hist_index, mem_hist_count, "
          "oom_kills, restarts, cpu_request_cores, cpu_limit_cores, memory_request_bytes, "
          "memory_limit_bytes, rolled_at) VALUES ",
          f);
    for (size_t i = 0; i < n; i++) {
        const kopt_test_seed_t *s = &seed[i];
        uint32_t pods = s->pods ? s->pods : 1;

        /* A window a minute per pod, peak CPU 1.5 times the mean. */
        for (int h = hours > 0 ? hours : 48; h >= 1; h--) {
            uint32_t w = 60 * pods;
            uint32_t oom = s->oom_every && h % (int)s->oom_every == 0;

            fprintf(f,
                    "%s('%s','%s','%s','%s','%s',%lld,%u,%u,%u,%.6f,%.6f,%.3f,0,0,0,[%d],[%u],"
                    "%.0f,%.0f,[%d],[%u],%u,0,%.3f,%.3f,%.0f,%.0f,%lld)",
                    rows++ ? "," : "", s->cluster, s->ns, s->kind, s->name, s->container,
                    (long long)(now - (int64_t)h * 3600), w, pods, w * 6, s->cpu, s->cpu * 1.5,
                    s->cpu * 60 * w, kopt_cpu_bucket(s->cpu), w, s->mem, s->mem,
                    kopt_memory_bucket(s->mem), w, oom, s->cpu_req, s->cpu_lim, s->mem_req,
                    s->mem_lim, (long long)now);
        }
    }
    fclose(f);
    rc = kopt_test_clickhouse_query(ch, sql, &out);
    if (rc != 0)
        fprintf(stderr, "seeding container_hourly failed: %s\n", out ? out : "");
    free(out);
    free(sql);
    return rc;
}

static int migrate(kopt_test_clickhouse_t *ch)
{
    kopt_ch_options_t o = {0};
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    int rc;

    o.url = ch->url;
    if (kopt_ch_client_new(&o, &c, &err) != 0) {
        fprintf(stderr, "clickhouse client: %s\n", err.message);
        return -1;
    }
    rc = agg_schema_migrate(c, NULL, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "schema migration: %s\n", err.message);
    kopt_ch_client_free(c);
    return rc;
}

static int make_dirs(kopt_test_advisor_t *a, const kopt_test_advisor_opts_t *o)
{
    char prefix[128];

    snprintf(prefix, sizeof(prefix), "kopt-%s-test", o->name ? o->name : "advisor");
    a->dir = kopt_test_tmpdir(prefix);
    if (!a->dir)
        return -1;
    snprintf(a->keys, sizeof(a->keys), "%s/keys", a->dir);
    snprintf(a->log, sizeof(a->log), "%s/advisor.log", a->dir);
    if (!o->tls && !o->clickhouse_tls)
        return 0;
    snprintf(prefix, sizeof(prefix), "kopt-%s-certs", o->name ? o->name : "advisor");
    a->certs = kopt_test_tmpdir(prefix);
    if (!a->certs || kopt_test_make_certs(o->src_dir, a->certs) != 0)
        return -1;
    snprintf(a->ca, sizeof(a->ca), "%s/ca.pem", a->certs);
    snprintf(a->cert, sizeof(a->cert), "%s/server.pem", a->certs);
    snprintf(a->key, sizeof(a->key), "%s/server-key.pem", a->certs);
    return 0;
}

/* Mode 0600: the advisor may insist that secrets are not world-readable. */
static int write_keys(const kopt_test_advisor_t *a, const char *text)
{
    int fd = open(a->keys, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fputs(text ? text : "", f);
    return fclose(f) == 0 ? 0 : -1;
}

int kopt_test_advisor_setup(kopt_test_advisor_t *a, const kopt_test_advisor_opts_t *o)
{
    kopt_test_clickhouse_opts_t co = {0};
    int rc = 0;

    memset(a, 0, sizeof(*a));
    a->advisor_exe = o->advisor_exe;
    a->tls = o->tls;
    a->env = o->env;
    if (make_dirs(a, o) != 0) {
        fprintf(stderr, "advisor fixture: temp dirs or certificates failed\n");
        return -1;
    }
    if (o->clickhouse_tls) {
        co.tls_cert = a->cert;
        co.tls_key = a->key;
    }
    if (!o->no_nats && (rc = kopt_test_nats_start(&a->nats, o->nats)) != 0)
        goto servers;
    if (!o->no_clickhouse)
        rc = kopt_test_clickhouse_start_opts(&a->ch, &co);
servers:
    if (rc == -ENOENT) {
        fprintf(stderr, "nats-server or clickhouse-server missing: skipping\n");
        return -ENOENT;
    }
    if (rc != 0)
        return -1;
    snprintf(a->nats_url, sizeof(a->nats_url), "%s", a->nats ? a->nats->url : "");
    if (a->ch) {
        snprintf(a->clickhouse_url, sizeof(a->clickhouse_url), "%s", a->ch->url);
        if (migrate(a->ch) != 0 || kopt_test_seed_hours(a->ch, o->seed, o->n_seed, o->hours) != 0)
            return -1;
    } else {
        /* Nothing listens there: the advisor answers from (empty) memory. */
        snprintf(a->clickhouse_url, sizeof(a->clickhouse_url), "http://127.0.0.1:%d",
                 kopt_test_free_port());
    }
    if (write_keys(a, o->keys) != 0) {
        fprintf(stderr, "advisor fixture: cannot write %s\n", a->keys);
        return -1;
    }
    return 0;
}

int kopt_test_advisor_analyze_once(kopt_test_advisor_t *a)
{
    char log[700];
    char *once[] = {(char *)a->advisor_exe,
                    "analyze",
                    "--once",
                    "--clickhouse-url",
                    a->clickhouse_url,
                    "--nats-url",
                    a->nats_url,
                    "--log-format",
                    "text",
                    NULL};
    int rc;

    snprintf(log, sizeof(log), "%s/analyze.log", a->dir);
    rc = kopt_test_proc_run(once, log, 120000);
    if (rc != 0) {
        kopt_test_log_tail(log, 40);
        fprintf(stderr, "kopt-advisor analyze --once exited %d\n", rc);
        return -1;
    }
    return 0;
}

int kopt_test_advisor_spawn(const kopt_test_advisor_t *a, kopt_test_proc_t *p, const char *log,
                            int grpc_port, int http_port, int admin_port, const char *const *extra)
{
    char grpc_l[64], http_l[64], admin_l[64], url[128];
    const char *argv[MAX_ARGS];
    long st = 0;
    int n = 0;

    snprintf(grpc_l, sizeof(grpc_l), "127.0.0.1:%d", grpc_port);
    snprintf(http_l, sizeof(http_l), "127.0.0.1:%d", http_port);
    snprintf(admin_l, sizeof(admin_l), "127.0.0.1:%d", admin_port);
    argv[n++] = a->advisor_exe;
    if (a->tls) {
        const char *tls[] = {"--tls-ca", a->ca, "--tls-cert", a->cert, "--tls-key", a->key};

        memcpy(argv + n, tls, sizeof(tls));
        n += 6;
    } else {
        argv[n++] = "--insecure";
    }
    {
        const char *rest[] = {"--api-keys-file",
                              a->keys,
                              "--listen",
                              grpc_l,
                              "--http-listen",
                              http_l,
                              "--admin-listen",
                              admin_l,
                              "--clickhouse-url",
                              a->clickhouse_url,
                              "--nats-url",
                              a->nats_url,
                              "--analysis-interval",
                              "0"};

        memcpy(argv + n, rest, sizeof(rest));
        n += (int)(sizeof(rest) / sizeof(rest[0]));
    }
    for (size_t i = 0; extra && extra[i] && n + 1 < MAX_ARGS; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (kopt_test_proc_spawn(p, (char *const *)argv, a->env, log) != 0) {
        fprintf(stderr, "cannot start %s\n", a->advisor_exe);
        return -1;
    }
    if (!a->ch) {
        /* Never ready without ClickHouse: wait until the gateway listens. */
        for (int i = 0; i < 300 && !kopt_test_port_accepts(http_port); i++)
            usleep(50 * 1000);
        if (kopt_test_port_accepts(http_port))
            return 0;
        kopt_test_log_tail(log, 40);
        fprintf(stderr, "kopt-advisor does not listen on %s\n", http_l);
        return -1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", admin_port);
    for (int i = 0; i < 300 && st != 200; i++) {
        usleep(100 * 1000);
        kopt_test_http(url, NULL, 1000, &st, NULL);
    }
    if (st != 200) {
        kopt_test_log_tail(log, 40);
        fprintf(stderr, "kopt-advisor not ready: /readyz %ld\n", st);
        return -1;
    }
    return 0;
}

int kopt_test_advisor_start(kopt_test_advisor_t *a, const char *const *extra)
{
    a->grpc_port = kopt_test_free_port();
    a->http_port = kopt_test_free_port();
    a->admin_port = kopt_test_free_port();
    snprintf(a->target, sizeof(a->target), "127.0.0.1:%d", a->grpc_port);
    snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->http_port);
    return kopt_test_advisor_spawn(a, &a->proc, a->log, a->grpc_port, a->http_port, a->admin_port,
                                   extra);
}

int kopt_test_advisor_up(kopt_test_advisor_t *a, const kopt_test_advisor_opts_t *o,
                         const char *const *extra)
{
    int rc = kopt_test_advisor_setup(a, o);

    if (rc != 0)
        return rc;
    if (kopt_test_advisor_analyze_once(a) != 0)
        return -1;
    return kopt_test_advisor_start(a, extra);
}

int kopt_test_advisor_stop_checked(kopt_test_proc_t *p, const char *log)
{
    int r;

    if (!p->pid) {
        kopt_test_proc_release(p);
        return 0;
    }
    r = kopt_test_proc_stop(p, 10000);
    if (r != 0 || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0 ||
        kopt_test_log_contains(log, "ERROR: AddressSanitizer") ||
        kopt_test_log_contains(log, "LeakSanitizer") ||
        kopt_test_log_contains(log, "runtime error")) {
        kopt_test_log_tail(log, 60);
        fprintf(stderr, "kopt-advisor exit status %d\n", p->status);
        r = -1;
    } else if (getenv("KOPT_TEST_VERBOSE")) {
        kopt_test_log_tail(log, 60);
    }
    kopt_test_proc_release(p);
    return r;
}

int kopt_test_advisor_teardown(kopt_test_advisor_t *a)
{
    int r = kopt_test_advisor_stop_checked(&a->proc, a->log);

    /* The servers are in the cleanup registry. */
    kopt_test_cleanup_all();
    a->nats = NULL;
    a->ch = NULL;
    if (a->dir)
        kopt_test_rmtree(a->dir);
    if (a->certs)
        kopt_test_rmtree(a->certs);
    free(a->dir);
    free(a->certs);
    a->dir = a->certs = NULL;
    return r;
}
