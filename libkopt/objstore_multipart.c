/* Multipart upload for objects larger than part_size: initiate, one PUT a
 * part (each retried on its own), complete. Any failure aborts the upload,
 * so the store keeps no parts and no partial object. */
#include "objstore_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void abort_upload(kopt_objstore_t *s, const char *key, const char *eid)
{
    char q[1024];
    objstore_resp_t resp;
    kopt_objstore_error_t ignored;
    snprintf(q, sizeof q, "uploadId=%s", eid);
    objstore_req_t req = {.method = "DELETE", .key = key, .query = q};
    s->stats.multipart_aborts++;
    if (objstore_request(s, &req, &resp, &ignored) == 0)
        objstore_resp_free(&resp);
}

int objstore_put_multipart(kopt_objstore_t *s, const char *key, const void *data, size_t len,
                           const char *sha256_hex, kopt_objstore_error_t *err)
{
    objstore_resp_t resp;
    char upload_id[512];
    size_t nparts = (len + s->part_size - 1) / s->part_size;
    if (nparts > 10000) {
        objstore_err_set(err, -EFBIG, 0, "", "object needs more than 10000 parts: raise part_size");
        return -EFBIG;
    }
    /* "uploads=" rather than "uploads": SigV4's canonical form of the query. */
    objstore_req_t init = {
        .method = "POST", .key = key, .query = "uploads=", .sha256_meta = sha256_hex};
    int r = objstore_request(s, &init, &resp, err);
    if (r < 0)
        return r;
    r = resp.body
            ? kopt_objstore_xml_text(resp.body, resp.len, "UploadId", upload_id, sizeof upload_id)
            : -ENOENT;
    objstore_resp_free(&resp);
    if (r < 0 || !upload_id[0] || strlen(upload_id) >= sizeof upload_id - 1) {
        objstore_err_set(err, -EPROTO, 200, "", "multipart: no UploadId in the answer");
        return -EPROTO;
    }
    s->stats.multipart_uploads++;
    char *eid = objstore_encode(upload_id, false);
    /* <Part><PartNumber>N</PartNumber><ETag>...</ETag></Part> for each part. */
    size_t xcap = 128 + nparts * (64 + 2 * 128);
    char *xml = malloc(xcap);
    if (!eid || !xml) {
        r = -ENOMEM;
        goto fail;
    }
    size_t xl = (size_t)snprintf(xml, xcap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts; i++) {
        char q[1024];
        size_t off = i * s->part_size;
        size_t pl = len - off < s->part_size ? len - off : s->part_size;
        snprintf(q, sizeof q, "partNumber=%zu&uploadId=%s", i + 1, eid);
        objstore_req_t part = {.method = "PUT",
                               .key = key,
                               .query = q,
                               .body = (const char *)data + off,
                               .body_len = pl};
        r = objstore_request(s, &part, &resp, err);
        if (r < 0)
            goto fail;
        if (!resp.etag[0] || strpbrk(resp.etag, "<&")) {
            objstore_resp_free(&resp);
            objstore_err_set(err, -EPROTO, 200, "", "multipart: a part answer without an ETag");
            r = -EPROTO;
            goto fail;
        }
        xl += (size_t)snprintf(xml + xl, xcap - xl,
                               "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                               resp.etag);
        objstore_resp_free(&resp);
    }
    xl += (size_t)snprintf(xml + xl, xcap - xl, "</CompleteMultipartUpload>");
    char q[1024];
    snprintf(q, sizeof q, "uploadId=%s", eid);
    objstore_req_t done = {.method = "POST", .key = key, .query = q, .body = xml, .body_len = xl};
    r = objstore_request(s, &done, &resp, err);
    if (r < 0)
        goto fail;
    /* S3 may answer 200 and still fail the completion, with an <Error> body. */
    if (resp.body && strstr(resp.body, "<Error>")) {
        char code[64] = "", msg[256] = "";
        kopt_objstore_xml_text(resp.body, resp.len, "Code", code, sizeof code);
        kopt_objstore_xml_text(resp.body, resp.len, "Message", msg, sizeof msg);
        objstore_err_set(err, -EREMOTEIO, 200, code, msg[0] ? msg : "multipart completion failed");
        objstore_resp_free(&resp);
        r = -EREMOTEIO;
        goto fail;
    }
    objstore_resp_free(&resp);
    free(xml);
    free(eid);
    return 0;

fail:
    if (eid)
        abort_upload(s, key, eid);
    free(xml);
    free(eid);
    return r;
}
