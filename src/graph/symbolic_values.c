/* Symbolic rules for the ops that compute on shapes: Shape, Size, Cast, Identity,
 * ConstantOfShape, Range, Where and the elementwise binary ops (broadcast shapes, and values
 * element by element when the inputs carry values). */
#include "graph/symbolic.h"
#include "core/checked.h"

#include <string.h>

static bool is(const ductile_layer *L, const char *op) { return strcmp(L->op_type, op) == 0; }

/* Constant dims of t into d; false when some dim is not a constant. */
static bool const_dims(const dt_symt *t, int64_t *d)
{
    if (t->rank < 0) return false;
    for (int i = 0; i < t->rank; i++)
        if (!dt_sd_is_const(t->d[i], &d[i])) return false;
    return true;
}

/* Index into t's values of element i of the broadcast output shape od (rank orank). */
static int bcast_index(const int64_t *od, int orank, const dt_symt *t, int64_t i)
{
    int64_t td[DT_MAX_DIMS];
    if (!const_dims(t, td)) return -1;
    int64_t idx = 0, stride = 1;
    for (int a = orank - 1; a >= 0; a--) {
        int64_t coord = i % od[a];
        i /= od[a];
        int ta = a - (orank - t->rank);
        if (ta < 0) continue;
        if (td[ta] != 1) idx += coord * stride;
        stride *= td[ta];
    }
    return (int)idx;
}

/* Number of elements of a shape with constant dims, when small enough for values. */
static int small_count(const dt_symt *o, int64_t *od)
{
    if (!const_dims(o, od)) return -1;
    int64_t n = 1;
    for (int i = 0; i < o->rank; i++) {
        /* A dim from a hostile constant may be negative or huge: checked, never wrapped. */
        if (od[i] < 0 || !dt_mul_i64(n, od[i], &n) || n > DT_SYM_MAX_VALUES) return -1;
    }
    return (int)n;
}

/* -1: unknown, else 0 or 1: the truth of a op b for comparisons. */
static int compare(dt_symctx *c, const char *op, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return -1;
    const dt_sd *d = dt_sd_sub(c, a, b);            /* a - b */
    bool ge = dt_sd_nonneg(d);                       /* a >= b */
    bool le = dt_sd_nonneg(dt_sd_mul_const(c, d, -1));
    bool gt = dt_sd_nonneg(dt_sd_add_const(c, d, -1));
    bool lt = dt_sd_nonneg(dt_sd_sub(c, b, dt_sd_add_const(c, a, 1)));
    if (!strcmp(op, "Equal")) return ge && le ? 1 : gt || lt ? 0 : -1;
    if (!strcmp(op, "Less")) return lt ? 1 : ge ? 0 : -1;
    if (!strcmp(op, "LessOrEqual")) return le ? 1 : gt ? 0 : -1;
    if (!strcmp(op, "Greater")) return gt ? 1 : le ? 0 : -1;
    if (!strcmp(op, "GreaterOrEqual")) return ge ? 1 : lt ? 0 : -1;
    return -1;
}

static const dt_sd *binary_value(dt_symctx *c, const char *op, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    int64_t x, y;
    if (!strcmp(op, "Add")) return dt_sd_add(c, a, b);
    if (!strcmp(op, "Sub")) return dt_sd_sub(c, a, b);
    if (!strcmp(op, "Mul")) return dt_sd_mul(c, a, b);
    /* Integer Div truncates toward zero: floor only when neither side is negative. */
    if (!strcmp(op, "Div")) return dt_sd_nonneg(a) && dt_sd_nonneg(b) ? dt_sd_floordiv(c, a, b) : NULL;
    if (!strcmp(op, "Max")) return dt_sd_max(c, a, b);
    if (!strcmp(op, "Min")) return dt_sd_min(c, a, b);
    if (!strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor")) {
        if (!dt_sd_is_const(a, &x) || !dt_sd_is_const(b, &y)) return NULL;
        bool p = x != 0, q = y != 0;
        return dt_sd_const(c, op[0] == 'A' ? (p && q) : op[0] == 'O' ? (p || q) : (p != q));
    }
    int r = compare(c, op, a, b);
    return r < 0 ? NULL : dt_sd_const(c, r);
}

static bool is_binary(const ductile_layer *L)
{
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean",
                                      "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
                                      "And", "Or", "Xor", "BitShift", "PRelu", "Where"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (is(L, ops[i])) return true;
    return false;
}

