/* The CUDA backend's own convolution kernels (conv_kernels.cu) and the layer code that picks
 * and launches them (conv_own.c): one kernel computes the convolution with its bias, residual
 * and activation, where cuDNN takes a convolution call and an epilogue kernel. NCHW.
 *   depthwise: group == C (any channel multiplier), any kernel, stride, pads, dilation.
 *   implicit GEMM: any conv (groups too), a tiled matrix product per image and group whose
 *              input tile is gathered from x as im2col would lay it out, in two tile sizes
 *              (64x64 for large maps, 32x32 for small ones); pointwise: its variant for 1x1
 *              kernels with stride 1 and no pads, where the columns are x itself. Split K:
 *              both with the K dim cut in slices summed by a second kernel, for grids
 *              that would leave most of the GPU idle (7x7 maps with deep channels).
 *   tensor cores: the implicit GEMM and pointwise kernels (split K too) for float16 /
 *              bfloat16 layers on WMMA fragments (16x16x16, float accumulators), sm_80+.
 * Templated on the element type (float32, float16, bfloat16: every tensor of the layer in one
 * type, as builder/precision.c lowers them) with float32 accumulation and epilogue, rounded
 * once at the store. */
#ifndef DT_CUDA_CONV_OWN_H
#define DT_CUDA_CONV_OWN_H

#include "backend/cuda/cuda.h"
#include "ops/linalg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tactic ids of a conv layer (the `tactic` attribute, dt_exec.tactic): 0 the backend's own
 * choice, DT_CUDA_CONV_CUDNN + a cuDNN forward algorithm, or one of the own kernels. */
enum {
    DT_CUDA_CONV_CUDNN = 1,         /* 1..8: cudnnConvolutionFwdAlgo_t 0..7 */
    DT_CUDA_CONV_DEPTHWISE = 16,
    DT_CUDA_CONV_POINTWISE64 = 17,
    DT_CUDA_CONV_POINTWISE32 = 18,
    DT_CUDA_CONV_IGEMM64 = 19,
    DT_CUDA_CONV_IGEMM32 = 20,
    DT_CUDA_CONV_POINTWISE32_SPLITK = 21,
    DT_CUDA_CONV_IGEMM32_SPLITK = 22,
    /* Tensor cores (WMMA, float16 / bfloat16 layers on sm_80+), 64x64 tiles. */
    DT_CUDA_CONV_TC_POINTWISE = 23,
    DT_CUDA_CONV_TC_IGEMM = 24,
    DT_CUDA_CONV_TC_POINTWISE_SPLITK = 25,
    DT_CUDA_CONV_TC_IGEMM_SPLITK = 26,
};

/* What the own kernels read: geometry (2-D; 1-D convs have a unit first dim) and epilogue. */
typedef struct dt_cu_conv {
    int64_t n, c, m, ih, iw, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, group;
    int act;
    float p0, p1;
} dt_cu_conv;

/* dtype: a ductile_dtype (FLOAT32, FLOAT16 or BFLOAT16) of x, w, bias, res and y alike; each
 * returns a cudaError_t (0: queued). */
int dt_cu_conv_depthwise(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                         const dt_cu_conv *g, void *stream);
/* tile: 64 or 32, or 0 for the tensor-core kernel (float16 / bfloat16 only, sm_80+);
 * pointwise: the 1x1 / stride 1 / no pads variant. part (NULL: no split):
 * split * n * m * oh * ow floats (float32 whatever dtype is) where the K dim is summed in
 * `split` slices by separate blocks, then added with the epilogue by a second kernel. */
int dt_cu_conv_igemm(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                     const dt_cu_conv *g, int tile, int pointwise, float *part, int split, void *stream);

/* Whether own kernel `tactic` computes this geometry with tensors of `dtype` (a ductile_dtype:
 * float32, float16 or bfloat16). */
bool dt_cuda_conv_own_applies(const dt_conv_geom *g, int dtype, int tactic);
/* Runs the layer with own kernel `tactic` (one that applies). */
ductile_status dt_cuda_conv_own_run(const ductile_layer *L, const dt_conv_geom *g, int tactic, const dt_view *in,
                                    dt_view *out, dt_exec *ex);
/* The activation code of a FusedConv (DT_CU_IDENTITY for Conv) and its parameters. */
int dt_cuda_conv_act(const ductile_layer *L, float *p0, float *p1);
/* dt_backend.kernel_path (tactics.c): which kernel a Conv / FusedConv runs at these shapes
 * for the profile ("own_dw_f16", "own_igemm32_splitk_f32", "cudnn_algo1", "cudnn_heuristic");
 * NULL for other ops. */
const char *dt_cuda_kernel_path(const ductile_layer *L, const void *params, const dt_view *in, const dt_view *out,
                                int profile, int threads);

#ifdef __cplusplus
}
#endif

#endif
