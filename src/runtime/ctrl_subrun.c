/* One run of a subgraph (ctrl_internal.h): per tensor a view and a buffer of the run's own. */
#include "runtime/ctrl_internal.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/subgraph.h"
#include "ops/sequence.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void dt_subrun_free(dt_subrun *r)
{
    for (int t = 0; r->bufs && t < r->sg->net->n_tensors; t++) dt_free(r->bufs[t]);
    for (int t = 0; r->own && t < r->sg->net->n_tensors; t++) dt_seqval_free(&r->own[t]);
    dt_free(r->own);
    dt_free(r->vals);
    dt_free(r->seq_in);
    dt_free(r->views);
    dt_free(r->bufs);
    dt_free(r->caps);
    dt_free(r->scratch);
    dt_free(r->inputs);
}

/* in, vals: the layer's inputs and the enclosing values, for the captured ones. */
ductile_status dt_subrun_init(dt_subrun *r, const dt_subgraph *sg, const dt_view *in, dt_seqval *const *vals,
                              const ductile_layer *L)
{
    memset(r, 0, sizeof *r);
    r->sg = sg;
    size_t n = (size_t)sg->net->n_tensors + 1;
    r->views = dt_calloc(n, sizeof *r->views);
    r->bufs = dt_calloc(n, sizeof *r->bufs);
    r->caps = dt_calloc(n, sizeof *r->caps);
    r->inputs = dt_calloc((size_t)sg->net->n_inputs + 1, sizeof *r->inputs);
    r->seq_in = dt_calloc((size_t)sg->net->n_inputs + 1, sizeof *r->seq_in);
    r->vals = dt_calloc(n, sizeof *r->vals);
    r->own = dt_calloc(n, sizeof *r->own);
    if (!r->views || !r->bufs || !r->caps || !r->inputs || !r->seq_in || !r->vals || !r->own) {
        dt_subrun_free(r);
        memset(r, 0, sizeof *r);
        return dt_ctrl_oom(sg->attr);
    }
    dt_subrun_bind(r, in, vals, L);
    /* Sequence and optional tensors the subgraph's layers make: values of the run's own. */
    for (int t = 0; t < sg->net->n_tensors; t++) {
        const ductile_tensor *T = sg->net->tensors[t];
        r->own[t].kind = T->kind;
        r->own[t].elem = T->dtype;
        if (T->kind != DUCTILE_VALUE_TENSOR && !T->is_input) r->vals[t] = &r->own[t];
    }
    return DUCTILE_OK;
}

void dt_subrun_bind(dt_subrun *r, const dt_view *in, dt_seqval *const *vals, const ductile_layer *L)
{
    const dt_subgraph *sg = r->sg;
    int fi = dt_graph_formal_inputs(sg->net);
    for (int j = 0; j < sg->net->n_captured; j++) {
        r->inputs[fi + j] = in[sg->capture[j]];
        const ductile_tensor *outer = L->in[sg->capture[j]];
        if (outer && outer->kind != DUCTILE_VALUE_TENSOR) r->seq_in[fi + j] = vals ? vals[outer->index] : NULL;
    }
}

/* A buffer for v (dims set) in tensor t's slot: v->data. */
static ductile_status dt_subrun_buffer(dt_subrun *r, int t, dt_view *v)
{
    size_t bytes;
    if (v->rank < 0 || v->rank > DT_MAX_DIMS || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' has an invalid shape", r->sg->net->tensors[t]->name);
    if (!r->bufs[t] || r->caps[t] < bytes) {
        void *p = dt_aligned_alloc(64, bytes ? bytes : 1);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for tensor '%s'", bytes,
                               r->sg->net->tensors[t]->name);
        dt_free(r->bufs[t]);
        r->bufs[t] = p;
        r->caps[t] = bytes;
    }
    v->data = r->bufs[t];
    return DUCTILE_OK;
}

typedef struct dt_subrun_out {
    dt_subrun *r;
    const ductile_layer *L;
} dt_subrun_out;

