/* Symbolic rules for the ops that move data without computing on it: Gather, GatherElements,
 * Concat, Unsqueeze, Squeeze, Slice, Reshape, Expand, Flatten, Transpose, Tile, Pad, Split,
 * DepthToSpace, SpaceToDepth. Values pass through where the element order allows. */
#include "graph/symbolic.h"
#include "core/checked.h"

#include <string.h>

/* Ends at or beyond this mean "to the end of the dim": exporters write INT64_MAX or INT32_MAX,
 * and no real dim comes near. */
#define DT_SYM_HUGE ((int64_t)INT32_MAX)

static bool is(const ductile_layer *L, const char *op) { return strcmp(L->op_type, op) == 0; }

static void copy_values(dt_symt *out, const dt_symt *in)
{
    out->nval = in->nval;
    for (int i = 0; i < in->nval; i++) out->val[i] = in->val[i];
}

static void gather(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const dt_symt *data = &in[0], *idx = &in[1];
    int a;
    if (data->rank < 1 || idx->rank < 0 || !dt_sym_axis(dt_attr_int(L, "axis", 0), data->rank, &a)) return;
    int r = data->rank - 1 + idx->rank;
    if (r > DT_MAX_DIMS) return;
    out->rank = r;
    int k = 0;
    for (int i = 0; i < a; i++) out->d[k++] = data->d[i];
    for (int i = 0; i < idx->rank; i++) out->d[k++] = idx->d[i];
    for (int i = a + 1; i < data->rank; i++) out->d[k++] = data->d[i];
    int64_t n;
    if (data->rank != 1 || data->nval < 0 || idx->nval < 0 || !dt_sd_is_const(data->d[0], &n)) return;
    for (int i = 0; i < idx->nval; i++) {
        int64_t j;
        if (!dt_sd_is_const(idx->val[i], &j)) return;
        if (j < 0) j += n;
        if (j < 0 || j >= data->nval) return;
        out->val[i] = data->val[j];
    }
    out->nval = idx->nval;
}

static void concat(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int r = in[0].present ? in[0].rank : -1, a;
    if (r < 0 || !dt_sym_axis(dt_attr_int(L, "axis", 0), r, &a)) return;
    for (int k = 0; k < L->n_in; k++)
        if (!in[k].present || in[k].rank != r) return;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        const dt_sd *d = i == a ? dt_sd_const(c, 0) : NULL;
        for (int k = 0; k < L->n_in; k++) {
            if (i == a) d = dt_sd_add(c, d, in[k].d[i]);
            else if (!d || (!dt_sd_is_const(d, NULL) && dt_sd_is_const(in[k].d[i], NULL))) d = in[k].d[i];
        }
        out->d[i] = d;
    }
    int n = 0;
    for (int k = 0; k < L->n_in; k++) {
        if (in[k].nval < 0 || n + in[k].nval > DT_SYM_MAX_VALUES || r != 1) return;
        for (int i = 0; i < in[k].nval; i++) out->val[n++] = in[k].val[i];
    }
    out->nval = n;
}

static void unsqueeze(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int64_t axes[DT_MAX_DIMS];
    int n;
    if (in[0].rank < 0 || !dt_sym_axes(L, in, 1, axes, &n)) return;
    int r = in[0].rank + n;
    if (r > DT_MAX_DIMS) return;
    bool added[DT_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if (!dt_sym_axis(axes[i], r, &a) || added[a]) return;
        added[a] = true;
    }
    out->rank = r;
    for (int i = 0, k = 0; i < r; i++) out->d[i] = added[i] ? dt_sd_const(c, 1) : in[0].d[k++];
    copy_values(out, &in[0]);
}

static void squeeze(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int64_t axes[DT_MAX_DIMS];
    int n, r = in[0].rank;
    if (r < 0 || !dt_sym_axes(L, in, 1, axes, &n)) return;
    bool drop[DT_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if (!dt_sym_axis(axes[i], r, &a)) return;
        drop[a] = true;
    }
    if (n == 0)   /* no axes: every dim of 1, which must then all be known */
        for (int i = 0; i < r; i++) {
            int64_t v;
            if (!dt_sd_is_const(in[0].d[i], &v)) return;
            drop[i] = v == 1;
        }
    out->rank = 0;
    for (int i = 0; i < r; i++)
        if (!drop[i]) out->d[out->rank++] = in[0].d[i];
    copy_values(out, &in[0]);
}

