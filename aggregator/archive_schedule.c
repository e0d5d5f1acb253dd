/* The daemon's archive and backup schedule (archive_schedule.h). */
#include "archive_schedule.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/log.h>

#include "backup.h"

#define RESPONSE_LIMIT ((size_t)4 << 30) /* one partition as Native */

struct agg_schedule {
    agg_schedule_options_t o;
    kopt_objstore_t *st;     /* the schedule thread's */
    agg_archive_gate_t gate; /* gate.st: the control thread's */
    bool archiving, started, stop;
    pthread_t thread;
    /* The lease (kopt/lease.h): NULL when every replica runs. */
    kopt_lease_t *lease;
    char me[KOPT_LEASE_HOLDER_MAX];
    bool keeper_started;
    pthread_t keeper;
    int held;                        /* the last answer: 1, 0, <0; under mu */
    kopt_metric_family_t *f_skipped; /* by run and reason */
    kopt_metric_gauge_t *lease_held;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    kopt_objstore_stats_t last; /* of st, at the last metrics update */
    kopt_metric_family_t *f_archive_runs, *f_backup_runs, *f_requests;
    kopt_metric_counter_t *archived, *archived_rows;
    kopt_metric_gauge_t *last_backup, *last_archive;
};

static int register_metrics(agg_schedule_t *s, kopt_metrics_t *m)
{
    kopt_metric_family_t *f, *kept;
    int r = kopt_metrics_counter(m, "kopt_aggregator_archive_runs_total",
                                 "scheduled archive runs, by result (ok, error)", "result",
                                 &s->f_archive_runs);

    if (r == 0 && (r = kopt_metrics_counter(m, "kopt_aggregator_archived_partitions_total",
                                            "container_windows partitions archived and verified",
                                            NULL, &f)) == 0)
        s->archived = kopt_metric_counter_with(f);
    if (r == 0 &&
        (r = kopt_metrics_counter(m, "kopt_aggregator_archived_rows_total",
                                  "container_windows rows archived and verified", NULL, &f)) == 0)
        s->archived_rows = kopt_metric_counter_with(f);
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_aggregator_backup_runs_total",
                                 "scheduled backups, by result (ok, error)", "result",
                                 &s->f_backup_runs);
    if (r == 0 && (r = kopt_metrics_gauge(m, "kopt_aggregator_last_backup_timestamp_seconds",
                                          "Unix time of the last successful backup (0: none "
                                          "since start)",
                                          NULL, &f)) == 0)
        s->last_backup = kopt_metric_gauge_with(f);
    if (r == 0 && (r = kopt_metrics_gauge(m, "kopt_aggregator_last_archive_timestamp_seconds",
                                          "Unix time of the last successful archive run (0: "
                                          "none since start)",
                                          NULL, &f)) == 0)
        s->last_archive = kopt_metric_gauge_with(f);
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_aggregator_objstore_requests_total",
                                 "object store requests of the scheduled runs, by result (ok, "
                                 "retried, failed)",
                                 "result", &s->f_requests);
    if (r == 0 &&
        (r = kopt_metrics_counter(m, "kopt_aggregator_retention_kept_partitions_total",
                                  "old container_windows partitions retention kept, by reason "
                                  "(unarchived, changed: differs from its archive, unverified: "
                                  "its archive missing or damaged)",
                                  "reason", &kept)) == 0) {
        s->gate.kept_unarchived = kopt_metric_counter_with(kept, "unarchived");
        s->gate.kept_changed = kopt_metric_counter_with(kept, "changed");
        s->gate.kept_unverified = kopt_metric_counter_with(kept, "unverified");
    }
    if (r == 0)
        r = kopt_metrics_counter(m, "kopt_aggregator_schedule_skipped_total",
                                 "scheduled archive and backup runs skipped, by run (archive, "
                                 "backup) and reason (lease: another replica holds the schedule's "
                                 "lease; nats: the lease could not be checked)",
                                 "run,reason", &s->f_skipped);
    if (r == 0 &&
        (r = kopt_metrics_gauge(m, "kopt_aggregator_schedule_lease_held",
                                "1 while this replica holds the lease of the scheduled archive "
                                "and backup (also 1 with the lease off: it runs them)",
                                NULL, &f)) == 0)
        s->lease_held = kopt_metric_gauge_with(f);
    /* Every series exists from the start, at 0. */
    if (r == 0) {
        const char *results[] = {"ok", "error"};

        for (size_t i = 0; i < 2; i++) {
            kopt_metric_counter_with(s->f_archive_runs, results[i]);
            kopt_metric_counter_with(s->f_backup_runs, results[i]);
        }
        kopt_metric_counter_with(s->f_requests, "ok");
        kopt_metric_counter_with(s->f_requests, "retried");
        kopt_metric_counter_with(s->f_requests, "failed");
        for (size_t i = 0; i < 2; i++) {
            const char *runs[] = {"archive", "backup"};

            kopt_metric_counter_with(s->f_skipped, runs[i], "lease");
            kopt_metric_counter_with(s->f_skipped, runs[i], "nats");
        }
    }
    return r;
}

