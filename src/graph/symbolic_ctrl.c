/* Symbolic shapes through If, Loop and Scan: their subgraphs are inferred with the shapes of
 * what feeds them (captured tensors included), in the same context, so dims stay expressions
 * over the model's symbols.
 *   If: an output takes the branches' shape where they agree; a dim they disagree on is
 *       unknown, and so is the rank when the ranks differ.
 *   Loop, Scan: a loop-carried value keeps a dim only when the body gives it back unchanged
 *       whatever the other dims are (checked by a second pass with the changing dims
 *       unknown); scan outputs get the number of iterations as a dim: Scan's sequence length,
 *       Loop's trip count M when nothing else stops the loop (no cond input, and a body whose
 *       condition output is the constant true), else unknown. */
#include "graph/subgraph.h"
#include "graph/symbolic.h"
#include "core/alloc.h"

#include <string.h>

/* in: the layer's inputs; formal: the subgraph's formal inputs' shapes (n_formal of them). */
static void dt_sym_run(dt_symctx *c, const ductile_layer *L, const ductile_network *g, const dt_symt *in,
                       const dt_symt *formal, dt_symt *outs)
{
    int fi = dt_graph_formal_inputs(g);
    dt_symt *ins = dt_calloc((size_t)g->n_inputs + 1, sizeof *ins);
    if (!ins) {
        c->oom = true;
        for (int k = 0; k < g->n_outputs; k++) dt_symt_unknown(&outs[k]);
        return;
    }
    for (int i = 0; i < fi; i++) ins[i] = formal[i];
    for (int j = 0; j < g->n_captured; j++) {
        int k = dt_ctrl_capture_input(L, g, j);
        if (k >= 0) ins[fi + j] = in[k];
        else dt_symt_unknown(&ins[fi + j]);
    }
    dt_sym_subgraph(c, (ductile_network *)g, ins, outs);
    dt_free(ins);
}

/* out = a where b agrees with it, dim by dim; values dropped. */
static void dt_sym_meet(const dt_symt *a, const dt_symt *b, dt_symt *out)
{
    dt_symt_unknown(out);
    if (a->rank < 0 || a->rank != b->rank) return;
    out->rank = a->rank;
    for (int d = 0; d < a->rank; d++)
        out->d[d] = a->d[d] && b->d[d] && dt_sd_equal(a->d[d], b->d[d]) ? a->d[d] : NULL;
}

static bool dt_sym_same_shape(const dt_symt *a, const dt_symt *b)
{
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->d[d] != b->d[d] && !(a->d[d] && b->d[d] && dt_sd_equal(a->d[d], b->d[d]))) return false;
    return true;
}

static void dt_sym_if(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const ductile_network *t = dt_ctrl_graph(L, "then_branch"), *e = dt_ctrl_graph(L, "else_branch");
    if (!t || !e || t->n_outputs != L->n_out || e->n_outputs != L->n_out) return;
    dt_symt *a = dt_calloc((size_t)L->n_out + 1, sizeof *a), *b = dt_calloc((size_t)L->n_out + 1, sizeof *b);
    if (a && b) {
        dt_sym_run(c, L, t, in, NULL, a);
        dt_sym_run(c, L, e, in, NULL, b);
        for (int k = 0; k < L->n_out; k++) dt_sym_meet(&a[k], &b[k], &out[k]);
    } else {
        c->oom = true;
    }
    dt_free(a);
    dt_free(b);
}

/* Loop and Scan. formal[] holds the body's formal inputs, the n states from formal + fin
 * (Loop: after the iteration number and condition); the body's outputs have the states from
 * first (Loop: after the condition), then the scan outputs. steps: the iteration count or
 * NULL; axes: the scan outputs' axes (NULL: 0). */
static void dt_sym_iterate(dt_symctx *c, const ductile_layer *L, const ductile_network *b, const dt_symt *in,
                           dt_symt *formal, int fin, int first, int n, const dt_sd *steps, const int64_t *axes,
                           dt_symt *out, bool *cond_true)
{
    dt_symt *bo = dt_calloc((size_t)b->n_outputs + 1, sizeof *bo);
    if (!bo) {
        c->oom = true;
        return;
    }
    dt_sym_run(c, L, b, in, formal, bo);
    bool stable = true;
    for (int j = 0; j < n; j++) stable &= dt_sym_same_shape(&bo[first + j], &formal[fin + j]);
    if (!stable) {
        /* Again with the dims that changed unknown: what survives does not depend on them. */
        for (int j = 0; j < n; j++) {
            dt_symt m;
            dt_sym_meet(&formal[fin + j], &bo[first + j], &m);
            formal[fin + j] = m;
        }
        dt_sym_run(c, L, b, in, formal, bo);
    }
    for (int j = 0; j < n; j++) dt_sym_meet(&formal[fin + j], &bo[first + j], &out[j]);
    if (cond_true) {
        int64_t v;
        *cond_true = bo[0].nval == 1 && dt_symt_const_at(&bo[0], 0, &v) && v != 0;
        if (!*cond_true) steps = NULL;
    }
    for (int k = 0; k + n < L->n_out && first + n + k < b->n_outputs; k++) {
        const dt_symt *s = &bo[first + n + k];
        dt_symt *o = &out[n + k];
        dt_symt_unknown(o);
        if (s->rank < 0 || s->rank + 1 > DT_MAX_DIMS) continue;
        int r = s->rank + 1;
        int64_t ax = axes ? axes[k] : 0;
        if (ax < 0) ax += r;
        if (ax < 0 || ax >= r) continue;
        o->rank = r;
        for (int d = 0, src = 0; d < r; d++) o->d[d] = d == ax ? steps : s->d[src++];
    }
    dt_free(bo);
}

