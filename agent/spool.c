/* The agent's disk spool: segment files of checksummed records, an ack file
 * and a state file in one directory. The byte formats live in spool_format.c;
 * this file does the I/O, the crash recovery, the bounds and the replay cursor.
 * Errors are negative errno; every function cleans up on one exit path. */
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <kopt/log.h>

void agent_spool_opts_default(agent_spool_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->max_bytes = 256ULL << 20;
    o->segment_bytes = 4ULL << 20;
    o->max_record_bytes = 16u << 20;
    o->fsync = AGENT_SPOOL_FSYNC_ALWAYS;
    o->fsync_interval_ms = 1000;
}

static int seg_all_acked(const agent_spool_t *sp, const segment_t *seg)
{
    for (size_t i = 0; i < seg->n_eps; i++)
        if (spool_acked_through(sp, seg->eps[i].epoch) < seg->eps[i].max_seq)
            return 0;
    return 1;
}

static int seg_is_present(const agent_spool_t *sp, uint64_t epoch)
{
    for (size_t i = 0; i < sp->n_segs; i++)
        for (size_t j = 0; j < sp->segs[i].n_eps; j++)
            if (sp->segs[i].eps[j].epoch == epoch)
                return 1;
    return 0;
}

/* Saves the acks of epochs that still have records; the others are moot. */
static int save_acks(agent_spool_t *sp)
{
    size_t n = 0, size;
    uint8_t *buf;
    int r;

    for (size_t i = 0; i < sp->n_acks; i++)
        if (seg_is_present(sp, sp->acks[i].epoch))
            sp->acks[n++] = sp->acks[i];
    sp->n_acks = n;
    size = agent_spool_ack_size(n);
    buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    agent_spool_ack_encode(sp->acks, n, buf);
    r = spool_write_atomic(sp, "ack", buf, size, sp->o.fsync != AGENT_SPOOL_FSYNC_NEVER);
    free(buf);
    return r;
}

static int sync_active(agent_spool_t *sp)
{
    if (sp->wfd < 0 || !sp->dirty || sp->o.fsync == AGENT_SPOOL_FSYNC_NEVER)
        return 0;
    if (fdatasync(sp->wfd) < 0)
        return -errno;
    sp->dirty = 0;
    sp->last_sync_ns = spool_now_ns(CLOCK_MONOTONIC);
    return 0;
}

static void close_active(agent_spool_t *sp)
{
    if (sp->wfd < 0)
        return;
    sync_active(sp);
    close(sp->wfd);
    sp->wfd = -1;
}

/* Removes segment idx from disk and from the list. */
static void remove_segment(agent_spool_t *sp, size_t idx)
{
    segment_t *seg = &sp->segs[idx];
    char name[32];

    if (idx == sp->n_segs - 1 && sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
        sp->dirty = 0;
    }
    if (sp->rfd >= 0 && sp->rfd_id == seg->id) {
        close(sp->rfd);
        sp->rfd = -1;
    }
    spool_seg_name(seg->id, name, sizeof(name));
    if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT)
        kopt_log_warn("spool cannot delete segment", KOPT_STR("file", name), KOPT_ERR(-errno));
    sp->st.bytes -= seg->size;
    sp->st.records -= seg->records;
    sp->st.segments--;
    free(seg->eps);
    memmove(seg, seg + 1, (sp->n_segs - idx - 1) * sizeof(*seg));
    sp->n_segs--;
    spool_sync_dir(sp);
}

static int count_unacked(void *ud, size_t off, const agent_spool_record_t *r)
{
    scan_ctx_t *c = ud;

    (void)off;
    if (spool_acked_through(c->sp, r->epoch) < r->seq)
        c->count++;
    return 0;
}

/* Drops the oldest segment for a bound, counting the unacked records it held. */
static void drop_oldest(agent_spool_t *sp, const char *why)
{
    scan_ctx_t c = {.sp = sp};
    agent_spool_scan_t st;
    char name[32];
    int fd;

    spool_seg_name(sp->segs[0].id, name, sizeof(name));
    fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || spool_scan_file(sp, fd, count_unacked, &c, &st) < 0)
        c.count = sp->segs[0].records; /* unknown: count them all */
    if (fd >= 0)
        close(fd);
    if (c.count > 0)
        kopt_log_warn("spool full, dropping oldest segment", KOPT_STR("reason", why),
                      KOPT_STR("file", name), KOPT_UINT("unacked_records", c.count));
    sp->st.dropped_records += c.count;
    sp->st.dropped_segments++;
    remove_segment(sp, 0);
}

