/* The CUDA backend's kernel table and the layers that run the project's own kernels
 * (kernels.cu): elementwise with broadcasting, Softmax, LayerNormalization, pooling,
 * Transpose, Gather, Concat. Layers the table lacks, or whose dtypes or attributes
 * dt_cuda_supports refuses, run on the host (the runtime's "cpu fallback"). */
#include "backend/cuda/cuda.h"
#include "core/status.h"
#include "core/dtype.h"
#include "ops/nn.h"
#include "ops/shape.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <string.h>

#define DT_CU_TRY(call, what) DT_TRY(dt_cuda_check((call), (what)))

static int64_t dt_count(const dt_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++) n *= v->dims[d];
    return n;
}

/* ---- elementwise ---- */

static const struct { const char *op; int code; } dt_binary_ops[] = {
    {"Add", DT_CU_ADD}, {"Sub", DT_CU_SUB}, {"Mul", DT_CU_MUL}, {"Div", DT_CU_DIV},
    {"Pow", DT_CU_POW}, {"Max", DT_CU_MAX}, {"Min", DT_CU_MIN}, {"PRelu", DT_CU_PRELU},
};

static const struct { const char *op; int code; } dt_unary_ops[] = {
    {"Identity", DT_CU_IDENTITY}, {"Relu", DT_CU_RELU}, {"Sigmoid", DT_CU_SIGMOID}, {"Tanh", DT_CU_TANH},
    {"Erf", DT_CU_ERF}, {"Sqrt", DT_CU_SQRT}, {"Exp", DT_CU_EXP}, {"Log", DT_CU_LOG}, {"Neg", DT_CU_NEG},
    {"Abs", DT_CU_ABS}, {"Reciprocal", DT_CU_RECIPROCAL}, {"HardSigmoid", DT_CU_HARDSIGMOID},
    {"HardSwish", DT_CU_HARDSWISH}, {"Clip", DT_CU_CLIP}, {"LeakyRelu", DT_CU_LEAKYRELU}, {"Elu", DT_CU_ELU},
    {"Softplus", DT_CU_SOFTPLUS}, {"Gelu", DT_CU_GELU}, {"Floor", DT_CU_FLOOR}, {"Ceil", DT_CU_CEIL},
};

static int dt_binary_code(const char *op)
{
    for (size_t i = 0; i < sizeof dt_binary_ops / sizeof dt_binary_ops[0]; i++)
        if (!strcmp(dt_binary_ops[i].op, op)) return dt_binary_ops[i].code;
    return -1;
}

static int dt_unary_code(const char *op)
{
    for (size_t i = 0; i < sizeof dt_unary_ops / sizeof dt_unary_ops[0]; i++)
        if (!strcmp(dt_unary_ops[i].op, op)) return dt_unary_ops[i].code;
    return -1;
}

/* Strides of an operand broadcast (numpy, right-aligned) to the output's dims. */
static void dt_bcast_strides(const dt_view *x, const dt_view *y, int64_t *st)
{
    int64_t s = 1;
    for (int d = y->rank - 1; d >= 0; d--) {
        int dx = d - (y->rank - x->rank);
        if (dx < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = x->dims[dx] == 1 ? 0 : s;
        s *= x->dims[dx];
    }
}

static ductile_status dt_cuda_binary_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_cu_bcast g;
    memset(&g, 0, sizeof g);
    g.rank = out[0].rank;
    g.n = dt_count(&out[0]);
    memcpy(g.dims, out[0].dims, sizeof g.dims[0] * (size_t)g.rank);
    dt_bcast_strides(&in[0], &out[0], g.sa);
    dt_bcast_strides(&in[1], &out[0], g.sb);
    return dt_cuda_check(dt_cu_binary(dt_binary_code(L->op_type), out[0].dtype, in[0].data, in[1].data, out[0].data, &g,
                                      ex->stream), L->op_type);
}

/* A constant float scalar of the layer's float type. Half bits are widened here rather than
 * with the CPU backend's helpers: backends never include each other. */