static ductile_status dt_subrun_alloc(void *user, int k, dt_view *v)
{
    dt_subrun_out *o = user;
    return dt_subrun_buffer(o->r, o->L->out[k]->index, v);
}

/* A tensor output of a sequence layer (runtime/seqval.h): the run's buffer. */
static ductile_status dt_subrun_seq_out(void *ctx, int t, dt_view *v)
{
    dt_subrun *r = ctx;
    DT_TRY(dt_subrun_buffer(r, t, v));
    r->views[t] = *v;
    return DUCTILE_OK;
}

static ductile_status dt_subrun_layer(dt_subrun *r, const dt_plan_layer *pl, dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_layer *L = pl->layer;
    if (pl->ctrl) {
        dt_subrun_out o = {r, L};
        return dt_ctrl_run(pl->ctrl, L, in, r->vals, out, ex, dt_subrun_alloc, &o);
    }
    if (pl->seq) {
        DT_TRY(dt_seq_run(L, pl->params, in, r->vals, dt_subrun_seq_out, r));
        for (int k = 0; k < L->n_out; k++) out[k] = r->views[L->out[k]->index];
        return DUCTILE_OK;
    }
    DT_TRY(pl->def->infer(L, in, out));
    for (int k = 0; k < L->n_out; k++) DT_TRY(dt_subrun_buffer(r, L->out[k]->index, &out[k]));
    size_t scratch = 0;
    if (pl->kernel && pl->kernel->scratch)
        DT_TRY(pl->kernel->scratch(pl->params, in, out, dt_pool_threads(ex->pool), &scratch));
    if (scratch > r->scratch_cap) {
        void *p = dt_aligned_alloc(64, scratch);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for kernel scratch", scratch);
        dt_free(r->scratch);
        r->scratch = p;
        r->scratch_cap = scratch;
    }
    ex->scratch = r->scratch;
    ex->scratch_bytes = r->scratch_cap;
    return dt_plan_layer_run(pl, in, out, ex);
}

/* Runs the subgraph on r->inputs; its outputs are then r->views[net->outputs[k]->index]. */
ductile_status dt_subrun_exec(dt_subrun *r, const dt_exec *outer)
{
    const ductile_network *net = r->sg->net;
    const dt_plan *p = &r->sg->plan;
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        dt_view *v = &r->views[t];
        memset(v, 0, sizeof *v);
        v->rank = -1;
        if (T->kind != DUCTILE_VALUE_TENSOR) {
            /* A sequence or optional: its value is r->vals[t]; the view says its element dtype. */
            v->dtype = T->dtype;
            v->rank = 0;
            continue;
        }
        if (!T->data) continue;
        v->dtype = T->dtype;
        v->rank = T->rank;
        memcpy(v->dims, T->dims, sizeof v->dims);
        v->data = (void *)T->data;
    }
    for (int i = 0; i < net->n_inputs; i++) {
        const ductile_tensor *T = net->inputs[i];
        if (T->kind == DUCTILE_VALUE_TENSOR) {
            r->views[T->index] = r->inputs[i];
            continue;
        }
        if (!r->seq_in[i])
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input '%s' (%s) has no value", T->name, dt_value_kind_name(T->kind));
        r->vals[T->index] = r->seq_in[i];
    }
    dt_exec ex = {.pool = outer->pool, .profile = outer->profile, .point = outer->point, .max_iterations = outer->max_iterations};
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, r->views, in);
        memset(out, 0, sizeof out[0] * (size_t)(L->n_out ? L->n_out : 1));
        ductile_status s = dt_subrun_layer(r, pl, in, out, &ex);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
        for (int k = 0; k < L->n_out; k++) {
            DT_TRY(dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_FORMAT));
            r->views[L->out[k]->index] = out[k];
        }
    }
    return DUCTILE_OK;
}

dt_seqval *dt_subrun_seq_output(const dt_subrun *r, int k)
{
    return r->vals[r->sg->net->outputs[k]->index];
}

const dt_view *dt_subrun_output(const dt_subrun *r, int k)
{
    return &r->views[r->sg->net->outputs[k]->index];
}
