/* TLS for the HTTP server: the OpenSSL server context built from PEM files
 * (rebuilt on reload; a connection keeps the context it started with, which
 * OpenSSL reference-counts), and one session a connection on memory BIOs, so
 * the libuv stream moves ciphertext and the HTTP parser reads plaintext.
 * TLS 1.2 and 1.3 only. Loop thread. See kopt/http.h and http_internal.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <kopt/tls.h>

#include "http_internal.h"
#include "tls_internal.h"

#define SESSION_ID_CONTEXT "kopt-http"
/* TLS 1.2 suites with forward secrecy and AEAD only (ECDHE: no DH parameters to
 * manage); TLS 1.3 keeps OpenSSL's defaults. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

struct kopt_http_tls {
    SSL_CTX *ctx;
    char *cert_file, *key_file, *ca_file;
    kopt_http_client_cert_t client_cert;
    unsigned char digest[EVP_MAX_MD_SIZE]; /* of the files' bytes: tells a reload's change */
};

struct http_tls_conn {
    SSL *ssl; /* owns both memory BIOs */
    BIO *in, *out;
    int started;
    char peer[256]; /* the verified client certificate's first URI SAN, or "" */
};

/* ALPN: HTTP/1.1 is all this server speaks; without a match, no ALPN. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The leaf, then any intermediates of the chain PEM. */
static int use_chain(SSL_CTX *ctx, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;

    X509_free(x);
    while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x on success */
            X509_free(x);
            ok = 0;
        }
    BIO_free(bio);
    ERR_clear_error(); /* the end of the PEM reads as an error */
    return ok ? 0 : -EINVAL;
}

static int use_key(SSL_CTX *ctx, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    int ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;

    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok ? 0 : -EINVAL;
}

