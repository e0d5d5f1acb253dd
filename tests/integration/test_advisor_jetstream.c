/* The JetStream contract for integrators (issue 17, docs/integrations.md),
 * against a real nats-server and clickhouse-server with the real
 * kopt-advisor: `analyze --once` in protobuf, then again with
 * --recommendations-encoding json. Every message carries Content-Type,
 * Kopt-Type, Kopt-Schema and Kopt-Analysis-Id and decodes in its encoding;
 * each cluster's AnalysisCompleted comes after that cluster's
 * recommendations and counts them; the KV bucket kopt_recommendations holds
 * each workload's latest (history 1) and equals what the API serves; and
 * tests/integration/jetstream_consumer.py, the Python example of
 * docs/integrations.md, consumes the same stream and bucket.
 *
 * usage: test_advisor_jetstream SRCDIR KOPT_ADVISOR PYTHON3 PY_CONSUMER [PROTO_INCLUDE_DIR...] */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kopt/pbjson.h>

#include "harness.h"
#include "kopt/v1/advisor.pb-c.h"

#define KEY "itest-key-0123456789"
#define ADV_PW "adv-pw-0123456789"
#define READER_PW "reader-pw-0123456789"
#define TEST_PW "test-pw-0123456789"

/* Exactly the permissions docs/integrations.md lists: the advisor's (its
 * own stream and bucket) and a read-only integrator's (the Python example).
 * The test's own C client may do anything. */
static const char nats_users[] =
    "authorization {\n"
    "  users = [\n"
    "    {user: kopt-advisor, password: \"" ADV_PW "\", permissions: {\n"
    "      publish: {allow: [\"kopt.recommendations.>\", \"$KV.kopt_recommendations.>\",\n"
    "        \"$JS.API.STREAM.INFO.KOPT_RECOMMENDATIONS\",\n"
    "        \"$JS.API.STREAM.CREATE.KOPT_RECOMMENDATIONS\",\n"
    "        \"$JS.API.STREAM.UPDATE.KOPT_RECOMMENDATIONS\",\n"
    "        \"$JS.API.STREAM.INFO.KV_kopt_recommendations\",\n"
    "        \"$JS.API.STREAM.CREATE.KV_kopt_recommendations\"]},\n"
    "      subscribe: {allow: [\"_INBOX.>\"]}}}\n"
    "    {user: integrator, password: \"" READER_PW "\", permissions: {\n"
    "      publish: {allow: [\"$JS.API.CONSUMER.CREATE.KOPT_RECOMMENDATIONS\",\n"
    "        \"$JS.API.CONSUMER.CREATE.KV_kopt_recommendations\",\n"
    "        \"$JS.API.STREAM.MSG.GET.KV_kopt_recommendations\"]},\n"
    "      subscribe: {allow: [\"_INBOX.>\"]}}}\n"
    "    {user: test, password: \"" TEST_PW "\"}\n"
    "  ]\n"
    "}\n";

static const char *src_dir, *advisor_exe, *python_exe, *consumer_py;
static char *const *proto_dirs;
static int n_proto_dirs;

static kopt_test_advisor_t w;

static struct {
    char analysis_pb[48], analysis_json[48]; /* the two runs' ids */
    char adv_pw[600];   /* kopt-advisor's password file (the advisor refuses one in a URL) */
    char test_url[128]; /* with the test user's password */
} runs;

/* One message read from the stream. */
typedef struct {
    char subject[256], content_type[64], type[64], schema[32], analysis[64];
    char *data;
    int len;
} got_t;

/* ---- helpers ------------------------------------------------------------ */

static int run_cmd(char *const argv[], char *const env[], char **out)
{
    char path[700];
    int rc;

    snprintf(path, sizeof(path), "%s/cmd.log", w.dir);
    rc = kopt_test_run_capture(argv, env, path, 120000, out);
    assert_true(rc >= 0);
    assert_non_null(*out);
    return rc;
}

/* GET with the API key; the status, the body in *out. */
static long api_get(const char *url, char **out)
{
    kopt_test_http_req_t q = {.url = url, .bearer = KEY, .timeout_ms = 30000};
    kopt_test_http_resp_t r;
    long status = kopt_test_http_call(&q, &r);

    *out = r.body;
    r.body = NULL;
    kopt_test_http_resp_free(&r);
    return status;
}

