/* The simulated agents: one channel (its own TCP+TLS connection) and one
 * kopt.v1.Ingest/Push stream each, driven from one or two completion-queue
 * threads of ours. Each agent keeps at most --window batches unacked, with
 * one SEND_MESSAGE in flight (gRPC's rule), and times every batch from the
 * send to the cumulative PushAck that covers it. An agent's state is touched
 * only by its CQ thread; the main thread sets the phase and reads counters.
 *
 * As kopt-agent does (agent/transport.c): with several --target addresses
 * an agent starts at the one its node name hashes to (FNV-1a) and moves to
 * the next on a new channel when a stream ends without progress; a new
 * stream keeps the epoch and re-sends what was not acked, so ingest's
 * Nats-Msg-Id (agent/epoch/seq) lets JetStream drop what got through. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "kopt/v1/ingest.pb-c.h"
#include "loadgen.h"

#define PUSH_METHOD "/kopt.v1.Ingest/Push"
#define RESTART_NS 200000000ull /* wait before reconnecting a failed stream */
#define DRAIN_LIMIT_S 30        /* after the run, for outstanding acks (an election) */
#define RATE_TICK_US 500        /* pacing granularity in rate mode */
#define BEHIND_NS 10000000ull   /* a send this late counts as behind schedule */

enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_ABORT };
enum { OP_SEND, OP_RECV, OP_STATUS };

typedef struct agent agent_t;
typedef struct worker worker_t;

typedef struct {
    int kind;
    agent_t *a;
} op_tag_t;

struct agent {
    worker_t *w;
    const lg_node_t *node;
    int index, target;
    grpc_channel *ch;
    grpc_call *call; /* NULL between streams */
    int pending;     /* batches started on the call and not completed */
    int meta_sent, sending, close_sent, status_done, finished;
    uint64_t epoch, next_seq, acked, acked_at_start;
    uint64_t high_seq; /* highest seq sent: after the run, owed until acked */
    uint64_t *sent_ns; /* send time by seq & mask */
    uint64_t mask;
    uint64_t period_ns, next_due_ns, restart_at_ns;
    uint64_t n_windows;   /* its node's windows a batch */
    uint64_t batch_bytes; /* average, with the suffix */
    grpc_byte_buffer *out, *in;
    grpc_metadata_array meta_in, trailers;
    grpc_status_code status;
    grpc_slice details;
    grpc_slice body[LG_VARIANTS];
    op_tag_t t_send, t_recv, t_status;
};

struct worker {
    pthread_t thread;
    const lg_opts_t *o;
    _Atomic int *phase;
    grpc_completion_queue *cq;
    grpc_channel_credentials *creds;
    agent_t **agents;
    int n_agents, n_finished, seen_phase;
    uint64_t epoch_base;
    /* Written by this thread only; read by the main thread for progress. */
    _Atomic uint64_t batches, windows, bytes, acks, sent;
    _Atomic uint64_t all_windows, all_batches; /* whatever the phase */
    uint64_t statuses[LG_STATUS_CODES], rejections[LG_REJECT_REASONS];
    uint64_t reconnects, unacked_at_end, behind, failovers, max_seq;
    lg_hist_t hist;
};

static void noop_free(void *p)
{
    (void)p;
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int phase_of(worker_t *w)
{
    return atomic_load_explicit(w->phase, memory_order_acquire);
}

static void start(agent_t *a, grpc_op *ops, size_t n, op_tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(a->call, ops, n, tag, NULL);

    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "kopt-loadgen: agent %d: grpc_call_start_batch: error %d\n", a->index, e);
        return;
    }
    a->pending++;
}

/* A channel of its own to the agent's current target. */
static void open_channel(agent_t *a, const lg_opts_t *o)
{
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                    .value.integer = 1}; /* a connection per agent, as in real life */
    grpc_channel_args args = {1, &arg};

    assert(a->target >= 0 && a->target < o->n_targets); /* parse() gives one at least */
    a->ch = grpc_channel_create(o->targets[a->target], a->w->creds, &args);
}

/* FNV-1a, as agent_transport_home() hashes the agent id. */
static int home_target(const char *id, int n)
{
    uint64_t h = 14695981039346656037ull;

    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (int)(h % (uint64_t)n);
}

