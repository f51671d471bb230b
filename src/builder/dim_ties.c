/* Fixed dims and the constants that tie them.
 *
 * A model exported without dynamic axes bakes its input's sizes into constants:
 * superres_op10_static's pixel shuffle reshapes [1,9,224,224] by [-1,1,3,3,224,224]. Ranging
 * such a dim fails loudly where the sizes do not divide (the shape pass refuses the Reshape)
 * but silently where they do: at 448 rows the -1 becomes 2 and the extra rows become batch.
 *
 * 1. A dim the model fixes stays fixed: a profile that ranges it is refused
 *    (dt_fixed_dims_check), naming the override (ductile_network_set_input_dims).
 * 2. Every overridden dim, and in that refusal every ranged fixed dim (to say whether an
 *    override would do), is moved alone: the shape pass runs at a reference point R (every
 *    dim at the model's size, dynamic ones at the profile's base) and at R with that one dim
 *    at the profile's min, then max. Between the two runs, each layer that takes its output
 *    size from a constant or a shape value is compared (dt_find_tie):
 *    - Reshape: row-major order cuts the input and the output into aligned blocks (split
 *      wherever a suffix product of the input equals one of the output). An input dim that
 *      moves may move only output dims of its own block; an output dim of another block that
 *      moves is a -1 (or 0) absorbing the new rows: the constant ties the dim.
 *    - Slice: an input dim that moves while the output keeps its size, where at R the slice
 *      took the whole dim: a constant end holds the old size (a crop).
 *    - Resize given sizes: an input dim that moves while the output keeps its size.
 *    Expand, Tile and ConstantOfShape with constant shapes make tensors that do not follow
 *    the dim; where such a tensor meets one that does (Add, Concat, MatMul), the shape pass
 *    refuses the broadcast at the moved point and names that node, so they need no rule.
 *
 * Why concrete runs rather than the symbolic engine: symbolic dims say what an output is
 * (floor(input_dim0*input_dim2*input_dim3/50176)) but not which forms are wrong: a Reshape
 * to [N,C,-1,16] is also a floor over height and is fine. Which dims move between two exact
 * runs is known for every op the shape pass knows, costs two passes per dim, and a Reshape's
 * blocks say exactly where a moved dim may go. */
#include "builder/dim_ties.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t dt_point[DUCTILE_MAX_DIMS];

ductile_status dt_input_decls(const ductile_network *net, const ductile_engine *e, dt_input_decl **out)
{
    const ductile_network *en = e->net;
    dt_input_decl *d = dt_calloc((size_t)en->n_inputs + 1, sizeof *d);
    if (!d) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading the inputs' declared dims");
    for (int i = 0; i < en->n_inputs; i++) {
        const ductile_tensor *t = en->inputs[i];
        const ductile_tensor *src = dt_network_find(net, t->name);
        for (int k = 0; k < DUCTILE_MAX_DIMS; k++) {
            int64_t cur = k < t->rank ? t->dims[k] : -1;
            d[i].dims[k] = src && src->overridden[k] ? src->declared[k] : cur;
        }
    }
    *out = d;
    return DUCTILE_OK;
}

/* The model's size of input i's dim d under profile entry pi, or -1. */
static int64_t dt_model_size(const ductile_engine *e, const dt_input_decl *decl, int i, int d, const dt_profile_input *pi)
{
    return e->net->inputs[i]->rank == pi->rank ? decl[i].dims[d] : -1;
}

static void dt_reference(const ductile_engine *e, const dt_input_decl *decl, const ductile_profile *prof, dt_point *R)
{
    for (int i = 0; i < e->net->n_inputs; i++) {
        const dt_profile_input *pi = dt_profile_get(prof, e->net->inputs[i]->name);
        for (int d = 0; d < pi->rank; d++) {
            int64_t model = dt_model_size(e, decl, i, d, pi);
            R[i][d] = model >= 0 ? model : pi->opt[d];
        }
    }
}

