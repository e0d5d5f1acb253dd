/* Clustered servers for the `cluster` suite: ZooKeeper (zookeeper.c), a
 * nats-server cluster with JetStream (nats_cluster.c) and two clickhouse-server
 * replicas coordinated by ZooKeeper (clickhouse_cluster.c). All on loopback,
 * free ports, temp dirs removed at the end, registered for cleanup like the
 * single servers in harness.h. */
#ifndef KOPT_TEST_CLUSTER_H
#define KOPT_TEST_CLUSTER_H

#include "harness.h"

/* --- ZooKeeper, standalone (zookeeper.c) ---------------------------------- */
typedef struct kopt_test_zookeeper {
    int port;
    char *dir; /* temp dir: zoo.cfg, data/, zookeeper.log */
    char *log_path;
    double start_seconds; /* last start or restart, spawn to "imok" */
    kopt_test_proc_t proc;
} kopt_test_zookeeper_t;

/* Starts Debian's ZooKeeper (java, /usr/share/java/zookeeper.jar, or
 * $KOPT_TEST_ZOOKEEPER_CLASSPATH) on a free loopback port and waits for the
 * four-letter "ruok" to answer "imok". -ENOENT when java or the jar is
 * missing (skip), -ETIMEDOUT/-EIO otherwise (log tail printed). */
int kopt_test_zookeeper_start(kopt_test_zookeeper_t **out);
/* kill -9 (data kept); restart on the same port and data. */
int kopt_test_zookeeper_kill9(kopt_test_zookeeper_t *z);
int kopt_test_zookeeper_restart(kopt_test_zookeeper_t *z);
void kopt_test_zookeeper_free(kopt_test_zookeeper_t *z);

/* --- nats-server cluster with JetStream (nats_cluster.c) ------------------ */
#define KOPT_TEST_NATS_CLUSTER_MAX 5

typedef struct kopt_test_nats_node {
    char name[16];        /* server_name: "n1".. */
    char url[64];         /* nats://127.0.0.1:<port> */
    char monitor_url[64]; /* http://127.0.0.1:<monitor_port> */
    int port, monitor_port, route_port;
    char *dir, *conf_path, *log_path;
    kopt_test_proc_t proc;
} kopt_test_nats_node_t;

typedef struct kopt_test_nats_cluster {
    int n;
    kopt_test_nats_node_t nodes[KOPT_TEST_NATS_CLUSTER_MAX];
    char urls[KOPT_TEST_NATS_CLUSTER_MAX * 64]; /* "nats://..,nats://.." */
    double start_seconds;                       /* spawn of all to all healthy */
} kopt_test_nats_cluster_t;

/* Starts n (3..5) nats-servers routed into one cluster, JetStream on each
 * with its own store dir, and waits until every node's /healthz is 200 and
 * the JetStream meta group has a leader and n-1 current followers. */
int kopt_test_nats_cluster_start(kopt_test_nats_cluster_t **out, int n);
int kopt_test_nats_cluster_kill9(kopt_test_nats_cluster_t *c, int i);
/* Starts node i again (same ports and store) and waits for its /healthz. */
int kopt_test_nats_cluster_restart(kopt_test_nats_cluster_t *c, int i);
/* Index of the node whose server_name is `name` ("n1"..; a stream's
 * Cluster->Leader in its jsStreamInfo), -1 if none. */
int kopt_test_nats_cluster_node_index(const kopt_test_nats_cluster_t *c, const char *name);
void kopt_test_nats_cluster_free(kopt_test_nats_cluster_t *c);
/* A connection to every node, reconnecting for ever every 100 ms (a test
 * outlives any kill), and its JetStream context when js is not NULL. 0, or
 * -EIO (nothing kept). */
int kopt_test_nats_cluster_connect(const kopt_test_nats_cluster_t *c, natsConnection **nc,
                                   jsCtx **js);

/* --- Replicated ClickHouse (clickhouse_cluster.c) ------------------------- */
#define KOPT_TEST_CH_REPLICAS 2

typedef struct kopt_test_ch_cluster {
    kopt_test_zookeeper_t *zk;
    kopt_test_clickhouse_t *replicas[KOPT_TEST_CH_REPLICAS];
    char name[32];                         /* remote_servers cluster name */
    char urls[KOPT_TEST_CH_REPLICAS * 64]; /* "http://..,http://.." */
    double start_seconds;                  /* ZooKeeper + both replicas */
} kopt_test_ch_cluster_t;

/* Starts ZooKeeper, then two clickhouse-server replicas of one shard with
 * macros {cluster} {shard} {replica} (replica = r1, r2), an interserver HTTP
 * port each, and remote_servers naming cluster "kopt" with both; waits until
 * each sees the cluster in system.clusters and reaches ZooKeeper. */
int kopt_test_ch_cluster_start(kopt_test_ch_cluster_t **out);
/* One statement on every replica; the first failure's message in *err. */
int kopt_test_ch_cluster_query_all(kopt_test_ch_cluster_t *c, const char *sql, char **err);
void kopt_test_ch_cluster_free(kopt_test_ch_cluster_t *c);

#endif