/* The lease when NATS is there and --schedule-lease is on. */
static int lease_new(agg_schedule_t *s)
{
    const agg_schedule_options_t *o = &s->o;
    kopt_lease_options_t lo = {.url = o->nats_url,
                               .auth = o->nats_auth,
                               .client_name = "kopt-aggregator-lease",
                               .key = AGG_SCHEDULE_LEASE_KEY,
                               .me = s->me,
                               .ttl_ms = o->lease_ttl_ms,
                               .replicas = o->lease_replicas};

    if (!o->lease || !o->nats_url || !*o->nats_url || !s->st ||
        (!o->archive_interval_ms && !o->backup_interval_ms))
        return 0;
    if (o->lease_ttl_ms < 1000) {
        kopt_log_error("--lease-ttl must be at least 1s");
        return -EINVAL;
    }
    kopt_lease_self_id(s->me, sizeof(s->me));
    return kopt_lease_new(&lo, &s->lease);
}

int agg_schedule_new(const agg_schedule_options_t *o, kopt_metrics_t *m, agg_schedule_t **out)
{
    agg_schedule_t *s = calloc(1, sizeof(*s));
    kopt_objstore_error_t err = {0};
    int r;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->o = *o;
    s->held = 2; /* not asked yet: the first answer is logged */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    r = register_metrics(s, m);
    if (r == 0 && o->store.endpoint) {
        r = kopt_objstore_new(&o->store, &s->st, &err);
        s->archiving = o->archive_interval_ms > 0;
        if (r == 0 && s->archiving)
            r = kopt_objstore_new(&o->store, &s->gate.st, &err);
        if (r < 0)
            kopt_log_error("object store settings", KOPT_STR("detail", err.message), KOPT_ERR(r));
    }
    if (r == 0)
        r = lease_new(s);
    if (r == 0 && s->st && !s->lease && (o->archive_interval_ms || o->backup_interval_ms))
        kopt_metric_gauge_set(s->lease_held, 1); /* no lease: this replica runs them */
    if (r < 0) {
        agg_schedule_free(s);
        return r;
    }
    *out = s;
    return 0;
}

