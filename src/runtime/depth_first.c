/* Depth first over the batch (runtime/depth_first.h): which layers, and the views a group of
 * images runs them on. */
#include "runtime/depth_first.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

/* Ops whose output image i is a function of their operands' image i alone (given the checks
 * of dt_df_layer_ok), with the inputs that must be constant weights: [lo, hi). */
static const struct {
    const char *op;
    int lo, hi;
} dt_df_ops[] = {
    {"FusedConv", 1, 3},   {"FusedInvertedResidual", 1, 7}, {"Conv", 1, 3},     {"MaxPool", 0, 0},
    {"AveragePool", 0, 0}, {"GlobalAveragePool", 0, 0},     {"Relu", 0, 0},     {"Clip", 1, 3},
    {"Sigmoid", 0, 0},     {"HardSigmoid", 0, 0},           {"HardSwish", 0, 0}, {"Add", 0, 0},
    {"Mul", 0, 0},
};

static bool dt_df_data(dt_tensor_kind k) { return k == DT_TENSOR_ACTIVATION || k == DT_TENSOR_INPUT || k == DT_TENSOR_OUTPUT; }

/* Whether layer pl runs image by image on a batch of n at these views: its outputs [n, ...];
 * each data operand of the outputs' rank with n images (cut) or one (broadcast, from outside
 * the prefix: produced says which tensors the prefix wrote); weights and other constants
 * never hold images. Views, slices of a Concat's whole, sequences and subgraphs are not cut. */
static bool dt_df_layer_ok(const dt_plan *p, const dt_plan_layer *pl, const dt_view *views, int64_t n,
                           const unsigned char *produced)
{
    const ductile_layer *L = pl->layer;
    if (pl->alias || pl->fallback || pl->seq || pl->ctrl || pl->graphs || !pl->kernel) return false;
    if (L->domain[0] && strcmp(L->domain, "ductile")) return false;
    int op = -1;
    for (size_t i = 0; i < sizeof dt_df_ops / sizeof *dt_df_ops; i++)
        if (!strcmp(L->op_type, dt_df_ops[i].op)) op = (int)i;
    if (op < 0 || L->n_out < 1 || (!strcmp(L->op_type, "MaxPool") && L->n_out != 1)) return false;
    int rank = views[L->out[0]->index].rank;
    if (rank < 1) return false;
    for (int k = 0; k < L->n_out; k++) {
        int t = L->out[k]->index;
        if (!dt_df_data(p->kind[t]) || views[t].rank != rank || views[t].dims[0] != n || p->slice_of[t] >= 0) return false;
    }
    for (int k = 0; k < L->n_in; k++) {
        const ductile_tensor *T = L->in[k];
        if (!T) continue;
        int t = T->index;
        const dt_view *v = &views[t];
        bool weight = k >= dt_df_ops[op].lo && k < dt_df_ops[op].hi;
        if (weight || !dt_df_data(p->kind[t])) {
            if (p->kind[t] != DT_TENSOR_CONSTANT && p->kind[t] != DT_TENSOR_VALUE) return false;
            if (!weight && v->rank == rank && v->dims[0] != 1) return false;
            continue;
        }
        if (p->shape_input[t] || v->rank != rank) return false;
        if (v->dims[0] != n && !(v->dims[0] == 1 && !produced[t])) return false;
    }
    return true;
}

static int64_t dt_df_image_bytes(const dt_view *v, int64_t n)
{
    size_t bytes;
    if (v->rank < 1 || v->dims[0] != n || !dt_view_bytes(v, &bytes)) return 0;
    return (int64_t)(bytes / (size_t)n);
}

/* A non-negative integer from the environment, else dflt. */
static int64_t dt_df_env(const char *name, int64_t dflt)
{
    const char *env = getenv(name);
    if (!env || !*env) return dflt;
    char *end;
    long long v = strtoll(env, &end, 10);
    return *end || v < 0 ? dflt : (int64_t)v;
}

