/* Derives the execution plan from an engine's network: the kernel of each layer, which
 * tensors are known from shapes alone (computed once per shape in the shape pass, never in
 * execute), where each tensor is last read, and the activation lifetimes (memplan.h), once per engine. */
#include "runtime/engine_impl.h"
#include "ops/random.h"
#include "core/alloc.h"
#include "runtime/ctrl.h"
#include "runtime/memplan.h"
#include "ops/strings.h"
#include "core/status.h"
#include "ops/sequence.h"
#include "runtime/seqval.h"
#include "graph/subgraph.h"

#include <stdlib.h>
#include <string.h>

/* Ops whose outputs depend only on the input's shape, never its data. */
bool dt_op_reads_shape_only(const char *op) { return !strcmp(op, "Shape") || !strcmp(op, "Size"); }

bool dt_op_is_view(const char *op)
{
    return !strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
           !strcmp(op, "Identity");
}

/* A Cast to the dtype its input already has copies the bytes unchanged (BERT exports cast
 * their bool mask to bool once more): a view like Identity. Dtypes are settled once the engine
 * is written (builder/dtypes.c), so the plan of a loaded engine can tell. */
static bool dt_cast_is_view(const ductile_layer *L)
{
    if (strcmp(L->op_type, "Cast") || strcmp(L->domain, "") || L->n_in != 1 || L->n_out != 1 || !L->in[0] || !L->out[0])
        return false;
    const ductile_tensor *a = L->in[0], *o = L->out[0];
    return a->dtype != DUCTILE_UNDEFINED && a->dtype == o->dtype && a->kind == 0 && o->kind == 0;
}

/* A Transpose that moves only dims fixed at 1 (the layout pass's [N, 1, 1, C] -> [N, C, 1, 1]
 * after a global pool): the other dims keep their order, so the bytes are those of a
 * Reshape, a view. */
static bool dt_transpose_is_view(const ductile_layer *L)
{
    if (strcmp(L->op_type, "Transpose") || strcmp(L->domain, "") || L->n_in != 1 || L->n_out != 1 || !L->in[0] ||
        !L->out[0] || L->in[0]->rank < 1 || L->in[0]->rank != L->out[0]->rank || dt_attr_find(L, "to"))
        return false; /* `to`: converts, other bytes */
    int64_t n = 0;
    const int64_t *perm = dt_attr_ints(L, "perm", &n);
    if (!perm || n != L->in[0]->rank) return false;
    int64_t last = -1;
    for (int64_t k = 0; k < n; k++) {
        if (perm[k] < 0 || perm[k] >= n) return false;
        if (L->in[0]->dims[perm[k]] == 1) continue;
        if (perm[k] < last) return false;
        last = perm[k];
    }
    return true;
}

bool dt_layer_is_view(const ductile_layer *L)
{
    return dt_op_is_view(L->op_type) || dt_cast_is_view(L) || dt_transpose_is_view(L);
}

/* Alias layers (dt_plan_layer.alias): a view op (or such a Cast or Transpose) between two
 * activations. A network input or output, a constant or a value keeps its own buffer (the
 * caller's, the engine's, the shape pass's), so a view op touching one still copies; so do eager engines, whose tensors each
 * get their own buffer. Layers are in execution order, so a chain's first tensor is found
 * before its views. */
static void dt_plan_aliases(const ductile_network *net, dt_plan *p)
{
    for (int t = 0; t < net->n_tensors; t++) p->alias_of[t] = -1;
    for (int i = 0; i < net->n_layers && !p->eager; i++) {
        const ductile_layer *L = net->layers[i];
        dt_plan_layer *pl = &p->layers[i];
        if (pl->value || !dt_layer_is_view(L) || L->n_in < 1 || L->n_out != 1 || !L->in[0] || !L->out[0]) continue;
        int a = L->in[0]->index, o = L->out[0]->index;
        if (p->kind[a] != DT_TENSOR_ACTIVATION || !L->in[0]->producer || p->kind[o] != DT_TENSOR_ACTIVATION) continue;
        pl->alias = true;
        p->alias_of[o] = p->alias_of[a] >= 0 ? p->alias_of[a] : a;
    }
}