/* Where a slice bound lands in a dim d (steps > 0): clamped into [0, d]. */
static const dt_sd *slice_bound(dt_symctx *c, const dt_sd *b, const dt_sd *d)
{
    int64_t v;
    if (dt_sd_is_const(b, &v)) {
        if (v >= DT_SYM_HUGE) return d;
        if (v <= -DT_SYM_HUGE) return dt_sd_const(c, 0);
        if (v < 0) return dt_sd_max(c, dt_sd_add_const(c, d, v), dt_sd_const(c, 0));
        return dt_sd_min(c, b, d);
    }
    return dt_sd_nonneg(b) ? dt_sd_min(c, b, d) : NULL;
}

/* Slice bounds of one axis: from attributes (opset < 10) or inputs 1..4. */
static bool slice_param(const ductile_layer *L, const dt_symt *in, const char *attr, int input, int j,
                        dt_symctx *c, const dt_sd **out)
{
    if (L->opset < 10) {
        int64_t n;
        const int64_t *v = dt_attr_ints(L, attr, &n);
        if (!v || j >= n) return false;
        *out = dt_sd_const(c, v[j]);
        return true;
    }
    if (input >= L->n_in || !in[input].present || j >= in[input].nval) return false;
    *out = in[input].val[j];
    return true;
}

static void slice(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const dt_symt *x = &in[0];
    if (x->rank < 0) return;
    int n = L->opset < 10 ? -1 : (L->n_in > 1 && in[1].present ? in[1].nval : -1);
    if (L->opset < 10) {
        int64_t k;
        dt_attr_ints(L, "starts", &k);
        n = (int)k;
    }
    if (n < 0 || n > DT_MAX_DIMS) return;
    int64_t axes[DT_MAX_DIMS], steps[DT_MAX_DIMS];
    const dt_sd *starts[DT_MAX_DIMS], *ends[DT_MAX_DIMS];
    for (int j = 0; j < n; j++) {
        const dt_sd *a = NULL, *s = NULL;
        axes[j] = j;
        steps[j] = 1;
        if (slice_param(L, in, "axes", 3, j, c, &a) && !dt_sd_is_const(a, &axes[j])) return;
        if (slice_param(L, in, "steps", 4, j, c, &s) && !dt_sd_is_const(s, &steps[j])) return;
        if (!slice_param(L, in, "starts", 1, j, c, &starts[j]) || !slice_param(L, in, "ends", 2, j, c, &ends[j])) return;
        int ax;
        if (!dt_sym_axis(axes[j], x->rank, &ax) || steps[j] == 0) return;
        axes[j] = ax;
    }
    dt_symt_copy_shape(out, x);
    for (int j = 0; j < n; j++) {
        const dt_sd *d = x->d[axes[j]];
        int64_t dv, sv, ev, st = steps[j];
        if (st < 0) {   /* reversed slices: only with everything constant */
            if (!dt_sd_is_const(d, &dv) || !dt_sd_is_const(starts[j], &sv) || !dt_sd_is_const(ends[j], &ev)) {
                out->d[axes[j]] = NULL;
                continue;
            }
            if (sv < 0) sv += dv;
            if (ev < 0) ev += dv;
            sv = sv < 0 ? 0 : sv > dv - 1 ? dv - 1 : sv;
            ev = ev < -1 ? -1 : ev > dv - 1 ? dv - 1 : ev;
            /* ceil((sv - ev)/-st); both bounds are clamped to [-1, dv), and -INT64_MIN does
             * not exist (one element then). */
            int64_t len = sv <= ev ? 0 : st == INT64_MIN ? 1 : dt_ceildiv_nonneg(sv - ev, -st);
            out->d[axes[j]] = dt_sd_const(c, len);
            continue;
        }
        const dt_sd *s = slice_bound(c, starts[j], d), *e = slice_bound(c, ends[j], d);
        const dt_sd *len = dt_sd_ceildiv(c, dt_sd_sub(c, e, s), dt_sd_const(c, st));
        out->d[axes[j]] = dt_sd_max(c, len, dt_sd_const(c, 0));
    }
    /* Values of a 1-D shape tensor: one constant-bounded, forward slice. */
    int64_t dv, sv, ev;
    if (x->rank != 1 || x->nval < 0 || n != 1 || steps[0] != 1 || !dt_sd_is_const(x->d[0], &dv) ||
        !dt_sd_is_const(slice_bound(c, starts[0], x->d[0]), &sv) || !dt_sd_is_const(slice_bound(c, ends[0], x->d[0]), &ev))
        return;
    out->nval = 0;
    for (int64_t i = sv; i < ev && i < x->nval; i++) out->val[out->nval++] = x->val[i];
}