/* Deletes every segment whose records are all acked. */
static void delete_acked(agent_spool_t *sp)
{
    for (size_t i = 0; i < sp->n_segs;) {
        if (sp->segs[i].records > 0 && seg_all_acked(sp, &sp->segs[i])) {
            remove_segment(sp, i);
            sp->st.acked_segments++;
        } else {
            i++;
        }
    }
}

static void enforce_age(agent_spool_t *sp, int64_t now_s)
{
    if (sp->o.max_age_s == 0)
        return;
    while (sp->n_segs > 0 && now_s - sp->segs[0].mtime_s > (int64_t)sp->o.max_age_s)
        drop_oldest(sp, "age");
}

static int check_opts(agent_spool_opts_t *o)
{
    agent_spool_opts_t d;

    agent_spool_opts_default(&d);
    if (!o->max_bytes)
        o->max_bytes = d.max_bytes;
    if (!o->segment_bytes)
        o->segment_bytes = d.segment_bytes;
    if (!o->max_record_bytes)
        o->max_record_bytes = d.max_record_bytes;
    if (!o->fsync_interval_ms)
        o->fsync_interval_ms = d.fsync_interval_ms;
    if (o->fsync > AGENT_SPOOL_FSYNC_NEVER || o->max_record_bytes > READ_MAX_LEN ||
        o->max_bytes < 2 * AGENT_SPOOL_SEGMENT_HEADER)
        return -EINVAL;
    return 0;
}

int agent_spool_open(const char *dir, const agent_spool_opts_t *opts, agent_spool_t **out)
{
    agent_spool_t *sp;
    int r;

    *out = NULL;
    sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    sp->dirfd = sp->lockfd = sp->wfd = sp->rfd = -1;
    if (opts)
        sp->o = *opts;
    r = check_opts(&sp->o);
    if (r < 0)
        goto fail;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        goto fail;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        r = -errno;
        goto fail;
    }
    sp->lockfd = openat(sp->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0 || flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto fail;
    }
    r = spool_start_epoch(sp);
    if (r == 0) {
        spool_load_acks(sp);
        r = spool_recover(sp);
    }
    if (r < 0)
        goto fail;
    delete_acked(sp);
    enforce_age(sp, (int64_t)(spool_now_ns(CLOCK_REALTIME) / 1000000000ULL));
    while (sp->st.bytes > sp->o.max_bytes)
        drop_oldest(sp, "size");
    sp->last_sync_ns = spool_now_ns(CLOCK_MONOTONIC);
    agent_spool_rewind(sp);
    *out = sp;
    return 0;
fail:
    agent_spool_free(sp);
    return r;
}

void agent_spool_free(agent_spool_t *sp)
{
    if (!sp)
        return;
    close_active(sp);
    if (sp->rfd >= 0)
        close(sp->rfd);
    for (size_t i = 0; i < sp->n_segs; i++)
        free(sp->segs[i].eps);
    free(sp->segs);
    free(sp->buf);
    if (sp->lockfd >= 0)
        close(sp->lockfd);
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    free(sp);
}

void agent_spool_take_id(agent_spool_t *sp, uint64_t *epoch, uint64_t *seq)
{
    *epoch = sp->epoch;
    *seq = sp->next_seq++;
}

static int open_segment(agent_spool_t *sp)
{
    segment_t seg = {.id = sp->next_id, .size = AGENT_SPOOL_SEGMENT_HEADER};
    char name[32];
    int fd, r;

    spool_seg_name(seg.id, name, sizeof(name));
    fd = openat(sp->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    r = spool_write_all(fd, AGENT_SPOOL_SEGMENT_MAGIC, AGENT_SPOOL_SEGMENT_HEADER);
    if (r == 0 && sp->o.fsync != AGENT_SPOOL_FSYNC_NEVER && fdatasync(fd) < 0)
        r = -errno;
    if (r == 0)
        r = spool_sync_dir(sp);
    seg.mtime_s = (int64_t)(spool_now_ns(CLOCK_REALTIME) / 1000000000ULL);
    if (r == 0)
        r = spool_push_segment(sp, &seg);
    if (r < 0) {
        close(fd);
        unlinkat(sp->dirfd, name, 0);
        return r;
    }
    sp->next_id++;
    sp->wfd = fd;
    return 0;
}

/* Writes header and payload with one writev; on failure cuts the file back. */
static int write_record(agent_spool_t *sp, segment_t *seg, const uint8_t *hdr, const void *data,
                        size_t len)
{
    struct iovec iov[2] = {{(void *)hdr, AGENT_SPOOL_RECORD_HEADER}, {(void *)data, len}};
    size_t total = AGENT_SPOOL_RECORD_HEADER + len, done = 0;

    while (done < total) {
        ssize_t n = writev(sp->wfd, iov, 2);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int r = n < 0 ? -errno : -EIO;
            if (ftruncate(sp->wfd, (off_t)seg->size) < 0)
                close_active(sp); /* the next append starts a new segment */
            return r;
        }
        done += (size_t)n;
        for (int i = 0; i < 2 && n > 0; i++) {
            size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= (ssize_t)k;
        }
    }
    return 0;
}

