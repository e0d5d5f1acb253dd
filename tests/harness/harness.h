/* Test harness: what tests share to run against real things — a free loopback
 * port, a temp dir removed at the end, and capture of a fd's output. */
#ifndef KOPT_TEST_HARNESS_H
#define KOPT_TEST_HARNESS_H

#include <stddef.h>

/* A TCP port free on 127.0.0.1 right now (bound then released), or -1. */
int kopt_test_free_port(void);

/* mkdtemp under $TMPDIR; returns a malloc'd path or NULL. */
char *kopt_test_tmpdir(const char *prefix);

/* rm -rf of a test's own temp dir; refuses anything outside $TMPDIR or /tmp. */
int kopt_test_rmtree(const char *path);

#endif