static float dt_scalar(const ductile_tensor *T)
{
    uint16_t h;
    uint32_t x;
    float f;
    switch (T->dtype) {
    case DUCTILE_FLOAT16: {
        memcpy(&h, T->data, 2);
        uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0) return (h & 0x8000 ? -1.f : 1.f) * (float)m * (1.0f / 16777216.0f);
        x = e == 31 ? sign | 0x7f800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
        break;
    }
    case DUCTILE_BFLOAT16:
        memcpy(&h, T->data, 2);
        x = (uint32_t)h << 16;
        break;
    default: return *(const float *)T->data;
    }
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Clip's bounds: attributes before opset 11, constant inputs after (supports checks them). */
static void dt_clip_bounds(const ductile_layer *L, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (L->opset < 11) {
        *lo = dt_attr_float(L, "min", -INFINITY);
        *hi = dt_attr_float(L, "max", INFINITY);
        return;
    }
    if (L->n_in > 1 && L->in[1] && L->in[1]->data) *lo = dt_scalar(L->in[1]);
    if (L->n_in > 2 && L->in[2] && L->in[2]->data) *hi = dt_scalar(L->in[2]);
}

static ductile_status dt_cuda_unary_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int code = dt_unary_code(L->op_type);
    float p0 = 0.f, p1 = 0.f;
    switch (code) {
    case DT_CU_HARDSIGMOID:
        p0 = dt_attr_float(L, "alpha", 0.2f);
        p1 = dt_attr_float(L, "beta", 0.5f);
        break;
    case DT_CU_HARDSWISH:
        p0 = 1.f / 6.f;
        p1 = 0.5f;
        break;
    case DT_CU_CLIP: dt_clip_bounds(L, &p0, &p1); break;
    case DT_CU_LEAKYRELU: p0 = dt_attr_float(L, "alpha", 0.01f); break;
    case DT_CU_ELU: p0 = dt_attr_float(L, "alpha", 1.0f); break;
    case DT_CU_GELU:
        if (!strcmp(dt_attr_string(L, "approximate", "none"), "tanh")) code = DT_CU_GELU_TANH;
        break;
    }
    return dt_cuda_check(dt_cu_unary(code, out[0].dtype, in[0].data, out[0].data, dt_count(&out[0]), p0, p1, ex->stream),
                         L->op_type);
}

/* ---- Softmax, LayerNormalization ---- */

static ductile_status dt_cuda_softmax_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int r = in[0].rank, axis;
    bool v13 = L->opset >= 13;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", v13 ? -1 : 1), r, &axis));
    int64_t outer = 1, mid = 1, inner = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis) outer *= in[0].dims[d];
        else if (d == axis || !v13) mid *= in[0].dims[d];
        else inner *= in[0].dims[d];
    }
    return dt_cuda_check(dt_cu_softmax(out[0].dtype, in[0].data, out[0].data, outer, mid, inner, !strcmp(L->op_type, "LogSoftmax"),
                                       ex->stream), L->op_type);
}

static ductile_status dt_cuda_layernorm_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int r = in[0].rank, axis;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", -1), r, &axis));
    int64_t rows = 1, cols = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis) rows *= in[0].dims[d];
        else cols *= in[0].dims[d];
    }
    bool has_bias = L->n_in > 2 && L->in[2];
    if (dt_count(&in[1]) != cols || (has_bias && dt_count(&in[2]) != cols))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda kernel needs Scale and B of %lld elements (the normalized dims)",
                       (long long)cols);
    return dt_cuda_check(dt_cu_layernorm(out[0].dtype, in[0].data, in[1].data, has_bias ? in[2].data : NULL, out[0].data, rows, cols,
                                         dt_attr_float(L, "epsilon", 1e-5f), ex->stream), L->op_type);
}

/* ---- pooling ---- */

static ductile_status dt_cuda_gap_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t planes = in[0].dims[0] * in[0].dims[1], hw = 1;
    for (int d = 2; d < in[0].rank; d++) hw *= in[0].dims[d];
    return dt_cuda_check(dt_cu_global_avgpool(out[0].dtype, in[0].data, out[0].data, planes, hw, ex->stream), L->op_type);
}

static ductile_status dt_cuda_pool_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_pool_geom g;
    DT_TRY(dt_pool_geometry(L, &in[0], &g));
    bool avg = !strcmp(L->op_type, "AveragePool");
    if (g.spatial > 2 || (avg && g.count_include_pad && (g.pb[1] != g.pe[1] || g.pb[2] != g.pe[2])))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda pooling kernel takes 1-D and 2-D windows (count_include_pad: symmetric pads)");
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    return dt_cuda_check(dt_cu_pool2d(out[0].dtype, in[0].data, out[0].data, planes, g.in[1], g.in[2], g.out[1], g.out[2], (int)g.k[1],
                                      (int)g.k[2], (int)g.s[1], (int)g.s[2], (int)g.pb[1], (int)g.pb[2], (int)g.d[1],
                                      (int)g.d[2], avg, avg && g.count_include_pad, ex->stream), L->op_type);
}

