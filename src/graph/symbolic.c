/* Symbolic shape inference: the walk over the network, reading and writing tensors, and the
 * helpers the op rules share. The rules themselves are in symbolic_{values,shape,nn}.c. */
#include "graph/symbolic.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

void dt_symt_unknown(dt_symt *t)
{
    t->present = true;
    t->rank = -1;
    t->nval = -1;
    for (int i = 0; i < DT_MAX_DIMS; i++) t->d[i] = NULL;
}

void dt_symt_copy_shape(dt_symt *out, const dt_symt *in)
{
    out->rank = in->rank;
    for (int i = 0; i < DT_MAX_DIMS; i++) out->d[i] = in->rank >= 0 && i < in->rank ? in->d[i] : NULL;
}

bool dt_symt_const_at(const dt_symt *t, int i, int64_t *v)
{
    return t->present && i >= 0 && i < t->nval && dt_sd_is_const(t->val[i], v);
}

const dt_sd *dt_sym_product(dt_symctx *c, const dt_symt *t, int from, int to)
{
    if (t->rank < 0 || from < 0 || to > t->rank) return NULL;
    const dt_sd *p = dt_sd_const(c, 1);
    for (int i = from; i < to; i++) p = dt_sd_mul(c, p, t->d[i]);
    return p;
}

bool dt_sym_axis(int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank) return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

bool dt_sym_axes(const ductile_layer *L, const dt_symt *in, int idx, int64_t *axes, int *n)
{
    int64_t na;
    const int64_t *a = dt_attr_ints(L, "axes", &na);
    if (a) {
        if (na > DT_MAX_DIMS) return false;
        memcpy(axes, a, (size_t)na * sizeof *a);
        *n = (int)na;
        return true;
    }
    if (idx >= L->n_in || !in[idx].present) {
        *n = 0;
        return true;
    }
    const dt_symt *t = &in[idx];
    if (t->nval < 0 || t->nval > DT_MAX_DIMS) return false;
    for (int i = 0; i < t->nval; i++)
        if (!dt_sd_is_const(t->val[i], &axes[i])) return false;
    *n = t->nval;
    return true;
}

/* One broadcast dim pair; NULL when it cannot be told symbolically. */
static const dt_sd *bcast_dim(const dt_sd *a, const dt_sd *b)
{
    int64_t v;
    if (dt_sd_is_const(a, &v) && v == 1) return b;
    if (dt_sd_is_const(b, &v) && v == 1) return a;
    if (!a || !b) return NULL;
    if (dt_sd_equal(a, b)) return a;
    /* a vs min(a, C): they are equal (or min(a, C) is 1) in every run that is valid. */
    const dt_sd *x, *y;
    if (dt_sd_as_min(b, &x, &y) && (dt_sd_equal(a, x) || dt_sd_equal(a, y))) return a;
    if (dt_sd_as_min(a, &x, &y) && (dt_sd_equal(b, x) || dt_sd_equal(b, y))) return b;
    return NULL;
}

void dt_sym_broadcast(dt_symctx *c, const dt_symt *const *ins, int n, dt_symt *out)
{
    int rank = 0;
    for (int k = 0; k < n; k++) {
        if (ins[k]->rank < 0) {
            out->rank = -1;
            return;
        }
        if (ins[k]->rank > rank) rank = ins[k]->rank;
    }
    out->rank = rank;
    for (int i = 0; i < rank; i++) {
        const dt_sd *d = dt_sd_const(c, 1);
        for (int k = 0; k < n; k++) {
            int off = rank - ins[k]->rank;
            if (i >= off) d = bcast_dim(d, ins[k]->d[i - off]);
        }
        out->d[i] = d;
    }
}

void dt_sym_layer(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    for (int k = 0; k < L->n_out; k++) dt_symt_unknown(&out[k]);
    if (L->domain && !strcmp(L->domain, "ai.onnx.preview") && !strcmp(L->op_type, "FlexAttention")) {
        dt_sym_flex(c, L, in, out);
        return;
    }
    if (L->domain && L->domain[0] && strcmp(L->domain, "ai.onnx") != 0) return;
    if (dt_sym_ctrl_ops(c, L, in, out)) return;
    if (dt_sym_value_ops(c, L, in, out)) return;
    if (dt_sym_shape_ops(c, L, in, out)) return;
    dt_sym_nn_ops(c, L, in, out);
}

