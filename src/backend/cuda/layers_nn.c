/* The CUDA backend's nn layers, compiled (layers.h): Softmax, LogSoftmax, LayerNormalization
 * (and FusedLayerNorm), GlobalAveragePool, FusedSqueezeExcite, MaxPool, AveragePool, Resize and the reductions.
 * Their attributes are read once by the same readers of ops/nn.h that infer and the CPU use,
 * so the GPU can never disagree with them about axes, pads or scales. */
#include "backend/cuda/layers.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/fused.h"

#include <stdlib.h>
#include <string.h>

/* ---- Softmax, LogSoftmax ---- */

static ductile_status dt_softmax_prepare(const ductile_layer *L, void **out)
{
    dt_cu_softmax_params p = {L, dt_softmax_axis_attr(L), L->opset < 13, !strcmp(L->op_type, "LogSoftmax")};
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_softmax_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_softmax_params *p = params;
    int64_t outer, mid, inner;
    DT_TRY(dt_softmax_layout_of(p->axis, p->coerce, &in[0], &outer, &mid, &inner));
    return dt_cuda_check(dt_cu_softmax(out[0].dtype, in[0].data, out[0].data, outer, mid, inner, p->log, ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_softmax_kernel = {.prepare = dt_softmax_prepare, .run = dt_softmax_run};

/* ---- LayerNormalization, FusedLayerNorm ---- */

/* FusedLayerNorm (ops/fused.h) is LayerNormalization with X, Scale and B where LayerNorm has
 * them and addends after (inputs 3, 4): one layer kernel for both. */
static ductile_status dt_layernorm_prepare(const ductile_layer *L, void **out)
{
    dt_cu_layernorm_params p = {.L = L, .axis = dt_attr_int(L, "axis", -1), .eps = dt_attr_float(L, "epsilon", 1e-5f),
                                .has_bias = L->n_in > 2 && L->in[2]};
    for (int a = 0; a < 2; a++) p.has_r[a] = L->n_in > DT_FLN_R1 + a && L->in[DT_FLN_R1 + a];
    p.gathers = !strcmp(L->op_type, "FusedLayerNorm") && dt_fused_layernorm_gathers(L);
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_layernorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layernorm_params *p = params;
    dt_view x;   /* FusedLayerNorm with IDS: the gathered rows */
    dt_fused_layernorm_x(in, p->gathers, &x);
    int axis;
    int64_t cols, rows = 1;
    DT_TRY(dt_layernorm_layout_of(p->axis, &x, &axis, &cols));
    for (int d = 0; d < axis; d++) rows *= x.dims[d];
    /* Scale and B may broadcast to the normalized dims (infer admits a suffix of them); the
     * kernel reads one of each per normalized element. */
    if (dt_cuda_count(&in[1]) != cols || (p->has_bias && dt_cuda_count(&in[2]) != cols))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda kernel needs Scale and B of %lld elements (the normalized dims)",
                       (long long)cols);
    dt_cu_ln_addends ra = {.nd = axis};
    for (int a = 0; a < 2; a++) {
        if (!p->has_r[a]) continue;
        if (axis > DT_CU_MAX_RANK || !dt_fused_layernorm_strides(&x, axis, &in[DT_FLN_R1 + a], ra.st[a]))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda FusedLayerNorm takes addends broadcasting by rows over at most "
                           "%d dims (input %d)", DT_CU_MAX_RANK, DT_FLN_R1 + a);
        ra.r[a] = in[DT_FLN_R1 + a].data;
    }
    for (int d = 0; d < axis && d < DT_CU_MAX_RANK; d++) ra.dims[d] = x.dims[d];
    if (p->gathers) {
        ra.ids = in[DT_FLN_IDS].data;
        ra.ids64 = in[DT_FLN_IDS].dtype == DUCTILE_INT64;
        ra.vocab = in[DT_FLN_X].dims[0];
    }
    bool fused = p->has_r[0] || p->has_r[1] || p->gathers;
    return dt_cuda_check(dt_cu_layernorm(out[0].dtype, in[0].data, in[1].data, p->has_bias ? in[2].data : NULL, out[0].data,
                                         rows, cols, p->eps, fused ? &ra : NULL, ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_layernorm_kernel = {.prepare = dt_layernorm_prepare, .run = dt_layernorm_run};

/* ---- pooling ---- */

/* Planes x spatial size; the split of the reduction kernel where few planes leave most of the
 * GPU idle (a block per plane), with the bytes of its slices. */
static int dt_gap_split(const dt_view *x, int64_t *planes, int64_t *hw, size_t *bytes)
{
    *planes = x->rank >= 2 ? x->dims[0] * x->dims[1] : 1, *hw = 1;
    for (int d = 2; d < x->rank; d++) *hw *= x->dims[d];
    int split = *planes < 2 * (int64_t)dt_cuda_sm_count() ? dt_cuda_reduce_split(*planes, *hw, 1, dt_cuda_sm_count()) : 0;
    *bytes = split > 1 ? (size_t)split * (size_t)*planes * sizeof(float) : 0;
    return split;
}

static ductile_status dt_gap_scratch(const void *params, const dt_view *in, const dt_view *out, int threads, size_t *bytes)
{
    (void)params, (void)out, (void)threads;
    int64_t planes, hw;
    dt_gap_split(&in[0], &planes, &hw, bytes);
    return DUCTILE_OK;
}

static ductile_status dt_gap_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    int64_t planes, hw;
    size_t bytes;
    int split = dt_gap_split(&in[0], &planes, &hw, &bytes);
    if (split > 1 && ex->scratch && ex->scratch_bytes >= bytes)
        return dt_cuda_check(dt_cu_reduce_split(out[0].dtype, in[0].data, out[0].data, planes, hw, 1, DT_CU_RED_MEAN,
                                                ex->scratch, split, ex->stream),
                             p->L->op_type);
    return dt_cuda_check(dt_cu_global_avgpool(out[0].dtype, in[0].data, out[0].data, planes, hw, ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_gap_kernel = {.prepare = dt_cuda_layer_prepare, .scratch = dt_gap_scratch, .run = dt_gap_run};

/* ---- FusedSqueezeExcite ---- */

/* The pool's [outer, n, inner] for X ([N, HW, C] channels last, else [N * C, HW, 1]) and its
 * slices (dt_cu_reduce_sums; at least one, into the scratch either way). */
static int dt_se_split(const dt_cu_se_params *p, const dt_view *in, int64_t *outer, int64_t *inner, size_t *bytes)
{
    int64_t n, c, cr, hw;
    dt_fused_se_sizes(p->L, in, &n, &c, &cr, &hw);
    *outer = p->nhwc ? n : n * c;
    *inner = p->nhwc ? c : 1;
    int split = dt_cuda_reduce_split(*outer, hw, *inner, dt_cuda_sm_count());
    if (split < 1) split = 1;
    *bytes = (size_t)split * (size_t)(n * c) * sizeof(float);
    return split;
}

static ductile_status dt_se_prepare(const ductile_layer *L, void **out)
{
    static const char *const hidden[4] = {"hidden_p0", "hidden_p1", "hidden_p0", "hidden_p1"};
    static const char *const scale[4] = {"scale_p0", "scale_p1", "scale_p0", "scale_p1"};
    dt_cu_se_params p = {.L = L, .nhwc = dt_fused_se_nhwc(L)};
    DT_TRY(dt_cuda_act_read(L, "hidden_activation", hidden, &p.acts.hidden, &p.acts.h0, &p.acts.h1));
    DT_TRY(dt_cuda_act_read(L, "scale_activation", scale, &p.acts.scale, &p.acts.s0, &p.acts.s1));
    p.has_b1 = L->n_in > DT_FSE_B1 && L->in[DT_FSE_B1];
    p.has_b2 = L->n_in > DT_FSE_B2 && L->in[DT_FSE_B2];
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_se_scratch(const void *params, const dt_view *in, const dt_view *out, int threads, size_t *bytes)
{
    (void)out, (void)threads;
    int64_t outer, inner;
    dt_se_split(params, in, &outer, &inner, bytes);
    return DUCTILE_OK;
}

static ductile_status dt_se_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_se_params *p = params;
    int64_t outer, inner, n, c, cr, hw;
    size_t bytes;
    int split = dt_se_split(p, in, &outer, &inner, &bytes);
    dt_fused_se_sizes(p->L, in, &n, &c, &cr, &hw);
    if (!ex->scratch || ex->scratch_bytes < bytes)
        return dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': FusedSqueezeExcite's %zu bytes of scratch are missing",
                       p->L->name, bytes);
    int t = out[0].dtype;
    const void *x = in[DT_FSE_X].data;
    bool pools = p->nhwc && dt_cu_se_pools(t, x, c, cr, hw);   /* one launch: the pool in the kernel */
    if (!pools)
        DT_TRY(dt_cuda_check(dt_cu_reduce_sums(t, x, ex->scratch, outer, hw, inner, split, ex->stream), p->L->op_type));
    return dt_cuda_check(dt_cu_se_scale(t, pools ? x : NULL, ex->scratch, split, n, c, cr, hw, in[DT_FSE_W1].data,
                                        p->has_b1 ? in[DT_FSE_B1].data : NULL, in[DT_FSE_W2].data,
                                        p->has_b2 ? in[DT_FSE_B2].data : NULL, out[0].data, &p->acts, ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_se_kernel = {.prepare = dt_se_prepare, .scratch = dt_se_scratch, .run = dt_se_run};

static ductile_status dt_pool_prepare(const ductile_layer *L, void **out)
{
    dt_cu_pool_params p = {.L = L, .avg = !strcmp(L->op_type, "AveragePool")};
    DT_TRY(dt_pool_attrs_read(L, &p.a));
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* supports() sends 3-D windows to the host; auto_pad can still make count_include_pad's pads
 * asymmetric at some shapes, which the kernel does not count. */
static ductile_status dt_pool_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_pool_params *p = params;
    dt_pool_geom g;
    DT_TRY(dt_pool_geometry_of(&p->a, &in[0], &g));
    bool avg = p->avg;
    if (g.spatial > 2 || (avg && g.count_include_pad && (g.pb[1] != g.pe[1] || g.pb[2] != g.pe[2])))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda pooling kernel takes 1-D and 2-D windows (count_include_pad: symmetric pads)");
    int64_t c = p->a.nhwc ? in[0].dims[3] : in[0].dims[1], planes = in[0].dims[0] * c;
    return dt_cuda_check(dt_cu_pool2d(out[0].dtype, in[0].data, out[0].data, planes, g.in[1], g.in[2], g.out[1], g.out[2],
                                      (int)g.k[1], (int)g.k[2], (int)g.s[1], (int)g.s[2], (int)g.pb[1], (int)g.pb[2],
                                      (int)g.d[1], (int)g.d[2], avg, avg && g.count_include_pad, p->a.nhwc ? c : 0,
                                      ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_pool_kernel = {.prepare = dt_pool_prepare, .run = dt_pool_run};

/* ---- Resize ---- */

static ductile_status dt_resize_prepare(const ductile_layer *L, void **out)
{
    dt_cu_resize_params p;
    memset(&p, 0, sizeof p);
    DT_TRY(dt_resize_layer_read(L, &p.r));
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* The scales or sizes are read at run from the host's values (constants or shape-pass
 * values: ex->host_in); supports() admits only modes and ranks the kernel computes, the
 * rest depends on those values. */
static ductile_status dt_resize_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_resize_params *p = params;
    dt_resize_params rp;
    DT_TRY(dt_resize_params_of(&p->r, ex->host_in, &rp));
    if (in[0].rank != 4 || rp.out[0] != in[0].dims[0] || rp.out[1] != in[0].dims[1] || rp.antialias ||
        (rp.mode != DT_RESIZE_NEAREST && rp.mode != DT_RESIZE_LINEAR) || rp.ctm > DT_CTM_HALF_PIXEL_SYMMETRIC)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda Resize resizes the last two dims of 4-D inputs (nearest, linear)");
    dt_cu_resize_geom g = {
        .planes = in[0].dims[0] * in[0].dims[1], .ih = in[0].dims[2], .iw = in[0].dims[3],
        .oh = out[0].dims[2], .ow = out[0].dims[3], .scale = {rp.scale[2], rp.scale[3]},
        .ctm = rp.ctm, .nearest = rp.nearest, .linear = rp.mode == DT_RESIZE_LINEAR,
        .len = {rp.len[2], rp.len[3]},
    };
    return dt_cuda_check(dt_cu_resize(out[0].dtype, in[0].data, out[0].data, &g, ex->stream), p->r.L->op_type);
}

const dt_kernel dt_cuda_resize_kernel = {.prepare = dt_resize_prepare, .run = dt_resize_run};

/* ---- reductions ---- */

static const struct { const char *op; int code; } dt_reduce_ops[] = {
    {"ReduceSum", DT_CU_RED_SUM}, {"ReduceMean", DT_CU_RED_MEAN}, {"ReduceMax", DT_CU_RED_MAX},
    {"ReduceMin", DT_CU_RED_MIN}, {"ReduceSumSquare", DT_CU_RED_SUMSQ}, {"ReduceL1", DT_CU_RED_L1},
    {"ReduceL2", DT_CU_RED_L2},
};

int dt_cuda_reduce_code(const char *op)
{
    for (size_t i = 0; i < sizeof dt_reduce_ops / sizeof dt_reduce_ops[0]; i++)
        if (!strcmp(dt_reduce_ops[i].op, op)) return dt_reduce_ops[i].code;
    return -1;
}

static ductile_status dt_reduce_prepare(const ductile_layer *L, void **out)
{
    dt_cu_reduce_params p = {.L = L, .code = dt_cuda_reduce_code(L->op_type), .n_in = L->n_in};
    if (p.code < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "the cuda reduce kernel has no code for op '%s'", L->op_type);
    DT_TRY(dt_reduce_attrs_read(L, &p.a));
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* The runs of reduced axes: maximal ranges of reduced dims (dims of 1 between two reduced axes
 * join them). One run is one [outer, n, inner] pass of the kernel; axes that are not
 * contiguous (MeanVarianceNormalization's 0, 2, 3) take one pass per run. */
static int dt_reduce_runs(const bool *red, const dt_view *x, int (*run)[2])
{
    int count = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!red[d]) continue;
        if (count) {
            bool ones = true; /* only dims of 1 since the run's end: it goes on */
            for (int e = run[count - 1][1] + 1; e < d; e++) ones = ones && x->dims[e] == 1;
            if (ones) {
                run[count - 1][1] = d;
                continue;
            }
        }
        run[count][0] = run[count][1] = d;
        count++;
    }
    return count;
}

/* Passes after the first combine partial results: a mean of means over equal counts is the
 * mean, the L1 of L1s and the L2 of L2s are the norm; sums of squares add up. */
static int dt_reduce_next_code(int code)
{
    return code == DT_CU_RED_SUMSQ ? DT_CU_RED_SUM : code;
}

/* The bytes of a view's data (false: too many to count). */
static bool dt_reduce_bytes(const dt_view *v, size_t *out)
{
    int64_t n;
    return dt_dims_product(v->dims, v->rank, &n) && dt_mul_size((size_t)n, ductile_dtype_size((ductile_dtype)v->dtype), out);
}

/* Where the second partial result starts in the scratch: past the first, 64-byte aligned. */
static size_t dt_reduce_half(size_t in_bytes)
{
    return (in_bytes + 63) / 64 * 64;
}

int dt_cuda_reduce_cluster_off(void)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("DUCTILE_CUDA_REDUCE_CLUSTER");
        off = e && !strcmp(e, "0");
    }
    return off;
}

int dt_cuda_reduce_split(int64_t outer, int64_t n, int64_t inner, int sms)
{
    /* Enough outputs for a thread each (dt_cu_reduce's kernel fills the GPU), or short rows. */
    if (outer * inner >= 32768 || n < 32) return 0;
    int64_t blocks = outer * (inner == 1 ? 1 : (inner + 31) / 32), want = 2 * (int64_t)sms;
    if (blocks >= want) return 1;
    int64_t s = (want + blocks - 1) / blocks, most = n / 256;
    if (s > most) s = most;
    if (s > 256) s = 256;
    return s < 2 ? 1 : (int)s;
}

/* The [outer, n, inner] of a single-run reduction (false: axes unknown here, or several runs). */
static bool dt_reduce_one_run(const dt_cu_reduce_params *p, const dt_view *in, int64_t *outer, int64_t *n, int64_t *inner)
{
    bool red[DT_MAX_DIMS], identity = false;
    int run[DT_MAX_DIMS][2];
    if (dt_reduce_axes_of(&p->a, p->n_in, in, red, &identity) || identity || dt_reduce_runs(red, &in[0], run) != 1)
        return false;
    *outer = *n = *inner = 1;
    for (int d = 0; d < in[0].rank; d++) {
        if (d < run[0][0]) *outer *= in[0].dims[d];
        else if (d > run[0][1]) *inner *= in[0].dims[d];
        else *n *= in[0].dims[d];
    }
    return true;
}

/* Scratch: the partial results of every pass but the last, two at a time (ping-pong), each at
 * most the input's size. Axes unknown here (a computed axes input) take the bound too. A
 * single pass: the float slices of dt_cu_reduce_split where it splits. */
static ductile_status dt_reduce_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    (void)out, (void)threads;
    const dt_cu_reduce_params *p = params;
    bool red[DT_MAX_DIMS], identity = false;
    int run[DT_MAX_DIMS][2];
    *bytes = 0;
    int64_t outer, n, inner;
    if (dt_reduce_one_run(p, in, &outer, &n, &inner)) {
        int split = dt_cuda_reduce_split(outer, n, inner, dt_cuda_sm_count());
        if (split > 1) *bytes = (size_t)split * (size_t)(outer * inner) * sizeof(float); /* < 256 * 32768 * 4 */
        return DUCTILE_OK;
    }
    if (!dt_reduce_axes_of(&p->a, p->n_in, in, red, &identity) && (identity || dt_reduce_runs(red, &in[0], run) <= 1))
        return DUCTILE_OK;
    size_t x = 0;
    if (dt_reduce_bytes(&in[0], &x) && x <= SIZE_MAX / 2 - 64) *bytes = 2 * dt_reduce_half(x);
    return DUCTILE_OK;
}

/* Reductions as passes over runs of reduced axes, each one [outer, n, inner] kernel. The axes
 * come from the attribute (read in prepare) or from input 1's value on the host (ex->host_in). */
static ductile_status dt_reduce_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_reduce_params *p = params;
    bool red[DT_MAX_DIMS], identity = false;
    DT_TRY(dt_reduce_axes_of(&p->a, p->n_in, ex->host_in, red, &identity));
    if (identity) {
        dt_cu_layer_params copy = {p->L};
        return dt_cuda_copy_kernel.run(&copy, in, out, ex);
    }
    int run[DT_MAX_DIMS][2];
    int runs = dt_reduce_runs(red, &in[0], run);
    int64_t dims[DT_MAX_DIMS];
    memcpy(dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank);
    size_t elem = ductile_dtype_size(out[0].dtype), in_bytes = 0;
    if (!dt_reduce_bytes(&in[0], &in_bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "input 0 is too large");
    const void *src = in[0].data;
    for (int k = 0; k < runs; k++) {
        int64_t outer = 1, n = 1, inner = 1;
        for (int d = 0; d < in[0].rank; d++) {
            if (d < run[k][0]) outer *= dims[d];
            else if (d > run[k][1]) inner *= dims[d];
            else n *= dims[d];
        }
        if (n == 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda reduction needs a non-empty reduced block");
        void *dst = out[0].data;
        if (k + 1 < runs) {
            size_t at = k % 2 ? dt_reduce_half(in_bytes) : 0, need = (size_t)(outer * inner) * elem;
            if (!ex->scratch || at + need > ex->scratch_bytes)
                return dt_fail(DUCTILE_ERR_INTERNAL, "the cuda reduction's scratch holds %zu bytes, pass %d needs %zu",
                               ex->scratch_bytes, k, at + need);
            dst = (char *)ex->scratch + at;
        }
        int code = k ? dt_reduce_next_code(p->code) : p->code;
        /* Few outputs over long rows: the split kernel, its slices in the scratch (a single
         * pass: dt_reduce_scratch sized them; else unsplit). */
        int split = dt_cuda_reduce_split(outer, n, inner, dt_cuda_sm_count());
        size_t part = split > 1 ? (size_t)split * (size_t)(outer * inner) * sizeof(float) : 0;
        if (split > 1 && (runs != 1 || !ex->scratch || ex->scratch_bytes < part)) split = 1;
        if (split)
            DT_TRY(dt_cuda_check(dt_cu_reduce_split(out[0].dtype, src, dst, outer, n, inner, code, split > 1 ? ex->scratch : NULL,
                                                    split, ex->stream),
                                 p->L->op_type));
        else
            DT_TRY(dt_cuda_check(dt_cu_reduce(out[0].dtype, src, dst, outer, n, inner, code, ex->stream), p->L->op_type));
        for (int d = run[k][0]; d <= run[k][1]; d++) dims[d] = 1;
        src = dst;
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_reduce_kernel = {
    .prepare = dt_reduce_prepare, .scratch = dt_reduce_scratch, .run = dt_reduce_run,
};