/* `kopt-advisor analyze --once` with `encoding`; its analysis id in `id`. */
static void analyze_once(const char *encoding, char *id, size_t idlen)
{
    char *argv[] = {(char *)advisor_exe,
                    "analyze",
                    "--once",
                    "--clickhouse-url",
                    w.ch->url,
                    "--nats-url",
                    w.nats->url,
                    "--nats-user",
                    "kopt-advisor",
                    "--nats-password-file",
                    runs.adv_pw,
                    "--recommendations-encoding",
                    (char *)encoding,
                    "--log-format",
                    "text",
                    NULL};
    char *out = NULL, *p;
    int rc = run_cmd(argv, NULL, &out);

    if (rc != 0)
        fail_msg("analyze --once (%s) exited %d: %s", encoding, rc, out);
    p = strstr(out, "analysis_id=");
    assert_non_null(p);
    p += strlen("analysis_id=");
    if (*p == '"')
        p++;
    snprintf(id, idlen, "%.*s", (int)strcspn(p, "\" \n"), p);
    fprintf(stderr, "analysis %s (%s)\n", id, encoding);
    free(out);
}

static void header(natsMsg *m, const char *name, char *out, size_t len)
{
    const char *v = NULL;

    out[0] = '\0';
    if (natsMsgHeader_Get(m, name, &v) == NATS_OK && v)
        snprintf(out, len, "%s", v);
}

/* Every message now in KOPT_RECOMMENDATIONS, in stream order. */
static got_t *read_stream(size_t *n)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    got_t *all = NULL;
    size_t cap = 0;

    *n = 0;
    assert_int_equal(natsConnection_ConnectTo(&nc, runs.test_url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions_Init(&so);
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Ordered = true;
    assert_int_equal(js_SubscribeSync(&sub, js, "kopt.recommendations.>", NULL, &so, &jerr),
                     NATS_OK);
    for (;;) {
        natsMsg *m = NULL;
        got_t *g;

        if (natsSubscription_NextMsg(&m, sub, 1500) != NATS_OK)
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            all = realloc(all, cap * sizeof(*all));
            assert_non_null(all);
        }
        g = &all[(*n)++];
        memset(g, 0, sizeof(*g));
        snprintf(g->subject, sizeof(g->subject), "%s", natsMsg_GetSubject(m));
        header(m, "Content-Type", g->content_type, sizeof(g->content_type));
        header(m, "Kopt-Type", g->type, sizeof(g->type));
        header(m, "Kopt-Schema", g->schema, sizeof(g->schema));
        header(m, "Kopt-Analysis-Id", g->analysis, sizeof(g->analysis));
        g->len = natsMsg_GetDataLength(m);
        g->data = malloc((size_t)g->len + 1);
        assert_non_null(g->data);
        memcpy(g->data, natsMsg_GetData(m), (size_t)g->len);
        g->data[g->len] = '\0';
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return all;
}

static void free_stream(got_t *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(all[i].data);
    free(all);
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, bool json, const char *data,
                                size_t len)
{
    ProtobufCMessage *m = NULL;
    char err[256];

    if (!json)
        return protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)data);
    if (kopt_pbjson_decode(d, data, len, &m, err, sizeof(err)) != 0)
        fail_msg("JSON %s does not decode: %s: %.*s", d->name, err, (int)len, data);
    return m;
}

/* The messages of analysis `id`: headers, encodings, and per cluster the
 * marker after its recommendations with their count. */
