/* kopt-pbjson-bench: the gateway's JSON for one ListRecommendations page of
 * 50 workloads. kopt_pbjson_encode (libkopt/pbjson_encode.c: a jansson tree,
 * then pbjson_write.c with shortest round-trip doubles) of the whole
 * response in the FULL view, and adv_page_json (advisor/page.c), which
 * splices each entry's cached BASIC JSON and encodes FULL per call. The
 * json_dumps-based writer it replaced is no longer reachable, so the
 * baseline is protobuf-c packing the same message. Also one double alone:
 * kopt_pbjson_format_double against snprintf "%.17g".
 * docs/performance.md, "Gateway JSON". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <kopt/pbjson.h>

#include "advisor.h"
#include "bench_recs.h"
#include "microbench.h"

#define PAGE 50
#define N_DOUBLES 64

static const char usage[] = "Usage: kopt-pbjson-bench [--quick] [--seconds S]\n"
                            "Times the JSON of a 50-workload ListRecommendations page.\n";

typedef struct {
    Kopt__V1__ListRecommendationsResponse resp;
    adv_page_t basic, full;
    size_t bytes; /* of the last output */
    double doubles[N_DOUBLES];
} ctx_t;

static int pack(void *arg, uint64_t i)
{
    ctx_t *c = arg;
    size_t len = protobuf_c_message_get_packed_size(&c->resp.base);
    uint8_t *buf = malloc(len ? len : 1);

    (void)i;
    if (!buf)
        return -ENOMEM;
    c->bytes = protobuf_c_message_pack(&c->resp.base, buf);
    free(buf);
    return 0;
}

static int encode(void *arg, uint64_t i)
{
    ctx_t *c = arg;
    char *out = NULL;
    int r = kopt_pbjson_encode(&c->resp.base, &out, &c->bytes);

    (void)i;
    free(out);
    return r;
}

static int page_json(ctx_t *c, const adv_page_t *p)
{
    char *out = NULL;
    int r = adv_page_json(p, &out, &c->bytes);

    free(out);
    return r;
}

static int page_basic(void *arg, uint64_t i)
{
    (void)i;
    return page_json(arg, &((ctx_t *)arg)->basic);
}

static int page_full(void *arg, uint64_t i)
{
    (void)i;
    return page_json(arg, &((ctx_t *)arg)->full);
}

static int page_pb(void *arg, uint64_t i)
{
    ctx_t *c = arg;
    uint8_t *out = NULL;
    int r = adv_page_pb(&c->basic, &out, &c->bytes);

    (void)i;
    free(out);
    return r;
}

/* Per double, so the figure is comparable to the snprintf row. */
static int shortest(void *arg, uint64_t i)
{
    ctx_t *c = arg;
    char buf[32];

    return kopt_pbjson_format_double(c->doubles[i % N_DOUBLES], buf, sizeof(buf)) < 0 ? -EINVAL : 0;
}

static int g17(void *arg, uint64_t i)
{
    ctx_t *c = arg;
    char buf[32];

    return snprintf(buf, sizeof(buf), "%.17g", c->doubles[i % N_DOUBLES]) < 0 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        mb_fn fn;
        uint64_t round;
    } cases[] = {
        {"protobuf pack, FULL (baseline)", pack, 10},
        {"kopt_pbjson_encode, FULL", encode, 1},
        {"adv_page_json, BASIC (cached)", page_basic, 10},
        {"adv_page_json, FULL", page_full, 1},
        {"adv_page_pb, BASIC (cached)", page_pb, 10},
        {"one double: format_double", shortest, 1000},
        {"one double: snprintf %.17g", g17, 1000},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    const adv_entry_t *items[PAGE];
    Kopt__V1__Recommendation *recs[PAGE];
    mb_result_t out[N];
    ctx_t c;
    adv_results_t *res;
    double seconds;
    int quick;

    if (mb_args(argc, argv, usage, &seconds, &quick) < 0)
        return 2;
    if (!(res = bench_results(PAGE * 4))) {
        fprintf(stderr, "kopt-pbjson-bench: out of memory\n");
        return 1;
    }
    kopt__v1__list_recommendations_response__init(&c.resp);
    for (size_t i = 0; i < PAGE; i++) {
        items[i] = res->by_savings[i];
        recs[i] = items[i]->rec;
    }
    c.resp.n_recommendations = PAGE;
    c.resp.recommendations = recs;
    c.resp.next_page_token = "bmV4dC1wYWdlLXRva2VuLTUw";
    c.resp.total_size = (uint32_t)res->n;
    c.basic = (adv_page_t){items, PAGE, false, c.resp.next_page_token, c.resp.total_size};
    c.full = c.basic;
    c.full.full = true;
    for (size_t i = 0; i < N_DOUBLES; i++)
        c.doubles[i] = i % 2 ? recs[i % PAGE]->containers[0]->recommended->cpu_request_cores
                             : recs[i % PAGE]->savings->monthly_cost;
    for (size_t i = 0; i < N; i++) {
        if (mb_run(cases[i].name, cases[i].fn, &c, cases[i].round, seconds, &out[i]) < 0) {
            adv_results_release(res);
            return 1;
        }
        if (c.bytes && i < 5) {
            out[i].per_call_items = (double)c.bytes;
            out[i].item = "B";
            printf("%-36s %zu bytes per page\n", cases[i].name, c.bytes);
        }
        c.bytes = 0;
    }
    mb_print("kopt-pbjson-bench: one ListRecommendations page of 50 workloads", out, 5, 0);
    mb_print("kopt-pbjson-bench: one double (the engine's values)", out + 5, 2, 1);
    adv_results_release(res);
    return 0;
}