/* total / known for Reshape's -1: equal factors cancel first, then exact division. */
static const dt_sd *reshape_rest(dt_symctx *c, const dt_symt *x, const dt_symt *o, int skip)
{
    const dt_sd *num[DT_MAX_DIMS], *den[DT_MAX_DIMS];
    int nn = 0, nd = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!x->d[i]) return NULL;
        num[nn++] = x->d[i];
    }
    for (int i = 0; i < o->rank; i++) {
        if (i == skip) continue;
        if (!o->d[i]) return NULL;
        int k = 0;
        while (k < nn && !dt_sd_equal(num[k], o->d[i])) k++;
        if (k < nn) num[k] = num[--nn];
        else den[nd++] = o->d[i];
    }
    const dt_sd *p = dt_sd_const(c, 1), *q = dt_sd_const(c, 1);
    for (int i = 0; i < nn; i++) p = dt_sd_mul(c, p, num[i]);
    for (int i = 0; i < nd; i++) q = dt_sd_mul(c, q, den[i]);
    return dt_sd_floordiv(c, p, q);
}

static void reshape(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const dt_symt *x = &in[0], *s = &in[1];
    int64_t r;
    if (!s->present) return;
    if (s->nval >= 0) r = s->nval;
    else if (!(s->rank == 1 && dt_sd_is_const(s->d[0], &r))) return;
    if (r > DT_MAX_DIMS) return;
    out->rank = (int)r;
    if (s->nval < 0) return;
    bool allowzero = dt_attr_int(L, "allowzero", 0) != 0;
    int infer = -1;
    for (int i = 0; i < r; i++) {
        int64_t v;
        out->d[i] = s->val[i];
        if (!dt_sd_is_const(s->val[i], &v)) continue;
        if (v == 0 && !allowzero) out->d[i] = x->rank > i ? x->d[i] : NULL;
        else if (v == -1) {
            out->d[i] = NULL;
            infer = i;
        }
    }
    if (infer >= 0 && x->rank >= 0) out->d[infer] = reshape_rest(c, x, out, infer);
    copy_values(out, x);
}

static void expand(dt_symctx *c, const dt_symt *in, dt_symt *out)
{
    dt_symt shape;
    dt_symt_unknown(&shape);
    int64_t r;
    if (in[1].nval >= 0 && in[1].nval <= DT_MAX_DIMS) {
        shape.rank = in[1].nval;
        for (int i = 0; i < shape.rank; i++) shape.d[i] = in[1].val[i];
    } else if (in[1].rank == 1 && dt_sd_is_const(in[1].d[0], &r) && r <= DT_MAX_DIMS) shape.rank = (int)r;
    const dt_symt *ins[2] = {&in[0], &shape};
    dt_sym_broadcast(c, ins, 2, out);
}

static void transpose(const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int r = in[0].rank;
    if (r < 0) return;
    int64_t np;
    const int64_t *perm = dt_attr_ints(L, "perm", &np);
    if (perm && np != r) return;
    bool used[DT_MAX_DIMS] = {false};
    for (int i = 0; i < r; i++) {
        int64_t p = perm ? perm[i] : r - 1 - i;
        if (p < 0 || p >= r || used[p]) return;
        used[p] = true;
        out->d[i] = in[0].d[p];
    }
    out->rank = r;
}

