/* Kubernetes name rules, as kopt checks them (and the subject tokens that
 * a name becomes). Pure. */
#ifndef KOPT_NAMES_H
#define KOPT_NAMES_H

#include <stddef.h>

typedef enum {
    KOPT_NAME_LABEL,     /* RFC 1123 label: namespaces, containers; <= 63 */
    KOPT_NAME_SUBDOMAIN, /* RFC 1123 subdomain: pods, nodes, workloads, clusters; <= 253 */
    KOPT_NAME_AGENT_ID,  /* letters, digits, '.', '_', '-'; <= 253 */
} kopt_name_kind_t;

/* 0, or -EINVAL with the rule broken in `why` (static text). */
int kopt_name_check_why(const char *name, kopt_name_kind_t kind, const char **why);

static inline int kopt_name_check(const char *name, kopt_name_kind_t kind)
{
    const char *why;

    return kopt_name_check_why(name, kind, &why);
}

/* A subdomain as one NATS subject token: '.' becomes '_', which no DNS name
 * contains, so the mapping is reversible. -E2BIG if `len` is too small. */
int kopt_name_subject_token(const char *name, char *out, size_t len);

#endif