/* ---- layout ---- */

static ductile_status dt_cuda_transpose_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int r = in[0].rank;
    int64_t n;
    const int64_t *perm = dt_attr_ints(L, "perm", &n);
    int64_t st[DT_MAX_DIMS], pst[DT_MAX_DIMS];
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        st[d] = s;
        s *= in[0].dims[d];
    }
    for (int d = 0; d < r; d++) pst[d] = st[perm && n == r ? perm[d] : r - 1 - d];
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, (int)ductile_dtype_size(in[0].dtype), r, out[0].dims, pst,
                                         0, dt_count(&out[0]), ex->stream), L->op_type);
}

static ductile_status dt_cuda_gather_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int axis;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", 0), in[0].rank, &axis));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < in[0].rank; d++) {
        if (d < axis) outer *= in[0].dims[d];
        else if (d > axis) inner *= in[0].dims[d];
    }
    return dt_cuda_check(dt_cu_gather(in[0].data, in[1].data, in[1].dtype == DUCTILE_INT64, out[0].data, outer,
                                      in[0].dims[axis], inner, dt_count(&in[1]), (int)ductile_dtype_size(in[0].dtype),
                                      ex->stream), L->op_type);
}

/* Concat: per input one strided 2-D copy ([outer] rows of its slice of the axis). */
static ductile_status dt_cuda_concat_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int axis;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", 0), out[0].rank, &axis));
    size_t es = ductile_dtype_size(out[0].dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < out[0].rank; d++) {
        if (d < axis) outer *= out[0].dims[d];
        else if (d > axis) inner *= out[0].dims[d];
    }
    size_t row = (size_t)(out[0].dims[axis] * inner) * es, at = 0;
    for (int k = 0; k < L->n_in; k++) {
        if (!L->in[k] || in[k].rank < 0) continue;
        size_t w = (size_t)(in[k].dims[axis] * inner) * es;
        if (w && outer)
            DT_CU_TRY(cudaMemcpy2DAsync((char *)out[0].data + at, row, in[k].data, w, w, (size_t)outer,
                                        cudaMemcpyDeviceToDevice, (cudaStream_t)ex->stream), "Concat");
        at += w;
    }
    return DUCTILE_OK;
}

/* Reshape, Flatten, Squeeze, Unsqueeze: the same bytes in a new buffer (outputs never alias
 * inputs in this runtime). */
static ductile_status dt_cuda_copy_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    size_t bytes = (size_t)dt_count(&out[0]) * ductile_dtype_size((ductile_dtype)out[0].dtype);
    if (!bytes) return DUCTILE_OK;
    return dt_cuda_check(cudaMemcpyAsync(out[0].data, in[0].data, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)ex->stream),
                         L->op_type);
}

/* Expand: a strided read with 0 strides on the broadcast dims. */
static ductile_status dt_cuda_expand_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t st[DT_MAX_DIMS];
    dt_bcast_strides(&in[0], &out[0], st);
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, (int)ductile_dtype_size((ductile_dtype)out[0].dtype),
                                         out[0].rank, out[0].dims, st, 0, dt_count(&out[0]), ex->stream), L->op_type);
}

/* Slice: start offset and step strides from the plan the op computes (starts, ends, axes and
 * steps read on the host: constants or shape-pass values). */
static ductile_status dt_cuda_slice_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_slice_plan p;
    DT_TRY(dt_slice_plan_get(L, ex->host_in, &p));
    int r = in[0].rank;
    int64_t st[DT_MAX_DIMS], s = 1, base = 0;
    for (int d = r - 1; d >= 0; d--) {
        base += p.start[d] * s;
        st[d] = p.step[d] * s;
        s *= in[0].dims[d];
    }
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, (int)ductile_dtype_size((ductile_dtype)out[0].dtype), r,
                                         out[0].dims, st, base, dt_count(&out[0]), ex->stream), L->op_type);
}

/* DepthToSpace as a 6-D transpose: DCR reads [N, b, b, C', H, W] in the order
 * [N, C', H, b, W, b]; CRD reads [N, C', b, b, H, W] in that order. */
