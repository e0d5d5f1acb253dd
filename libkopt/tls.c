/* TLS material: PEM files read and verified with OpenSSL, and a reloadable,
 * lock-protected holder for servers. See kopt/tls.h. */
#include <kopt/tls.h>

#include "tls_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopt/metrics.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PEM_MAX_BYTES (1 << 20) /* a CA bundle is KiBs; refuse anything huge */

struct kopt_tls_source {
    pthread_mutex_t lock;
    char *ca_file, *cert_file, *key_file;
    kopt_tls_material_t current;
    uint64_t generation;
};


int kopt_tls_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    ERR_clear_error();
    return r;
}


int kopt_tls_read_pem(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f)
        return kopt_tls_fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(PEM_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    n = fread(buf, 1, PEM_MAX_BYTES + 1, f);
    fclose(f);
    if (n > PEM_MAX_BYTES) {
        free(buf);
        return kopt_tls_fail(err, errlen, -EFBIG, "%s is larger than %d bytes", path,
                             PEM_MAX_BYTES);
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}


static X509 *first_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return x;
}


static void copy_uri_san(X509 *x, char *out, size_t outlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

    out[0] = '\0';
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_URI) {
            const ASN1_STRING *s = g->d.uniformResourceIdentifier;
            int len = ASN1_STRING_length(s);
            if (len > 0 && (size_t)len < outlen) {
                memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
                out[len] = '\0';
            }
            break;
        }
    }
    GENERAL_NAMES_free(names);
}


static int64_t not_after(X509 *x)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}


/* The leaf must chain to one of the certificates in the CA bundle. */
static int verify_chain(const char *ca_pem, X509 *leaf, const char *cert_file, const char *ca_file,
                        char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca;
    int n = 0, r = 0;

    if (!store || !ctx || !bio) {
        r = -ENOMEM;
        goto out;
    }
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        X509_STORE_add_cert(store, ca);
        X509_free(ca);
        n++;
    }
    if (n == 0) {
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s holds no PEM certificate", ca_file);
        goto out;
    }
    /* Expiry is checked (and only warned about) by the caller. */
    X509_STORE_set_flags(store, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1 || X509_verify_cert(ctx) != 1)
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s is not signed by the CA in %s: %s", cert_file,
                          ca_file, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
    BIO_free(bio);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}


static int check_material(const kopt_tls_material_t *m, const char *ca_file, const char *cert_file,
                          const char *key_file, X509 **leaf_out, char *err, size_t errlen)
{
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf = first_cert(m->cert_pem);
    int r = 0;

    if (!leaf)
        return kopt_tls_fail(err, errlen, -EINVAL, "%s holds no PEM certificate", cert_file);
    bio = BIO_new_mem_buf(m->key_pem, -1);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!key)
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s holds no PEM private key (or it is encrypted)",
                          key_file);
    else if (X509_check_private_key(leaf, key) != 1)
        r = kopt_tls_fail(err, errlen, -EINVAL,
                          "the key in %s does not match the certificate in %s", key_file,
                          cert_file);
    else if (m->ca_pem)
        r = verify_chain(m->ca_pem, leaf, cert_file, ca_file, err, errlen);
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    if (r < 0)
        X509_free(leaf);
    else
        *leaf_out = leaf;
    return r;
}


int kopt_tls_material_load(const char *ca_file, const char *cert_file, const char *key_file,
                           kopt_tls_material_t *out, char *err, size_t errlen)
{
    kopt_tls_material_t m = {0};
    X509 *leaf = NULL;
    int r;

    if (!cert_file || !*cert_file || !key_file || !*key_file)
        return kopt_tls_fail(err, errlen, -EINVAL,
                             "a certificate and a key file are both required");
    r = ca_file && *ca_file ? kopt_tls_read_pem(ca_file, &m.ca_pem, err, errlen) : 0;
    if (r == 0)
        r = kopt_tls_read_pem(cert_file, &m.cert_pem, err, errlen);
    if (r == 0)
        r = kopt_tls_read_pem(key_file, &m.key_pem, err, errlen);
    if (r == 0)
        r = check_material(&m, ca_file, cert_file, key_file, &leaf, err, errlen);
    if (r < 0) {
        kopt_tls_material_clear(&m);
        return r;
    }
    m.not_after_unix = not_after(leaf);
    copy_uri_san(leaf, m.uri_san, sizeof(m.uri_san));
    X509_free(leaf);
    *out = m;
    return 0;
}


