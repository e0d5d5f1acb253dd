/* The serving mode of kopt-advisor (serve.c): every part wired on the libuv
 * loop, and the stream set-up the CLI mode shares. */
#ifndef ADV_SERVE_H
#define ADV_SERVE_H

#include <kopt/nats.h>

/* Runs the server until SIGTERM; returns the exit code. */
int adv_serve(int argc, char **argv);

/* Creates or updates the stream on a private loop and waits: for the CLI.
 * 0, or a negative errno (logged). */
int adv_serve_ensure_stream_sync(const char *url, const kopt_stream_spec_t *spec);

#endif
