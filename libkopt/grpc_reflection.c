/* Server reflection (grpc.reflection.v1 and v1alpha, which share one wire
 * format) answered from the FileDescriptorSet built into the binary. Each
 * call is a bidi stream handled one request at a time on the loop thread:
 * receive, answer, receive again, until the client half-closes. */
#include <kopt/grpc_services.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>

#include <kopt/log.h>
#include <kopt/util.h>

#include "descriptor_index.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#define MAX_FILES 64 /* a file and its imports in one answer */

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest request_t;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse response_t;

struct kopt_grpc_reflection {
    kopt_descriptor_index_t *index;
    const char *const *services;
};

typedef struct {
    kopt_grpc_reflection_t *r;
    kopt_grpc_call_t *c;
    grpc_byte_buffer *in, *out;
    grpc_slice details;
    int cancelled, refs, finished;
    kopt_grpc_tag_t recv_tag, send_tag, close_tag;
} stream_t;

/* The analyzer flags a use after free here and at on_call's posts: it
 * assumes gRPC may rewrite s->refs once &s->cancelled has escaped into it. */
static void unref(stream_t *s)
{
    if (--s->refs > 0) // NOLINT(clang-analyzer-unix.Malloc)
        return;
    if (s->in)
        grpc_byte_buffer_destroy(s->in);
    if (s->out)
        grpc_byte_buffer_destroy(s->out);
    grpc_slice_unref(s->details);
    kopt_grpc_call_release(s->c);
    free(s);
}

static void start(stream_t *s, grpc_op *ops, size_t n, kopt_grpc_tag_t *tag)
{
    s->refs++;
    if (grpc_call_start_batch(kopt_grpc_call_raw(s->c), ops, n, tag, NULL) != GRPC_CALL_OK)
        unref(s);
}

static void finish(stream_t *s, grpc_status_code status, const char *why)
{
    grpc_op op = {.op = GRPC_OP_SEND_STATUS_FROM_SERVER};

    s->finished = 1;
    kopt_grpc_call_set_status(s->c, status);
    s->details = grpc_slice_from_copied_string(why ? why : "");
    op.data.send_status_from_server.status = status;
    op.data.send_status_from_server.status_details = &s->details;
    start(s, &op, 1, &s->send_tag);
}

static void answer_files(const kopt_descriptor_index_t *idx, int file,
                         Grpc__Reflection__V1alpha__FileDescriptorResponse *fdr,
                         ProtobufCBinaryData *blobs)
{
    int files[MAX_FILES];
    int n = kopt_descriptor_index_closure(idx, file, files, MAX_FILES);

    for (int i = 0; i < n; i++)
        blobs[i].data = (uint8_t *)kopt_descriptor_index_bytes(idx, files[i], &blobs[i].len);
    fdr->n_file_descriptor_proto = n > 0 ? (size_t)n : 0;
    fdr->file_descriptor_proto = blobs;
}

/* Builds the answer to `req` into `resp`, using the caller's storage. */
static void answer(const kopt_grpc_reflection_t *r, request_t *req, response_t *resp,
                   Grpc__Reflection__V1alpha__FileDescriptorResponse *fdr,
                   ProtobufCBinaryData *blobs, Grpc__Reflection__V1alpha__ListServiceResponse *lsr,
                   Grpc__Reflection__V1alpha__ServiceResponse *svc,
                   Grpc__Reflection__V1alpha__ServiceResponse **svcp,
                   Grpc__Reflection__V1alpha__ErrorResponse *err, char *why, size_t whylen)
{
    int file = -ENOENT;
    size_t n = 0;

    resp->valid_host = req->host;
    resp->original_request = req;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (; r->services[n]; n++) {
            svc[n].name = (char *)r->services[n];
            svcp[n] = &svc[n];
        }
        lsr->n_service = n;
        lsr->service = svcp;
        resp->message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp->list_services_response = lsr;
        return;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = kopt_descriptor_index_by_name(r->index, req->file_by_filename);
        snprintf(why, whylen, "file %s not found", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = kopt_descriptor_index_by_symbol(r->index, req->file_containing_symbol);
        snprintf(why, whylen, "symbol %s not found", req->file_containing_symbol);
        break;
    default:
        snprintf(why, whylen, "extensions are not supported");
        break;
    }
    if (file >= 0) {
        answer_files(r->index, file, fdr, blobs);
        resp->message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp->file_descriptor_response = fdr;
        return;
    }
    err->error_code = GRPC_STATUS_NOT_FOUND;
    err->error_message = why;
    resp->message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = err;
}

