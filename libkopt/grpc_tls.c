/* gRPC server and channel credentials from kopt TLS material; the server side
 * reloads through gRPC's certificate-config fetcher. See kopt/grpc_tls.h. */
#include <kopt/grpc_tls.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <kopt/log.h>

struct kopt_grpc_tls_fetcher {
    kopt_tls_source_t *src;
    _Atomic uint64_t served; /* generation gRPC has; the fetcher runs on gRPC threads */
};


/* Called by gRPC at start and before handshakes: a new config only when the
 * source moved on since the last one handed over. */
static grpc_ssl_certificate_config_reload_status fetch(void *user_data,
                                                       grpc_ssl_server_certificate_config **out)
{
    kopt_grpc_tls_fetcher_t *f = user_data;
    kopt_tls_material_t m;
    grpc_ssl_pem_key_cert_pair pair;
    uint64_t gen;

    if (kopt_tls_source_generation(f->src) == atomic_load(&f->served))
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    if (kopt_tls_source_snapshot(f->src, &m, &gen) < 0)
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    pair.private_key = m.key_pem;
    pair.cert_chain = m.cert_pem;
    *out = grpc_ssl_server_certificate_config_create(m.ca_pem, &pair, 1);
    kopt_tls_material_clear(&m);
    if (!*out)
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    if (atomic_exchange(&f->served, gen) != 0)
        kopt_log_info("TLS certificates reloaded for new connections",
                      KOPT_UINT("generation", gen));
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}


int kopt_grpc_server_credentials_new(kopt_tls_source_t *src, kopt_client_cert_t mode,
                                     grpc_server_credentials **creds,
                                     kopt_grpc_tls_fetcher_t **fetcher)
{
    kopt_grpc_tls_fetcher_t *f;
    grpc_ssl_server_credentials_options *opts;
    grpc_ssl_client_certificate_request_type req =
        mode == KOPT_CLIENT_CERT_REQUIRED
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    kopt_tls_material_t probe;

    /* Client certificates cannot be verified without a CA. */
    if (kopt_tls_source_snapshot(src, &probe, NULL) < 0)
        return -ENOMEM;
    if (!probe.ca_pem) {
        kopt_tls_material_clear(&probe);
        return -EINVAL;
    }
    kopt_tls_material_clear(&probe);
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->src = src;
    opts = grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch, f);
    *creds = opts ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
    if (!*creds) {
        free(f);
        return -EINVAL;
    }
    *fetcher = f;
    return 0;
}


void kopt_grpc_tls_fetcher_free(kopt_grpc_tls_fetcher_t *f)
{
    free(f);
}


grpc_channel_credentials *kopt_grpc_channel_credentials_new(const kopt_tls_material_t *m)
{
    grpc_ssl_pem_key_cert_pair pair = {m->key_pem, m->cert_pem};

    return grpc_ssl_credentials_create(m->ca_pem, m->cert_pem ? &pair : NULL, NULL, NULL);
}
