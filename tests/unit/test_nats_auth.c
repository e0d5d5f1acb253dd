/* kopt_nats_auth_*: which combinations of NATS settings are refused and with
 * what sentence, that bad files fail when the options are built (not at the
 * first connect), how the password file is read, and that no secret reaches
 * an error or the log. Connecting with them is tests/integration/nats_auth. */
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
#include <kopt/nats_auth.h>

#include "harness.h"

static const char *src_root;
static char *dir;
static char log_path[600];

static const char *path(const char *name)
{
    static char buf[4][600];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static char *read_log(void)
{
    FILE *f = fopen(log_path, "r");
    static char buf[16384];
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Builds options; returns the status and leaves the sentence in `err`. */
static int build(const char *url, const kopt_nats_auth_t *a, char *err, size_t len)
{
    natsOptions *o = NULL;
    int r;

    err[0] = '\0';
    r = kopt_nats_options_new(url, "test", a, &o, err, len);
    if (r == 0)
        assert_non_null(o);
    else
        assert_null(o);
    natsOptions_Destroy(o);
    return r;
}

static void nothing_set_builds_plain_options(void **state)
{
    kopt_nats_auth_t a = {0};
    char err[300];

    (void)state;
    assert_int_equal(kopt_nats_auth_any(NULL), 0);
    assert_int_equal(kopt_nats_auth_any(&a), 0);
    assert_int_equal(build("nats://127.0.0.1:4222", NULL, err, sizeof(err)), 0);
    assert_int_equal(build("nats://127.0.0.1:4222", &a, err, sizeof(err)), 0);
    /* a comma-separated list becomes the server list */
    assert_int_equal(build("nats://a:4222, nats://b:4222,nats://c:4222", &a, err, sizeof(err)), 0);
    assert_int_equal(build("", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no NATS URL"));
}

static void credentials_in_the_url_are_refused_without_echoing_them(void **state)
{
    const char *urls[] = {
        "nats://kopt:Hunter2Pw@127.0.0.1:4222", "tls://S3cretT0ken@nats:4222",
        "nats://a:4222,nats://kopt:Hunter2Pw@b:4222", "nats://n:4222/?password=Hunter2Pw",
        /* a user alone, an empty user, an escaped '@' */
        "nats://Hunter2Pw@n:4222", "nats://:Hunter2Pw@n:4222", "nats://kopt%40x:Hunter2Pw@n:4222",
        /* only the second (or third) URL of a list */
        "nats://a:4222, nats://kopt:Hunter2Pw@b:4222",
        "nats://a:4222,nats://b:4222,tls://Hunter2Pw@c:4222", "a:4222,kopt:Hunter2Pw@b:4222",
        "kopt:Hunter2Pw@b:4222"};
    char err[300];

    (void)state;
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_int_equal(kopt_nats_auth_check(urls[i], NULL, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "--nats-url carries credentials"));
        assert_int_equal(build(urls[i], NULL, err, sizeof(err)), -EINVAL);
        assert_null(strstr(err, "Hunter2Pw"));
        assert_null(strstr(err, "S3cretT0ken"));
    }
}

static void incomplete_or_conflicting_settings_are_refused(void **state)
{
    struct {
        kopt_nats_auth_t a;
        const char *why;
    } cases[] = {
        {{.cert = "c.pem"}, "--nats-cert and --nats-key go together"},
        {{.key = "k.pem"}, "--nats-cert and --nats-key go together"},
        {{.user = "ingest"}, "--nats-user and --nats-password-file go together"},
        {{.password_file = "pw"}, "--nats-user and --nats-password-file go together"},
        {{.creds = "x.creds", .user = "ingest", .password_file = "pw"},
         "--nats-creds and --nats-user exclude each other"},
    };
    char err[300];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(kopt_nats_auth_any(&cases[i].a), 1);
        assert_int_equal(kopt_nats_auth_check("nats://n:4222", &cases[i].a, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, cases[i].why);
        assert_int_equal(build("nats://n:4222", &cases[i].a, err, sizeof(err)), -EINVAL);
    }
    /* "" counts as not set (an empty KOPT_NATS_USER) */
    {
        kopt_nats_auth_t a = {.user = "", .password_file = "", .cert = "", .key = ""};

        assert_int_equal(kopt_nats_auth_any(&a), 0);
        assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), 0);
    }
}

static void tls_files_are_loaded_when_the_options_are_built(void **state)
{
    kopt_nats_auth_t a = {0};
    char err[300];

    (void)state;
    a.ca = (char *)path("ca.pem");
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), 0);
    a.cert = (char *)path("client.pem");
    a.key = (char *)path("client-key.pem");
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), 0);
    /* a client certificate alone (the server's CA from the system) */
    a.ca = NULL;
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), 0);

    a.ca = (char *)path("missing-ca.pem");
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NATS CA"));
    assert_non_null(strstr(err, "missing-ca.pem"));
    a.ca = (char *)path("ca.pem");
    a.key = (char *)path("server-key.pem"); /* not the certificate's key */
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NATS client certificate"));
    a.cert = (char *)path("notes.txt");
    a.key = (char *)path("notes.txt");
    assert_int_equal(build("tls://127.0.0.1:4222", &a, err, sizeof(err)), -EINVAL);
}