/* ---- tensors in and out ---------------------------------------------------------------- */

/* A constant's elements as values, when it is a small integer tensor. */
static void read_values(dt_symctx *c, const ductile_tensor *t, dt_symt *s)
{
    int64_t n = dt_tensor_count(t);
    if (!t->data || n < 0 || n > DT_SYM_MAX_VALUES) return;
    size_t es = t->dtype == DUCTILE_INT64 ? 8 : t->dtype == DUCTILE_INT32 ? 4 : t->dtype == DUCTILE_BOOL ? 1 : 0;
    if (!es || t->nbytes < (size_t)n * es) return;
    for (int64_t i = 0; i < n; i++) {
        int64_t v;
        if (es == 8) memcpy(&v, (const char *)t->data + i * 8, 8);
        else if (es == 4) {
            int32_t w;
            memcpy(&w, (const char *)t->data + i * 4, 4);
            v = w;
        } else v = ((const uint8_t *)t->data)[i] != 0;
        s->val[i] = dt_sd_const(c, v);
    }
    s->nval = (int)n;
}

/* What a tensor declares. A graph input's or constant's dim_sym is a symbol name; a layer
 * output's (a network edited after an earlier pass) is a printed expression. */
static void read_tensor(dt_symctx *c, const ductile_tensor *t, dt_symt *s)
{
    dt_symt_unknown(s);
    if (!t) {
        s->present = false;
        return;
    }
    if (t->rank < 0 || t->rank > DT_MAX_DIMS) return;
    s->rank = t->rank;
    bool named = t->is_input || !t->producer;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] >= 0) s->d[i] = dt_sd_const(c, t->dims[i]);
        else if (t->dim_sym[i]) {
            s->d[i] = named ? NULL : dt_sd_parse(c, t->dim_sym[i]);
            if (!s->d[i]) s->d[i] = dt_sd_sym(c, t->dim_sym[i]);
        }
    }
    read_values(c, t, s);
}

/* Inferred dims replace what the file declared (an exporter's made-up names included); where
 * nothing was inferred, the declaration stays: it is still the best that is known. A rank
 * that contradicts the inferred one is dropped with its dims. */
static ductile_status write_tensor(ductile_network *net, ductile_tensor *t, const dt_symt *s)
{
    if (!t || t->is_input || !t->producer || s->rank < 0 || s->rank > DT_MAX_DIMS) return DUCTILE_OK;
    bool keep = t->rank == s->rank;
    t->rank = s->rank;
    for (int i = 0; i < DT_MAX_DIMS; i++) {
        int64_t v;
        char buf[256];
        if (i >= s->rank) {
            t->dims[i] = 0;
            t->dim_sym[i] = NULL;
        } else if (dt_sd_is_const(s->d[i], &v) && v >= 0) {
            t->dims[i] = v;
            t->dim_sym[i] = NULL;
        } else if (dt_sd_print(s->d[i], buf, sizeof buf)) {   /* false: unknown or too long */
            t->dims[i] = -1;
            /* Reuse a neighbour's identical string rather than copying it again. */
            if (i > 0 && t->dim_sym[i - 1] && !strcmp(t->dim_sym[i - 1], buf)) t->dim_sym[i] = t->dim_sym[i - 1];
            else if (!(t->dim_sym[i] = dt_arena_strdup(&net->arena, buf)))
                return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "symbolic shapes: out of memory naming a dim of '%s'", t->name);
        } else if (!keep) {
            t->dims[i] = -1;
            t->dim_sym[i] = NULL;
        }
    }
    return DUCTILE_OK;
}

static ductile_status oom(void)
{
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "symbolic shapes: out of memory");
}

/* Runs one layer: inputs from get(arg, tensor), results into outs (n_out entries). */
static ductile_status run_layer(dt_symctx *c, ductile_network *net, ductile_layer *L, dt_symt *ins, dt_symt *outs)
{
    dt_sym_layer(c, L, ins, outs);
    if (c->oom) return oom();
    for (int k = 0; k < L->n_out; k++) DT_TRY(write_tensor(net, L->out[k], &outs[k]));
    return DUCTILE_OK;
}

