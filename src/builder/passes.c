#include "builder/passes.h"
#include "backend/backend.h"
#include "core/alloc.h"
#include "core/status.h"
#include "graph/subgraph.h"
#include "ops/op.h"
#include "ops/strings.h"
#include "ops/sequence.h"
#include "ops/random.h"
#include "runtime/engine_impl.h"

#include <stdlib.h>
#include <string.h>

static void dt_copy_tensor(ductile_tensor *dst, const ductile_tensor *src)
{
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    memcpy(dst->dim_sym, src->dim_sym, sizeof dst->dim_sym);
    memcpy(dst->overridden, src->overridden, sizeof dst->overridden);
    memcpy(dst->declared, src->declared, sizeof dst->declared);
    dst->data = src->data;
    dst->nbytes = src->nbytes;
    dst->kind = src->kind;
}

ductile_status dt_pass_extract(const ductile_network *src, ductile_network **out)
{
    *out = NULL;
    size_t nt = (size_t)src->n_tensors + 1, nl = (size_t)src->n_layers + 1;
    bool *need_t = dt_calloc(nt, sizeof *need_t), *need_l = dt_calloc(nl, sizeof *need_l);
    ductile_tensor **map = dt_calloc(nt, sizeof *map);
    ductile_network *w = NULL;
    ductile_status s = DUCTILE_OK;
    if (!need_t || !need_l || !map) {
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory copying the network");
        goto done;
    }
    for (int i = 0; i < src->n_outputs; i++) need_t[src->outputs[i]->index] = true;
    for (int i = 0; i < src->n_inputs; i++) need_t[src->inputs[i]->index] = true;
    /* Layers are in topological order (ONNX requires it; edits only append), so one reverse
     * sweep finds everything the outputs depend on. */
    for (int l = src->n_layers - 1; l >= 0; l--) {
        const ductile_layer *L = src->layers[l];
        bool needed = false;
        for (int k = 0; k < L->n_out; k++)
            if (need_t[L->out[k]->index] && !L->out[k]->data) needed = true;
        if (!needed) continue;
        need_l[l] = true;
        for (int k = 0; k < L->n_out; k++) need_t[L->out[k]->index] = true;
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k]) need_t[L->in[k]->index] = true;
    }
    s = dt_network_new(&w);
    if (s) goto done;
    w->opset = src->opset;
    w->next_auto_name = src->next_auto_name;
    for (int t = 0; t < src->n_tensors; t++) {
        if (!need_t[t]) continue;
        map[t] = dt_network_add_tensor(w, src->tensors[t]->name);
        if (!map[t]) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory copying the network");
            goto done;
        }
        dt_copy_tensor(map[t], src->tensors[t]);
    }
    for (int l = 0; l < src->n_layers; l++) {
        if (!need_l[l]) continue;
        const ductile_layer *L = src->layers[l];
        ductile_layer *C = dt_network_add_layer(w, L->op_type, L->name, L->n_in, L->n_out, L->n_attr);
        if (!C) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory copying the network");
            goto done;
        }
        C->domain = L->domain;
        C->opset = L->opset;
        memcpy(C->attrs, L->attrs, sizeof *L->attrs * (size_t)L->n_attr);
        for (int k = 0; k < L->n_in; k++) C->in[k] = L->in[k] ? map[L->in[k]->index] : NULL;
        for (int k = 0; k < L->n_out; k++) {
            C->out[k] = map[L->out[k]->index];
            if (!C->out[k]->data) C->out[k]->producer = C;
        }
    }
    for (int i = 0; i < src->n_inputs && !s; i++) s = dt_network_add_input(w, map[src->inputs[i]->index]);
    for (int i = 0; i < src->n_outputs && !s; i++) s = dt_network_add_output(w, map[src->outputs[i]->index]);
done:
    dt_free(need_t);
    dt_free(need_l);
    dt_free(map);
    if (s) dt_network_delete(w);
    else *out = w;
    return s;
}

static void dt_release_free(void *p, size_t n) { dt_free(p); }

/* Folds one layer whose inputs are all constants. */
static ductile_status dt_fold_layer(ductile_network *net, ductile_layer *L, const dt_opdef *def, dt_kernel_fn run)
{
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    if (L->n_in > DT_MAX_LAYER_IO || L->n_out > DT_MAX_LAYER_IO) return DUCTILE_OK; /* left to run time */
    for (int k = 0; k < L->n_in; k++) {
        memset(&in[k], 0, sizeof in[k]);
        in[k].rank = -1;
        const ductile_tensor *T = L->in[k];
        if (!T) continue;
        in[k].dtype = T->dtype;
        in[k].rank = T->rank;
        memcpy(in[k].dims, T->dims, sizeof T->dims);
        in[k].data = (void *)T->data;
    }
    memset(out, 0, sizeof out[0] * (size_t)L->n_out);
    ductile_status s = def->infer(L, in, out);
    if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    for (int k = 0; k < L->n_out; k++)
        DT_TRY(dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_INVALID_ARGUMENT));
    size_t bytes[DT_MAX_LAYER_IO];
    for (int k = 0; k < L->n_out; k++) {
        if (out[k].rank < 0 || out[k].rank > DT_MAX_DIMS || !dt_view_bytes(&out[k], &bytes[k]))
            return dt_fail(DUCTILE_ERR_SHAPE, "node '%s' (%s, opset %d): output %d has an invalid shape",
                           L->name, L->op_type, L->opset, k);
        void *buf = dt_aligned_alloc(64, bytes[k] ? bytes[k] : 1);
        if (!buf)
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory folding node '%s'", L->name);
        DT_TRY(dt_network_keep(net, buf, bytes[k], dt_release_free));
        out[k].data = buf;
    }
    dt_exec ex = {.pool = NULL};
    s = run(L, in, out, &ex);
    if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    for (int k = 0; k < L->n_out; k++) {
        ductile_tensor *T = L->out[k];
        T->dtype = out[k].dtype;
        T->rank = out[k].rank;
        memcpy(T->dims, out[k].dims, sizeof T->dims);
        memset(T->dim_sym, 0, sizeof T->dim_sym);
        T->data = out[k].data;
        T->nbytes = bytes[k];
        T->producer = NULL;
    }
    return DUCTILE_OK;
}

ductile_status dt_pass_fold_constants(ductile_network *net)
{
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        bool all_const = L->n_in > 0;
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] && !L->in[k]->data) all_const = false;
        for (int k = 0; k < L->n_out; k++)
            if (L->out[k]->is_output) all_const = false;
        /* String bytes made at build time would need a home in the network, sequences are
         * values of the run (runtime/seqval.h), random draws must stay fresh per run, and a
         * subgraph's run is the runtime's (runtime/ctrl.h): none is folded into constants. */
        if (!all_const || dt_strings_makes_bytes(L) || dt_layer_is_sequence(L) || dt_op_draws_random(L->op_type) ||
            dt_layer_has_graphs(L) || (!L->domain[0] && dt_ctrl_op(L->op_type)))
            continue;
        const dt_opdef *def = dt_opdef_find(L->op_type);
        dt_kernel_fn run = dt_backend_host()->find_kernel(L->op_type);
        if (!def || !run)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): op type '%s' is not supported by ductile",
                           L->name, L->op_type, L->opset, L->op_type);
        DT_TRY(dt_fold_layer(net, L, def, run));
    }
    return DUCTILE_OK;
}
