/* The e2e tests' system (e2e_system.h). */
#include "e2e_system.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define MAX_ARGS 48

static const char *const names[E2E_N] = {"ingest", "aggregator", "advisor", "workload", "agent"};

/* An argv being built, with room for the strings it formats. */
typedef struct {
    char *v[MAX_ARGS];
    int n;
    char text[12][600];
    int n_text;
} args_t;

static void add(args_t *a, const char *arg)
{
    assert_true(a->n < MAX_ARGS - 1);
    a->v[a->n++] = (char *)arg;
    a->v[a->n] = NULL;
}

/* Adds `flag` and a formatted value. */
__attribute__((format(printf, 3, 4))) static void addf(args_t *a, const char *flag, const char *fmt,
                                                       ...)
{
    va_list ap;
    char *t;

    assert_true(a->n_text < (int)(sizeof(a->text) / sizeof(a->text[0])));
    t = a->text[a->n_text++];
    va_start(ap, fmt);
    vsnprintf(t, sizeof(a->text[0]), fmt, ap);
    va_end(ap);
    add(a, flag);
    add(a, t);
}

static void add_addr(args_t *a, const char *flag, int port)
{
    addf(a, flag, "127.0.0.1:%d", port);
}

/* The server's certificate, or --insecure. */
static void add_server_tls(const e2e_system_t *s, args_t *a)
{
    if (!s->o.secure) {
        add(a, "--insecure");
        return;
    }
    addf(a, "--tls-ca", "%s/ca.pem", s->certs);
    addf(a, "--tls-cert", "%s/server.pem", s->certs);
    addf(a, "--tls-key", "%s/server-key.pem", s->certs);
}

/* --nats-url, and when secure the component's NATS user. */
static void add_nats(const e2e_system_t *s, args_t *a, const char *user)
{
    add(a, "--nats-url");
    add(a, s->nats->url);
    if (s->o.secure) {
        assert_true(a->n_text < (int)(sizeof(a->text) / sizeof(a->text[0])));
        assert_int_equal(kopt_test_nats_auth_args(s->nats, user, (const char **)a->v, &a->n,
                                                  a->text[a->n_text++], sizeof(a->text[0])),
                         0);
        a->v[a->n] = NULL;
    }
}

static void add_otlp(const e2e_system_t *s, args_t *a)
{
    if (s->o.otlp) {
        add(a, "--otlp-endpoint");
        add(a, s->o.otlp);
    }
}

static void build(const e2e_system_t *s, e2e_proc_t p, args_t *a)
{
    switch (p) {
    case E2E_INGEST:
        add(a, s->o.ingest_exe);
        add_addr(a, "--listen", s->p_ingest);
        add_addr(a, "--admin-listen", s->p_ingest_admin);
        add_server_tls(s, a);
        add_nats(s, a, "kopt-ingest");
        add_otlp(s, a);
        break;
    case E2E_AGGREGATOR:
        add(a, s->o.aggregator_exe);
        add_addr(a, "--admin-listen", s->p_agg_admin);
        add_nats(s, a, "kopt-aggregator");
        add(a, "--clickhouse-url");
        add(a, s->ch->url);
        add(a, "--rollup-interval");
        add(a, s->o.rollup_interval ? s->o.rollup_interval : "5s");
        add(a, "--ack-wait");
        add(a, "5s");
        add(a, "--clickhouse-timeout");
        add(a, "10s");
        add_otlp(s, a);
        break;
    case E2E_ADVISOR:
        add(a, s->o.advisor_exe);
        add_addr(a, "--listen", s->p_adv);
        add_addr(a, "--http-listen", s->p_http);
        add_addr(a, "--admin-listen", s->p_adv_admin);
        add_server_tls(s, a);
        if (s->o.secure) {
            add(a, "--api-keys-file");
            add(a, s->keys);
        }
        add_nats(s, a, "kopt-advisor");
        add(a, "--clickhouse-url");
        add(a, s->ch->url);
        add(a, "--analysis-interval");
        add(a, "10s");
        add(a, "--clickhouse-timeout");
        add(a, "10s");
        add_otlp(s, a);
        break;
    case E2E_WORKLOAD:
        /* The workload the agent's rule "steady" groups. */
        add(a, "stress-ng");
        add(a, "--cpu");
        add(a, "1");
        add(a, "--cpu-load");
        add(a, "20");
        add(a, "--quiet");
        break;
    case E2E_AGENT:
        add(a, s->o.agent_exe);
        add(a, "--config");
        add(a, s->agent_conf);
        add_addr(a, "--ingest", s->p_ingest);
        if (s->o.secure) {
            add(a, "--tls-server-name");
            add(a, "localhost");
            addf(a, "--tls-ca", "%s/ca.pem", s->certs);
            addf(a, "--tls-cert", "%s/agent-local.pem", s->certs);
            addf(a, "--tls-key", "%s/agent-local-key.pem", s->certs);
        } else {
            add(a, "--insecure");
        }
        add_addr(a, "--admin-listen", s->p_agent_admin);
        add(a, "--window");
        add(a, "5s");
        add(a, "--sample-interval");
        add(a, "1s");
        add_otlp(s, a);
        break;
    default:
        fail();
    }
}

