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
 *   depthwise NHWC: the depthwise kernel over channels-last X, Y and R (neighbouring threads
 *              take neighbouring channels) and KRSC weights, for layout "NHWC" layers.
 *   tiled depthwise: channel multiplier 1, both layouts: a block stages an input tile (with
 *              its halo and pads) and its channels' weights in shared memory and computes an
 *              output tile from it (NCHW: 32 x 32 of one channel; NHWC: 8 x 8 pixels of up to
 *              64 channels, 16-byte loads along C), several outputs per thread, the epilogue
 *              in the store. Where the staged tile fits 32 KiB (very large dilations do not).
 *   1x1 on mma.sync (conv_pw_mma.cu): channels last, half types, sm_90; the product with its
 *              epilogue in one kernel, split over a cluster's blocks for small grids.
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
 * choice, DT_CUDA_CONV_CUDNN + a cuDNN forward algorithm, the same algorithm in its plain form
 * (DT_CUDA_CONV_CUDNN_PLAIN + algorithm: the convolution, then the epilogue kernel, where the
 * first form takes cuDNN's conv-bias-activation), or one of the own kernels. */
enum {
    DT_CUDA_CONV_CUDNN = 1,         /* 1..8: cudnnConvolutionFwdAlgo_t 0..7 */
    DT_CUDA_CONV_CUDNN_PLAIN = 9,   /* 9..15: algorithms 0..6 (7, WINOGRAD_NONFUSED, is never timed) */
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
    /* The depthwise kernel on channels-last tensors (FusedConv layout "NHWC"; the only own
     * kernel such a layer runs, the others being channels first). */
    DT_CUDA_CONV_DEPTHWISE_NHWC = 27,
    /* Not an own kernel: a channels-last 1x1 conv (stride 1, no pads, one group) is the
     * product Y[N*H*W, M] = X[N*H*W, C] W[M, C]^T, run on cuBLASLt (conv.c), the epilogue by
     * the epilogue kernel. */
    DT_CUDA_CONV_LT_NHWC = 28,
    /* The tiled depthwise kernels (channel multiplier 1), channels first and channels last. */
    DT_CUDA_CONV_DW_TILED = 29,
    DT_CUDA_CONV_DW_TILED_NHWC = 30,
    /* The channels-last tensor-core implicit GEMM (conv_tc_nhwc.h), one id per tile:
     * DT_CUDA_CONV_TC_NHWC + DT_CU_TC_NHWC_256x64 .. _64x32. */
    DT_CUDA_CONV_TC_NHWC = 31,
    /* The channels-last direct kernel for few input channels (conv_smallc_nhwc.cu). */
    DT_CUDA_CONV_SMALLC_NHWC = 37,
    /* The same layers on tensor cores where K = C * KH * KW <= 64 (conv_smallc_mma.cu). */
    DT_CUDA_CONV_SMALLC_MMA = 38,
    /* The channels-last 1x1 conv on mma.sync (conv_pw_mma.cu; float16 / bfloat16, sm_90):
     * 64 x 64 or 32 x 32 tiles (pixels x output channels), and the same with the channels
     * summed in slices by the blocks of a thread-block cluster (where the grid would leave
     * the GPU idle). 39 is unused. */
    DT_CUDA_CONV_PW_MMA64 = 40,
    DT_CUDA_CONV_PW_MMA32 = 41,
    DT_CUDA_CONV_PW_MMA64_SPLITK = 42,
    DT_CUDA_CONV_PW_MMA32_SPLITK = 43,
    DT_CUDA_CONV_PW_MMA128 = 44,    /* 128 x 64 tiles, for large maps and batches */
    /* The channels-last implicit GEMM whose block stages its whole input patch and weights
     * once (conv_patch_mma.cu; C % 16 == 0). */
    DT_CUDA_CONV_PATCH_MMA = 45,
    DT_CUDA_CONV_LAST = 45,         /* the largest own id */
};

/* A cuDNN tactic (either form); its algorithm; whether it is the plain form. */
#define DT_CUDA_CONV_IS_CUDNN(t) ((t) >= DT_CUDA_CONV_CUDNN && (t) < DT_CUDA_CONV_CUDNN_PLAIN + 7)
#define DT_CUDA_CONV_CUDNN_ALGO(t) ((t) >= DT_CUDA_CONV_CUDNN_PLAIN ? (t) - DT_CUDA_CONV_CUDNN_PLAIN : (t) - DT_CUDA_CONV_CUDNN)
#define DT_CUDA_CONV_CUDNN_IS_PLAIN(t) ((t) >= DT_CUDA_CONV_CUDNN_PLAIN && (t) < DT_CUDA_CONV_CUDNN_PLAIN + 7)

/* The channels-last tensor-core implicit GEMM's tactics. */
#define DT_CUDA_CONV_IS_TC_NHWC(t) ((t) >= DT_CUDA_CONV_TC_NHWC && (t) < DT_CUDA_CONV_SMALLC_NHWC)
/* The own kernels a channels-last (layout "NHWC") layer runs; the others are channels first. */
#define DT_CUDA_CONV_IS_PW_MMA(t) ((t) >= DT_CUDA_CONV_PW_MMA64 && (t) <= DT_CUDA_CONV_PW_MMA128)
#define DT_CUDA_CONV_IS_NHWC(t) \
    ((t) == DT_CUDA_CONV_DEPTHWISE_NHWC || (t) == DT_CUDA_CONV_LT_NHWC || (t) == DT_CUDA_CONV_DW_TILED_NHWC || \
     DT_CUDA_CONV_IS_TC_NHWC(t) || (t) == DT_CUDA_CONV_SMALLC_NHWC || (t) == DT_CUDA_CONV_SMALLC_MMA || \
     DT_CUDA_CONV_IS_PW_MMA(t) || (t) == DT_CUDA_CONV_PATCH_MMA)

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
/* The same over NHWC x, y, res and w [m, kh, kw, 1]. */
int dt_cu_conv_depthwise_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                              const dt_cu_conv *g, void *stream);
/* The tiled depthwise kernel (nhwc: channels-last x, y, res and w [m, kh, kw, 1]); applies:
 * whether it computes this geometry (channel multiplier 1, a tile that fits). */
