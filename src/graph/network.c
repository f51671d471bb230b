#include "graph/network.h"
#include "core/alloc.h"
#include "core/file.h"
#include "core/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ductile_status dt_network_new(ductile_network **out)
{
    ductile_network *n = dt_calloc(1, sizeof *n);
    *out = n;
    if (!n) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a network");
    dt_arena_init(&n->arena);
    return DUCTILE_OK;
}

void dt_network_delete(ductile_network *n)
{
    if (!n) return;
    dt_resource *r = n->resources;
    while (r) {
        dt_resource *next = r->next;
        if (r->release) r->release(r->ptr, r->size);
        dt_free(r);
        r = next;
    }
    dt_file_watch_free(n->files);
    dt_free(n->tensors);
    dt_free(n->name_index);
    dt_free(n->layers);
    dt_free(n->inputs);
    dt_free(n->outputs);
    dt_arena_release(&n->arena);
    dt_free(n);
}

ductile_status dt_network_check_files(const ductile_network *n) { return dt_file_watch_check(n->files); }

ductile_status dt_network_keep(ductile_network *n, void *ptr, size_t size,
                               void (*release)(void *, size_t))
{
    dt_resource *r = dt_malloc(sizeof *r);
    if (!r) {
        if (release) release(ptr, size);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory recording a %zu-byte block the network keeps", size);
    }
    r->ptr = ptr;
    r->size = size;
    r->release = release;
    r->next = n->resources;
    n->resources = r;
    return DUCTILE_OK;
}

/* Appends p to a growable pointer array. */
static int dt_push(void ***arr, int *n, int *cap, void *p)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        void **na = dt_realloc(*arr, (size_t)nc * sizeof *na);
        if (!na) return 0;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 1;
}

static uint64_t dt_name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void dt_index_put(int *idx, int cap, const ductile_tensor *t)
{
    size_t m = (size_t)cap - 1, i = dt_name_hash(t->name) & m;
    while (idx[i] >= 0) i = (i + 1) & m;
    idx[i] = t->index;
}

/* Keeps the name index at most half full; false when out of memory. */
static bool dt_index_reserve(ductile_network *n, int count)
{
    if (n->name_index_cap > 2 * count) return true;
    int cap = n->name_index_cap ? n->name_index_cap : 64;
    while (cap <= 2 * count) cap *= 2;
    int *idx = dt_malloc(sizeof *idx * (size_t)cap);
    if (!idx) return false;
    memset(idx, 0xff, sizeof *idx * (size_t)cap);
    for (int t = 0; t < n->n_tensors; t++) dt_index_put(idx, cap, n->tensors[t]);
    dt_free(n->name_index);
    n->name_index = idx;
    n->name_index_cap = cap;
    return true;
}

/* Grows a pointer array to hold `more` more entries. */
static bool dt_grow(void ***arr, int n, int *cap, int more)
{
    if (*cap - n >= more) return true;
    int nc = *cap ? *cap : 16;
    while (nc - n < more) {
        if (nc > INT32_MAX / 2) return false;
        nc *= 2;
    }
    void **na = dt_realloc(*arr, (size_t)nc * sizeof *na);
    if (!na) return false;
    *arr = na;
    *cap = nc;
    return true;
}

bool dt_network_reserve(ductile_network *n, int tensors, int layers, int inputs, int outputs)
{
    return dt_index_reserve(n, n->n_tensors + tensors) &&
           dt_grow((void ***)&n->tensors, n->n_tensors, &n->cap_tensors, tensors) &&
           dt_grow((void ***)&n->layers, n->n_layers, &n->cap_layers, layers) &&
           dt_grow((void ***)&n->inputs, n->n_inputs, &n->cap_inputs, inputs) &&
           dt_grow((void ***)&n->outputs, n->n_outputs, &n->cap_outputs, outputs);
}

void dt_network_drop_last_layer(ductile_network *n)
{
    if (n->n_layers == 0) return;
    ductile_layer *L = n->layers[--n->n_layers];
    /* Its outputs and anything after them; their arena memory goes with the network. */
    int keep = n->n_tensors;
    for (int k = 0; k < L->n_out; k++)
        if (L->out[k] && L->out[k]->index < keep) keep = L->out[k]->index;
    n->n_tensors = keep;
    if (!n->name_index) return;
    memset(n->name_index, 0xff, sizeof *n->name_index * (size_t)n->name_index_cap);
    for (int t = 0; t < n->n_tensors; t++) dt_index_put(n->name_index, n->name_index_cap, n->tensors[t]);
}

ductile_tensor *dt_network_add_tensor(ductile_network *n, const char *name)
{
    if (dt_network_find(n, name)) return NULL;
    if (!dt_index_reserve(n, n->n_tensors + 1)) return NULL;
    ductile_tensor *t = dt_arena_alloc(&n->arena, sizeof *t);
    if (!t) return NULL;
    t->name = dt_arena_strdup(&n->arena, name);
    if (!t->name) return NULL;
    t->rank = -1;
    t->index = n->n_tensors;
    if (!dt_push((void ***)&n->tensors, &n->n_tensors, &n->cap_tensors, t)) return NULL;
    dt_index_put(n->name_index, n->name_index_cap, t);
    return t;
}