static void check_analysis(const char *id, bool json)
{
    static const struct {
        const char *cluster, *token;
        uint32_t want;
    } clusters[] = {{"local", "local", 3}, {"edge.eu", "edge_eu", 1}};
    size_t n;
    got_t *all = read_stream(&n);
    uint32_t seen[2] = {0}, markers[2] = {0};
    size_t rec_bytes = 0;

    for (size_t i = 0; i < n; i++) {
        got_t *g = &all[i];
        const char *ct = json ? "application/json" : "application/protobuf";

        if (strcmp(g->analysis, id) != 0)
            continue;
        assert_string_equal(g->content_type, ct);
        assert_string_equal(g->schema, "kopt.v1");
        for (size_t c = 0; c < 2; c++) {
            char prefix[128], marker[160];

            snprintf(prefix, sizeof(prefix), "kopt.recommendations.%s.", clusters[c].token);
            snprintf(marker, sizeof(marker), "%s_completed", prefix);
            if (strcmp(g->subject, marker) == 0) {
                Kopt__V1__AnalysisCompleted *m = (Kopt__V1__AnalysisCompleted *)decode(
                    &kopt__v1__analysis_completed__descriptor, json, g->data, (size_t)g->len);

                assert_non_null(m);
                assert_string_equal(g->type, "kopt.v1.AnalysisCompleted");
                assert_string_equal(m->analysis_id, id);
                assert_string_equal(m->cluster, clusters[c].cluster);
                /* After every recommendation of its cluster, and counting them. */
                assert_int_equal(m->recommendation_count, seen[c]);
                assert_int_equal(m->recommendation_count, clusters[c].want);
                assert_non_null(m->completed_at);
                assert_true(m->completed_at->seconds > 0);
                markers[c]++;
                protobuf_c_message_free_unpacked(&m->base, NULL);
            } else if (strncmp(g->subject, prefix, strlen(prefix)) == 0) {
                Kopt__V1__Recommendation *r = (Kopt__V1__Recommendation *)decode(
                    &kopt__v1__recommendation__descriptor, json, g->data, (size_t)g->len);

                assert_non_null(r);
                assert_string_equal(g->type, "kopt.v1.Recommendation");
                assert_string_equal(r->analysis_id, id);
                assert_string_equal(r->workload->cluster, clusters[c].cluster);
                assert_string_equal(g->subject + strlen(prefix), r->workload->namespace_);
                assert_true(r->n_containers > 0);
                assert_int_equal(markers[c], 0); /* none after the marker */
                seen[c]++;
                rec_bytes += (size_t)g->len;
                protobuf_c_message_free_unpacked(&r->base, NULL);
            }
        }
    }
    fprintf(stderr,
            "%s: %zu messages in the stream; local %u + marker, edge.eu %u + marker; "
            "%.0f bytes a recommendation (%s)\n",
            id, n, seen[0], seen[1],
            (double)rec_bytes / (seen[0] + seen[1] ? seen[0] + seen[1] : 1),
            json ? "json" : "protobuf");
    assert_int_equal(markers[0], 1);
    assert_int_equal(markers[1], 1);
    free_stream(all, n);
}

/* The value of `key` in kopt_recommendations (malloc'd), with its history. */
static char *kv_get(const char *key, int *len, int *history)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    kvEntryList hist = {0};
    char *v;

    assert_int_equal(natsConnection_ConnectTo(&nc, runs.test_url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, "kopt_recommendations"), NATS_OK);
    if (kvStore_Get(&e, kv, key) != NATS_OK)
        fail_msg("no KV key %s", key);
    *len = kvEntry_ValueLen(e);
    v = malloc((size_t)*len + 1);
    assert_non_null(v);
    memcpy(v, kvEntry_Value(e), (size_t)*len);
    v[*len] = '\0';
    assert_int_equal(kvStore_History(&hist, kv, key, NULL), NATS_OK);
    *history = hist.Count;
    kvEntryList_Destroy(&hist);
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return v;
}

static Kopt__V1__Recommendation *kv_recommendation(const char *key, bool json)
{
    int len, history;
    char *v = kv_get(key, &len, &history);
    Kopt__V1__Recommendation *r = (Kopt__V1__Recommendation *)decode(
        &kopt__v1__recommendation__descriptor, json, v, (size_t)len);

    assert_non_null(r);
    assert_int_equal(history, 1);
    free(v);
    return r;
}

/* ---- set-up ---------------------------------------------------------------- */