int dt_cu_conv_dw_tiled(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                        const dt_cu_conv *g, int nhwc, void *stream);
bool dt_cu_conv_dw_tiled_applies(const dt_cu_conv *g, int nhwc);
/* The channels-last 1x1 conv on mma.sync: x, y, res NHWC, w [m, 1, 1, c], float16 or
 * bfloat16; tile 64 or 32 (square), 128 (128 pixels x 64 channels); split 1 (no split) to 8: the channels summed in `split` slices by
 * the blocks of a cluster (no scratch). applies: 1x1, any stride, no pads, one group, C a
 * multiple of 8 (16-byte chunks), M even (pairs stored), every tensor under 2^31 elements.
 * split: the slices for a tile on `sms` multiprocessors (1: no split: the grid fills the GPU,
 * or C is too short to cut). */
int dt_cu_conv_pw_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                   const dt_cu_conv *g, int tile, int split, void *stream);
bool dt_cu_conv_pw_mma_applies(const dt_cu_conv *g);
int dt_cu_conv_pw_mma_split(const dt_cu_conv *g, int tile, int sms);
/* tile: 64 or 32, or 0 for the tensor-core kernel (float16 / bfloat16 only, sm_80+);
 * pointwise: the 1x1 / stride 1 / no pads variant. part (NULL: no split):
 * split * n * m * oh * ow floats (float32 whatever dtype is) where the K dim is summed in
 * `split` slices by separate blocks, then added with the epilogue by a second kernel. */
int dt_cu_conv_igemm(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                     const dt_cu_conv *g, int tile, int pointwise, float *part, int split, void *stream);