/* Marks the network inputs whose *values* decide shapes (TensorRT's shape tensors): those
 * read, directly or through other layers, at a position whose value an op's infer needs.
 * Shape and Size read only dims, so the walk stops there. */
static ductile_status dt_find_shape_inputs(const ductile_network *net, dt_plan *p)
{
    bool *need = dt_calloc((size_t)net->n_tensors + 1, sizeof *need);
    if (!need) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d tensors", net->n_tensors);
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const ductile_layer *L = net->layers[i];
        bool out_needed = false;
        for (int k = 0; k < L->n_out; k++) out_needed |= need[L->out[k]->index];
        for (int k = 0; k < L->n_in && k < 32; k++) {
            if (!L->in[k]) continue;
            if ((p->layers[i].def->value_inputs >> k) & 1u) need[L->in[k]->index] = true;
            else if (out_needed && !dt_op_reads_shape_only(L->op_type)) need[L->in[k]->index] = true;
        }
    }
    for (int t = 0; t < net->n_tensors; t++)
        p->shape_input[t] = need[t] && p->kind[t] == DT_TENSOR_INPUT && net->tensors[t]->kind == DUCTILE_VALUE_TENSOR &&
                            (net->tensors[t]->dtype == DUCTILE_INT64 || net->tensors[t]->dtype == DUCTILE_INT32);
    dt_free(need);
    return DUCTILE_OK;
}

static bool dt_backend_has_kernel(const dt_backend *b, const char *op_type)
{
    return (b->kernel && b->kernel(op_type)) || (b->find_kernel && b->find_kernel(op_type));
}

ductile_status dt_plan_compile(dt_plan_layer *pl, const dt_backend *b)
{
    const ductile_layer *L = pl->layer;
    dt_free(pl->params);
    pl->params = NULL;
    pl->kernel = b->kernel ? b->kernel(L->op_type) : NULL;
    pl->legacy = pl->kernel || !b->find_kernel ? NULL : b->find_kernel(L->op_type);
    if (!pl->kernel && !pl->legacy)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): the %s backend has no kernel for '%s'",
                       L->name, L->op_type, L->opset, b->name, L->op_type);
    if (pl->kernel && pl->kernel->prepare) {
        ductile_status s = pl->kernel->prepare(L, &pl->params);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
    return DUCTILE_OK;
}

ductile_status dt_plan_layer_scratch(const dt_plan_layer *pl, const dt_view *in, const dt_view *out,
                                     int threads, size_t *bytes)
{
    *bytes = 0;
    if (!pl->kernel || !pl->kernel->scratch) return DUCTILE_OK;
    ductile_status s = pl->kernel->scratch(pl->params, in, out, threads, bytes);
    if (s) {
        const ductile_layer *L = pl->layer;
        return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
    return DUCTILE_OK;
}

ductile_status dt_plan_scratch_max(const dt_plan *p, const dt_view *views, int threads, bool fallback,
                                   size_t *bytes)
{
    *bytes = 0;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value || pl->fallback != fallback || !pl->kernel || !pl->kernel->scratch) continue;
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, views, in);
        for (int k = 0; k < L->n_out; k++) out[k] = views[L->out[k]->index];
        size_t b;
        DT_TRY(dt_plan_layer_scratch(pl, in, out, threads, &b));
        if (b > *bytes) *bytes = b;
    }
    return DUCTILE_OK;
}

ductile_status dt_plan_shapes(const dt_plan *p, const dt_view *views, const dt_exec *ex, size_t *bytes)
{
    *bytes = 0;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value || pl->fallback || pl->alias || !pl->kernel || !pl->kernel->plan_shapes) continue;
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, views, in);
        for (int k = 0; k < L->n_out; k++) out[k] = views[L->out[k]->index];
        size_t b = 0;
        ductile_status s = pl->kernel->plan_shapes(pl->params, in, out, ex, &b);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
        if (b > *bytes) *bytes = b;
    }
    return DUCTILE_OK;
}