/* 24 hours of each, one container "main". */
static const kopt_test_seed_t seed[] = {
    {"local", "shop", "Deployment", "web", "main", 0.2, 200.0 * 1048576, 1.0, 1024.0 * 1048576, 0,
     0, 1, 0},
    {"local", "shop", "StatefulSet", "db", "main", 0.5, 600.0 * 1048576, 0.25, 512.0 * 1048576, 0,
     0, 1, 0},
    /* A DNS subdomain name: its '.' is escaped in the KV key. */
    {"local", "batch", "Deployment", "api.v1", "main", 0.1, 100.0 * 1048576, 0.1, 128.0 * 1048576,
     0, 0, 1, 0},
    {"edge.eu", "default", "Deployment", "api", "main", 0.1, 100.0 * 1048576, 0.1, 128.0 * 1048576,
     0, 0, 1, 0},
};

static int group_setup(void **state)
{
    kopt_test_nats_opts_t no = {.config_extra = nats_users};
    kopt_test_advisor_opts_t o = {.src_dir = src_dir,
                                  .advisor_exe = advisor_exe,
                                  .name = "advisor-js",
                                  .seed = seed,
                                  .n_seed = sizeof(seed) / sizeof(seed[0]),
                                  .hours = 24,
                                  .keys = KEY "\n",
                                  .nats = &no};
    int rc = kopt_test_advisor_setup(&w, &o);
    FILE *f;

    (void)state;
    if (rc == -ENOENT)
        return -1;
    assert_int_equal(rc, 0);
    snprintf(runs.test_url, sizeof(runs.test_url), "nats://test:" TEST_PW "@127.0.0.1:%d",
             w.nats->port);
    /* The advisor logs in as kopt-advisor. */
    snprintf(runs.adv_pw, sizeof(runs.adv_pw), "%s/nats-advisor.password", w.dir);
    f = fopen(runs.adv_pw, "w");
    assert_non_null(f);
    fputs(ADV_PW "\n", f);
    fclose(f);
    analyze_once("protobuf", runs.analysis_pb, sizeof(runs.analysis_pb));
    /* A second run a second later: analysis ids have a seconds part. */
    sleep(1);
    analyze_once("json", runs.analysis_json, sizeof(runs.analysis_json));
    assert_string_not_equal(runs.analysis_pb, runs.analysis_json);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return kopt_test_advisor_teardown(&w);
}

/* ---- tests ------------------------------------------------------------------- */

static void protobuf_messages_carry_headers_and_end_markers(void **state)
{
    (void)state;
    check_analysis(runs.analysis_pb, false);
}

static void json_messages_carry_headers_and_end_markers(void **state)
{
    (void)state;
    check_analysis(runs.analysis_json, true);
}

/* The bucket: keys escaped, history 1, the newest run's values (JSON now),
 * each cluster's marker under <cluster>._completed. */
static void kv_bucket_holds_the_latest_per_workload(void **state)
{
    static const char *const keys[] = {"local.shop.Deployment.web", "local.shop.StatefulSet.db",
                                       "local.batch.Deployment.api=2Ev1",
                                       "edge=2Eeu.default.Deployment.api"};
    int len, history;
    char *v;
    Kopt__V1__AnalysisCompleted *m;

    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        Kopt__V1__Recommendation *r = kv_recommendation(keys[i], true);

        assert_string_equal(r->analysis_id, runs.analysis_json);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    v = kv_get("edge=2Eeu._completed", &len, &history);
    m = (Kopt__V1__AnalysisCompleted *)decode(&kopt__v1__analysis_completed__descriptor, true, v,
                                              (size_t)len);
    assert_string_equal(m->analysis_id, runs.analysis_json);
    assert_string_equal(m->cluster, "edge.eu");
    assert_int_equal(m->recommendation_count, 1);
    assert_int_equal(history, 1);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    free(v);
}

/* What the KV holds is what the API serves: the server loads the newest
 * results from ClickHouse at start. */
