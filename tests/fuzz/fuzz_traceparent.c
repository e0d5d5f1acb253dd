/* libFuzzer target for libkopt/trace_context.c: arbitrary bytes as a
 * traceparent value. An accepted value must write back to its first 55
 * bytes with version 00 and parse again to the same context; ids are never
 * all zero. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <kopt/trace.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zero[KOPT_TRACE_ID_LEN];
    char out[KOPT_TRACEPARENT_LEN + 1];
    kopt_trace_ctx_t c, again;

    if (kopt_traceparent_parse((const char *)data, size, &c) != 0)
        return 0;
    assert(size >= KOPT_TRACEPARENT_LEN);
    assert(memcmp(c.trace_id, zero, KOPT_TRACE_ID_LEN) != 0);
    assert(memcmp(c.span_id, zero, KOPT_SPAN_ID_LEN) != 0);
    kopt_traceparent_format(&c, out);
    assert(strlen(out) == KOPT_TRACEPARENT_LEN);
    /* Same ids and flags; the version may differ (we write 00). */
    assert(memcmp(out + 2, data + 2, KOPT_TRACEPARENT_LEN - 2) == 0);
    assert(kopt_traceparent_parse(out, strlen(out), &again) == 0);
    assert(memcmp(&c, &again, sizeof(c)) == 0);
    return 0;
}
