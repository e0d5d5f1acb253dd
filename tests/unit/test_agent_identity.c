/* The agent's node name and agent id (agent/identity.c): which setting wins,
 * the certificate's id made unique per node, and the two refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "identity.h"

#define CERT "spiffe://kopt/cluster/prod/agent/daemonset"

static void settings_win(void **state)
{
    agent_identity_in_t in = {.node = "Worker-1.Example",
                              .hostname = "ignored",
                              .agent_id = "agent-7",
                              .cert_uri = CERT,
                              .cluster = "prod"};
    agent_identity_t id;

    (void)state;
    assert_int_equal(agent_identify(&in, &id), 0);
    assert_string_equal(id.node, "worker-1.example"); /* node names are lower case */
    assert_string_equal(id.agent_id, "agent-7");      /* over the certificate's */
}

static void host_name_then_localhost(void **state)
{
    agent_identity_in_t in = {.hostname = "BuildBox", .cluster = "dev"};
    agent_identity_t id;

    (void)state;
    assert_int_equal(agent_identify(&in, &id), 0);
    assert_string_equal(id.node, "buildbox");
    assert_string_equal(id.agent_id, "dev-agent"); /* plaintext: no certificate */
    in.hostname = NULL;                            /* gethostname() failed */
    assert_int_equal(agent_identify(&in, &id), 0);
    assert_string_equal(id.node, "localhost");
}

static void certificate_id_gets_the_node(void **state)
{
    agent_identity_in_t in = {.node = "n1", .cert_uri = CERT, .cluster = "prod"};
    agent_identity_t id;

    (void)state;
    assert_int_equal(agent_identify(&in, &id), 0);
    assert_string_equal(id.agent_id, "daemonset.n1");
    /* A certificate without a URI SAN ("" in the TLS material) is no id. */
    in.cert_uri = "";
    assert_int_equal(agent_identify(&in, &id), 0);
    assert_string_equal(id.agent_id, "dev-agent");
}

static void long_names_are_cut_to_fit(void **state)
{
    char node[201], uri[300];
    agent_identity_in_t in = {.node = node, .cert_uri = uri, .cluster = "prod"};
    agent_identity_t id;

    (void)state;
    /* Four labels of 49 (a label has at most 63): 199 characters. */
    memset(node, 'n', 199);
    node[49] = node[99] = node[149] = '.';
    node[199] = '\0';
    snprintf(uri, sizeof(uri), "spiffe://kopt/cluster/prod/agent/%0200d", 0);
    assert_int_equal(agent_identify(&in, &id), 0);
    /* 120 characters of each, and the dot: 241, under the 253 of a name. */
    assert_int_equal(strlen(id.agent_id), 241);
    assert_int_equal(id.agent_id[120], '.');
    assert_int_equal(id.agent_id[121], 'n');
}

static void bad_node_name(void **state)
{
    agent_identity_in_t in = {.node = "under_score", .cluster = "prod"};
    agent_identity_t id;

    (void)state;
    assert_int_equal(agent_identify(&in, &id), -EINVAL);
    assert_string_equal(id.node, "under_score"); /* for the log line */
    assert_non_null(id.rule);
}

static void certificate_for_another_cluster(void **state)
{
    agent_identity_in_t in = {.node = "n1", .cert_uri = CERT, .cluster = "staging"};
    agent_identity_t id;

    (void)state;
    assert_int_equal(agent_identify(&in, &id), -EPERM);
    assert_string_equal(id.cert.cluster, "prod");
    /* Even with --agent-id: ingest checks the certificate's cluster. */
    in.agent_id = "agent-7";
    assert_int_equal(agent_identify(&in, &id), -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings_win),
        cmocka_unit_test(host_name_then_localhost),
        cmocka_unit_test(certificate_id_gets_the_node),
        cmocka_unit_test(long_names_are_cut_to_fit),
        cmocka_unit_test(bad_node_name),
        cmocka_unit_test(certificate_for_another_cluster),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
