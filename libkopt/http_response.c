/* Pure helpers for HTTP responses: reason phrases and the JSON error body that
 * every kopt HTTP error carries ({"error":"not found","path":"/x"}). */
#include <kopt/http.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int status;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *kopt_http_status_text(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

/* A JSON string of s; bytes that are not valid UTF-8 (a garbage path) become '?'. */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

char *kopt_http_error_json(int status, const char *message, const char *path)
{
    json_t *o = json_object();
    char lower[64];
    char *s;

    if (!o)
        return NULL;
    if (!message) { /* "Not Found" -> "not found" */
        snprintf(lower, sizeof(lower), "%s", kopt_http_status_text(status));
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        message = lower;
    }
    json_object_set_new(o, "error", safe_string(message));
    if (path)
        json_object_set_new(o, "path", safe_string(path));
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}
