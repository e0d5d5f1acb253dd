/* Unit tests for libkopt/config*.c: precedence, every type, messages that name
 * the key, value and source, did-you-mean, redaction, --help, YAML errors with
 * line numbers, oversize files and reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/config.h>
#include <kopt/util.h>

#include "harness.h"

typedef struct {
    kopt_config_addr_t admin_listen;
    kopt_config_addr_t listen;
    char *cluster;
    int64_t workers;
    bool insecure;
    uint64_t timeout_ms;
    uint64_t max_batch;
    int source;
    kopt_config_list_t ingest;
    char *tls_key;
    char *password;
    kopt_config_list_t api_keys;
    char *log_level;
} settings_t;

static const char *const sources[] = {"auto", "cgroup", "kubelet", "proc", NULL};

#define S(n, t, f, d, fl)                                                                          \
    .name = n, .type = t, .offset = offsetof(settings_t, f), .def = d, .flags = fl
static const kopt_config_setting_t table[] = {
    {S("admin-listen", KOPT_CONFIG_ADDRESS, admin_listen, ":7401", 0), .help = "health, metrics"},
    {S("listen", KOPT_CONFIG_ADDRESS, listen, ":7400", 0), .help = "gRPC address"},
    {S("cluster", KOPT_CONFIG_STRING, cluster, "dev", 0), .help = "cluster name"},
    {S("workers", KOPT_CONFIG_INT, workers, "4", KOPT_CONFIG_RELOADABLE), .min = 1, .max = 64,
     .help = "worker threads"},
    {S("insecure", KOPT_CONFIG_BOOL, insecure, "false", 0), .help = "plaintext, dev only"},
    {S("timeout", KOPT_CONFIG_DURATION, timeout_ms, "5s", KOPT_CONFIG_RELOADABLE),
     .help = "request timeout"},
    {S("max-batch", KOPT_CONFIG_BYTES, max_batch, "8MiB", 0), .help = "largest batch"},
    {S("source", KOPT_CONFIG_ENUM, source, "auto", 0), .choices = sources, .help = "metrics"},
    {S("ingest", KOPT_CONFIG_LIST, ingest, "127.0.0.1:7400", 0), .help = "ingest addresses"},
    {S("tls-key", KOPT_CONFIG_PATH, tls_key, NULL, 0), .help = "PEM key"},
    {S("clickhouse-password", KOPT_CONFIG_STRING, password, "changeme",
       KOPT_CONFIG_SECRET | KOPT_CONFIG_RELOADABLE),
     .help = "ClickHouse password"},
    {S("api-keys", KOPT_CONFIG_LIST, api_keys, NULL, KOPT_CONFIG_SECRET), .help = "API keys"},
    {S("log-level", KOPT_CONFIG_STRING, log_level, "info", KOPT_CONFIG_RELOADABLE),
     .help = "debug|info|warn|error"},
};
static const kopt_config_spec_t spec = {
    "kopt-test",       "1.2.3", "Tests the config module.", table, KOPT_ARRAY_SIZE(table),
    sizeof(settings_t)};

static char err[512];
static char *dir;
static char path[4096];

static int setup(void **state)
{
    (void)state;
    dir = kopt_test_tmpdir("kopt-config");
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kopt_test_rmtree(dir);
    free(dir);
    return 0;
}

/* Writes `len` bytes (strlen when -1) to <dir>/kopt.yaml; returns the path. */
static const char *write_yaml(const char *text, long len)
{
    FILE *f;

    snprintf(path, sizeof(path), "%s/kopt.yaml", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, len < 0 ? strlen(text) : (size_t)len, f);
    fclose(f);
    return path;
}

/* Loads with argv (NULL-terminated, without argv[0]) and envp. */
static int load(kopt_config_t **c, const char *const *args, const char *const *envp)
{
    char *argv[32] = {"kopt-test"};
    int argc = 1;

    for (; args && *args; args++)
        argv[argc++] = (char *)*args;
    return kopt_config_load(c, &spec, argc, argv, (char *const *)envp, NULL, err, sizeof(err));
}