agg_archive_gate_t *agg_schedule_gate(agg_schedule_t *s)
{
    return s && s->archiving ? &s->gate : NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps until `until` (monotonic ms) or stop; true when stopping. */
static bool nap_until(agg_schedule_t *s, uint64_t until)
{
    bool stop;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        uint64_t now = now_ms();
        struct timespec ts;

        if (now >= until)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (until - now) * 1000000ULL;
        ts.tv_sec += (time_t)(ns / 1000000000ULL);
        ts.tv_nsec = (long)(ns % 1000000000ULL);
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    }
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void count_requests(agg_schedule_t *s)
{
    kopt_objstore_stats_t now;
    uint64_t failed, retried, all;

    kopt_objstore_stats(s->st, &now);
    all = now.requests - s->last.requests;
    retried = now.retries - s->last.retries;
    failed = now.failures - s->last.failures;
    kopt_metric_counter_add(kopt_metric_counter_with(s->f_requests, "failed"), (double)failed);
    kopt_metric_counter_add(kopt_metric_counter_with(s->f_requests, "retried"), (double)retried);
    kopt_metric_counter_add(kopt_metric_counter_with(s->f_requests, "ok"),
                            (double)(all > failed + retried ? all - failed - retried : 0));
    s->last = now;
}

/* Takes or renews the lease; the answer of kopt_lease_acquire. Logs when
 * the holder changes. */
static int lease_check(agg_schedule_t *s, char *holder, size_t len, char *err, size_t errlen)
{
    int r = kopt_lease_acquire(s->lease, holder, len, err, errlen);
    int was;

    pthread_mutex_lock(&s->mu);
    was = s->held;
    s->held = r;
    pthread_mutex_unlock(&s->mu);
    kopt_metric_gauge_set(s->lease_held, r == 1 ? 1 : 0);
    if (r == 1 && was != 1)
        kopt_log_info("schedule lease taken: this replica runs the scheduled archive and backup",
                      KOPT_STR("lease", AGG_SCHEDULE_LEASE_KEY), KOPT_STR("replica", s->me));
    else if (r == 0 && was != 0)
        kopt_log_info("schedule lease held elsewhere", KOPT_STR("holder", holder));
    else if (r < 0 && was >= 0)
        kopt_log_warn("schedule lease unavailable; no scheduled archive or backup until it is "
                      "back",
                      KOPT_STR("error", err));
    return r;
}

/* Whether this replica runs the scheduled `run` (archive, backup) now: yes
 * without the lease or when holding it; otherwise skipped and counted. */
static bool may_run(agg_schedule_t *s, const char *run)
{
    char holder[KOPT_LEASE_HOLDER_MAX] = "", err[256] = "";
    int r;

    if (!s->lease)
        return true;
    r = lease_check(s, holder, sizeof(holder), err, sizeof(err));
    if (r == 1)
        return true;
    kopt_metric_counter_inc(kopt_metric_counter_with(s->f_skipped, run, r == 0 ? "lease" : "nats"));
    if (r == 0)
        kopt_log_info("scheduled run skipped: another replica holds the lease",
                      KOPT_STR("run", run), KOPT_STR("holder", holder));
    else
        kopt_log_warn("scheduled run skipped: the lease could not be checked", KOPT_STR("run", run),
                      KOPT_STR("error", err));
    return false;
}

/* The keeper: renews the lease every kopt_lease_period_ms, also while a
 * run takes longer than the TTL, and takes it over when the holder died. */
static void *keeper_main(void *arg)
{
    agg_schedule_t *s = arg;
    uint64_t period = kopt_lease_period_ms(s->o.lease_ttl_ms);
    uint64_t next = now_ms();

    while (!nap_until(s, next)) {
        char holder[KOPT_LEASE_HOLDER_MAX] = "", err[256] = "";

        lease_check(s, holder, sizeof(holder), err, sizeof(err));
        next = now_ms() + period;
    }
    return NULL;
}

static void run_archive(agg_schedule_t *s, kopt_ch_client_t *c)
{
    agg_archive_options_t ao = {.prefix = s->o.prefix, .after_days = s->o.archive_after_days};
    agg_archive_result_t res;
    char why[512] = "";
    int r = agg_archive_run(c, s->st, &ao, &res, why, sizeof(why));

    kopt_metric_counter_inc(kopt_metric_counter_with(s->f_archive_runs, r == 0 ? "ok" : "error"));
    kopt_metric_counter_add(s->archived, (double)res.partitions);
    kopt_metric_counter_add(s->archived_rows, (double)res.rows);
    if (r == 0) {
        kopt_metric_gauge_set(s->last_archive, (double)time(NULL));
        kopt_log_info("scheduled archive done", KOPT_UINT("partitions", res.partitions),
                      KOPT_UINT("rearchived", res.rearchived),
                      KOPT_UINT("unchanged", res.unchanged), KOPT_UINT("rows", res.rows));
    } else {
        kopt_log_error("scheduled archive failed; trying again at the next interval",
                       KOPT_STR("reason", why), KOPT_ERR(r));
    }
}

static void run_backup(agg_schedule_t *s, kopt_ch_client_t *c)
{
    agg_backup_options_t bo = {.prefix = s->o.prefix};
    agg_backup_result_t res;
    char why[512] = "";
    int r = agg_backup_run(c, s->st, &bo, &res, why, sizeof(why));

    kopt_metric_counter_inc(kopt_metric_counter_with(s->f_backup_runs, r == 0 ? "ok" : "error"));
    if (r == 0) {
        kopt_metric_gauge_set(s->last_backup, (double)time(NULL));
        kopt_log_info("scheduled backup done", KOPT_STR("backup", res.id),
                      KOPT_UINT("partitions", res.partitions), KOPT_UINT("rows", res.rows),
                      KOPT_UINT("bytes", res.bytes));
    } else {
        kopt_log_error("scheduled backup failed; trying again at the next interval",
                       KOPT_STR("reason", why), KOPT_ERR(r));
    }
}

static void *schedule_main(void *arg)
{
    agg_schedule_t *s = arg;
    kopt_ch_options_t o = s->o.ch;
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    uint64_t start = now_ms() + s->o.first_delay_ms;
    uint64_t next_archive = s->o.archive_interval_ms ? start : UINT64_MAX;
    uint64_t next_backup = s->o.backup_interval_ms ? start : UINT64_MAX;

    o.max_response_bytes = RESPONSE_LIMIT;
    if (kopt_ch_client_new(&o, &c, &err) < 0) {
        kopt_log_error("schedule: cannot make a ClickHouse client",
                       KOPT_STR("detail", err.message));
        return NULL;
    }
    while (!nap_until(s, next_archive < next_backup ? next_archive : next_backup)) {
        uint64_t now = now_ms();

        /* The archive first: a backup then holds its records too. */
        if (now >= next_archive) {
            if (may_run(s, "archive"))
                run_archive(s, c);
            next_archive = now_ms() + s->o.archive_interval_ms;
        }
        if (now >= next_backup) {
            if (may_run(s, "backup"))
                run_backup(s, c);
            next_backup = now_ms() + s->o.backup_interval_ms;
        }
        count_requests(s);
    }
    kopt_ch_client_free(c);
    return NULL;
}

int agg_schedule_start(agg_schedule_t *s)
{
    if (!s->st || (!s->o.archive_interval_ms && !s->o.backup_interval_ms))
        return 0;
    if (s->lease) {
        if (pthread_create(&s->keeper, NULL, keeper_main, s) != 0)
            return -EAGAIN;
        s->keeper_started = true;
        kopt_log_info("schedule lease on", KOPT_STR("bucket", KOPT_LEASE_BUCKET),
                      KOPT_STR("lease", AGG_SCHEDULE_LEASE_KEY), KOPT_STR("replica", s->me),
                      KOPT_UINT("ttl_ms", s->o.lease_ttl_ms));
    }
    if (pthread_create(&s->thread, NULL, schedule_main, s) != 0)
        return -EAGAIN;
    s->started = true;
    return 0;
}

void agg_schedule_free(agg_schedule_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    if (s->keeper_started)
        pthread_join(s->keeper, NULL);
    /* Hand the lease over now rather than after the TTL. */
    if (s->keeper_started)
        kopt_lease_release(s->lease);
    kopt_lease_free(s->lease);
    kopt_objstore_free(s->st);
    kopt_objstore_free(s->gate.st);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}
