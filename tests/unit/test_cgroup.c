/* Unit tests for agent/cgroup.c and agent/cgroup_parse.c: the four fixture
 * trees (v1/v2 x systemd/cgroupfs) parsed exactly, the parsers' edge cases,
 * a container gone mid-read, and this machine's live /sys/fs/cgroup and /proc.
 * argv[1] is the source root (for tests/fixtures/cgroup). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgroup_parse.h"

static const char *src_root = ".";

typedef struct {
    const char *uid, *id;
    uint64_t cpu_ns, periods, thr_periods, thr_ns, mem, ws, rss, oom, mem_limit, quota;
    agent_cgroup_qos_t qos;
} expect_t;

/* The numbers tests/fixtures/cgroup/ holds (same in every layout). */
static const expect_t expected[] = {
    {"0f6b3c2e-6a47-4d1c-9b8e-2f4a1c7d9e01",
     "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", 5234567000, 1200, 37,
     2250000000, 104857600, 94371840, 73400320, 0, 268435456, 50000, AGENT_CGROUP_QOS_GUARANTEED},
    {"7c1e5d3a-2b9f-4e8a-a6c1-3d5f7b9e1a23",
     "b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3b2c3", 987654321000, 0, 0, 0,
     52428800, 47185920, 41943040, 2, 0, 0, AGENT_CGROUP_QOS_BURSTABLE},
    {"e4d2c0b8-9a76-4543-8210-fedcba987654",
     "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d", 42000, 0, 0, 0, 1048576,
     1048576, 524288, 0, 0, 0, AGENT_CGROUP_QOS_BESTEFFORT},
};

static void check_fixture(const char *layout, agent_cgroup_version_t version,
                          const agent_cgroup_runtime_t runtimes[3])
{
    char root[1024];
    agent_cgroup_list_t list;
    const uint32_t all = AGENT_CGROUP_HAVE_CPU | AGENT_CGROUP_HAVE_THROTTLE |
                         AGENT_CGROUP_HAVE_MEMORY | AGENT_CGROUP_HAVE_MEMSTAT |
                         AGENT_CGROUP_HAVE_OOM | AGENT_CGROUP_HAVE_MEM_LIMIT |
                         AGENT_CGROUP_HAVE_CPU_LIMIT;

    snprintf(root, sizeof(root), "%s/tests/fixtures/cgroup/%s", src_root, layout);
    assert_int_equal(agent_cgroup_scan(root, &list), 0);
    /* Three containers; CRI-O's conmon scope and the pod dirs are not listed. */
    assert_int_equal(list.n, 3);
    for (size_t e = 0; e < 3; e++) {
        const expect_t *x = &expected[e];
        const agent_cgroup_container_t *c = NULL;
        agent_cgroup_sample_t s;

        for (size_t i = 0; i < list.n; i++)
            if (!strcmp(list.items[i].container_id, x->id))
                c = &list.items[i];
        assert_non_null(c);
        assert_int_equal(c->version, version);
        assert_string_equal(c->pod_uid, x->uid);
        assert_int_equal(c->qos, x->qos);
        assert_int_equal(c->runtime, runtimes[e]);
        assert_int_equal(agent_cgroup_read(c, &s), 0);
        assert_int_equal(s.have, all);
        assert_int_equal(s.cpu_usage_ns, x->cpu_ns);
        assert_int_equal(s.cpu_periods, x->periods);
        assert_int_equal(s.cpu_throttled_periods, x->thr_periods);
        assert_int_equal(s.cpu_throttled_ns, x->thr_ns);
        assert_int_equal(s.memory_usage_bytes, x->mem);
        assert_int_equal(s.memory_working_set_bytes, x->ws);
        assert_int_equal(s.memory_rss_bytes, x->rss);
        assert_int_equal(s.oom_kills, x->oom);
        assert_int_equal(s.memory_limit_bytes, x->mem_limit);
        assert_int_equal(s.cpu_quota_us, x->quota);
        assert_int_equal(s.cpu_period_us, 100000);
    }
    agent_cgroup_list_free(&list);
    assert_null(list.items);
}

static void fixture_v2_systemd(void **state)
{
    const agent_cgroup_runtime_t rt[3] = {AGENT_CGROUP_RUNTIME_CONTAINERD,
                                          AGENT_CGROUP_RUNTIME_CRIO, AGENT_CGROUP_RUNTIME_DOCKER};
    (void)state;
    check_fixture("v2-systemd", AGENT_CGROUP_V2, rt);
}

