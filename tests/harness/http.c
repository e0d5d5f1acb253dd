/* Network probes for tests: is a loopback port taken, and blocking HTTP
 * requests with libcurl (readiness probes on the nats monitor and ClickHouse
 * /ping, queries, admin endpoints, the advisor's API with keys and TLS).
 * curl's global state is set up once and torn down at exit. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *data;
    size_t len;
} body_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_cleanup(void)
{
    curl_global_cleanup();
}

static void curl_setup(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {
        curl_ok = 1;
        atexit(curl_cleanup);
    }
}

int kopt_test_port_accepts(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r;

    if (fd < 0)
        return -errno;
    r = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return r;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    body_t *b = user;
    size_t n = size * nmemb;
    char *grown = realloc(b->data, b->len + n + 1);

    if (!grown)
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int kopt_test_http(const char *url, const char *body, long timeout_ms, long *status, char **out)
{
    body_t b = {0};
    CURL *c;
    CURLcode result;
    long code = 0;

    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    pthread_once(&curl_once, curl_setup);
    if (!curl_ok || !(c = curl_easy_init()))
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* loopback, whatever http_proxy says */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    result = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (status)
        *status = code;
    if (result != CURLE_OK) {
        free(b.data);
        return result == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
    }
    if (out)
        *out = b.data ? b.data : strdup("");
    else
        free(b.data);
    return 0;
}

long kopt_test_http_call(const kopt_test_http_req_t *q, kopt_test_http_resp_t *r)
{
    body_t body = {0}, headers = {0};
    struct curl_slist *h = NULL;
    char *auth = NULL;
    CURL *c;

    memset(r, 0, sizeof(*r));
    r->curl = CURLE_FAILED_INIT;
    pthread_once(&curl_once, curl_setup);
    if (curl_ok && (c = curl_easy_init())) {
        curl_easy_setopt(c, CURLOPT_URL, q->url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                         q->method ? q->method
                         : q->body ? "POST"
                                   : "GET");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 60000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        if (q->bearer && asprintf(&auth, "Authorization: Bearer %s", q->bearer) > 0)
            h = curl_slist_append(h, auth);
        if (q->body) {
            h = curl_slist_append(h, "Content-Type: application/json");
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (q->ca)
            curl_easy_setopt(c, CURLOPT_CAINFO, q->ca);
        if (q->cert) {
            curl_easy_setopt(c, CURLOPT_SSLCERT, q->cert);
            curl_easy_setopt(c, CURLOPT_SSLKEY, q->key);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
        r->curl = (int)curl_easy_perform(c);
        if (r->curl == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        free(auth);
    }
    r->body = body.data ? body.data : strdup("");
    r->headers = headers.data ? headers.data : strdup("");
    return r->status;
}

void kopt_test_http_resp_free(kopt_test_http_resp_t *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

int kopt_test_wait_http_ok(int port, const char *path, double seconds)
{
    const struct timespec pause = {.tv_nsec = 200 * 1000 * 1000};
    double end = kopt_test_now() + seconds;
    char url[256];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    while (kopt_test_now() < end) {
        if (kopt_test_http(url, NULL, 2000, &status, NULL) == 0 && status == 200)
            return 0;
        nanosleep(&pause, NULL);
    }
    return -ETIMEDOUT;
}

double kopt_test_metric(const char *admin_url, const char *sample)
{
    char url[256], *body = NULL, *p;
    long status = 0;
    double v = -1;
    size_t n = strlen(sample);

    snprintf(url, sizeof(url), "%s/metrics", admin_url);
    if (kopt_test_http(url, NULL, 2000, &status, &body) == 0 && status == 200 && body)
        for (p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    free(body);
    return v;
}