/* The prefix length at these views: the last eligible layer with an operand of at least
 * min_bytes an image, within the run of eligible layers from the first. */
static int dt_df_prefix(const ductile_engine *e, const dt_view *views, int64_t n, int64_t min_bytes,
                        unsigned char *produced)
{
    const dt_plan *p = &e->plan;
    int k = 0;
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value) continue;
        if (!dt_df_layer_ok(p, pl, views, n, produced)) break;
        const ductile_layer *L = pl->layer;
        int64_t most = 0;
        for (int j = 0; j < L->n_in + L->n_out; j++) {
            const ductile_tensor *T = j < L->n_in ? L->in[j] : L->out[j - L->n_in];
            if (!T || !dt_df_data(p->kind[T->index])) continue;
            int64_t b = dt_df_image_bytes(&views[T->index], n);
            if (b > most) most = b;
        }
        for (int j = 0; j < L->n_out; j++) produced[L->out[j]->index] = 1;
        if (most >= min_bytes) k = i + 1;
    }
    return k;
}

static ductile_status dt_df_oom(void) { return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning the batch's first layers"); }

/* Roles at prefix k: a tensor written in it is a group's where its block dies inside it (no
 * reader after it, of it or of a view of it: the engine's lifetimes) and it is not a network
 * output; the rest it touches are cut. */
static void dt_df_roles(dt_depth_first *d, const dt_plan *p, const ductile_network *net)
{
    int nt = net->n_tensors;
    memset(d->role, DT_DF_WHOLE, (size_t)nt);
    for (int i = 0; i < d->k; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value) continue;
        const ductile_layer *L = pl->layer;
        for (int j = 0; j < L->n_in; j++) {
            const ductile_tensor *T = L->in[j];
            if (T && dt_df_data(p->kind[T->index]) && d->views[T->index].dims[0] == d->n && !d->role[T->index])
                d->role[T->index] = DT_DF_SLICED; /* a network input (the prefix's own are set below) */
        }
        for (int j = 0; j < L->n_out; j++) {
            int t = L->out[j]->index;
            int b = p->mem_block[t];
            d->role[t] = p->kind[t] == DT_TENSOR_ACTIVATION && b >= 0 && dt_memlife_last(p->mem, b) < d->k ? DT_DF_GROUP
                                                                                                          : DT_DF_SLICED;
        }
    }
}

