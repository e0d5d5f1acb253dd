/* Parsers for cgroup v1/v2 and /proc files and kubepods directory names. Every
 * function works on (buf, len) without reading past len. See cgroup_parse.h. */
#include "cgroup_parse.h"

#include <errno.h>
#include <string.h>

#include <kopt/util.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses digits in [p, end) into *out; -EINVAL on anything else or overflow. */
static int digits(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (p == end)
        return -EINVAL;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Trims spaces and newlines from both ends. */
static void trim(const char **p, const char **end)
{
    while (*p < *end && is_space(**p))
        (*p)++;
    while (*end > *p && is_space((*end)[-1]))
        (*end)--;
}

int agent_cgroup_parse_u64(const char *buf, size_t len, uint64_t *out)
{
    const char *p = buf, *end = buf + len;

    trim(&p, &end);
    if (end - p == 3 && memcmp(p, "max", 3) == 0) {
        *out = AGENT_CGROUP_UNLIMITED;
        return 0;
    }
    return digits(p, end, out);
}

int agent_cgroup_parse_s64(const char *buf, size_t len, int64_t *out)
{
    const char *p = buf, *end = buf + len;
    uint64_t v;
    int neg, r;

    trim(&p, &end);
    neg = p < end && *p == '-';
    r = digits(p + neg, end, &v);
    if (r < 0 || v > (uint64_t)INT64_MAX)
        return -EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int agent_cgroup_parse_cpu_max(const char *buf, size_t len, uint64_t *quota_us, uint64_t *period_us)
{
    const char *p = buf, *end = buf + len, *sp;

    trim(&p, &end);
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || agent_cgroup_parse_u64(p, (size_t)(sp - p), quota_us) < 0 ||
        digits(sp + 1, end, period_us) < 0 || *period_us == 0)
        return -EINVAL;
    return 0;
}

int agent_cgroup_parse_keyed(const char *buf, size_t len, const agent_cgroup_key_t *keys, size_t n)
{
    const char *p = buf, *end = buf + len;
    int found = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *sp = memchr(p, ' ', (size_t)(eol - p));

        if (sp) {
            for (size_t i = 0; i < n; i++) {
                size_t klen = strlen(keys[i].key);
                const char *v = sp + 1, *vend = eol;
                if ((size_t)(sp - p) != klen || memcmp(p, keys[i].key, klen) != 0)
                    continue;
                trim(&v, &vend);
                if (digits(v, vend, keys[i].val) < 0)
                    return -EINVAL;
                found++;
                break;
            }
        }
        p = nl ? nl + 1 : end;
    }
    return found;
}

int agent_cgroup_parse_cpu_stat_v2(const char *buf, size_t len, agent_cgroup_cpu_t *out)
{
    uint64_t usage = UINT64_MAX, periods = 0, thr = 0, thr_us = 0;
    agent_cgroup_key_t keys[] = {{"usage_usec", &usage},
                                 {"nr_periods", &periods},
                                 {"nr_throttled", &thr},
                                 {"throttled_usec", &thr_us}};
    int r = agent_cgroup_parse_keyed(buf, len, keys, 4);

    if (r < 0 || usage == UINT64_MAX || usage > UINT64_MAX / 1000 || thr_us > UINT64_MAX / 1000)
        return -EINVAL;
    out->usage_ns = usage * 1000;
    out->periods = periods;
    out->throttled_periods = thr;
    out->throttled_ns = thr_us * 1000;
    return 0;
}

int agent_cgroup_parse_cpu_stat_v1(const char *buf, size_t len, agent_cgroup_cpu_t *out)
{
    uint64_t periods = 0, thr = 0, thr_ns = 0;
    agent_cgroup_key_t keys[] = {
        {"nr_periods", &periods}, {"nr_throttled", &thr}, {"throttled_time", &thr_ns}};
    int r = agent_cgroup_parse_keyed(buf, len, keys, 3);

    if (r <= 0)
        return -EINVAL;
    out->periods = periods;
    out->throttled_periods = thr;
    out->throttled_ns = thr_ns;
    return 0;
}

