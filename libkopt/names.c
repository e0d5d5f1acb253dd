/* RFC 1123 label and subdomain checks, as Kubernetes applies them. */
#include <kopt/names.h>

#include <errno.h>
#include <string.h>

static int alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int check_label(const char *s, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty label";
        return -EINVAL;
    }
    if (n > 63) {
        *why = "label longer than 63 characters";
        return -EINVAL;
    }
    if (!alnum_lower(s[0]) || !alnum_lower(s[n - 1])) {
        *why = "must start and end with a lower-case letter or digit";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (!alnum_lower(s[i]) && s[i] != '-') {
            *why = "only lower-case letters, digits and '-' allowed";
            return -EINVAL;
        }
    return 0;
}

int kopt_name_check_why(const char *name, kopt_name_kind_t kind, const char **why)
{
    size_t n = strlen(name);

    if (n == 0) {
        *why = "empty";
        return -EINVAL;
    }
    switch (kind) {
    case KOPT_NAME_LABEL:
        return check_label(name, n, why);
    case KOPT_NAME_SUBDOMAIN:
        if (n > 253) {
            *why = "longer than 253 characters";
            return -EINVAL;
        }
        for (const char *p = name;;) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            if (check_label(p, len, why) < 0)
                return -EINVAL;
            if (!dot)
                return 0;
            p = dot + 1;
        }
    case KOPT_NAME_AGENT_ID:
        if (n > 253) {
            *why = "longer than 253 characters";
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            char c = name[i];
            if (!alnum_lower(c) && !(c >= 'A' && c <= 'Z') && c != '.' && c != '_' && c != '-') {
                *why = "only letters, digits, '.', '_' and '-' allowed";
                return -EINVAL;
            }
        }
        return 0;
    }
    *why = "unknown name kind";
    return -EINVAL;
}

int kopt_name_subject_token(const char *name, char *out, size_t len)
{
    size_t n = strlen(name);

    if (n + 1 > len)
        return -E2BIG;
    for (size_t i = 0; i <= n; i++)
        out[i] = name[i] == '.' ? '_' : name[i];
    return 0;
}
