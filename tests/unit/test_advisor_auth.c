/* advisor/auth.c: the API keys file (one key a line; '#' lines, blank lines
 * and the whitespace around a key ignored, CRLF too; a missing file or more
 * than 10,000 keys refused), the "authorization: Bearer <key>" header, exact
 * matches only, kopt service certificates without a key, --insecure, and
 * SIGHUP reloads that keep the old keys when the new file is bad. Keys files
 * are written to $TMPDIR. Timing is not measured here: every stored digest
 * is compared with CRYPTO_memcmp whichever matches (see auth.c); what is
 * checked is that the first, a middle and the last of many keys all match
 * and near misses do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kopt/log.h>

#include "advisor.h"

#define OK GRPC_STATUS_OK
#define NO GRPC_STATUS_UNAUTHENTICATED

typedef struct {
    char path[256];
    adv_auth_t *auth;
} fixture_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    int fd;

    if (!fx)
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/kopt-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fd = mkstemp(fx->path);
    if (fd < 0) {
        free(fx);
        return -1;
    }
    close(fd);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;

    adv_auth_free(fx->auth);
    unlink(fx->path);
    free(fx);
    return 0;
}

/* The fixture's auth over a keys file holding `text`. */
static adv_auth_t *auth_from(fixture_t *fx, const char *text)
{
    char err[256] = "";

    write_file(fx->path, text);
    adv_auth_free(fx->auth);
    fx->auth = NULL;
    assert_int_equal(adv_auth_new(fx->path, false, &fx->auth, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    return fx->auth;
}

static grpc_status_code check(adv_auth_t *a, const char *authorization)
{
    const char *why = "unset";
    grpc_status_code c = adv_auth_check(a, authorization, NULL, "ListRecommendations", &why);

    /* A reason with every refusal, none with a pass. */
    if (c == OK)
        assert_null(why);
    else
        assert_non_null(why);
    return c;
}

static void auth_accepts_each_listed_key(void **state)
{
    adv_auth_t *a = auth_from(*state, "alpha-key-0123456\nbeta-key-01234567\ngamma-key-0123456\n");

    assert_int_equal(adv_auth_count(a), 3);
    assert_int_equal(check(a, "Bearer alpha-key-0123456"), OK);
    assert_int_equal(check(a, "Bearer beta-key-01234567"), OK);
    assert_int_equal(check(a, "Bearer gamma-key-0123456"), OK);
    assert_int_equal(check(a, "Bearer delta-key-0123456"), NO);
}

static void auth_file_skips_comments_blank_lines_and_whitespace(void **state)
{
    adv_auth_t *a = auth_from(*state, "# API keys for the advisor\n"
                                      "\n"
                                      "   \n"
                                      "  spaced-key-012345  \n"
                                      "\ttabbed-key-012345\t\n"
                                      "crlf-key-01234567\r\n"
                                      "   # an indented comment\n"
                                      "#commented-key-0123\n"
                                      "inner space 012345\n"
                                      "inline # is part of the key\n"
                                      "last-line-without-newline");

    assert_int_equal(adv_auth_count(a), 6);
    assert_int_equal(check(a, "Bearer spaced-key-012345"), OK);
    assert_int_equal(check(a, "Bearer tabbed-key-012345"), OK);
    assert_int_equal(check(a, "Bearer crlf-key-01234567"), OK);
    assert_int_equal(check(a, "Bearer inner space 012345"), OK);
    assert_int_equal(check(a, "Bearer inline # is part of the key"), OK);
    assert_int_equal(check(a, "Bearer last-line-without-newline"), OK);
    /* A comment is no key, and there is no inline comment syntax. */
    assert_int_equal(check(a, "Bearer #commented-key-0123"), NO);
    assert_int_equal(check(a, "Bearer commented-key-0123"), NO);
    assert_int_equal(check(a, "Bearer inline"), NO);
    assert_int_equal(check(a, "Bearer crlf-key-01234567\r"), NO);
}

static void auth_only_exact_keys_match(void **state)
{
    adv_auth_t *a = auth_from(*state, "s3cret-Key-0123456789\n");

    assert_int_equal(check(a, "Bearer s3cret-Key-0123456789"), OK);
    assert_int_equal(check(a, "Bearer s3cret-Key-012345678"), NO);   /* a prefix */
    assert_int_equal(check(a, "Bearer s3cret-Key-0123456789X"), NO); /* longer */
    assert_int_equal(check(a, "Bearer s3cret-Key-0123456788"), NO);  /* the last byte */
    assert_int_equal(check(a, "Bearer S3CRET-KEY-0123456789"), NO);  /* keys are case-sensitive */
    /* Spaces after "Bearer" are skipped; the rest of the value is the key,
     * trailing spaces included. */
    assert_int_equal(check(a, "Bearer    s3cret-Key-0123456789"), OK);
    assert_int_equal(check(a, "Bearer s3cret-Key-0123456789 "), NO);
}

static void auth_first_middle_and_last_of_many_keys_match(void **state)
{
    char *text = malloc(1000 * 24);
    char hdr[64];
    size_t off = 0;
    adv_auth_t *a;

    assert_non_null(text);
    for (int i = 0; i < 1000; i++)
        off += (size_t)snprintf(text + off, 1000 * 24 - off, "api-key-padded-%04d\n", i);
    a = auth_from(*state, text);
    free(text);
    assert_int_equal(adv_auth_count(a), 1000);
    assert_int_equal(check(a, "Bearer api-key-padded-0000"), OK);
    assert_int_equal(check(a, "Bearer api-key-padded-0500"), OK);
    assert_int_equal(check(a, "Bearer api-key-padded-0999"), OK);
    assert_int_equal(check(a, "Bearer api-key-padded-1000"), NO);
    for (int i = 0; i < 1000; i += 37) {
        snprintf(hdr, sizeof(hdr), "Bearer api-key-padded-%04d", i);
        assert_int_equal(check(a, hdr), OK);
    }
}

static void auth_header_must_be_bearer(void **state)
{
    adv_auth_t *a = auth_from(*state, "k1-0123456789abcdef\n");
    const char *why = NULL;

    assert_int_equal(adv_auth_check(a, NULL, NULL, "ListRecommendations", &why), NO);
    assert_non_null(strstr(why, "missing API key"));
    assert_int_equal(adv_auth_check(a, "", NULL, "ListRecommendations", &why), NO);
    assert_non_null(strstr(why, "missing API key"));
    /* The scheme is case-insensitive (RFC 7235), one space after it. */
    assert_int_equal(check(a, "bearer k1-0123456789abcdef"), OK);
    assert_int_equal(check(a, "BEARER k1-0123456789abcdef"), OK);
    assert_int_equal(
        adv_auth_check(a, "Basic k1-0123456789abcdef", NULL, "ListRecommendations", &why), NO);
    assert_non_null(strstr(why, "Bearer <key>"));
    assert_int_equal(adv_auth_check(a, "k1-0123456789abcdef", NULL, "ListRecommendations", &why),
                     NO);
    assert_non_null(strstr(why, "Bearer <key>"));
    assert_int_equal(adv_auth_check(a, "Bearer", NULL, "ListRecommendations", &why), NO);
    assert_non_null(strstr(why, "Bearer <key>"));
    assert_int_equal(check(a, "Bearer\tk1-0123456789abcdef"), NO);
    assert_int_equal(check(a, "Bearerk1-0123456789abcdef"), NO);
    /* A scheme with no key is an invalid key. */
    assert_int_equal(adv_auth_check(a, "Bearer ", NULL, "ListRecommendations", &why), NO);
    assert_string_equal(why, "invalid API key");
    assert_int_equal(adv_auth_check(a, "Bearer    ", NULL, "ListRecommendations", &why), NO);
    assert_string_equal(why, "invalid API key");
    assert_int_equal(
        adv_auth_check(a, "Bearer k2-0123456789abcdef", NULL, "ListRecommendations", &why), NO);
    assert_string_equal(why, "invalid API key");
}

static void auth_kopt_service_certificate_needs_no_key(void **state)
{
    adv_auth_t *a = auth_from(*state, "k1-0123456789abcdef\n");
    const char *why = NULL;

    assert_int_equal(
        adv_auth_check(a, NULL, "spiffe://kopt/service/kopt-cli", "ListRecommendations", &why), OK);
    assert_null(why);
    /* Any other identity still needs a key. */
    assert_int_equal(adv_auth_check(a, NULL, "spiffe://kopt/service/", "ListRecommendations", &why),
                     NO);
    assert_int_equal(
        adv_auth_check(a, NULL, "spiffe://kopt/cluster/c/agent/a", "ListRecommendations", &why),
        NO);
    assert_int_equal(
        adv_auth_check(a, NULL, "spiffe://other/service/x", "ListRecommendations", &why), NO);
    assert_int_equal(
        adv_auth_check(a, NULL, "spiffe://kopt/services/x", "ListRecommendations", &why), NO);
    assert_int_equal(adv_auth_check(a, "Bearer k1-0123456789abcdef",
                                    "spiffe://kopt/cluster/c/agent/a", "ListRecommendations", &why),
                     OK);
}

static void auth_open_only_without_a_keys_file(void **state)
{
    fixture_t *fx = *state;
    adv_auth_t *open = NULL, *closed = NULL, *file = NULL;
    const char *why = NULL;
    char err[256];

    /* --insecure without a keys file: anyone. */
    assert_int_equal(adv_auth_new(NULL, true, &open, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_check(open, NULL, NULL, "ListRecommendations", &why), OK);
    assert_int_equal(adv_auth_check(open, "Bearer anything", NULL, "ListRecommendations", &why),
                     OK);
    /* No keys file and not open: only service certificates. */
    assert_int_equal(adv_auth_new(NULL, false, &closed, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_count(closed), 0);
    assert_int_equal(adv_auth_check(closed, "Bearer anything", NULL, "ListRecommendations", &why),
                     NO);
    assert_int_equal(
        adv_auth_check(closed, NULL, "spiffe://kopt/service/x", "ListRecommendations", &why), OK);
    assert_int_equal(adv_auth_reload(closed, err, sizeof(err)), 0); /* nothing to re-read */
    /* A keys file wins over --insecure, even an empty one. */
    write_file(fx->path, "# no keys yet\n\n");
    assert_int_equal(adv_auth_new(fx->path, true, &file, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_count(file), 0);
    assert_int_equal(adv_auth_check(file, NULL, NULL, "ListRecommendations", &why), NO);
    assert_int_equal(adv_auth_check(file, "Bearer anything", NULL, "ListRecommendations", &why),
                     NO);
    adv_auth_free(open);
    adv_auth_free(closed);
    adv_auth_free(file);
    adv_auth_free(NULL);
}

static void auth_refuses_a_missing_file_or_too_many_keys(void **state)
{
    fixture_t *fx = *state;
    adv_auth_t *a = NULL;
    char err[512] = "", missing[300];
    const size_t line = 21; /* "k-0123456789-NNNNNNN\n" */
    char *text = malloc(10001 * line + 1);

    assert_non_null(text);
    snprintf(missing, sizeof(missing), "%s.missing", fx->path);
    assert_int_equal(adv_auth_new(missing, false, &a, err, sizeof(err)), -ENOENT);
    assert_null(a);
    assert_non_null(strstr(err, missing));
    /* 10,000 keys are fine, one more is refused with a message. */
    for (int i = 0; i < 10000; i++)
        snprintf(text + (size_t)i * line, line + 1, "k-0123456789-%07d\n", i);
    assert_int_equal(adv_auth_count(auth_from(fx, text)), 10000);
    snprintf(text + 10000 * line, line + 1, "k-0123456789-%07d\n", 10000);
    write_file(fx->path, text);
    free(text);
    err[0] = '\0';
    assert_int_equal(adv_auth_new(fx->path, false, &a, err, sizeof(err)), -E2BIG);
    assert_null(a);
    assert_non_null(strstr(err, "more than 10000 keys"));
    /* A path that cannot be read as lines (a directory) is an error, not an
     * empty list of keys. */
    err[0] = '\0';
    assert_int_equal(adv_auth_new("/tmp", false, &a, err, sizeof(err)), -EIO);
    assert_null(a);
    assert_non_null(strstr(err, "/tmp"));
}

static void auth_reload_swaps_keys_and_keeps_them_on_error(void **state)
{
    fixture_t *fx = *state;
    adv_auth_t *a = auth_from(fx, "old-key-012345678\n");
    char err[512] = "";

    write_file(fx->path, "# rotated\nnew-key-012345678\nsecond-key-012345\n");
    assert_int_equal(adv_auth_reload(a, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_count(a), 2);
    assert_int_equal(check(a, "Bearer new-key-012345678"), OK);
    assert_int_equal(check(a, "Bearer second-key-012345"), OK);
    assert_int_equal(check(a, "Bearer old-key-012345678"), NO);
    /* The file gone: an error, and the keys read last time stay. */
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(adv_auth_reload(a, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, fx->path));
    assert_int_equal(adv_auth_count(a), 2);
    assert_int_equal(check(a, "Bearer new-key-012345678"), OK);
    /* Emptied: a valid file with no keys, so no key passes any more. */
    write_file(fx->path, "\n");
    assert_int_equal(adv_auth_reload(a, err, sizeof(err)), 0);
    assert_int_equal(adv_auth_count(a), 0);
    assert_int_equal(check(a, "Bearer new-key-012345678"), NO);
}

/* Issue 15: a one-character key from a world-readable file was taken
 * silently. Now a key under 16 characters refuses the file, saying where
 * (and not what the key is); a file open to others is taken with a warning. */
static void auth_refuses_short_keys_and_warns_on_open_files(void **state)
{
    fixture_t *fx = *state;
    adv_auth_t *a = NULL;
    char err[512] = "", logpath[300], buf[4096] = "";
    FILE *f;
    int fd;

    write_file(fx->path, "# keys\nlong-enough-key-0001\nx\n");
    assert_int_equal(adv_auth_new(fx->path, false, &a, err, sizeof(err)), -EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "at least 16"));
    /* 15 characters are too few, 16 enough; surrounding spaces do not count. */
    write_file(fx->path, "  fifteen-chars-x  \n");
    assert_int_equal(adv_auth_new(fx->path, false, &a, err, sizeof(err)), -EINVAL);
    assert_int_equal(adv_auth_count(auth_from(fx, "sixteen-chars-xx\n")), 1);
    /* A reload with a short key keeps the keys read last time. */
    write_file(fx->path, "short\n");
    assert_int_equal(adv_auth_reload(fx->auth, err, sizeof(err)), -EINVAL);
    assert_int_equal(check(fx->auth, "Bearer sixteen-chars-xx"), OK);

    /* Mode 0644: accepted, with a warning naming the file. */
    snprintf(logpath, sizeof(logpath), "%s.log", fx->path);
    fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, fd);
    write_file(fx->path, "sixteen-chars-xx\n");
    assert_int_equal(chmod(fx->path, 0600), 0);
    assert_int_equal(adv_auth_count(auth_from(fx, "sixteen-chars-xx\n")), 1);
    assert_int_equal(chmod(fx->path, 0644), 0);
    assert_int_equal(adv_auth_reload(fx->auth, err, sizeof(err)), 0);
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    close(fd);
    f = fopen(logpath, "r");
    assert_non_null(f);
    buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
    fclose(f);
    unlink(logpath);
    /* One warning: for the 0644 read, none for the 0600 one; no key in it. */
    assert_non_null(strstr(buf, "chmod 600"));
    assert_non_null(strstr(buf, "644"));
    assert_null(strstr(strstr(buf, "chmod 600") + 1, "chmod 600"));
    assert_null(strstr(buf, "sixteen-chars-xx"));
}

/* "key role": viewer keys read, operator keys (and bare keys, as before
 * roles) also run analyses; the refusal names the missing role. */
static void auth_key_roles(void **state)
{
    adv_auth_t *a = auth_from(*state, "viewer-key-0123456 viewer\n"
                                      "operator-key-01234\toperator\n"
                                      "bare-key-012345678\n"
                                      "spaced key 0123456   viewer  \n");
    const char *why = NULL;
    char err[256];

    assert_int_equal(adv_auth_count(a), 4);
    assert_int_equal(adv_auth_required_role("ListClusters"), ADV_ROLE_VIEWER);
    assert_int_equal(adv_auth_required_role("RunAnalysis"), ADV_ROLE_OPERATOR);
    assert_int_equal(adv_auth_required_role("SomethingNew"), ADV_ROLE_OPERATOR);
    assert_int_equal(check(a, "Bearer viewer-key-0123456"), OK);
    assert_int_equal(adv_auth_check(a, "Bearer viewer-key-0123456", NULL, "RunAnalysis", &why),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_non_null(strstr(why, "operator role"));
    assert_int_equal(adv_auth_check(a, "Bearer operator-key-01234", NULL, "RunAnalysis", &why), OK);
    assert_int_equal(adv_auth_check(a, "Bearer bare-key-012345678", NULL, "RunAnalysis", &why), OK);
    assert_int_equal(adv_auth_check(a, "Bearer spaced key 0123456", NULL, "RunAnalysis", &why),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(check(a, "Bearer spaced key 0123456"), OK);
    /* The role word is not part of the key. */
    assert_int_equal(check(a, "Bearer viewer-key-0123456 viewer"), NO);
    /* A service certificate holds every role. */
    assert_int_equal(adv_auth_check(a, NULL, "spiffe://kopt/service/x", "RunAnalysis", &why), OK);
    /* A key too short once its role is taken off refuses the file. */
    write_file(((fixture_t *)*state)->path, "short viewer\n");
    assert_int_equal(adv_auth_reload(a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too short"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(auth_accepts_each_listed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_file_skips_comments_blank_lines_and_whitespace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(auth_only_exact_keys_match, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_first_middle_and_last_of_many_keys_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(auth_header_must_be_bearer, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_kopt_service_certificate_needs_no_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(auth_open_only_without_a_keys_file, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_refuses_a_missing_file_or_too_many_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(auth_refuses_short_keys_and_warns_on_open_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(auth_key_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_reload_swaps_keys_and_keeps_them_on_error, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
