/* The proc source on this machine's live /proc: a busy child process is
 * grouped by its command line and its CPU and memory show up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_source.h"

static agent_proc_group_t seen[4];
static char names[4][32];
static size_t n_seen;

static void record(const agent_proc_group_t *g, void *data)
{
    (void)data;
    if (n_seen < 4) {
        seen[n_seen] = *g;
        snprintf(names[n_seen], sizeof(names[n_seen]), "%s", g->group);
        seen[n_seen].group = names[n_seen];
        n_seen++;
    }
}

static void busy_child_is_measured(void **state)
{
    static const char *const rules[] = {"spinner=^sh -c while :; do :; done", "nothing=^no-such$"};
    agent_proc_source_t *p;
    char err[256];
    pid_t pid;
    uint64_t cpu0;

    (void)state;
    assert_int_equal(agent_proc_source_new("/proc", rules, 2, &p, err, sizeof(err)), 0);
    n_seen = 0;
    assert_int_equal(agent_proc_source_scan(p, 0, record, NULL), 0);
    assert_int_equal(n_seen, 2);
    pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "while :; do :; done", (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    n_seen = 0;
    assert_int_equal(agent_proc_source_scan(p, 0, record, NULL), 0);
    cpu0 = seen[0].cpu_usage_ns;
    assert_int_equal(seen[0].processes, 1);
    assert_true(seen[0].rss_bytes > 0);
    usleep(500000);
    n_seen = 0;
    assert_int_equal(agent_proc_source_scan(p, 0, record, NULL), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* About 0.5 s of CPU in 0.5 s; allow for a busy machine. */
    assert_true(seen[0].cpu_usage_ns - cpu0 > 100000000ULL);
    assert_string_equal(seen[1].group, "nothing");
    assert_int_equal(seen[1].processes, 0);
    agent_proc_source_free(p);
}

static void bad_rules_are_refused(void **state)
{
    static const char *const bad[] = {"noequals"};
    static const char *const badre[] = {"x=("};
    agent_proc_source_t *p;
    char err[256];

    (void)state;
    assert_int_equal(agent_proc_source_new("/proc", bad, 1, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "expected name=regex"));
    assert_int_equal(agent_proc_source_new("/proc", badre, 1, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "bad regular expression"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy_child_is_measured),
        cmocka_unit_test(bad_rules_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