static const settings_t *values(kopt_config_t *c)
{
    return kopt_config_values(c);
}

/* Loading must fail with -EINVAL and a message holding `want`. */
static void load_fails(const char *const *args, const char *const *envp, const char *want)
{
    kopt_config_t *c = NULL;
    int r = load(&c, args, envp);

    if (r != -EINVAL || !strstr(err, want))
        fail_msg("want -EINVAL and \"%s\", got %d \"%s\"", want, r, err);
    assert_null(c);
}

static void config_precedence_flag_env_file_default(void **state)
{
    const char *file = write_yaml("workers: 10\ncluster: from-file\n", -1);
    char cfg_env[4200];
    const char *env[] = {cfg_env, "KOPT_WORKERS=20", NULL};
    const char *env_no_workers[] = {cfg_env, NULL};
    const char *flags[] = {"--workers", "30", NULL};
    kopt_config_t *c;

    (void)state;
    snprintf(cfg_env, sizeof(cfg_env), "KOPT_CONFIG=%s", file);
    assert_int_equal(load(&c, flags, env), 0);
    assert_int_equal(values(c)->workers, 30);
    assert_int_equal(kopt_config_source(c, "workers"), KOPT_CONFIG_SRC_FLAG);
    assert_string_equal(values(c)->cluster, "from-file");
    assert_string_equal(kopt_config_file(c), file);
    kopt_config_free(c);
    assert_int_equal(load(&c, NULL, env), 0);
    assert_int_equal(values(c)->workers, 20);
    assert_int_equal(kopt_config_source(c, "workers"), KOPT_CONFIG_SRC_ENV);
    kopt_config_free(c);
    assert_int_equal(load(&c, NULL, env_no_workers), 0);
    assert_int_equal(values(c)->workers, 10);
    assert_int_equal(kopt_config_source(c, "workers"), KOPT_CONFIG_SRC_FILE);
    kopt_config_free(c);
    assert_int_equal(load(&c, NULL, NULL), 0);
    assert_int_equal(values(c)->workers, 4);
    assert_int_equal(kopt_config_source(c, "workers"), KOPT_CONFIG_SRC_DEFAULT);
    assert_int_equal(kopt_config_source(c, "tls-key"), KOPT_CONFIG_SRC_UNSET);
    assert_int_equal(kopt_config_source(c, "nope"), -ENOENT);
    assert_null(values(c)->tls_key);
    assert_null(kopt_config_file(c));
    kopt_config_free(c);
}

static void config_flag_config_beats_env_config(void **state)
{
    char flag[4200];
    const char *env[] = {"KOPT_CONFIG=/nonexistent/kopt.yaml", NULL};
    const char *args[] = {flag, NULL};
    kopt_config_t *c;

    (void)state;
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml("cluster: c1\n", -1));
    assert_int_equal(load(&c, args, env), 0);
    assert_string_equal(values(c)->cluster, "c1");
    kopt_config_free(c);
    assert_int_equal(load(&c, NULL, env), -ENOENT);
    assert_non_null(strstr(err, "cannot read /nonexistent/kopt.yaml"));
}

static void config_every_type_parses(void **state)
{
    const char *args[] = {"--listen",
                          "[::1]:7400",
                          "--admin-listen=:9",
                          "--insecure",
                          "--timeout",
                          "1h30m",
                          "--max-batch",
                          "64KiB",
                          "--source",
                          "KUBELET",
                          "--ingest",
                          "a:1, b:2,c:3",
                          "--tls-key",
                          "/etc/kopt/key.pem",
                          NULL};
    const char *env[] = {"KOPT_CLUSTER=", "KOPT_WORKERS=+7", NULL};
    kopt_config_t *c;
    const settings_t *v;

    (void)state;
    assert_int_equal(load(&c, args, env), 0);
    v = values(c);
    assert_string_equal(v->listen.host, "::1");
    assert_int_equal(v->listen.port, 7400);
    assert_string_equal(v->listen.text, "[::1]:7400");
    assert_string_equal(v->admin_listen.host, "");
    assert_int_equal(v->admin_listen.port, 9);
    assert_string_equal(v->cluster, "dev"); /* an empty env var counts as unset */
    assert_int_equal(v->workers, 7);
    assert_true(v->insecure);
    assert_int_equal(v->timeout_ms, 5400000);
    assert_int_equal(v->max_batch, 65536);
    assert_int_equal(v->source, 2);
    assert_int_equal(v->ingest.n, 3);
    assert_string_equal(v->ingest.items[0], "a:1");
    assert_string_equal(v->ingest.items[1], "b:2");
    assert_string_equal(v->tls_key, "/etc/kopt/key.pem");
    kopt_config_free(c);
}

