/* The CUDA backend's tactics (dt_backend.tactics): what the builder times per layer at each
 * profile's min, opt and max shapes (a run finds the choice for its profile and shape point
 * in its compiled params: dt_cuda_params_tactic).
 *   Conv, FusedConv: cuDNN's forward algorithms (an algorithm that does not apply at those
 *     shapes fails with DUCTILE_ERR_UNSUPPORTED and the builder skips it; for half data each
 *     algorithm that computes the bias and activation in the call also in its plain form,
 *     the convolution then the epilogue kernel) and the own
 *     kernels that compute the geometry (conv_own.h), in float32, float16 and bfloat16 alike,
 *     and for half layers on sm_80+ the tensor-core ones (channels-last layers: cuDNN's
 *     algorithms, the NHWC depthwise kernels (generic and tiled), and cuBLASLt for 1x1 convs, which are one product): a half layer times the own half
 *     kernels against cuDNN's tensor-core algorithms and keeps the fastest at each point. Not WINOGRAD_NONFUSED: its float32
 *     error (rel-L2 2e-4 on superres, measured) breaks the 1e-4 bound against the CPU. Nor
 *     FFT, FFT_TILING, WINOGRAD unless DUCTILE_CUDA_CONV_MIXING=1 (dt_cudnn_algo_allowed:
 *     a NaN or an infinity spreads over their planes and tiles).
 *   MatMul, Gemm, FusedMatMul: the first DT_CUDA_LT_TACTICS candidates of cuBLASLt's heuristic;
 *     for a FusedMatMul with norm = 1 also the own product-and-LayerNorm kernel's forms
 *     (gemm_norm.cu: 16 or 32 whole rows a block, K split or not) where they apply.
 *   FusedAttention: the WMMA and mma.sync tensor-core kernels and the CUDA-core one, where
 *     the first two apply (half, head dims multiples of 16 up to 128).
 * And what a profile calls the conv kernel that ran (dt_cuda_kernel_path, from the layer's
 * compiled params). */
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/layers.h"
#include "ops/fused.h"

#include <cudnn.h>

#include <stdlib.h>
#include <string.h>

