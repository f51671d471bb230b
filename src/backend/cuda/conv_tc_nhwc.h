/* The channels-last tensor-core convolution (conv_tc_nhwc.cu: the kernel; conv_tc_nhwc_choice.c:
 * which geometries it takes, the tile for a forced run). Float16 / bfloat16 layers of layout
 * "NHWC" on sm_80+: X [N, IH, IW, C] with C % 8 == 0, W [M, KH, KW, C], one group, any kernel,
 * stride, pads (the begins: cuDNN's symmetric ones) and dilation; bias, residual and activation
 * fused. Tactics DT_CUDA_CONV_TC_NHWC + tile (conv_own.h), which the builder times against cuDNN's
 * NHWC algorithms and cuBLASLt. And the direct kernel for layers with C < 8 (below).
 * DUCTILE_CUDA_CONV=tc_nhwc (the tile for the shapes), or tc_nhwc_256x64 / _128x128 / _128x64 /
 * _64x64 / _128x32 / _64x32 (that tile), read when a layer is compiled, forces it wherever it
 * applies: the tests' way to check each tile. */
#ifndef DT_CUDA_CONV_TC_NHWC_H
#define DT_CUDA_CONV_TC_NHWC_H

#include "backend/cuda/conv_own.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Block tiles (output pixels x output channels), K slices of 32 channels, 4 stages. */
enum {
    DT_CU_TC_NHWC_256x64,  /* 8 warps of 64 x 32: large maps of up to 64 channels */
    DT_CU_TC_NHWC_128x128, /* 4 warps of 64 x 64 */
    DT_CU_TC_NHWC_128x64,  /* 4 warps of 64 x 32 */
    DT_CU_TC_NHWC_64x64,   /* 4 warps of 32 x 32 */
    DT_CU_TC_NHWC_128x32,  /* 4 warps of 32 x 32: output channels <= 32 */
    DT_CU_TC_NHWC_64x32,   /* 2 warps of 32 x 32: small maps */
    DT_CU_TC_NHWC_TILES
};

/* Queues the convolution with tile `tile` (DT_CU_TC_NHWC_*) on `stream`; dtype FLOAT16 or
 * BFLOAT16. A cudaError_t: cudaErrorMisalignedAddress where x or w is not 16-byte aligned or
 * y, res not 4-byte aligned. */
int dt_cu_conv_tc_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                       const dt_cu_conv *g, int tile, void *stream);

/* Whether the kernel computes this geometry (any tile: the grid and 32-bit indices fit). */
bool dt_cuda_conv_tc_nhwc_applies(const dt_conv_geom *g);

/* The direct kernel for few input channels (conv_smallc_nhwc.cu, tactic
 * DT_CUDA_CONV_SMALLC_NHWC), float16 / bfloat16 on any GPU: where C < 8, a kernel row's KW * C
 * inputs fit DT_CU_SMALLC_ROW registers and a block's weights (K = C * KH * KW by
 * DT_CU_SMALLC_CHANNELS output channels, as float) 48 KiB of shared memory; one group. A
 * cudaError_t. */
enum { DT_CU_SMALLC_CHANNELS = 32, DT_CU_SMALLC_ROW = 24 };
int dt_cu_conv_smallc_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                           const dt_cu_conv *g, void *stream);
bool dt_cuda_conv_smallc_nhwc_applies(const dt_conv_geom *g);
/* The same few-channel layers on tensor cores (conv_smallc_mma.cu, tactic
 * DT_CUDA_CONV_SMALLC_MMA), float16 / bfloat16 on sm_80+: K = C * KH * KW <= 64, one group, a
 * block's input patch (an output tile of DT_CU_SMALLC_MMA_TH x _TW pixels: its
 * dt_cu_conv_smallc_mma_smem bytes) within 48 KiB. A cudaError_t. */
