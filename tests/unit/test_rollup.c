/* aggregator/rollup.c and rollup_state.c, the pure parts: one rollup
 * statement for many hours (grouped by hour, one read of the span, the
 * hours listed only when they leave gaps, covered_seconds summed), the
 * rollup watermark per cluster and its rollup_state row, and the migration
 * that adds covered_seconds on 18.16 and on current servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/rollup_sql.h>

#include "rollup.h"
#include "rollup_state.h"
#include "schema.h"

#define H 1800000000LL /* a multiple of 3600: 2027-01-15 08:00 UTC */

static void contiguous_hours_are_one_range(void **state)
{
    int64_t hours[] = {H + 7200, H, H + 3600, H}; /* any order, repeats */
    char *sql = NULL;

    (void)state;
    assert_int_equal(agg_rollup_sql_hours("kopt", "prod", hours, 4, &sql), 0);
    assert_non_null(strstr(sql, "INSERT INTO kopt.container_hourly ("));
    assert_non_null(strstr(sql, "WHERE window_start >= toDateTime(1800000000) AND window_start < "
                                "toDateTime(1800010800) AND cluster = 'prod'\n"));
    assert_null(strstr(sql, " IN ("));
    assert_non_null(strstr(sql, "toDateTime(intDiv(toUInt32(window_start), 3600) * 3600) AS hour"));
    assert_non_null(strstr(sql, "GROUP BY cluster, namespace, workload_kind, workload_name, "
                                "container, hour"));
    /* covered_seconds: the column, then the window lengths summed. */
    assert_non_null(strstr(sql, "memory_limit_bytes, covered_seconds, rolled_at)"));
    assert_non_null(strstr(sql, "toUInt64(sum(if(window_end > window_start, toUInt32(window_end) - "
                                "toUInt32(window_start), 0))), now()"));
    assert_non_null(strstr(sql, "FROM kopt.container_windows FINAL"));
    free(sql);
}

static void scattered_hours_are_listed(void **state)
{
    int64_t hours[] = {H + 5 * 3600, H, H + 2 * 3600};
    char *sql = NULL;

    (void)state;
    assert_int_equal(agg_rollup_sql_hours("kopt", NULL, hours, 3, &sql), 0);
    assert_non_null(strstr(sql, "WHERE window_start >= toDateTime(1800000000) AND window_start < "
                                "toDateTime(1800021600) AND intDiv(toUInt32(window_start), 3600) "
                                "IN (500000, 500002, 500005)\n"));
    assert_null(strstr(sql, "cluster = "));
    free(sql);
}

static void one_hour_and_bad_input(void **state)
{
    int64_t hours[AGG_ROLLUP_MAX_HOURS + 1];
    char *sql = NULL, *one = NULL;

    (void)state;
    assert_int_equal(agg_rollup_sql("kopt", "it's", H, &one), 0);
    assert_int_equal(agg_rollup_sql_hours("kopt", "it's", &hours[0], 0, &sql), -EINVAL);
    hours[0] = H;
    assert_int_equal(agg_rollup_sql_hours("kopt", "it's", hours, 1, &sql), 0);
    assert_string_equal(sql, one);
    assert_non_null(strstr(sql, "cluster = 'it\\'s'"));
    free(sql);
    free(one);
    hours[0] = H + 60;
    assert_int_equal(agg_rollup_sql_hours("kopt", NULL, hours, 1, &sql), -EINVAL);
    assert_null(sql);
    for (int i = 0; i <= AGG_ROLLUP_MAX_HOURS; i++)
        hours[i] = H + 3600 * i;
    assert_int_equal(agg_rollup_sql_hours("kopt", NULL, hours, AGG_ROLLUP_MAX_HOURS + 1, &sql),
                     -EINVAL);
    assert_int_equal(agg_rollup_sql_hours("kopt; DROP", NULL, hours, 1, &sql), -EINVAL);
}

static void watermark_moves_only_where_nothing_failed(void **state)
{
    agg_rollup_state_t st;
    agg_hourset_t taken, failed;

    (void)state;
    agg_rollup_state_init(&st, "host-a/42", 60, 1000);
    agg_hourset_init(&taken);
    agg_hourset_init(&failed);
    assert_int_equal(agg_rollup_state_lag(&st, 1030), 30); /* since start, nothing known */
    agg_hourset_add(&taken, "prod", H);
    agg_hourset_add(&taken, "dev", H + 10);
    agg_hourset_add(&failed, "dev", H);
    agg_rollup_state_update(&st, &taken, &failed, 2000);
    assert_int_equal(st.n, 2);
    assert_int_equal(st.marks[0].watermark, 2000); /* prod */
    assert_int_equal(st.marks[1].watermark, 1000); /* dev failed: still at the start */
    assert_int_equal(agg_rollup_state_lag(&st, 2100), 1100);
    /* A pass with no data for a cluster moves it too: nothing was stored. */
    agg_hourset_clear(&taken);
    agg_hourset_clear(&failed);
    agg_rollup_state_update(&st, &taken, &failed, 3000);
    assert_int_equal(st.marks[0].watermark, 3000);
    assert_int_equal(st.marks[1].watermark, 3000);
    /* A failed statement for every cluster (the lateness window) holds all. */
    agg_hourset_add(&failed, "", H);
    agg_rollup_state_update(&st, &taken, &failed, 4000);
    assert_int_equal(st.marks[0].watermark, 3000);
    assert_int_equal(agg_rollup_state_lag(&st, 2000), 0);
    agg_hourset_free(&taken);
    agg_hourset_free(&failed);
    agg_rollup_state_free(&st);
}