static void fixture_v2_cgroupfs(void **state)
{
    const agent_cgroup_runtime_t rt[3] = {AGENT_CGROUP_RUNTIME_UNKNOWN, AGENT_CGROUP_RUNTIME_CRIO,
                                          AGENT_CGROUP_RUNTIME_UNKNOWN};
    (void)state;
    check_fixture("v2-cgroupfs", AGENT_CGROUP_V2, rt);
}

static void fixture_v1_systemd(void **state)
{
    const agent_cgroup_runtime_t rt[3] = {AGENT_CGROUP_RUNTIME_CONTAINERD,
                                          AGENT_CGROUP_RUNTIME_CRIO, AGENT_CGROUP_RUNTIME_DOCKER};
    (void)state;
    check_fixture("v1-systemd", AGENT_CGROUP_V1, rt);
}

static void fixture_v1_cgroupfs(void **state)
{
    const agent_cgroup_runtime_t rt[3] = {AGENT_CGROUP_RUNTIME_UNKNOWN, AGENT_CGROUP_RUNTIME_CRIO,
                                          AGENT_CGROUP_RUNTIME_UNKNOWN};
    (void)state;
    check_fixture("v1-cgroupfs", AGENT_CGROUP_V1, rt);
}

#define S(lit) lit, sizeof(lit) - 1