int agent_cgroup_parse_memory_stat_v2(const char *buf, size_t len, agent_cgroup_memstat_t *out)
{
    uint64_t anon = UINT64_MAX, inactive = UINT64_MAX;
    agent_cgroup_memstat_t m = {0};
    agent_cgroup_key_t keys[] = {{"anon", &anon},
                                 {"file", &m.file},
                                 {"active_file", &m.active_file},
                                 {"inactive_file", &inactive},
                                 {"shmem", &m.shmem}};
    int r = agent_cgroup_parse_keyed(buf, len, keys, KOPT_ARRAY_SIZE(keys));

    if (r < 0 || anon == UINT64_MAX || inactive == UINT64_MAX)
        return -EINVAL;
    m.anon = anon;
    m.inactive_file = inactive;
    *out = m;
    return 0;
}

int agent_cgroup_parse_memory_stat_v1(const char *buf, size_t len, agent_cgroup_memstat_t *out)
{
    enum { N = 5 };
    static const char *const names[N] = {"rss", "cache", "active_file", "inactive_file", "shmem"};
    uint64_t local[N], total[N];
    agent_cgroup_key_t keys[2 * N];
    char tnames[N][24];
    uint64_t *dst[N] = {&out->anon, &out->file, &out->active_file, &out->inactive_file,
                        &out->shmem};
    int r;

    for (int i = 0; i < N; i++) {
        local[i] = total[i] = UINT64_MAX;
        memcpy(tnames[i], "total_", 6);
        memcpy(tnames[i] + 6, names[i], strlen(names[i]) + 1);
        keys[i] = (agent_cgroup_key_t){names[i], &local[i]};
        keys[N + i] = (agent_cgroup_key_t){tnames[i], &total[i]};
    }
    r = agent_cgroup_parse_keyed(buf, len, keys, 2 * N);
    if (r < 0)
        return -EINVAL;
    for (int i = 0; i < N; i++)
        if (total[i] == UINT64_MAX)
            total[i] = local[i];
    if (total[0] == UINT64_MAX || total[3] == UINT64_MAX)
        return -EINVAL;
    for (int i = 0; i < N; i++)
        *dst[i] = total[i] == UINT64_MAX ? 0 : total[i];
    return 0;
}

