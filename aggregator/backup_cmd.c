/* `kopt-aggregator backup | restore | replay`: the object store and NATS
 * settings turned into the calls of backup.h, with the outcome and the
 * object store counters logged (a one-shot command has no /metrics). */
#include "backup_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kopt/log.h>
#include <kopt/objstore.h>

#include "archive.h"
#include "backup.h"

int agg_objstore_options(const agg_settings_t *s, kopt_object_store_location_t *where,
                         kopt_objstore_options_t *so)
{
    char err[256];
    int r = kopt_object_store_locate(&s->store, where, err, sizeof(err));

    if (r == -EINVAL)
        kopt_log_error("bad object store settings", KOPT_STR("detail", err));
    if (r == 0)
        kopt_object_store_options(&s->store, where, (uint32_t)s->clickhouse_timeout_ms, so);
    return r;
}

int agg_objstore_open(const agg_settings_t *s, kopt_object_store_location_t *where,
                      kopt_objstore_t **st)
{
    kopt_objstore_options_t so;
    kopt_objstore_error_t oerr = {0};
    int r = agg_objstore_options(s, where, &so);

    if (r == -ENOENT)
        kopt_log_error("backup, restore and archive need --object-store-url");
    if (r < 0)
        return -EINVAL;
    r = kopt_objstore_new(&so, st, &oerr);
    if (r < 0)
        kopt_log_error("object store settings", KOPT_STR("detail", oerr.message), KOPT_ERR(r));
    return r;
}

static int backup_restore(const agg_settings_t *s, const kopt_ch_options_t *ch, const char *sub)
{
    kopt_ch_options_t o = *ch;
    kopt_ch_client_t *c = NULL;
    kopt_ch_error_t err = {0};
    kopt_objstore_t *st = NULL;
    kopt_object_store_location_t where;
    kopt_objstore_stats_t os = {0};
    char why[512] = "";
    int r;

    if (agg_objstore_open(s, &where, &st) < 0)
        return KOPT_CONFIG_EXIT_USAGE;
    o.max_response_bytes = (size_t)4 << 30; /* one partition as Native */
    r = kopt_ch_client_new(&o, &c, &err);
    if (r < 0) {
        snprintf(why, sizeof(why), "ClickHouse: %s", err.message);
    } else if (strcmp(sub, "archive") == 0) {
        agg_archive_result_t res;
        agg_archive_options_t ao = {.prefix = where.prefix,
                                    .after_days = (uint32_t)s->archive_after_days};

        r = agg_archive_run(c, st, &ao, &res, why, sizeof(why));
        if (r == 0)
            kopt_log_info("archive done", KOPT_UINT("partitions", res.partitions),
                          KOPT_UINT("rearchived", res.rearchived),
                          KOPT_UINT("unchanged", res.unchanged), KOPT_UINT("rows", res.rows),
                          KOPT_UINT("bytes", res.bytes),
                          KOPT_UINT("ms", (uint64_t)(res.seconds * 1000)));
    } else if (strcmp(sub, "restore") == 0) {
        agg_restore_result_t res;

        r = agg_restore_run(c, st, where.prefix, s->backup_id, &res, why, sizeof(why));
        if (r == 0)
            kopt_log_info("restore done", KOPT_STR("backup", res.id),
                          KOPT_UINT("tables", res.tables), KOPT_UINT("partitions", res.partitions),
                          KOPT_UINT("rows", res.rows),
                          KOPT_UINT("ms", (uint64_t)(res.seconds * 1000)));
    } else {
        agg_backup_result_t res;
        agg_backup_options_t bo = {.prefix = where.prefix};

        r = agg_backup_run(c, st, &bo, &res, why, sizeof(why));
        if (r == 0)
            kopt_log_info("backup done", KOPT_STR("backup", res.id),
                          KOPT_UINT("tables", res.tables), KOPT_UINT("partitions", res.partitions),
                          KOPT_UINT("rows", res.rows), KOPT_UINT("bytes", res.bytes),
                          KOPT_UINT("ms", (uint64_t)(res.seconds * 1000)));
    }
    kopt_objstore_stats(st, &os);
    /* The object store counters of this run, for the operator and a cron
     * job's log scraper (there is no /metrics for a one-shot command). */
    kopt_log_info("object store requests", KOPT_UINT("requests", os.requests),
                  KOPT_UINT("retries", os.retries), KOPT_UINT("failures", os.failures),
                  KOPT_UINT("bytes_up", os.bytes_up), KOPT_UINT("bytes_down", os.bytes_down),
                  KOPT_UINT("overwrite_refusals", os.overwrite_refusals));
    if (r < 0)
        kopt_log_error(strcmp(sub, "restore") == 0   ? "restore failed"
                       : strcmp(sub, "archive") == 0 ? "archive failed"
                                                     : "backup failed",
                       KOPT_STR("reason", why), KOPT_ERR(r));
    kopt_ch_client_free(c);
    kopt_objstore_free(st);
    return r < 0 ? 1 : 0;
}

static int replay(const agg_settings_t *s)
{
    char why[512] = "";
    int r = agg_restore_replay(s->nats_url, s->stream, s->consumer, why, sizeof(why));

    if (r < 0)
        kopt_log_error("replay failed", KOPT_STR("reason", why), KOPT_ERR(r));
    else
        kopt_log_info("consumer deleted: the next run replays the stream",
                      KOPT_STR("stream", s->stream), KOPT_STR("consumer", s->consumer));
    return r < 0 ? 1 : 0;
}

int agg_backup_command(const agg_settings_t *s, const kopt_ch_options_t *ch, const char *sub)
{
    kopt_log_setup("aggregator", (kopt_log_format_t)s->common.log_format,
                   (kopt_log_level_t)s->common.log_level, 2);
    if (strcmp(sub, "backup") == 0 || strcmp(sub, "restore") == 0 || strcmp(sub, "archive") == 0)
        return backup_restore(s, ch, sub);
    if (strcmp(sub, "replay") == 0)
        return replay(s);
    return KOPT_CONFIG_EXIT_USAGE;
}
