/* An OpenID Connect issuer for tests: signing keys made at run time (RSA
 * 2048, EC P-256) with their JWKS, tokens minted with them (and forged ones:
 * alg none, HS256 keyed with the public key), and an HTTPS server on a free
 * loopback port serving the discovery document and the JWKS, which can also
 * serve garbage or go down (its port closed) and come back. One server
 * thread, one connection at a time: the advisor fetches rarely. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

struct kopt_test_jwk {
    EVP_PKEY *pkey;
    char alg[8];
    char kid[64];
};

struct kopt_test_issuer {
    char url[64];
    int port;
    int fd; /* listening, or -1 while down */
    SSL_CTX *ctx;
    pthread_t thread;
    atomic_bool stop;
    atomic_int mode;
    pthread_mutex_t mu;
    char *jwks; /* guarded by mu */
    atomic_int discovery_hits, jwks_hits;
};

/* ---- keys and tokens -------------------------------------------------------- */

kopt_test_jwk_t *kopt_test_jwk_new(const char *alg, const char *kid)
{
    kopt_test_jwk_t *k = calloc(1, sizeof(*k));

    if (!k)
        return NULL;
    snprintf(k->alg, sizeof(k->alg), "%s", alg);
    snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
    if (strcmp(alg, "RS256") == 0)
        k->pkey = EVP_RSA_gen(2048);
    else if (strcmp(alg, "ES256") == 0)
        k->pkey = EVP_EC_gen("P-256");
    if (!k->pkey) {
        free(k);
        return NULL;
    }
    return k;
}

void kopt_test_jwk_free(kopt_test_jwk_t *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

static char *b64url(const unsigned char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len * 4 / 3 + 4), *o = out;
    size_t i = 0;

    if (!out)
        return NULL;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    if (len - i == 1) {
        *o++ = abc[data[i] >> 2];
        *o++ = abc[(data[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 8 | data[i + 1];

        *o++ = abc[v >> 10];
        *o++ = abc[(v >> 4) & 63];
        *o++ = abc[(v & 15) << 2];
    }
    *o = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

static char *bn_b64url(const EVP_PKEY *p, const char *name, int pad_to)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    char *out = NULL;
    int n;

    if (EVP_PKEY_get_bn_param(p, name, &bn) != 1)
        return NULL;
    n = pad_to > 0 ? BN_bn2binpad(bn, buf, pad_to) : BN_bn2bin(bn, buf);
    if (n > 0)
        out = b64url(buf, (size_t)n);
    BN_free(bn);
    return out;
}

static json_t *jwk_json(const kopt_test_jwk_t *k)
{
    json_t *o;
    char *a, *b;

    if (strcmp(k->alg, "RS256") == 0) {
        a = bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        b = bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "RSA", "use", "sig", "alg", "RS256",
                      "kid", k->kid, "n", a ? a : "", "e", b ? b : "");
    } else {
        a = bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        b = bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "use", "sig", "alg", "ES256",
                      "kid", k->kid, "crv", "P-256", "x", a ? a : "", "y", b ? b : "");
    }
    free(a);
    free(b);
    return o;
}

char *kopt_test_jwks_json(kopt_test_jwk_t *const *keys, size_t n)
{
    json_t *arr = json_array(), *doc;
    char *out;

    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, jwk_json(keys[i]));
    doc = json_pack("{s:o}", "keys", arr);
    out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);

    if (s)
        snprintf(s, n, "%s.%s%s%s", a, b, c[0] ? "." : "", c);
    return s;
}

/* "<b64(header)>.<b64(claims)>" signed with `sign`; ownership of the parts. */
static char *finish(char *input, unsigned char *sig, size_t sig_len)
{
    char *s = sig ? b64url(sig, sig_len) : strdup("");
    size_t n = strlen(input) + strlen(s ? s : "") + 2;
    char *tok = s ? malloc(n) : NULL;

    if (tok)
        snprintf(tok, n, "%s.%s", input, s);
    free(s);
    free(input);
    return tok;
}

char *kopt_test_jwt_sign(const kopt_test_jwk_t *k, const char *header, const char *claims)
{
    char hdr[256], *h, *c, *input;
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!header) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->alg,
                 k->kid);
        header = hdr;
    }
    h = b64url_str(header);
    c = b64url_str(claims);
    input = join3(h, c, "");
    free(h);
    free(c);
    if (!md || !input || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, strlen(input)) != 1) {
        EVP_MD_CTX_free(md);
        free(input);
        return NULL;
    }
    EVP_MD_CTX_free(md);
    if (strcmp(k->alg, "ES256") == 0) {
        /* OpenSSL signs in DER; JWS wants r||s, 32 bytes each. */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        unsigned char raw[64];

        if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32) {
            ECDSA_SIG_free(es);
            free(input);
            return NULL;
        }
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        sig_len = 64;
    }
    return finish(input, sig, sig_len);
}

char *kopt_test_jwt_unsigned(const char *header, const char *claims)
{
    char *h = b64url_str(header), *c = b64url_str(claims), *input = join3(h, c, "");

    free(h);
    free(c);
    return input ? finish(input, NULL, 0) : NULL;
}

