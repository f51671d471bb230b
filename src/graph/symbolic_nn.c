/* Symbolic rules for the compute ops: Conv and pooling (pads, strides, dilations, auto_pad,
 * ceil_mode), global pooling, MatMul, Gemm, Resize/Upsample, reductions, normalizations and
 * the ops whose output has the shape of their first input. */
#include "graph/symbolic.h"
#include "core/checked.h"

#include <math.h>
#include <string.h>

static bool is(const ductile_layer *L, const char *op) { return strcmp(L->op_type, op) == 0; }

static bool is_same_shape(const ductile_layer *L)
{
    static const char *const ops[] = {
        "Relu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu",
        "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor",
        "Ceil", "Round", "Sign", "Not", "IsNaN", "IsInf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
        "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Clip", "Softmax", "LogSoftmax", "Hardmax",
        "BatchNormalization", "InstanceNormalization", "LRN", "Dropout", "Shrink", "ThresholdedRelu",
        "LpNormalization", "MeanVarianceNormalization", "CumSum", "Trilu", "Bernoulli"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (is(L, ops[i])) return true;
    return false;
}

/* One spatial dim of a convolution or pooling window (pb, pe: pads; ek: effective kernel). */
static const dt_sd *window_dim(dt_symctx *c, const dt_sd *d, const char *auto_pad, int64_t pb, int64_t pe,
                               int64_t ek, int64_t s, bool ceil_mode)
{
    const dt_sd *ks = dt_sd_const(c, s);
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) return dt_sd_ceildiv(c, d, ks);
    if (!strcmp(auto_pad, "VALID")) pb = pe = 0;
    else if (strcmp(auto_pad, "NOTSET") != 0) return NULL;
    int64_t pads, off;   /* overflowing attributes leave the dim unknown; the op's check names them */
    if (!dt_add_i64(pb, pe, &pads) || !dt_add_i64(pads, -ek, &off)) return NULL;
    const dt_sd *span = dt_sd_add_const(c, d, off);
    if (!ceil_mode) return dt_sd_add_const(c, dt_sd_floordiv(c, span, ks), 1);
    const dt_sd *out = dt_sd_add_const(c, dt_sd_ceildiv(c, span, ks), 1);
    int64_t dv, ov;
    /* A last window starting in the padding is dropped; it cannot when there is no padding
     * and windows overlap or touch. Otherwise only constants can tell. */
    if (pb == 0 && pe == 0 && ek >= s) return out;
    if (!dt_sd_is_const(d, &dv) || !dt_sd_is_const(out, &ov)) return NULL;
    int64_t last, end;
    if (!dt_mul_i64(ov - 1, s, &last) || !dt_add_i64(dv, pb, &end)) return NULL;
    return dt_sd_const(c, last >= end ? ov - 1 : ov);
}

static void conv_pool(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out, bool conv)
{
    const dt_symt *x = &in[0];
    int r = x->rank, ns = r - 2;
    if (r < 3) return;
    int64_t kern[DT_MAX_DIMS], n;
    const int64_t *ka = dt_attr_ints(L, "kernel_shape", &n);
    if (ka && n == ns) memcpy(kern, ka, (size_t)ns * sizeof *kern);
    else if (conv && L->n_in > 1 && in[1].rank == r) {
        for (int i = 0; i < ns; i++)
            if (!dt_sd_is_const(in[1].d[i + 2], &kern[i])) return;
    } else return;
    const int64_t *st = dt_attr_ints(L, "strides", &n);
    if (st && n != ns) return;
    const int64_t *dil = dt_attr_ints(L, "dilations", &n);
    if (dil && n != ns) return;
    const int64_t *pads = dt_attr_ints(L, "pads", &n);
    if (pads && n != 2 * ns) return;
    const char *auto_pad = dt_attr_string(L, "auto_pad", "NOTSET");
    bool ceil_mode = !conv && dt_attr_int(L, "ceil_mode", 0) != 0;
    out->rank = r;
    out->d[0] = x->d[0];
    out->d[1] = conv ? (L->n_in > 1 && in[1].rank == r ? in[1].d[0] : NULL) : x->d[1];
    for (int i = 0; i < ns; i++) {
        int64_t s = st ? st[i] : 1, dl = dil ? dil[i] : 1, ek;
        if (s <= 0 || !dt_dilated_extent(kern[i], dl, &ek)) {
            out->d[i + 2] = NULL;
            continue;
        }
        out->d[i + 2] = window_dim(c, x->d[i + 2], auto_pad, pads ? pads[i] : 0, pads ? pads[i + ns] : 0, ek, s,
                                   ceil_mode);
    }
}

static void matmul(dt_symctx *c, const dt_symt *a, const dt_symt *b, dt_symt *out)
{
    int ra = a->rank, rb = b->rank;
    if (ra < 1 || rb < 1) return;
    dt_symt ba, bb;
    dt_symt_unknown(&ba);
    dt_symt_unknown(&bb);
    ba.rank = ra > 2 ? ra - 2 : 0;
    bb.rank = rb > 2 ? rb - 2 : 0;
    for (int i = 0; i < ba.rank; i++) ba.d[i] = a->d[i];
    for (int i = 0; i < bb.rank; i++) bb.d[i] = b->d[i];
    const dt_symt *ins[2] = {&ba, &bb};
    dt_sym_broadcast(c, ins, 2, out);
    if (out->rank + 2 > DT_MAX_DIMS) {
        out->rank = -1;
        return;
    }
    if (ra > 1) out->d[out->rank++] = a->d[ra - 2];
    if (rb > 1) out->d[out->rank++] = b->d[rb - 1];
}