static ductile_status dt_cuda_d2s_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t b = dt_attr_int(L, "blocksize", 0), n = in[0].dims[0], c = in[0].dims[1], h = in[0].dims[2], w = in[0].dims[3];
    int64_t co = c / (b * b);
    bool crd = !strcmp(dt_attr_string(L, "mode", "DCR"), "CRD");
    int64_t dims[6] = {n, co, h, b, w, b}, st[6];
    int64_t hw = h * w;
    st[0] = c * hw;
    st[2] = w;
    st[4] = 1;
    if (crd) {
        st[1] = b * b * hw; /* [N, C', b1, b2, H, W] */
        st[3] = b * hw;
        st[5] = hw;
    } else {
        st[1] = hw;         /* [N, b1, b2, C', H, W] */
        st[3] = b * co * hw;
        st[5] = co * hw;
    }
    int es = (int)ductile_dtype_size((ductile_dtype)out[0].dtype);
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, es, 6, dims, st, 0, dt_count(&out[0]), ex->stream),
                         L->op_type);
}

static ductile_status dt_cuda_resize_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_resize_params p;
    DT_TRY(dt_resize_params_get(L, ex->host_in, &p));
    if (in[0].rank != 4 || p.out[0] != in[0].dims[0] || p.out[1] != in[0].dims[1] || p.antialias ||
        (p.mode != DT_RESIZE_NEAREST && p.mode != DT_RESIZE_LINEAR) || p.ctm > DT_CTM_HALF_PIXEL_SYMMETRIC)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda Resize resizes the last two dims of 4-D inputs (nearest, linear)");
    dt_cu_resize_geom g = {
        .planes = in[0].dims[0] * in[0].dims[1], .ih = in[0].dims[2], .iw = in[0].dims[3],
        .oh = out[0].dims[2], .ow = out[0].dims[3], .scale = {p.scale[2], p.scale[3]},
        .ctm = p.ctm, .nearest = p.nearest, .linear = p.mode == DT_RESIZE_LINEAR,
    };
    return dt_cuda_check(dt_cu_resize(out[0].dtype, in[0].data, out[0].data, &g, ex->stream), L->op_type);
}

static ductile_status dt_cuda_cast_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_cuda_check(dt_cu_cast(in[0].data, in[0].dtype, out[0].data, out[0].dtype, dt_count(&out[0]), ex->stream),
                         L->op_type);
}

static const struct { const char *op; int code; } dt_reduce_ops[] = {
    {"ReduceSum", DT_CU_RED_SUM}, {"ReduceMean", DT_CU_RED_MEAN}, {"ReduceMax", DT_CU_RED_MAX},
    {"ReduceMin", DT_CU_RED_MIN}, {"ReduceSumSquare", DT_CU_RED_SUMSQ}, {"ReduceL1", DT_CU_RED_L1},
    {"ReduceL2", DT_CU_RED_L2},
};

static int dt_reduce_code(const char *op)
{
    for (size_t i = 0; i < sizeof dt_reduce_ops / sizeof dt_reduce_ops[0]; i++)
        if (!strcmp(dt_reduce_ops[i].op, op)) return dt_reduce_ops[i].code;
    return -1;
}

/* Reductions whose reduced axes are contiguous: [outer, n, inner]. */
static ductile_status dt_cuda_reduce_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    bool red[DT_MAX_DIMS], identity = false;
    DT_TRY(dt_reduce_axes(L, ex->host_in, red, &identity));
    if (identity) return dt_cuda_copy_run(L, in, out, ex);
    int r = in[0].rank, first = -1, last = -1;
    for (int d = 0; d < r; d++)
        if (red[d]) {
            if (first < 0) first = d;
            last = d;
        }
    int64_t outer = 1, n = 1, inner = 1;
    for (int d = 0; d < r; d++) {
        if (first >= 0 && d >= first && d <= last) {
            if (!red[d] && in[0].dims[d] != 1)
                return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda reduction takes contiguous axes");
            n *= in[0].dims[d];
        } else if (first < 0 || d < first) outer *= in[0].dims[d];
        else inner *= in[0].dims[d];
    }
    if (n == 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda reduction needs a non-empty reduced block");
    return dt_cuda_check(dt_cu_reduce(out[0].dtype, in[0].data, out[0].data, outer, n, inner, dt_reduce_code(L->op_type), ex->stream),
                         L->op_type);
}

