/* The public network-definition calls: queries and the editing the TensorRT workflow needs
 * (unmark an output, add an activation or elementwise layer, mark the new output). */
#include "graph/network.h"
#include "core/dtype.h"
#include "core/status.h"
#include "graph/symbolic.h"

#include <stdio.h>
#include <string.h>

ductile_status ductile_network_create(ductile_builder *builder, ductile_network **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_network_create: out is NULL");
    *out = NULL;
    if (!builder) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_network_create: builder is NULL");
    return dt_network_new(out);
}

void ductile_network_free(ductile_network *network) { dt_network_delete(network); }

ductile_status ductile_network_add_input(ductile_network *n, const char *name, ductile_dtype dtype,
                                         const ductile_dims *dims, const char *const *dim_names,
                                         ductile_tensor **out)
{
    if (out) *out = NULL;
    if (!n || !name || !dims) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_input: network, name or dims is NULL");
    if (!dt_dtype_valid(dtype))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_input: input '%s': dtype %d is not a supported element type", name, (int)dtype);
    if (dims->nb_dims < 0 || dims->nb_dims > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_input: input '%s' has %d dims (expected 0..%d)", name, dims->nb_dims, DT_MAX_DIMS);
    for (int i = 0; i < dims->nb_dims; i++)
        if (dims->d[i] < -1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_input: input '%s' dimension %d is %lld (expected -1 for dynamic, or >= 0)",
                           name, i, (long long)dims->d[i]);
    if (dt_network_find(n, name))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_input: the network already has a tensor named '%s'", name);
    /* Everything that can fail comes before the tensor joins the network, so a failure leaves
     * the network as it was. */
    const char *syms[DT_MAX_DIMS] = {0};
    bool ok = dt_network_reserve(n, 1, 0, 1, 0);
    for (int i = 0; ok && i < dims->nb_dims; i++)
        if (dims->d[i] < 0 && dim_names && dim_names[i]) ok = (syms[i] = dt_arena_strdup(&n->arena, dim_names[i])) != NULL;
    ductile_tensor *t = ok ? dt_network_add_tensor(n, name) : NULL;
    if (!t) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding input '%s'", name);
    t->dtype = dtype;
    t->rank = dims->nb_dims;
    for (int i = 0; i < dims->nb_dims; i++) {
        t->dims[i] = dims->d[i];
        t->dim_sym[i] = syms[i];
    }
    DT_TRY(dt_network_add_input(n, t)); /* reserved: cannot fail */
    if (out) *out = t;
    return DUCTILE_OK;
}

int32_t ductile_network_num_inputs(const ductile_network *n) { return n ? n->n_inputs : 0; }
int32_t ductile_network_num_outputs(const ductile_network *n) { return n ? n->n_outputs : 0; }
int32_t ductile_network_num_layers(const ductile_network *n) { return n ? n->n_layers : 0; }

ductile_tensor *ductile_network_get_input(ductile_network *n, int32_t i)
{
    return n && i >= 0 && i < n->n_inputs ? n->inputs[i] : NULL;
}

ductile_tensor *ductile_network_get_output(ductile_network *n, int32_t i)
{
    return n && i >= 0 && i < n->n_outputs ? n->outputs[i] : NULL;
}

ductile_layer *ductile_network_get_layer(ductile_network *n, int32_t i)
{
    return n && i >= 0 && i < n->n_layers ? n->layers[i] : NULL;
}

ductile_tensor *ductile_network_find_tensor(ductile_network *n, const char *name)
{
    return n && name ? dt_network_find(n, name) : NULL;
}

/* A handle belongs to this network when the network's table holds it at its index. */
static int dt_owns_tensor(const ductile_network *n, const ductile_tensor *t)
{
    return t && t->index >= 0 && t->index < n->n_tensors && n->tensors[t->index] == t;
}

ductile_status ductile_network_mark_output(ductile_network *n, ductile_tensor *t)
{
    if (!n || !t) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "mark_output: network or tensor is NULL");
    if (!dt_owns_tensor(n, t))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "mark_output: tensor '%s' does not belong to this network", t->name);
    if (t->is_input)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "mark_output: tensor '%s' is a network input and cannot be an output", t->name);
    return dt_network_add_output(n, t);
}

ductile_status ductile_network_unmark_output(ductile_network *n, ductile_tensor *t)
{
    if (!n || !t) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "unmark_output: network or tensor is NULL");
    for (int i = 0; i < n->n_outputs; i++) {
        if (n->outputs[i] != t) continue;
        memmove(&n->outputs[i], &n->outputs[i + 1], sizeof *n->outputs * (size_t)(n->n_outputs - i - 1));
        n->n_outputs--;
        t->is_output = false;
        return DUCTILE_OK;
    }
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "unmark_output: tensor '%s' is not a network output", t->name);
}

/* Adds a layer named "<op>_<k>" (the first k whose name and output name are free) with one
 * output "<name>_output" shaped like `like`. */