/* out = floor(d * s) for a float scale s, when it has an exact symbolic form. */
static const dt_sd *scaled(dt_symctx *c, const dt_sd *d, float s)
{
    int64_t v;
    if (!(s > 0) || s > 1e6f) return NULL;
    if (dt_sd_is_const(d, &v)) return dt_sd_const(c, (int64_t)floor((double)v * (double)s));
    for (int64_t q = 1; q <= 64; q++) {   /* s == p/q exactly: floor(p*d/q) */
        double p = (double)s * (double)q;
        if (p == floor(p)) return dt_sd_floordiv(c, dt_sd_mul_const(c, d, (int64_t)p), dt_sd_const(c, q));
    }
    return NULL;
}

static void resize(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int r = in[0].rank;
    if (r < 0 || dt_attr_find(L, "axes")) return;
    const char *policy = dt_attr_string(L, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(policy, "stretch") != 0) return;
    bool old = is(L, "Upsample") || L->opset < 11;
    int si = old ? 1 : 2;
    if (!old && L->n_in > 3 && in[3].present && in[3].nval == r) {
        out->rank = r;
        for (int i = 0; i < r; i++) out->d[i] = in[3].val[i];
        return;
    }
    int64_t n = 0;
    const float *sc = dt_attr_floats(L, "scales", &n);   /* Upsample-7 */
    const ductile_tensor *t = si < L->n_in ? L->in[si] : NULL;
    if (!sc && t && t->data && t->dtype == DUCTILE_FLOAT32) {
        n = dt_tensor_count(t);
        if ((size_t)n * sizeof(float) > t->nbytes) return;
        sc = t->data;
    }
    if (!sc || n != r) return;
    out->rank = r;
    for (int i = 0; i < r; i++) out->d[i] = scaled(c, in[0].d[i], sc[i]);
}

static bool is_reduce(const ductile_layer *L)
{
    return !strncmp(L->op_type, "Reduce", 6) || is(L, "ArgMax") || is(L, "ArgMin");
}

static void reduce(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    int r = in[0].rank;
    if (r < 0) return;
    bool keep = dt_attr_int(L, "keepdims", 1) != 0, arg = !strncmp(L->op_type, "Arg", 3);
    int64_t axes[DT_MAX_DIMS];
    int n = 1;
    if (arg) axes[0] = dt_attr_int(L, "axis", 0);
    else if (!dt_sym_axes(L, in, 1, axes, &n)) return;
    bool red[DT_MAX_DIMS] = {false};
    if (n == 0 && dt_attr_int(L, "noop_with_empty_axes", 0)) {
        dt_symt_copy_shape(out, &in[0]);
        return;
    }
    for (int i = 0; i < r; i++) red[i] = n == 0;
    for (int i = 0; i < n; i++) {
        int a;
        if (!dt_sym_axis(axes[i], r, &a)) return;
        red[a] = true;
    }
    out->rank = 0;
    for (int i = 0; i < r; i++) {
        if (!red[i]) out->d[out->rank++] = in[0].d[i];
        else if (keep) out->d[out->rank++] = dt_sd_const(c, 1);
    }
}

bool dt_sym_nn_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out)
{
    if (L->n_in < 1 || L->n_out < 1 || !in[0].present) return false;
    if (is_same_shape(L)) {
        dt_symt_copy_shape(&out[0], &in[0]);
        if (is(L, "Dropout") && L->n_out > 1) dt_symt_copy_shape(&out[1], &in[0]);
    } else if (is(L, "Conv")) conv_pool(c, L, in, out, true);
    else if (is(L, "MaxPool") || is(L, "AveragePool") || is(L, "LpPool")) conv_pool(c, L, in, out, false);
    else if (is(L, "GlobalAveragePool") || is(L, "GlobalMaxPool") || is(L, "GlobalLpPool")) {
        if (in[0].rank >= 3) {
            dt_symt_copy_shape(out, &in[0]);
            for (int i = 2; i < in[0].rank; i++) out->d[i] = dt_sd_const(c, 1);
        }
    } else if (is(L, "MatMul")) {
        if (L->n_in > 1 && in[1].present) matmul(c, &in[0], &in[1], out);
    } else if (is(L, "Gemm")) {
        if (L->n_in > 1 && in[0].rank == 2 && in[1].rank == 2) {
            out->rank = 2;
            out->d[0] = in[0].d[dt_attr_int(L, "transA", 0) ? 1 : 0];
            out->d[1] = in[1].d[dt_attr_int(L, "transB", 0) ? 0 : 1];
        }
    } else if (is(L, "Resize") || is(L, "Upsample")) resize(c, L, in, out);
    else if (is_reduce(L)) reduce(c, L, in, out);
    else if (is(L, "LayerNormalization")) {
        int a;
        dt_symt_copy_shape(&out[0], &in[0]);
        /* Mean and InvStdDev: the input's shape with the normalized dims set to 1. */
        for (int k = 1; k < L->n_out && k < 3 && in[0].rank >= 0; k++)
            if (dt_sym_axis(dt_attr_int(L, "axis", -1), in[0].rank, &a)) {
                dt_symt_copy_shape(&out[k], &in[0]);
                for (int i = a; i < in[0].rank; i++) out[k].d[i] = dt_sd_const(c, 1);
            }
    } else return false;
    return true;
}
