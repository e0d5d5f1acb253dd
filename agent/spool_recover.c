/* Opening a spool: the state file (epoch), the ack file, and the recovery of
 * every segment after a crash: intact records kept, a torn tail cut, a segment
 * with corrupt spans rewritten around them, empty ones deleted. Also the small
 * file helpers spool.c shares. */
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kopt/log.h>

uint64_t spool_acked_through(const agent_spool_t *sp, uint64_t epoch)
{
    for (size_t i = 0; i < sp->n_acks; i++)
        if (sp->acks[i].epoch == epoch)
            return sp->acks[i].seq;
    return 0; /* seq 0 is never used: nothing acked */
}

int spool_seg_note(segment_t *seg, uint64_t epoch, uint64_t seq)
{
    seg_epoch_t *eps;

    for (size_t i = 0; i < seg->n_eps; i++) {
        if (seg->eps[i].epoch == epoch) {
            if (seq > seg->eps[i].max_seq)
                seg->eps[i].max_seq = seq;
            return 0;
        }
    }
    eps = realloc(seg->eps, (seg->n_eps + 1) * sizeof(*eps));
    if (!eps)
        return -ENOMEM;
    seg->eps = eps;
    seg->eps[seg->n_eps++] = (seg_epoch_t){epoch, seq};
    return 0;
}

int spool_sync_dir(agent_spool_t *sp)
{
    if (sp->o.fsync == AGENT_SPOOL_FSYNC_NEVER)
        return 0;
    return fsync(sp->dirfd) < 0 ? -errno : 0;
}

int spool_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replaces `name` with `len` bytes: a reader sees the old file or the new one. */
int spool_write_atomic(agent_spool_t *sp, const char *name, const void *buf, size_t len, int sync)
{
    char tmp[64];
    int fd, r;

    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    r = spool_write_all(fd, buf, len);
    if (r == 0 && sync && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(sp->dirfd, tmp, sp->dirfd, name) < 0)
        r = -errno;
    if (r < 0)
        unlinkat(sp->dirfd, tmp, 0);
    else if (sync)
        r = fsync(sp->dirfd) < 0 ? -errno : 0;
    return r;
}

/* Reads a small file whole; -EFBIG when it does not fit in cap. */
static int spool_read_small(agent_spool_t *sp, const char *name, uint8_t *buf, size_t cap,
                            size_t *len)
{
    ssize_t n;
    int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, buf, cap);
    close(fd);
    if (n < 0)
        return -errno;
    if ((size_t)n == cap)
        return -EFBIG;
    *len = (size_t)n;
    return 0;
}

void spool_load_acks(agent_spool_t *sp)
{
    size_t cap = agent_spool_ack_size(AGENT_SPOOL_ACK_MAX) + 1, len = 0;
    uint8_t *buf = malloc(cap);
    int r = buf ? spool_read_small(sp, "ack", buf, cap, &len) : -ENOMEM;

    if (r == 0)
        r = agent_spool_ack_decode(buf, len, sp->acks, AGENT_SPOOL_ACK_MAX, &sp->n_acks);
    if (r < 0 && r != -ENOENT)
        /* Harmless: acked batches are sent again and ingest drops them. */
        kopt_log_warn("spool ack file unreadable, replaying from the oldest record", KOPT_ERR(r));
    if (r < 0)
        sp->n_acks = 0;
    free(buf);
}

/* A new epoch, later than every earlier one even if the clock went back. */
int spool_start_epoch(agent_spool_t *sp)
{
    uint8_t buf[AGENT_SPOOL_STATE_SIZE + 1];
    uint64_t prev = 0;
    size_t len = 0;
    int r = spool_read_small(sp, "state", buf, sizeof(buf), &len);

    if (r == 0)
        r = agent_spool_state_decode(buf, len, &prev);
    if (r < 0 && r != -ENOENT)
        kopt_log_warn("spool state file unreadable, epoch from the clock", KOPT_ERR(r));
    sp->epoch = spool_now_ns(CLOCK_REALTIME);
    if (sp->epoch <= prev)
        sp->epoch = prev + 1;
    sp->next_seq = 1;
    agent_spool_state_encode(sp->epoch, buf);
    /* Always synced: the epoch must never be handed out twice. */
    return spool_write_atomic(sp, "state", buf, AGENT_SPOOL_STATE_SIZE, 1);
}