int agent_spool_append(agent_spool_t *sp, uint64_t epoch, uint64_t seq, const void *data,
                       size_t len)
{
    uint8_t hdr[AGENT_SPOOL_RECORD_HEADER];
    uint64_t rec = AGENT_SPOOL_RECORD_HEADER + (uint64_t)len, now;
    segment_t *seg;
    int r;

    if (seq == 0)
        return -EINVAL;
    if (len > sp->o.max_record_bytes || rec + AGENT_SPOOL_SEGMENT_HEADER > sp->o.max_bytes)
        return -EFBIG;
    if (sp->wfd >= 0) {
        seg = &sp->segs[sp->n_segs - 1];
        if (seg->records > 0 && seg->size + rec > sp->o.segment_bytes)
            close_active(sp);
    }
    while (sp->n_segs > 0 &&
           sp->st.bytes + rec + (sp->wfd < 0 ? AGENT_SPOOL_SEGMENT_HEADER : 0) > sp->o.max_bytes)
        drop_oldest(sp, "size");
    if (sp->wfd < 0) {
        r = open_segment(sp);
        if (r < 0)
            return r;
    }
    seg = &sp->segs[sp->n_segs - 1];
    r = spool_seg_note(seg, epoch, seq);
    if (r < 0)
        return r;
    agent_spool_record_header(hdr, epoch, seq, data, (uint32_t)len);
    r = write_record(sp, seg, hdr, data, len);
    if (r < 0)
        return r;
    seg->size += rec;
    seg->records++;
    seg->mtime_s = (int64_t)(spool_now_ns(CLOCK_REALTIME) / 1000000000ULL);
    sp->st.bytes += rec;
    sp->st.records++;
    sp->st.appended++;
    sp->dirty = 1;
    if (sp->o.fsync == AGENT_SPOOL_FSYNC_ALWAYS)
        return sync_active(sp);
    now = spool_now_ns(CLOCK_MONOTONIC);
    if (sp->o.fsync == AGENT_SPOOL_FSYNC_INTERVAL &&
        now - sp->last_sync_ns >= (uint64_t)sp->o.fsync_interval_ms * 1000000ULL)
        return sync_active(sp);
    return 0;
}

