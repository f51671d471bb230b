/* The shape program: given the input shapes, every tensor's dims, and the values of tensors
 * that follow from shapes alone (Shape -> Gather -> Concat -> Reshape chains, Range lengths,
 * Resize sizes). Runs when input shapes change, never per execute. */
#include "runtime/engine_impl.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool dt_view_bytes(const dt_view *v, size_t *out)
{
    int64_t n;
    if (v->rank < 0 || !dt_dims_product(v->dims, v->rank, &n)) return false;
    return dt_mul_size((size_t)n, ductile_dtype_size((ductile_dtype)v->dtype), out);
}

/* The safety net behind the ops' own checks: an output whose dims are negative or whose size
 * overflows. The dims come from the values of the layer's value inputs (a Range's limit, a
 * OneHot's depth, a ConstantOfShape's shape), so the message shows them. */
enum { DT_BAD_NEGATIVE, DT_BAD_OVERFLOW, DT_BAD_NO_MEMORY };
static ductile_status dt_bad_output(const ductile_layer *L, const dt_opdef *def, const dt_view *in,
                                    const dt_view *o, int k, int why, size_t bytes)
{
    char msg[600];
    size_t n = 0;
#define DT_PUT(...) do { int w_ = snprintf(msg + n, sizeof msg - n, __VA_ARGS__); \
                         if (w_ > 0) n = (size_t)w_ < sizeof msg - n ? n + (size_t)w_ : sizeof msg - 1; } while (0)
    DT_PUT("output %d ('%s') has ", k, L->out[k]->name);
    if (o->rank < 0 || o->rank > DT_MAX_DIMS) DT_PUT("rank %d", o->rank);
    else {
        DT_PUT(why == DT_BAD_NEGATIVE ? "dims [" : "shape [");
        for (int i = 0; i < o->rank; i++) DT_PUT("%s%lld", i ? "," : "", (long long)o->dims[i]);
        DT_PUT("]");
    }
    if (why == DT_BAD_NEGATIVE) DT_PUT(", negative or too large to address");
    else if (why == DT_BAD_OVERFLOW)
        DT_PUT(" of %s: more than %zu bytes", ductile_dtype_name((ductile_dtype)o->dtype), (size_t)SIZE_MAX);
    else DT_PUT(" of %s (%zu bytes): out of memory", ductile_dtype_name((ductile_dtype)o->dtype), bytes);
    const char *sep = ", from ";
    for (int i = 0; i < L->n_in && i < 32; i++) {
        const dt_view *v = &in[i];
        if (!(def->value_inputs & (1u << i)) || !L->in[i] || !v->data || v->rank > 1 ||
            (v->dtype != DUCTILE_INT64 && v->dtype != DUCTILE_INT32))
            continue;
        int64_t cnt = v->rank == 1 ? v->dims[0] : 1;
        DT_PUT("%sinput %d ('%s') = [", sep, i, L->in[i]->name);
        for (int64_t j = 0; j < cnt && j < 8; j++) DT_PUT("%s%lld", j ? "," : "", (long long)dt_view_int(v, j));
        DT_PUT("%s]", cnt > 8 ? ",..." : "");
        sep = " and ";
    }
#undef DT_PUT
    return dt_fail(why == DT_BAD_NO_MEMORY ? DUCTILE_ERR_OUT_OF_MEMORY : DUCTILE_ERR_SHAPE, "%s", msg);
}

ductile_status dt_shape_state_init(dt_shape_state *st, const ductile_engine *e)
{
    const ductile_network *net = e->net;
    size_t n = (size_t)net->n_tensors + 1;
    memset(st, 0, sizeof *st);
    st->views = dt_calloc(n, sizeof *st->views);
    st->value_bufs = dt_calloc(n, sizeof *st->value_bufs);
    st->value_caps = dt_calloc(n, sizeof *st->value_caps);
    if (!st->views || !st->value_bufs || !st->value_caps) {
        dt_shape_state_free(st, e);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for the shapes of %d tensors", net->n_tensors);
    }
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        dt_view *v = &st->views[t];
        v->dtype = T->dtype;
        v->rank = T->rank;
        for (int i = 0; i < T->rank && i < DT_MAX_DIMS; i++) v->dims[i] = T->dims[i];
        if (T->data) v->data = (void *)T->data;
    }
    return DUCTILE_OK;
}

