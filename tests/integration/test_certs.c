/* scripts/certs checked with the OpenSSL C API, as a TLS peer would: the agent
 * and service certs chain to ca.pem for client auth and carry their spiffe
 * URIs, the rogue client does not chain, the server cert matches 127.0.0.1 and
 * the kopt service names, keys are private, and re-running changes nothing.
 * argv[1] is the source root (meson passes it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static const char *source_root = ".";
static char *dir;

static const char *path(const char *name)
{
    static char buf[1024];

    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static int run_certs(const char *args)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' '%s' %s >/dev/null", source_root, dir, args);
    return system(cmd);
}

static X509 *load_cert(const char *name)
{
    FILE *f = fopen(path(name), "r");
    X509 *x;

    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static char *read_all(const char *name)
{
    FILE *f = fopen(path(name), "r");
    char *buf = calloc(1, 65536);

    assert_non_null(f);
    assert_non_null(buf);
    assert_true(fread(buf, 1, 65535, f) > 0);
    fclose(f);
    return buf;
}

/* X509_V_OK or the verify error of name against ca_name for purpose. */
static int verify(const char *ca_name, const char *name, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *ca = load_cert(ca_name), *leaf = load_cert(name);
    int err;

    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    return err;
}

/* 1 if the cert has exactly this URI SAN among its names. */
static int has_uri(const char *name, const char *uri)
{
    X509 *x = load_cert(name);
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;

    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        if (g->type == GEN_URI &&
            strcmp((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), uri) == 0)
            found = 1;
    }
    GENERAL_NAMES_free(names);
    X509_free(x);
    return found;
}

static int setup(void **state)
{
    (void)state;
    dir = kopt_test_tmpdir("kopt-certs");
    if (!dir || run_certs("") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (dir)
        kopt_test_rmtree(dir);
    free(dir);
    dir = NULL;
    return 0;
}

static void agent_cert_chains_and_names_its_cluster(void **state)
{
    (void)state;
    assert_int_equal(verify("ca.pem", "agent-local.pem", X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_true(has_uri("agent-local.pem", "spiffe://kopt/cluster/local/agent/dev-agent"));
    /* A client cert is no server cert. */
    assert_int_not_equal(verify("ca.pem", "agent-local.pem", X509_PURPOSE_SSL_SERVER), X509_V_OK);
    assert_int_equal(verify("ca.pem", "client.pem", X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_true(has_uri("client.pem", "spiffe://kopt/service/kopt-cli"));
}

static void rogue_client_does_not_verify(void **state)
{
    (void)state;
    assert_int_equal(verify("ca.pem", "rogue-client.pem", X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    /* It claims the same identity; only the issuer gives it away. */
    assert_true(has_uri("rogue-client.pem", "spiffe://kopt/cluster/local/agent/dev-agent"));
    assert_int_equal(verify("rogue-ca.pem", "rogue-client.pem", X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);
}

static void server_cert_matches_loopback_and_service_names(void **state)
{
    X509 *x;

    (void)state;
    assert_int_equal(verify("ca.pem", "server.pem", X509_PURPOSE_SSL_SERVER), X509_V_OK);
    x = load_cert("server.pem");
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "kopt-ingest", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "kopt-advisor", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "ingest.kopt.svc", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "ingest.kopt.svc.cluster.local", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "example.com", 0, 0, NULL), 0);
    X509_free(x);
}

static void keys_are_private(void **state)
{
    static const char *keys[] = {"ca-key.pem",     "server-key.pem",   "agent-local-key.pem",
                                 "client-key.pem", "rogue-ca-key.pem", "rogue-client-key.pem"};
    struct stat st;

    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_int_equal(stat(path(keys[i]), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
}

static void rerun_keeps_ca_and_adds_clusters(void **state)
{
    char *ca = read_all("ca.pem"), *ca_key = read_all("ca-key.pem");
    char *server = read_all("server.pem"), *again;

    (void)state;
    assert_int_equal(run_certs("--cluster local --cluster prod-eu --agent-id node-7"), 0);
    again = read_all("ca.pem");
    assert_string_equal(again, ca);
    free(again);
    again = read_all("ca-key.pem");
    assert_string_equal(again, ca_key);
    free(again);
    again = read_all("server.pem");
    assert_string_equal(again, server); /* still valid, so kept */
    free(again);
    assert_true(has_uri("agent-prod-eu.pem", "spiffe://kopt/cluster/prod-eu/agent/node-7"));
    assert_true(has_uri("agent-local.pem", "spiffe://kopt/cluster/local/agent/node-7"));
    assert_int_equal(verify("ca.pem", "agent-prod-eu.pem", X509_PURPOSE_SSL_CLIENT), X509_V_OK);

    /* --force makes a new CA, and every leaf follows it. */
    assert_int_equal(run_certs("--force"), 0);
    again = read_all("ca.pem");
    assert_string_not_equal(again, ca);
    free(again);
    assert_int_equal(verify("ca.pem", "server.pem", X509_PURPOSE_SSL_SERVER), X509_V_OK);
    assert_int_equal(verify("ca.pem", "agent-local.pem", X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_true(has_uri("agent-local.pem", "spiffe://kopt/cluster/local/agent/dev-agent"));
    free(ca);
    free(ca_key);
    free(server);
}

static void bad_usage_exits_2(void **state)
{
    char cmd[1024];

    (void)state;
    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' 2>/dev/null", source_root);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    assert_int_equal(WEXITSTATUS(run_certs("--cluster 'bad/name' 2>/dev/null")), 2);
    snprintf(cmd, sizeof(cmd), "'%s/scripts/certs' --help | grep -q spiffe", source_root);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agent_cert_chains_and_names_its_cluster),
        cmocka_unit_test(rogue_client_does_not_verify),
        cmocka_unit_test(server_cert_matches_loopback_and_service_names),
        cmocka_unit_test(keys_are_private),
        cmocka_unit_test(rerun_keeps_ca_and_adds_clusters),
        cmocka_unit_test(bad_usage_exits_2),
    };

    if (argc > 1)
        source_root = argv[1];
    if (getenv("KOPT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KOPT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