static int ensure_buf(agent_spool_t *sp, size_t len)
{
    uint8_t *b;

    if (len <= sp->buf_cap)
        return 0;
    b = realloc(sp->buf, len);
    if (!b)
        return -ENOMEM;
    sp->buf = b;
    sp->buf_cap = len;
    return 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EBADMSG; /* shorter than we wrote: damaged underneath us */
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Reads the record at the cursor. -EBADMSG when the bytes are not intact. */
static int read_at_cursor(agent_spool_t *sp, const segment_t *seg, agent_spool_record_t *rec)
{
    uint64_t left = seg->size - sp->cur_off;
    uint32_t len;
    char name[32];
    int r;

    if (sp->rfd < 0 || sp->rfd_id != seg->id) {
        if (sp->rfd >= 0)
            close(sp->rfd);
        spool_seg_name(seg->id, name, sizeof(name));
        sp->rfd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (sp->rfd < 0)
            return -errno;
        sp->rfd_id = seg->id;
    }
    if (left < AGENT_SPOOL_RECORD_HEADER)
        return -EBADMSG;
    r = ensure_buf(sp, AGENT_SPOOL_RECORD_HEADER);
    if (r == 0)
        r = pread_all(sp->rfd, sp->buf, AGENT_SPOOL_RECORD_HEADER, sp->cur_off);
    if (r < 0)
        return r;
    len = (uint32_t)sp->buf[4] | (uint32_t)sp->buf[5] << 8 | (uint32_t)sp->buf[6] << 16 |
          (uint32_t)sp->buf[7] << 24;
    if (len > READ_MAX_LEN || AGENT_SPOOL_RECORD_HEADER + (uint64_t)len > left)
        return -EBADMSG;
    r = ensure_buf(sp, AGENT_SPOOL_RECORD_HEADER + (size_t)len);
    if (r == 0)
        r = pread_all(sp->rfd, sp->buf, AGENT_SPOOL_RECORD_HEADER + (size_t)len, sp->cur_off);
    if (r == 0)
        r = agent_spool_record_decode(sp->buf, AGENT_SPOOL_RECORD_HEADER + (size_t)len,
                                      READ_MAX_LEN, rec);
    return r == -EAGAIN ? -EBADMSG : r;
}

int agent_spool_peek(agent_spool_t *sp, agent_spool_entry_t *out)
{
    agent_spool_record_t rec;
    segment_t *seg;
    size_t i;
    int r;

    sp->peeked = 0;
    for (;;) {
        for (i = 0; i < sp->n_segs && sp->segs[i].id < sp->cur_id; i++)
            ;
        if (i == sp->n_segs)
            return -ENOENT;
        seg = &sp->segs[i];
        if (seg->id != sp->cur_id) {
            sp->cur_id = seg->id;
            sp->cur_off = AGENT_SPOOL_SEGMENT_HEADER;
        }
        if (sp->cur_off >= seg->size) {
            /* At the end of the newest segment: stay, appends land here. */
            if (i + 1 == sp->n_segs)
                return -ENOENT;
            sp->cur_id = seg->id + 1;
            sp->cur_off = AGENT_SPOOL_SEGMENT_HEADER;
            continue;
        }
        r = read_at_cursor(sp, seg, &rec);
        if (r == -EBADMSG) {
            /* Damaged since we opened it: skip the rest of this segment. */
            kopt_log_warn("spool record damaged, skipping the rest of its segment",
                          KOPT_UINT("segment", seg->id), KOPT_UINT("offset", sp->cur_off));
            sp->st.torn++;
            sp->st.torn_bytes += seg->size - sp->cur_off;
            sp->cur_id = seg->id + 1;
            sp->cur_off = AGENT_SPOOL_SEGMENT_HEADER;
            continue;
        }
        if (r < 0)
            return r;
        if (spool_acked_through(sp, rec.epoch) >= rec.seq) {
            sp->cur_off += rec.size;
            continue;
        }
        out->epoch = rec.epoch;
        out->seq = rec.seq;
        out->data = rec.payload;
        out->len = rec.len;
        sp->peeked = rec.size;
        return 0;
    }
}

void agent_spool_next(agent_spool_t *sp)
{
    sp->cur_off += sp->peeked;
    sp->peeked = 0;
}

void agent_spool_rewind(agent_spool_t *sp)
{
    sp->cur_id = 0;
    sp->cur_off = AGENT_SPOOL_SEGMENT_HEADER;
    sp->peeked = 0;
}

int agent_spool_ack(agent_spool_t *sp, uint64_t epoch, uint64_t seq)
{
    size_t i;

    if (seq == 0 || spool_acked_through(sp, epoch) >= seq)
        return 0;
    for (i = 0; i < sp->n_acks && sp->acks[i].epoch != epoch; i++)
        ;
    if (i == sp->n_acks && !seg_is_present(sp, epoch))
        return 0; /* nothing of that epoch is stored: nothing to do */
    if (i == sp->n_acks && sp->n_acks == AGENT_SPOOL_ACK_MAX) {
        save_acks(sp); /* prunes epochs without records */
        if (sp->n_acks == AGENT_SPOOL_ACK_MAX)
            return -ENOSPC;
    }
    if (i == sp->n_acks)
        sp->acks[sp->n_acks++].epoch = epoch;
    sp->acks[i].seq = seq;
    delete_acked(sp);
    return save_acks(sp);
}

int agent_spool_maintain(agent_spool_t *sp, int64_t now_s)
{
    uint64_t now = spool_now_ns(CLOCK_MONOTONIC);
    int r = 0;

    if (sp->o.fsync == AGENT_SPOOL_FSYNC_INTERVAL &&
        now - sp->last_sync_ns >= (uint64_t)sp->o.fsync_interval_ms * 1000000ULL)
        r = sync_active(sp);
    enforce_age(sp, now_s);
    return r;
}

void agent_spool_stats(const agent_spool_t *sp, agent_spool_stats_t *out)
{
    *out = sp->st;
}