void dt_shape_state_free(dt_shape_state *st, const ductile_engine *e)
{
    if (st->value_bufs)
        for (int t = 0; t < e->net->n_tensors; t++) dt_free(st->value_bufs[t]);
    dt_free(st->views);
    dt_free(st->value_bufs);
    dt_free(st->value_caps);
    dt_free(st->scratch);
    memset(st, 0, sizeof *st);
}

ductile_status dt_check_dtype(const ductile_layer *L, const ductile_tensor *T, int declared,
                              int computed, ductile_status code)
{
    if (!declared || declared == computed) return DUCTILE_OK;
    return dt_fail(code, "node '%s' (%s, opset %d): %s '%s' is declared %s but the node computes %s",
                   L->name, L->op_type, L->opset, T->is_output ? "output" : "tensor", T->name,
                   ductile_dtype_name((ductile_dtype)declared), ductile_dtype_name((ductile_dtype)computed));
}

static ductile_status dt_node_fail(const ductile_layer *L, ductile_status s)
{
    return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
}

void dt_layer_input_views(const ductile_layer *L, const dt_view *views, dt_view *in)
{
    for (int k = 0; k < L->n_in; k++) {
        if (L->in[k]) {
            in[k] = views[L->in[k]->index];
            continue;
        }
        memset(&in[k], 0, sizeof in[k]);
        in[k].rank = -1;
    }
}

/* One layer of the pass: its outputs' views, and a value layer's outputs' data. */
static ductile_status dt_shape_pass_layer(const ductile_engine *e, dt_shape_state *st, dt_exec *ex,
                                          const dt_plan_layer *pl, dt_view *in, dt_view *out)
{
    const dt_plan *p = &e->plan;
    const ductile_layer *L = pl->layer;
    dt_layer_input_views(L, st->views, in);
    for (int k = 0; k < L->n_in; k++) {
        if (!L->in[k]) continue;
        int t = L->in[k]->index;
        dt_tensor_kind kk = p->kind[t];
        /* Shape inputs keep the host data the context put in their view. */
        if (kk != DT_TENSOR_CONSTANT && kk != DT_TENSOR_VALUE && !p->shape_input[t]) in[k].data = NULL;
    }
    /* Outputs start undefined: the dtype is infer's to compute, never the engine's to
     * suggest; an engine whose stored dtype disagrees was not written by the builder. */
    memset(out, 0, sizeof out[0] * (size_t)(L->n_out ? L->n_out : 1));
    ductile_status s = pl->def->infer(L, in, out);
    if (s) return dt_node_fail(L, s);
    for (int k = 0; k < L->n_out; k++)
        DT_TRY(dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_FORMAT));
    for (int k = 0; k < L->n_out; k++) {
        size_t bytes;
        if (out[k].rank < 0 || out[k].rank > DT_MAX_DIMS || !dt_view_bytes(&out[k], &bytes)) {
            bool negative = out[k].rank < 0 || out[k].rank > DT_MAX_DIMS;
            for (int d = 0; !negative && d < out[k].rank; d++) negative |= out[k].dims[d] < 0;
            return dt_node_fail(L, dt_bad_output(L, pl->def, in, &out[k], k,
                                                 negative ? DT_BAD_NEGATIVE : DT_BAD_OVERFLOW, 0));
        }
        int t = L->out[k]->index;
        if (pl->value) {
            size_t need = bytes ? bytes : 1;
            if (st->value_caps[t] < need) {
                void *nb = dt_realloc(st->value_bufs[t], need);
                if (!nb) return dt_node_fail(L, dt_bad_output(L, pl->def, in, &out[k], k, DT_BAD_NO_MEMORY, need));
                st->value_bufs[t] = nb;
                st->value_caps[t] = need;
            }
            out[k].data = st->value_bufs[t];
        } else {
            out[k].data = NULL;
        }
        st->views[t] = out[k];
    }
    if (pl->value) {
        /* A shape input without data (no buffer yet): say so rather than read NULL. */
        bool dims_only = !strcmp(L->op_type, "Shape") || !strcmp(L->op_type, "Size");
        for (int k = 0; k < L->n_in && !dims_only; k++)
            if (L->in[k] && !in[k].data && dt_view_count(&in[k]) > 0)
                return dt_node_fail(L, dt_fail(DUCTILE_ERR_STATE, "the values of input %d ('%s') are needed to compute shapes but are not available",
                                               k, L->in[k]->name));
        size_t bytes;
        DT_TRY(dt_plan_layer_scratch(pl, in, out, dt_pool_threads(ex->pool), &bytes));
        if (bytes > st->scratch_cap) {
            void *nb = dt_aligned_alloc(64, bytes);
            if (!nb)
                return dt_node_fail(L, dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for kernel scratch", bytes));
            dt_free(st->scratch);
            st->scratch = nb;
            st->scratch_cap = bytes;
        }
        dt_exec vex = *ex;
        vex.scratch = st->scratch;
        vex.scratch_bytes = st->scratch_cap;
        s = dt_plan_layer_run(pl, in, out, &vex);
        if (s) return dt_node_fail(L, s);
    }
    return DUCTILE_OK;
}