int agent_cgroup_parse_oom_kill(const char *buf, size_t len, uint64_t *out)
{
    agent_cgroup_key_t key = {"oom_kill", out};
    int r = agent_cgroup_parse_keyed(buf, len, &key, 1);

    return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int agent_cgroup_parse_v1_limit(const char *buf, size_t len, uint64_t *out)
{
    int r = agent_cgroup_parse_u64(buf, len, out);

    if (r == 0 && *out >= (1ULL << 62))
        *out = AGENT_CGROUP_UNLIMITED;
    return r;
}

/* Whether the comma-separated list [p, end) holds `name`. */
static int list_has(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        if ((size_t)(e - p) == n && memcmp(p, name, n) == 0)
            return 1;
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}

int agent_cgroup_parse_proc_cgroup(const char *buf, size_t len, const char *controller, char *path,
                                   size_t cap)
{
    const char *p = buf, *end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *c1 = memchr(p, ':', (size_t)(eol - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;

        if (c2) {
            int match = controller[0] ? list_has(c1 + 1, c2, controller)
                                      : (c2 == c1 + 1 && c1 - p == 1 && *p == '0');
            size_t n = (size_t)(eol - c2 - 1);
            if (match) {
                if (n + 1 > cap)
                    return -ENAMETOOLONG;
                memcpy(path, c2 + 1, n);
                path[n] = '\0';
                return memchr(path, '\0', n) ? -EINVAL : 0;
            }
        }
        p = nl ? nl + 1 : end;
    }
    return -ENOENT;
}

int agent_proc_parse_stat(const char *buf, size_t len, agent_proc_stat_t *out)
{
    const char *p = NULL, *end = buf + len, *tok;
    uint64_t v;
    int field = 3; /* the field after ") " is the third: state */

    for (const char *q = buf; q < end; q++)
        if (*q == ')')
            p = q; /* the last ')' ends comm, whatever comm holds */
    if (!p)
        return -EINVAL;
    p++;
    memset(out, 0, sizeof(*out));
    while (p < end && field <= 24) {
        while (p < end && is_space(*p))
            p++;
        tok = p;
        while (p < end && !is_space(*p))
            p++;
        if (tok == p)
            break;
        if (field == 14 || field == 15 || field == 22 || field == 24) {
            if (digits(tok, p, &v) < 0)
                return -EINVAL;
            if (field == 14)
                out->utime_ticks = v;
            else if (field == 15)
                out->stime_ticks = v;
            else if (field == 22)
                out->starttime_ticks = v;
            else
                out->rss_pages = v;
        }
        field++;
    }
    return field > 24 ? 0 : -EINVAL;
}

/* Copies a pod UID, turning systemd's '_' back into '-'. */
static int copy_uid(const char *p, size_t n, char uid[AGENT_CGROUP_UID_MAX])
{
    if (n != 36 && n != 32)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i] == '_' ? '-' : p[i];
        int dash = n == 36 && (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -EINVAL;
        uid[i] = c;
    }
    uid[n] = '\0';
    return 0;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int agent_cgroup_parse_qos_dir(const char *name, agent_cgroup_qos_t *qos)
{
    if (!strcmp(name, "burstable") || !strcmp(name, "kubepods-burstable.slice"))
        *qos = AGENT_CGROUP_QOS_BURSTABLE;
    else if (!strcmp(name, "besteffort") || !strcmp(name, "kubepods-besteffort.slice"))
        *qos = AGENT_CGROUP_QOS_BESTEFFORT;
    else
        return -EINVAL;
    return 0;
}

int agent_cgroup_parse_pod_dir(const char *name, char uid[AGENT_CGROUP_UID_MAX])
{
    static const char *const slices[] = {"kubepods-pod", "kubepods-burstable-pod",
                                         "kubepods-besteffort-pod"};
    size_t n = strlen(name);

    if (has_prefix(name, "pod"))
        return copy_uid(name + 3, n - 3, uid);
    if (!has_suffix(name, n, ".slice"))
        return -EINVAL;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(slices); i++) {
        size_t k = strlen(slices[i]);
        if (has_prefix(name, slices[i]) && n >= k + 6)
            return copy_uid(name + k, n - k - 6, uid);
    }
    return -EINVAL;
}

static int copy_id(const char *p, size_t n, char id[AGENT_CGROUP_ID_MAX])
{
    if (n < 12 || n >= AGENT_CGROUP_ID_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return -EINVAL;
    memcpy(id, p, n);
    id[n] = '\0';
    return 0;
}

int agent_cgroup_parse_container_dir(const char *name, char id[AGENT_CGROUP_ID_MAX],
                                     agent_cgroup_runtime_t *rt)
{
    static const struct {
        const char *prefix;
        agent_cgroup_runtime_t rt;
    } scopes[] = {{"cri-containerd-", AGENT_CGROUP_RUNTIME_CONTAINERD},
                  {"crio-", AGENT_CGROUP_RUNTIME_CRIO},
                  {"docker-", AGENT_CGROUP_RUNTIME_DOCKER}};
    size_t n = strlen(name);

    if (has_prefix(name, "crio-conmon-"))
        return -EINVAL;
    for (size_t i = 0; i < KOPT_ARRAY_SIZE(scopes); i++) {
        size_t k = strlen(scopes[i].prefix);
        if (!has_prefix(name, scopes[i].prefix))
            continue;
        *rt = scopes[i].rt;
        if (has_suffix(name, n, ".scope") && n >= k + 6)
            return copy_id(name + k, n - k - 6, id);
        /* CRI-O under the cgroupfs driver: crio-<id> without .scope. */
        return scopes[i].rt == AGENT_CGROUP_RUNTIME_CRIO ? copy_id(name + k, n - k, id) : -EINVAL;
    }
    *rt = AGENT_CGROUP_RUNTIME_UNKNOWN;
    return n == 64 ? copy_id(name, n, id) : -EINVAL;
}
