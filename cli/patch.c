/* kustomize patches of container resources (patch.h). Strategic merge
 * patches merge containers by name, so only the containers kopt advises on
 * are named and only their requests and limits change; a limit kopt
 * advises to drop (0) is deleted with null, but only when the workload has
 * one now, so no empty map appears. JSON 6902 patches cannot select by name:
 * they test the container's name at its pod-spec index, then replace its
 * whole resources object. */
#include "patch.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "quantity.h"
#include "recs.h"

#define KIND(k) KOPT__V1__WORKLOAD_KIND__WORKLOAD_KIND_##k

int cli_patch_supported(int kind)
{
    return kind == KIND(DEPLOYMENT) || kind == KIND(STATEFUL_SET) || kind == KIND(DAEMON_SET) ||
           kind == KIND(CRON_JOB);
}

static const char *api_version(int kind)
{
    return kind == KIND(CRON_JOB) ? "batch/v1" : "apps/v1";
}

/* Where the pod spec is, as a JSON pointer and as YAML nesting depth. */
static const char *pod_spec_pointer(int kind)
{
    return kind == KIND(CRON_JOB) ? "/spec/jobTemplate/spec/template/spec" : "/spec/template/spec";
}

/* A YAML double-quoted string: any name the advisor sends stays one value. */
static void q(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Text for a comment line: no line breaks or control characters. */
static void comment_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(iscntrl((unsigned char)*s) ? '?' : *s, f);
}

