/* kopt-devcluster: the test harness's clustered servers (tests/harness/
 * cluster.h) for scripts/bench-cluster: three routed nats-servers with
 * JetStream, ZooKeeper and two clickhouse-server replicas, on free loopback
 * ports. Writes shell assignments to ENV_FILE once all answer:
 * NATS_URLS (comma-separated), NATS_NAME_i / NATS_PID_i / NATS_MONITOR_i
 * for i = 1..3, CLICKHOUSE_URLS, CLICKHOUSE_URL_1/2, CLICKHOUSE_PID_1/2 and
 * CH_CLUSTER, then waits for SIGINT or SIGTERM and stops everything (temp
 * dirs too). A node the caller killed with -9 stays down.
 *
 * With CONTROL (a FIFO the caller made), it also takes lines
 * "ID kill9|restart nats|ch|zk INDEX" (INDEX from 1; ignored for zk) and
 * answers each, once done (a restart waits until the server is ready), by
 * writing "ID RC SECONDS" to ENV_FILE.ack (renamed into place). The
 * harness's own kill and restart: what tests/cluster does, not a copy. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static int control(kopt_test_nats_cluster_t *n, kopt_test_ch_cluster_t *c, const char *verb,
                   const char *what, int i)
{
    int kill9 = strcmp(verb, "kill9") == 0;

    if (!kill9 && strcmp(verb, "restart") != 0)
        return -EINVAL;
    if (strcmp(what, "nats") == 0)
        return kill9 ? kopt_test_nats_cluster_kill9(n, i - 1)
                     : kopt_test_nats_cluster_restart(n, i - 1);
    if (strcmp(what, "zk") == 0)
        return kill9 ? kopt_test_zookeeper_kill9(c->zk) : kopt_test_zookeeper_restart(c->zk);
    if (strcmp(what, "ch") == 0 && i >= 1 && i <= KOPT_TEST_CH_REPLICAS)
        return kill9 ? kopt_test_clickhouse_kill9(c->replicas[i - 1])
                     : kopt_test_clickhouse_restart(c->replicas[i - 1]);
    return -EINVAL;
}

static void answer(const char *env_path, const char *id, int rc, double seconds)
{
    char path[4096], tmp[4200];
    FILE *f;

    snprintf(path, sizeof(path), "%s.ack", env_path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%s %d %.2f\n", id, rc, seconds);
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* Runs the complete lines in buf (len bytes); keeps a partial last line. */
static size_t run_lines(char *buf, size_t len, const char *env_path, kopt_test_nats_cluster_t *n,
                        kopt_test_ch_cluster_t *c)
{
    char *line = buf, *nl;

    while ((nl = memchr(line, '\n', len - (size_t)(line - buf)))) {
        char id[32] = "", verb[16] = "", what[16] = "";
        int i = 0, rc = -EINVAL;
        double t0 = kopt_test_now();

        *nl = '\0';
        if (sscanf(line, "%31s %15s %15s %d", id, verb, what, &i) >= 3)
            rc = control(n, c, verb, what, i);
        fprintf(stderr, "kopt-devcluster: %s: %s (%.2f s)\n", line, rc == 0 ? "done" : "failed",
                kopt_test_now() - t0);
        answer(env_path, id, rc, kopt_test_now() - t0);
        line = nl + 1;
    }
    len -= (size_t)(line - buf);
    memmove(buf, line, len);
    return len;
}

/* Until SIGINT or SIGTERM: the control lines, if any. */
static void serve(const sigset_t *set, const char *env_path, const char *fifo,
                  kopt_test_nats_cluster_t *n, kopt_test_ch_cluster_t *c)
{
    struct timespec tick = {0, 100 * 1000 * 1000};
    char buf[1024];
    size_t len = 0;
    /* Our own writer keeps read() from seeing EOF between callers. */
    int rd = fifo ? open(fifo, O_RDONLY | O_NONBLOCK) : -1;
    int wr = fifo ? open(fifo, O_WRONLY | O_NONBLOCK) : -1;

    if (fifo && (rd < 0 || wr < 0))
        fprintf(stderr, "kopt-devcluster: cannot open %s: %s; no control\n", fifo, strerror(errno));
    for (;;) {
        ssize_t r;

        if (sigtimedwait(set, NULL, &tick) > 0)
            break;
        if (rd < 0)
            continue;
        r = read(rd, buf + len, sizeof(buf) - 1 - len);
        if (r > 0)
            len = run_lines(buf, len + (size_t)r, env_path, n, c);
        if (len == sizeof(buf) - 1)
            len = 0; /* a line longer than any command: dropped */
    }
    if (rd >= 0)
        close(rd);
    if (wr >= 0)
        close(wr);
}

int main(int argc, char **argv)
{
    kopt_test_nats_cluster_t *nats = NULL;
    kopt_test_ch_cluster_t *ch = NULL;
    sigset_t set;
    int code = 1;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: kopt-devcluster ENV_FILE [CONTROL_FIFO]\n");
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
    serve(&set, argv[1], argc == 3 ? argv[2] : NULL, nats, ch);
    code = 0;
out:
    kopt_test_ch_cluster_free(ch);
    kopt_test_nats_cluster_free(nats);
    unlink(argv[1]);
    return code;
}