void e2e_start(e2e_system_t *s, e2e_proc_t p)
{
    args_t a = {0};
    char log[600];

    build(s, p, &a);
    snprintf(log, sizeof(log), "%s/%s.log", s->dir, names[p]);
    kopt_test_proc_release(&s->proc[p]);
    assert_int_equal(kopt_test_proc_spawn(&s->proc[p], a.v, NULL, log), 0);
}

static int admin_port(const e2e_system_t *s, e2e_proc_t p)
{
    switch (p) {
    case E2E_INGEST:
        return s->p_ingest_admin;
    case E2E_AGGREGATOR:
        return s->p_agg_admin;
    case E2E_ADVISOR:
        return s->p_adv_admin;
    case E2E_AGENT:
        return s->p_agent_admin;
    default:
        return 0;
    }
}

int e2e_wait_ready(const e2e_system_t *s, e2e_proc_t p, double seconds)
{
    return kopt_test_wait_http_ok(admin_port(s, p), p == E2E_ADVISOR ? "/healthz" : "/readyz",
                                  seconds);
}

void e2e_admin_url(const e2e_system_t *s, e2e_proc_t p, char *out, size_t len)
{
    snprintf(out, len, "http://127.0.0.1:%d", admin_port(s, p));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int free_port(void)
{
    int p = kopt_test_free_port();

    assert_true(p > 0);
    return p;
}

/* scripts/certs' dev PKI and the API key file. */
static void make_secrets(e2e_system_t *s)
{
    char script[600], log[600], keys[256];
    char *argv[] = {script, s->certs, "--cluster", "local", NULL};

    snprintf(script, sizeof(script), "%s/scripts/certs", s->o.src_dir);
    snprintf(log, sizeof(log), "%s/certs.log", s->dir);
    assert_int_equal(kopt_test_proc_run(argv, log, 60000), 0);
    snprintf(keys, sizeof(keys), "# e2e\n%s\n", s->o.api_key ? s->o.api_key : "");
    write_file(s->keys, keys);
}

/* The agent's configuration: scripts/up's grouping rules, with the test's
 * one workload as "steady". */
static void write_agent_conf(const e2e_system_t *s)
{
    char conf[2048];

    snprintf(conf, sizeof(conf),
             "source: proc\ncluster: local\nproc-namespace: host\nspool-dir: %s\n"
             "proc-rules:\n"
             "  - \"steady=^stress-ng(-cpu \\\\[| .*--cpu 1 --cpu-load)\"\n"
             "  - \"nats=(^|/)nats-server( |$)\"\n"
             "  - \"clickhouse=(^|/)clickhouse(-server| server)( |$)\"\n"
             "  - \"kopt-ingest=(^|/)kopt-ingest( |$)\"\n"
             "  - \"kopt-aggregator=(^|/)kopt-aggregator( |$)\"\n"
             "  - \"kopt-advisor=(^|/)kopt-advisor( |$)\"\n"
             "  - \"kopt-agent=(^|/)kopt-agent( |$)\"\n",
             s->spool);
    write_file(s->agent_conf, conf);
}

static void start_ready(e2e_system_t *s, e2e_proc_t p)
{
    e2e_start(s, p);
    if (p == E2E_WORKLOAD)
        return;
    if (e2e_wait_ready(s, p, 60) != 0)
        e2e_tail_logs(s, 20);
    assert_int_equal(e2e_wait_ready(s, p, 1), 0);
}

int e2e_up(e2e_system_t *s, const e2e_options_t *o)
{
    char log[600];
    char *migrate[] = {(char *)o->aggregator_exe, "migrate", "--clickhouse-url", NULL, NULL};
    kopt_test_nats_opts_t nats = {0};

    memset(s, 0, sizeof(*s));
    s->o = *o;
    s->dir = kopt_test_owned_tmpdir(o->name);
    assert_non_null(s->dir);
    snprintf(s->certs, sizeof(s->certs), "%s/certs", s->dir);
    snprintf(s->keys, sizeof(s->keys), "%s/api-keys", s->dir);
    snprintf(s->spool, sizeof(s->spool), "%s/spool", s->dir);
    snprintf(s->agent_conf, sizeof(s->agent_conf), "%s/agent.yaml", s->dir);
    if (o->secure) {
        make_secrets(s);
        nats.auth_certs_dir = s->certs; /* TLS and one user per component */
    }
    write_agent_conf(s);
    if (kopt_test_nats_start(&s->nats, &nats) == -ENOENT) {
        fprintf(stderr, "nats-server not installed (scripts/deps)\n");
        return -1;
    }
    assert_non_null(s->nats);
    assert_int_equal(kopt_test_clickhouse_start(&s->ch), 0);
    migrate[3] = s->ch->url;
    snprintf(log, sizeof(log), "%s/migrate.log", s->dir);
    assert_int_equal(kopt_test_proc_run(migrate, log, 60000), 0);
    s->p_ingest = free_port();
    s->p_ingest_admin = free_port();
    s->p_agg_admin = free_port();
    s->p_adv = free_port();
    s->p_http = free_port();
    s->p_adv_admin = free_port();
    s->p_agent_admin = free_port();
    for (int p = 0; p < E2E_N; p++)
        if (!(p == E2E_ADVISOR && o->no_advisor) && !(p == E2E_WORKLOAD && o->no_workload))
            start_ready(s, (e2e_proc_t)p);
    return 0;
}

void e2e_tail_logs(const e2e_system_t *s, int lines)
{
    char path[600];

    for (int p = 0; p < E2E_N; p++) {
        if (p == E2E_WORKLOAD || !s->dir)
            continue;
        snprintf(path, sizeof(path), "%s/%s.log", s->dir, names[p]);
        kopt_test_log_tail(path, lines);
    }
}

void e2e_down(e2e_system_t *s)
{
    for (int p = E2E_N - 1; p >= 0; p--) {
        if (s->proc[p].pid)
            kopt_test_proc_stop(&s->proc[p], 35000);
        kopt_test_proc_release(&s->proc[p]);
    }
    kopt_test_clickhouse_free(s->ch);
    kopt_test_nats_free(s->nats);
    s->ch = NULL;
    s->nats = NULL;
    if (s->dir) {
        if (getenv("KOPT_E2E_KEEP"))
            fprintf(stderr, "%s: kept %s\n", s->o.name, s->dir);
        else
            kopt_test_rmtree(s->dir);
        free(s->dir);
        s->dir = NULL;
    }
}

int e2e_ch_numbers(const e2e_system_t *s, const char *sql, unsigned long long *a,
                   unsigned long long *b)
{
    char *out = NULL;
    int r = kopt_test_clickhouse_query(s->ch, sql, &out), n;

    if (r < 0) {
        free(out);
        return r;
    }
    n = sscanf(out, "%llu\t%llu", a, b ? b : a);
    free(out);
    return n >= 1 ? 0 : -EIO;
}

int64_t e2e_wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
