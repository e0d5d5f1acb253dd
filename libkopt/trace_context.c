/* W3C trace context: parsing and writing `traceparent`, random and
 * batch-derived ids, and the thread's current span for log lines. No I/O
 * apart from getrandom(2). See kopt/trace.h. */
#include <kopt/trace.h>

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

static _Thread_local const kopt_trace_ctx_t *current;

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case too: the spec allows lower-case hex only */
}

/* 2n hex digits into n bytes; -EINVAL on anything else. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int kopt_traceparent_parse(const char *s, size_t len, kopt_trace_ctx_t *out)
{
    uint8_t version;
    kopt_trace_ctx_t c;

    if (!s || len < KOPT_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (unhex(s, &version, 1) < 0 || version == 0xff)
        return -EINVAL;
    /* Version 00 is exactly 55 bytes; later versions may append "-...". */
    if ((version == 0 && len != KOPT_TRACEPARENT_LEN) ||
        (len > KOPT_TRACEPARENT_LEN && s[KOPT_TRACEPARENT_LEN] != '-'))
        return -EINVAL;
    if (unhex(s + 3, c.trace_id, KOPT_TRACE_ID_LEN) < 0 ||
        unhex(s + 36, c.span_id, KOPT_SPAN_ID_LEN) < 0 || unhex(s + 53, &c.flags, 1) < 0)
        return -EINVAL;
    if (all_zero(c.trace_id, KOPT_TRACE_ID_LEN) || all_zero(c.span_id, KOPT_SPAN_ID_LEN))
        return -EINVAL;
    *out = c;
    return 0;
}

void kopt_trace_hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

void kopt_traceparent_format(const kopt_trace_ctx_t *c, char *out)
{
    memcpy(out, "00-", 3);
    kopt_trace_hex(c->trace_id, KOPT_TRACE_ID_LEN, out + 3);
    out[35] = '-';
    kopt_trace_hex(c->span_id, KOPT_SPAN_ID_LEN, out + 36);
    out[52] = '-';
    kopt_trace_hex(&c->flags, 1, out + 53);
}

int kopt_trace_random_id(uint8_t *id, size_t n)
{
    do {
        size_t got = 0;

        while (got < n) {
            ssize_t r = getrandom(id + got, n - got, 0);

            if (r < 0 && errno != EINTR)
                return -errno;
            if (r > 0)
                got += (size_t)r;
        }
    } while (all_zero(id, n));
    return 0;
}

void kopt_trace_batch_ctx(const char *agent_id, uint64_t epoch, uint64_t seq, kopt_trace_ctx_t *out)
{
    uint8_t digest[EVP_MAX_MD_SIZE], num[16];
    const char *id = agent_id ? agent_id : "";
    unsigned int dlen = 0;
    EVP_MD_CTX *h = EVP_MD_CTX_new();

    /* Big-endian numbers, NUL after the id: no two identities share input. */
    for (int i = 0; i < 8; i++) {
        num[i] = (uint8_t)(epoch >> (56 - 8 * i));
        num[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    memset(digest, 0, sizeof(digest));
    if (h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1) {
        EVP_DigestUpdate(h, "kopt-batch", 11);
        EVP_DigestUpdate(h, id, strlen(id) + 1);
        EVP_DigestUpdate(h, num, sizeof(num));
        EVP_DigestFinal_ex(h, digest, &dlen);
    }
    EVP_MD_CTX_free(h);
    memcpy(out->trace_id, digest, KOPT_TRACE_ID_LEN);
    memcpy(out->span_id, digest + KOPT_TRACE_ID_LEN, KOPT_SPAN_ID_LEN);
    /* An all-zero id is invalid (and what a failed digest leaves). */
    if (all_zero(out->trace_id, KOPT_TRACE_ID_LEN))
        out->trace_id[15] = 1;
    if (all_zero(out->span_id, KOPT_SPAN_ID_LEN))
        out->span_id[7] = 1;
    out->flags = KOPT_TRACE_FLAG_SAMPLED;
}

const kopt_trace_ctx_t *kopt_trace_set_current(const kopt_trace_ctx_t *c)
{
    const kopt_trace_ctx_t *prev = current;

    current = c;
    return prev;
}

const kopt_trace_ctx_t *kopt_trace_current(void)
{
    return current;
}
