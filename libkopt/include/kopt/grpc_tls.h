/* gRPC credentials from kopt TLS material.
 *
 * Server credentials re-read the material at handshakes through gRPC's
 * certificate-config fetcher, so a SIGHUP reload of the kopt_tls_source_t
 * takes effect for new connections without a restart. Only the two modes that
 * verify a presented certificate exist here: the others accept rogue-CA
 * certificates (docs/stack-facts.md, 'gRPC: client certificate modes'). */
#ifndef KOPT_GRPC_TLS_H
#define KOPT_GRPC_TLS_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include <kopt/tls.h>

typedef enum {
    KOPT_CLIENT_CERT_REQUIRED = 0, /* mutual TLS: ingest */
    KOPT_CLIENT_CERT_OPTIONAL,     /* verified when sent: advisor (API keys otherwise) */
} kopt_client_cert_t;

typedef struct kopt_grpc_tls_fetcher kopt_grpc_tls_fetcher_t;

/* Makes server credentials that follow `src`. The fetcher is what gRPC calls
 * back; it keeps a pointer to `src`, so free the fetcher and then the source
 * only after grpc_server_destroy(). The material must contain a CA. */
int kopt_grpc_server_credentials_new(kopt_tls_source_t *src, kopt_client_cert_t mode,
                                     grpc_server_credentials **creds,
                                     kopt_grpc_tls_fetcher_t **fetcher);

void kopt_grpc_tls_fetcher_free(kopt_grpc_tls_fetcher_t *f);

/* Client credentials: trust the CA in `m`, present m's certificate when it
 * has one. The PEM strings are copied by gRPC. */
grpc_channel_credentials *kopt_grpc_channel_credentials_new(const kopt_tls_material_t *m);

#endif