static int dt_conv_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    dt_conv_geom g;
    if (L->n_in < 2 || dt_fused_conv_geometry(L, &in[DT_FC_X], &in[DT_FC_W], &g)) return 0;
    int n = 0;
    /* A folded DepthToSpace: only the kernel that writes it (nothing to time). */
    if (!strcmp(L->op_type, "FusedConv") && dt_fused_conv_d2s(L, NULL)) return 0;
    bool nhwc = dt_fused_conv_nhwc(L);  /* own kernels are channels first */
    /* The pointwise kernels compute what the general implicit GEMM would, faster. */
    static const int own[] = {DT_CUDA_CONV_DEPTHWISE, DT_CUDA_CONV_DW_TILED, DT_CUDA_CONV_POINTWISE64, DT_CUDA_CONV_POINTWISE32,
                              DT_CUDA_CONV_POINTWISE32_SPLITK, DT_CUDA_CONV_IGEMM64, DT_CUDA_CONV_IGEMM32,
                              DT_CUDA_CONV_IGEMM32_SPLITK, DT_CUDA_CONV_TC_POINTWISE,
                              DT_CUDA_CONV_TC_POINTWISE_SPLITK, DT_CUDA_CONV_TC_IGEMM, DT_CUDA_CONV_TC_IGEMM_SPLITK};
    bool pointwise = dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, DT_CUDA_CONV_POINTWISE64);
    if (nhwc && n < cap && dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, DT_CUDA_CONV_DEPTHWISE_NHWC))
        ids[n++] = DT_CUDA_CONV_DEPTHWISE_NHWC;
    if (nhwc && n < cap && dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, DT_CUDA_CONV_DW_TILED_NHWC))
        ids[n++] = DT_CUDA_CONV_DW_TILED_NHWC;
    if (nhwc && n < cap && dt_cuda_conv_lt_applies(&g)) ids[n++] = DT_CUDA_CONV_LT_NHWC;
    /* The 1x1 kernel on mma.sync (its split tactics where they split). */
    static const int mma[] = {DT_CUDA_CONV_PW_MMA128, DT_CUDA_CONV_PW_MMA64, DT_CUDA_CONV_PW_MMA32,
                              DT_CUDA_CONV_PW_MMA64_SPLITK, DT_CUDA_CONV_PW_MMA32_SPLITK};
    for (size_t i = 0; nhwc && i < sizeof mma / sizeof mma[0] && n < cap; i++) {
        bool split = mma[i] == DT_CUDA_CONV_PW_MMA64_SPLITK || mma[i] == DT_CUDA_CONV_PW_MMA32_SPLITK;
        if (dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, mma[i]) && (!split || dt_cuda_conv_pw_mma_split(&g, mma[i]) > 1))
            ids[n++] = mma[i];
    }
    /* The tensor-core implicit GEMM's tiles, the few-channel kernel and its tensor-core form
     * (conv_tc_nhwc.h), timed with the rest unless DUCTILE_CUDA_CONV_TC=0 (all of them) or
     * DUCTILE_CUDA_SMALLC_MMA=0 (the last); DUCTILE_CUDA_CONV forcing one still works, for
     * their tests. */
    for (int t = DT_CUDA_CONV_TC_NHWC; nhwc && dt_cuda_conv_tc_enabled() && t <= DT_CUDA_CONV_SMALLC_MMA && n < cap; t++)
        if (dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, t) &&
            (t == DT_CUDA_CONV_SMALLC_NHWC || (t == DT_CUDA_CONV_SMALLC_MMA && dt_cuda_smallc_mma_enabled()) ||
             (DT_CUDA_CONV_IS_TC_NHWC(t) && dt_cuda_conv_tc_nhwc_offered(&g, t - DT_CUDA_CONV_TC_NHWC))))
            ids[n++] = t;
    /* The staged-patch kernel (conv_patch_mma.cu), timed unless DUCTILE_CUDA_PATCH_MMA=0. */
    if (nhwc && n < cap && dt_cuda_conv_tc_enabled() && dt_cuda_patch_mma_enabled() &&
        dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, DT_CUDA_CONV_PATCH_MMA))
        ids[n++] = DT_CUDA_CONV_PATCH_MMA;
    for (size_t i = 0; !nhwc && i < sizeof own / sizeof own[0] && n < cap; i++)
        if (dt_cuda_conv_own_applies(&g, in[DT_FC_X].dtype, own[i]) &&
            !(pointwise && (own[i] == DT_CUDA_CONV_IGEMM64 || own[i] == DT_CUDA_CONV_IGEMM32 ||
                            own[i] == DT_CUDA_CONV_IGEMM32_SPLITK || own[i] == DT_CUDA_CONV_TC_IGEMM ||
                            own[i] == DT_CUDA_CONV_TC_IGEMM_SPLITK)))
            ids[n++] = own[i];
    /* DIRECT has no implementation in cuDNN; FFT needs unit strides and dilations. */
    static const cudnnConvolutionFwdAlgo_t algos[] = {
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
    };
    bool unit = g.s[0] == 1 && g.s[1] == 1 && g.d[0] == 1 && g.d[1] == 1;
    for (size_t i = 0; i < sizeof algos / sizeof algos[0] && n < cap; i++) {
        bool fft = algos[i] == CUDNN_CONVOLUTION_FWD_ALGO_FFT || algos[i] == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING;
        bool wino = algos[i] == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD;
        if ((fft || wino) && (!unit || g.group != 1)) continue;
        if (!dt_cudnn_algo_allowed((int)algos[i])) continue;
        ids[n++] = DT_CUDA_CONV_CUDNN + (int)algos[i];
        /* Half data: the plain form too where the first is conv-bias-activation (neither wins
         * everywhere: seg_lraspp FP16 at 1600x1600 was 4% slower with every conv fused). */
        if (in[DT_FC_X].dtype != DUCTILE_FLOAT32 && n < cap && dt_cuda_conv_fuses_cudnn(L, in[DT_FC_X].dtype, (int)algos[i]))
            ids[n++] = DT_CUDA_CONV_CUDNN_PLAIN + (int)algos[i];
    }
    return n;
}