enum { DT_CU_SMALLC_MMA_TH = 8, DT_CU_SMALLC_MMA_TW = 32 };
int dt_cu_conv_smallc_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                          const dt_cu_conv *g, void *stream);
size_t dt_cu_conv_smallc_mma_smem(const dt_cu_conv *g);
bool dt_cuda_conv_smallc_mma_applies(const dt_conv_geom *g);
/* Channels-last convolutions whose whole input patch and weights fit shared memory, on tensor
 * cores (conv_patch_mma.cu, tactic DT_CUDA_CONV_PATCH_MMA), float16 / bfloat16 on sm_80+: C a
 * multiple of 16, one group; a block computes DT_CU_PATCH_MMA_TH x _TW output pixels by 16, 32
 * or 64 output channels (dt_cu_conv_patch_mma_nt(M) n8 tiles) from the patch and weights it
 * stages (dt_cu_conv_patch_mma_smem bytes, at most DT_CU_PATCH_MMA_SMEM). A cudaError_t:
 * cudaErrorMisalignedAddress where x or w is not 16-byte aligned or y, res not 4-byte aligned. */
enum { DT_CU_PATCH_MMA_TH = 4, DT_CU_PATCH_MMA_TW = 32, DT_CU_PATCH_MMA_SMEM = 160 * 1024 };
int dt_cu_conv_patch_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                         const dt_cu_conv *g, void *stream);
/* The same with FusedConv's folded DepthToSpace (blocksize r >= 1, mode CRD or DCR; M <= 16,
 * a multiple of r^2; no residual): y [N, M / r^2, OH r, OW r] of y_dtype (dtype, or FLOAT32). */
int dt_cu_conv_patch_mma_d2s(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                             int y_dtype, const dt_cu_conv *g, int r, bool crd, void *stream);
int dt_cu_conv_patch_mma_nt(int64_t m);
size_t dt_cu_conv_patch_mma_smem(const dt_cu_conv *g);
bool dt_cuda_conv_patch_mma_applies(const dt_conv_geom *g);
/* DUCTILE_CUDA_CONV's tactic, read now: DT_CUDA_CONV_TC_NHWC + a tile, DT_CUDA_CONV_TC_NHWC_AUTO
 * for "tc_nhwc" (the tile for the shapes, or the small-C kernel where the tensor-core one does
 * not apply), DT_CUDA_CONV_SMALLC_NHWC for "smallc_nhwc", DT_CUDA_CONV_SMALLC_MMA for "smallc_mma",
 * DT_CUDA_CONV_PATCH_MMA for "patch_mma", 0 when unset or another value. */
enum { DT_CUDA_CONV_TC_NHWC_AUTO = -2 };
int dt_cuda_conv_tc_nhwc_forced(void);
/* Whether the builder offers these kernels to its timer: DUCTILE_CUDA_CONV_TC=1 (session 9
 * wrote them without a GPU run that checked their results: off until one has). */
bool dt_cuda_conv_tc_enabled(void);
/* Whether the builder times the small-C tensor-core kernel: DUCTILE_CUDA_SMALLC_MMA=0 does not
 * (an A/B switch; forcing it through DUCTILE_CUDA_CONV still works). */
bool dt_cuda_smallc_mma_enabled(void);
/* Whether the builder times the staged-patch kernel: DUCTILE_CUDA_PATCH_MMA=0 does not. */
bool dt_cuda_patch_mma_enabled(void);
/* Whether the builder times tile `tile` at this geometry: not where half its channel columns
 * would idle, nor 256x64 for more than 64 channels (128x128 reads fewer weights). */
bool dt_cuda_conv_tc_nhwc_offered(const dt_conv_geom *g, int tile);
/* The tile a forced "tc_nhwc" run takes at this geometry: of those offered, the largest whose
 * grid still gives every multiprocessor (sms of them) two blocks, else the one with the most
 * blocks. */
int dt_cuda_conv_tc_nhwc_tile(const dt_conv_geom *g, int sms);

#ifdef __cplusplus
}
#endif

#endif
