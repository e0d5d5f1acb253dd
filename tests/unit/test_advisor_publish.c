/* advisor/publish_kv.c and publish_headers.c: KV keys escape every byte but
 * A-Z a-z 0-9 - _ as =HH so a key splits back at its dots, refuse empty
 * parts and short buffers; a message carries the contract's headers and its
 * payload decodes in the chosen encoding. No server: the integration test
 * advisor_jetstream covers the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kopt/pbjson.h>

#include "publish_contract.h"

static void key_parts_are_escaped(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(adv_kv_key_part("web-1_a", out, sizeof(out)), 0);
    assert_string_equal(out, "web-1_a");
    assert_int_equal(adv_kv_key_part("api.v1", out, sizeof(out)), 0);
    assert_string_equal(out, "api=2Ev1");
    assert_int_equal(adv_kv_key_part("a b*>=\xc3\xa9", out, sizeof(out)), 0);
    assert_string_equal(out, "a=20b=2A=3E=3D=C3=A9");
    assert_int_equal(adv_kv_key_part("", out, sizeof(out)), -EINVAL);
    /* Exactly fits ("abc" + NUL), then one short; an escape never half-written. */
    assert_int_equal(adv_kv_key_part("abc", out, 4), 0);
    assert_int_equal(adv_kv_key_part("abcd", out, 4), -E2BIG);
    assert_int_equal(adv_kv_key_part("a.", out, 4), -E2BIG);
    assert_int_equal(adv_kv_key_part("a.", out, 5), 0);
    assert_string_equal(out, "a=2E");
}

static void workload_keys_have_four_parts(void **state)
{
    Kopt__V1__WorkloadRef w = KOPT__V1__WORKLOAD_REF__INIT;
    char out[128];

    (void)state;
    w.cluster = "edge.eu";
    w.namespace_ = "default";
    w.name = "api.v1";
    assert_int_equal(adv_kv_key(&w, "Deployment", out, sizeof(out)), 0);
    assert_string_equal(out, "edge=2Eeu.default.Deployment.api=2Ev1");
    assert_int_equal(adv_kv_key(&w, "", out, sizeof(out)), -EINVAL);
    assert_int_equal(adv_kv_key(&w, "Deployment", out, 20), -E2BIG);
    w.name = "";
    assert_int_equal(adv_kv_key(&w, "Deployment", out, sizeof(out)), -EINVAL);
}

static void messages_say_what_they_hold(void **state)
{
    Kopt__V1__AnalysisCompleted m = KOPT__V1__ANALYSIS_COMPLETED__INIT;
    static const int encodings[] = {ADV_ENCODING_PROTOBUF, ADV_ENCODING_JSON};

    (void)state;
    m.analysis_id = "an-1";
    m.cluster = "local";
    m.recommendation_count = 7;
    for (size_t i = 0; i < 2; i++) {
        int enc = encodings[i];
        natsMsg *msg = NULL;
        const char *v = NULL;
        char *data = NULL, err[128];
        size_t len = 0;
        ProtobufCMessage *back = NULL;

        assert_int_equal(adv_publish_encode(&m.base, enc, &data, &len), 0);
        assert_int_equal(adv_publish_message(&msg, "kopt.recommendations.local._completed", data,
                                             len, enc, "kopt.v1.AnalysisCompleted", "an-1", "id-1"),
                         NATS_OK);
        assert_int_equal(natsMsgHeader_Get(msg, "Content-Type", &v), NATS_OK);
        assert_string_equal(v,
                            enc == ADV_ENCODING_JSON ? "application/json" : "application/protobuf");
        assert_int_equal(natsMsgHeader_Get(msg, "Kopt-Type", &v), NATS_OK);
        assert_string_equal(v, "kopt.v1.AnalysisCompleted");
        assert_int_equal(natsMsgHeader_Get(msg, "Kopt-Schema", &v), NATS_OK);
        assert_string_equal(v, "kopt.v1");
        assert_int_equal(natsMsgHeader_Get(msg, "Kopt-Analysis-Id", &v), NATS_OK);
        assert_string_equal(v, "an-1");
        assert_int_equal(natsMsgHeader_Get(msg, "Nats-Msg-Id", &v), NATS_OK);
        assert_string_equal(v, "id-1");
        if (enc == ADV_ENCODING_JSON)
            assert_int_equal(
                kopt_pbjson_decode(&kopt__v1__analysis_completed__descriptor, natsMsg_GetData(msg),
                                   (size_t)natsMsg_GetDataLength(msg), &back, err, sizeof(err)),
                0);
        else
            back = protobuf_c_message_unpack(&kopt__v1__analysis_completed__descriptor, NULL,
                                             (size_t)natsMsg_GetDataLength(msg),
                                             (const uint8_t *)natsMsg_GetData(msg));
        assert_non_null(back);
        assert_int_equal(((Kopt__V1__AnalysisCompleted *)back)->recommendation_count, 7);
        assert_string_equal(((Kopt__V1__AnalysisCompleted *)back)->cluster, "local");
        protobuf_c_message_free_unpacked(back, NULL);
        natsMsg_Destroy(msg);
        free(data);
    }
    /* The KV copy has no message id. */
    {
        natsMsg *msg = NULL;
        const char *v = NULL;

        assert_int_equal(adv_publish_message(&msg, "$KV.b.k", "x", 1, ADV_ENCODING_PROTOBUF,
                                             "kopt.v1.Recommendation", "an-1", NULL),
                         NATS_OK);
        assert_int_equal(natsMsgHeader_Get(msg, "Nats-Msg-Id", &v), NATS_NOT_FOUND);
        natsMsg_Destroy(msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_parts_are_escaped),
        cmocka_unit_test(workload_keys_have_four_parts),
        cmocka_unit_test(messages_say_what_they_hold),
    };
    int failed;

    /* natsMsg_Create needs the library opened, which a connection would do. */
    if (nats_Open(-1) != NATS_OK)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);

    nats_Close();
    return failed;
}
