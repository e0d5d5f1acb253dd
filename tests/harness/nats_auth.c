/* The authenticated test nats-server's configuration: TLS with the test CA
 * (clients must show a certificate it signed), and one user per kopt
 * component allowed only the subjects that component needs, plus kopt-admin
 * with everything for the tests' own checks. Passwords are random, written
 * 0600 into the secrets dir. The same permissions are in
 * deploy/kustomize/overlays/production/nats/kopt-auth.conf; docs/security.md
 * explains each subject. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kopt/nats_auth.h>

#define PASSWORD_LEN 32

typedef struct {
    const char *user;
    const char *publish;   /* the allow list, nats.conf syntax */
    const char *subscribe; /* the same */
} nats_user_t;

/* Stream, consumer and subjects are kopt's defaults. */
static const nats_user_t users[] = {
    {"kopt-ingest",
     "\"kopt.metrics.>\", \"$JS.API.STREAM.CREATE.KOPT_METRICS\", "
     "\"$JS.API.STREAM.UPDATE.KOPT_METRICS\", \"$JS.API.STREAM.INFO.KOPT_METRICS\"",
     "\"_INBOX.kopt-ingest.>\""},
    {"kopt-aggregator",
     "\"$JS.API.CONSUMER.INFO.KOPT_METRICS.kopt-aggregator\", "
     "\"$JS.API.CONSUMER.CREATE.KOPT_METRICS.kopt-aggregator\", "
     "\"$JS.API.CONSUMER.CREATE.KOPT_METRICS.kopt-aggregator.>\", "
     "\"$JS.API.CONSUMER.DURABLE.CREATE.KOPT_METRICS.kopt-aggregator\", "
     "\"$JS.API.CONSUMER.MSG.NEXT.KOPT_METRICS.kopt-aggregator\", "
     "\"$JS.API.STREAM.MSG.GET.KOPT_METRICS\", \"$JS.ACK.KOPT_METRICS.kopt-aggregator.>\", "
     "\"kopt.deadletter.>\", \"$JS.API.STREAM.INFO.KOPT_DEADLETTER\", "
     "\"$JS.API.STREAM.CREATE.KOPT_DEADLETTER\", "
     /* the schedule's lease, its own keys only (docs/operations.md) */
     "\"$KV.kopt_leases.aggregator.>\", \"$JS.API.STREAM.INFO.KV_kopt_leases\", "
     "\"$JS.API.STREAM.CREATE.KV_kopt_leases\", "
     "\"$JS.API.DIRECT.GET.KV_kopt_leases.$KV.kopt_leases.aggregator.>\", "
     "\"$JS.API.STREAM.MSG.GET.KV_kopt_leases\"",
     "\"_INBOX.kopt-aggregator.>\", "
     "\"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.KOPT_METRICS.kopt-aggregator\""},
    {"kopt-advisor",
     "\"kopt.recommendations.>\", \"$JS.API.STREAM.CREATE.KOPT_RECOMMENDATIONS\", "
     "\"$JS.API.STREAM.UPDATE.KOPT_RECOMMENDATIONS\", "
     "\"$JS.API.STREAM.INFO.KOPT_RECOMMENDATIONS\", \"$KV.kopt_recommendations.>\", "
     "\"$JS.API.STREAM.INFO.KV_kopt_recommendations\", "
     "\"$JS.API.STREAM.CREATE.KV_kopt_recommendations\", "
     /* the analysis lease (docs/advisor.md, "Replicas") */
     "\"$KV.kopt_leases.>\", \"$JS.API.STREAM.INFO.KV_kopt_leases\", "
     "\"$JS.API.STREAM.CREATE.KV_kopt_leases\", \"$JS.API.DIRECT.GET.KV_kopt_leases.>\", "
     "\"$JS.API.STREAM.MSG.GET.KV_kopt_leases\"",
     "\"_INBOX.kopt-advisor.>\""},
    {"kopt-admin", "\">\"", "\">\""},
};

static int random_password(char *out, size_t len)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char raw[PASSWORD_LEN];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0)
        return -errno;
    got = read(fd, raw, sizeof(raw));
    close(fd);
    if (got != (ssize_t)sizeof(raw) || len <= PASSWORD_LEN)
        return -EIO;
    for (size_t i = 0; i < PASSWORD_LEN; i++)
        out[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
    out[PASSWORD_LEN] = '\0';
    return 0;
}