/* "[-1,1,3,3,224,224]" for a small integer tensor whose values are known, else "?". */
static char *dt_values_text(char *buf, size_t cap, const ductile_layer *L, const dt_view *views, int k)
{
    dt_view in[DT_MAX_LAYER_IO];
    int64_t v[64];
    int n;
    dt_layer_input_views(L, views, in);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", dt_last_error());
    if (k < L->n_in && L->in[k] && !dt_shape_read_ints(L, in, k, v, 64, &n)) return dt_shape_format_values(buf, cap, v, n);
    dt_fail(DUCTILE_OK, "%s", saved);   /* a failed read must not replace the message */
    snprintf(buf, cap, "?");
    return buf;
}

static bool dt_same_dims(const dt_view *a, const dt_view *b)
{
    return a->rank == b->rank && !memcmp(a->dims, b->dims, sizeof a->dims[0] * (size_t)(a->rank > 0 ? a->rank : 0));
}

static bool dt_has_zero(const dt_view *v)
{
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] == 0) return true;
    return false;
}

/* Output dims of the block (see the top) that holds input dim k, marked in allowed[]. */
static void dt_reshape_block(const dt_view *x, const dt_view *y, int k, bool *allowed)
{
    int64_t sx[DT_MAX_DIMS + 1], sy[DT_MAX_DIMS + 1];
    sx[x->rank] = 1;
    sy[y->rank] = 1;
    for (int i = x->rank - 1; i >= 0; i--) sx[i] = sx[i + 1] * x->dims[i];   /* views' counts fit int64 */
    for (int j = y->rank - 1; j >= 0; j--) sy[j] = sy[j + 1] * y->dims[j];
    int64_t inner = sx[k + 1], outer = sx[k], lo = 1, hi = sx[0];
    for (int a = 0; a <= x->rank; a++) {
        bool common = false;
        for (int b = 0; b <= y->rank; b++) common |= sy[b] == sx[a];
        if (!common) continue;
        if (sx[a] <= inner && sx[a] > lo) lo = sx[a];
        if (sx[a] >= outer && sx[a] < hi) hi = sx[a];
    }
    for (int j = 0; j < y->rank; j++)
        if (sy[j + 1] >= lo && sy[j] <= hi) allowed[j] = true;
}

static ductile_status dt_tie_reshape(const ductile_layer *L, const dt_shape_state *A, const dt_shape_state *B)
{
    const dt_view *xa = &A->views[L->in[0]->index], *xb = &B->views[L->in[0]->index];
    const dt_view *ya = &A->views[L->out[0]->index], *yb = &B->views[L->out[0]->index];
    if (xa->rank != xb->rank || ya->rank != yb->rank || dt_has_zero(xa) || dt_has_zero(xb) || dt_has_zero(ya) || dt_has_zero(yb))
        return DUCTILE_OK;
    bool allowed[DT_MAX_DIMS] = {false};
    int moved_in = -1;
    for (int k = 0; k < xa->rank; k++) {
        if (xa->dims[k] == xb->dims[k]) continue;
        if (moved_in < 0) moved_in = k;
        dt_reshape_block(xa, ya, k, allowed);
    }
    for (int j = 0; j < ya->rank && moved_in >= 0; j++) {
        if (ya->dims[j] == yb->dims[j] || allowed[j]) continue;
        char vals[200], sx[160], sy[160], want[120] = "";
        size_t used = 0;
        int nwant = 0;
        for (int w = 0; w < ya->rank && used < sizeof want; w++)
            if (allowed[w]) used += (size_t)snprintf(want + used, sizeof want - used, "%s%d", nwant++ ? ", " : "", w);
        return dt_fail(DUCTILE_ERR_PROFILE,
                       "node '%s' (%s, opset %d): '%s' = %s ties '%s' dimension %d to %lld: at %s it reshapes to %s, "
                       "where dimension %d grows instead of %s %s",
                       L->name, L->op_type, L->opset, L->in[1]->name, dt_values_text(vals, sizeof vals, L, A->views, 1),
                       L->in[0]->name, moved_in, (long long)xa->dims[moved_in],
                       dt_format_dims(sx, sizeof sx, xb->dims, xb->rank, NULL), dt_format_dims(sy, sizeof sy, yb->dims, yb->rank, NULL),
                       j, nwant == 1 ? "dimension" : "dimensions", nwant ? want : "none");
    }
    return DUCTILE_OK;
}