/* Packs the answer to one request into s->out; -EINVAL for a bad request. */
static int respond(stream_t *s, const uint8_t *data, size_t len)
{
    request_t *req = grpc__reflection__v1alpha__server_reflection_request__unpack(NULL, len, data);
    response_t resp = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse lsr =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ServiceResponse svc[16], *svcp[16];
    Grpc__Reflection__V1alpha__ErrorResponse err = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    ProtobufCBinaryData blobs[MAX_FILES];
    char why[300];
    grpc_slice out;

    if (!req)
        return -EINVAL;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(svc); i++)
        grpc__reflection__v1alpha__service_response__init(&svc[i]);
    answer(s->r, req, &resp, &fdr, blobs, &lsr, svc, svcp, &err, why, sizeof(why));
    out = grpc_slice_malloc(
        grpc__reflection__v1alpha__server_reflection_response__get_packed_size(&resp));
    grpc__reflection__v1alpha__server_reflection_response__pack(&resp, GRPC_SLICE_START_PTR(out));
    s->out = grpc_raw_byte_buffer_create(&out, 1);
    grpc_slice_unref(out);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(req, NULL);
    return 0;
}

static void post_recv(stream_t *s, int with_metadata)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (with_metadata)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &s->in;
    start(s, ops, n, &s->recv_tag);
}

static void on_recv(kopt_grpc_tag_t *tag, int ok)
{
    stream_t *s = kopt_container_of(tag, stream_t, recv_tag);
    grpc_byte_buffer_reader rd;
    grpc_slice in;
    grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
    int r;

    if (!ok || !s->in) { /* half-close or cancel: the stream is over */
        finish(s, GRPC_STATUS_OK, NULL);
        unref(s);
        return;
    }
    grpc_byte_buffer_reader_init(&rd, s->in);
    in = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(s->in);
    s->in = NULL;
    r = respond(s, GRPC_SLICE_START_PTR(in), GRPC_SLICE_LENGTH(in));
    grpc_slice_unref(in);
    if (r < 0)
        finish(s, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
    else {
        op.data.send_message.send_message = s->out;
        start(s, &op, 1, &s->send_tag);
    }
    unref(s);
}

static void on_send(kopt_grpc_tag_t *tag, int ok)
{
    stream_t *s = kopt_container_of(tag, stream_t, send_tag);

    if (s->out) {
        grpc_byte_buffer_destroy(s->out);
        s->out = NULL;
    }
    if (!s->finished) {
        if (ok)
            post_recv(s, 0);
        else
            finish(s, GRPC_STATUS_CANCELLED, "send failed");
    }
    unref(s);
}

static void on_close(kopt_grpc_tag_t *tag, int ok)
{
    (void)ok;
    unref(kopt_container_of(tag, stream_t, close_tag));
}

static void on_call(kopt_grpc_call_t *c)
{
    stream_t *s = calloc(1, sizeof(*s));
    grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};

    if (!s) {
        kopt_grpc_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    s->r = kopt_grpc_call_user(c);
    s->c = c;
    s->details = grpc_empty_slice();
    s->refs = 1; /* ours, until the first batches are posted */
    kopt_grpc_tag_init(&s->recv_tag, on_recv, 1);
    kopt_grpc_tag_init(&s->send_tag, on_send, 1);
    kopt_grpc_tag_init(&s->close_tag, on_close, 1);
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    start(s, &op, 1, &s->close_tag); // NOLINT(clang-analyzer-unix.Malloc)
    post_recv(s, 1);                 // NOLINT(clang-analyzer-unix.Malloc)
    unref(s);                        // NOLINT(clang-analyzer-unix.Malloc)
}

int kopt_grpc_reflection_register(kopt_grpc_server_t *srv, const uint8_t *set, size_t len,
                                  const char *const *services, kopt_grpc_reflection_t **out)
{
    kopt_grpc_reflection_t *r = calloc(1, sizeof(*r));
    size_t n = 0;
    int ret;

    if (!r)
        return -ENOMEM;
    r->services = services;
    ret = kopt_descriptor_index_new(set, len, &r->index);
    for (; ret == 0 && services[n]; n++)
        if (n >= 16 || kopt_descriptor_index_by_symbol(r->index, services[n]) < 0) {
            kopt_log_error("reflection: no descriptor for service",
                           KOPT_STR("service", services[n]));
            ret = -EINVAL;
        }
    if (ret == 0)
        ret = kopt_grpc_server_add_stream(
            srv, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", on_call, r);
    if (ret == 0)
        ret = kopt_grpc_server_add_stream(
            srv, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", on_call, r);
    if (ret < 0) {
        kopt_grpc_reflection_free(r);
        return ret;
    }
    *out = r;
    return 0;
}

void kopt_grpc_reflection_free(kopt_grpc_reflection_t *r)
{
    if (!r)
        return;
    kopt_descriptor_index_free(r->index);
    free(r);
}
