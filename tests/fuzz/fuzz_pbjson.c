/* Fuzz target: the advisor gateway's JSON decoding into two message types
 * (a nested one with maps and timestamps, and a request), then encoding
 * back. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <kopt/pbjson.h>

#include "kopt/v1/advisor.pb-c.h"
#include "kopt/v1/metrics.pb-c.h"

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m;
    char err[256], *out;

    if (kopt_pbjson_decode(d, (const char *)data, size, &m, err, sizeof(err)) < 0)
        return;
    if (kopt_pbjson_encode(m, &out, NULL) == 0)
        free(out);
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(&kopt__v1__metric_batch__descriptor, data, size);
    one(&kopt__v1__list_recommendations_request__descriptor, data, size);
    return 0;
}