static void start_call(agent_t *a)
{
    grpc_op ops[2];

    a->call = grpc_channel_create_call(a->ch, NULL, GRPC_PROPAGATE_DEFAULTS, a->w->cq,
                                       grpc_slice_from_static_string(PUSH_METHOD), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    /* Distinct per agent, so Nats-Msg-Ids never collide; the base is the
     * start time in ns, so later runs do not collide either. A new stream
     * goes on from the last ack: the unacked batches go again. */
    a->epoch = a->w->epoch_base + (uint64_t)a->index;
    a->next_seq = a->acked + 1;
    a->acked_at_start = a->acked;
    a->meta_sent = a->sending = a->close_sent = a->status_done = 0;
    /* next_due_ns is not reset: after a reconnect the agent catches up
     * on the batches it owes, as an agent's spool does. */
    a->restart_at_ns = 0;
    grpc_metadata_array_init(&a->meta_in);
    grpc_metadata_array_init(&a->trailers);
    a->details = grpc_empty_slice();
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &a->trailers;
    ops[0].data.recv_status_on_client.status = &a->status;
    ops[0].data.recv_status_on_client.status_details = &a->details;
    start(a, ops, 1, &a->t_status);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &a->meta_in;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &a->in;
    start(a, ops, 2, &a->t_recv);
}

static uint64_t unacked(const agent_t *a)
{
    return a->next_seq - 1 - a->acked;
}

static void send_close(agent_t *a)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!a->meta_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    a->meta_sent = a->sending = a->close_sent = 1;
    start(a, ops, n, &a->t_send);
}

static void send_batch(agent_t *a, uint64_t now)
{
    const lg_opts_t *o = a->w->o;
    uint8_t suffix[LG_SUFFIX_MAX];
    struct timespec rt;
    grpc_slice sl[2];
    grpc_op ops[2];
    size_t n = 0, len;
    int v = (int)(a->next_seq % LG_VARIANTS);
    int more;

    clock_gettime(CLOCK_REALTIME, &rt);
    len = lg_batch_suffix(suffix, a->epoch, a->next_seq, rt.tv_sec, (int32_t)rt.tv_nsec);
    sl[0] = a->body[v]; /* the byte buffer takes its own ref: no copy */
    if (o->minute0) {
        uint8_t *buf = NULL;
        size_t blen = 0;

        if (lg_node_minute((lg_node_t *)a->node, o->minute0 - (int64_t)(a->next_seq - 1) * 60, &buf,
                           &blen) < 0) {
            fprintf(stderr, "kopt-loadgen: out of memory packing a batch\n");
            return;
        }
        sl[0] = grpc_slice_new(buf, blen, free);
    }
    sl[1] = grpc_slice_from_copied_buffer((const char *)suffix, len);
    a->out = grpc_raw_byte_buffer_create(sl, 2);
    grpc_slice_unref(sl[1]);
    if (o->minute0)
        grpc_slice_unref(sl[0]);
    if (o->rate > 0 && a->next_seq > a->high_seq) { /* a re-send is not on the schedule */
        if (now > a->next_due_ns + BEHIND_NS)
            a->w->behind++;
        a->next_due_ns += a->period_ns;
    }
    /* Buffer this write only when another follows at once, so the last
     * batch of a window is never held back waiting for a flush. */
    more = unacked(a) + 1 < (uint64_t)o->window && (o->rate <= 0 || a->next_due_ns <= now);
    memset(ops, 0, sizeof(ops));
    if (!a->meta_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].flags = o->buffer_hint && more ? GRPC_WRITE_BUFFER_HINT : 0;
    ops[n++].data.send_message.send_message = a->out;
    a->sent_ns[a->next_seq & a->mask] = now;
    if (a->next_seq > a->w->max_seq)
        a->w->max_seq = a->next_seq;
    if (a->next_seq > a->high_seq)
        a->high_seq = a->next_seq;
    a->next_seq++;
    a->meta_sent = a->sending = 1;
    add(&a->w->sent, 1);
    start(a, ops, n, &a->t_send);
}

/* Sends what the window and the schedule allow, or closes after the run. */
static void pump(agent_t *a, uint64_t now)
{
    const lg_opts_t *o = a->w->o;

    if (!a->call || a->sending || a->close_sent || a->status_done)
        return;
    if (phase_of(a->w) >= PHASE_DRAIN) {
        /* A stream begun after the run re-sends what an ended one left. */
        if (a->next_seq <= a->high_seq && unacked(a) < (uint64_t)o->window)
            send_batch(a, now);
        else if (a->acked >= a->high_seq)
            send_close(a);
        return;
    }
    if (unacked(a) >= (uint64_t)o->window ||
        (o->rate > 0 && a->next_seq > a->high_seq && now < a->next_due_ns))
        return;
    send_batch(a, now);
}