static void state_row_per_cluster_with_its_pending_hours(void **state)
{
    agg_rollup_state_t st;
    agg_hourset_t taken, none, pending;
    char *sql = NULL;

    (void)state;
    agg_rollup_state_init(&st, "host-a/42", 60, 1000);
    agg_hourset_init(&taken);
    agg_hourset_init(&none);
    agg_hourset_init(&pending);
    assert_int_equal(agg_rollup_state_sql("kopt", &st, &pending, 5000, &sql), -ENODATA);
    agg_hourset_add(&taken, "prod", H);
    agg_hourset_add(&taken, "o'k", H);
    agg_rollup_state_update(&st, &taken, &none, 2000);
    agg_hourset_add(&pending, "prod", H + 7200 + 5);
    agg_hourset_add(&pending, "prod", H + 10);
    agg_hourset_add(&pending, "", H + 3600); /* a cluster name too long to keep: every cluster */
    assert_int_equal(agg_rollup_state_sql("kopt", &st, &pending, 5000, &sql), 0);
    assert_string_equal(sql, "INSERT INTO kopt.rollup_state (cluster, replica, watermark, pending, "
                             "interval_seconds, updated_at) VALUES\n"
                             "('prod', 'host-a/42', 2000, [1800000000,1800003600,1800007200], 60, "
                             "5000),\n"
                             "('o\\'k', 'host-a/42', 2000, [1800003600], 60, 5000)");
    free(sql);
    agg_hourset_free(&taken);
    agg_hourset_free(&none);
    agg_hourset_free(&pending);
    agg_rollup_state_free(&st);
}

static void covered_seconds_migration(void **state)
{
    kopt_ch_version_t old, cur;
    const char *name = NULL;
    char *sql = NULL;

    (void)state;
    kopt_ch_version_parse("18.16.1", &old);
    kopt_ch_version_parse("23.8.2.7", &cur);
    assert_int_equal(agg_schema_sql(8, &old, "kopt", NULL, &sql, &name), 0);
    assert_string_equal(name, "container_hourly_covered_seconds");
    assert_string_equal(sql, "ALTER TABLE kopt.container_hourly ADD COLUMN covered_seconds UInt64");
    free(sql);
    assert_int_equal(agg_schema_sql(8, &cur, "kopt", NULL, &sql, &name), 0);
    assert_string_equal(
        sql, "ALTER TABLE kopt.container_hourly ADD COLUMN covered_seconds UInt64 CODEC(ZSTD(1))");
    free(sql);
    assert_int_equal(agg_schema_sql(9, &old, "kopt", NULL, &sql, &name), 0);
    assert_string_equal(name, "create_rollup_state");
    assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS kopt.rollup_state"));
    assert_non_null(strstr(sql, "pending Array(DateTime)"));
    assert_non_null(strstr(sql, "ORDER BY (cluster, replica)"));
    free(sql);
    /* 10 is the cold archive's record (aggregator/archive.c). */
    assert_int_equal(agg_schema_sql(10, &old, "kopt", NULL, &sql, &name), 0);
    assert_string_equal(name, "create_archive");
    assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS kopt.archive"));
    assert_non_null(strstr(sql, "ORDER BY (source_table, partition_id, archived_at)"));
    free(sql);
    assert_int_equal(agg_schema_latest(), 10);
}

/* The shared statement (kopt/rollup_sql.h) as the advisor uses it: another
 * target and source, no FINAL, the rolled_at given; and its required parts. */
static void rollup_into_another_table(void **state)
{
    kopt_rollup_query_t q = {.target = "kopt_archive_hourly",
                             .source = "(SELECT * FROM w ORDER BY inserted_at DESC LIMIT 1 BY k)",
                             .where = "1 AND cluster = 'c1'",
                             .rolled_at = "toDateTime(1800000000)"};
    char *sql = NULL;

    (void)state;
    assert_int_equal(kopt_rollup_insert_sql(&q, &sql), 0);
    assert_true(strncmp(sql, "INSERT INTO kopt_archive_hourly (cluster, ", 42) == 0);
    assert_non_null(strstr(sql, "toDateTime(1800000000)\nFROM (SELECT * FROM w ORDER BY "
                                "inserted_at DESC LIMIT 1 BY k)\nWHERE 1 AND cluster = 'c1'\n"));
    assert_null(strstr(sql, "FINAL"));
    assert_null(strstr(sql, "now()"));
    free(sql);
    q.where = NULL;
    assert_int_equal(kopt_rollup_insert_sql(&q, &sql), -EINVAL);
    assert_null(sql);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contiguous_hours_are_one_range),
        cmocka_unit_test(scattered_hours_are_listed),
        cmocka_unit_test(one_hour_and_bad_input),
        cmocka_unit_test(watermark_moves_only_where_nothing_failed),
        cmocka_unit_test(state_row_per_cluster_with_its_pending_hours),
        cmocka_unit_test(covered_seconds_migration),
        cmocka_unit_test(rollup_into_another_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
