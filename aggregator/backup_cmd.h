/* kopt-aggregator's one-shot object store subcommands: backup, restore,
 * archive, replay (docs/operations.md). main.c picks them. */
#ifndef AGG_BACKUP_CMD_H
#define AGG_BACKUP_CMD_H

#include <kopt/clickhouse.h>
#include <kopt/objstore.h>
#include <kopt/objstore_settings.h>

#include "settings.h"

/* Runs `backup`, `restore` or `replay` with the daemon's settings and its
 * ClickHouse options; logs the outcome. Returns the exit code: 0, 1 on
 * failure, KOPT_CONFIG_EXIT_USAGE on missing settings or another name. */
int agg_backup_command(const agg_settings_t *s, const kopt_ch_options_t *ch, const char *sub);

/* The object store of --object-store-url in *where and its options in *so
 * (strings in *where and the settings): 0, -ENOENT without the URL,
 * -EINVAL (logged) for a bad one. */
int agg_objstore_options(const agg_settings_t *s, kopt_object_store_location_t *where,
                         kopt_objstore_options_t *so);

/* The object store of the settings, and where it is; -EINVAL (logged)
 * without --object-store-url or with bad settings. */
int agg_objstore_open(const agg_settings_t *s, kopt_object_store_location_t *where,
                      kopt_objstore_t **st);

#endif