ductile_status dt_symbolic_infer(ductile_network *net)
{
    if (!net || !net->n_layers) return DUCTILE_OK;
    int max_io = 1;
    for (int l = 0; l < net->n_layers; l++) {
        if (net->layers[l]->n_in > max_io) max_io = net->layers[l]->n_in;
        if (net->layers[l]->n_out > max_io) max_io = net->layers[l]->n_out;
    }
    dt_symctx c;
    dt_symctx_init(&c);
    dt_symt *tab = dt_calloc((size_t)net->n_tensors + 1, sizeof *tab);
    dt_symt *ins = dt_calloc((size_t)max_io, sizeof *ins), *outs = dt_calloc((size_t)max_io, sizeof *outs);
    ductile_status s = tab && ins && outs ? DUCTILE_OK : oom();
    /* Layer outputs start unknown: what the file declared for them is not trusted. */
    for (int i = 0; !s && i < net->n_tensors; i++) {
        const ductile_tensor *t = net->tensors[i];
        if (t->is_input || !t->producer) read_tensor(&c, t, &tab[i]);
        else dt_symt_unknown(&tab[i]);
    }
    if (!s && c.oom) s = oom();
    for (int l = 0; !s && l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        for (int k = 0; k < L->n_in; k++) {
            const ductile_tensor *t = L->in[k];
            if (t && t->index >= 0 && t->index < net->n_tensors) ins[k] = tab[t->index];
            else read_tensor(&c, t, &ins[k]);   /* NULL: omitted optional input */
        }
        s = run_layer(&c, net, L, ins, outs);
        for (int k = 0; !s && k < L->n_out; k++) {
            const ductile_tensor *t = L->out[k];
            if (t && t->index >= 0 && t->index < net->n_tensors && !t->is_input) tab[t->index] = outs[k];
        }
    }
    dt_free(tab);
    dt_free(ins);
    dt_free(outs);
    dt_symctx_release(&c);
    return s;
}

void dt_sym_subgraph(dt_symctx *c, ductile_network *g, const dt_symt *ins, dt_symt *outs)
{
    int max_io = 1;
    for (int l = 0; l < g->n_layers; l++) {
        if (g->layers[l]->n_in > max_io) max_io = g->layers[l]->n_in;
        if (g->layers[l]->n_out > max_io) max_io = g->layers[l]->n_out;
    }
    dt_symt *tab = dt_calloc((size_t)g->n_tensors + 1, sizeof *tab);
    dt_symt *li = dt_calloc((size_t)max_io, sizeof *li), *lo = dt_calloc((size_t)max_io, sizeof *lo);
    for (int k = 0; k < g->n_outputs; k++) dt_symt_unknown(&outs[k]);
    if (!tab || !li || !lo) {
        c->oom = true;
        goto done;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const ductile_tensor *t = g->tensors[i];
        if (!t->producer && !t->is_input) read_tensor(c, t, &tab[i]);
        else dt_symt_unknown(&tab[i]);
    }
    for (int i = 0; i < g->n_inputs; i++) tab[g->inputs[i]->index] = ins[i];
    for (int l = 0; l < g->n_layers && !c->oom; l++) {
        ductile_layer *L = g->layers[l];
        for (int k = 0; k < L->n_in; k++) {
            if (L->in[k]) li[k] = tab[L->in[k]->index];
            else read_tensor(c, NULL, &li[k]);
        }
        if (run_layer(c, g, L, li, lo)) c->oom = true;
        for (int k = 0; k < L->n_out; k++)
            if (!L->out[k]->is_input) tab[L->out[k]->index] = lo[k];
    }
    for (int k = 0; k < g->n_outputs; k++) outs[k] = tab[g->outputs[k]->index];
done:
    dt_free(tab);
    dt_free(li);
    dt_free(lo);
}

ductile_status dt_symbolic_infer_layer(ductile_network *net, ductile_layer *L)
{
    if (!net || !L) return DUCTILE_OK;
    int n = L->n_in > L->n_out ? L->n_in : L->n_out;
    dt_symctx c;
    dt_symctx_init(&c);
    dt_symt *ins = dt_calloc((size_t)n + 1, sizeof *ins), *outs = dt_calloc((size_t)n + 1, sizeof *outs);
    ductile_status s = ins && outs ? DUCTILE_OK : oom();
    for (int k = 0; !s && k < L->n_in; k++) read_tensor(&c, L->in[k], &ins[k]);
    if (!s) s = run_layer(&c, net, L, ins, outs);
    dt_free(ins);
    dt_free(outs);
    dt_symctx_release(&c);
    return s;
}
