/* The proc source on this machine's live /proc: a busy child process is
 * grouped by its command line and its CPU and memory show up. Without
 * rules, a fake /proc tree: processes grouped by executable name. */
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
#include <sys/stat.h>
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

/* A fake /proc/<pid> with a stat (RSS 10 pages) and a cmdline of `argc` NUL-separated words. */
static void fake_pid(const char *root, int pid, const char *const *argv, int argc)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%d", root, pid);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%d/stat", root, pid);
    f = fopen(path, "w");
    assert_non_null(f);
    /* pid (comm) state, then fields 4..24: utime 14, stime 15, starttime 22, rss 24. */
    fprintf(f, "%d (x) S 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 100 1000 10\n", pid);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%d/cmdline", root, pid);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < argc; i++)
        fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
    fclose(f);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const agent_proc_group_t *)a)->group, ((const agent_proc_group_t *)b)->group);
}

/* No rules: the group is argv[0]'s last part, made a Kubernetes label
 * ("Python3.11" is "python3-11", a login shell "-bash" is "bash"); two
 * processes of one executable are one group; no command line (a kernel
 * thread) and nothing left of the name are ignored. */
static void no_rules_groups_by_executable(void **state)
{
    static const char *const py[] = {"/usr/bin/Python3.11", "app.py"};
    static const char *const bash[] = {"-bash"};
    static const char *const odd[] = {"(+)"};
    char root[] = "/tmp/kopt-test-proc-XXXXXX", path[512], err[64];
    agent_proc_source_t *p;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/uptime", root);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("1000.00 1000.00\n", f);
    fclose(f);
    fake_pid(root, 10, py, 2);
    fake_pid(root, 11, py, 1);
    fake_pid(root, 12, bash, 1);
    fake_pid(root, 13, odd, 1);
    fake_pid(root, 14, NULL, 0); /* empty cmdline */
    assert_int_equal(agent_proc_source_new(root, NULL, 0, &p, err, sizeof(err)), 0);
    n_seen = 0;
    assert_int_equal(agent_proc_source_scan(p, 0, record, NULL), 0);
    assert_int_equal(n_seen, 2);
    qsort(seen, n_seen, sizeof(seen[0]), by_name);
    assert_string_equal(seen[0].group, "bash");
    assert_int_equal(seen[0].processes, 1);
    assert_string_equal(seen[1].group, "python3-11");
    assert_int_equal(seen[1].processes, 2);
    assert_int_equal(seen[1].rss_bytes, 2 * 10 * (uint64_t)sysconf(_SC_PAGESIZE));
    agent_proc_source_free(p);
    for (int pid = 10; pid <= 14; pid++) {
        snprintf(path, sizeof(path), "%s/%d/stat", root, pid);
        unlink(path);
        snprintf(path, sizeof(path), "%s/%d/cmdline", root, pid);
        unlink(path);
        snprintf(path, sizeof(path), "%s/%d", root, pid);
        rmdir(path);
    }
    snprintf(path, sizeof(path), "%s/uptime", root);
    unlink(path);
    rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy_child_is_measured),
        cmocka_unit_test(bad_rules_are_refused),
        cmocka_unit_test(no_rules_groups_by_executable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