ductile_status dt_plan_make(const ductile_network *net, const dt_backend *backend, dt_plan *p)
{
    memset(p, 0, sizeof *p);
    p->n_tensors = net->n_tensors;
    p->n_layers = net->n_layers;
    p->kind = dt_calloc((size_t)net->n_tensors + 1, sizeof *p->kind);
    p->shape_input = dt_calloc((size_t)net->n_tensors + 1, sizeof *p->shape_input);
    p->last_use = dt_malloc(((size_t)net->n_tensors + 1) * sizeof *p->last_use);
    p->layers = dt_calloc((size_t)net->n_layers + 1, sizeof *p->layers);
    if (!p->kind || !p->shape_input || !p->last_use || !p->layers) {
        dt_plan_free(p);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d layers", net->n_layers);
    }
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        p->last_use[t] = -1;
        /* The kind says where a tensor's bytes come from; being a network output does not
         * change that. A constant or value that is also an output stays what it is (layers
         * keep reading it, value layers keep running in the shape pass) and execute copies it
         * into the output's buffer: making it an OUTPUT left readers of a marked constant
         * without data and turned engines eager. */
        p->kind[t] = T->is_input ? DT_TENSOR_INPUT
                   : T->data ? DT_TENSOR_CONSTANT
                   : T->is_output ? DT_TENSOR_OUTPUT
                   : DT_TENSOR_ACTIVATION;
    }
    for (int i = 0; i < net->n_layers; i++) {
        const ductile_layer *L = net->layers[i];
        dt_plan_layer *pl = &p->layers[i];
        pl->layer = L;
        if (L->n_in > DT_MAX_LAYER_IO || L->n_out > DT_MAX_LAYER_IO) {
            dt_plan_free(p);
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): %d inputs and %d outputs; ductile supports at most %d of each",
                           L->name, L->op_type, L->opset, L->n_in, L->n_out, DT_MAX_LAYER_IO);
        }
        pl->def = dt_opdef_find(L->op_type);
        if (!pl->def) {
            dt_plan_free(p);
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): op type '%s' is not supported by ductile",
                           L->name, L->op_type, L->opset, L->op_type);
        }
        /* An engine's bytes are untrusted like a model's: its attributes get the checks the
         * importer runs, so kernels never see values those checks refuse (negative pads). */
        if (pl->def->check) {
            ductile_status s = pl->def->check(L);
            if (s) {
                dt_plan_free(p);
                return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
            }
        }
        ductile_status ss = dt_strings_check_layer(L);
        if (ss) {
            dt_plan_free(p);
            return dt_fail_prefix(ss, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
        }
        /* Sequences and optionals: the runtime moves them (runtime/seqval.c), on the eager
         * path; an engine's stored kinds must be those the ops make. */
        pl->seq = dt_layer_is_sequence(L);
        if (pl->seq || (!L->domain[0] && dt_ctrl_op(L->op_type))) {
            ductile_status s = dt_value_kinds(L, false);
            if (s) {
                dt_plan_free(p);
                return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
            }
        }
        if (pl->seq) {
            if (!p->eager) p->eager_cause = L;
            p->eager = true;
        }
        for (int k = 0; k < L->n_in; k++) {
            const ductile_tensor *in = L->in[k];
            if (!in) continue;
            if (in->index < 0 || in->index >= net->n_tensors || net->tensors[in->index] != in) {
                dt_plan_free(p);
                return dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': input %d is not a tensor of the network", L->name, k);
            }
            p->last_use[in->index] = i;
        }
    }
    ductile_status s = dt_find_shape_inputs(net, p);
    if (s) {
        dt_plan_free(p);
        return s;
    }
    for (int i = 0; i < net->n_layers; i++) {
        const ductile_layer *L = net->layers[i];
        dt_plan_layer *pl = &p->layers[i];
        bool known = L->n_in > 0;
        for (int k = 0; k < L->n_in; k++) {
            if (!L->in[k]) continue;
            int t = L->in[k]->index;
            if (p->kind[t] != DT_TENSOR_CONSTANT && p->kind[t] != DT_TENSOR_VALUE && !p->shape_input[t]) known = false;
        }
        if (!L->domain[0] && dt_ctrl_op(L->op_type)) {
            /* Output shapes follow from running a subgraph: the engine runs eagerly. */
            if (!p->eager) p->eager_cause = L;
            p->eager = true;
            s = dt_ctrl_make(L, &pl->ctrl);
            if (s) {
                dt_plan_free(p);
                return s;
            }
            continue;
        }
        /* Another op with subgraphs (FlexAttention's modifiers): its kernel runs them. */
        if (dt_layer_has_graphs(L) && (s = dt_ctrl_make(L, &pl->graphs))) {
            dt_plan_free(p);
            return s;
        }
        /* The shape pass has no string arena (layers making string bytes run in execute), and
         * random draws stay fresh per run. */
        pl->value = !pl->seq && ((known && !dt_op_draws_random(L->op_type)) || dt_op_reads_shape_only(L->op_type)) &&
                    !dt_strings_makes_bytes(L);
        for (int k = 0; k < L->n_out; k++)
            if (pl->value) p->kind[L->out[k]->index] = DT_TENSOR_VALUE;
        /* A device backend without a kernel for the op: the layer runs on the host between
         * copies (fallback), compiled like any host layer. */
        const dt_backend *host = dt_backend_host(), *b = pl->value ? host : backend;
        if (!pl->value && !backend->host_memory && !dt_backend_has_kernel(backend, L->op_type)) {
            b = host;
            pl->fallback = true;
        }
        s = pl->seq ? dt_seq_prepare(L, &pl->params) : dt_plan_compile(pl, b);
        if (s) {
            dt_plan_free(p);
            return s;
        }
    }
    for (int t = 0; t < net->n_tensors; t++) p->n_shape_inputs += p->shape_input[t];
    for (int i = 0; i < net->n_layers && !p->eager; i++) {
        const ductile_layer *L = net->layers[i];
        if (p->layers[i].value) continue;
        for (int k = 0; k < L->n_in && k < 32; k++) {
            if (!L->in[k] || !((p->layers[i].def->value_inputs >> k) & 1u)) continue;
            int t = L->in[k]->index;
            if (p->kind[t] != DT_TENSOR_CONSTANT && p->kind[t] != DT_TENSOR_VALUE && !p->shape_input[t]) {
                p->eager = true;
                p->eager_cause = L;
            }
        }
    }
    /* Aliases need eager known (eager engines have none); lifetimes need the aliases. */
    p->alias_of = dt_malloc(((size_t)net->n_tensors + 1) * sizeof *p->alias_of);
    if (!p->alias_of) {
        dt_plan_free(p);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d tensors", net->n_tensors);
    }
    dt_plan_aliases(net, p);
    s = dt_plan_slices(net, backend, p);
    if (!s) s = dt_memplan_lifetimes(net, p);
    if (s) {
        dt_plan_free(p);
        return s;
    }
    return DUCTILE_OK;
}

void dt_plan_free(dt_plan *p)
{
    dt_free(p->kind);
    dt_free(p->shape_input);
    dt_free(p->last_use);
    for (int i = 0; p->layers && i < p->n_layers; i++) {
        dt_free(p->layers[i].params);
        dt_ctrl_free(p->layers[i].ctrl);
        dt_ctrl_free(p->layers[i].graphs);
    }
    dt_free(p->layers);
    dt_memlife_free(p->mem);
    dt_free(p->mem_tensor);
    dt_free(p->alias_of);
    dt_free(p->mem_block);
    dt_free(p->slice_of);
    dt_free(p->slice_layer);
    dt_free(p->slice_pos);
    memset(p, 0, sizeof *p);
}