static void config_every_type_parses_values(void **state)
{
    static const struct {
        const char *flag;
        uint64_t want;
    } sizes[] = {{"--max-batch=512", 512},
                 {"--max-batch=64KiB", 65536},
                 {"--max-batch=10MB", 10000000},
                 {"--max-batch=1GiB", 1ULL << 30},
                 {"--max-batch=2 Mi", 2 << 20},
                 {"--timeout=250ms", 250},
                 {"--timeout=2m", 120000},
                 {"--timeout=1h30m", 5400000},
                 {"--timeout=0", 0},
                 {"--workers=64", 64}};
    const char *bools[] = {"yes", "ON", "1", "true", "no", "off", "0", "False"};
    kopt_config_t *c;

    (void)state;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(sizes); i++) {
        const char *args[] = {sizes[i].flag, NULL};
        assert_int_equal(load(&c, args, NULL), 0);
        if (strncmp(sizes[i].flag, "--max", 5) == 0)
            assert_int_equal(values(c)->max_batch, sizes[i].want);
        else if (strncmp(sizes[i].flag, "--timeout", 9) == 0)
            assert_int_equal(values(c)->timeout_ms, sizes[i].want);
        else
            assert_int_equal(values(c)->workers, sizes[i].want);
        kopt_config_free(c);
    }
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(bools); i++) {
        char flag[64];
        const char *args[] = {flag, NULL};
        snprintf(flag, sizeof(flag), "--insecure=%s", bools[i]);
        assert_int_equal(load(&c, args, NULL), 0);
        assert_int_equal(values(c)->insecure, i < 4);
        kopt_config_free(c);
    }
}

static void config_bad_values_say_why(void **state)
{
    static const char *const cases[][3] = {
        {"--workers", "abc", "workers: invalid integer \"abc\" (from flag --workers): not a whole"},
        {"--workers", "0", "workers: invalid integer \"0\" (from flag --workers): must be 1..64"},
        {"--workers", "99999999999999999999", "must be 1..64"},
        {"--insecure=maybe", NULL, "insecure: invalid bool \"maybe\""},
        {"--timeout", "5", "timeout: invalid duration \"5\" (from flag --timeout): missing unit"},
        {"--timeout", "5x", "unknown unit; use ms, s, m, h or d"},
        {"--timeout", "s", "use a number and a unit"},
        {"--max-batch", "8XB", "max-batch: invalid size \"8XB\""},
        {"--max-batch", "99999999999TiB", "too large"},
        {"--source", "docker",
         "source: invalid choice \"docker\" (from flag --source): must be "
         "one of auto|cgroup|kubelet|proc"},
        {"--listen", "localhost", "missing port"},
        {"--listen", "::1:7400", "IPv6 hosts need brackets"},
        {"--listen", "[::1]7400", "use [ipv6]:port"},
        {"--listen", "a b:80", "bad character ' ' in host"},
        {"--listen", "host:0", "port must be 1..65535"},
        {"--listen", "host:", "missing port"},
        {"--ingest", "a,,b", "ingest: invalid list \"a,,b\" (from flag --ingest): empty item"},
        {"--tls-key", "", "tls-key: invalid path \"\" (from flag --tls-key): empty path"},
        {"--cluster", NULL, "flag --cluster needs a value"},
    };

    (void)state;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(cases); i++) {
        const char *args[] = {cases[i][0], cases[i][1], NULL};
        load_fails(args, NULL, cases[i][2]);
    }
}