static void kv_equals_what_the_api_serves(void **state)
{
    char url[256], *body = NULL, err[256];
    ProtobufCMessage *resp = NULL;
    Kopt__V1__Recommendation *api, *kv;

    (void)state;
    {
        const char *const login[] = {"--nats-user", "kopt-advisor", "--nats-password-file",
                                     runs.adv_pw, NULL};

        assert_int_equal(kopt_test_advisor_start(&w, login), 0);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/recommendations/local/shop/Deployment/web",
             w.http_port);
    assert_int_equal(api_get(url, &body), 200);
    if (kopt_pbjson_decode(&kopt__v1__get_recommendation_response__descriptor, body, strlen(body),
                           &resp, err, sizeof(err)) != 0)
        fail_msg("API answer does not decode: %s: %s", err, body);
    api = ((Kopt__V1__GetRecommendationResponse *)resp)->recommendation;
    kv = kv_recommendation("local.shop.Deployment.web", true);
    assert_string_equal(api->analysis_id, kv->analysis_id);
    assert_int_equal(api->n_containers, kv->n_containers);
    for (size_t i = 0; i < kv->n_containers; i++) {
        assert_string_equal(api->containers[i]->container, kv->containers[i]->container);
        assert_float_equal(api->containers[i]->recommended->cpu_request_cores,
                           kv->containers[i]->recommended->cpu_request_cores, 1e-9);
        assert_int_equal(api->containers[i]->recommended->memory_request_bytes,
                         kv->containers[i]->recommended->memory_request_bytes);
    }
    assert_float_equal(api->savings->monthly_cost, kv->savings->monthly_cost, 1e-6);
    fprintf(stderr, "API and KV agree on local/shop/web: analysis %s, cpu %.3f cores\n",
            kv->analysis_id, kv->containers[0]->recommended->cpu_request_cores);
    protobuf_c_message_free_unpacked(&kv->base, NULL);
    protobuf_c_message_free_unpacked(resp, NULL);
    free(body);
}

/* The Python example of docs/integrations.md, against the same servers. */
static void python_consumer_example_works(void **state)
{
    char *argv[64], *out = NULL;
    char *env[] = {"NATS_USER=integrator", "NATS_PASSWORD=" READER_PW, NULL};
    int n = 0, rc;

    (void)state;
    argv[n++] = (char *)python_exe;
    argv[n++] = (char *)consumer_py;
    argv[n++] = "--server";
    argv[n++] = w.nats->url;
    argv[n++] = "--cluster";
    argv[n++] = "local";
    argv[n++] = "--check";
    argv[n++] = "3";
    for (int i = 0; i < n_proto_dirs && n < 60; i++) {
        argv[n++] = "-I";
        argv[n++] = proto_dirs[i];
    }
    argv[n] = NULL;
    rc = run_cmd(argv, env, &out);
    fprintf(stderr, "python consumer exited %d:\n%s", rc, out);
    assert_int_equal(rc, 0);
    /* Both runs seen complete, each with its own encoding. */
    assert_non_null(strstr(out, runs.analysis_pb));
    assert_non_null(strstr(out, runs.analysis_json));
    assert_non_null(strstr(out, "(application/protobuf)"));
    assert_non_null(strstr(out, "(application/json)"));
    free(out);
    /* Its check can fail: the bucket does not hold 4 workloads of local. */
    argv[7] = "4";
    rc = run_cmd(argv, env, &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "FAIL: bucket: 3 workloads of the latest analysis, want 4"));
    free(out);
    /* Without credentials the server refuses it. */
    rc = run_cmd(argv, NULL, &out);
    fprintf(stderr, "python consumer without credentials exited %d: %s", rc, out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "Authorization Violation"));
    free(out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protobuf_messages_carry_headers_and_end_markers),
        cmocka_unit_test(json_messages_carry_headers_and_end_markers),
        cmocka_unit_test(kv_bucket_holds_the_latest_per_workload),
        cmocka_unit_test(kv_equals_what_the_api_serves),
        cmocka_unit_test(python_consumer_example_works),
    };
    double t0 = kopt_test_now();
    int failed;

    if (argc < 5) {
        fprintf(stderr,
                "usage: %s SRCDIR KOPT_ADVISOR PYTHON3 PY_CONSUMER [PROTO_INCLUDE_DIR...]\n",
                argv[0]);
        return 2;
    }
    src_dir = argv[1];
    advisor_exe = argv[2];
    python_exe = argv[3];
    consumer_py = argv[4];
    proto_dirs = argv + 5;
    n_proto_dirs = argc - 5;
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    nats_Close();
    fprintf(stderr, "timing: test_advisor_jetstream %.3f s\n", kopt_test_now() - t0);
    return failed;
}
