/* kopt-devservers: the real nats-server (JetStream) and clickhouse-server of
 * the test harness, on free loopback ports, for scripts/up and the e2e suite.
 * Writes NATS_URL=... and CLICKHOUSE_URL=... to ENV_FILE
 * once both answer, then waits for SIGINT or SIGTERM and stops them (their
 * temp dirs go too). The harness kills them if this process dies.
 *
 * --nats-auth CERTS_DIR SECRETS_DIR: nats-server with TLS (CERTS_DIR as
 * scripts/certs makes it; client certificates required) and one user per
 * component with only its subjects (tests/harness/nats_auth.c); the
 * passwords go to SECRETS_DIR/nats-<user>.password, mode 0600. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int write_env(const char *path, const kopt_test_nats_t *n, const kopt_test_clickhouse_t *ch)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f,
            "NATS_URL=%s\nNATS_MONITOR_URL=%s\nCLICKHOUSE_URL=%s\nNATS_PID=%d\n"
            "CLICKHOUSE_PID=%d\nNATS_AUTH=%d\n",
            n->url, n->monitor_url, ch->url, (int)n->pid, (int)ch->pid, n->auth ? 1 : 0);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path); /* readers never see half a file */
}

int main(int argc, char **argv)
{
    kopt_test_nats_t *nats = NULL;
    kopt_test_clickhouse_t *ch = NULL;
    kopt_test_nats_opts_t nats_opts = {0};
    const char *env_file;
    sigset_t set;
    int sig = 0, code = 1;

    if (argc == 5 && strcmp(argv[1], "--nats-auth") == 0) {
        nats_opts.auth_certs_dir = argv[2];
        nats_opts.auth_secrets_dir = argv[3];
        env_file = argv[4];
    } else if (argc == 2) {
        env_file = argv[1];
    } else {
        fprintf(stderr, "usage: kopt-devservers [--nats-auth CERTS_DIR SECRETS_DIR] ENV_FILE\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (kopt_test_nats_start(&nats, &nats_opts) < 0) {
        fprintf(stderr, "kopt-devservers: nats-server did not start\n");
        goto out;
    }
    if (kopt_test_clickhouse_start(&ch) < 0) {
        fprintf(stderr, "kopt-devservers: clickhouse-server did not start\n");
        goto out;
    }
    if (write_env(env_file, nats, ch) < 0) {
        perror("kopt-devservers: writing the env file");
        goto out;
    }
    fprintf(stderr, "kopt-devservers: nats %s (%.2f s), clickhouse %s (%.2f s); SIGTERM stops\n",
            nats->url, nats->start_seconds, ch->url, ch->start_seconds);
    sigwait(&set, &sig);
    code = 0;
out:
    if (ch) {
        kopt_test_clickhouse_stop(ch);
        kopt_test_clickhouse_free(ch);
    }
    if (nats) {
        kopt_test_nats_stop(nats);
        kopt_test_nats_free(nats);
    }
    unlink(env_file);
    return code;
}