int dt_cuda_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (!strcmp(L->op_type, "Conv") || !strcmp(L->op_type, "FusedConv")) return dt_conv_tactics(L, in, ids, cap);
    if (!strcmp(L->op_type, "FusedAttention")) {
        /* The kernels where the tensor-core ones apply (half, head dims of 16s to 128; the
         * split-key one to 64). */
        dt_fa_attrs a;
        dt_fa_geom g;
        dt_fused_attention_attrs(L, &a);
        if (L->n_in < 3 || in[DT_FA_Q].rank < 2) return 0;
        dt_fused_attention_geometry(&a, in, &g);
        if (cap < 3 || !dt_cu_attention_tc(in[DT_FA_Q].dtype, g.D, g.Dv)) return 0;
        ids[0] = DT_CUDA_ATTENTION_TC;
        ids[1] = DT_CUDA_ATTENTION_CORES;
        ids[2] = DT_CUDA_ATTENTION_MMA;
        if (cap < 4 || !dt_cu_attention_split_applies(in[DT_FA_Q].dtype, g.D, g.Dv)) return 3;
        ids[3] = DT_CUDA_ATTENTION_MMA_SPLIT;
        return 4;
    }
    if (!strcmp(L->op_type, "MatMul") || !strcmp(L->op_type, "Gemm") || !strcmp(L->op_type, "FusedMatMul")) {
        int n = 0;
        for (int r = 1; r <= DT_CUDA_LT_TACTICS && n < cap; r++) ids[n++] = r;
        /* FusedMatMul norm = 1: the own product-and-LayerNorm kernel's forms that apply (a
         * split form only where it splits), timed only when DUCTILE_CUDA_GEMM_NORM=1 asks: on
         * the H200 (session 18) it lost to cuBLASLt + LayerNorm at every bert_small shape
         * (docs/DESIGN.md), and its four forms made the FP16 build 0.7 -> 1.1 s. */
        const char *own = getenv("DUCTILE_CUDA_GEMM_NORM");
        dt_matmul_geom g;
        if (strcmp(L->op_type, "FusedMatMul") || !dt_attr_int(L, "norm", 0) || L->n_in < 2 || !own ||
            strcmp(own, "1") || dt_matmul_geometry(&in[DT_FM_A], &in[DT_FM_B], &g))
            return n;
        for (int t = DT_CUDA_MM_NORM16; t <= DT_CUDA_MM_NORM32_SPLITK && n < cap; t++) {
            int rows, split;
            bool splits = t == DT_CUDA_MM_NORM16_SPLITK || t == DT_CUDA_MM_NORM32_SPLITK;
            if (dt_cuda_mm_norm_choice(t, in[DT_FM_A].dtype, g.batch_count * g.M, g.N, g.K, &rows, &split) &&
                (!splits || split > 1))
                ids[n++] = t;
        }
        return n;
    }
    return 0;
}