static ductile_status dt_cuda_where_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t sc[DT_MAX_DIMS], sx[DT_MAX_DIMS], sy[DT_MAX_DIMS];
    dt_bcast_strides(&in[0], &out[0], sc);
    dt_bcast_strides(&in[1], &out[0], sx);
    dt_bcast_strides(&in[2], &out[0], sy);
    return dt_cuda_check(dt_cu_where(out[0].dtype, in[0].data, in[1].data, in[2].data, out[0].data, out[0].rank, dt_count(&out[0]),
                                     out[0].dims, sc, sx, sy, ex->stream), L->op_type);
}

static ductile_status dt_cuda_logic_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t n = dt_count(&out[0]);
    if (!strcmp(L->op_type, "IsNaN")) return dt_cuda_check(dt_cu_isnan(in[0].dtype, in[0].data, out[0].data, n, ex->stream), L->op_type);
    if (!strcmp(L->op_type, "Not")) return dt_cuda_check(dt_cu_not(in[0].data, out[0].data, n, ex->stream), L->op_type);
    int64_t sa[DT_MAX_DIMS], sb[DT_MAX_DIMS];
    dt_bcast_strides(&in[0], &out[0], sa);
    dt_bcast_strides(&in[1], &out[0], sb);
    int op = !strcmp(L->op_type, "And") ? 0 : !strcmp(L->op_type, "Or") ? 1 : 2;
    return dt_cuda_check(dt_cu_logic(op, in[0].data, in[1].data, out[0].data, out[0].rank, n, out[0].dims, sa, sb, ex->stream),
                         L->op_type);
}

/* ---- the table ---- */

static const struct { const char *op; dt_kernel_fn run; } dt_cuda_kernels[] = {
    {"FusedConv", dt_cuda_conv_run}, {"Conv", dt_cuda_conv_run},
    {"MatMul", dt_cuda_matmul_run}, {"Gemm", dt_cuda_gemm_run},
    {"Softmax", dt_cuda_softmax_run}, {"LogSoftmax", dt_cuda_softmax_run},
    {"LayerNormalization", dt_cuda_layernorm_run},
    {"GlobalAveragePool", dt_cuda_gap_run}, {"MaxPool", dt_cuda_pool_run}, {"AveragePool", dt_cuda_pool_run},
    {"Transpose", dt_cuda_transpose_run}, {"Gather", dt_cuda_gather_run}, {"Concat", dt_cuda_concat_run},
    {"Reshape", dt_cuda_copy_run}, {"Flatten", dt_cuda_copy_run}, {"Squeeze", dt_cuda_copy_run},
    {"Unsqueeze", dt_cuda_copy_run}, {"Expand", dt_cuda_expand_run}, {"Slice", dt_cuda_slice_run},
    {"DepthToSpace", dt_cuda_d2s_run}, {"Resize", dt_cuda_resize_run}, {"Cast", dt_cuda_cast_run},
    {"Where", dt_cuda_where_run}, {"IsNaN", dt_cuda_logic_run}, {"Not", dt_cuda_logic_run},
    {"And", dt_cuda_logic_run}, {"Or", dt_cuda_logic_run}, {"Xor", dt_cuda_logic_run},
};

dt_kernel_fn dt_cuda_kernel_find(const char *op)
{
    if (dt_binary_code(op) >= 0) return dt_cuda_binary_run;
    if (dt_unary_code(op) >= 0) return dt_cuda_unary_run;
    if (dt_reduce_code(op) >= 0) return dt_cuda_reduce_run;
    for (size_t i = 0; i < sizeof dt_cuda_kernels / sizeof dt_cuda_kernels[0]; i++)
        if (!strcmp(dt_cuda_kernels[i].op, op)) return dt_cuda_kernels[i].run;
    return NULL;
}

static bool dt_is_kfloat(int t) { return t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT16 || t == DUCTILE_BFLOAT16; }

/* Every given input and every output of one float type the kernels take (float32, float16,
 * bfloat16: the half ones compute in float32). */
static bool dt_one_float(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    int t = out[0].dtype;
    if (!dt_is_kfloat(t)) return false;
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].dtype != t) return false;
    for (int k = 0; k < L->n_out; k++)
        if (out[k].dtype != t) return false;
    return true;
}

static bool dt_is_index(const dt_view *v) { return v->dtype == DUCTILE_INT64 || v->dtype == DUCTILE_INT32; }