/* The epilogue a conv layer computes after the convolution: bias and residual (NULL: none,
 * pointers of the run's views), activation (DT_CU_IDENTITY, _RELU, _SIGMOID, _CLIP,
 * _HARDSIGMOID, _HARDSWISH) and its parameters (Clip: min, max; the hard ones: alpha, beta).
 * What prepare read from the layer (conv.c), for cuDNN's conv-bias-activation, the epilogue
 * kernel and the own kernels alike. */
typedef struct dt_cu_conv_epi {
    const void *bias, *res;
    int act;
    float p0, p1;
} dt_cu_conv_epi;

/* Whether own kernel `tactic` computes this geometry with tensors of `dtype` (a ductile_dtype:
 * float32, float16 or bfloat16) on this GPU. */
bool dt_cuda_conv_own_applies(const dt_conv_geom *g, int dtype, int tactic);
/* What the kernels read of a geometry and an epilogue (NULL: none). */
dt_cu_conv dt_cu_conv_of(const dt_conv_geom *g, const dt_cu_conv_epi *e);
/* The K slices of a split-K tactic whose blocks are tile x tile (32; the tensor-core ones 64)
 * on a GPU of `sms` multiprocessors: enough for two blocks per multiprocessor, each slice at
 * least 64 deep; 1: no split (the grid fills the GPU, or sms is 0: no GPU). */
int dt_cuda_conv_splitk(const dt_conv_geom *g, int tile, int sms);
/* The channel slices a 1x1 mma split tactic takes at this geometry on this GPU (1: none; the
 * other tactics: 1). */
int dt_cuda_conv_pw_mma_split(const dt_conv_geom *g, int tactic);
/* The float32 partial sums of `split` slices (split * n * m * oh * ow floats) in bytes;
 * DUCTILE_ERR_SHAPE naming the sizes when they overflow size_t. */
ductile_status dt_cuda_conv_split_bytes(const dt_conv_geom *g, int split, size_t *bytes);
/* The scratch the own kernels need at this geometry: the most any split-K tactic that
 * applies here needs (the stored tactic is the profile's, the builder's timing runs each). */
size_t dt_cuda_conv_own_scratch(const dt_conv_geom *g, int dtype);
/* Runs own kernel `tactic` (one that applies) with the epilogue e; the split-K tactics keep
 * their partial sums in ex->scratch (dt_cuda_conv_own_scratch's bytes). */
ductile_status dt_cuda_conv_own_run(const dt_conv_geom *g, int tactic, const dt_cu_conv_epi *e, const dt_view *in,
                                    dt_view *out, dt_exec *ex);
/* FusedConv with a folded DepthToSpace (depth_to_space = r, mode CRD or DCR) on the staged-patch
 * kernel: out[0] [N, M / r^2, OH r, OW r] in X's type or float32. */
ductile_status dt_cuda_conv_d2s_run(const dt_conv_geom *g, const dt_cu_conv_epi *e, int r, bool crd, const dt_view *in,
                                    dt_view *out, dt_exec *ex);
/* dt_backend.writes_d2s: whether FusedConv F (channels last, half) writes the DepthToSpace D that
 * alone reads its output (builder/fuse_d2s.c): the staged-patch kernel at M <= 16 (a multiple of
 * r^2), no residual or scale input, one group, C % 16 == 0, the patch within its shared memory. */
bool dt_cuda_writes_d2s(const ductile_layer *F, const ductile_layer *D);
/* dt_backend.kernel_path (tactics.c): which kernel a Conv / FusedConv runs at these shapes
 * for the profile and shape point ("own_dw_f16", "own_igemm32_splitk_f32", "cudnn_algo1",
 * "cudnn_heuristic"), from its compiled params; NULL for other ops. */
const char *dt_cuda_kernel_path(const ductile_layer *L, const void *params, const dt_view *in, const dt_view *out,
                                int profile, int point, int threads);

#ifdef __cplusplus
}
#endif

#endif