/* Slice and Resize: an input dim that moves while the output dim keeps its size. */
static ductile_status dt_tie_kept(const ductile_layer *L, const dt_shape_state *A, const dt_shape_state *B, bool slice)
{
    const dt_view *xa = &A->views[L->in[0]->index], *xb = &B->views[L->in[0]->index];
    const dt_view *ya = &A->views[L->out[0]->index], *yb = &B->views[L->out[0]->index];
    if (xa->rank != ya->rank || !dt_same_dims(ya, yb) || xa->rank != xb->rank) return DUCTILE_OK;
    int k = slice ? 2 : 3;   /* Slice's ends, Resize's sizes */
    if (k >= L->n_in || !L->in[k]) return DUCTILE_OK;
    for (int a = 0; a < xa->rank; a++) {
        if (xa->dims[a] == xb->dims[a] || (slice && ya->dims[a] != xa->dims[a])) continue;
        char vals[200];
        return dt_fail(DUCTILE_ERR_PROFILE,
                       "node '%s' (%s, opset %d): %s '%s' = %s ties '%s' dimension %d to %lld: at %lld the output keeps %lld",
                       L->name, L->op_type, L->opset, slice ? "ends" : "sizes", L->in[k]->name,
                       dt_values_text(vals, sizeof vals, L, A->views, k), L->in[0]->name, a,
                       (long long)xa->dims[a], (long long)xb->dims[a], (long long)ya->dims[a]);
    }
    return DUCTILE_OK;
}

/* DUCTILE_ERR_PROFILE naming the first layer (in execution order) that ties a dim which moved
 * between the runs A and B; DUCTILE_OK when none does. */
static ductile_status dt_find_tie(const ductile_engine *e, const dt_shape_state *A, const dt_shape_state *B)
{
    for (int l = 0; l < e->plan.n_layers; l++) {
        const ductile_layer *L = e->plan.layers[l].layer;
        if (L->n_in < 1 || !L->in[0] || L->n_out < 1) continue;
        if (!strcmp(L->op_type, "Reshape") && L->n_in >= 2 && L->in[1]) DT_TRY(dt_tie_reshape(L, A, B));
        else if (!strcmp(L->op_type, "Slice") && L->opset >= 10) DT_TRY(dt_tie_kept(L, A, B, true));
        else if (!strcmp(L->op_type, "Resize")) DT_TRY(dt_tie_kept(L, A, B, false));
    }
    return DUCTILE_OK;
}

typedef enum { DT_MOVE_FREE, DT_MOVE_FAILS, DT_MOVE_TIES, DT_MOVE_UNKNOWN, DT_MOVE_OOM } dt_move;

/* Moves input i's dim d alone from R to each of profile p's min and max. FAILS or TIES leave
 * the node's message (and *at, the size); UNKNOWN when the model fails at R itself (the
 * corner checks report what does); OOM with the message set. */
