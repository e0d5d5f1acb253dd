/* The CLI's gRPC client: one channel to the advisor (TLS with the context's
 * CA, or plaintext with --insecure) and blocking unary calls carrying the
 * bearer credential as "authorization" metadata. Failures are printed here,
 * once, as one actionable line, and come back as the exit code they mean. */
#ifndef CLI_CLIENT_H
#define CLI_CLIENT_H

#include <protobuf-c/protobuf-c.h>

#include "cli.h"

typedef struct cli_client cli_client_t;

/* Reads the CA and the credential; 0 or an exit code after printing. The
 * client keeps a copy of what it needs from `c`. */
int cli_client_new(const cli_conn_t *c, cli_client_t **out);
void cli_client_free(cli_client_t *cl);

/* Called about once a second while a call is running (e.g. RunAnalysis). */
typedef void (*cli_progress_fn)(double elapsed_s, void *arg);

/* Calls `method` ("/kopt.v1.Advisor/ListRecommendations") with `req` and
 * unpacks the answer as `resp_desc` into *resp (free with
 * protobuf_c_message_free_unpacked). `timeout_s` <= 0 uses the connection's.
 * 0, or an exit code (CLI_EXIT_*) after printing why. */
int cli_client_call(cli_client_t *cl, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                    double timeout_s, cli_progress_fn progress, void *arg);

/* The exit code and the sentence for a failed call (exposed for tests).
 * `what` names the advisor ("the advisor at HOST:PORT"), `ca` the CA file
 * or NULL, `cred` where the credential came from or NULL. */
int cli_status_message(int status, const char *details, const char *what, const char *ca,
                       const char *cred, double timeout_s, char *msg, size_t len);

#endif
