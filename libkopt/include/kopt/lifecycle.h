/* Process lifecycle on the libuv loop: SIGTERM/SIGINT drain, SIGHUP reload.
 *
 * The first SIGTERM or SIGINT calls `drain`: the daemon stops taking new work
 * and finishes what is in flight, then calls kopt_lifecycle_drained(). A second
 * signal, or the drain deadline passing, calls `stop` at once. `stop` is called
 * exactly once in every case; it must close the daemon's handles so uv_run()
 * returns. SIGPIPE is ignored process-wide (peers vanish; writes report EPIPE). */
#ifndef KOPT_LIFECYCLE_H
#define KOPT_LIFECYCLE_H

#include <stdint.h>
#include <uv.h>

typedef struct kopt_lifecycle kopt_lifecycle_t;

typedef struct {
    void (*drain)(void *data);  /* may be NULL: then drain means stop */
    void (*stop)(void *data);   /* required */
    void (*reload)(void *data); /* SIGHUP; may be NULL */
    void *data;
} kopt_lifecycle_hooks_t;

/* Installs the signal handlers on `loop`. The hooks are copied. */
int kopt_lifecycle_new(uv_loop_t *loop, const kopt_lifecycle_hooks_t *hooks,
                       uint64_t drain_timeout_ms, kopt_lifecycle_t **out);

/* Starts a drain as SIGTERM would (e.g. a fatal error elsewhere). */
void kopt_lifecycle_begin_drain(kopt_lifecycle_t *lc, const char *reason);

/* The daemon finished its in-flight work: calls `stop` now. */
void kopt_lifecycle_drained(kopt_lifecycle_t *lc);

int kopt_lifecycle_draining(const kopt_lifecycle_t *lc);

/* 0 after a clean drain; 1 when the deadline or a second signal cut it short. */
int kopt_lifecycle_exit_code(const kopt_lifecycle_t *lc);

/* Closes the signal handles; the loop must run once more to finish closing,
 * so free the object after uv_run() returned (it is freed in the close callback
 * when the loop is still running). */
void kopt_lifecycle_free(kopt_lifecycle_t *lc);

#endif