static ductile_status dt_add_edit_layer(ductile_network *n, const char *op, ductile_tensor **ins,
                                        int n_in, const ductile_tensor *like, ductile_layer **out)
{
    char name[256], oname[300];
    for (;;) {
        snprintf(name, sizeof name, "%s_%d", op, n->next_auto_name++);
        snprintf(oname, sizeof oname, "%s_output", name);
        if (!dt_network_find(n, name) && !dt_network_find(n, oname)) break;
    }
    ductile_layer *L = dt_network_reserve(n, 1, 1, 0, 0) ? dt_network_add_layer(n, op, name, n_in, 1, 0) : NULL;
    ductile_tensor *t = L ? dt_network_add_tensor(n, oname) : NULL;
    if (!t) {
        if (L) dt_network_drop_last_layer(n); /* the network stays as it was */
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding layer '%s'", name);
    }
    for (int i = 0; i < n_in; i++) L->in[i] = ins[i];
    L->out[0] = t;
    t->producer = L;
    t->dtype = like->dtype;
    t->rank = like->rank;
    for (int i = 0; i < like->rank && i < DT_MAX_DIMS; i++) {
        t->dims[i] = like->dims[i];
        t->dim_sym[i] = like->dim_sym[i];
    }
    *out = L;
    return DUCTILE_OK;
}

ductile_status ductile_network_add_activation(ductile_network *n, ductile_tensor *input,
                                              ductile_activation type, ductile_layer **out)
{
    static const char *const ops[] = {"Relu", "Sigmoid", "Tanh"};
    if (out) *out = NULL;
    if (!n || !input || !out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_activation: network, input or out is NULL");
    if ((unsigned)type >= sizeof ops / sizeof ops[0])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_activation: activation type %d is not one of RELU (0), SIGMOID (1), TANH (2)", (int)type);
    if (!dt_owns_tensor(n, input))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_activation: tensor '%s' does not belong to this network", input->name);
    if (input->dtype != DUCTILE_FLOAT32 && input->dtype != DUCTILE_UNDEFINED)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_activation: tensor '%s' is %s; activations need float32",
                       input->name, ductile_dtype_name((ductile_dtype)input->dtype));
    return dt_add_edit_layer(n, ops[type], &input, 1, input, out);
}

ductile_status ductile_network_add_elementwise(ductile_network *n, ductile_tensor *a, ductile_tensor *b,
                                               ductile_elementwise op, ductile_layer **out)
{
    static const char *const ops[] = {"Add", "Mul", "Sub", "Div", "Max", "Min"};
    if (out) *out = NULL;
    if (!n || !a || !b || !out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_elementwise: network, a, b or out is NULL");
    if ((unsigned)op >= sizeof ops / sizeof ops[0])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_elementwise: operation %d is not one of SUM (0) .. MIN (5)", (int)op);
    if (!dt_owns_tensor(n, a) || !dt_owns_tensor(n, b))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_elementwise: tensor '%s' does not belong to this network",
                       dt_owns_tensor(n, a) ? b->name : a->name);
    if (a->dtype != b->dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_elementwise: '%s' is %s but '%s' is %s",
                       a->name, ductile_dtype_name((ductile_dtype)a->dtype), b->name,
                       ductile_dtype_name((ductile_dtype)b->dtype));
    ductile_tensor *ins[2] = {a, b};
    ductile_status s = dt_add_edit_layer(n, ops[op], ins, 2, a->rank >= b->rank ? a : b, out);
    if (s) return s;
    /* Broadcasting: declared dims are only hints; unknown where the two differ. */
    ductile_tensor *t = (*out)->out[0];
    if (a->rank != b->rank) t->rank = -1;
    else
        for (int i = 0; i < t->rank; i++)
            if (a->dims[i] != b->dims[i]) {
                t->dims[i] = -1;
                t->dim_sym[i] = NULL;
            }
    /* Exact broadcast dims (a dim of 1 against `batch` is `batch`). It fails only on memory;
     * the layer is then taken out again, as a parse that runs out of memory fails. */
    if (dt_symbolic_infer_layer(n, *out) != DUCTILE_OK) {
        const char *name = (*out)->name;
        dt_network_drop_last_layer(n);
        *out = NULL;
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory inferring the dims of layer '%s'", name);
    }
    return DUCTILE_OK;
}

const char *ductile_layer_name(const ductile_layer *L) { return L ? L->name : NULL; }
const char *ductile_layer_op_type(const ductile_layer *L) { return L ? L->op_type : NULL; }
int32_t ductile_layer_num_inputs(const ductile_layer *L) { return L ? L->n_in : 0; }
int32_t ductile_layer_num_outputs(const ductile_layer *L) { return L ? L->n_out : 0; }
ductile_tensor *ductile_layer_get_input(ductile_layer *L, int32_t i) { return L && i >= 0 && i < L->n_in ? L->in[i] : NULL; }
ductile_tensor *ductile_layer_get_output(ductile_layer *L, int32_t i) { return L && i >= 0 && i < L->n_out ? L->out[i] : NULL; }

const char *ductile_tensor_name(const ductile_tensor *t) { return t ? t->name : NULL; }
ductile_dtype ductile_tensor_dtype(const ductile_tensor *t) { return t ? (ductile_dtype)t->dtype : DUCTILE_UNDEFINED; }

ductile_dims ductile_tensor_dims(const ductile_tensor *t)
{
    ductile_dims d;
    memset(&d, 0, sizeof d);
    d.nb_dims = t ? t->rank : -1;
    for (int i = 0; t && i < t->rank; i++) d.d[i] = t->dims[i];
    return d;
}

const char *ductile_tensor_dim_name(const ductile_tensor *t, int32_t i)
{
    return t && i >= 0 && i < t->rank ? t->dim_sym[i] : NULL;
}

int ductile_tensor_is_input(const ductile_tensor *t) { return t && t->is_input; }
int ductile_tensor_is_output(const ductile_tensor *t) { return t && t->is_output; }
