/* kopt/objstore_settings.h: the daemons' object store settings as options. */
#include <string.h>

#include <kopt/objstore_settings.h>

void kopt_s3_objstore_options(const kopt_s3_settings_t *s, uint32_t timeout_ms,
                              kopt_objstore_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->endpoint = s->endpoint;
    o->bucket = s->bucket;
    o->region = s->region;
    o->ca_file = s->ca;
    o->path_style = s->path_style;
    o->credentials_file = s->credentials_file;
    o->timeout_ms = timeout_ms;
}

bool kopt_s3_configured(const kopt_s3_settings_t *s)
{
    return s->endpoint && *s->endpoint && s->bucket && *s->bucket;
}