/* Tile (repeats) and Pad (pads): per-dim arithmetic from a constant-or-value list. */
static void tile_or_pad(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out, bool tile)
{
    int r = in[0].rank;
    if (r < 0) return;
    const dt_sd *p[2 * DT_MAX_DIMS];
    int64_t na;
    const int64_t *pa = tile ? NULL : dt_attr_ints(L, "pads", &na);
    int need = tile ? r : 2 * r;
    if (pa) {
        if (na != need) return;
        for (int i = 0; i < need; i++) p[i] = dt_sd_const(c, pa[i]);
    } else {
        if (L->n_in < 2 || !in[1].present || in[1].nval != need) return;
        if (!tile && L->n_in > 3 && in[3].present) return;   /* Pad with axes: not followed */
        for (int i = 0; i < need; i++) p[i] = in[1].val[i];
    }
    out->rank = r;
    for (int i = 0; i < r; i++)
        out->d[i] = tile ? dt_sd_mul(c, in[0].d[i], p[i]) : dt_sd_add(c, in[0].d[i], dt_sd_add(c, p[i], p[i + r]));
}

static void split(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int r = in[0].rank, a;
    if (r < 0 || !dt_sym_axis(dt_attr_int(L, "axis", 0), r, &a)) return;
    int64_t ns;
    const int64_t *sa = dt_attr_ints(L, "split", &ns);
    for (int k = 0; k < L->n_out; k++) {
        dt_symt_copy_shape(&out[k], &in[0]);
        if (sa) out[k].d[a] = k < ns ? dt_sd_const(c, sa[k]) : NULL;
        else if (L->n_in > 1 && in[1].present) out[k].d[a] = k < in[1].nval ? in[1].val[k] : NULL;
        else if (L->opset < 18) out[k].d[a] = dt_sd_floordiv(c, in[0].d[a], dt_sd_const(c, L->n_out));
        else out[k].d[a] = NULL;
    }
}

static void depth_space(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out, bool to_space)
{
    int64_t b = dt_attr_int(L, "blocksize", 0);
    if (in[0].rank != 4 || b <= 0 || b > INT32_MAX) return;
    const dt_sd *bb = dt_sd_const(c, b * b), *bs = dt_sd_const(c, b);
    out->rank = 4;
    out->d[0] = in[0].d[0];
    out->d[1] = to_space ? dt_sd_floordiv(c, in[0].d[1], bb) : dt_sd_mul(c, in[0].d[1], bb);
    for (int i = 2; i < 4; i++) out->d[i] = to_space ? dt_sd_mul(c, in[0].d[i], bs) : dt_sd_floordiv(c, in[0].d[i], bs);
}

bool dt_sym_shape_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (L->n_in < 1 || L->n_out < 1 || !in[0].present) return false;
    bool two = L->n_in > 1 && in[1].present;
    if (is(L, "Gather")) {
        if (two) gather(c, L, in, out);
    } else if (is(L, "GatherElements")) {
        if (two) dt_symt_copy_shape(out, &in[1]);
    } else if (is(L, "Concat")) concat(c, L, in, out);
    else if (is(L, "Unsqueeze")) unsqueeze(c, L, in, out);
    else if (is(L, "Squeeze")) squeeze(c, L, in, out);
    else if (is(L, "Slice")) slice(c, L, in, out);
    else if (is(L, "Reshape")) {
        if (two) reshape(c, L, in, out);
    } else if (is(L, "Expand")) {
        if (two) expand(c, in, out);
    } else if (is(L, "Flatten")) {
        int a, r = in[0].rank;
        if (r >= 0 && dt_sym_axis(dt_attr_int(L, "axis", 1), r + 1, &a)) {
            out->rank = 2;
            out->d[0] = dt_sym_product(c, &in[0], 0, a);
            out->d[1] = dt_sym_product(c, &in[0], a, r);
        }
    } else if (is(L, "Transpose")) transpose(L, in, out);
    else if (is(L, "Tile")) tile_or_pad(c, L, in, out, true);
    else if (is(L, "Pad")) tile_or_pad(c, L, in, out, false);
    else if (is(L, "Split")) split(c, L, in, out);
    else if (is(L, "DepthToSpace")) depth_space(c, L, in, out, true);
    else if (is(L, "SpaceToDepth")) depth_space(c, L, in, out, false);
    else return false;
    return true;
}
