/* Fuzz target: the advisor gateway's JSON decoding into two message types
 * (a nested one with maps and timestamps, and a request), then encoding
 * back. Must never crash, hang or leak, and what it writes must read back
 * to the same message: decoding the output and encoding again gives the
 * same bytes (numbers printed short must still round-trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "kopt/v1/advisor.pb-c.h"
#include "kopt/v1/metrics.pb-c.h"

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m;
    char err[256], *out;
    size_t len;

    if (kopt_pbjson_decode(d, (const char *)data, size, &m, err, sizeof(err)) < 0)
        return;
    if (kopt_pbjson_encode(m, &out, &len) == 0) {
        ProtobufCMessage *again;
        char *out2;
        size_t len2;

        if (kopt_pbjson_decode(d, out, len, &again, err, sizeof(err)) < 0)
            abort(); /* our own output refused */
        if (kopt_pbjson_encode(again, &out2, &len2) < 0 || len2 != len || memcmp(out, out2, len))
            abort(); /* not the same message */
        free(out2);
        protobuf_c_message_free_unpacked(again, NULL);
        free(out);
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(&kopt__v1__metric_batch__descriptor, data, size);
    one(&kopt__v1__list_recommendations_request__descriptor, data, size);
    return 0;
}