static int rejected(const Kopt__V1__PushAck *ack, uint64_t epoch, uint64_t seq)
{
    for (size_t i = 0; i < ack->n_rejections; i++)
        if (ack->rejections[i]->epoch == epoch && ack->rejections[i]->seq == seq)
            return 1;
    return 0;
}

/* Counts the batches an ack newly covers; rejected ones are settled but
 * not stored, so they count as rejections, not throughput. */
static void apply_ack(agent_t *a, const uint8_t *data, size_t len, uint64_t now)
{
    worker_t *w = a->w;
    Kopt__V1__PushAck *ack = kopt__v1__push_ack__unpack(NULL, len, data);
    int measuring = phase_of(w) == PHASE_MEASURE;
    uint64_t through, n = 0;

    if (!ack)
        return;
    for (size_t i = 0; i < ack->n_rejections; i++) {
        unsigned r = (unsigned)ack->rejections[i]->reason;
        w->rejections[r < LG_REJECT_REASONS ? r : 0]++;
    }
    through = ack->acked_through_seq;
    if (ack->epoch == a->epoch && through > a->acked && through < a->next_seq) {
        uint64_t stored = 0;

        for (uint64_t s = a->acked + 1; s <= through; s++)
            stored += !(ack->n_rejections && rejected(ack, a->epoch, s));
        add(&w->all_batches, stored);
        add(&w->all_windows, stored * a->node->n_windows);
        if (measuring) {
            for (uint64_t s = a->acked + 1; s <= through; s++) {
                if (ack->n_rejections && rejected(ack, a->epoch, s))
                    continue;
                lg_hist_add(&w->hist, now - a->sent_ns[s & a->mask]);
                n++;
            }
            add(&w->batches, n);
            add(&w->windows, n * a->node->n_windows);
            add(&w->bytes, n * a->batch_bytes);
            add(&w->acks, 1);
        }
        a->acked = through;
    }
    kopt__v1__push_ack__free_unpacked(ack, NULL);
}

/* The call is over once its status arrived and no batch is outstanding. */
static void maybe_finish(agent_t *a, uint64_t now)
{
    worker_t *w = a->w;

    if (!a->status_done || a->pending > 0)
        return;
    grpc_call_unref(a->call);
    a->call = NULL;
    grpc_metadata_array_destroy(&a->meta_in);
    grpc_metadata_array_destroy(&a->trailers);
    grpc_slice_unref(a->details);
    if (phase_of(w) < PHASE_DRAIN || (phase_of(w) == PHASE_DRAIN && a->acked < a->high_seq)) {
        a->restart_at_ns = now + RESTART_NS;
        w->reconnects++;
        if (a->status != GRPC_STATUS_OK && a->acked == a->acked_at_start && w->o->n_targets > 1) {
            grpc_channel_destroy(a->ch);
            a->target = (a->target + 1) % w->o->n_targets;
            open_channel(a, w->o);
            w->failovers++;
        }
    } else {
        w->unacked_at_end += a->high_seq - a->acked;
        a->finished = 1;
        w->n_finished++;
    }
}

static void on_status(agent_t *a)
{
    worker_t *w = a->w;
    int code = a->status;

    a->status_done = 1;
    w->statuses[code >= 0 && code < LG_STATUS_CODES ? code : 2]++;
    if (code != GRPC_STATUS_OK &&
        w->statuses[code >= 0 && code < LG_STATUS_CODES ? code : 2] <= 3) {
        char *d = grpc_slice_to_c_string(a->details);
        fprintf(stderr, "kopt-loadgen: agent %d: stream ended with status %d: %s\n", a->index, code,
                d);
        gpr_free(d);
    }
}

static void on_recv(agent_t *a, int ok, uint64_t now)
{
    grpc_byte_buffer_reader rd;
    grpc_op op;

    if (ok && a->in) {
        if (grpc_byte_buffer_reader_init(&rd, a->in)) {
            grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
            apply_ack(a, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), now);
            grpc_slice_unref(s);
            grpc_byte_buffer_reader_destroy(&rd);
        }
        grpc_byte_buffer_destroy(a->in);
        a->in = NULL;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &a->in;
        start(a, &op, 1, &a->t_recv);
    }
    pump(a, now);
}

