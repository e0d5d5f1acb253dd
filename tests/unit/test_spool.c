/* Unit tests for agent/spool*.c: the record codec, append/replay/ack, restart
 * recovery with ack state, torn and corrupt tails, size and age bounds, and
 * kill -9 of a child appending with fsync=always at random moments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kopt/log.h>

#include "spool.h"
#include "spool_format.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/kopt-spool-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    (void)state;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    return rmdir(dir);
}

/* Payload of seq: its length and bytes follow from seq, so replay is checkable. */
static size_t payload(uint64_t seq, uint8_t *buf)
{
    size_t len = 1 + (seq * 37) % 300;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 7 + i);
    return len;
}

static void append_n(agent_spool_t *sp, int n, uint64_t *epoch)
{
    uint8_t buf[512];
    uint64_t seq;

    for (int i = 0; i < n; i++) {
        agent_spool_take_id(sp, epoch, &seq);
        assert_int_equal(agent_spool_append(sp, *epoch, seq, buf, payload(seq, buf)), 0);
    }
}

/* Replays everything unacked and checks it is (epoch, first..last), intact. */
static void expect_replay(agent_spool_t *sp, uint64_t epoch, uint64_t first, uint64_t last)
{
    agent_spool_entry_t e;
    uint8_t want[512];

    agent_spool_rewind(sp);
    for (uint64_t s = first; s <= last; s++) {
        assert_int_equal(agent_spool_peek(sp, &e), 0);
        assert_true(e.epoch == epoch);
        assert_int_equal(e.seq, s);
        assert_int_equal(e.len, payload(s, want));
        assert_memory_equal(e.data, want, e.len);
        agent_spool_next(sp);
    }
    assert_int_equal(agent_spool_peek(sp, &e), -ENOENT);
}

static void segment_path(int id, char *p, size_t cap)
{
    snprintf(p, cap, "%s/%08d.seg", dir, id);
}