void cli_patch_file_name(const Kopt__V1__Recommendation *r, char *out, size_t len)
{
    char kind[32];
    size_t n = 0;

    snprintf(kind, sizeof(kind), "%s", cli_kind_name(r->workload->kind));
    for (char *p = kind; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(out, len, "%s-%s-%s.yaml", kind, r->workload->namespace_, r->workload->name);
    /* Names are DNS labels in Kubernetes; anything else must not leave DIR. */
    for (char *p = out; *p; p++, n++)
        if (*p == '/' || iscntrl((unsigned char)*p))
            *p = '_';
}

static void header(FILE *f, const Kopt__V1__Recommendation *r, const cli_patch_opts_t *o)
{
    char when[40] = "an unknown time";

    if (r->generated_at) {
        time_t t = (time_t)r->generated_at->seconds;
        struct tm tm;

        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    }
    fputs("# Written by kopt patch: sets the resources (requests and limits) of container", f);
    fputs(r->n_containers == 1 ? " " : "s ", f);
    for (size_t i = 0; i < r->n_containers; i++) {
        fputs(i ? ", " : "", f);
        comment_text(f, r->containers[i]->container);
    }
    fputs("\n# of ", f);
    comment_text(f, cli_kind_name(r->workload->kind));
    fputc(' ', f);
    comment_text(f, r->workload->namespace_);
    fputc('/', f);
    comment_text(f, r->workload->name);
    fputs(" in cluster ", f);
    comment_text(f, r->workload->cluster);
    fputs(" to kopt's recommendation from analysis ", f);
    comment_text(f, r->analysis_id);
    fprintf(f, " (%s).\n", when);
    if (o->format == CLI_PATCH_STRATEGIC && !o->containers_only)
        fputs("# It also records that analysis in the annotation kopt.io/analysis.\n", f);
    fputs("# Nothing else is changed. Quantities are rounded up (docs/cli.md).\n", f);
}

typedef struct {
    char cpu_req[32], mem_req[32], cpu_lim[32], mem_lim[32];
    bool del_cpu_req, del_mem_req, del_cpu_lim, del_mem_lim;
} values_t;

static void values(const Kopt__V1__ContainerRecommendation *c, values_t *v)
{
    static const Kopt__V1__ResourceValues zero = KOPT__V1__RESOURCE_VALUES__INIT;
    const Kopt__V1__ResourceValues *now = c->current ? c->current : &zero;
    const Kopt__V1__ResourceValues *to = c->recommended ? c->recommended : &zero;

    memset(v, 0, sizeof(*v));
    if (cli_cpu_millicores(to->cpu_request_cores))
        cli_cpu_quantity(to->cpu_request_cores, v->cpu_req, sizeof(v->cpu_req));
    else
        v->del_cpu_req = now->cpu_request_cores > 0;
    if (to->memory_request_bytes)
        cli_memory_quantity(to->memory_request_bytes, v->mem_req, sizeof(v->mem_req));
    else
        v->del_mem_req = now->memory_request_bytes > 0;
    if (cli_cpu_millicores(to->cpu_limit_cores))
        cli_cpu_quantity(to->cpu_limit_cores, v->cpu_lim, sizeof(v->cpu_lim));
    else
        v->del_cpu_lim = now->cpu_limit_cores > 0;
    if (to->memory_limit_bytes)
        cli_memory_quantity(to->memory_limit_bytes, v->mem_lim, sizeof(v->mem_lim));
    else
        v->del_mem_lim = now->memory_limit_bytes > 0;
}

/* One map (requests or limits) at `indent`; null deletes (strategic only). */
static void resource_map(FILE *f, int indent, const char *name, const char *cpu, bool del_cpu,
                         const char *mem, bool del_mem, bool nulls)
{
    bool any = cpu[0] || mem[0] || (nulls && (del_cpu || del_mem));

    if (!any)
        return;
    fprintf(f, "%*s%s:\n", indent, "", name);
    if (cpu[0])
        fprintf(f, "%*scpu: %s\n", indent + 2, "", cpu);
    else if (nulls && del_cpu)
        fprintf(f, "%*scpu: null\n", indent + 2, "");
    if (mem[0])
        fprintf(f, "%*smemory: %s\n", indent + 2, "", mem);
    else if (nulls && del_mem)
        fprintf(f, "%*smemory: null\n", indent + 2, "");
}

static void resources(FILE *f, int indent, const values_t *v, bool nulls)
{
    resource_map(f, indent, "requests", v->cpu_req, v->del_cpu_req, v->mem_req, v->del_mem_req,
                 nulls);
    resource_map(f, indent, "limits", v->cpu_lim, v->del_cpu_lim, v->mem_lim, v->del_mem_lim,
                 nulls);
}

static void strategic(FILE *f, const Kopt__V1__Recommendation *r, const cli_patch_opts_t *o)
{
    int kind = r->workload->kind, ind;

    fprintf(f, "apiVersion: %s\nkind: %s\nmetadata:\n  name: ", api_version(kind),
            cli_kind_name(kind));
    q(f, r->workload->name);
    fputs("\n  namespace: ", f);
    q(f, r->workload->namespace_);
    fputc('\n', f);
    if (!o->containers_only) {
        fputs("  annotations:\n    kopt.io/analysis: ", f);
        q(f, r->analysis_id);
        fputc('\n', f);
    }
    fputs("spec:\n", f);
    if (kind == KIND(CRON_JOB)) {
        fputs("  jobTemplate:\n    spec:\n      template:\n        spec:\n", f);
        ind = 10;
    } else {
        fputs("  template:\n    spec:\n", f);
        ind = 6;
    }
    fprintf(f, "%*scontainers:\n", ind, "");
    for (size_t i = 0; i < r->n_containers; i++) {
        values_t v;

        values(r->containers[i], &v);
        fprintf(f, "%*s- name: ", ind + 2, "");
        q(f, r->containers[i]->container);
        fprintf(f, "\n%*sresources:\n", ind + 4, "");
        resources(f, ind + 6, &v, true);
    }
}

static void json6902(FILE *f, const Kopt__V1__Recommendation *r)
{
    const char *spec = pod_spec_pointer(r->workload->kind);

    for (size_t i = 0; i < r->n_containers; i++) {
        values_t v;

        values(r->containers[i], &v);
        fprintf(f, "- op: test\n  path: %s/containers/%zu/name\n  value: ", spec, i);
        q(f, r->containers[i]->container);
        fprintf(f, "\n- op: add\n  path: %s/containers/%zu/resources\n  value:\n", spec, i);
        if (!v.cpu_req[0] && !v.mem_req[0] && !v.cpu_lim[0] && !v.mem_lim[0])
            fputs("    {}\n", f);
        resources(f, 4, &v, false);
    }
}

int cli_patch_write(FILE *f, const Kopt__V1__Recommendation *r, const cli_patch_opts_t *o)
{
    if (!r->workload || !cli_patch_supported(r->workload->kind))
        return -EINVAL;
    header(f, r, o);
    if (o->format == CLI_PATCH_JSON6902)
        json6902(f, r);
    else
        strategic(f, r, o);
    return ferror(f) ? -EIO : 0;
}

void cli_patch_kustomization(FILE *f, const Kopt__V1__Recommendation *const *recs, size_t n,
                             const char *base, const cli_patch_opts_t *o)
{
    fputs("# Written by kopt patch: one patch per workload, each setting the resources of\n"
          "# its containers to kopt's recommendation (see the comment atop each file).\n"
          "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
          f);
    if (base) {
        fputs("resources:\n  - ", f);
        q(f, base);
        fputc('\n', f);
    }
    fputs(n ? "patches:\n" : "patches: []\n", f);
    for (size_t i = 0; i < n; i++) {
        const Kopt__V1__WorkloadRef *w = recs[i]->workload;
        char file[600];

        cli_patch_file_name(recs[i], file, sizeof(file));
        fputs("  - path: ", f);
        q(f, file);
        fputc('\n', f);
        if (o->format != CLI_PATCH_JSON6902)
            continue;
        fprintf(f, "    target:\n      group: %s\n      version: v1\n      kind: %s\n",
                w->kind == KIND(CRON_JOB) ? "batch" : "apps", cli_kind_name(w->kind));
        fputs("      name: ", f);
        q(f, w->name);
        fputs("\n      namespace: ", f);
        q(f, w->namespace_);
        fputc('\n', f);
    }
}
