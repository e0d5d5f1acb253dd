/* Runs a command to its end and hands back what it printed: for tests that
 * assert on a tool's output (kopt-advisor analyze --once, buf, python). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The whole file as a string ("" when it is missing or unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    char *s;

    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (s && f && n > 0) {
        rewind(f);
        if (fread(s, 1, (size_t)n, f) != (size_t)n)
            s[0] = '\0';
    }
    if (f)
        fclose(f);
    return s;
}

int kopt_test_run_capture(char *const argv[], char *const env[], const char *log_path,
                          int timeout_ms, char **out)
{
    kopt_test_proc_t p;
    int status, rc;

    unlink(log_path);
    rc = kopt_test_proc_spawn(&p, argv, env, log_path);
    if (rc != 0) {
        if (out)
            *out = slurp(log_path);
        return rc;
    }
    for (int waited = 0; waited < timeout_ms && kopt_test_proc_alive(&p); waited += 100)
        usleep(100 * 1000);
    if (kopt_test_proc_alive(&p))
        kopt_test_proc_kill9(&p);
    status = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 128;
    kopt_test_proc_release(&p);
    if (out)
        *out = slurp(log_path);
    return status;
}
