/* Network probes for tests: is a loopback port taken, and one blocking HTTP
 * request with libcurl (readiness probes on the nats monitor and ClickHouse
 * /ping, queries, admin endpoints). curl's global state is set up once and torn
 * down at exit. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