static void parse_values(void **state)
{
    uint64_t v, q, p;
    int64_t sv;

    (void)state;
    assert_int_equal(agent_cgroup_parse_u64(S("123\n"), &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(agent_cgroup_parse_u64(S("max\n"), &v), 0);
    assert_true(v == AGENT_CGROUP_UNLIMITED);
    assert_int_equal(agent_cgroup_parse_u64(S("18446744073709551616\n"), &v), -EINVAL);
    assert_int_equal(agent_cgroup_parse_u64(S(""), &v), -EINVAL);
    assert_int_equal(agent_cgroup_parse_u64(S("12 3"), &v), -EINVAL);
    assert_int_equal(agent_cgroup_parse_s64(S("-1\n"), &sv), 0);
    assert_int_equal(sv, -1);
    assert_int_equal(agent_cgroup_parse_s64(S("-\n"), &sv), -EINVAL);
    assert_int_equal(agent_cgroup_parse_cpu_max(S("max 100000\n"), &q, &p), 0);
    assert_true(q == AGENT_CGROUP_UNLIMITED);
    assert_int_equal(p, 100000);
    assert_int_equal(agent_cgroup_parse_cpu_max(S("25000 50000\n"), &q, &p), 0);
    assert_int_equal(q, 25000);
    assert_int_equal(agent_cgroup_parse_cpu_max(S("25000 0\n"), &q, &p), -EINVAL);
    assert_int_equal(agent_cgroup_parse_cpu_max(S("25000\n"), &q, &p), -EINVAL);
    assert_int_equal(agent_cgroup_parse_v1_limit(S("9223372036854771712\n"), &v), 0);
    assert_true(v == AGENT_CGROUP_UNLIMITED);
    assert_int_equal(agent_cgroup_parse_v1_limit(S("536870912\n"), &v), 0);
    assert_int_equal(v, 536870912);
}

static void parse_keyed(void **state)
{
    agent_cgroup_cpu_t cpu = {0};
    agent_cgroup_memstat_t m;
    uint64_t v;

    (void)state;
    /* Without the cpu controller v2 cpu.stat has only the usage lines. */
    assert_int_equal(agent_cgroup_parse_cpu_stat_v2(S("usage_usec 7\nuser_usec 5\n"), &cpu), 0);
    assert_int_equal(cpu.usage_ns, 7000);
    assert_int_equal(cpu.periods, 0);
    assert_int_equal(agent_cgroup_parse_cpu_stat_v2(S("user_usec 5\n"), &cpu), -EINVAL);
    assert_int_equal(agent_cgroup_parse_cpu_stat_v2(S("usage_usec x\n"), &cpu), -EINVAL);
    /* A key that only starts like a wanted one is not it; no final newline. */
    assert_int_equal(
        agent_cgroup_parse_memory_stat_v2(S("anon_thp 9\nanon 4096\ninactive_file 1\nfile 2"), &m),
        0);
    assert_int_equal(m.anon, 4096);
    assert_int_equal(m.file, 2);
    /* v1 without hierarchy (no total_ keys) falls back to the local ones. */
    assert_int_equal(agent_cgroup_parse_memory_stat_v1(S("rss 10\ninactive_file 3\n"), &m), 0);
    assert_int_equal(m.anon, 10);
    assert_int_equal(m.inactive_file, 3);
    assert_int_equal(agent_cgroup_parse_memory_stat_v1(S("cache 10\n"), &m), -EINVAL);
    assert_int_equal(agent_cgroup_parse_oom_kill(S("oom_kill_disable 0\nunder_oom 0\n"), &v),
                     -ENOENT);
    assert_int_equal(agent_cgroup_parse_oom_kill(S("oom 3\noom_kill 2\n"), &v), 0);
    assert_int_equal(v, 2);
}

static void parse_names(void **state)
{
    char uid[AGENT_CGROUP_UID_MAX], id[AGENT_CGROUP_ID_MAX];
    agent_cgroup_runtime_t rt;
    agent_cgroup_qos_t qos;
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char name[256];

    (void)state;
    assert_int_equal(agent_cgroup_parse_pod_dir(
                         "kubepods-burstable-pod1a2b3c4d_0000_4111_8222_123456789abc.slice", uid),
                     0);
    assert_string_equal(uid, "1a2b3c4d-0000-4111-8222-123456789abc");
    assert_int_equal(agent_cgroup_parse_pod_dir("pod1a2b3c4d-0000-4111-8222-123456789abc", uid), 0);
    /* Static pods have a 32-hex config hash as their UID. */
    assert_int_equal(agent_cgroup_parse_pod_dir("pod6b3a3b4d5e6f708192a3b4c5d6e7f809", uid), 0);
    assert_int_equal(agent_cgroup_parse_pod_dir("pod", uid), -EINVAL);
    assert_int_equal(agent_cgroup_parse_pod_dir("kubepods-pod.slice", uid), -EINVAL);
    assert_int_equal(agent_cgroup_parse_pod_dir("pod1a2b3c4d-0000-4111-8222-123456789abZ", uid),
                     -EINVAL);
    assert_int_equal(agent_cgroup_parse_qos_dir("kubepods-besteffort.slice", &qos), 0);
    assert_int_equal(qos, AGENT_CGROUP_QOS_BESTEFFORT);
    assert_int_equal(agent_cgroup_parse_qos_dir("system.slice", &qos), -EINVAL);

    snprintf(name, sizeof(name), "cri-containerd-%s.scope", hex);
    assert_int_equal(agent_cgroup_parse_container_dir(name, id, &rt), 0);
    assert_string_equal(id, hex);
    assert_int_equal(rt, AGENT_CGROUP_RUNTIME_CONTAINERD);
    snprintf(name, sizeof(name), "crio-conmon-%s.scope", hex);
    assert_int_equal(agent_cgroup_parse_container_dir(name, id, &rt), -EINVAL);
    snprintf(name, sizeof(name), "docker-%s", hex); /* docker without .scope: not a form */
    assert_int_equal(agent_cgroup_parse_container_dir(name, id, &rt), -EINVAL);
    assert_int_equal(agent_cgroup_parse_container_dir("cri-containerd-.scope", id, &rt), -EINVAL);
    assert_int_equal(agent_cgroup_parse_container_dir("init.scope", id, &rt), -EINVAL);
    assert_int_equal(agent_cgroup_parse_container_dir(hex, id, &rt), 0);
    assert_int_equal(rt, AGENT_CGROUP_RUNTIME_UNKNOWN);
    assert_string_equal(agent_cgroup_runtime_name(AGENT_CGROUP_RUNTIME_CRIO), "cri-o");
}

static void parse_proc(void **state)
{
    char path[64];
    agent_proc_stat_t ps;
    const char stat[] = "42 (a b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 "
                        "555 10000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0";

    (void)state;
    assert_int_equal(agent_cgroup_parse_proc_cgroup(S("4:memory:/a/b\n1:cpu,cpuacct:/c\n0::/d\n"),
                                                    "cpuacct", path, sizeof(path)),
                     0);
    assert_string_equal(path, "/c");
    assert_int_equal(
        agent_cgroup_parse_proc_cgroup(S("4:memory:/a/b\n0::/d"), "", path, sizeof(path)), 0);
    assert_string_equal(path, "/d");
    assert_int_equal(
        agent_cgroup_parse_proc_cgroup(S("4:memory:/a/b\n"), "cpu", path, sizeof(path)), -ENOENT);
    assert_int_equal(agent_cgroup_parse_proc_cgroup(S("0::/abcdef\n"), "", path, 4), -ENAMETOOLONG);
    assert_int_equal(agent_proc_parse_stat(stat, sizeof(stat) - 1, &ps), 0);
    assert_int_equal(ps.utime_ticks, 7);
    assert_int_equal(ps.stime_ticks, 3);
    assert_int_equal(ps.starttime_ticks, 555);
    assert_int_equal(ps.rss_pages, 250);
    assert_int_equal(agent_proc_parse_stat(S("42 (x) S 1 2"), &ps), -EINVAL);
}

/* A container that exits between the scan and the read. */
static void container_gone(void **state)
{
    agent_cgroup_container_t c = {.version = AGENT_CGROUP_V2};
    agent_cgroup_sample_t s;
    char dir[] = "/tmp/kopt-cgroup-XXXXXX", file[64];
    int fd;

    (void)state;
    c.path = c.cpu_path = c.cpuacct_path = "/nonexistent/kopt/cgroup";
    assert_int_equal(agent_cgroup_read(&c, &s), -ENOENT);
    c.version = AGENT_CGROUP_V1;
    assert_int_equal(agent_cgroup_read(&c, &s), -ENOENT);

    /* A directory with only some files: what is there is read. */
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/memory.current", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "4096\n", 5), 5);
    close(fd);
    c.version = AGENT_CGROUP_V2;
    c.path = c.cpu_path = c.cpuacct_path = dir;
    assert_int_equal(agent_cgroup_read(&c, &s), 0);
    assert_int_equal(s.have, AGENT_CGROUP_HAVE_MEMORY);
    assert_int_equal(s.memory_usage_bytes, 4096);
    /* A garbage cpu.stat is an error, not a crash. */
    snprintf(file, sizeof(file), "%s/cpu.stat", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "usage_usec -3\n", 14), 14);
    close(fd);
    assert_int_equal(agent_cgroup_read(&c, &s), -EINVAL);
    unlink(file);
    snprintf(file, sizeof(file), "%s/memory.current", dir);
    unlink(file);
    rmdir(dir);
    assert_int_equal(agent_cgroup_read(&c, &s), -ENOENT);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, cap);
    close(fd);
    assert_true(n > 0);
    return (size_t)n;
}