static void on_event(op_tag_t *t, int ok)
{
    agent_t *a = t->a;
    uint64_t now = lg_now_ns();

    a->pending--;
    switch (t->kind) {
    case OP_SEND:
        a->sending = 0;
        if (a->out) {
            grpc_byte_buffer_destroy(a->out);
            a->out = NULL;
        }
        if (ok)
            pump(a, now);
        break;
    case OP_RECV:
        on_recv(a, ok, now);
        break;
    case OP_STATUS:
        on_status(a);
        break;
    }
    maybe_finish(a, now);
}

/* Runs on phase changes and ticks: (re)starts streams, paces, closes. */
static void visit(worker_t *w, int phase, uint64_t now)
{
    for (int i = 0; i < w->n_agents; i++) {
        agent_t *a = w->agents[i];

        if (a->finished)
            continue;
        if (!a->call) {
            if (phase == PHASE_ABORT || (phase == PHASE_DRAIN && a->acked >= a->high_seq)) {
                w->unacked_at_end += a->high_seq - a->acked;
                a->finished = 1;
                w->n_finished++;
            } else if (now >= a->restart_at_ns) {
                start_call(a);
            }
            continue;
        }
        if (phase == PHASE_ABORT && !a->status_done)
            grpc_call_cancel(a->call, NULL);
        pump(a, now);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uint64_t tick_ns = (w->o->rate > 0 ? RATE_TICK_US : 20000) * 1000ull;
    uint64_t next_tick = 0;

    while (w->n_finished < w->n_agents) {
        uint64_t now = lg_now_ns();
        int phase = phase_of(w);
        grpc_event ev;

        if (phase != w->seen_phase || now >= next_tick) {
            w->seen_phase = phase;
            visit(w, phase, now);
            next_tick = now + tick_ns;
            continue;
        }
        ev = grpc_completion_queue_next(
            w->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_nanos((int64_t)(next_tick - now), GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            on_event(ev.tag, ev.success);
    }
    return NULL;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0'; /* gRPC wants NUL-terminated PEM */
    else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static grpc_channel_credentials *credentials(const lg_opts_t *o)
{
    char *ca = slurp(o->ca), *cert = slurp(o->cert), *key = slurp(o->key);
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_channel_credentials *creds = NULL;

    if (!ca || !cert || !key)
        fprintf(stderr, "kopt-loadgen: cannot read %s, %s or %s\n", o->ca, o->cert, o->key);
    else
        creds = grpc_ssl_credentials_create(ca, &pair, NULL, NULL);
    free(ca);
    free(cert);
    free(key);
    return creds;
}

static double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sum(worker_t *ws, int n, uint64_t *windows, uint64_t *batches)
{
    *windows = *batches = 0;
    for (int i = 0; i < n; i++) {
        *windows += get(&ws[i].windows);
        *batches += get(&ws[i].batches);
    }
}

/* Windows the agents had made by `now`: with --rate, every batch whose
 * time has come, sent or not (an agent whose ingest is gone owes them);
 * else the batches sent. */
static uint64_t due_windows(const lg_opts_t *o, const agent_t *agents, worker_t *ws, int nw,
                            uint64_t t_start, uint64_t now)
{
    uint64_t due = 0;

    if (o->agents <= 0)
        return 0;
    if (o->rate <= 0) {
        for (int i = 0; i < nw; i++)
            due += get(&ws[i].sent);
        return due * agents[0].n_windows; /* rough: only without --rate */
    }
    for (int i = 0; i < o->agents; i++)
        if (agents[i].period_ns > 0) /* set for every agent when --rate is */
            due += ((now - t_start) / agents[i].period_ns + 1) * agents[i].n_windows;
    return due;
}

/* One "unix_time acked_windows due_windows" line for scripts/bench-cluster. */
static void write_progress(FILE *f, worker_t *ws, int n, uint64_t due)
{
    struct timespec rt;
    uint64_t total = 0;

    if (!f)
        return;
    for (int i = 0; i < n; i++)
        total += get(&ws[i].all_windows);
    clock_gettime(CLOCK_REALTIME, &rt);
    fprintf(f, "%lld.%03ld %llu %llu\n", (long long)rt.tv_sec, rt.tv_nsec / 1000000,
            (unsigned long long)total, (unsigned long long)due);
    fflush(f);
}

static void sample(pid_t pid, lg_proc_sample_t *s)
{
    if (pid > 0)
        lg_proc_sample(pid, s);
}

/* The main thread's part: phases by the clock, progress, /proc samples. */
static void drive(const lg_opts_t *o, _Atomic int *phase, worker_t *ws, int nw,
                  const agent_t *agents, uint64_t t_start, lg_ingest_result_t *res, lg_tick_fn tick,
                  void *data)
{
    uint64_t t0 = lg_now_ns(), t_measure = 0, t_stop = 0, now, w, b;
    double cpu0 = 0;
    lg_proc_sample_t s;
    FILE *prog = o->progress ? fopen(o->progress, "a") : NULL;

    if (o->progress && !prog)
        fprintf(stderr, "kopt-loadgen: cannot open %s; no progress lines\n", o->progress);
    for (;;) {
        usleep(100000);
        now = lg_now_ns();
        if (prog)
            write_progress(prog, ws, nw, due_windows(o, agents, ws, nw, t_start, now));
        if (!t_measure && now >= t0 + (uint64_t)(o->warmup * 1e9)) {
            t_measure = now;
            sample(o->ingest_pid, &res->ingest_start);
            sample(o->nats_pid, &res->nats_start);
            cpu0 = cpu_self();
            atomic_store_explicit(phase, PHASE_MEASURE, memory_order_release);
        }
        if (t_measure && now >= t_measure + (uint64_t)(o->duration * 1e9))
            break;
        if (o->ingest_pid > 0 && lg_proc_sample(o->ingest_pid, &s) == 0 &&
            s.rss_kb > res->ingest_rss_max_kb)
            res->ingest_rss_max_kb = s.rss_kb;
        if (tick && t_measure &&
            (now - t_measure) / 1000000000ull != (now - 100000000ull - t_measure) / 1000000000ull) {
            sum(ws, nw, &w, &b);
            tick(data, (double)(now - t_measure) / 1e9, w, b);
        }
    }
    atomic_store_explicit(phase, PHASE_DRAIN, memory_order_release);
    if (prog)
        fclose(prog);
    t_stop = lg_now_ns();
    sample(o->ingest_pid, &res->ingest_end);
    sample(o->nats_pid, &res->nats_end);
    res->self_cpu_s = cpu_self() - cpu0;
    if (res->ingest_end.rss_kb > res->ingest_rss_max_kb)
        res->ingest_rss_max_kb = res->ingest_end.rss_kb;
    res->seconds = (double)(t_stop - t_measure) / 1e9;
    /* Take the counters now: acks that arrive while draining do not count. */
    for (int i = 0; i < nw; i++) {
        res->batches += get(&ws[i].batches);
        res->windows += get(&ws[i].windows);
        res->bytes += get(&ws[i].bytes);
        res->acks += get(&ws[i].acks);
    }
}

static int setup_agents(const lg_opts_t *o, lg_node_t *nodes, grpc_channel_credentials *creds,
                        worker_t *ws, agent_t *agents, uint64_t t_start)
{
    double per_agent = 0;
    uint64_t cap = 1;

    while (cap < (uint64_t)o->window + 1)
        cap <<= 1;
    for (int i = 0; i < o->agents; i++) {
        agent_t *a = &agents[i];
        worker_t *w = &ws[i % o->threads];

        a->w = w;
        a->index = i;
        a->node = &nodes[i];
        a->n_windows = (uint64_t)nodes[i].n_windows;
        w->creds = creds;
        a->target = home_target(nodes[i].node, o->n_targets);
        open_channel(a, o);
        a->sent_ns = calloc(cap, sizeof(*a->sent_ns));
        if (!a->sent_ns)
            return -ENOMEM;
        a->mask = cap - 1;
        if (o->rate > 0) {
            /* Each agent carries its share of the container windows. */
            per_agent = o->rate / o->agents / (double)nodes[i].n_windows;
            a->period_ns = (uint64_t)(1e9 / per_agent);
            a->next_due_ns = t_start; /* the first batch is due at once */
        }
        for (int v = 0; v < LG_VARIANTS; v++) {
            a->body[v] = grpc_slice_new(nodes[i].body[v], nodes[i].body_len[v], noop_free);
            a->batch_bytes += nodes[i].body_len[v] / LG_VARIANTS;
        }
        a->batch_bytes += 24; /* epoch, seq, created */
        a->t_send = (op_tag_t){OP_SEND, a};
        a->t_recv = (op_tag_t){OP_RECV, a};
        a->t_status = (op_tag_t){OP_STATUS, a};
        w->agents[w->n_agents++] = a;
    }
    return 0;
}

int lg_ingest_run(const lg_opts_t *o, lg_node_t *nodes, lg_tick_fn tick, void *data,
                  lg_ingest_result_t *res)
{
    grpc_channel_credentials *creds = credentials(o);
    worker_t *ws = calloc((size_t)o->threads, sizeof(*ws));
    agent_t *agents = calloc((size_t)o->agents, sizeof(*agents));
    _Atomic int phase = PHASE_WARMUP;
    struct timespec rt;
    int r = 0, started = 0;
    uint64_t t_start;

    memset(res, 0, sizeof(*res));
    clock_gettime(CLOCK_REALTIME, &rt);
    if (!creds || !ws || !agents) {
        r = creds ? -ENOMEM : -EINVAL;
        goto out;
    }
    for (int i = 0; i < o->threads; i++) {
        ws[i].o = o;
        ws[i].phase = &phase;
        ws[i].cq = grpc_completion_queue_create_for_next(NULL);
        ws[i].seen_phase = -1;
        ws[i].epoch_base = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
        ws[i].agents = calloc((size_t)o->agents, sizeof(agent_t *));
        if (!ws[i].agents) {
            r = -ENOMEM;
            goto out;
        }
    }
    t_start = lg_now_ns();
    r = setup_agents(o, nodes, creds, ws, agents, t_start);
    for (int i = 0; r == 0 && i < o->threads; i++, started++)
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            r = -EAGAIN;
    if (r == 0)
        drive(o, &phase, ws, o->threads, agents, t_start, res, tick, data);
    else
        atomic_store(&phase, PHASE_DRAIN);
    /* Drain: every agent waits for its last ack, then half-closes. */
    clock_gettime(CLOCK_REALTIME, &rt);
    rt.tv_sec += DRAIN_LIMIT_S;
    for (int i = 0; i < started; i++) {
        if (pthread_timedjoin_np(ws[i].thread, NULL, &rt) == 0)
            continue;
        fprintf(stderr, "kopt-loadgen: streams still open after %d s; cancelling them\n",
                DRAIN_LIMIT_S);
        atomic_store(&phase, PHASE_ABORT);
        pthread_join(ws[i].thread, NULL);
    }
    for (int i = 0; i < started; i++) {
        for (int c = 0; c < LG_STATUS_CODES; c++)
            res->statuses[c] += ws[i].statuses[c];
        for (int c = 0; c < LG_REJECT_REASONS; c++)
            res->rejections[c] += ws[i].rejections[c];
        res->sent_batches += get(&ws[i].sent);
        res->reconnects += ws[i].reconnects;
        res->failovers += ws[i].failovers;
        res->total_windows += get(&ws[i].all_windows);
        res->total_batches += get(&ws[i].all_batches);
        if (ws[i].max_seq > res->max_seq)
            res->max_seq = ws[i].max_seq;
        res->unacked_at_end += ws[i].unacked_at_end;
        res->behind_schedule += ws[i].behind;
        lg_hist_merge(&res->latency, &ws[i].hist);
    }
out:
    for (int i = 0; agents && i < o->agents; i++) {
        if (agents[i].ch)
            grpc_channel_destroy(agents[i].ch);
        for (int v = 0; v < LG_VARIANTS; v++)
            if (agents[i].body[v].refcount)
                grpc_slice_unref(agents[i].body[v]);
        free(agents[i].sent_ns);
    }
    for (int i = 0; ws && i < o->threads; i++) {
        if (ws[i].cq) {
            grpc_completion_queue_shutdown(ws[i].cq);
            while (grpc_completion_queue_next(ws[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN)
                ;
            grpc_completion_queue_destroy(ws[i].cq);
        }
        free(ws[i].agents);
    }
    free(agents);
    free(ws);
    if (creds)
        grpc_channel_credentials_release(creds);
    return r;
}