bool dt_cuda_supports(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    const char *op = L->op_type;
    if (L->n_out < 1 || out[0].rank < 0 || out[0].rank > DT_CU_MAX_RANK) return false;
    /* String views point into host memory: every layer touching strings runs on the host. */
    for (int k = 0; k < L->n_in; k++)
        if (in[k].rank >= 0 && in[k].dtype == DUCTILE_STRING) return false;
    for (int k = 0; k < L->n_out; k++)
        if (out[k].dtype == DUCTILE_STRING) return false;
    if (dt_binary_code(op) >= 0) /* PRelu before opset 7 (slope per channel): the host's */
        return L->n_in == 2 && L->n_out == 1 && dt_one_float(L, in, out) && !(!strcmp(op, "PRelu") && L->opset < 7);
    if (dt_unary_code(op) >= 0) {
        if (!strcmp(op, "Identity")) return false; /* any dtype: the host copy is exact */
        if (!strcmp(op, "Clip")) {
            if (!dt_is_kfloat(in[0].dtype) || out[0].dtype != in[0].dtype) return false;
            /* Bounds after opset 11 are inputs: the kernel takes them as constants. */
            for (int k = 1; k < L->n_in; k++)
                if (L->in[k] && (!L->in[k]->data || in[k].dtype != in[0].dtype)) return false;
            return true;
        }
        return L->n_in == 1 && dt_one_float(L, in, out);
    }
    if (!strcmp(op, "FusedConv") || !strcmp(op, "Conv")) return dt_one_float(L, in, out) && dt_cuda_conv_supports(L);
    if (!strcmp(op, "Gemm")) return dt_one_float(L, in, out) && dt_cuda_gemm_supports(L);
    if (!strcmp(op, "MatMul")) return dt_one_float(L, in, out);
    if (!strcmp(op, "LayerNormalization")) return L->n_out == 1 && L->n_in >= 2 && dt_one_float(L, in, out);
    if (!strcmp(op, "MaxPool")) return L->n_out == 1 && dt_one_float(L, in, out) && !dt_attr_int(L, "storage_order", 0);
    if (dt_reduce_code(op) >= 0) return L->n_out == 1 && dt_is_kfloat(in[0].dtype) && out[0].dtype == in[0].dtype;
    if (!strcmp(op, "Cast")) {
        int f = in[0].dtype, t = out[0].dtype;
        bool fi = f == DUCTILE_INT64 || f == DUCTILE_INT32 || f == DUCTILE_BOOL, ti = t == DUCTILE_INT64 || t == DUCTILE_INT32;
        return (fi || dt_is_kfloat(f)) && (dt_is_kfloat(t) || t == DUCTILE_BOOL || (ti && fi));
    }
    if (!strcmp(op, "Where"))
        return in[0].dtype == DUCTILE_BOOL && dt_is_kfloat(out[0].dtype) && in[1].dtype == out[0].dtype &&
               in[2].dtype == out[0].dtype;
    if (!strcmp(op, "IsNaN")) return dt_is_kfloat(in[0].dtype) && out[0].dtype == DUCTILE_BOOL;
    if (!strcmp(op, "Not") || !strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor")) {
        for (int k = 0; k < L->n_in; k++)
            if (in[k].dtype != DUCTILE_BOOL) return false;
        return out[0].dtype == DUCTILE_BOOL;
    }
    if (!strcmp(op, "DepthToSpace")) return in[0].rank == 4 && dt_one_float(L, in, out);
    if (!strcmp(op, "Resize")) {
        const char *mode = dt_attr_string(L, "mode", "nearest");
        return in[0].rank == 4 && dt_is_kfloat(in[0].dtype) && out[0].dtype == in[0].dtype &&
               (!strcmp(mode, "nearest") || !strcmp(mode, "linear")) &&
               !dt_attr_int(L, "antialias", 0) &&
               strcmp(dt_attr_string(L, "coordinate_transformation_mode", ""), "tf_crop_and_resize") != 0;
    }
    if (!strcmp(op, "Transpose") || !strcmp(op, "Concat") || !strcmp(op, "Gather") || !strcmp(op, "Reshape") ||
        !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") || !strcmp(op, "Expand") ||
        !strcmp(op, "Slice")) {
        size_t es = ductile_dtype_size((ductile_dtype)out[0].dtype);
        if (es != 1 && es != 2 && es != 4 && es != 8) return false;
        /* An index out of range fails on the host; the kernel writes zeros for it (no error
         * path from the device yet). */
        if (!strcmp(op, "Gather")) return L->n_in == 2 && dt_is_index(&in[1]);
        return true;
    }
    return dt_one_float(L, in, out);
}