int spool_push_segment(agent_spool_t *sp, const segment_t *seg)
{
    if (sp->n_segs == sp->cap_segs) {
        size_t cap = sp->cap_segs ? 2 * sp->cap_segs : 16;
        segment_t *s = realloc(sp->segs, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        sp->segs = s;
        sp->cap_segs = cap;
    }
    sp->segs[sp->n_segs++] = *seg;
    sp->st.bytes += seg->size;
    sp->st.records += seg->records;
    sp->st.segments++;
    return 0;
}

/* Maps a segment and scans it with fn. -errno if the file cannot be read. */
int spool_scan_file(agent_spool_t *sp, int fd, agent_spool_record_fn fn, scan_ctx_t *c,
                    agent_spool_scan_t *st)
{
    struct stat s;
    void *map;
    int r;

    if (fstat(fd, &s) < 0)
        return -errno;
    if (s.st_size == 0) {
        memset(st, 0, sizeof(*st));
        return 0;
    }
    map = mmap(NULL, (size_t)s.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return -errno;
    r = agent_spool_segment_scan(map, (size_t)s.st_size, READ_MAX_LEN, fn, c, st);
    munmap(map, (size_t)s.st_size);
    (void)sp;
    return r;
}

static int note_record(void *ud, size_t off, const agent_spool_record_t *r)
{
    scan_ctx_t *c = ud;

    (void)off;
    c->seg->records++;
    c->bytes += r->size;
    return spool_seg_note(c->seg, r->epoch, r->seq);
}

static int copy_record(void *ud, size_t off, const agent_spool_record_t *r)
{
    scan_ctx_t *c = ud;

    (void)off;
    return spool_write_all(c->fd, r->payload - AGENT_SPOOL_RECORD_HEADER, r->size);
}

/* Rewrites a segment with only its intact records (after corruption inside). */
static int rewrite_segment(agent_spool_t *sp, int fd, const char *name)
{
    char tmp[48];
    scan_ctx_t c = {.sp = sp};
    agent_spool_scan_t st;
    int r;

    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    c.fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (c.fd < 0)
        return -errno;
    r = spool_write_all(c.fd, AGENT_SPOOL_SEGMENT_MAGIC, AGENT_SPOOL_SEGMENT_HEADER);
    if (r == 0)
        r = spool_scan_file(sp, fd, copy_record, &c, &st);
    if (r == 0 && fsync(c.fd) < 0)
        r = -errno;
    close(c.fd);
    if (r == 0 && renameat(sp->dirfd, tmp, sp->dirfd, name) < 0)
        r = -errno;
    if (r < 0)
        unlinkat(sp->dirfd, tmp, 0);
    return r < 0 ? r : fsync(sp->dirfd) < 0 ? -errno : 0;
}

/* Recovers one segment: keeps its intact records, cuts a torn tail, rewrites
 * it around corrupt spans, deletes it when nothing is left. */
static int recover_segment(agent_spool_t *sp, uint32_t id)
{
    segment_t seg = {.id = id};
    scan_ctx_t c = {.sp = sp, .seg = &seg};
    agent_spool_scan_t st;
    struct stat s;
    char name[32];
    int fd, r;

    spool_seg_name(id, name, sizeof(name));
    fd = openat(sp->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = fstat(fd, &s) < 0 ? -errno : spool_scan_file(sp, fd, note_record, &c, &st);
    if (r < 0)
        goto out;
    seg.mtime_s = s.st_mtim.tv_sec;
    if (st.bad_bytes + st.tail_bytes > 0 || s.st_size == 0) {
        sp->st.torn++;
        sp->st.torn_bytes += st.bad_bytes + st.tail_bytes;
        kopt_log_warn("spool segment damaged, keeping its intact records", KOPT_STR("file", name),
                      KOPT_UINT("records", seg.records), KOPT_UINT("bad_bytes", st.bad_bytes),
                      KOPT_UINT("torn_tail_bytes", st.tail_bytes));
    }
    if (seg.records == 0) {
        r = unlinkat(sp->dirfd, name, 0) < 0 ? -errno : 0;
        goto out;
    }
    if (st.bad_regions > 0)
        r = rewrite_segment(sp, fd, name);
    else if (st.tail_bytes > 0)
        r = ftruncate(fd, (off_t)st.valid_end) < 0 || fsync(fd) < 0 ? -errno : 0;
    if (r < 0)
        goto out;
    seg.size = AGENT_SPOOL_SEGMENT_HEADER + c.bytes;
    r = spool_push_segment(sp, &seg);
    if (r == 0)
        seg.eps = NULL; /* owned by the list now */
out:
    free(seg.eps);
    close(fd);
    return r;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Lists NNNNNNNN.seg files oldest first; removes leftover temporary files. */
static int list_segments(agent_spool_t *sp, uint32_t **ids, size_t *n)
{
    size_t cap = 0;
    struct dirent *e;
    DIR *d;
    int fd = dup(sp->dirfd), r = 0;

    *ids = NULL;
    *n = 0;
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char *end;
        unsigned long id;

        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            unlinkat(sp->dirfd, e->d_name, 0);
            continue;
        }
        if (len != 12 || strcmp(e->d_name + 8, ".seg") != 0 || e->d_name[0] == '-')
            continue;
        id = strtoul(e->d_name, &end, 10);
        if (end != e->d_name + 8 || id == 0 || id > UINT32_MAX - 1)
            continue;
        if (*n == cap) {
            uint32_t *p = realloc(*ids, (cap ? 2 * cap : 16) * sizeof(*p));
            if (!p) {
                r = -ENOMEM;
                break;
            }
            *ids = p;
            cap = cap ? 2 * cap : 16;
        }
        (*ids)[(*n)++] = (uint32_t)id;
    }
    closedir(d);
    if (*n > 1)
        qsort(*ids, *n, sizeof(**ids), cmp_u32);
    return r;
}

int spool_recover(agent_spool_t *sp)
{
    uint32_t *ids;
    size_t n;
    int r = list_segments(sp, &ids, &n);

    for (size_t i = 0; r == 0 && i < n; i++) {
        r = recover_segment(sp, ids[i]);
        if (r < 0) {
            char name[32];
            spool_seg_name(ids[i], name, sizeof(name));
            kopt_log_error("spool cannot recover segment", KOPT_STR("file", name), KOPT_ERR(r));
        }
    }
    sp->next_id = n > 0 ? ids[n - 1] + 1 : 1;
    free(ids);
    return r;
}
