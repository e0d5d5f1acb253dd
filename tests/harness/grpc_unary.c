/* One unary gRPC call with the C core, the way the integration tests call
 * kopt-advisor: pack the request, send it with the given metadata, read the
 * answer's bytes and status, unpack with the response's descriptor. */
#include "harness.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METADATA 8

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0) {
        rewind(f);
        s = calloc(1, (size_t)n + 1);
        if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
            free(s);
            s = NULL;
        }
    }
    fclose(f);
    return s;
}

grpc_channel *kopt_test_grpc_channel(const char *target, const char *ca_file)
{
    grpc_channel_credentials *cr;
    grpc_channel *ch;
    char *pem = NULL;

    if (ca_file) {
        pem = read_all(ca_file);
        if (!pem) {
            fprintf(stderr, "grpc channel: cannot read %s\n", ca_file);
            return NULL;
        }
        cr = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
    } else {
        cr = grpc_insecure_credentials_create();
    }
    ch = grpc_channel_create(target, cr, NULL);
    grpc_channel_credentials_release(cr);
    free(pem);
    return ch;
}

/* The answer's bytes unpacked with desc; NULL when there are none or they
 * do not parse. */
static ProtobufCMessage *unpack(grpc_byte_buffer *recv, const ProtobufCMessageDescriptor *desc)
{
    grpc_byte_buffer_reader rd;
    grpc_slice all;
    ProtobufCMessage *m = NULL;

    if (!grpc_byte_buffer_reader_init(&rd, recv))
        return NULL;
    all = grpc_byte_buffer_reader_readall(&rd);
    if (desc)
        m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all),
                                      GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
    return m;
}

ProtobufCMessage *kopt_test_grpc_unary(grpc_channel *ch, const char *method,
                                       const ProtobufCMessage *req,
                                       const ProtobufCMessageDescriptor *resp_desc,
                                       const char *const *metadata, int *status, char *details,
                                       size_t dlen)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(60, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    size_t rlen = protobuf_c_message_get_packed_size(req), n_md = 0;
    uint8_t *rb = malloc(rlen + 1);
    grpc_metadata md[MAX_METADATA];
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *send, *recv = NULL;
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice sl, det = grpc_empty_slice();
    grpc_op ops[6];
    ProtobufCMessage *resp = NULL;
    grpc_event ev;

    *status = GRPC_STATUS_UNKNOWN;
    if (details && dlen)
        details[0] = '\0';
    if (!rb) {
        grpc_call_unref(call);
        grpc_completion_queue_destroy(cq);
        return NULL;
    }
    protobuf_c_message_pack(req, rb);
    sl = grpc_slice_from_copied_buffer((const char *)rb, rlen);
    send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    free(rb);
    for (; metadata && metadata[2 * n_md] && n_md < MAX_METADATA; n_md++) {
        md[n_md].key = grpc_slice_from_copied_string(metadata[2 * n_md]);
        md[n_md].value = grpc_slice_from_copied_string(metadata[2 * n_md + 1]);
    }
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &det;
    if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) == GRPC_CALL_OK) {
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            *status = (int)st;
        else
            fprintf(stderr, "grpc %s: the batch did not complete\n", method);
    } else {
        fprintf(stderr, "grpc %s: the batch did not start\n", method);
    }
    if (recv) {
        if (*status == GRPC_STATUS_OK)
            resp = unpack(recv, resp_desc);
        grpc_byte_buffer_destroy(recv);
    }
    if (details && dlen)
        snprintf(details, dlen, "%.*s", (int)GRPC_SLICE_LENGTH(det),
                 (const char *)GRPC_SLICE_START_PTR(det));
    grpc_slice_unref(det);
    for (size_t i = 0; i < n_md; i++) {
        grpc_slice_unref(md[i].key);
        grpc_slice_unref(md[i].value);
    }
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return resp;
}

ProtobufCMessage *kopt_test_grpc_unary_bearer(const char *target, const char *ca_file,
                                              const char *bearer, const char *method,
                                              const ProtobufCMessage *req,
                                              const ProtobufCMessageDescriptor *resp_desc,
                                              int *status, char *details, size_t dlen)
{
    char auth[1024];
    const char *md[] = {"authorization", auth, NULL};
    grpc_channel *ch = kopt_test_grpc_channel(target, ca_file);
    ProtobufCMessage *m;

    *status = GRPC_STATUS_UNKNOWN;
    if (!ch)
        return NULL;
    snprintf(auth, sizeof(auth), "Bearer %s", bearer ? bearer : "");
    m = kopt_test_grpc_unary(ch, method, req, resp_desc, bearer ? md : NULL, status, details, dlen);
    grpc_channel_destroy(ch);
    return m;
}
