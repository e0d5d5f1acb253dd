/* The S3 XML reader of the object store client (libkopt/objstore_xml.c):
 * list pages with entities, pagination, and the malformed answers it must
 * refuse without appending anything. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kopt/objstore.h"

static int parse(const char *xml, kopt_objstore_entry_t **e, size_t *n, bool *tr, char **tok)
{
    return kopt_objstore_parse_list(xml, strlen(xml), e, n, tr, tok);
}

static void list_page_with_entities(void **state)
{
    (void)state;
    kopt_objstore_entry_t *e = NULL;
    size_t n = 0;
    bool tr = true;
    char *tok = NULL;
    const char *xml = "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"x\"><Name>b</Name>"
                      "<IsTruncated>false</IsTruncated>"
                      "<Contents><Key>a/x &amp; y&#x263a;&#65;.bin</Key><Size>12</Size></Contents>"
                      "<Contents><Key>a/z</Key><ETag>&quot;e&quot;</ETag><Size>0</Size></Contents>"
                      "</ListBucketResult>";

    assert_int_equal(parse(xml, &e, &n, &tr, &tok), 0);
    assert_int_equal(n, 2);
    assert_false(tr);
    assert_null(tok);
    assert_string_equal(e[0].key, "a/x & y\xe2\x98\xba"
                                  "A.bin");
    assert_int_equal(e[0].size, 12);
    assert_string_equal(e[1].key, "a/z");
    kopt_objstore_entries_free(e, n);
}

static void pages_append_and_carry_the_token(void **state)
{
    (void)state;
    kopt_objstore_entry_t *e = NULL;
    size_t n = 0;
    bool tr = false;
    char *tok = NULL;

    assert_int_equal(parse("<ListBucketResult><IsTruncated>true</IsTruncated>"
                           "<NextContinuationToken>t/1+=</NextContinuationToken>"
                           "<Contents><Key>k1</Key><Size>1</Size></Contents></ListBucketResult>",
                           &e, &n, &tr, &tok),
                     0);
    assert_true(tr);
    assert_string_equal(tok, "t/1+=");
    free(tok);
    assert_int_equal(parse("<ListBucketResult><Contents><Key>k2</Key><Size>2</Size></Contents>"
                           "</ListBucketResult>",
                           &e, &n, &tr, &tok),
                     0);
    assert_false(tr); /* no IsTruncated: the last page */
    assert_int_equal(n, 2);
    assert_string_equal(e[1].key, "k2");
    kopt_objstore_entries_free(e, n);
}

static void malformed_pages_append_nothing(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "<Error><Code>x</Code></Error>",
        "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents>", /* no end */
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>&bogus;</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#0;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#xD800;</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a<b/></Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kopt_objstore_entry_t *e = NULL;
        size_t n = 0;
        bool tr = true;
        char *tok = (char *)"x";
        assert_int_equal(parse(bad[i], &e, &n, &tr, &tok), -EPROTO);
        assert_int_equal(n, 0);
        assert_null(e);
        assert_null(tok);
        assert_false(tr);
    }
}

static void element_text(void **state)
{
    (void)state;
    char out[8];
    const char *xml = "<Error><Code>AccessDenied</Code><Message>a &lt; b</Message><E/></Error>";

    assert_int_equal(kopt_objstore_xml_text(xml, strlen(xml), "Message", out, sizeof(out)), 0);
    assert_string_equal(out, "a < b");
    assert_int_equal(kopt_objstore_xml_text(xml, strlen(xml), "Code", out, sizeof(out)), 0);
    assert_string_equal(out, "AccessD"); /* truncated to fit */
    assert_int_equal(kopt_objstore_xml_text(xml, strlen(xml), "E", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(kopt_objstore_xml_text(xml, strlen(xml), "UploadId", out, sizeof(out)),
                     -ENOENT);
    assert_int_equal(kopt_objstore_xml_text("<Code>x", 7, "Code", out, sizeof(out)), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_page_with_entities),
        cmocka_unit_test(pages_append_and_carry_the_token),
        cmocka_unit_test(malformed_pages_append_nothing),
        cmocka_unit_test(element_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
