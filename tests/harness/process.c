/* Child processes for tests, and the registry that cleans up after them.
 * A child can never outlive the test: its own process group (so one kill
 * reaches anything it forks), PR_SET_PDEATHSIG(SIGKILL), a registry run at
 * exit() and from cmocka teardowns, and a SIGTERM/SIGINT handler that kills
 * every child still running. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Process groups of running children, for the signal handler: a fixed array
 * of sig_atomic_t-sized slots, because a handler may not take locks or walk a
 * heap list. 0 = free slot. */
#define MAX_CHILDREN 64
static volatile sig_atomic_t live_pgids[MAX_CHILDREN];

/* What kopt_test_cleanup_all() runs, most recent first. */
#define MAX_CLEANUPS 64
static struct {
    void (*fn)(void *);
    void *arg;
} cleanups[MAX_CLEANUPS];
static int n_cleanups;
static int installed;

double kopt_test_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kopt_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void kopt_test_log_tail(const char *path, int lines)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    long size, pos;
    int seen = 0, c;

    if (!f) {
        fprintf(stderr, "--- %s: (no log)\n", path ? path : "?");
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    /* Walk back over `lines` newlines (plus a trailing one) or 64 KiB. */
    for (pos = size - 1; pos >= 0 && size - pos < 65536; pos--) {
        fseek(f, pos, SEEK_SET);
        if (fgetc(f) == '\n' && pos != size - 1 && ++seen >= lines)
            break;
    }
    fseek(f, pos + 1, SEEK_SET);
    fprintf(stderr, "--- last %d lines of %s:\n", lines, path);
    while ((c = fgetc(f)) != EOF)
        fputc(c, stderr);
    fprintf(stderr, "--- end of %s\n", path);
    fclose(f);
}

int kopt_test_log_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strcasestr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Removes <tmp>/<prefix>-* dirs whose owner file names a dead process: what
 * a test killed by a signal left behind. */
static void sweep_stale(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    const char *root = tmp && *tmp ? tmp : "/tmp";
    size_t plen = strlen(prefix);
    DIR *d = opendir(root);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char *path = NULL, *owner = NULL;
        FILE *f;
        int pid = 0;

        if (strncmp(e->d_name, prefix, plen) != 0 || e->d_name[plen] != '-')
            continue;
        if (asprintf(&path, "%s/%s", root, e->d_name) < 0)
            break;
        if (asprintf(&owner, "%s/owner.pid", path) >= 0 && (f = fopen(owner, "r"))) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
            if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH) {
                fprintf(stderr, "harness: removing %s, left by dead test process %d\n", path, pid);
                kopt_test_rmtree(path);
            }
        }
        free(owner);
        free(path);
    }
    closedir(d);
}

char *kopt_test_owned_tmpdir(const char *prefix)
{
    char *dir, *owner = NULL;
    FILE *f;

    sweep_stale(prefix);
    dir = kopt_test_tmpdir(prefix);
    if (!dir)
        return NULL;
    if (asprintf(&owner, "%s/owner.pid", dir) >= 0 && (f = fopen(owner, "w"))) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    free(owner);
    return dir;
}

static void track_pgid(pid_t pgid, pid_t old)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live_pgids[i] == old) {
            live_pgids[i] = pgid;
            return;
        }
    }
}

/* Async-signal-safe: kill what runs, then die of the same signal. */
static void on_fatal_signal(int sig)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_pgids[i] > 0)
            kill(-live_pgids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void)
{
    kopt_test_cleanup_all();
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_pgids[i] > 0)
            kill(-live_pgids[i], SIGKILL);
}

/* Once, before the first child: the exit hook, and the signal handlers unless
 * the test installed its own. */