/* This machine: no Kubernetes, but its own cgroups and /proc read cleanly. */
static void live_machine(void **state)
{
    char buf[8192];
    size_t len = slurp("/proc/self/cgroup", buf, sizeof(buf));
    agent_cgroup_container_t self, root;
    agent_cgroup_sample_t s;
    agent_cgroup_list_t list;
    agent_proc_stat_t ps;
    int r;

    (void)state;
    r = agent_cgroup_scan("/sys/fs/cgroup", &list);
    if (r == -ENOENT) {
        skip();
        return;
    }
    assert_int_equal(r, 0);
    for (size_t i = 0; i < list.n; i++) /* a real node: whatever runs reads or is gone */
        assert_true(agent_cgroup_read(&list.items[i], &s) == 0 ||
                    agent_cgroup_read(&list.items[i], &s) == -ENOENT);
    agent_cgroup_list_free(&list);

    assert_int_equal(agent_cgroup_of_process("/sys/fs/cgroup", buf, len, &self), 0);
    assert_int_equal(agent_cgroup_read(&self, &s), 0);
    assert_true(s.have & AGENT_CGROUP_HAVE_CPU);
    assert_true(s.cpu_usage_ns > 0);
    if (s.have & AGENT_CGROUP_HAVE_MEMORY)
        assert_true(s.memory_usage_bytes > 0);
    agent_cgroup_container_clear(&self);

    /* The root group: v2 has no memory.current there, v1 has it all. */
    assert_int_equal(agent_cgroup_of_process("/sys/fs/cgroup",
                                             S("0::/\n9:memory:/\n8:cpu:/\n7:cpuacct:/\n"), &root),
                     0);
    assert_int_equal(agent_cgroup_read(&root, &s), 0);
    assert_true(s.have & AGENT_CGROUP_HAVE_CPU);
    agent_cgroup_container_clear(&root);

    len = slurp("/proc/self/stat", buf, sizeof(buf));
    assert_int_equal(agent_proc_parse_stat(buf, len, &ps), 0);
    assert_true(ps.rss_pages > 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_v2_systemd), cmocka_unit_test(fixture_v2_cgroupfs),
        cmocka_unit_test(fixture_v1_systemd), cmocka_unit_test(fixture_v1_cgroupfs),
        cmocka_unit_test(parse_values),       cmocka_unit_test(parse_keyed),
        cmocka_unit_test(parse_names),        cmocka_unit_test(parse_proc),
        cmocka_unit_test(container_gone),     cmocka_unit_test(live_machine),
    };

    if (argc > 1)
        src_root = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
