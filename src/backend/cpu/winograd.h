/* Winograd F(4x4, 3x3) convolution for 3x3, stride-1, dilation-1, ungrouped 2-D convs.
 *
 * Each 4x4 output tile is A^T [ (G w G^T) (.) (B^T d B) ] A over a 6x6 input tile d: 36
 * multiplies per tile and channel pair instead of 144. Over all tiles that is 36 GEMMs, one
 * per position p of the 6x6 transform domain: O_p[M, T] = U_p[M, C] * V_p[C, T], run by the
 * CPU sgemm on U_p packed once at build time (its packed-A layout, full K = C).
 *
 * Weights layout (dt_cpu_wino_floats floats): for p = 0..35, U_p = (G w G^T)[p / 6][p % 6]
 * as an M x C matrix packed by dt_gemm_pack_a_full, one after another. */
#ifndef DT_CPU_WINOGRAD_H
#define DT_CPU_WINOGRAD_H

#include "backend/cpu/conv.h"

#include <stdbool.h>
#include <stdint.h>

/* True for what F(4x4, 3x3) computes here: 2-D, 3x3, stride 1, dilation 1, group 1 (any
 * padding). */
bool dt_cpu_wino_applies(const dt_conv_geom *g);

/* Floats of the transformed, packed weights of g. */
int64_t dt_cpu_wino_floats(const dt_conv_geom *g);
/* Transforms w (M x C x 3 x 3) into dst (dt_cpu_wino_floats floats), in double precision.
 * DUCTILE_ERR_OUT_OF_MEMORY (dst unusable) when its M x C staging matrix cannot be had. */
ductile_status dt_cpu_wino_pack_weights(const dt_conv_geom *g, const float *w, float *dst);

/* Bytes of a->scratch dt_cpu_conv_winograd needs on `threads` threads (0 where it does not
 * apply). */
ductile_status dt_cpu_wino_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes);
/* Threads of a pool of `threads` that compute g (its blocks, or with fewer blocks than
 * threads each block's passes and 36 GEMMs); 0 when there is nothing to compute. */
int dt_cpu_wino_workers(const dt_conv_geom *g, int threads);
/* y = act(conv(x, w) + bias + residual) over a->w_wino (or a->w, transformed per call into
 * the scratch). */
ductile_status dt_cpu_conv_winograd(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* F(4x4, 3x3) with its 36 GEMMs in bfloat16 (FusedConv tactic DT_CONV_WINOGRAD_BF16): the
 * same blocks, tiling, threading and float32 transforms, U_p packed in bfloat16 at build time
 * (dt_gemm_pack_a_bf16) and V converted to bfloat16 as the GEMM packs it (dt_gemm.A_bf16),
 * float32 accumulation; on a->w_wino_bf16 only. F(4x4)'s transforms amplify the operands'
 * rounding: rel L2 per layer 4.5e-3 - 9.9e-3 on resnet50's, 1.7e-2 - 2.1e-2 on superres'
 * (bench/results/cpu-bf16w-2026-12-04-s20.md), so the builder keeps it only where the whole
 * network stays within its budget (dt_backend.tactic_precise). Weights layout
 * (dt_cpu_wino_bf16_floats floats, 64-byte padded): for p = 0..35, U_p = (G w G^T)[p / 6]
 * [p % 6] as an M x C matrix packed by dt_gemm_pack_a_bf16, one after another. */
int64_t dt_cpu_wino_bf16_floats(const dt_conv_geom *g);
ductile_status dt_cpu_wino_bf16_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst);
ductile_status dt_cpu_wino_bf16_scratch(const dt_conv_geom *g, int threads, size_t *bytes);
ductile_status dt_cpu_conv_winograd_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* Winograd F(2x2, 3x3) in bfloat16 (winograd2.c): the same convs, 16 GEMMs with bfloat16
 * operands (U packed by dt_gemm_pack_a_bf16 at build time, V converted while packed) and float32
 * accumulation and transforms, on a->w_wino2 (dt_conv_args). _offered: where the builder
 * times it, maps of at most 64 2x2 tiles (F(4x4) wastes most there; elsewhere it loses).
 * Weights layout (dt_cpu_wino2_floats floats, 64-byte padded): for p = 0..15, U_p = (G w
 * G^T)[p / 4][p % 4] as an M x C matrix packed by dt_gemm_pack_a_bf16, one after another. */