/* Trusts the CAs for client certificates and names them in the request. */
static int use_client_cas(SSL_CTX *ctx, const char *pem, kopt_http_client_cert_t mode)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x;
    int n = 0;

    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert(store, x) == 1 && SSL_CTX_add_client_CA(ctx, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();
    SSL_CTX_set_verify(
        ctx,
        SSL_VERIFY_PEER |
            (mode == KOPT_HTTP_CLIENT_CERT_REQUIRE ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    return n > 0 ? 0 : -EINVAL;
}

static SSL_CTX *ctx_base(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CONTEXT,
                                       sizeof(SESSION_ID_CONTEXT) - 1) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No renegotiation (a client-driven CPU sink), buffers freed while idle. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    return ctx;
}

/* Reads the files into a new context and the digest of their bytes. */
static int load(const kopt_http_tls_t *t, SSL_CTX **out, unsigned char *digest, char *err,
                size_t errlen)
{
    kopt_tls_material_t m = {0};
    char *ca = NULL;
    SSL_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    int r = kopt_tls_material_load(NULL, t->cert_file, t->key_file, &m, err, errlen);

    if (r == 0 && t->client_cert != KOPT_HTTP_CLIENT_CERT_NONE)
        r = kopt_tls_read_pem(t->ca_file, &ca, err, errlen);
    if (r < 0)
        goto out;
    ctx = ctx_base();
    md = EVP_MD_CTX_new();
    if (!ctx || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        r = kopt_tls_fail(err, errlen, -ENOMEM, "%s: out of memory building the TLS context",
                          t->cert_file);
        goto out;
    }
    if (use_chain(ctx, m.cert_pem) < 0)
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s: OpenSSL refused the certificate chain",
                          t->cert_file);
    else if (use_key(ctx, m.key_pem) < 0)
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s: OpenSSL refused the private key", t->key_file);
    else if (ca && use_client_cas(ctx, ca, t->client_cert) < 0)
        r = kopt_tls_fail(err, errlen, -EINVAL, "%s holds no PEM certificate", t->ca_file);
    if (r == 0 && (EVP_DigestUpdate(md, m.cert_pem, strlen(m.cert_pem)) != 1 ||
                   EVP_DigestUpdate(md, m.key_pem, strlen(m.key_pem)) != 1 ||
                   (ca && EVP_DigestUpdate(md, ca, strlen(ca)) != 1) ||
                   EVP_DigestFinal_ex(md, digest, NULL) != 1))
        r = -ENOMEM;
out:
    EVP_MD_CTX_free(md);
    free(ca);
    kopt_tls_material_clear(&m);
    ERR_clear_error();
    if (r < 0) {
        SSL_CTX_free(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}

int kopt_http_tls_new(const kopt_http_tls_options_t *o, kopt_http_tls_t **out, char *err,
                      size_t errlen)
{
    kopt_http_tls_t *t;
    int r;

    if (!o->cert_file || !o->key_file)
        return kopt_tls_fail(err, errlen, -EINVAL,
                             "a certificate and a key file are both required");
    if (o->client_cert != KOPT_HTTP_CLIENT_CERT_NONE && (!o->client_ca_file || !*o->client_ca_file))
        return kopt_tls_fail(err, errlen, -EINVAL, "client certificates need a CA file");
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->client_cert = o->client_cert;
    t->cert_file = strdup(o->cert_file);
    t->key_file = strdup(o->key_file);
    t->ca_file = o->client_ca_file ? strdup(o->client_ca_file) : NULL;
    if (!t->cert_file || !t->key_file || (o->client_ca_file && !t->ca_file))
        r = -ENOMEM;
    else
        r = load(t, &t->ctx, t->digest, err, errlen);
    if (r < 0) {
        kopt_http_tls_free(t);
        return r;
    }
    *out = t;
    return 0;
}

int kopt_http_tls_reload(kopt_http_tls_t *t, int *changed, char *err, size_t errlen)
{
    unsigned char digest[EVP_MAX_MD_SIZE] = {0};
    SSL_CTX *ctx;
    int r = load(t, &ctx, digest, err, errlen);

    *changed = 0;
    if (r < 0)
        return r;
    if (memcmp(digest, t->digest, sizeof(digest)) == 0) {
        SSL_CTX_free(ctx); /* same files: keep the context and its session tickets */
        return 0;
    }
    SSL_CTX_free(t->ctx); /* sessions still using it hold a reference */
    t->ctx = ctx;
    memcpy(t->digest, digest, sizeof(digest));
    *changed = 1;
    return 0;
}

void kopt_http_tls_free(kopt_http_tls_t *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    free(t);
}

/* ---- one session ---- */

int http_tls_conn_new(kopt_http_tls_t *t, http_tls_conn_t **out)
{
    http_tls_conn_t *tc = calloc(1, sizeof(*tc));

    if (!tc)
        return -ENOMEM;
    tc->ssl = SSL_new(t->ctx);
    tc->in = BIO_new(BIO_s_mem());
    tc->out = BIO_new(BIO_s_mem());
    if (!tc->ssl || !tc->in || !tc->out) {
        SSL_free(tc->ssl);
        BIO_free(tc->in);
        BIO_free(tc->out);
        free(tc);
        ERR_clear_error();
        return -ENOMEM;
    }
    /* Empty means "more later", not end of stream. */
    BIO_set_mem_eof_return(tc->in, -1);
    BIO_set_mem_eof_return(tc->out, -1);
    SSL_set_bio(tc->ssl, tc->in, tc->out);
    SSL_set_accept_state(tc->ssl);
    *out = tc;
    return 0;
}

void http_tls_conn_free(http_tls_conn_t *tc)
{
    if (!tc)
        return;
    SSL_free(tc->ssl);
    free(tc);
}

int http_tls_conn_feed(http_tls_conn_t *tc, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    tc->started = 1;
    return len <= INT_MAX && BIO_write(tc->in, data, (int)len) == (int)len ? 0 : -ENOMEM;
}

int http_tls_conn_started(const http_tls_conn_t *tc)
{
    return tc->started;
}

int http_tls_conn_established(const http_tls_conn_t *tc)
{
    return SSL_is_init_finished(tc->ssl);
}

static void remember_peer(http_tls_conn_t *tc)
{
    X509 *x = SSL_get0_peer_certificate(tc->ssl);
    GENERAL_NAMES *names;

    if (!x || SSL_get_verify_result(tc->ssl) != X509_V_OK)
        return;
    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0, n_uri = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const unsigned char *v;
        int len;

        if (g->type != GEN_URI)
            continue;
        if (++n_uri > 1) { /* an X.509-SVID has one URI SAN; with two, no identity */
            tc->peer[0] = '\0';
            break;
        }
        v = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
        if (len > 0 && (size_t)len < sizeof(tc->peer) && !memchr(v, '\0', (size_t)len)) {
            memcpy(tc->peer, v, (size_t)len);
            tc->peer[len] = '\0';
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
}

/* A bounded label for the first SSL error of a failed handshake. */
static const char *classify(unsigned long code)
{
    int reason = ERR_GET_REASON(code);

    if (ERR_GET_LIB(code) != ERR_LIB_SSL)
        return "other";
    switch (reason) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return "plain_http";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return "client_cert";
    default:
        /* An alert the client sent, often "unknown ca": it does not trust us. */
        return reason >= SSL_AD_REASON_OFFSET ? "peer_alert" : "protocol";
    }
}

int http_tls_conn_handshake(http_tls_conn_t *tc, const char **reason, char *detail,
                            size_t detail_len)
{
    unsigned long code;
    const char *words;
    long verify;
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
        remember_peer(tc);
        return 1;
    }
    e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    code = ERR_peek_error();
    words = code ? ERR_reason_error_string(code) : NULL;
    *reason = classify(code);
    verify = SSL_get_verify_result(tc->ssl);
    snprintf(detail, detail_len, "%s%s%s", words ? words : "handshake failed",
             verify != X509_V_OK ? ": " : "",
             verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
    ERR_clear_error();
    return -EPROTO;
}

int http_tls_conn_read(http_tls_conn_t *tc, char *buf, size_t len)
{
    int n, e;

    ERR_clear_error();
    n = SSL_read(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    e = SSL_get_error(tc->ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return e == SSL_ERROR_ZERO_RETURN ? -EPIPE : -EPROTO;
}

int http_tls_conn_write(http_tls_conn_t *tc, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        int n;

        ERR_clear_error();
        /* A memory BIO grows, so the whole chunk goes in at once. */
        n = SSL_write(tc->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
        if (n <= 0) {
            ERR_clear_error();
            return -EPROTO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void http_tls_conn_close_notify(http_tls_conn_t *tc)
{
    if (!SSL_is_init_finished(tc->ssl))
        return;
    ERR_clear_error();
    SSL_shutdown(tc->ssl); /* 0: ours is queued; the peer's is not awaited */
    ERR_clear_error();
}

void *http_tls_conn_take_output(http_tls_conn_t *tc, size_t hdr, size_t *len)
{
    size_t n = BIO_ctrl_pending(tc->out);
    char *buf;

    *len = n;
    if (n == 0 || n > INT_MAX)
        return NULL;
    buf = malloc(hdr + n);
    if (!buf)
        return NULL;
    if (BIO_read(tc->out, buf + hdr, (int)n) != (int)n) {
        free(buf);
        return NULL;
    }
    return buf;
}

const char *http_tls_conn_version(const http_tls_conn_t *tc)
{
    return SSL_get_version(tc->ssl);
}

const char *http_tls_conn_cipher(const http_tls_conn_t *tc)
{
    return SSL_get_cipher_name(tc->ssl);
}

const char *http_tls_conn_peer(const http_tls_conn_t *tc)
{
    return tc->peer[0] ? tc->peer : NULL;
}
