/* TLS material (CA, certificate, key) loaded from PEM files and checked with
 * OpenSSL before any server or client uses it, so a wrong file is a clear
 * error at start or at SIGHUP rather than a failed handshake later.
 *
 * kopt_tls_source_t holds the current material for a server that reloads on
 * SIGHUP: reload runs on the loop thread, snapshots are taken from any thread
 * (the gRPC handshake thread) under a lock. */
#ifndef KOPT_TLS_H
#define KOPT_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *ca_pem;   /* NUL-terminated PEM bundle; NULL when no CA file is set */
    char *cert_pem; /* leaf first, then any intermediates */
    char *key_pem;
    int64_t not_after_unix; /* leaf certificate expiry */
    char uri_san[256];      /* the leaf's first URI SAN (spiffe://...), "" if none */
} kopt_tls_material_t;

/* Reads and checks the files: each parses, the key matches the certificate,
 * the certificate chains to the CA when both are given. `ca_file` may be NULL.
 * On error returns a negative errno and writes a sentence naming the file to
 * `err` (never key material). */
int kopt_tls_material_load(const char *ca_file, const char *cert_file, const char *key_file,
                           kopt_tls_material_t *out, char *err, size_t errlen);

void kopt_tls_material_clear(kopt_tls_material_t *m);

/* A PEM file (at most 1 MiB) as a NUL-terminated string the caller frees.
 * A negative errno with a sentence naming the file in err (-EFBIG when
 * larger). */
int kopt_tls_read_pem(const char *path, char **out, char *err, size_t errlen);

/* 1 when both hold the same PEM bytes. */
int kopt_tls_material_equal(const kopt_tls_material_t *a, const kopt_tls_material_t *b);

/* Deep copy; 0 or -ENOMEM. */
int kopt_tls_material_copy(const kopt_tls_material_t *from, kopt_tls_material_t *to);

typedef struct kopt_tls_source kopt_tls_source_t;

/* Loads the files once; the paths are copied and re-read by reload. */
int kopt_tls_source_new(const char *ca_file, const char *cert_file, const char *key_file,
                        kopt_tls_source_t **out, char *err, size_t errlen);

/* Re-reads the files. On success *changed says whether the bytes differ and
 * the generation moved; on failure the old material stays in use. */
int kopt_tls_source_reload(kopt_tls_source_t *src, int *changed, char *err, size_t errlen);

/* Copies the current material out (the caller clears it); *generation, if not
 * NULL, tells which load it came from (starts at 1, +1 per change). */
int kopt_tls_source_snapshot(kopt_tls_source_t *src, kopt_tls_material_t *out,
                             uint64_t *generation);

uint64_t kopt_tls_source_generation(kopt_tls_source_t *src);

void kopt_tls_source_free(kopt_tls_source_t *src);

/* Certificate expiry for alerts: sets
 * kopt_tls_certificate_not_after_seconds{file="<cert_file>"} to the leaf's
 * notAfter (unix seconds) in `m`. Call after every (re)load. */
struct kopt_metrics;
void kopt_tls_export_not_after(struct kopt_metrics *m, const char *cert_file,
                               int64_t not_after_unix);
/* The same for the source's current certificate. */
void kopt_tls_source_export(kopt_tls_source_t *src, struct kopt_metrics *m);

#endif