/* Broadcasting ops: the shape, then values element by element where all inputs have them. */
static void elementwise(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const dt_symt *ins[8];
    int n = L->n_in < 8 ? L->n_in : 8;
    for (int k = 0; k < n; k++) {
        if (!in[k].present) return;
        ins[k] = &in[k];
    }
    dt_sym_broadcast(c, ins, n, out);
    bool where = is(L, "Where");
    if ((where && n != 3) || (!where && n != 2)) return;
    int64_t od[DT_MAX_DIMS];
    int cnt = small_count(out, od);
    if (cnt < 0) return;
    for (int k = 0; k < n; k++)
        if (in[k].nval < 0) return;
    for (int i = 0; i < cnt; i++) {
        int ia = bcast_index(od, out->rank, &in[0], i), ib = bcast_index(od, out->rank, &in[1], i);
        if (ia < 0 || ib < 0 || ia >= in[0].nval || ib >= in[1].nval) return;
        if (where) {
            int ic = bcast_index(od, out->rank, &in[2], i);
            int64_t cond;
            if (ic < 0 || ic >= in[2].nval) return;
            out->val[i] = dt_sd_is_const(in[0].val[ia], &cond) ? (cond ? in[1].val[ib] : in[2].val[ic]) : NULL;
        } else out->val[i] = binary_value(c, L->op_type, in[0].val[ia], in[1].val[ib]);
    }
    out->nval = cnt;
}

static void shape_op(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (in[0].rank < 0) return;
    int r = in[0].rank, start = 0, end = r;
    /* opset 15: start and end attributes, clamped like Slice. */
    int64_t s = dt_attr_int(L, "start", 0), e = dt_attr_int(L, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    start = (int)(s < 0 ? 0 : s > r ? r : s);
    end = (int)(e < 0 ? 0 : e > r ? r : e);
    if (end < start) end = start;
    out->rank = 1;
    out->d[0] = dt_sd_const(c, end - start);
    out->nval = end - start;
    for (int i = start; i < end; i++) out->val[i - start] = in[0].d[i];
}

static void constant_of_shape(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    const dt_symt *s = &in[0];
    if (s->nval < 0 || s->nval > DT_MAX_DIMS) return;
    out->rank = s->nval;
    for (int i = 0; i < s->nval; i++) out->d[i] = s->val[i];
    int64_t od[DT_MAX_DIMS];
    int cnt = small_count(out, od);
    const dt_attr *a = dt_attr_find(L, "value");
    const ductile_tensor *t = a ? a->t : NULL;
    if (cnt < 0 || !t || !t->data) return;
    int64_t v;
    if (t->dtype == DUCTILE_INT64 && t->nbytes >= 8) memcpy(&v, t->data, 8);
    else if (t->dtype == DUCTILE_INT32 && t->nbytes >= 4) {
        int32_t w;
        memcpy(&w, t->data, 4);
        v = w;
    } else return;
    for (int i = 0; i < cnt; i++) out->val[i] = dt_sd_const(c, v);
    out->nval = cnt;
}

/* Range: max(ceil((limit - start)/delta), 0) elements, when delta is a nonzero constant. */
static void range_op(dt_symctx *c, const dt_symt *in, dt_symt *out)
{
    out->rank = 1;
    if (in[0].nval != 1 || in[1].nval != 1 || in[2].nval != 1) return;
    const dt_sd *start = in[0].val[0], *limit = in[1].val[0];
    int64_t delta, s;
    if (!dt_sd_is_const(in[2].val[0], &delta) || delta == 0) return;
    const dt_sd *n = dt_sd_ceildiv(c, dt_sd_sub(c, limit, start), dt_sd_const(c, delta));
    n = dt_sd_max(c, n, dt_sd_const(c, 0));
    out->d[0] = n;
    int64_t cnt;
    if (!dt_sd_is_const(n, &cnt) || cnt > DT_SYM_MAX_VALUES || !dt_sd_is_const(start, &s)) return;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v;
        if (!dt_mul_i64(i, delta, &v) || !dt_add_i64(s, v, &v)) return;   /* values unknown */
        out->val[i] = dt_sd_const(c, v);
    }
    out->nval = (int)cnt;
}

bool dt_sym_value_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (L->n_out < 1) return false;
    if (is_binary(L)) {
        elementwise(c, L, in, &out[0]);
        return true;
    }
    if (L->n_in < 1 || !in[0].present) return false;
    if (is(L, "Shape")) shape_op(c, L, in, out);
    else if (is(L, "Size")) {
        out->rank = 0;
        out->nval = 1;
        out->val[0] = dt_sym_product(c, &in[0], 0, in[0].rank);
    } else if (is(L, "Identity")) *out = in[0];
    else if (is(L, "Cast")) {
        int64_t to = dt_attr_int(L, "to", 0);
        dt_symt_copy_shape(out, &in[0]);
        /* Values stay exact only through integer types. */
        if (to == DUCTILE_INT64 || to == DUCTILE_INT32) {
            out->nval = in[0].nval;
            for (int i = 0; i < in[0].nval; i++) out->val[i] = in[0].val[i];
        }
    } else if (is(L, "ConstantOfShape")) constant_of_shape(c, L, in, out);
    else if (is(L, "Range")) {
        if (L->n_in == 3 && in[1].present && in[2].present) range_op(c, in, out);
    } else return false;
    return true;
}
