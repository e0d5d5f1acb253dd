/* libFuzzer target for the config loader: the input is the YAML file's
 * content (served from a memfd, through the real file path) and, split at
 * newlines, an argv. Either must give 0 or a clean error; never a crash or a
 * leak. Dump, summary and reload run on every config that loads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kopt/config.h>
#include <kopt/util.h>

typedef struct {
    kopt_config_addr_t listen, admin_listen;
    char *cluster, *password, *tls_key;
    int64_t workers;
    bool insecure;
    uint64_t timeout_ms, max_batch;
    int source;
    kopt_config_list_t ingest;
} settings_t;

static const char *const sources[] = {"auto", "cgroup", "kubelet", "proc", NULL};

#define S(n, t, f, d, fl)                                                                          \
    .name = n, .type = t, .offset = offsetof(settings_t, f), .def = d, .flags = fl
static const kopt_config_setting_t table[] = {
    {S("listen", KOPT_CONFIG_ADDRESS, listen, ":7400", 0)},
    {S("admin-listen", KOPT_CONFIG_ADDRESS, admin_listen, ":7401", 0)},
    {S("cluster", KOPT_CONFIG_STRING, cluster, NULL, 0)},
    {S("clickhouse-password", KOPT_CONFIG_STRING, password, NULL, KOPT_CONFIG_SECRET)},
    {S("tls-key", KOPT_CONFIG_PATH, tls_key, NULL, 0)},
    {S("workers", KOPT_CONFIG_INT, workers, "4", KOPT_CONFIG_RELOADABLE), .min = 1, .max = 64},
    {S("insecure", KOPT_CONFIG_BOOL, insecure, "false", 0)},
    {S("timeout", KOPT_CONFIG_DURATION, timeout_ms, "5s", KOPT_CONFIG_RELOADABLE)},
    {S("max-batch", KOPT_CONFIG_BYTES, max_batch, "8MiB", 0)},
    {S("source", KOPT_CONFIG_ENUM, source, "auto", 0), .choices = sources},
    {S("ingest", KOPT_CONFIG_LIST, ingest, "127.0.0.1:7400", KOPT_CONFIG_RELOADABLE)},
};
static const kopt_config_spec_t spec = {"kopt-fuzz",       "0", NULL, table, KOPT_ARRAY_SIZE(table),
                                        sizeof(settings_t)};

static FILE *sink;
static int memfd = -1;
static char path[64];

static void exercise(kopt_config_t *c)
{
    kopt_config_t *next = NULL;
    char line[256], err[256];

    kopt_config_dump(c, sink);
    kopt_config_summary(c, line, sizeof(line));
    if (kopt_config_reload(c, NULL, &next, NULL, NULL, NULL, NULL, err, sizeof(err)) == 0)
        kopt_config_free(next);
    kopt_config_free(c);
}

/* Up to 15 flags from the input's lines; --config is dropped, so the fuzzer
 * cannot make the loader open arbitrary files (/dev/stdin would block). */
static void fuzz_argv(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1), *argv[16] = {"kopt-fuzz"}, *save = NULL, *tok, err[256];
    int argc = 1;
    kopt_config_t *c = NULL;

    if (!copy)
        return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (tok = strtok_r(copy, "\n", &save); tok && argc < 16; tok = strtok_r(NULL, "\n", &save)) {
        if (strncmp(tok, "--config", 8) != 0)
            argv[argc++] = tok;
    }
    if (kopt_config_load(&c, &spec, argc, argv, NULL, NULL, err, sizeof(err)) == 0)
        exercise(c);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[] = {"kopt-fuzz", "--config", path, NULL}, err[512];
    kopt_config_t *c = NULL;

    if (memfd < 0) {
        memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
        sink = fopen("/dev/null", "w");
        if (memfd < 0 || !sink)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
    if (kopt_config_load(&c, &spec, 3, argv, NULL, NULL, err, sizeof(err)) == 0)
        exercise(c);
    else if (!strstr(err, "config: "))
        abort(); /* every failure must say what went wrong */
    fuzz_argv(data, size);
    return 0;
}