static int write_password(const char *path, const char *pw)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(pw);
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fchmod(fd, 0600) < 0 || write(fd, pw, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
        r = -EIO;
    if (close(fd) < 0 && r == 0)
        r = -EIO;
    return r;
}

int kopt_test_nats_password_file(const kopt_test_nats_t *s, const char *user, char *out, size_t len)
{
    if (!s->secrets_dir)
        return -EINVAL;
    if ((size_t)snprintf(out, len, "%s/nats-%s.password", s->secrets_dir, user) >= len)
        return -ENOSPC;
    return 0;
}

char *kopt_test_nats_auth_config(kopt_test_nats_t *s)
{
    char *text = NULL, pw[PASSWORD_LEN + 1], path[4096];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    fprintf(f,
            "tls {\n  cert_file: \"%s/server.pem\"\n  key_file: \"%s/server-key.pem\"\n"
            "  ca_file: \"%s/ca.pem\"\n  verify: true\n  timeout: 5\n}\n"
            "authorization {\n  users: [\n",
            s->certs_dir, s->certs_dir, s->certs_dir);
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        if (kopt_test_nats_password_file(s, users[i].user, path, sizeof(path)) < 0 ||
            random_password(pw, sizeof(pw)) < 0 || write_password(path, pw) < 0) {
            fclose(f);
            free(text);
            return NULL;
        }
        fprintf(f,
                "    {user: \"%s\", password: \"%s\", permissions: {\n"
                "      publish: {allow: [%s]}\n      subscribe: {allow: [%s]}\n    }}\n",
                users[i].user, pw, users[i].publish, users[i].subscribe);
    }
    fprintf(f, "  ]\n}\n");
    explicit_bzero(pw, sizeof(pw));
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int kopt_test_nats_auth_args(const kopt_test_nats_t *s, const char *user, const char **argv, int *n,
                             char *pw_path, size_t len)
{
    int r;

    if (!s->auth)
        return 0;
    r = kopt_test_nats_password_file(s, user, pw_path, len);
    if (r < 0)
        return r;
    argv[(*n)++] = "--nats-ca";
    argv[(*n)++] = s->ca_file;
    argv[(*n)++] = "--nats-cert";
    argv[(*n)++] = s->cert_file;
    argv[(*n)++] = "--nats-key";
    argv[(*n)++] = s->key_file;
    argv[(*n)++] = "--nats-user";
    argv[(*n)++] = user;
    argv[(*n)++] = "--nats-password-file";
    argv[(*n)++] = pw_path;
    return 0;
}

int kopt_test_nats_connect_as(const kopt_test_nats_t *s, const char *user, natsConnection **nc)
{
    char pw[4096], err[300];
    kopt_nats_auth_t a = {0};
    natsOptions *o = NULL;
    natsStatus st;
    int r;

    *nc = NULL;
    if (s->auth) {
        a.ca = s->ca_file;
        a.cert = s->cert_file;
        a.key = s->key_file;
        if (user) {
            kopt_test_nats_password_file(s, user, pw, sizeof(pw));
            a.user = (char *)user;
            a.password_file = pw;
        }
    }
    r = kopt_nats_options_new(s->url, "kopt-test", &a, &o, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "harness: NATS options for %s: %s\n", user ? user : "(none)", err);
        return r;
    }
    natsOptions_SetTimeout(o, 5000);
    st = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (st != NATS_OK) {
        *nc = NULL;
        return -ECONNREFUSED;
    }
    return 0;
}

int kopt_test_nats_connect(const kopt_test_nats_t *s, natsConnection **nc)
{
    return kopt_test_nats_connect_as(s, s->auth ? "kopt-admin" : NULL, nc);
}

int kopt_test_nats_jetstream(const kopt_test_nats_t *s, natsConnection **nc, jsCtx **js)
{
    int r = kopt_test_nats_connect(s, nc);

    *js = NULL;
    if (r < 0)
        return r;
    if (natsConnection_JetStream(js, *nc, NULL) != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return -EIO;
    }
    return 0;
}
