/* The kopt CLI's config file (cli/config_file.c) and its patch text
 * (cli/patch.c): contexts parse, mistakes are errors naming key and line;
 * patches name only the advised containers, delete a dropped limit only
 * where one exists, and carry their header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "patch.h"

static int parse(const char *text, cli_config_t *c, char *err)
{
    return cli_config_parse(text, strlen(text), c, err, 300);
}

static void contexts_parse(void **state)
{
    cli_config_t c;
    char err[300];

    (void)state;
    assert_int_equal(parse("current-context: b\ncontexts:\n"
                           "  - name: a\n    address: a:1\n    ca-file: ca.pem\n"
                           "  - name: b\n    address: b:2\n    token-file: /t\n"
                           "    cluster: prod\n    insecure: true\n",
                           &c, err),
                     0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.current_context, "b");
    assert_string_equal(cli_config_find(&c, "a")->ca_file, "ca.pem");
    assert_string_equal(cli_config_find(&c, "b")->token_file, "/t");
    assert_string_equal(cli_config_find(&c, "b")->cluster, "prod");
    assert_true(cli_config_find(&c, "b")->insecure);
    assert_null(cli_config_find(&c, "c"));
    cli_config_free(&c);
    assert_int_equal(parse("", &c, err), 0); /* empty file: nothing configured */
    assert_int_equal(c.n, 0);
    assert_int_equal(parse("# only a comment\n", &c, err), 0);
    cli_config_free(&c);
}

static void mistakes_name_key_and_line(void **state)
{
    cli_config_t c;
    char err[300];

    (void)state;
    assert_int_equal(parse("contexts:\n  - name: a\n    adress: x\n", &c, err), -EINVAL);
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "'adress'"));
    assert_int_equal(parse("colour: red\n", &c, err), -EINVAL);
    assert_non_null(strstr(err, "'colour'"));
    assert_int_equal(parse("current-context: z\ncontexts:\n  - name: a\n", &c, err), -EINVAL);
    assert_non_null(strstr(err, "'z'"));
    assert_int_equal(parse("contexts:\n  - name: a\n  - name: a\n", &c, err), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(parse("contexts:\n  - address: x\n", &c, err), -EINVAL);
    assert_non_null(strstr(err, "no name"));
    assert_int_equal(parse("contexts: [1, 2]\n", &c, err), -EINVAL);
    assert_int_equal(parse("contexts:\n  - name: a\n    insecure: maybe\n", &c, err), -EINVAL);
    assert_int_equal(parse("contexts:\n  - name: [a]\n", &c, err), -EINVAL);
    assert_int_equal(parse("- a\n", &c, err), -EINVAL);
    assert_int_equal(parse("a: [\n", &c, err), -EINVAL); /* bad YAML */
    assert_non_null(strstr(err, "line"));
}

/* A recommendation for web: app (limits now: CPU and memory) gets no CPU
 * limit; sidecar keeps no limits. */
static char *patch_text(cli_patch_format_t fmt, bool containers_only)
{
    Kopt__V1__WorkloadRef w = KOPT__V1__WORKLOAD_REF__INIT;
    Kopt__V1__ResourceValues now1 = KOPT__V1__RESOURCE_VALUES__INIT, rec1 = now1, now2 = now1,
                             rec2 = now1;
    Kopt__V1__ContainerRecommendation c1 = KOPT__V1__CONTAINER_RECOMMENDATION__INIT, c2 = c1;
    Kopt__V1__ContainerRecommendation *cs[] = {&c1, &c2};
    Kopt__V1__Recommendation r = KOPT__V1__RECOMMENDATION__INIT;
    cli_patch_opts_t o = {.format = fmt, .containers_only = containers_only};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    w.cluster = "local";
    w.namespace_ = "shop";
    w.kind = KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_DEPLOYMENT;
    w.name = "web";
    now1.cpu_request_cores = 1;
    now1.cpu_limit_cores = 2;
    now1.memory_request_bytes = 1ull << 30;
    now1.memory_limit_bytes = 2ull << 30;
    rec1.cpu_request_cores = 0.2501;
    rec1.memory_request_bytes = 300ull << 20;
    rec1.memory_limit_bytes = (600ull << 20) + 1;
    now2.cpu_request_cores = 0.25;
    rec2.cpu_request_cores = 0.05;
    rec2.memory_request_bytes = 64ull << 20;
    c1.container = "app";
    c1.current = &now1;
    c1.recommended = &rec1;
    c2.container = "sidecar";
    c2.current = &now2;
    c2.recommended = &rec2;
    r.workload = &w;
    r.containers = cs;
    r.n_containers = 2;
    r.analysis_id = "an-1";
    assert_int_equal(cli_patch_write(f, &r, &o), 0);
    fclose(f);
    return text;
}

static void strategic_patch_sets_only_resources(void **state)
{
    char *t = patch_text(CLI_PATCH_STRATEGIC, false);

    (void)state;
    assert_non_null(strstr(t, "# Written by kopt patch: sets the resources (requests and "
                              "limits) of containers app, sidecar\n"
                              "# of Deployment shop/web in cluster local to kopt's "
                              "recommendation from analysis an-1"));
    assert_non_null(strstr(t, "kind: Deployment\nmetadata:\n  name: \"web\"\n  namespace: "
                              "\"shop\"\n  annotations:\n    kopt.io/analysis: \"an-1\"\n"));
    assert_non_null(strstr(t, "        - name: \"app\"\n          resources:\n            "
                              "requests:\n              cpu: 251m\n              memory: "
                              "300Mi\n            limits:\n              cpu: null\n"
                              "              memory: 601Mi\n"));
    /* sidecar had no limits: no empty map, no null. */
    assert_non_null(strstr(t, "        - name: \"sidecar\"\n          resources:\n            "
                              "requests:\n              cpu: 50m\n              memory: 64Mi\n"));
    assert_null(strstr(strstr(t, "sidecar\"\n"), "limits"));
    free(t);
    t = patch_text(CLI_PATCH_STRATEGIC, true);
    assert_null(strstr(t, "annotations"));
    free(t);
}

static void json6902_patch_tests_the_name_first(void **state)
{
    char *t = patch_text(CLI_PATCH_JSON6902, false);

    (void)state;
    assert_non_null(strstr(t, "- op: test\n  path: /spec/template/spec/containers/0/name\n"
                              "  value: \"app\"\n- op: add\n  path: "
                              "/spec/template/spec/containers/0/resources\n  value:\n"
                              "    requests:\n      cpu: 251m\n"));
    assert_non_null(strstr(t, "/spec/template/spec/containers/1/name\n  value: \"sidecar\""));
    assert_null(strstr(t, "null"));
    assert_null(strstr(t, "annotations"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contexts_parse),
        cmocka_unit_test(mistakes_name_key_and_line),
        cmocka_unit_test(strategic_patch_sets_only_resources),
        cmocka_unit_test(json6902_patch_tests_the_name_first),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
