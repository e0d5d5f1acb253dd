/* The web page: the files of advisor/web/ (index.html at /, app.js,
 * style.css), embedded at build time by advisor/web/embed_web.py, served
 * from memory with the page's security headers. The page itself calls the
 * /v1 gateway with the API key the user types (docs/advisor.md). */
#include "advisor.h"

/* Scripts and styles come only from our own files, so the policy needs no
 * 'unsafe-inline': an injected <script> or style attribute does not run. The
 * page holds an API key field: no other site may frame it (clickjacking),
 * and nothing is sent but to us. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

static void on_asset(kopt_http_response_t *res, void *data)
{
    const adv_web_asset_t *a = data;

    kopt_http_response_header(res, "Content-Security-Policy", WEB_CSP);
    kopt_http_response_header(res, "X-Content-Type-Options", "nosniff");
    kopt_http_response_header(res, "X-Frame-Options", "DENY");
    kopt_http_response_header(res, "Referrer-Policy", "no-referrer");
    /* The files change with the binary; a browser asks again each time so a
     * new page never runs with an old script. */
    kopt_http_response_header(res, "Cache-Control", "no-cache");
    kopt_http_response_send(res, 200, a->content_type, a->data, a->len);
}

int adv_web_routes(kopt_http_server_t *srv)
{
    for (size_t i = 0; i < adv_n_web_assets; i++) {
        int r = kopt_http_server_route(srv, "GET", adv_web_assets[i].path, 0, "ui", on_asset,
                                       (void *)&adv_web_assets[i]);

        if (r < 0)
            return r;
    }
    return 0;
}