/* The own kernels' profile names, per dtype (f32, f16, bf16). */
static const char *const dt_own_names[DT_CUDA_CONV_SMALLC_MMA - DT_CUDA_CONV_DEPTHWISE + 1][3] = {
    {"own_dw_f32", "own_dw_f16", "own_dw_bf16"},
    {"own_pw64_f32", "own_pw64_f16", "own_pw64_bf16"},
    {"own_pw32_f32", "own_pw32_f16", "own_pw32_bf16"},
    {"own_igemm64_f32", "own_igemm64_f16", "own_igemm64_bf16"},
    {"own_igemm32_f32", "own_igemm32_f16", "own_igemm32_bf16"},
    {"own_pw32_splitk_f32", "own_pw32_splitk_f16", "own_pw32_splitk_bf16"},
    {"own_igemm32_splitk_f32", "own_igemm32_splitk_f16", "own_igemm32_splitk_bf16"},
    {"own_tc_pw_f32", "own_tc_pw_f16", "own_tc_pw_bf16"}, /* f32: never applies */
    {"own_tc_igemm_f32", "own_tc_igemm_f16", "own_tc_igemm_bf16"},
    {"own_tc_pw_splitk_f32", "own_tc_pw_splitk_f16", "own_tc_pw_splitk_bf16"},
    {"own_tc_igemm_splitk_f32", "own_tc_igemm_splitk_f16", "own_tc_igemm_splitk_bf16"},
    {"own_dw_nhwc_f32", "own_dw_nhwc_f16", "own_dw_nhwc_bf16"},
    {"cublaslt_nhwc_f32", "cublaslt_nhwc_f16", "cublaslt_nhwc_bf16"},
    {"own_dw_tiled_f32", "own_dw_tiled_f16", "own_dw_tiled_bf16"},
    {"own_dw_tiled_nhwc_f32", "own_dw_tiled_nhwc_f16", "own_dw_tiled_nhwc_bf16"},
    /* f32: never applies */
    {"own_tc_nhwc_256x64_f32", "own_tc_nhwc_256x64_f16", "own_tc_nhwc_256x64_bf16"},
    {"own_tc_nhwc_128x128_f32", "own_tc_nhwc_128x128_f16", "own_tc_nhwc_128x128_bf16"},
    {"own_tc_nhwc_128x64_f32", "own_tc_nhwc_128x64_f16", "own_tc_nhwc_128x64_bf16"},
    {"own_tc_nhwc_64x64_f32", "own_tc_nhwc_64x64_f16", "own_tc_nhwc_64x64_bf16"},
    {"own_tc_nhwc_128x32_f32", "own_tc_nhwc_128x32_f16", "own_tc_nhwc_128x32_bf16"},
    {"own_tc_nhwc_64x32_f32", "own_tc_nhwc_64x32_f16", "own_tc_nhwc_64x32_bf16"},
    {"own_smallc_nhwc_f32", "own_smallc_nhwc_f16", "own_smallc_nhwc_bf16"},
    {"own_smallc_mma_nhwc_f32", "own_smallc_mma_nhwc_f16", "own_smallc_mma_nhwc_bf16"},
};
/* DT_CUDA_CONV_PW_MMA64.. (half only: f32 never applies). */
static const char *const dt_pw_mma_names[5][3] = {
    {"own_pw_mma64_nhwc_f32", "own_pw_mma64_nhwc_f16", "own_pw_mma64_nhwc_bf16"},
    {"own_pw_mma32_nhwc_f32", "own_pw_mma32_nhwc_f16", "own_pw_mma32_nhwc_bf16"},
    {"own_pw_mma64_splitk_nhwc_f32", "own_pw_mma64_splitk_nhwc_f16", "own_pw_mma64_splitk_nhwc_bf16"},
    {"own_pw_mma32_splitk_nhwc_f32", "own_pw_mma32_splitk_nhwc_f16", "own_pw_mma32_splitk_nhwc_bf16"},
    {"own_pw_mma128_nhwc_f32", "own_pw_mma128_nhwc_f16", "own_pw_mma128_nhwc_bf16"},
};
static const char *const dt_cudnn_names[2][8] = {
    {"cudnn_algo0", "cudnn_algo1", "cudnn_algo2", "cudnn_algo3", "cudnn_algo4", "cudnn_algo5", "cudnn_algo6", "cudnn_algo7"},
    {"cudnn_nhwc_algo0", "cudnn_nhwc_algo1", "cudnn_nhwc_algo2", "cudnn_nhwc_algo3", "cudnn_nhwc_algo4",
     "cudnn_nhwc_algo5", "cudnn_nhwc_algo6", "cudnn_nhwc_algo7"}};

