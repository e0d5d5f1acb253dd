/* kopt patch --out DIR: one kustomize patch per workload that sets its
 * containers' resources to the recommendation, and a kustomization.yaml
 * listing them (patch.c writes the text). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "patch.h"
#include "recs.h"

static const char help[] =
    "Usage: kopt patch --out DIR [-c CLUSTER] [-n NAMESPACE]... [--min-savings X]\n"
    "                  [--containers-only] [--format strategic|json6902] [--base PATH]\n"
    "\n"
    "Writes one kustomize patch per Deployment, StatefulSet, DaemonSet and CronJob (its\n"
    "job template) setting the requests and limits of the containers kopt advises on,\n"
    "and DIR/kustomization.yaml listing them, so `kubectl kustomize DIR` over your base\n"
    "applies the recommendations. Other kinds (Job, ReplicaSet, Pod, ...) are skipped.\n"
    "\n"
    "      --out DIR        where to write (created if missing; files are replaced)\n"
    "  -n, --namespace NS   only this namespace; repeat for several\n"
    "      --min-savings X  only workloads saving at least X per month\n"
    "      --containers-only  change only container resources: no kopt.io/analysis\n"
    "                       annotation on the workload\n"
    "      --format F       strategic (default: strategic merge patches) or json6902\n"
    "      --base PATH      the kustomization's resource: your base, relative to DIR\n"
    "\n"
    "Examples:\n"
    "  kopt patch -c prod -n shop --out rightsize --base ../base\n"
    "  kubectl kustomize rightsize | kubectl diff -f -\n"
    "  kopt patch --out rightsize --format json6902 --min-savings 5\n"
    "\n";

typedef struct {
    cli_recs_filter_t filter;
    cli_patch_opts_t opts;
    const char *out, *base;
} args_t;

static int own_option(int opt, const char *arg, void *data)
{
    args_t *a = data;
    int rc = cli_recs_filter_option("patch", opt, arg, &a->filter);

    if (rc != 0)
        return rc;
    switch (opt) {
    case 'o':
        a->out = arg;
        return 1;
    case 'C':
        a->opts.containers_only = true;
        return 1;
    case 'F':
        if (strcmp(arg, "strategic") == 0)
            a->opts.format = CLI_PATCH_STRATEGIC;
        else if (strcmp(arg, "json6902") == 0)
            a->opts.format = CLI_PATCH_JSON6902;
        else
            return cli_usage_error("patch", "--format: '%s' is not strategic or json6902", arg);
        return 1;
    case 'B':
        a->base = arg;
        return 1;
    default:
        return 0;
    }
}

static int write_file(const char *dir, const char *name, const Kopt__V1__Recommendation *rec,
                      const Kopt__V1__Recommendation *const *all, size_t n, const args_t *a)
{
    char path[4200];
    FILE *f;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        return cli_error("cannot write %s: %s", path, strerror(errno));
    if (rec)
        rc = cli_patch_write(f, rec, &a->opts);
    else
        cli_patch_kustomization(f, all, n, a->base, &a->opts);
    if (fclose(f) != 0 || rc != 0)
        return cli_error("cannot write %s", path);
    return 0;
}

static int write_all(const cli_recs_t *recs, const args_t *a)
{
    const Kopt__V1__Recommendation **keep = calloc(recs->n + 1, sizeof(*keep));
    size_t n = 0, skipped = 0;
    int rc = 0;

    if (!keep || !a->out) {
        free(keep);
        return cli_error("out of memory");
    }
    if (mkdir(a->out, 0777) != 0 && errno != EEXIST) {
        free(keep);
        return cli_error("--out: cannot create %s: %s", a->out, strerror(errno));
    }
    for (size_t i = 0; i < recs->n && rc == 0; i++) {
        const Kopt__V1__Recommendation *r = recs->items[i];
        char name[600];

        if (!cli_patch_supported(r->workload->kind) || r->n_containers == 0) {
            skipped++;
            continue;
        }
        cli_patch_file_name(r, name, sizeof(name));
        rc = write_file(a->out, name, r, NULL, 0, a);
        keep[n++] = r;
    }
    if (rc == 0)
        rc = write_file(a->out, "kustomization.yaml", NULL, keep, n, a);
    if (rc == 0)
        fprintf(stderr, "kopt: wrote %zu patches and kustomization.yaml to %s%s", n, a->out,
                skipped ? "" : "\n");
    if (rc == 0 && skipped)
        fprintf(stderr, " (skipped %zu of other kinds or without containers)\n", skipped);
    free(keep);
    return rc;
}

int cli_cmd_patch(int argc, char **argv)
{
    static const struct option own[] = {
        {"out", required_argument, NULL, 'o'},         {"namespace", required_argument, NULL, 'n'},
        {"min-savings", required_argument, NULL, 'm'}, {"containers-only", no_argument, NULL, 'C'},
        {"format", required_argument, NULL, 'F'},      {"base", required_argument, NULL, 'B'},
    };
    args_t a = {0};
    cli_conn_t c = {0};
    cli_client_t *cl = NULL;
    cli_recs_t recs = {0};
    int first, rc;

    rc = cli_parse("patch", argc, argv, own, sizeof(own) / sizeof(own[0]), "n:", own_option, &a,
                   help, &c, false, &first);
    if (rc == 0 && first < argc)
        rc = cli_usage_error("patch", "unexpected argument '%s'", argv[first]);
    if (rc == 0 && !a.out)
        rc = cli_usage_error("patch", "--out DIR is required");
    if (rc == 0 && !c.cluster)
        rc = cli_usage_error("patch", "which cluster? give -c CLUSTER or KOPT_CLUSTER");
    if (rc == 0)
        rc = cli_client_new(&c, &cl);
    if (rc == 0) {
        a.filter.cluster = c.cluster;
        rc = cli_recs_fetch(cl, &a.filter, &recs);
    }
    if (rc == 0) {
        cli_recs_sort(&recs, CLI_SORT_NAME);
        rc = write_all(&recs, &a);
    }
    cli_recs_free(&recs);
    cli_client_free(cl);
    cli_conn_clear(&c);
    free(a.filter.namespaces);
    return rc == CLI_HELP_SHOWN ? 0 : rc;
}