static void config_error_names_key_value_and_source(void **state)
{
    const char *args[] = {"--admin-listen", "localhost:99999", NULL};
    const char *env[] = {"KOPT_ADMIN_LISTEN=localhost:99999", NULL};
    char want[4200], flag[4200];
    const char *cargs[] = {flag, NULL};

    (void)state;
    load_fails(args, NULL,
               "config: admin-listen: invalid address \"localhost:99999\" (from flag "
               "--admin-listen): port must be 1..65535");
    load_fails(NULL, env,
               "config: admin-listen: invalid address \"localhost:99999\" (from env "
               "KOPT_ADMIN_LISTEN): port must be 1..65535");
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml("# c\nadmin-listen: x:0\n", -1));
    snprintf(want, sizeof(want), "invalid address \"x:0\" (from %s/kopt.yaml:2)", dir);
    load_fails(cargs, NULL, want);
}

static void config_unknown_names_get_suggestions(void **state)
{
    const char *typo[] = {"--admin-listn=:1", NULL};
    const char *far[] = {"--zzzzzzzz", NULL};
    const char *secret_typo[] = {"--clickhouse-pasword=hunter2", NULL};
    const char *single[] = {"-w=3", NULL};
    const char *env[] = {"KOPT_ADMIN_LISTN=:1", "KOPT_OTHER_TOOL=x", "PATH=/bin", NULL};
    char flag[4200], want[4200];
    const char *cargs[] = {flag, NULL};
    kopt_config_t *c;

    (void)state;
    load_fails(typo, NULL, "config: unknown flag \"--admin-listn\" (did you mean --admin-listen?)");
    load_fails(secret_typo, NULL, "unknown flag \"--clickhouse-pasword\" (did you mean");
    assert_null(strstr(err, "hunter2"));
    load_fails(far, NULL, "unknown flag \"--zzzzzzzz\" (see --help)");
    load_fails(single, NULL, "unknown flag \"-w\" (flags start with --)");
    assert_int_equal(load(&c, NULL, env), 0); /* unknown KOPT_* are other tools' */
    kopt_config_free(c);
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml("cluster: c\n\nadmin-listn: :1\n", -1));
    snprintf(want, sizeof(want),
             "config: %s/kopt.yaml:3: unknown key \"admin-listn\" (did you mean \"admin-listen\"?)",
             dir);
    load_fails(cargs, NULL, want);
}

static void config_secrets_never_printed(void **state)
{
    const char *env[] = {"KOPT_CLICKHOUSE_PASSWORD=hunter2", NULL};
    const char *bad[] = {"--api-keys", "k1,,hunter2", NULL};
    char *out = NULL, line[1024];
    size_t outlen = 0;
    FILE *f;
    kopt_config_t *c;

    (void)state;
    load_fails(bad, NULL, "api-keys: invalid list [redacted] (from flag --api-keys): empty item");
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(load(&c, NULL, env), 0);
    assert_string_equal(values(c)->password, "hunter2");
    f = open_memstream(&out, &outlen);
    assert_int_equal(kopt_config_dump(c, f), 0);
    fclose(f);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "clickhouse-password: \"[redacted]\"  # env\n"));
    assert_non_null(strstr(out, "admin-listen: \":7401\"  # default\n"));
    assert_non_null(strstr(out, "max-batch: 8MiB  # default\n"));
    assert_non_null(strstr(out, "tls-key: ~  # unset\n"));
    free(out);
    assert_int_equal(kopt_config_summary(c, line, sizeof(line)), 0);
    assert_string_equal(line, "clickhouse-password=[redacted](env)");
    kopt_config_free(c);
}