static void creds_file_must_be_readable(void **state)
{
    kopt_nats_auth_t a = {.creds = (char *)path("missing.creds")};
    char err[300];

    (void)state;
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot read NATS credentials file"));
    assert_non_null(strstr(err, "missing.creds"));
    /* nats.c reads and checks its content at each connect */
    write_file("ingest.creds", "not a creds file\n", 0600);
    a.creds = (char *)path("ingest.creds");
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), 0);
}

static void password_file_is_read_and_never_printed(void **state)
{
    kopt_nats_auth_t a = {.user = "kopt-ingest"};
    char err[300];
    const char *log;

    (void)state;
    a.password_file = (char *)path("missing-pw");
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot read NATS password file"));
    assert_non_null(strstr(err, "missing-pw"));

    write_file("empty-pw", "\n", 0600);
    a.password_file = (char *)path("empty-pw");
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is empty"));

    write_file("good-pw", "Zq8SecretPw\r\n", 0600);
    a.password_file = (char *)path("good-pw");
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), 0);
    log = read_log();
    assert_null(strstr(log, "open to group or others"));

    write_file("open-pw", "Zq8SecretPw\n", 0644);
    a.password_file = (char *)path("open-pw");
    assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), 0);
    log = read_log();
    assert_non_null(strstr(log, "NATS password file is open to group or others"));
    assert_non_null(strstr(log, "644"));
    assert_null(strstr(log, "Zq8SecretPw"));

    /* A password longer than the buffer was cut silently, and the server
     * then refused a password nobody wrote: it is refused here instead. */
    {
        static char big[3000];

        memset(big, 'p', sizeof(big) - 2);
        big[sizeof(big) - 2] = '\n';
        write_file("long-pw", big, 0600);
        a.password_file = (char *)path("long-pw");
        assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "longer than"));
        assert_null(strstr(err, "pppp"));
        big[1023] = '\0'; /* 1023 bytes and no line end: the whole file */
        write_file("max-pw", big, 0600);
        a.password_file = (char *)path("max-pw");
        assert_int_equal(build("nats://n:4222", &a, err, sizeof(err)), 0);
    }
}

static void copies_are_deep_and_cleared(void **state)
{
    char user[] = "kopt-advisor";
    kopt_nats_auth_t src = {.ca = "ca.pem", .user = user, .password_file = "pw"}, dst;

    (void)state;
    assert_int_equal(kopt_nats_auth_copy(&dst, &src), 0);
    user[0] = 'X';
    assert_string_equal(dst.user, "kopt-advisor");
    assert_string_equal(dst.ca, "ca.pem");
    assert_null(dst.cert);
    kopt_nats_auth_clear(&dst);
    assert_null(dst.user);
    assert_int_equal(kopt_nats_auth_copy(&dst, NULL), 0);
    assert_int_equal(kopt_nats_auth_any(&dst), 0);
    kopt_nats_auth_clear(&dst);
}

static int group_setup(void **state)
{
    int fd;

    (void)state;
    dir = kopt_test_tmpdir("kopt-nats-auth");
    if (!dir || kopt_test_make_certs(src_root, dir) < 0)
        return -1;
    snprintf(log_path, sizeof(log_path), "%s/log", dir);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        return -1;
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_DEBUG, fd);
    write_file("notes.txt", "not PEM\n", 0600);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kopt_log_setup("test", KOPT_LOG_FORMAT_JSON, KOPT_LOG_INFO, 2);
    kopt_test_rmtree(dir);
    free(dir);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_set_builds_plain_options),
        cmocka_unit_test(credentials_in_the_url_are_refused_without_echoing_them),
        cmocka_unit_test(incomplete_or_conflicting_settings_are_refused),
        cmocka_unit_test(tls_files_are_loaded_when_the_options_are_built),
        cmocka_unit_test(creds_file_must_be_readable),
        cmocka_unit_test(password_file_is_read_and_never_printed),
        cmocka_unit_test(copies_are_deep_and_cleared),
    };
    int failed;

    if (argc < 2) {
        fprintf(stderr, "usage: %s SRCDIR\n", argv[0]);
        return 2;
    }
    src_root = argv[1];
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_Close();
    return failed;
}