static dt_move dt_move_dim(const ductile_engine *e, const ductile_profile *prof, dt_point *R, int i, int d, int64_t *at)
{
    const dt_profile_input *pi = dt_profile_get(prof, e->net->inputs[i]->name);
    int n = e->net->n_inputs;
    dt_point *pt = dt_calloc((size_t)n + 1, sizeof *pt);
    if (!pt) {
        dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory moving input '%s' dimension %d", e->net->inputs[i]->name, d);
        return DT_MOVE_OOM;
    }
    dt_shape_state A, B;
    dt_move r = DT_MOVE_FREE;
    ductile_status sa = dt_profile_point(e, prof, R, &A), sb;
    bool ok = !sa;
    if (!ok) r = sa == DUCTILE_ERR_OUT_OF_MEMORY ? DT_MOVE_OOM : DT_MOVE_UNKNOWN;
    const int64_t to[2] = {pi->min[d], pi->max[d]};
    for (int v = 0; v < 2 && ok && r == DT_MOVE_FREE; v++) {
        if (to[v] == R[i][d]) continue;
        memcpy(pt, R, sizeof *pt * (size_t)n);
        pt[i][d] = to[v];
        *at = to[v];
        if ((sb = dt_profile_point(e, prof, pt, &B))) r = sb == DUCTILE_ERR_OUT_OF_MEMORY ? DT_MOVE_OOM : DT_MOVE_FAILS;
        else if (dt_find_tie(e, &A, &B)) r = DT_MOVE_TIES;
        dt_shape_state_free(&B, e);
    }
    dt_shape_state_free(&A, e);
    dt_free(pt);
    return r;
}

/* "(-1, 1, -1, -1)" and "-1x1x-1x-1": input i's dims with every dim that profile entry pi
 * ranges (or the model leaves dynamic) at -1. */
static void dt_override_text(const ductile_tensor *t, const dt_profile_input *pi, char *py, size_t pcap, char *cli, size_t ccap)
{
    size_t up = 0, uc = 0;
    up += (size_t)snprintf(py, pcap, "(");
    cli[0] = 0;
    for (int d = 0; d < pi->rank && up < pcap && uc < ccap; d++) {
        long long v = t->dims[d] >= 0 && pi->min[d] == t->dims[d] && pi->max[d] == t->dims[d] ? t->dims[d] : -1;
        up += (size_t)snprintf(py + up, pcap - up, "%s%lld", d ? ", " : "", v);
        uc += (size_t)snprintf(cli + uc, ccap - uc, "%s%lld", d ? "x" : "", v);
    }
    if (up < pcap) snprintf(py + up, pcap - up, pi->rank == 1 ? ",)" : ")");
}

