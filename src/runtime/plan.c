/* Derives the execution plan from an engine's network: the kernel of each layer, which
 * tensors are known from shapes alone (computed once per shape in the shape pass, never in
 * execute), and where each tensor is last read (for the activation memory plan). */
#include "runtime/engine_impl.h"
#include "backend/cpu/kernels.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

/* Ops whose outputs depend only on the input's shape, never its data. */
static bool dt_op_reads_shape_only(const char *op) { return !strcmp(op, "Shape") || !strcmp(op, "Size"); }

ductile_status dt_plan_make(const ductile_network *net, const dt_backend *backend, dt_plan *p)
{
    memset(p, 0, sizeof *p);
    p->n_tensors = net->n_tensors;
    p->n_layers = net->n_layers;
    p->kind = calloc((size_t)net->n_tensors + 1, sizeof *p->kind);
    p->last_use = malloc(((size_t)net->n_tensors + 1) * sizeof *p->last_use);
    p->layers = calloc((size_t)net->n_layers + 1, sizeof *p->layers);
    if (!p->kind || !p->last_use || !p->layers) {
        dt_plan_free(p);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d layers", net->n_layers);
    }
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        p->last_use[t] = -1;
        p->kind[t] = T->data ? DT_TENSOR_CONSTANT
                   : T->is_input ? DT_TENSOR_INPUT
                   : T->is_output ? DT_TENSOR_OUTPUT
                   : DT_TENSOR_ACTIVATION;
    }
    for (int i = 0; i < net->n_layers; i++) {
        const ductile_layer *L = net->layers[i];
        dt_plan_layer *pl = &p->layers[i];
        pl->layer = L;
        pl->def = dt_opdef_find(L->op_type);
        if (!pl->def) {
            dt_plan_free(p);
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): op type '%s' is not supported by ductile",
                           L->name, L->op_type, L->opset, L->op_type);
        }
        bool known = L->n_in > 0;
        for (int k = 0; k < L->n_in; k++) {
            const ductile_tensor *in = L->in[k];
            if (!in) continue;
            if (in->index < 0 || in->index >= net->n_tensors || net->tensors[in->index] != in) {
                dt_plan_free(p);
                return dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': input %d is not a tensor of the network", L->name, k);
            }
            p->last_use[in->index] = i;
            dt_tensor_kind kk = p->kind[in->index];
            if (kk != DT_TENSOR_CONSTANT && kk != DT_TENSOR_VALUE) known = false;
        }
        /* A layer writing a network output runs in execute, into the output's buffer. */
        bool writes_output = false;
        for (int k = 0; k < L->n_out; k++) writes_output |= L->out[k]->is_output;
        pl->value = (known || dt_op_reads_shape_only(L->op_type)) && !writes_output;
        for (int k = 0; k < L->n_out; k++)
            if (pl->value) p->kind[L->out[k]->index] = DT_TENSOR_VALUE;
        pl->run = pl->value ? dt_cpu_kernel_find(L->op_type) : backend->find_kernel(L->op_type);
        if (!pl->run) {
            dt_plan_free(p);
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): the %s backend has no kernel for '%s'",
                           L->name, L->op_type, L->opset, pl->value ? "cpu" : backend->name, L->op_type);
        }
    }
    return DUCTILE_OK;
}

void dt_plan_free(dt_plan *p)
{
    free(p->kind);
    free(p->last_use);
    free(p->layers);
    memset(p, 0, sizeof *p);
}