char *kopt_test_jwt_hs256_public(const kopt_test_jwk_t *k, const char *claims)
{
    char hdr[256], *h, *c, *input, *pem = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    long pem_len;

    /* The classic attack: the verifier's public key as the HMAC secret. */
    if (!bio || PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
        BIO_free(bio);
        return NULL;
    }
    pem_len = BIO_get_mem_data(bio, &pem);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->kid);
    h = b64url_str(hdr);
    c = b64url_str(claims);
    input = join3(h, c, "");
    free(h);
    free(c);
    if (!input || !HMAC(EVP_sha256(), pem, (int)pem_len, (unsigned char *)input, strlen(input), mac,
                        &mac_len)) {
        BIO_free(bio);
        free(input);
        return NULL;
    }
    BIO_free(bio);
    return finish(input, mac, mac_len);
}

/* ---- the HTTPS server --------------------------------------------------------- */

static int listen_on(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    return fd;
}

static void reply(SSL *ssl, int status, const char *type, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Not Found", type, strlen(body));

    SSL_write(ssl, head, n);
    if (*body)
        SSL_write(ssl, body, (int)strlen(body));
}

static void serve_one(kopt_test_issuer_t *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx);
    char req[4096], path[256] = "";
    int len = 0, n;

    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        goto out;
    while (len < (int)sizeof(req) - 1 &&
           (n = SSL_read(ssl, req + len, (int)sizeof(req) - 1 - len)) > 0) {
        len += n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    sscanf(req, "GET %255s ", path);
    if (strcmp(path, "/.well-known/openid-configuration") == 0) {
        char body[512];

        atomic_fetch_add(&s->discovery_hits, 1);
        if (atomic_load(&s->mode) == KOPT_TEST_ISSUER_GARBAGE)
            snprintf(body, sizeof(body), "<html>this is no JSON</html>");
        else
            snprintf(body, sizeof(body), "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\"}", s->url,
                     s->url);
        reply(ssl, 200, "application/json", body);
    } else if (strcmp(path, "/jwks") == 0) {
        atomic_fetch_add(&s->jwks_hits, 1);
        pthread_mutex_lock(&s->mu);
        reply(ssl, 200, "application/json", s->jwks ? s->jwks : "{}");
        pthread_mutex_unlock(&s->mu);
    } else {
        reply(ssl, 404, "text/plain", "not found\n");
    }
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
}

static void *server_main(void *data)
{
    kopt_test_issuer_t *s = data;

    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int fd;

        /* Down: the port closed, so clients are refused; up: bound again. */
        if (atomic_load(&s->mode) == KOPT_TEST_ISSUER_DOWN) {
            if (s->fd >= 0) {
                close(s->fd);
                s->fd = -1;
            }
            usleep(20 * 1000);
            continue;
        }
        if (s->fd < 0 && (s->fd = listen_on(s->port)) < 0) {
            usleep(20 * 1000);
            continue;
        }
        p.fd = s->fd;
        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            serve_one(s, fd);
    }
    return NULL;
}

static void issuer_cleanup(void *arg)
{
    kopt_test_issuer_free(arg);
}

int kopt_test_issuer_start(kopt_test_issuer_t **out, const char *cert, const char *key)
{
    kopt_test_issuer_t *s = calloc(1, sizeof(*s));
    int r;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = -1;
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ctx || SSL_CTX_use_certificate_chain_file(s->ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "oidc issuer: cannot load %s / %s\n", cert, key);
        SSL_CTX_free(s->ctx);
        free(s);
        return -EINVAL;
    }
    s->port = kopt_test_free_port();
    s->fd = listen_on(s->port);
    if (s->fd < 0) {
        r = s->fd;
        SSL_CTX_free(s->ctx);
        free(s);
        return r;
    }
    snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%d", s->port);
    r = -pthread_create(&s->thread, NULL, server_main, s);
    if (r < 0) {
        close(s->fd);
        SSL_CTX_free(s->ctx);
        free(s);
        return r;
    }
    kopt_test_cleanup_push(issuer_cleanup, s);
    *out = s;
    return 0;
}

const char *kopt_test_issuer_url(const kopt_test_issuer_t *s)
{
    return s->url;
}

void kopt_test_issuer_set_jwks(kopt_test_issuer_t *s, const char *jwks)
{
    char *copy = strdup(jwks);

    pthread_mutex_lock(&s->mu);
    free(s->jwks);
    s->jwks = copy;
    pthread_mutex_unlock(&s->mu);
}

void kopt_test_issuer_set_mode(kopt_test_issuer_t *s, kopt_test_issuer_mode_t mode)
{
    atomic_store(&s->mode, (int)mode);
}

int kopt_test_issuer_jwks_hits(const kopt_test_issuer_t *s)
{
    return atomic_load(&((kopt_test_issuer_t *)s)->jwks_hits);
}

int kopt_test_issuer_discovery_hits(const kopt_test_issuer_t *s)
{
    return atomic_load(&((kopt_test_issuer_t *)s)->discovery_hits);
}

void kopt_test_issuer_free(kopt_test_issuer_t *s)
{
    if (!s)
        return;
    kopt_test_cleanup_forget(s);
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    if (s->fd >= 0)
        close(s->fd);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    free(s->jwks);
    free(s);
}