static void codec(void **state)
{
    uint8_t buf[256], acks_buf[64];
    agent_spool_record_t r;
    agent_spool_scan_t st;
    agent_spool_ack_t acks[2] = {{5, 9}, {6, 1}}, back[2];
    size_t n, off = AGENT_SPOOL_SEGMENT_HEADER;
    uint64_t epoch;

    (void)state;
    assert_int_equal(agent_crc32c(0, "123456789", 9), 0xe3069283); /* the CRC-32C check value */
    memcpy(buf, AGENT_SPOOL_SEGMENT_MAGIC, AGENT_SPOOL_SEGMENT_HEADER);
    for (int i = 1; i <= 3; i++) {
        agent_spool_record_header(buf + off, 77, (uint64_t)i, "hello", 5);
        memcpy(buf + off + AGENT_SPOOL_RECORD_HEADER, "hello", 5);
        off += AGENT_SPOOL_RECORD_HEADER + 5;
    }
    assert_int_equal(agent_spool_record_decode(buf + 8, off - 8, 1024, &r), 0);
    assert_int_equal(r.epoch, 77);
    assert_int_equal(r.seq, 1);
    assert_int_equal(r.len, 5);
    assert_int_equal(agent_spool_record_decode(buf + 8, 20, 1024, &r), -EAGAIN);
    assert_int_equal(agent_spool_record_decode(buf + 8, 30, 1024, &r), -EAGAIN);
    assert_int_equal(agent_spool_record_decode(buf + 8, off - 8, 4, &r), -EBADMSG);
    assert_int_equal(agent_spool_record_decode(buf + 9, off - 9, 1024, &r), -EBADMSG);

    assert_int_equal(agent_spool_segment_scan(buf, off, 1024, NULL, NULL, &st), 0);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.valid_end, off);
    buf[8 + 33 + 30] ^= 1; /* the second record's payload */
    assert_int_equal(agent_spool_segment_scan(buf, off, 1024, NULL, NULL, &st), 0);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.bad_regions, 1);
    assert_int_equal(st.bad_bytes, 33);
    assert_int_equal(st.tail_bytes, 0);
    assert_int_equal(agent_spool_segment_scan(buf, off - 1, 1024, NULL, NULL, &st), 0);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.tail_bytes, off - 1 - 41);

    agent_spool_ack_encode(acks, 2, acks_buf);
    assert_int_equal(agent_spool_ack_decode(acks_buf, agent_spool_ack_size(2), back, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(back[1].epoch, 6);
    assert_int_equal(agent_spool_ack_decode(acks_buf, agent_spool_ack_size(2), back, 1, &n),
                     -EBADMSG);
    acks_buf[12] ^= 0x40;
    assert_int_equal(agent_spool_ack_decode(acks_buf, agent_spool_ack_size(2), back, 2, &n),
                     -EBADMSG);
    agent_spool_state_encode(123, buf);
    assert_int_equal(agent_spool_state_decode(buf, AGENT_SPOOL_STATE_SIZE, &epoch), 0);
    assert_int_equal(epoch, 123);
    assert_int_equal(agent_spool_state_decode(buf, 3, &epoch), -EBADMSG);
}

static void append_replay_ack(void **state)
{
    agent_spool_opts_t o;
    agent_spool_t *sp, *other;
    agent_spool_stats_t st;
    agent_spool_entry_t e;
    uint64_t epoch;

    (void)state;
    agent_spool_opts_default(&o);
    o.segment_bytes = 2048; /* several segments */
    assert_int_equal(agent_spool_open(dir, &o, &sp), 0);
    assert_int_equal(agent_spool_open(dir, &o, &other), -EBUSY);
    assert_int_equal(agent_spool_peek(sp, &e), -ENOENT);
    append_n(sp, 40, &epoch);
    assert_int_equal(agent_spool_append(sp, epoch, 0, "x", 1), -EINVAL);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.records, 40);
    assert_true(st.segments > 3);
    expect_replay(sp, epoch, 1, 40);

    /* Send a few, get acked, reconnect: only the rest comes again. */
    assert_int_equal(agent_spool_ack(sp, epoch, 25), 0);
    assert_int_equal(agent_spool_ack(sp, epoch, 20), 0);    /* older ack: no-op */
    assert_int_equal(agent_spool_ack(sp, epoch + 1, 3), 0); /* unknown epoch: no-op */
    expect_replay(sp, epoch, 26, 40);
    agent_spool_stats(sp, &st);
    assert_true(st.acked_segments > 0);
    assert_true(st.records < 40);

    assert_int_equal(agent_spool_ack(sp, epoch, 40), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.segments, 0);
    assert_int_equal(st.dropped_records, 0);
    assert_int_equal(agent_spool_peek(sp, &e), -ENOENT);
    agent_spool_free(sp);
    agent_spool_free(NULL);
}

/* The live case: the sender catches up, then more batches are made. */
static void appends_after_catching_up_are_read(void **state)
{
    agent_spool_t *sp;
    agent_spool_entry_t e;
    uint64_t epoch, seq;

    (void)state;
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_take_id(sp, &epoch, &seq);
    assert_int_equal(agent_spool_append(sp, epoch, seq, "a", 1), 0);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    agent_spool_next(sp);
    assert_int_equal(agent_spool_peek(sp, &e), -ENOENT);
    agent_spool_take_id(sp, &epoch, &seq);
    assert_int_equal(agent_spool_append(sp, epoch, seq, "b", 1), 0);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    assert_int_equal(e.seq, 2);
    agent_spool_free(sp);
}


