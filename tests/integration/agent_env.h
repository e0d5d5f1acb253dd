/* What the kopt-agent integration tests share: the daemons as children on
 * free ports (each in the harness's cleanup registry, so a failed assertion
 * stops it and removes its temp dir), their admin endpoints, a clean
 * SIGTERM stop checked for sanitizer reports, kopt-ingest over mutual TLS
 * with the dev certificates, and everything that landed in KOPT_METRICS.
 * The helpers assert with cmocka: call them from a test. */
#ifndef KOPT_TEST_AGENT_ENV_H
#define KOPT_TEST_AGENT_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define ITEST_STREAM "KOPT_METRICS"

typedef struct {
    kopt_test_proc_t proc;
    int spawned;
    char *dir; /* temp dir: log, spool, files the child reads */
    char log_path[600];
    int port, admin_port;
    char target[64], admin_url[64];
} itest_child_t;

/* A child with a temp dir "<prefix>-XXXXXX" and its log there. */
itest_child_t *itest_child_new(const char *prefix, const char *log_name);
void itest_child_free(itest_child_t *c);

/* Picks two free ports: c->port (target "127.0.0.1:port") and the admin one. */
void itest_child_ports(itest_child_t *c);

/* Starts argv (NULL-terminated) with the child's log. */
void itest_child_spawn(itest_child_t *c, char *const argv[]);

/* HTTP status of GET admin_url + path, 0 when nothing answers. */
int itest_http_status(const itest_child_t *c, const char *path);

/* Waits up to 15 s for 200 on path; fails (log tail printed) otherwise. */
void itest_wait_http(itest_child_t *c, const char *path, const char *what);

/* The value of one sample line of /metrics, or -1. */
double itest_metric(const itest_child_t *c, const char *sample);

/* Fails if the log has an ASan, UBSan or LSan report. */
void itest_assert_sanitizer_clean(const itest_child_t *c);

/* Waits up to timeout_s for the child to exit by itself; must be exit 0
 * with a clean log. */
void itest_wait_exit_clean(itest_child_t *c, double timeout_s, const char *what);

/* SIGTERM; must exit 0 within 15 s with a clean log. */
void itest_stop_clean(itest_child_t *c, const char *what);

/* A nats-server with JetStream, or the test is skipped without one. */
kopt_test_nats_t *itest_nats_or_skip(void);

/* kopt-ingest over mutual TLS (certs_dir from scripts/certs), ready. */
itest_child_t *itest_ingest_start(const char *ingest_exe, const char *certs_dir,
                                  const kopt_test_nats_t *nats);

/* kopt-agent on the proc source, ready (/healthz): cluster "local", node
 * `node`, the dev certificate agent-local from certs_dir, streaming to
 * `targets` (one address or a comma list), its spool in its dir, text logs.
 * window NULL: the real default (1m, sampled every 10 s); else that window,
 * sampled every 500 ms. */
itest_child_t *itest_agent_proc_start(const char *agent_exe, const char *certs_dir,
                                      const char *targets, const char *node, const char *rules,
                                      const char *window);

/* The messages of KOPT_METRICS, in stream order. */
typedef struct {
    char id[160]; /* Nats-Msg-Id */
    uint8_t *data;
    size_t len;
} itest_msg_t;

typedef struct {
    itest_msg_t *m;
    size_t n;
    uint64_t msgs; /* State.Msgs when read */
} itest_stream_t;

/* Reads every message. 0, or -EAGAIN when the stream is not there yet. */
int itest_stream_read(const kopt_test_nats_t *nats, itest_stream_t *out);
void itest_stream_free(itest_stream_t *s);

/* State.Msgs, 0 when the stream is not there yet. */
uint64_t itest_stream_count(const kopt_test_nats_t *nats);

/* Every Nats-Msg-Id once, each starting with "<agent_id>/". */
void itest_assert_unique_ids(const itest_stream_t *s, const char *agent_id);

#endif