ductile_status dt_df_choose(dt_depth_first *d, const ductile_engine *e, const dt_view *views, int threads, size_t *offsets,
                            size_t *arena)
{
    const dt_plan *p = &e->plan;
    const ductile_network *net = e->net;
    d->k = 0;
    if (!e->backend->host_memory || p->eager || threads < 1) return DUCTILE_OK;
    int64_t min_bytes = dt_df_env("DUCTILE_DEPTH_FIRST_BYTES", DT_DF_MIN_BYTES);
    /* A group of as many images as threads: each thread an image, as the kernels share a
     * batch between threads (session 41, thread CPU times on 2 threads: EfficientNet-B0 b8
     * -10%, mobilenet_v2 --bf16 b8 -11%, resnet50 --bf16 b8 -8%; docs/DESIGN.md). */
    int64_t g = dt_df_env("DUCTILE_DEPTH_FIRST_GROUP", 0);
    g = g ? g : threads;
    if (!min_bytes) return DUCTILE_OK;
    /* The batch: the first layer's first output's leading dim. */
    int64_t n = 0;
    for (int i = 0; i < p->n_layers && !n; i++)
        if (!p->layers[i].value) {
            const ductile_layer *L = p->layers[i].layer;
            const dt_view *v = L->n_out ? &views[L->out[0]->index] : NULL;
            n = v && v->rank >= 1 ? v->dims[0] : 1;
            break;
        }
    if (n <= g) return DUCTILE_OK;
    size_t nt = (size_t)net->n_tensors + 1;
    if (!d->role) {
        d->role = dt_calloc(nt, 1);
        d->views = dt_malloc(nt * sizeof *d->views);
        d->ms = dt_malloc(((size_t)p->n_layers + 1) * sizeof *d->ms);
        d->offsets = dt_malloc(nt * sizeof *d->offsets);
        if (!d->role || !d->views || !d->ms || !d->offsets) {
            dt_df_free(d);
            return dt_df_oom();
        }
    }
    memset(d->role, 0, nt);
    int k = dt_df_prefix(e, views, n, min_bytes, d->role);
    if (!k) return DUCTILE_OK;
    d->n = n;
    d->g = g;
    d->k = k;
    memcpy(d->views, views, (size_t)net->n_tensors * sizeof *d->views);
    dt_df_roles(d, p, net);
    for (int t = 0; t < net->n_tensors; t++)
        if (d->role[t] == DT_DF_GROUP) d->views[t].dims[0] = d->g;
    if (d->mem_k != k) {
        dt_memlife_free(d->mem);
        d->mem = NULL;
        d->mem_k = 0;
        unsigned char *from0 = dt_calloc((size_t)p->n_mem + 1, 1);
        if (!from0) {
            d->k = 0;
            return dt_df_oom();
        }
        for (int t = 0; t < net->n_tensors; t++)
            if (d->role[t] == DT_DF_SLICED && p->mem_block[t] >= 0) from0[p->mem_block[t]] = 1;
        ductile_status s = dt_memlife_from_step0(p->mem, from0, &d->mem);
        dt_free(from0);
        if (s) {
            d->k = 0;
            return s;
        }
        d->mem_k = k;
    }
    /* Never more memory than layer by layer (the build's workspace check planned that). */
    size_t bytes = 0;
    memcpy(d->offsets, offsets, (size_t)net->n_tensors * sizeof *offsets);
    ductile_status s = dt_memplan_with(e, d->views, d->mem, d->offsets, &bytes);
    if (s || bytes > *arena) {
        d->k = 0;
        return s;
    }
    memcpy(offsets, d->offsets, (size_t)net->n_tensors * sizeof *offsets);
    *arena = bytes;
    return DUCTILE_OK;
}

void dt_df_cut(const dt_depth_first *d, int t, int64_t first, int64_t count, dt_view *v)
{
    if (d->role[t] == DT_DF_SLICED) {
        if (first) v->data = (char *)v->data + first * dt_df_image_bytes(v, d->n);
        v->dims[0] = count;
    } else if (d->role[t] == DT_DF_GROUP) {
        v->dims[0] = count;
    }
}

ductile_status dt_df_scratch(const dt_depth_first *d, const ductile_engine *e, int threads, size_t *bytes)
{
    *bytes = 0;
    const dt_plan *p = &e->plan;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    int64_t last = d->n % d->g;
    for (int pass = 0; pass < (last ? 2 : 1); pass++) {
        int64_t count = pass ? last : d->g;
        for (int i = 0; i < d->k; i++) {
            const dt_plan_layer *pl = &p->layers[i];
            if (pl->value) continue;
            const ductile_layer *L = pl->layer;
            dt_layer_input_views(L, d->views, in);
            for (int j = 0; j < L->n_in; j++)
                if (L->in[j]) dt_df_cut(d, L->in[j]->index, 0, count, &in[j]);
            for (int j = 0; j < L->n_out; j++) {
                out[j] = d->views[L->out[j]->index];
                dt_df_cut(d, L->out[j]->index, 0, count, &out[j]);
            }
            size_t b;
            DT_TRY(dt_plan_layer_scratch(pl, in, out, threads, &b));
            if (b > *bytes) *bytes = b;
        }
    }
    return DUCTILE_OK;
}

void dt_df_free(dt_depth_first *d)
{
    dt_free(d->role);
    dt_free(d->views);
    dt_free(d->ms);
    dt_free(d->offsets);
    dt_memlife_free(d->mem);
    memset(d, 0, sizeof *d);
}
