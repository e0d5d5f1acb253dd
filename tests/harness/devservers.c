/* kopt-devservers: the real nats-server (JetStream) and clickhouse-server of
 * the test harness, on free loopback ports, for scripts/up and the e2e suite.
 * Writes NATS_URL=... and CLICKHOUSE_URL=... to the file named by argv[1]
 * once both answer, then waits for SIGINT or SIGTERM and stops them (their
 * temp dirs go too). The harness kills them if this process dies. */
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
            "CLICKHOUSE_PID=%d\n",
            n->url, n->monitor_url, ch->url, (int)n->pid, (int)ch->pid);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path); /* readers never see half a file */
}

int main(int argc, char **argv)
{
    kopt_test_nats_t *nats = NULL;
    kopt_test_clickhouse_t *ch = NULL;
    sigset_t set;
    int sig = 0, code = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: kopt-devservers ENV_FILE\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (kopt_test_nats_start(&nats, NULL) < 0) {
        fprintf(stderr, "kopt-devservers: nats-server did not start\n");
        goto out;
    }
    if (kopt_test_clickhouse_start(&ch) < 0) {
        fprintf(stderr, "kopt-devservers: clickhouse-server did not start\n");
        goto out;
    }
    if (write_env(argv[1], nats, ch) < 0) {
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
    unlink(argv[1]);
    return code;
}
