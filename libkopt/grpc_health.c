/* grpc.health.v1.Health/Check for kopt servers: per-service status set by the
 * daemon (its readiness), and the overall status "" that Kubernetes gRPC
 * probes ask for. Watch is left to the catch-all (UNIMPLEMENTED). */
#include <kopt/grpc_services.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

#define MAX_SERVICES 16

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus status_t;

struct kopt_grpc_health {
    struct {
        char name[128];
        int serving;
    } services[MAX_SERVICES];
    size_t n;
};

static int lookup(const kopt_grpc_health_t *h, const char *service, status_t *out)
{
    int all = 1;

    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->services[i].name, service) == 0) {
            *out = h->services[i].serving
                       ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
            return 0;
        }
        all &= h->services[i].serving;
    }
    if (*service)
        return -ENOENT;
    *out = all && h->n > 0 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                           : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    return 0;
}

static void check(kopt_grpc_call_t *c, const uint8_t *req, size_t len)
{
    kopt_grpc_health_t *h = kopt_grpc_call_user(c);
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, len, req);
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t buf[16];

    if (!in) {
        kopt_grpc_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest", NULL,
                             0);
        return;
    }
    if (lookup(h, in->service, &out.status) < 0)
        kopt_grpc_call_reply(c, GRPC_STATUS_NOT_FOUND, "unknown service", NULL, 0);
    else
        kopt_grpc_call_reply(c, GRPC_STATUS_OK, NULL, buf,
                             grpc__health__v1__health_check_response__pack(&out, buf));
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

int kopt_grpc_health_register(kopt_grpc_server_t *s, kopt_grpc_health_t **out)
{
    kopt_grpc_health_t *h = calloc(1, sizeof(*h));
    int r;

    if (!h)
        return -ENOMEM;
    r = kopt_grpc_server_add_unary(s, "/grpc.health.v1.Health/Check", check, h);
    if (r < 0) {
        free(h);
        return r;
    }
    *out = h;
    return 0;
}

int kopt_grpc_health_set(kopt_grpc_health_t *h, const char *service, int serving)
{
    size_t i;

    if (strlen(service) >= sizeof(h->services[0].name))
        return -ENAMETOOLONG;
    for (i = 0; i < h->n; i++)
        if (strcmp(h->services[i].name, service) == 0)
            break;
    if (i == h->n) {
        if (h->n == MAX_SERVICES)
            return -ENOSPC;
        strcpy(h->services[h->n++].name, service);
    }
    h->services[i].serving = !!serving;
    return 0;
}

void kopt_grpc_health_free(kopt_grpc_health_t *h)
{
    free(h);
}
