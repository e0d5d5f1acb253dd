/* Unary gRPC calls to the advisor on the C core (client.h). Each call runs on
 * its own completion queue and waits in one-second steps so a long call can
 * report progress. What each failure looks like to a gRPC 1.51 client is in
 * docs/stack-facts.md, 'gRPC: what a refused client sees'. */
#include "client.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <kopt/tls.h>

struct cli_client {
    grpc_channel *ch;
    char what[300]; /* "the advisor at HOST:PORT" */
    char *ca_file;
    char cred_source[300]; /* "" without a credential */
    char *bearer;          /* "Bearer <secret>", or NULL */
    double timeout_s;
};

/* The first line of a credential file that is neither empty nor a comment,
 * trimmed, so an advisor's API keys file also works. */
static int read_secret_file(const char *path, const char *flag, char **out)
{
    char *text = NULL, err[300], *line, *save = NULL;
    int rc = kopt_tls_read_pem(path, &text, err, sizeof(err));

    *out = NULL;
    if (rc != 0) {
        fprintf(stderr, "kopt: %s: cannot read %s: %s\n", flag, path, strerror(-rc));
        return CLI_EXIT_USAGE;
    }
    for (line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        size_t n;

        line += strspn(line, " \t");
        n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n && line[0] != '#') {
            *out = strdup(line);
            break;
        }
    }
    /* The file held a secret: wipe our copy before freeing it. */
    explicit_bzero(text, strlen(text));
    free(text);
    if (!*out) {
        fprintf(stderr, "kopt: %s: %s holds no credential (only empty or # lines)\n", flag, path);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int load_bearer(const cli_conn_t *c, cli_client_t *cl)
{
    char *secret = NULL;
    int rc = 0;

    if (c->api_key) {
        secret = strdup(c->api_key);
        snprintf(cl->cred_source, sizeof(cl->cred_source), "KOPT_API_KEY");
    } else if (c->token) {
        secret = strdup(c->token);
        snprintf(cl->cred_source, sizeof(cl->cred_source), "KOPT_TOKEN");
    } else if (c->api_key_file) {
        rc = read_secret_file(c->api_key_file, "api-key-file", &secret);
        snprintf(cl->cred_source, sizeof(cl->cred_source), "the API key in %s", c->api_key_file);
    } else if (c->token_file) {
        rc = read_secret_file(c->token_file, "token-file", &secret);
        snprintf(cl->cred_source, sizeof(cl->cred_source), "the token in %s", c->token_file);
    }
    if (rc != 0 || !secret)
        return rc;
    /* OIDC tokens with many groups pass 4 KiB; the advisor reads up to 15 KiB. */
    if (strpbrk(secret, "\r\n") || strlen(secret) > 15 * 1024) {
        fprintf(stderr,
                "kopt: %s is not a valid bearer credential (a line break, or over 15 KiB)\n",
                cl->cred_source);
        rc = CLI_EXIT_USAGE;
    } else if (asprintf(&cl->bearer, "Bearer %s", secret) < 0) {
        cl->bearer = NULL;
        rc = CLI_EXIT_ERROR;
    }
    explicit_bzero(secret, strlen(secret));
    free(secret);
    return rc;
}

/* gRPC takes a CA file without a certificate and fails every call as
 * "empty address list" (docs/stack-facts.md, 'gRPC: a client call to a
 * closed port'): check it here to say so. */
static bool pem_has_certificate(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    X509_free(x);
    BIO_free(b);
    return x != NULL;
}

int cli_client_new(const cli_conn_t *c, cli_client_t **out)
{
    cli_client_t *cl = calloc(1, sizeof(*cl));
    grpc_channel_credentials *creds;
    grpc_arg args[2];
    grpc_channel_args ca = {.num_args = 0, .args = args};
    int rc;

    *out = NULL;
    if (!cl)
        return CLI_EXIT_ERROR;
    snprintf(cl->what, sizeof(cl->what), "the advisor at %s", c->address);
    cl->timeout_s = c->timeout_s;
    if ((rc = load_bearer(c, cl)) != 0) {
        cli_client_free(cl);
        return rc;
    }
    if (c->insecure) {
        creds = grpc_insecure_credentials_create();
    } else {
        char *pem = NULL, err[400];

        if (!c->ca_file) {
            fprintf(stderr,
                    "kopt: no CA file to check %s's certificate: give --ca-file, "
                    "KOPT_CA_FILE or the context's ca-file (or --insecure for a "
                    "plaintext advisor)\n",
                    cl->what);
            cli_client_free(cl);
            return CLI_EXIT_USAGE;
        }
        if (kopt_tls_read_pem(c->ca_file, &pem, err, sizeof(err)) != 0) {
            fprintf(stderr, "kopt: --ca-file: %s\n", err);
            cli_client_free(cl);
            return CLI_EXIT_USAGE;
        }
        if (!pem_has_certificate(pem)) {
            fprintf(stderr, "kopt: --ca-file: %s holds no PEM certificate\n", c->ca_file);
            free(pem);
            cli_client_free(cl);
            return CLI_EXIT_USAGE;
        }
        cl->ca_file = strdup(c->ca_file);
        creds = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
        free(pem);
        if (c->server_name) {
            args[ca.num_args].type = GRPC_ARG_STRING;
            args[ca.num_args].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
            args[ca.num_args++].value.string = c->server_name;
        }
    }
    /* A full list of a large cluster is more than gRPC's 4 MiB default. */
    args[ca.num_args].type = GRPC_ARG_INTEGER;
    args[ca.num_args].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[ca.num_args++].value.integer = 64 * 1024 * 1024;
    cl->ch = grpc_channel_create(c->address, creds, &ca);
    grpc_channel_credentials_release(creds);
    *out = cl;
    return 0;
}

void cli_client_free(cli_client_t *cl)
{
    if (!cl)
        return;
    if (cl->ch)
        grpc_channel_destroy(cl->ch);
    if (cl->bearer) {
        explicit_bzero(cl->bearer, strlen(cl->bearer));
        free(cl->bearer);
    }
    free(cl->ca_file);
    free(cl);
}

int cli_status_message(int status, const char *details, const char *what, const char *ca,
                       const char *cred, double timeout_s, char *msg, size_t len)
{
    switch (status) {
    case GRPC_STATUS_PERMISSION_DENIED:
        /* A good credential without the role (viewer, operator) the call needs. */
        snprintf(msg, len,
                 "%s accepted %s but refused the call (%s): ask for a key or token with that "
                 "role",
                 what, cred && cred[0] ? cred : "the caller", details);
        return CLI_EXIT_UNAUTHENTICATED;
    case GRPC_STATUS_UNAUTHENTICATED:
        if (cred && cred[0])
            snprintf(msg, len,
                     "%s refused %s (%s): check the key or token, or get a new one "
                     "(--api-key-file, --token-file, KOPT_API_KEY, KOPT_TOKEN)",
                     what, cred, details);
        else
            snprintf(msg, len,
                     "%s wants an API key or token and none was given: use "
                     "--api-key-file, --token-file, KOPT_API_KEY, KOPT_TOKEN or the context",
                     what);
        return CLI_EXIT_UNAUTHENTICATED;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        snprintf(msg, len, "%s did not answer within %g s: raise --timeout, or check the advisor",
                 what, timeout_s);
        return CLI_EXIT_UNAVAILABLE;
    case GRPC_STATUS_UNAVAILABLE:
        if (strstr(details, "certificate verify failed") || strstr(details, "Ssl handshake"))
            snprintf(msg, len,
                     "%s has a certificate that %s does not trust: use the CA that signed "
                     "the advisor's certificate (--ca-file, KOPT_CA_FILE or the context's "
                     "ca-file)",
                     what, ca ? ca : "the CA file");
        else if (strstr(details, "Peer name"))
            snprintf(msg, len,
                     "%s has a certificate for another name (%s): connect by a name the "
                     "certificate lists, or set --server-name",
                     what, details);
        else if (ca && strstr(details, "Socket closed"))
            snprintf(msg, len,
                     "%s closed the connection during the TLS handshake: is it a plaintext "
                     "advisor (then --insecure), or not the advisor's gRPC port?",
                     what);
        else
            snprintf(msg, len,
                     "cannot reach %s (%s): is kopt-advisor running there? Check --address, "
                     "KOPT_ADDRESS or the context's address",
                     what, details);
        return CLI_EXIT_UNAVAILABLE;
    case GRPC_STATUS_INVALID_ARGUMENT:
        snprintf(msg, len, "%s refused the request: %s", what, details);
        return CLI_EXIT_USAGE;
    case GRPC_STATUS_NOT_FOUND:
        snprintf(msg, len, "not found: %s", details);
        return CLI_EXIT_ERROR;
    default:
        snprintf(msg, len, "%s failed the call (gRPC status %d): %s", what, status, details);
        return CLI_EXIT_ERROR;
    }
}

static int unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *recv,
                  ProtobufCMessage **resp)
{
    grpc_byte_buffer_reader rd;
    grpc_slice all;

    if (!recv || !grpc_byte_buffer_reader_init(&rd, recv))
        return -EINVAL;
    all = grpc_byte_buffer_reader_readall(&rd);
    *resp = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
    return *resp ? 0 : -EINVAL;
}