ductile_status dt_fixed_dims_check(const ductile_engine *e, const dt_input_decl *decl, int p, bool search)
{
    (void)decl;
    const ductile_network *net = e->net;
    const ductile_profile *prof = &e->profiles[p];
    int n = net->n_inputs, first_i = -1, first_d = -1;
    for (int i = 0; i < n && first_i < 0; i++) {
        const ductile_tensor *t = net->inputs[i];
        const dt_profile_input *pi = dt_profile_get(prof, t->name);
        for (int d = 0; t->rank == pi->rank && d < pi->rank && first_i < 0; d++)
            if (t->dims[d] >= 0 && (pi->min[d] != t->dims[d] || pi->max[d] != t->dims[d])) {
                first_i = i;
                first_d = d;
            }
    }
    if (first_i < 0) return DUCTILE_OK;
    /* Every ranged fixed dim of that input is moved alone; the first that the model ties (or
     * fails on) is the one to report, since an override cannot help it. */
    const ductile_tensor *t = net->inputs[first_i];
    const dt_profile_input *pi = dt_profile_get(prof, t->name);
    dt_move how = DT_MOVE_FREE;
    int64_t at = 0;
    int report = first_d;
    dt_point *R = search ? dt_calloc((size_t)n + 1, sizeof *R) : NULL;
    if (search && !R) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking profile %d", p);
    if (R) dt_reference(e, decl, prof, R);
    for (int d = first_d; R && d < pi->rank && how == DT_MOVE_FREE; d++) {
        if (t->dims[d] < 0 || (pi->min[d] == t->dims[d] && pi->max[d] == t->dims[d])) continue;
        how = dt_move_dim(e, prof, R, first_i, d, &at);
        if (how == DT_MOVE_FAILS || how == DT_MOVE_TIES) report = d;
    }
    dt_free(R);
    if (how == DT_MOVE_OOM) return DUCTILE_ERR_OUT_OF_MEMORY;
    char py[200], cli[200], range[80];
    dt_override_text(t, pi, py, sizeof py, cli, sizeof cli);
    long long mn = pi->min[report], mx = pi->max[report], fixed = t->dims[report];
    if (mn == mx) snprintf(range, sizeof range, "sets it to %lld", mn);
    else snprintf(range, sizeof range, "ranges it over %lld..%lld", mn, mx);
    char head[1024];
    snprintf(head, sizeof head,
             "profile %d: input '%s' dimension %d is fixed to %lld by the model but the profile %s; a dim the model "
             "fixes stays fixed unless it is overridden (C: ductile_network_set_input_dims; Python: "
             "network.get_input(%d).shape = %s; command line: --dynamicDims=%s:%s)",
             p, t->name, report, fixed, range, first_i, py, t->name, cli);
    if (how == DT_MOVE_UNKNOWN) return dt_fail(DUCTILE_ERR_PROFILE, "%s", head);
    if (how == DT_MOVE_FREE)
        return search ? dt_fail(DUCTILE_ERR_PROFILE, "%s; with the override the model passes the shape check at %lld..%lld", head, mn, mx)
                      : dt_fail(DUCTILE_ERR_PROFILE, "%s", head);
    if (how == DT_MOVE_TIES)
        return dt_fail_prefix(DUCTILE_ERR_PROFILE, "%s; even overridden, the model ties it to %lld, so it must be exported "
                              "again with this dim dynamic", head, fixed);
    return dt_fail_prefix(DUCTILE_ERR_PROFILE, "%s; even overridden, the model fails at %lld, so it must be exported again "
                          "with this dim dynamic", head, (long long)at);
}

ductile_status dt_ties_check(const ductile_engine *e, const dt_input_decl *decl, int p)
{
    const ductile_network *net = e->net;
    const ductile_profile *prof = &e->profiles[p];
    int n = net->n_inputs;
    dt_point *R = dt_calloc((size_t)n + 1, sizeof *R);
    if (!R) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking profile %d", p);
    dt_reference(e, decl, prof, R);
    ductile_status s = DUCTILE_OK;
    for (int i = 0; i < n && !s; i++) {
        const ductile_tensor *t = net->inputs[i];
        const dt_profile_input *pi = dt_profile_get(prof, t->name);
        for (int d = 0; d < pi->rank && !s; d++) {
            int64_t model = dt_model_size(e, decl, i, d, pi), at = 0;
            if (model < 0 || (t->dims[d] == model && t->rank == pi->rank)) continue;
            dt_move how = dt_move_dim(e, prof, R, i, d, &at);
            if (how == DT_MOVE_FREE || how == DT_MOVE_UNKNOWN) continue;
            if (how == DT_MOVE_OOM) {
                s = DUCTILE_ERR_OUT_OF_MEMORY;
                break;
            }
            char sym[80] = "";
            if (t->rank == pi->rank && t->dim_sym[d]) snprintf(sym, sizeof sym, " (%s)", t->dim_sym[d]);
            if (how == DT_MOVE_TIES)
                s = dt_fail_prefix(DUCTILE_ERR_PROFILE,
                                   "profile %d: input '%s' dimension %d%s ranges over %lld..%lld but the model ties it to its "
                                   "declared size %lld",
                                   p, t->name, d, sym, (long long)pi->min[d], (long long)pi->max[d], (long long)model);
            else
                s = dt_fail_prefix(DUCTILE_ERR_PROFILE,
                                   "profile %d: input '%s' dimension %d%s ranges over %lld..%lld but the model fails at %lld",
                                   p, t->name, d, sym, (long long)pi->min[d], (long long)pi->max[d], (long long)at);
        }
    }
    dt_free(R);
    return s;
}
