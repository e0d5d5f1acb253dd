/* kopt-devcluster: the test harness's clustered servers (tests/harness/
 * cluster.h) for scripts/bench-cluster: three routed nats-servers with
 * JetStream, ZooKeeper and two clickhouse-server replicas, on free loopback
 * ports. Writes shell assignments to ENV_FILE once all answer:
 * NATS_URLS (comma-separated), NATS_NAME_i / NATS_PID_i / NATS_MONITOR_i
 * for i = 1..3, CLICKHOUSE_URLS, CLICKHOUSE_URL_1/2, CLICKHOUSE_PID_1/2 and
 * CH_CLUSTER, then waits for SIGINT or SIGTERM and stops everything (temp
 * dirs too). A node the caller killed with -9 stays down. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static int write_env(const char *path, const kopt_test_nats_cluster_t *n,
                     const kopt_test_ch_cluster_t *c)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "NATS_URLS=%s\n", n->urls);
    for (int i = 0; i < n->n; i++)
        fprintf(f, "NATS_NAME_%d=%s\nNATS_PID_%d=%d\nNATS_MONITOR_%d=%s\n", i + 1, n->nodes[i].name,
                i + 1, (int)n->nodes[i].proc.pid, i + 1, n->nodes[i].monitor_url);
    fprintf(f, "CLICKHOUSE_URLS=%s\nCH_CLUSTER=%s\n", c->urls, c->name);
    for (int i = 0; i < KOPT_TEST_CH_REPLICAS; i++)
        fprintf(f, "CLICKHOUSE_URL_%d=%s\nCLICKHOUSE_PID_%d=%d\n", i + 1, c->replicas[i]->url,
                i + 1, (int)c->replicas[i]->pid);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path); /* readers never see half a file */
}

int main(int argc, char **argv)
{
    kopt_test_nats_cluster_t *nats = NULL;
    kopt_test_ch_cluster_t *ch = NULL;
    sigset_t set;
    int sig = 0, code = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: kopt-devcluster ENV_FILE\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (kopt_test_nats_cluster_start(&nats, 3) < 0) {
        fprintf(stderr, "kopt-devcluster: the nats cluster did not start\n");
        goto out;
    }
    if (kopt_test_ch_cluster_start(&ch) < 0) {
        fprintf(stderr, "kopt-devcluster: zookeeper or clickhouse replicas did not start\n");
        goto out;
    }
    if (write_env(argv[1], nats, ch) < 0) {
        perror("kopt-devcluster: writing the env file");
        goto out;
    }
    fprintf(stderr, "kopt-devcluster: nats %s (%.2f s), clickhouse %s (%.2f s); SIGTERM stops\n",
            nats->urls, nats->start_seconds, ch->urls, ch->start_seconds);
    sigwait(&set, &sig);
    code = 0;
out:
    kopt_test_ch_cluster_free(ch);
    kopt_test_nats_cluster_free(nats);
    unlink(argv[1]);
    return code;
}