static void restart_keeps_unacked(void **state)
{
    agent_spool_t *sp;
    agent_spool_stats_t st;
    uint64_t epoch, epoch2, seq;

    (void)state;
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    append_n(sp, 10, &epoch);
    assert_int_equal(agent_spool_ack(sp, epoch, 4), 0);
    agent_spool_free(sp);

    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_take_id(sp, &epoch2, &seq);
    assert_true(epoch2 > epoch); /* a new session, seq from 1 */
    assert_int_equal(seq, 1);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.torn, 0);
    expect_replay(sp, epoch, 5, 10);
    /* An ack of the old epoch after the restart still counts. */
    assert_int_equal(agent_spool_ack(sp, epoch, 7), 0);
    agent_spool_free(sp);
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    expect_replay(sp, epoch, 8, 10);
    agent_spool_free(sp);
}

static void corrupt_at(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void torn_tail_and_corruption(void **state)
{
    agent_spool_t *sp;
    agent_spool_stats_t st;
    agent_spool_entry_t e;
    char seg[512], junk[512];
    uint64_t epoch;
    struct stat s;
    int fd;

    (void)state;
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    append_n(sp, 5, &epoch);
    agent_spool_free(sp);
    segment_path(1, seg, sizeof(seg));
    assert_int_equal(stat(seg, &s), 0);

    /* A write torn by a crash: the last record is cut short. */
    assert_int_equal(truncate(seg, s.st_size - 10), 0);
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.torn, 1);
    assert_int_equal(st.records, 4);
    expect_replay(sp, epoch, 1, 4);
    agent_spool_free(sp);
    /* The tail was cut: opening again finds nothing wrong. */
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.torn, 0);
    agent_spool_free(sp);

    /* A flipped byte in record 2 (payload 1 + 37*2 % 300 = 75 bytes after 1's
     * 1+37=38): that record is skipped, the others are kept. */
    corrupt_at(seg, AGENT_SPOOL_SEGMENT_HEADER + (AGENT_SPOOL_RECORD_HEADER + 38) + 40);
    /* And a garbage file that looks like a segment by name. */
    segment_path(99, junk, sizeof(junk));
    fd = open(junk, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "this is not a spool segment at all", 34), 34);
    close(fd);
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.torn, 2);
    assert_int_equal(st.records, 3);
    assert_int_equal(access(junk, F_OK), -1);
    agent_spool_rewind(sp);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    assert_int_equal(e.seq, 1);
    agent_spool_next(sp);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    assert_int_equal(e.seq, 3);
    agent_spool_free(sp);

    /* A garbage ack file: everything is replayed (harmless), nothing lost. */
    snprintf(junk, sizeof(junk), "%s/ack", dir);
    fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, "garbage", 7), 7);
    close(fd);
    assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.records, 3);
    agent_spool_free(sp);
}