/* A URL's userinfo is a secret too, in the summary, the dump and errors. */
static void config_url_passwords_never_printed(void **state)
{
    const char *ok[] = {"--cluster", "nats://natsuser:NatsPw123@127.0.0.1:4222", "--ingest",
                        "a:IngPw@h1:7400,h2:7400", NULL};
    const char *bad[] = {"--ingest", "u:ListPw@h1:7400,,h2:7400", NULL};
    char *out = NULL, line[1024];
    size_t outlen = 0;
    FILE *f;
    kopt_config_t *c;

    (void)state;
    load_fails(bad, NULL, "ingest: invalid list \"[redacted]@h1:7400,,h2:7400\"");
    assert_null(strstr(err, "ListPw"));
    assert_int_equal(load(&c, ok, NULL), 0);
    assert_int_equal(kopt_config_summary(c, line, sizeof(line)), 0);
    assert_string_equal(line, "cluster=nats://[redacted]@127.0.0.1:4222(flag) "
                              "ingest=[redacted]@h1:7400,h2:7400(flag)");
    f = open_memstream(&out, &outlen);
    assert_int_equal(kopt_config_dump(c, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "cluster: \"nats://[redacted]@127.0.0.1:4222\"  # flag\n"));
    assert_non_null(strstr(out, "ingest: [\"[redacted]@h1:7400\", \"h2:7400\"]  # flag\n"));
    assert_null(strstr(out, "Pw"));
    free(out);
    kopt_config_free(c);
}

static void config_help_and_version(void **state)
{
    char *argv[] = {"kopt-test", "--bogus", "--help", NULL};
    char *vargv[] = {"kopt-test", "--version", NULL};
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    kopt_config_t *c = (kopt_config_t *)1;

    (void)state;
    assert_int_equal(kopt_config_load(&c, &spec, 3, argv, NULL, f, err, sizeof(err)),
                     KOPT_CONFIG_EXIT_HELP);
    assert_null(c);
    fclose(f);
    assert_non_null(strstr(out, "Usage: kopt-test [flags]\nTests the config module.\n"));
    assert_non_null(strstr(out, "  --admin-listen ADDR\n        health, metrics\n"
                                "        env KOPT_ADMIN_LISTEN, default \":7401\"\n"));
    assert_non_null(strstr(out, "  --insecure\n"));
    assert_non_null(strstr(out, "one of auto|cgroup|kubelet|proc"));
    assert_non_null(strstr(out, ", 1..64, reloadable (SIGHUP)"));
    assert_non_null(strstr(out, "env KOPT_CLICKHOUSE_PASSWORD, default [redacted]"));
    assert_null(strstr(out, "changeme"));
    assert_non_null(strstr(out, "--config FILE"));
    free(out);
    out = NULL;
    f = open_memstream(&out, &outlen);
    assert_int_equal(kopt_config_load(&c, &spec, 2, vargv, NULL, f, err, sizeof(err)),
                     KOPT_CONFIG_EXIT_HELP);
    fclose(f);
    assert_string_equal(out, "kopt-test 1.2.3\n");
    free(out);
}

static void config_positional_args_and_flag_forms(void **state)
{
    const char *args[] = {"analyze", "--workers",    "3", "now", "--insecure", "--cluster=a=b",
                          "--",      "--not-a-flag", "-", NULL};
    kopt_config_t *c;
    char *const *pos;
    int n;

    (void)state;
    assert_int_equal(load(&c, args, NULL), 0);
    pos = kopt_config_args(c, &n);
    assert_int_equal(n, 4);
    assert_string_equal(pos[0], "analyze");
    assert_string_equal(pos[1], "now");
    assert_string_equal(pos[2], "--not-a-flag");
    assert_string_equal(pos[3], "-");
    assert_int_equal(values(c)->workers, 3);
    assert_true(values(c)->insecure);
    assert_string_equal(values(c)->cluster, "a=b");
    kopt_config_free(c);
}

