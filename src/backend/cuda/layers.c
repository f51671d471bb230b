/* The CUDA backend's kernel table and its placement rule (dt_cuda_supports): which op types
 * have a kernel here, and which layers of them the kernels take. Every kernel is compiled
 * (layers.h; layers_eltwise.c, layers_shape.c, layers_nn.c, matmul.c, conv.c): the backend
 * has no adapter. Layers the table lacks, or whose dtypes or attributes dt_cuda_supports
 * refuses, run on the host (the runtime's "cpu fallback"). */
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

ductile_status dt_cuda_params_copy(const void *src, size_t bytes, const ductile_layer *L, void **out)
{
    void *p = dt_malloc(bytes ? bytes : 1);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    memcpy(p, src, bytes);
    *out = p;
    return DUCTILE_OK;
}

ductile_status dt_cuda_layer_prepare(const ductile_layer *L, void **out)
{
    dt_cu_layer_params p = {L};
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* ---- the table ---- */

static const struct { const char *op; const dt_kernel *k; } dt_cuda_kernels[] = {
    {"Conv", &dt_cuda_conv_kernel}, {"FusedConv", &dt_cuda_conv_kernel},
    {"MatMul", &dt_cuda_matmul_kernel}, {"Gemm", &dt_cuda_gemm_kernel}, {"FusedMatMul", &dt_cuda_fused_matmul_kernel},
    {"FusedAttention", &dt_cuda_fused_attention_kernel},
    {"Softmax", &dt_cuda_softmax_kernel}, {"LogSoftmax", &dt_cuda_softmax_kernel},
    {"LayerNormalization", &dt_cuda_layernorm_kernel}, {"FusedLayerNorm", &dt_cuda_layernorm_kernel},
    {"GlobalAveragePool", &dt_cuda_gap_kernel}, {"FusedSqueezeExcite", &dt_cuda_se_kernel}, {"MaxPool", &dt_cuda_pool_kernel}, {"AveragePool", &dt_cuda_pool_kernel},
    {"Transpose", &dt_cuda_transpose_kernel}, {"Gather", &dt_cuda_gather_kernel}, {"Concat", &dt_cuda_concat_kernel},
    {"Reshape", &dt_cuda_copy_kernel}, {"Flatten", &dt_cuda_copy_kernel}, {"Squeeze", &dt_cuda_copy_kernel},
    {"Unsqueeze", &dt_cuda_copy_kernel}, {"Expand", &dt_cuda_expand_kernel}, {"Slice", &dt_cuda_slice_kernel},
    {"DepthToSpace", &dt_cuda_d2s_kernel}, {"Resize", &dt_cuda_resize_kernel}, {"Cast", &dt_cuda_cast_kernel},
    {"Where", &dt_cuda_where_kernel}, {"IsNaN", &dt_cuda_isnan_kernel}, {"Not", &dt_cuda_not_kernel},
    {"And", &dt_cuda_logic_kernel}, {"Or", &dt_cuda_logic_kernel}, {"Xor", &dt_cuda_logic_kernel},
};

const dt_kernel *dt_cuda_kernel(const char *op)
{
    if (dt_cuda_binary_code(op) >= 0) return &dt_cuda_binary_kernel;
    if (dt_cuda_unary_code(op) >= 0) return &dt_cuda_unary_kernel;
    if (dt_cuda_reduce_code(op) >= 0) return &dt_cuda_reduce_kernel;
    for (size_t i = 0; i < sizeof dt_cuda_kernels / sizeof dt_cuda_kernels[0]; i++)
        if (!strcmp(dt_cuda_kernels[i].op, op)) return dt_cuda_kernels[i].k;
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
    if (dt_cuda_binary_code(op) >= 0) /* PRelu before opset 7 (slope per channel): the host's */
        return L->n_in == 2 && L->n_out == 1 && dt_one_float(L, in, out) && !(!strcmp(op, "PRelu") && L->opset < 7);
    if (dt_cuda_unary_code(op) >= 0) {
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
    /* A folded DepthToSpace may write float32 from half inputs (its `to`). */
    if (!strcmp(op, "FusedConv") && dt_fused_conv_d2s(L, NULL) && L->n_in > DT_FC_W && L->n_out == 1)
        return in[DT_FC_X].dtype == in[DT_FC_W].dtype &&
               (L->n_in <= DT_FC_B || !L->in[DT_FC_B] || in[DT_FC_B].dtype == in[DT_FC_X].dtype) &&
               (out[0].dtype == in[DT_FC_X].dtype || out[0].dtype == DUCTILE_FLOAT32) && dt_cuda_conv_supports(L);
    if (!strcmp(op, "FusedConv") || !strcmp(op, "Conv")) return dt_one_float(L, in, out) && dt_cuda_conv_supports(L);
    if (!strcmp(op, "Gemm")) return dt_one_float(L, in, out) && dt_cuda_gemm_supports(L);
    if (!strcmp(op, "MatMul") || !strcmp(op, "FusedAttention")) return dt_one_float(L, in, out);
    /* B packed for another backend's kernel: the host's (the CUDA builder packs none). */
    if (!strcmp(op, "FusedMatMul")) return dt_one_float(L, in, out) && dt_attr_int(L, "packed", 0) == 0;
    if (!strcmp(op, "LayerNormalization")) return L->n_out == 1 && L->n_in >= 2 && dt_one_float(L, in, out);
    if (!strcmp(op, "FusedLayerNorm")) {   /* one float type but for the integer ids */
        bool gathers = dt_fused_layernorm_gathers(L);
        if (gathers && !dt_is_index(&in[DT_FLN_IDS])) return false;
        int t = out[0].dtype;
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] && k != DT_FLN_IDS && in[k].dtype != t) return false;
        return L->n_out == 1 && dt_is_kfloat(t);
    }
    if (!strcmp(op, "FusedSqueezeExcite")) {   /* shared memory of (C + Cr) floats */
        if (!dt_one_float(L, in, out) || in[DT_FSE_X].rank != 4 || in[DT_FSE_W1].rank != 4) return false;
        int64_t n, c, cr, hw;
        dt_fused_se_sizes(L, in, &n, &c, &cr, &hw);
        return dt_cu_se_fits(c, cr);
    }
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        /* The kernel's windows are 1-D or 2-D, and AveragePool counting the pads takes
         * symmetric ones (auto_pad's depend on shapes: checked at run). Others: the host. */
        if (L->n_out != 1 || !dt_one_float(L, in, out) || in[0].rank < 3 || in[0].rank > 4) return false;
        if (!strcmp(op, "MaxPool")) return !dt_attr_int(L, "storage_order", 0);
        int64_t n = 0;
        const int64_t *pads = dt_attr_ints(L, "pads", &n);
        if (dt_attr_int(L, "count_include_pad", 0) && pads)
            for (int64_t i = 0; i < n / 2; i++)
                if (pads[i] != pads[i + n / 2]) return false;
        return true;
    }
    if (dt_cuda_reduce_code(op) >= 0) return L->n_out == 1 && dt_is_kfloat(in[0].dtype) && out[0].dtype == in[0].dtype;
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
    if (!strcmp(op, "DepthToSpace")) /* converting too (attribute `to`, the precision pass's) */
        return in[0].rank == 4 && (dt_one_float(L, in, out) || (dt_is_kfloat(in[0].dtype) && dt_is_kfloat(out[0].dtype)));
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
        /* A Transpose that converts (attribute `to`, folded from a Cast by the precision
         * pass): float types, one pass. */
        if (!strcmp(op, "Transpose") && in[0].dtype != out[0].dtype)
            return dt_is_kfloat(in[0].dtype) && dt_is_kfloat(out[0].dtype);
        return true;
    }
    return dt_one_float(L, in, out);
}
