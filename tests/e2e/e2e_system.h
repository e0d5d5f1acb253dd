/* The whole system for the e2e tests: nats-server, clickhouse-server
 * (migrated), kopt-ingest, kopt-aggregator, kopt-advisor, a steady stress-ng
 * workload and kopt-agent on the proc source with scripts/up's grouping
 * rules, each on free ports with its log in the system's temp dir, started in
 * that order and each ready before the next. Secure: the dev certificates of
 * scripts/certs, mutual TLS from the agent, an API key, NATS over TLS with
 * one user per component, as in production; otherwise --insecure
 * everywhere. The helpers assert with cmocka: call them from a test or its
 * set-up. */
#ifndef KOPT_TEST_E2E_SYSTEM_H
#define KOPT_TEST_E2E_SYSTEM_H

#include <stdbool.h>

#include "harness.h"

#define E2E_WINDOW_MS 5000 /* the agent's window */

typedef enum { E2E_INGEST, E2E_AGGREGATOR, E2E_ADVISOR, E2E_WORKLOAD, E2E_AGENT, E2E_N } e2e_proc_t;

typedef struct {
    const char *src_dir;
    const char *ingest_exe, *aggregator_exe, *advisor_exe, *agent_exe;
    const char *name;            /* the temp dir's prefix and the notes' tag */
    bool secure;                 /* see above */
    const char *api_key;         /* secure: the advisor's one key */
    bool no_advisor;             /* leave kopt-advisor out */
    bool no_workload;            /* leave the stress-ng workload out */
    const char *otlp;            /* every daemon's --otlp-endpoint, or NULL */
    const char *rollup_interval; /* the aggregator's; NULL: 5s */
} e2e_options_t;

typedef struct {
    e2e_options_t o;
    char *dir;
    char certs[512], keys[512], spool[512], agent_conf[512];
    kopt_test_nats_t *nats;
    kopt_test_clickhouse_t *ch;
    int p_ingest, p_ingest_admin, p_agg_admin, p_adv, p_http, p_adv_admin, p_agent_admin;
    kopt_test_proc_t proc[E2E_N];
} e2e_system_t;

/* Starts everything. 0, or -1 when nats-server is not installed (said). */
int e2e_up(e2e_system_t *s, const e2e_options_t *o);

/* Starts one process with the flags e2e_up gave it (not respawned: a fresh
 * child), without waiting. */
void e2e_start(e2e_system_t *s, e2e_proc_t p);

/* Waits for a daemon's /readyz (the advisor's /healthz: it is ready once it
 * has analysed): 0, or -ETIMEDOUT. */
int e2e_wait_ready(const e2e_system_t *s, e2e_proc_t p, double seconds);

/* The admin URL of a daemon, "http://127.0.0.1:<port>". */
void e2e_admin_url(const e2e_system_t *s, e2e_proc_t p, char *out, size_t len);

/* The last lines of every daemon's log, on stderr. */
void e2e_tail_logs(const e2e_system_t *s, int lines);

/* Stops everything (SIGTERM, then the servers) and removes the temp dir
 * unless KOPT_E2E_KEEP is set. */
void e2e_down(e2e_system_t *s);

/* One unsigned number (two with b) from ClickHouse's first row. */
int e2e_ch_numbers(const e2e_system_t *s, const char *sql, unsigned long long *a,
                   unsigned long long *b);

/* Unix time in milliseconds, for the agent's window phase. */
int64_t e2e_wall_ms(void);

#endif