static void config_yaml_types_and_nulls(void **state)
{
    char flag[4200];
    const char *args[] = {flag, NULL};
    kopt_config_t *c;
    const settings_t *v;

    (void)state;
    snprintf(flag, sizeof(flag), "--config=%s",
             write_yaml("---\n# kopt\ningest:\n  - a:1\n  - \"b:2\"\napi-keys: [k1, k2]\n"
                        "timeout: 2m\ncluster:\ntls-key: ~\ninsecure: yes\nsource: proc\n"
                        "log-level: 'debug'\n...\n",
                        -1));
    assert_int_equal(load(&c, args, NULL), 0);
    v = values(c);
    assert_int_equal(v->ingest.n, 2);
    assert_string_equal(v->ingest.items[1], "b:2");
    assert_int_equal(v->api_keys.n, 2);
    assert_int_equal(v->timeout_ms, 120000);
    assert_string_equal(v->cluster, "dev"); /* null keeps the default */
    assert_null(v->tls_key);
    assert_true(v->insecure);
    assert_int_equal(v->source, 3);
    assert_string_equal(v->log_level, "debug");
    kopt_config_free(c);
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml("# only a comment\n", -1));
    assert_int_equal(load(&c, args, NULL), 0);
    kopt_config_free(c);
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml("", 0));
    assert_int_equal(load(&c, args, NULL), 0);
    kopt_config_free(c);
}

static void config_yaml_errors_have_line_numbers(void **state)
{
    static const char *const cases[][2] = {
        {"cluster: a\nlisten:\n  host: x\n", "kopt.yaml:3: listen: expected a single value, not "
                                             "a nested mapping"},
        {"cluster: &a x\nlog-level: *a\n", "kopt.yaml:2: log-level: expected a single value, "
                                           "not an alias"},
        {"cluster: a\n---\ncluster: b\n", "kopt.yaml:2: only one YAML document is allowed"},
        {"cluster: a\nlisten: \xff\xfe\n", "kopt.yaml:2: invalid YAML: invalid leading UTF-8"},
        {"cluster: a\n  workers: [\n", "kopt.yaml:2: invalid YAML: mapping values are not "
                                       "allowed"},
        {"- a\n- b\n", "kopt.yaml:1: the file must be a mapping of settings (key: value), not a "
                       "list"},
        {"just text\n", "kopt.yaml:1: the file must be a mapping"},
        {"cluster: a\ncluster: b\n", "kopt.yaml:2: duplicate key \"cluster\""},
        {"cluster: [a, b]\n", "kopt.yaml:1: cluster: expected a single value, not a list"},
        {"ingest: [a, [b]]\n", "kopt.yaml:1: list items must be single values, not a list"},
        {"ingest: [a, \"\"]\n", "ingest: invalid list"},
        {"[a]: b\n", "kopt.yaml:1: keys must be setting names, not a list"},
        {"cluster: \"a\\0b\"\n", "kopt.yaml:1: cluster: value contains a NUL byte"},
        {"workers: 100\n", "workers: invalid integer \"100\" (from "},
        {"ingest: a\0b\n", "invalid YAML: control characters are not allowed"},
    };
    char flag[4200];
    const char *args[] = {flag, NULL};

    (void)state;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(cases); i++) {
        long len = i == KOPT_ARRAY_SIZE(cases) - 1 ? 12 : -1;
        snprintf(flag, sizeof(flag), "--config=%s", write_yaml(cases[i][0], len));
        load_fails(args, NULL, cases[i][1]);
    }
}

static void config_oversize_file_is_refused(void **state)
{
    size_t n = KOPT_CONFIG_MAX_FILE + 10;
    char *big = malloc(n), flag[4200];
    const char *args[] = {flag, NULL};
    kopt_config_t *c;

    (void)state;
    memset(big, '#', n);
    snprintf(flag, sizeof(flag), "--config=%s", write_yaml(big, (long)n));
    free(big);
    assert_int_equal(load(&c, args, NULL), -EFBIG);
    assert_non_null(strstr(err, "kopt.yaml: file is larger than 1024 KiB"));
    snprintf(flag, sizeof(flag), "--config=%s", dir);
    assert_int_equal(load(&c, args, NULL), -EISDIR);
}

static const kopt_config_setting_t req_table[] = {
    {S("cluster", KOPT_CONFIG_STRING, cluster, NULL, KOPT_CONFIG_REQUIRED), .help = "name"},
};
static const kopt_config_spec_t req_spec = {"kopt-test", "1", NULL,
                                            req_table,   1,   sizeof(settings_t)};

