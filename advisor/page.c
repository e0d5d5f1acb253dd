/* ListRecommendations pages without a response message: each entry's BASIC
 * view is encoded once when its snapshot is built (adv_entry_encode), and a
 * page is those bytes spliced into the frame of a ListRecommendationsResponse,
 * as proto3 JSON for the gateway or protobuf for gRPC. The output is byte for
 * byte what kopt_pbjson_encode and protobuf_c_message_pack give for the same
 * message (tests/unit/test_advisor_page.c holds both to it). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "advisor.h"

void adv_recommendation_basic(const Kopt__V1__Recommendation *rec, Kopt__V1__Recommendation *out,
                              Kopt__V1__ContainerRecommendation *containers,
                              Kopt__V1__ContainerRecommendation **ptrs)
{
    *out = *rec;
    for (size_t i = 0; i < rec->n_containers; i++) {
        Kopt__V1__ContainerRecommendation *c = &containers[i];

        *c = *rec->containers[i];
        c->explanation = (char *)protobuf_c_empty_string;
        c->cpu_request_percentile = 0;
        c->memory_request_percentile = 0;
        c->cpu_usage = NULL;
        c->memory_usage = NULL;
        c->oom_kills = 0;
        c->cpu_throttled_seconds = 0;
        c->bounds = NULL;
        c->replayed_risk = NULL;
        c->backtest = NULL;
        ptrs[i] = c;
    }
    out->containers = ptrs;
}

static int pack(const ProtobufCMessage *m, adv_bytes_t *b)
{
    b->len = protobuf_c_message_get_packed_size(m);
    b->data = malloc(b->len ? b->len : 1);
    if (!b->data)
        return -ENOMEM;
    protobuf_c_message_pack(m, (uint8_t *)b->data);
    return 0;
}

int adv_entry_encode(adv_entry_t *e)
{
    size_t n = e->rec->n_containers;
    Kopt__V1__ContainerRecommendation *cs = calloc(n + 1, sizeof(*cs));
    Kopt__V1__ContainerRecommendation **ps = calloc(n + 1, sizeof(*ps));
    Kopt__V1__Recommendation basic;
    int r = -ENOMEM;

    if (cs && ps) {
        adv_recommendation_basic(e->rec, &basic, cs, ps);
        r = kopt_pbjson_encode(&basic.base, &e->basic_json.data, &e->basic_json.len);
        if (r == 0)
            r = pack(&basic.base, &e->basic_pb);
    }
    free(cs);
    free(ps);
    return r;
}

/* ---- the page's items ------------------------------------------------------- */

/* Each item's bytes: the cached BASIC view, or the FULL one made now. */
typedef struct {
    adv_bytes_t *v;
    bool *owned;
    size_t total;
} items_t;

static void items_free(items_t *it, size_t n)
{
    for (size_t i = 0; it->v && it->owned && i < n; i++)
        if (it->owned[i])
            free(it->v[i].data);
    free(it->v);
    free(it->owned);
}

static int items(const adv_page_t *p, bool json, items_t *it)
{
    int r = 0;

    it->total = 0;
    it->v = calloc(p->n + 1, sizeof(*it->v));
    it->owned = calloc(p->n + 1, sizeof(*it->owned));
    if (!it->v || !it->owned)
        return -ENOMEM;
    for (size_t i = 0; i < p->n && r == 0; i++) {
        const adv_entry_t *e = p->items[i];

        if (!p->full) {
            it->v[i] = json ? e->basic_json : e->basic_pb;
        } else if (json) {
            r = kopt_pbjson_encode(&e->rec->base, &it->v[i].data, &it->v[i].len);
            it->owned[i] = r == 0;
        } else {
            r = pack(&e->rec->base, &it->v[i]);
            it->owned[i] = r == 0;
        }
        it->total += it->v[i].len;
    }
    return r;
}

/* ---- proto3 JSON ------------------------------------------------------------ */

/* {"recommendations":[...],"nextPageToken":"...","totalSize":N}, each member
 * left out at its default, in field number order (as pbjson writes them).
 * A page token is hex digits and a dot: nothing in it needs escaping. */
int adv_page_json(const adv_page_t *p, char **out, size_t *len)
{
    static const char items_key[] = "\"recommendations\":[";
    static const char token_key[] = "\"nextPageToken\":\"";
    static const char total_key[] = "\"totalSize\":";
    const char *token = p->next_page_token ? p->next_page_token : "";
    size_t tlen = strlen(token), cap, o = 0;
    char total[16] = "";
    items_t it = {0};
    char *s;
    int r;

    for (const char *c = token; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            return -EINVAL;
    r = items(p, true, &it);
    if (r < 0) {
        items_free(&it, p->n);
        return r;
    }
    if (p->total_size)
        snprintf(total, sizeof(total), "%" PRIu32, p->total_size);
    cap = 2 + sizeof(items_key) + it.total + p->n + 1 + sizeof(token_key) + tlen + 2 +
          sizeof(total_key) + strlen(total) + 1;
    s = malloc(cap);
    if (!s) {
        items_free(&it, p->n);
        return -ENOMEM;
    }
#define PUT(src, n)                                                                                \
    do {                                                                                           \
        memcpy(s + o, (src), (n));                                                                 \
        o += (n);                                                                                  \
    } while (0)
    s[o++] = '{';
    if (p->n) {
        PUT(items_key, sizeof(items_key) - 1);
        for (size_t i = 0; i < p->n; i++) {
            if (i)
                s[o++] = ',';
            PUT(it.v[i].data, it.v[i].len);
        }
        s[o++] = ']';
    }
    if (tlen) {
        if (o > 1)
            s[o++] = ',';
        PUT(token_key, sizeof(token_key) - 1);
        PUT(token, tlen);
        s[o++] = '"';
    }
    if (*total) {
        if (o > 1)
            s[o++] = ',';
        PUT(total_key, sizeof(total_key) - 1);
        PUT(total, strlen(total));
    }
    s[o++] = '}';
#undef PUT
    s[o] = '\0';
    items_free(&it, p->n);
    *out = s;
    *len = o;
    return 0;
}

/* ---- protobuf ---------------------------------------------------------------- */

static size_t varint(uint8_t *b, uint64_t v)
{
    size_t n = 0;

    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* Field 1 (repeated Recommendation, length-delimited: tag 0x0a) per item,
 * field 2 (string: 0x12), field 3 (uint32 varint: 0x18); proto3 leaves the
 * empty string and zero out. */
int adv_page_pb(const adv_page_t *p, uint8_t **out, size_t *len)
{
    const char *token = p->next_page_token ? p->next_page_token : "";
    size_t tlen = strlen(token), o = 0;
    items_t it = {0};
    uint8_t *b;
    int r = items(p, false, &it);

    if (r < 0) {
        items_free(&it, p->n);
        return r;
    }
    b = malloc(it.total + 11 * (p->n + 2) + tlen + 1);
    if (!b) {
        items_free(&it, p->n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->n; i++) {
        b[o++] = 0x0a;
        o += varint(b + o, it.v[i].len);
        memcpy(b + o, it.v[i].data, it.v[i].len);
        o += it.v[i].len;
    }
    if (tlen) {
        b[o++] = 0x12;
        o += varint(b + o, tlen);
        memcpy(b + o, token, tlen);
        o += tlen;
    }
    if (p->total_size) {
        b[o++] = 0x18;
        o += varint(b + o, p->total_size);
    }
    items_free(&it, p->n);
    *out = b;
    *len = o;
    return 0;
}
