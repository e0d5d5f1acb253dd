/* Symbol and file index over a FileDescriptorSet, with protobuf-c's view of
 * descriptor.proto. Symbols are kept sorted for bsearch; there are a few
 * hundred of them in our set. */
#include "descriptor_index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

typedef struct {
    char *name;
    int file;
} symbol_t;

struct kopt_descriptor_index {
    Google__Protobuf__FileDescriptorSet *set;
    uint8_t **bytes;
    size_t *lens;
    symbol_t *symbols;
    size_t n_symbols, cap_symbols;
};

static int add_symbol(kopt_descriptor_index_t *idx, const char *scope, const char *name, int file)
{
    size_t n = strlen(scope) + strlen(name) + 2;
    char *full = malloc(n);

    if (!full)
        return -ENOMEM;
    snprintf(full, n, "%s%s%s", scope, *scope ? "." : "", name);
    if (idx->n_symbols == idx->cap_symbols) {
        size_t cap = idx->cap_symbols ? idx->cap_symbols * 2 : 256;
        symbol_t *grown = realloc(idx->symbols, cap * sizeof(*grown));
        if (!grown) {
            free(full);
            return -ENOMEM;
        }
        idx->symbols = grown;
        idx->cap_symbols = cap;
    }
    idx->symbols[idx->n_symbols++] = (symbol_t){full, file};
    return 0;
}

static int add_message(kopt_descriptor_index_t *idx, const char *scope,
                       const Google__Protobuf__DescriptorProto *msg, int file)
{
    char inner[512];
    int r = add_symbol(idx, scope, msg->name, file);

    snprintf(inner, sizeof(inner), "%s%s%s", scope, *scope ? "." : "", msg->name);
    for (size_t i = 0; r == 0 && i < msg->n_nested_type; i++)
        r = add_message(idx, inner, msg->nested_type[i], file);
    for (size_t i = 0; r == 0 && i < msg->n_enum_type; i++)
        r = add_symbol(idx, inner, msg->enum_type[i]->name, file);
    return r;
}

static int add_file(kopt_descriptor_index_t *idx, int f)
{
    const Google__Protobuf__FileDescriptorProto *fd = idx->set->file[f];
    const char *pkg = fd->package ? fd->package : "";
    char svc[512];
    int r = 0;

    for (size_t i = 0; r == 0 && i < fd->n_message_type; i++)
        r = add_message(idx, pkg, fd->message_type[i], f);
    for (size_t i = 0; r == 0 && i < fd->n_enum_type; i++)
        r = add_symbol(idx, pkg, fd->enum_type[i]->name, f);
    for (size_t i = 0; r == 0 && i < fd->n_service; i++) {
        r = add_symbol(idx, pkg, fd->service[i]->name, f);
        snprintf(svc, sizeof(svc), "%s%s%s", pkg, *pkg ? "." : "", fd->service[i]->name);
        for (size_t j = 0; r == 0 && j < fd->service[i]->n_method; j++)
            r = add_symbol(idx, svc, fd->service[i]->method[j]->name, f);
    }
    for (size_t i = 0; r == 0 && i < fd->n_extension; i++)
        r = add_symbol(idx, pkg, fd->extension[i]->name, f);
    return r;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const symbol_t *)a)->name, ((const symbol_t *)b)->name);
}

int kopt_descriptor_index_new(const uint8_t *set, size_t len, kopt_descriptor_index_t **out)
{
    kopt_descriptor_index_t *idx = calloc(1, sizeof(*idx));
    size_t n;
    int r = 0;

    if (!idx)
        return -ENOMEM;
    idx->set = google__protobuf__file_descriptor_set__unpack(NULL, len, set);
    if (!idx->set) {
        free(idx);
        return -EINVAL;
    }
    n = idx->set->n_file;
    idx->bytes = calloc(n ? n : 1, sizeof(*idx->bytes));
    idx->lens = calloc(n ? n : 1, sizeof(*idx->lens));
    if (!idx->bytes || !idx->lens)
        r = -ENOMEM;
    for (size_t f = 0; r == 0 && f < n; f++) {
        const ProtobufCMessage *m = &idx->set->file[f]->base;
        idx->lens[f] = protobuf_c_message_get_packed_size(m);
        idx->bytes[f] = malloc(idx->lens[f] ? idx->lens[f] : 1);
        if (!idx->bytes[f])
            r = -ENOMEM;
        else
            protobuf_c_message_pack(m, idx->bytes[f]);
        if (r == 0)
            r = add_file(idx, (int)f);
    }
    if (r < 0) {
        kopt_descriptor_index_free(idx);
        return r;
    }
    if (idx->n_symbols > 0)
        qsort(idx->symbols, idx->n_symbols, sizeof(symbol_t), by_name);
    *out = idx;
    return 0;
}

void kopt_descriptor_index_free(kopt_descriptor_index_t *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->n_symbols; i++)
        free(idx->symbols[i].name);
    free(idx->symbols);
    for (size_t f = 0; idx->bytes && f < idx->set->n_file; f++)
        free(idx->bytes[f]);
    free(idx->bytes);
    free(idx->lens);
    google__protobuf__file_descriptor_set__free_unpacked(idx->set, NULL);
    free(idx);
}

int kopt_descriptor_index_by_name(const kopt_descriptor_index_t *idx, const char *filename)
{
    for (size_t f = 0; f < idx->set->n_file; f++)
        if (strcmp(idx->set->file[f]->name, filename) == 0)
            return (int)f;
    return -ENOENT;
}

int kopt_descriptor_index_by_symbol(const kopt_descriptor_index_t *idx, const char *symbol)
{
    symbol_t key = {(char *)symbol, 0};
    const symbol_t *hit;

    if (symbol[0] == '.') /* fully-qualified form */
        key.name++;
    hit = bsearch(&key, idx->symbols, idx->n_symbols, sizeof(symbol_t), by_name);
    return hit ? hit->file : -ENOENT;
}

static int contains(const int *files, int n, int f)
{
    for (int i = 0; i < n; i++)
        if (files[i] == f)
            return 1;
    return 0;
}

int kopt_descriptor_index_closure(const kopt_descriptor_index_t *idx, int file, int *files, int max)
{
    int n = 0;

    if (max < 1)
        return -E2BIG;
    files[n++] = file;
    /* Breadth-first over imports; the list itself is the queue. */
    for (int i = 0; i < n; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = idx->set->file[files[i]];
        for (size_t d = 0; d < fd->n_dependency; d++) {
            int dep = kopt_descriptor_index_by_name(idx, fd->dependency[d]);
            if (dep < 0 || contains(files, n, dep))
                continue;
            if (n == max)
                return -E2BIG;
            files[n++] = dep;
        }
    }
    return n;
}

const uint8_t *kopt_descriptor_index_bytes(const kopt_descriptor_index_t *idx, int file,
                                           size_t *len)
{
    *len = idx->lens[file];
    return idx->bytes[file];
}