static void size_and_age_bounds(void **state)
{
    agent_spool_opts_t o;
    agent_spool_t *sp;
    agent_spool_stats_t st;
    agent_spool_entry_t e;
    uint8_t big[8192] = {0};
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    char seg[512];
    uint64_t epoch;

    (void)state;
    agent_spool_opts_default(&o);
    o.segment_bytes = 1024;
    o.max_bytes = 4096;
    o.max_record_bytes = 2048;
    assert_int_equal(agent_spool_open(dir, &o, &sp), 0);
    assert_int_equal(agent_spool_append(sp, 1, 1, big, 4096), -EFBIG);
    append_n(sp, 100, &epoch);
    agent_spool_stats(sp, &st);
    assert_true(st.bytes <= o.max_bytes);
    assert_true(st.dropped_records > 0);
    assert_int_equal(st.dropped_records + st.records, 100);
    /* The newest records stay; the oldest went first. */
    agent_spool_rewind(sp);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    assert_int_equal(e.seq, st.dropped_records + 1);
    agent_spool_free(sp);

    /* Age: segment 1's last write is long ago. */
    o.max_bytes = 1 << 20;
    o.max_age_s = 3600;
    assert_int_equal(agent_spool_open(dir, &o, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.dropped_records, 0);
    agent_spool_rewind(sp);
    assert_int_equal(agent_spool_peek(sp, &e), 0);
    agent_spool_free(sp);
    for (int id = 1; id < 100; id++) {
        segment_path(id, seg, sizeof(seg));
        if (access(seg, F_OK) == 0) {
            assert_int_equal(utimensat(AT_FDCWD, seg, old, 0), 0);
            break;
        }
    }
    assert_int_equal(agent_spool_open(dir, &o, &sp), 0);
    agent_spool_stats(sp, &st);
    assert_true(st.dropped_records > 0);
    assert_int_equal(st.dropped_segments, 1);
    /* And at run time, from the periodic call. */
    assert_int_equal(agent_spool_maintain(sp, (int64_t)time(NULL) + 7200), 0);
    agent_spool_stats(sp, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(agent_spool_peek(sp, &e), -ENOENT);
    agent_spool_free(sp);
}

/* The child appends forever with fsync=always and reports each seq on the
 * pipe only after append returned. */
static void child_appends(int wfd)
{
    agent_spool_opts_t o;
    agent_spool_t *sp;
    uint8_t buf[512];
    uint64_t epoch, seq;

    agent_spool_opts_default(&o);
    o.segment_bytes = 16384;
    if (agent_spool_open(dir, &o, &sp) < 0)
        _exit(3);
    for (;;) {
        uint64_t msg[2];
        agent_spool_take_id(sp, &epoch, &seq);
        if (agent_spool_append(sp, epoch, seq, buf, payload(seq, buf)) < 0)
            _exit(4);
        msg[0] = epoch;
        msg[1] = seq;
        if (write(wfd, msg, sizeof(msg)) != sizeof(msg))
            _exit(5);
    }
}

static void kill9(void **state)
{
    uint64_t(*reported)[2] = calloc(200000, sizeof(*reported));
    size_t n_reported = 0;
    unsigned seed = (unsigned)time(NULL);

    (void)state;
    print_message("kill9 seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < 8; round++) {
        int fds[2], status;
        pid_t pid;
        uint64_t msg[2];
        agent_spool_t *sp;
        agent_spool_entry_t e;
        uint8_t want[512];
        size_t k = 0;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_appends(fds[1]);
        }
        close(fds[1]);
        /* Once the child is appending (fsync costs ms), kill it at a random moment. */
        assert_int_equal(read(fds[0], msg, sizeof(msg)), sizeof(msg));
        reported[n_reported][0] = msg[0];
        reported[n_reported++][1] = msg[1];
        usleep((useconds_t)(rand() % 150000));
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        while (read(fds[0], msg, sizeof(msg)) == sizeof(msg) && n_reported < 200000) {
            reported[n_reported][0] = msg[0];
            reported[n_reported++][1] = msg[1];
        }
        close(fds[0]);

        /* Every reported record is there, intact and in order; at most one
         * unreported record per round (appended, killed before the report). */
        assert_int_equal(agent_spool_open(dir, NULL, &sp), 0);
        agent_spool_rewind(sp);
        while (agent_spool_peek(sp, &e) == 0) {
            if (k < n_reported && e.epoch == reported[k][0] && e.seq == reported[k][1]) {
                assert_int_equal(e.len, payload(e.seq, want));
                assert_memory_equal(e.data, want, e.len);
                k++;
            }
            agent_spool_next(sp);
        }
        assert_int_equal(k, n_reported);
        agent_spool_free(sp);
    }
    print_message("kill9: %zu records reported and found after 8 kills\n", n_reported);
    assert_true(n_reported > 0);
    free(reported);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec),
        cmocka_unit_test_setup_teardown(append_replay_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(appends_after_catching_up_are_read, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_keeps_unacked, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_and_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(size_and_age_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(kill9, setup, teardown),
    };

    /* Warnings about the damage the tests make go nowhere. */
    kopt_log_setup("test", KOPT_LOG_FORMAT_TEXT, KOPT_LOG_ERROR, 2);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