int cli_client_call(cli_client_t *cl, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                    double timeout_s, cli_progress_fn progress, void *arg)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    double t = timeout_s > 0 ? timeout_s : cl->timeout_s;
    gpr_timespec start = gpr_now(GPR_CLOCK_MONOTONIC);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis((int64_t)(t * 1000), GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(cl->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    size_t rlen = protobuf_c_message_get_packed_size(req);
    uint8_t *rb = malloc(rlen ? rlen : 1);
    grpc_metadata md;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *send, *recv = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice sl, det = grpc_empty_slice();
    grpc_op ops[6];
    grpc_event ev;
    int rc = 0;

    *resp = NULL;
    if (!rb) {
        rc = CLI_EXIT_ERROR;
        goto out_call;
    }
    protobuf_c_message_pack(req, rb);
    sl = grpc_slice_from_copied_buffer((const char *)rb, rlen);
    free(rb);
    send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_copied_string(cl->bearer ? cl->bearer : "");
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = cl->bearer ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &det;
    if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "kopt: could not start the call to %s\n", cl->what);
        rc = CLI_EXIT_ERROR;
    } else {
        for (;;) {
            gpr_timespec step =
                gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(1000, GPR_TIMESPAN));

            ev = grpc_completion_queue_next(cq, step, NULL);
            if (ev.type == GRPC_OP_COMPLETE)
                break;
            if (progress) {
                gpr_timespec d = gpr_time_sub(gpr_now(GPR_CLOCK_MONOTONIC), start);

                progress((double)d.tv_sec + d.tv_nsec / 1e9, arg);
            }
        }
    }
    if (rc == 0 && status != GRPC_STATUS_OK) {
        char details[512], msg[1400];

        snprintf(details, sizeof(details), "%.*s", (int)GRPC_SLICE_LENGTH(det),
                 (const char *)GRPC_SLICE_START_PTR(det));
        rc = cli_status_message(status, details, cl->what, cl->ca_file, cl->cred_source, t, msg,
                                sizeof(msg));
        fprintf(stderr, "kopt: %s\n", msg);
    } else if (rc == 0 && unpack(resp_desc, recv, resp) != 0) {
        fprintf(stderr, "kopt: %s sent an answer that is not a %s\n", cl->what, resp_desc->name);
        rc = CLI_EXIT_ERROR;
    }
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_slice_unref(det);
    grpc_slice_unref(md.value);
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
out_call:
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}