bool dt_cpu_wino2_offered(const dt_conv_geom *g);
int64_t dt_cpu_wino2_floats(const dt_conv_geom *g);
ductile_status dt_cpu_wino2_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst);
ductile_status dt_cpu_wino2_scratch(const dt_conv_geom *g, int threads, size_t *bytes);
ductile_status dt_cpu_conv_winograd2(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* Internal (winograd*.c): position p of an n x n transform domain's weights, (G w G^T)[p / n]
 * [p % n] for G of n rows, as the M x C matrix u, summed in double. */
void dt_wino_weights_at(const dt_conv_geom *g, const float *w, const double (*G)[3], int n, int p, float *u);

/* Internal (winograd*.c): floats from one transform position's matrix of V (or O) to the
 * next for matrices of n floats (an odd number of cache lines). */
int64_t dt_wino_pstride(int64_t n);

/* Internal (winograd*.c): a Winograd tile mixes its inputs, so one NaN or infinite input
 * also spoils the other outputs of its tile (NaN or +-Inf, which an activation may then turn
 * into a finite wrong value: Relu(-Inf) = 0). The output passes note any non-finite value
 * before the residual and activation (one operation a vector) and the layer then runs again
 * here as im2col + GEMM on the GEMM weights every Winograd layout keeps (a->w_packed or
 * a->w_bf16, else a->w): the non-finite outputs exactly where the direct convolution has them.
 * Not where y overlaps x or the residual (not in a planned engine: a layer's input and output
 * never share bytes; session 44). */
ductile_status dt_wino_exact_rerun(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);
/* Whether any of v[0, n) is NaN or infinite (the portable passes' check). */
bool dt_wino_any_nonfinite(const float *v, int64_t n);

/* Internal (winograd*.c): one block of nty x ntx tiles of one image. V is [36][C][ldt] and O
 * [36][M][ldt], ldt >= nty * ntx (more where a block holds several images: this image's
 * columns start at the v and o the passes are given), tile (r, u) at column r * ntx + u;
 * position p's C x ldt (M x ldt) matrix at p * vs (p * os). */
typedef struct dt_wino_blk {
    const float *x;             /* the image's channel 0 */
    float *y;                   /* the output image's channel 0 */
    const float *res;           /* the residual laid out like y, or NULL */
    const dt_epilogue *epi;     /* or NULL */
    const float *bias;          /* or NULL */
    int64_t C, M, H, W, OH, OW;
    int64_t iy0, ix0;           /* input row and column of the first tile (may be < 0) */
    int64_t oy0, ox0;           /* output row and column of the first tile */
    int64_t nty, ntx;
    /* The channels [c0, c1) the input pass transforms and the output channels [m0, m1) the
     * output pass writes (all: 0, C and 0, M): threads split one block's passes by them. */
    int64_t c0, c1, m0, m1;
    int64_t vs, os;             /* floats from one position of V (of O) to the next */
    int64_t ldt;                /* columns of V's and O's rows */
    /* An output past the cache (dt_epilogue.c_far, its activation none, Relu or Clip): the
     * output pass builds each tile row's four output rows here (4 x 4 ntx floats, 64-byte
     * aligned) and writes them with the epilogue and non-temporal stores; NULL: in place. */
    float *stage;
    /* DT_CONV_WINOGRAD_BF16 on AVX512-BF16: V written by dt_wino_input_bf16_avx512 as the
     * GEMMs' B already in bfloat16 (dt_gemm.B_bf16: per position, 48-column panels over all
     * (C + 1) / 2 channel pairs, each column's pair of channels 2c and 2c + 1 one 32-bit word,
     * the last panel its columns rounded up to 16 wide), position p at vb + p * vbs; this
     * image's tiles from column vcol. NULL: V in float32 (v, vs). */
    uint16_t *vb;
    int64_t vbs, vcol;
    /* Set (to 1, relaxed) by the output pass when a value before the residual and the
     * activation is NaN or infinite (dt_wino_exact_rerun). */
    int *nonfinite;
} dt_wino_blk;

/* AVX-512 transforms (winograd_avx512.c). tl: 6 rows of ldl floats, 64-byte aligned, ldl a
 * multiple of 16 and at least 4 * ntx rounded up to 64, plus 16. */
void dt_wino_input_avx512(const dt_wino_blk *k, float *v, float *tl, int64_t ldl);
/* The input pass into k->vb (AVX512-BF16), channels [c0, c1) with c0 even; tl: 12 rows. */
void dt_wino_input_bf16_avx512(const dt_wino_blk *k, float *tl, int64_t ldl);
void dt_wino_output_avx512(const dt_wino_blk *k, const float *o);
/* Whether the output pass may stage and stream y (dt_wino_blk.stage). */
bool dt_wino_streams(const dt_epilogue *e);

#endif
