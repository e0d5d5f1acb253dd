/* The subject a MetricBatch travels on; see kopt/batch_subject.h. */
#include <kopt/batch_subject.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kopt/names.h>

int kopt_batch_subject(const char *prefix, const char *cluster, const char *node, char *out,
                       size_t len)
{
    char c[256], n[256];
    int w;

    if (kopt_name_subject_token(cluster, c, sizeof(c)) < 0 ||
        kopt_name_subject_token(node, n, sizeof(n)) < 0)
        return -E2BIG;
    w = snprintf(out, len, "%s.%s.%s", prefix, c, n);
    return w < 0 || (size_t)w >= len ? -E2BIG : 0;
}

int kopt_batch_subject_check(const char *subject, const char *prefix, const char *cluster,
                             const char *node)
{
    char want[800];

    if (kopt_batch_subject(prefix, cluster, node, want, sizeof(want)) < 0)
        return -EINVAL;
    return strcmp(subject, want) == 0 ? 0 : -EINVAL;
}