/* The pass; reached == NULL: the first failure ends it. Else (dt_shape_pass_partial) a layer
 * with an input not reached, or whose infer or value kernel fails, leaves its outputs not
 * reached and the pass goes on; only running out of memory ends it. */
static ductile_status dt_shape_pass_run(const ductile_engine *e, dt_shape_state *st, dt_exec *ex, bool *reached)
{
    const dt_plan *p = &e->plan;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    if (reached)
        for (int t = 0; t < e->net->n_tensors; t++) reached[t] = !e->net->tensors[t]->producer;
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        if (reached) {
            bool all = true;
            for (int k = 0; k < L->n_in; k++) all &= !L->in[k] || reached[L->in[k]->index];
            if (!all) continue;
            ductile_status s = dt_shape_pass_layer(e, st, ex, pl, in, out);
            if (s == DUCTILE_ERR_OUT_OF_MEMORY) return s;
            for (int k = 0; !s && k < L->n_out; k++) reached[L->out[k]->index] = true;
            continue;
        }
        DT_TRY(dt_shape_pass_layer(e, st, ex, pl, in, out));
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_pass(const ductile_engine *e, dt_shape_state *st, dt_exec *ex)
{
    return dt_shape_pass_run(e, st, ex, NULL);
}

ductile_status dt_shape_pass_partial(const ductile_engine *e, dt_shape_state *st, dt_exec *ex, bool *reached)
{
    return dt_shape_pass_run(e, st, ex, reached);
}

ductile_status dt_check_shared_symbols(const ductile_engine *e, const dt_view *views)
{
    const ductile_network *net = e->net;
    for (int a = 0; a < net->n_inputs; a++) {
        const ductile_tensor *A = net->inputs[a];
        for (int i = 0; i < A->rank; i++) {
            if (!A->dim_sym[i]) continue;
            for (int b = a; b < net->n_inputs; b++) {
                const ductile_tensor *B = net->inputs[b];
                for (int j = (b == a ? i + 1 : 0); j < B->rank; j++) {
                    if (!B->dim_sym[j] || strcmp(A->dim_sym[i], B->dim_sym[j]) != 0) continue;
                    int64_t va = views[A->index].dims[i], vb = views[B->index].dims[j];
                    if (va != vb)
                        return dt_fail(DUCTILE_ERR_SHAPE,
                                       "inputs '%s' (dimension %d) and '%s' (dimension %d) share the dimension '%s' but were set to %lld and %lld",
                                       A->name, i, B->name, j, A->dim_sym[i], (long long)va, (long long)vb);
                }
            }
        }
    }
    return DUCTILE_OK;
}