static void dt_sym_loop(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const ductile_network *b = dt_ctrl_graph(L, "body");
    int n = dt_ctrl_formal_inputs(L) - 2;
    if (!b || n < 0 || dt_graph_formal_inputs(b) != 2 + n || b->n_outputs != L->n_out + 1) return;
    dt_symt *formal = dt_calloc((size_t)n + 3, sizeof *formal);
    if (!formal) {
        c->oom = true;
        return;
    }
    for (int i = 0; i < 2; i++) {
        dt_symt_unknown(&formal[i]);
        formal[i].rank = 0;
    }
    for (int j = 0; j < n; j++) formal[2 + j] = in[2 + j];
    /* The trip count is the number of iterations only when nothing can stop the loop early. */
    const dt_sd *steps = NULL;
    if (L->in[0] && !L->in[1] && in[0].nval == 1) steps = in[0].val[0];
    dt_symt *o = dt_calloc((size_t)L->n_out + 1, sizeof *o);
    bool cond_true = false;
    if (o) {
        /* Body outputs: condition, states, scan outputs; the layer's: states, scan outputs. */
        dt_sym_iterate(c, L, b, in, formal, 2, 1, n, steps, NULL, o, &cond_true);
        for (int k = 0; k < L->n_out; k++) out[k] = o[k];
    } else {
        c->oom = true;
    }
    dt_free(o);
    dt_free(formal);
}

static void dt_sym_scan(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const ductile_network *b = dt_ctrl_graph(L, "body");
    int formal_n = dt_ctrl_formal_inputs(L);
    int64_t m = dt_attr_int(L, "num_scan_inputs", 0);
    if (!b || (L->opset > 0 && L->opset < 9) || m < 1 || m > formal_n || dt_graph_formal_inputs(b) != formal_n ||
        b->n_outputs != L->n_out)
        return;
    int n = formal_n - (int)m;
    dt_symt *formal = dt_calloc((size_t)formal_n + 1, sizeof *formal);
    if (!formal) {
        c->oom = true;
        return;
    }
    int64_t na;
    const int64_t *axes = dt_attr_ints(L, "scan_input_axes", &na);
    const dt_sd *steps = NULL;
    for (int j = 0; j < formal_n; j++) {
        formal[j] = in[j];
        formal[j].nval = -1;
        if (j < n) continue;
        /* A scan input's slice: its shape without the scan axis. */
        dt_symt *s = &formal[j];
        int64_t ax = axes && j - n < na ? axes[j - n] : 0;
        if (s->rank < 1 || ax < -s->rank || ax >= s->rank) {
            dt_symt_unknown(s);
            continue;
        }
        if (ax < 0) ax += s->rank;
        if (!steps) steps = s->d[ax];
        for (int d = (int)ax; d + 1 < s->rank; d++) s->d[d] = s->d[d + 1];
        s->rank--;
    }
    int64_t no;
    const int64_t *oaxes = dt_attr_ints(L, "scan_output_axes", &no);
    if (oaxes && no != L->n_out - n) oaxes = NULL;
    dt_sym_iterate(c, L, b, in, formal, 0, 0, n, steps, oaxes, out, NULL);
    dt_free(formal);
}

/* FlexAttention (ai.onnx.preview): Y [B, Hq, L, Ev]; each modifier is inferred on the scores'
 * shape [B, Hq, L, S], so the dims inside it are expressions over the model's symbols too. */
void dt_sym_flex(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (L->n_in < 3 || L->n_out < 1 || in[0].rank != 4 || in[1].rank != 4 || in[2].rank != 4) return;
    out[0].rank = 4;
    out[0].d[0] = in[0].d[0];
    out[0].d[1] = in[0].d[1];
    out[0].d[2] = in[0].d[2];
    out[0].d[3] = in[2].d[3];
    dt_symt scores, mod_out;
    dt_symt_unknown(&scores);
    scores.present = true;
    scores.rank = 4;
    for (int d = 0; d < 3; d++) scores.d[d] = in[0].d[d];
    scores.d[3] = in[1].d[2];
    for (int k = 0; k < L->n_attr; k++) {
        const ductile_network *g = L->attrs[k].type == DT_ATTR_GRAPH ? L->attrs[k].g : NULL;
        if (g && dt_graph_formal_inputs(g) == 1 && g->n_outputs == 1) dt_sym_run(c, L, g, in, &scores, &mod_out);
    }
}

bool dt_sym_ctrl_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (!strcmp(L->op_type, "If")) dt_sym_if(c, L, in, out);
    else if (!strcmp(L->op_type, "Loop")) dt_sym_loop(c, L, in, out);
    else if (!strcmp(L->op_type, "Scan")) dt_sym_scan(c, L, in, out);
    else return false;
    return true;
}
