/* What makes a published message self-describing: the encoding chosen by
 * --recommendations-encoding (protobuf, or the proto3 JSON mapping the HTTP
 * gateway speaks) and the headers naming type, schema and analysis, so a
 * consumer needs no out-of-band knowledge of the stream. */
#include <errno.h>
#include <stdlib.h>

#include <kopt/pbjson.h>

#include "publish_contract.h"

int adv_publish_encode(const ProtobufCMessage *m, int encoding, char **out, size_t *len)
{
    size_t n;

    if (encoding == ADV_ENCODING_JSON)
        return kopt_pbjson_encode(m, out, len);
    n = protobuf_c_message_get_packed_size(m);
    *out = malloc(n ? n : 1);
    if (!*out)
        return -ENOMEM;
    *len = protobuf_c_message_pack(m, (uint8_t *)*out);
    return 0;
}

natsStatus adv_publish_message(natsMsg **out, const char *subject, const char *data, size_t len,
                               int encoding, const char *type, const char *analysis_id,
                               const char *msg_id)
{
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, data, (int)len);

    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Content-Type",
                              encoding == ADV_ENCODING_JSON ? "application/json"
                                                            : "application/protobuf");
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Kopt-Type", type);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Kopt-Schema", ADV_SCHEMA);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Kopt-Analysis-Id", analysis_id);
    if (s == NATS_OK && msg_id)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        msg = NULL;
    }
    *out = msg;
    return s;
}