static void install_hooks(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    struct sigaction old, sa = {.sa_handler = on_fatal_signal};

    if (installed)
        return;
    installed = 1;
    atexit(at_exit);
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

int kopt_test_cleanup_push(void (*fn)(void *), void *arg)
{
    install_hooks();
    if (n_cleanups == MAX_CLEANUPS)
        return -ENOSPC;
    cleanups[n_cleanups].fn = fn;
    cleanups[n_cleanups].arg = arg;
    n_cleanups++;
    return 0;
}

void kopt_test_cleanup_forget(void *arg)
{
    for (int i = n_cleanups - 1; i >= 0; i--) {
        if (cleanups[i].arg == arg) {
            memmove(&cleanups[i], &cleanups[i + 1], sizeof(cleanups[0]) * (n_cleanups - i - 1));
            n_cleanups--;
            return;
        }
    }
}

void kopt_test_cleanup_all(void)
{
    /* Each fn normally calls kopt_test_cleanup_forget() on its own arg; pop
     * first so a fn that does not is not run twice. */
    while (n_cleanups > 0) {
        n_cleanups--;
        cleanups[n_cleanups].fn(cleanups[n_cleanups].arg);
    }
}

int kopt_test_teardown_all(void **state)
{
    (void)state;
    kopt_test_cleanup_all();
    return 0;
}

/* argv[0] as a path: as given if it has a '/', else the first executable in
 * $PATH, /usr/sbin, /sbin. Malloc'd, or NULL. */
static char *find_program(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs = NULL, *save = NULL, *found = NULL;

    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? strdup(name) : NULL;
    if (asprintf(&dirs, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin") < 0)
        return NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *cand = NULL;

        if (asprintf(&cand, "%s/%s", *d ? d : ".", name) < 0)
            break;
        if (access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(dirs);
    return found;
}

static char **copy_strv(char *const v[], size_t extra)
{
    size_t n = 0;
    char **out;

    while (v && v[n])
        n++;
    out = calloc(n + extra + 1, sizeof(*out));
    for (size_t i = 0; out && i < n; i++)
        out[i] = strdup(v[i]);
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* environ plus p->env; entries of p->env win. Pointers borrowed, not copied. */
static char **build_env(const kopt_test_proc_t *p)
{
    size_t n = 0, m = 0, k = 0;
    char **out;

    while (environ[n])
        n++;
    while (p->env && p->env[m])
        m++;
    out = calloc(n + m + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        int overridden = 0;

        for (size_t j = 0; j < m && !overridden; j++)
            overridden = strncmp(p->env[j], environ[i], klen) == 0;
        if (!overridden)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        out[k++] = p->env[j];
    return out;
}

/* In the child, between fork and exec: only async-signal-safe calls, because
 * the test may run library threads (nats.c, gRPC) that held locks at fork. */
static void child(const kopt_test_proc_t *p, char **envp, pid_t parent, int log_fd, int err_fd)
{
    int null_fd, e;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the test died before prctl took effect */
        _exit(127);
    null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        goto fail;
    /* Inherited sockets would keep the test's ports busy after it exits. */
    if (err_fd > 3)
        close_range(3, (unsigned)err_fd - 1, 0);
    close_range((unsigned)err_fd + 1, ~0U, 0);
    {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execve(p->argv[0], p->argv, envp);
fail:
    e = errno;
    if (write(err_fd, &e, sizeof(e)) < 0)
        _exit(126);
    _exit(127);
}

static int launch(kopt_test_proc_t *p)
{
    int log_fd, pipefd[2], e = 0, slot = -1;
    char **envp;
    pid_t pid, parent = getpid();
    ssize_t n;

    install_hooks();
    for (int i = 0; i < MAX_CHILDREN && slot < 0; i++)
        if (live_pgids[i] == 0)
            slot = i;
    if (slot < 0)
        return -ENOSPC;
    log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
        return -errno;
    envp = build_env(p);
    if (!envp || pipe2(pipefd, O_CLOEXEC) < 0) {
        e = envp ? errno : ENOMEM;
        free(envp);
        close(log_fd);
        return -e;
    }
    pid = fork();
    if (pid == 0)
        child(p, envp, parent, log_fd, pipefd[1]);
    e = errno;
    close(pipefd[1]);
    close(log_fd);
    free(envp);
    if (pid < 0) {
        close(pipefd[0]);
        return -e;
    }
    setpgid(pid, pid); /* also here, so the group exists before we signal it */
    live_pgids[slot] = pid;
    /* EOF means exec succeeded (the pipe is close-on-exec). */
    do
        n = read(pipefd[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(e)) {
        waitpid(pid, &p->status, 0);
        track_pgid(0, pid);
        return -e;
    }
    p->pid = pid;
    return 0;
}

int kopt_test_proc_spawn(kopt_test_proc_t *p, char *const argv[], char *const env_extra[],
                         const char *log_path)
{
    char *prog;
    int r;

    memset(p, 0, sizeof(*p));
    if (!argv || !argv[0] || !log_path)
        return -EINVAL;
    prog = find_program(argv[0]);
    if (!prog)
        return -ENOENT;
    p->argv = copy_strv(argv, 0);
    p->env = env_extra ? copy_strv(env_extra, 0) : NULL;
    p->log_path = strdup(log_path);
    if (!p->argv || !p->log_path || (env_extra && !p->env)) {
        free(prog);
        kopt_test_proc_release(p);
        return -ENOMEM;
    }
    free(p->argv[0]);
    p->argv[0] = prog;
    r = launch(p);
    if (r < 0)
        kopt_test_proc_release(p);
    return r;
}

int kopt_test_proc_respawn(kopt_test_proc_t *p)
{
    if (!p->argv)
        return -EINVAL;
    if (kopt_test_proc_alive(p))
        return -EBUSY;
    return launch(p);
}

static int reap(kopt_test_proc_t *p, int options)
{
    pid_t r;

    if (p->pid <= 0)
        return 0;
    do
        r = waitpid(p->pid, &p->status, options);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 1; /* still running */
    track_pgid(0, p->pid);
    p->pid = 0;
    return 0;
}

int kopt_test_proc_alive(kopt_test_proc_t *p)
{
    return reap(p, WNOHANG);
}

int kopt_test_proc_signal(kopt_test_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return -ESRCH;
    return kill(-p->pid, sig) == 0 ? 0 : -errno;
}

int kopt_test_proc_kill9(kopt_test_proc_t *p)
{
    if (p->pid <= 0)
        return 0;
    kill(-p->pid, SIGKILL);
    return reap(p, 0);
}

int kopt_test_proc_stop(kopt_test_proc_t *p, int timeout_ms)
{
    double deadline = kopt_test_now() + timeout_ms / 1000.0;
    struct timespec tick = {0, 10 * 1000 * 1000};
    pid_t pg = p->pid;

    if (p->pid <= 0)
        return 0;
    kill(-p->pid, SIGTERM);
    kill(-p->pid, SIGCONT); /* in case a test left it stopped */
    while (kopt_test_proc_alive(p)) {
        if (kopt_test_now() > deadline) {
            kopt_test_proc_kill9(p);
            return -ETIMEDOUT;
        }
        nanosleep(&tick, NULL);
    }
    /* The leader is gone; anything it forked into its group goes too. */
    kill(-pg, SIGKILL);
    return 0;
}

void kopt_test_proc_release(kopt_test_proc_t *p)
{
    if (!p)
        return;
    kopt_test_proc_kill9(p);
    free_strv(p->argv);
    free_strv(p->env);
    free(p->log_path);
    p->argv = NULL;
    p->env = NULL;
    p->log_path = NULL;
}


int kopt_test_proc_run(char *const argv[], const char *log_path, int timeout_ms)
{
    kopt_test_proc_t p;
    double until = kopt_test_now() + timeout_ms / 1000.0;
    int r = kopt_test_proc_spawn(&p, argv, NULL, log_path);

    if (r < 0)
        return r;
    while (kopt_test_proc_alive(&p) && kopt_test_now() < until)
        usleep(20000);
    if (p.pid) {
        kopt_test_proc_kill9(&p);
        r = -ETIMEDOUT;
    } else {
        r = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 128 + WTERMSIG(p.status);
    }
    kopt_test_proc_release(&p);
    return r;
}


int kopt_test_make_client_cert(const char *dir, const char *name, const char *san)
{
    char cmd[4096], log_path[4096];
    char *argv[4] = {"/bin/sh", "-c", cmd, NULL};

    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; "
             "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-subj '/CN=%s' -keyout '%s-key.pem' -out '%s.csr'; "
             "printf 'subjectAltName=%%s\\nextendedKeyUsage=clientAuth\\n' '%s' > '%s.ext'; "
             "openssl x509 -req -in '%s.csr' -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
             "-days 2 -extfile '%s.ext' -out '%s.pem'",
             dir, name, name, name, san, name, name, name, name);
    snprintf(log_path, sizeof(log_path), "%s/%s.log", dir, name);
    if (kopt_test_proc_run(argv, log_path, 30000) != 0) {
        kopt_test_log_tail(log_path, 20);
        return -1;
    }
    return 0;
}


int kopt_test_make_certs(const char *src_root, const char *dir)
{
    char script[4096], log_path[4096];
    char *argv[3];

    snprintf(script, sizeof(script), "%s/scripts/certs", src_root);
    snprintf(log_path, sizeof(log_path), "%s/certs.log", dir);
    argv[0] = script;
    argv[1] = (char *)dir;
    argv[2] = NULL;
    if (kopt_test_proc_run(argv, log_path, 60000) != 0) {
        kopt_test_log_tail(log_path, 20);
        return -1;
    }
    return 0;
}