void kopt_tls_material_clear(kopt_tls_material_t *m)
{
    if (!m)
        return;
    free(m->ca_pem);
    free(m->cert_pem);
    if (m->key_pem) {
        /* Key bytes do not linger in freed memory. */
        OPENSSL_cleanse(m->key_pem, strlen(m->key_pem));
        free(m->key_pem);
    }
    memset(m, 0, sizeof(*m));
}


static int str_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}


int kopt_tls_material_equal(const kopt_tls_material_t *a, const kopt_tls_material_t *b)
{
    return str_equal(a->ca_pem, b->ca_pem) && str_equal(a->cert_pem, b->cert_pem) &&
           str_equal(a->key_pem, b->key_pem);
}


int kopt_tls_material_copy(const kopt_tls_material_t *from, kopt_tls_material_t *to)
{
    kopt_tls_material_t m = *from;

    m.ca_pem = from->ca_pem ? strdup(from->ca_pem) : NULL;
    m.cert_pem = from->cert_pem ? strdup(from->cert_pem) : NULL;
    m.key_pem = from->key_pem ? strdup(from->key_pem) : NULL;
    if ((from->ca_pem && !m.ca_pem) || (from->cert_pem && !m.cert_pem) ||
        (from->key_pem && !m.key_pem)) {
        kopt_tls_material_clear(&m);
        return -ENOMEM;
    }
    *to = m;
    return 0;
}


int kopt_tls_source_new(const char *ca_file, const char *cert_file, const char *key_file,
                        kopt_tls_source_t **out, char *err, size_t errlen)
{
    kopt_tls_source_t *src = calloc(1, sizeof(*src));
    int r;

    if (!src)
        return -ENOMEM;
    pthread_mutex_init(&src->lock, NULL);
    src->ca_file = ca_file ? strdup(ca_file) : NULL;
    src->cert_file = cert_file ? strdup(cert_file) : NULL;
    src->key_file = key_file ? strdup(key_file) : NULL;
    r = kopt_tls_material_load(ca_file, cert_file, key_file, &src->current, err, errlen);
    if (r < 0) {
        kopt_tls_source_free(src);
        return r;
    }
    src->generation = 1;
    *out = src;
    return 0;
}


int kopt_tls_source_reload(kopt_tls_source_t *src, int *changed, char *err, size_t errlen)
{
    kopt_tls_material_t fresh, old;
    int r =
        kopt_tls_material_load(src->ca_file, src->cert_file, src->key_file, &fresh, err, errlen);

    *changed = 0;
    if (r < 0)
        return r;
    pthread_mutex_lock(&src->lock);
    if (kopt_tls_material_equal(&fresh, &src->current)) {
        pthread_mutex_unlock(&src->lock);
        kopt_tls_material_clear(&fresh);
        return 0;
    }
    old = src->current;
    src->current = fresh;
    src->generation++;
    pthread_mutex_unlock(&src->lock);
    kopt_tls_material_clear(&old);
    *changed = 1;
    return 0;
}


int kopt_tls_source_snapshot(kopt_tls_source_t *src, kopt_tls_material_t *out, uint64_t *generation)
{
    int r;

    pthread_mutex_lock(&src->lock);
    r = kopt_tls_material_copy(&src->current, out);
    if (generation)
        *generation = src->generation;
    pthread_mutex_unlock(&src->lock);
    return r;
}


uint64_t kopt_tls_source_generation(kopt_tls_source_t *src)
{
    uint64_t g;

    pthread_mutex_lock(&src->lock);
    g = src->generation;
    pthread_mutex_unlock(&src->lock);
    return g;
}


void kopt_tls_source_free(kopt_tls_source_t *src)
{
    if (!src)
        return;
    kopt_tls_material_clear(&src->current);
    free(src->ca_file);
    free(src->cert_file);
    free(src->key_file);
    pthread_mutex_destroy(&src->lock);
    free(src);
}

void kopt_tls_export_not_after(struct kopt_metrics *m, const char *cert_file,
                               int64_t not_after_unix)
{
    kopt_metric_family_t *f;

    if (!m || !cert_file ||
        kopt_metrics_gauge(m, "kopt_tls_certificate_not_after_seconds",
                           "notAfter of the leaf certificate loaded from file, in unix seconds.",
                           "file", &f) < 0)
        return;
    kopt_metric_gauge_set(kopt_metric_gauge_with(f, cert_file), (double)not_after_unix);
}

void kopt_tls_source_export(kopt_tls_source_t *src, struct kopt_metrics *m)
{
    int64_t na;

    if (!src)
        return;
    pthread_mutex_lock(&src->lock);
    na = src->current.not_after_unix;
    pthread_mutex_unlock(&src->lock);
    kopt_tls_export_not_after(m, src->cert_file, na);
}