static const char *const dt_cudnn_plain_names[2][7] = {
    {"cudnn_algo0_plain", "cudnn_algo1_plain", "cudnn_algo2_plain", "cudnn_algo3_plain", "cudnn_algo4_plain",
     "cudnn_algo5_plain", "cudnn_algo6_plain"},
    {"cudnn_nhwc_algo0_plain", "cudnn_nhwc_algo1_plain", "cudnn_nhwc_algo2_plain", "cudnn_nhwc_algo3_plain",
     "cudnn_nhwc_algo4_plain", "cudnn_nhwc_algo5_plain", "cudnn_nhwc_algo6_plain"}};

const char *dt_cuda_kernel_path(const ductile_layer *L, const void *params, const dt_view *in, const dt_view *out,
                                int profile, int point, int threads)
{
    (void)threads;
    if (params && !strcmp(L->op_type, "FusedAttention") && L->n_in >= 3)
    {
        int k = dt_cuda_attention_kernel(params, in, out[0].dtype, &(dt_exec){.profile = profile, .point = point});
        return k == DT_CUDA_ATTENTION_CORES       ? "cuda_cores"
               : k == DT_CUDA_ATTENTION_MMA       ? "mma"
               : k == DT_CUDA_ATTENTION_MMA_SPLIT ? "mma_split"
                                                  : "tensor_cores";
    }
    if (params && !strcmp(L->op_type, "FusedMatMul") && L->n_in >= 2) {
        const dt_cu_matmul_params *p = params;
        dt_matmul_geom g;
        if (!p->norm || dt_matmul_geometry(&in[DT_FM_A], &in[DT_FM_B], &g)) return NULL;
        int rows, split, t = p->forced ? p->forced
                                       : dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points,
                                                               &(dt_exec){.profile = profile, .point = point});
        if (!dt_cuda_mm_norm_choice(t, out[0].dtype, g.batch_count * g.M, g.N, g.K, &rows, &split))
            return "cublaslt_layernorm";
        return rows == 16 ? (split > 1 ? "own_gemm_norm16_splitk" : "own_gemm_norm16")
                          : (split > 1 ? "own_gemm_norm32_splitk" : "own_gemm_norm32");
    }
    if (!params || (strcmp(L->op_type, "Conv") && strcmp(L->op_type, "FusedConv"))) return NULL;
    const dt_cu_conv_params *p = params;
    dt_conv_geom g;
    if (L->n_in < 2 || dt_cuda_conv_geometry(p, in, &g)) return NULL;
    /* conv.c's choice (dt_cuda_conv_choose). A stored cuDNN algorithm that cuDNN refuses at
     * these shapes falls back to the heuristic, which this name cannot tell (it names the
     * stored one). */
    int dtype = in[DT_FC_X].dtype, di = dtype == DUCTILE_FLOAT16 ? 1 : dtype == DUCTILE_BFLOAT16 ? 2 : 0;
    int tactic = dt_cuda_conv_choose(p, &g, dtype, &(dt_exec){.profile = profile, .point = point});
    if (tactic >= DT_CUDA_CONV_DEPTHWISE && tactic <= DT_CUDA_CONV_SMALLC_MMA)
        return dt_own_names[tactic - DT_CUDA_CONV_DEPTHWISE][di];
    if (DT_CUDA_CONV_IS_PW_MMA(tactic)) return dt_pw_mma_names[tactic - DT_CUDA_CONV_PW_MMA64][di];
    if (tactic == DT_CUDA_CONV_PATCH_MMA)
        return (const char *const[]){"own_patch_mma_nhwc_f32", "own_patch_mma_nhwc_f16", "own_patch_mma_nhwc_bf16"}[di];
    if (DT_CUDA_CONV_CUDNN_IS_PLAIN(tactic)) return dt_cudnn_plain_names[p->nhwc][tactic - DT_CUDA_CONV_CUDNN_PLAIN];
    if (tactic >= DT_CUDA_CONV_CUDNN && tactic < DT_CUDA_CONV_CUDNN + 8)
        return dt_cudnn_names[p->nhwc][tactic - DT_CUDA_CONV_CUDNN];
    return p->nhwc ? "cudnn_nhwc_heuristic" : "cudnn_heuristic";
}