ductile_tensor *dt_network_add_named(ductile_network *n, const char *base, const char *suffix)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", base, suffix);
    for (int i = 1; dt_network_find(n, name); i++) snprintf(name, sizeof name, "%s/%s.%d", base, suffix, i);
    return dt_network_add_tensor(n, name);
}

ductile_layer *dt_network_add_layer(ductile_network *n, const char *op_type, const char *name,
                                    int n_in, int n_out, int n_attr)
{
    ductile_layer *L = dt_arena_alloc(&n->arena, sizeof *L);
    if (!L) return NULL;
    L->op_type = dt_arena_strdup(&n->arena, op_type);
    L->name = dt_arena_strdup(&n->arena, name ? name : "");
    L->domain = "";
    L->opset = n->opset;
    L->n_in = n_in;
    L->n_out = n_out;
    L->n_attr = n_attr;
    L->in = dt_arena_alloc(&n->arena, sizeof *L->in * (size_t)(n_in ? n_in : 1));
    L->out = dt_arena_alloc(&n->arena, sizeof *L->out * (size_t)(n_out ? n_out : 1));
    L->attrs = dt_arena_alloc(&n->arena, sizeof *L->attrs * (size_t)(n_attr ? n_attr : 1));
    if (!L->op_type || !L->name || !L->in || !L->out || !L->attrs) return NULL;
    L->index = n->n_layers;
    if (!dt_push((void ***)&n->layers, &n->n_layers, &n->cap_layers, L)) return NULL;
    return L;
}

ductile_status dt_network_add_input(ductile_network *n, ductile_tensor *t)
{
    if (!dt_push((void ***)&n->inputs, &n->n_inputs, &n->cap_inputs, t))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding network input '%s'", t->name);
    t->is_input = true;
    return DUCTILE_OK;
}

ductile_status dt_network_add_output(ductile_network *n, ductile_tensor *t)
{
    if (t->is_output) return DUCTILE_OK;
    if (!dt_push((void ***)&n->outputs, &n->n_outputs, &n->cap_outputs, t))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory marking '%s' as a network output", t->name);
    t->is_output = true;
    return DUCTILE_OK;
}

ductile_tensor *dt_network_find(const ductile_network *n, const char *name)
{
    if (!n->name_index) return NULL;
    size_t m = (size_t)n->name_index_cap - 1;
    for (size_t i = dt_name_hash(name) & m; n->name_index[i] >= 0; i = (i + 1) & m)
        if (strcmp(n->tensors[n->name_index[i]]->name, name) == 0) return n->tensors[n->name_index[i]];
    return NULL;
}

const dt_attr *dt_attr_find(const ductile_layer *L, const char *name)
{
    for (int i = 0; i < L->n_attr; i++)
        if (L->attrs[i].name && strcmp(L->attrs[i].name, name) == 0) return &L->attrs[i];
    return NULL;
}

int64_t dt_attr_int(const ductile_layer *L, const char *name, int64_t dflt)
{
    const dt_attr *a = dt_attr_find(L, name);
    return a && a->type == DT_ATTR_INT ? a->i : dflt;
}

float dt_attr_float(const ductile_layer *L, const char *name, float dflt)
{
    const dt_attr *a = dt_attr_find(L, name);
    return a && a->type == DT_ATTR_FLOAT ? a->f : dflt;
}

const char *dt_attr_string(const ductile_layer *L, const char *name, const char *dflt)
{
    const dt_attr *a = dt_attr_find(L, name);
    return a && a->type == DT_ATTR_STRING ? a->s : dflt;
}

const int64_t *dt_attr_ints(const ductile_layer *L, const char *name, int64_t *n)
{
    const dt_attr *a = dt_attr_find(L, name);
    if (!a || a->type != DT_ATTR_INTS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->ints;
}

bool dt_attr_ints_all(const ductile_layer *L, const char *name, int64_t v)
{
    int64_t n = 0;
    const int64_t *a = dt_attr_ints(L, name, &n);
    for (int64_t i = 0; a && i < n; i++)
        if (a[i] != v) return false;
    return true;
}

const float *dt_attr_floats(const ductile_layer *L, const char *name, int64_t *n)
{
    const dt_attr *a = dt_attr_find(L, name);
    if (!a || a->type != DT_ATTR_FLOATS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->floats;
}

int64_t dt_tensor_count(const ductile_tensor *t)
{
    if (t->rank < 0) return -1;
    int64_t c = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 || __builtin_mul_overflow(c, t->dims[i], &c)) return -1;
    }
    return c;
}

char *dt_format_dims(char *buf, size_t cap, const int64_t *dims, int rank, const char *const *syms)
{
    size_t used = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, cap - used, "[");
    for (int i = 0; i < rank && used < cap; i++) {
        const char *sep = i ? "," : "";
        if (dims[i] < 0)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", sep,
                                     syms && syms[i] ? syms[i] : "?");
        else
            used += (size_t)snprintf(buf + used, cap - used, "%s%lld", sep, (long long)dims[i]);
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}