static void config_required_and_bad_tables(void **state)
{
    char *argv[] = {"kopt-test", NULL};
    char *env[] = {"KOPT_CLUSTER=prod", NULL};
    kopt_config_setting_t bad = {S("Bad_Name", KOPT_CONFIG_STRING, cluster, NULL, 0)};
    kopt_config_spec_t bad_spec = {"x", "1", NULL, &bad, 1, sizeof(settings_t)};
    kopt_config_t *c;

    (void)state;
    assert_int_equal(kopt_config_load(&c, &req_spec, 1, argv, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "config: cluster: required but not set (use --cluster, "
                             "KOPT_CLUSTER or \"cluster:\" in the config file)");
    assert_int_equal(kopt_config_load(&c, &req_spec, 1, argv, env, NULL, err, sizeof(err)), 0);
    assert_string_equal(((const settings_t *)kopt_config_values(c))->cluster, "prod");
    kopt_config_free(c);
    kopt_config_free(NULL);
    assert_int_equal(kopt_config_load(&c, &bad_spec, 1, argv, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "bad settings table"));
    bad.name = "ok";
    bad.offset = sizeof(settings_t);
    assert_int_equal(kopt_config_load(&c, &bad_spec, 1, argv, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
}

static char changes[512];

static void on_change(const kopt_config_setting_t *s, bool reloadable, void *data)
{
    (void)data;
    snprintf(changes + strlen(changes), sizeof(changes) - strlen(changes), "%s:%s ", s->name,
             reloadable ? "apply" : "restart");
}

static void config_reload_reports_changes(void **state)
{
    char flag[4200];
    const char *args[] = {flag, "--cluster", "c1", NULL};
    const char *env1[] = {"KOPT_LOG_LEVEL=info", NULL};
    const char *env2[] = {"KOPT_LOG_LEVEL=debug", NULL};
    kopt_config_t *c, *next;
    unsigned n_reload, n_restart;

    (void)state;
    snprintf(flag, sizeof(flag), "--config=%s",
             write_yaml("workers: 4\nlisten: \":7400\"\ntimeout: 5s\n", -1));
    assert_int_equal(load(&c, args, env1), 0);
    write_yaml("workers: 8\nlisten: \":9000\"\ntimeout: 5000ms\ncluster: ignored\n", -1);
    changes[0] = '\0';
    assert_int_equal(kopt_config_reload(c, (char *const *)env2, &next, on_change, NULL, &n_reload,
                                        &n_restart, err, sizeof(err)),
                     0);
    assert_string_equal(changes, "listen:restart workers:apply log-level:apply ");
    assert_int_equal(n_reload, 2);
    assert_int_equal(n_restart, 1);
    assert_int_equal(values(next)->workers, 8);
    assert_string_equal(values(next)->log_level, "debug");
    assert_string_equal(values(next)->listen.text, ":7400"); /* still running on it */
    assert_string_equal(values(next)->cluster, "c1");        /* the flag still wins */
    kopt_config_free(c);
    write_yaml("workers: 800\n", -1);
    assert_int_equal(kopt_config_reload(next, NULL, &c, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "must be 1..64"));
    assert_int_equal(values(next)->workers, 8);
    kopt_config_free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_precedence_flag_env_file_default),
        cmocka_unit_test(config_flag_config_beats_env_config),
        cmocka_unit_test(config_every_type_parses),
        cmocka_unit_test(config_every_type_parses_values),
        cmocka_unit_test(config_bad_values_say_why),
        cmocka_unit_test(config_error_names_key_value_and_source),
        cmocka_unit_test(config_unknown_names_get_suggestions),
        cmocka_unit_test(config_secrets_never_printed),
        cmocka_unit_test(config_url_passwords_never_printed),
        cmocka_unit_test(config_help_and_version),
        cmocka_unit_test(config_positional_args_and_flag_forms),
        cmocka_unit_test(config_yaml_types_and_nulls),
        cmocka_unit_test(config_yaml_errors_have_line_numbers),
        cmocka_unit_test(config_oversize_file_is_refused),
        cmocka_unit_test(config_required_and_bad_tables),
        cmocka_unit_test(config_reload_reports_changes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
