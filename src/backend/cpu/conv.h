/* The CPU backend's convolution: depthwise convolutions run a direct kernel (conv_dw.c), the
 * rest run as GEMMs whose B packing reads the image directly: over a padded copy for stride 1
 * (conv_padded.c), else through an im2col done panel by panel (conv.c). No column buffer is
 * ever materialized. */
#ifndef DT_CPU_CONV_H
#define DT_CPU_CONV_H

#include "ductile.h"
#include "backend/cpu/epilogue.h"
#include "core/threadpool.h"
#include "ops/linalg.h"

#include <stdbool.h>

/* One convolution's operands (NCHW float tensors of the geometry's dims). */
typedef struct dt_conv_args {
    const float *x, *w;
    const float *bias;      /* optional */
    /* Optional: w packed at build time, group after group, each group's [M/group, K] by
     * dt_gemm_pack_a_full (dt_cpu_conv_packed_floats floats in all). The GEMM paths then
     * skip packing A; the depthwise kernel reads w and is never given a packed one. */
    const float *w_packed;
    /* Optional, instead of w_packed: packed in bfloat16 by dt_cpu_conv_pack_weights_bf16 (the
     * GEMM paths then compute in bfloat16 with float32 accumulation; gemm.h). */
    const uint16_t *w_bf16;
    /* With w_bf16: it holds IEEE float16 (dt_cpu_conv_pack_weights_half with dt_fp16_round),
     * and the GEMMs run as dt_gemm.fp16. */
    bool w_fp16;
    /* Optional: w transformed for Winograd F(4x4, 3x3) at build time (winograd.h). */
    const float *w_wino;
    /* Optional: w transformed for Winograd F(2x2, 3x3) in bfloat16 at build time (winograd.h:
     * dt_cpu_wino2_pack_weights); what DT_CONV_WINOGRAD2_BF16 runs on. */
    const uint16_t *w_wino2;
    /* Optional: w transformed for Winograd F(4x4, 3x3) in bfloat16 at build time (winograd.h:
     * dt_cpu_wino_bf16_pack_weights); what DT_CONV_WINOGRAD_BF16 runs on. */
    const uint16_t *w_wino_bf16;
    /* Optional: w packed for the direct stride-2 conv in bfloat16 at build time
     * (dt_cpu_conv_s2_bf16_pack_weights); what DT_CONV_S2_BF16 runs on. */
    const uint16_t *w_s2_bf16;
    /* Optional: a `bf16` layer's depthwise on its bfloat16 run may round x and w to bfloat16
     * (the 16-channel kernel's row pairs, conv_dw16.c); any other kernel ignores it. */
    bool dw_bf16;
    const dt_epilogue *epi; /* optional: residual and activation, applied while hot */
    float *y;
    /* Optional plane strides, 0 for NCHW. x_cs: x holds channel c of image b at plane
     * c * x_cs + b, [C][N][H][W] with x_cs = N: the batched 1x1's B (read in place) or C
     * (written in place). y_cs: likewise for y and the residual. Taken by the batched 1x1
     * convs (dt_cpu_conv_is_batched; x_cs and y_cs = N) and the depthwise kernels. */
    int64_t x_cs, y_cs;
    /* Optional: X's channel c read as X * x_scale[c] (FusedConv's squeeze-excite scale), the
     * bits of convolving a scaled copy. Only the convs dt_cpu_conv_takes_x_scale names take it. */
    const float *x_scale;
    /* Optional: 1x1 convs over a batch of planes of fewer pixels than this run as one GEMM
     * over every image's pixels (dt_cpu_conv_is_batched); 0: the default, 128 (conv.c). */
    int64_t batch_px;
    /* Optional: y's GlobalAveragePool too, pool[b * M + m] the mean of output plane (b, m),
     * summed in blocks of pool_rows rows (0: all) in conv_pool.c's order. The depthwise
     * kernels take it per plane while it is in cache; after any other algorithm
     * dt_cpu_conv_run_algo reads y back (dt_cpu_conv_pool_after). 2-D convs only. */
    float *pool;
    int64_t pool_rows;
    /* 64-byte aligned, of dt_cpu_conv_scratch bytes for the algorithm and the pool's thread
     * count. NULL: dt_cpu_conv_run_algo allocates it (callers that run a conv once). */
    void *scratch;
} dt_conv_args;

/* How a convolution is computed; the builder times them per profile (tactics). */
typedef enum dt_conv_algo {
    DT_CONV_AUTO = 0,       /* the heuristic below */
    DT_CONV_IM2COL = 1,     /* GEMM with im2col in the B packer (or B = x for 1x1) */
    DT_CONV_PADDED = 2,     /* GEMM over a padded copy (split into phases by the stride) */
    DT_CONV_DEPTHWISE = 3,  /* direct (depthwise only) */
    DT_CONV_WINOGRAD = 4,   /* F(4x4, 3x3): 3x3, stride 1, dilation 1, group 1 (winograd.h) */
    DT_CONV_DIRECT = 5,     /* direct loops over every geometry, 3-D too (conv_direct.c) */
    DT_CONV_DW16 = 6,       /* direct, 16 channels per vector (depthwise only, conv_dw16.c) */
    DT_CONV_SMALLC = 7,     /* direct, few input channels, 3x3/5x5/7x7 stride 2 (conv_smallc.c) */
    DT_CONV_WINOGRAD2_BF16 = 8, /* F(2x2, 3x3) in bfloat16, on a->w_wino2 only (winograd.h) */
    DT_CONV_WINOGRAD_BF16 = 9,  /* F(4x4, 3x3) with bfloat16 GEMMs, on a->w_wino_bf16 only (winograd.h) */
    DT_CONV_S2 = 10,            /* direct 3x3 stride 2, output channels in lanes (conv_s2.c) */
    DT_CONV_S2_BF16 = 11        /* direct 3x3 stride 2 in bfloat16, on a->w_s2_bf16 only (conv_s2_bf16.c) */
} dt_conv_algo;

/* FusedConv's tactic ids on bfloat16 weights (layouts DT_CPU_PACK_GEMM_A_BF16*, which carry a
 * float32 copy of the GEMM weights too): a GEMM algorithm's id plus DT_CONV_ON_F32 runs it on
 * the float32 copy, so the builder's timer keeps a layer float32 where bfloat16 is slower
 * (vdpbf16ps runs at half the float32 FMA rate on some Xeons). */
enum { DT_CONV_ON_F32 = 16 };

/* True when the 1x1 conv g runs as one GEMM over all its images' pixels (small planes; the
 * threshold a->batch_px, a's pointers are not read). */
bool dt_cpu_conv_is_batched(const dt_conv_geom *g, const dt_conv_args *a);

/* True when `algo` (IM2COL or AUTO) runs g on a's weights as one image's GEMM on bfloat16
 * weights reading X in place: a 1x1 conv of one group, stride 1, unpadded, not batched; the
 * convs that take dt_conv_args.x_scale (the GEMM scales B's rows as it converts them). */
bool dt_cpu_conv_takes_x_scale(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo);

/* True when algo can compute g. */
bool dt_cpu_conv_algo_applies(const dt_conv_geom *g, dt_conv_algo algo);

/* The algorithm AUTO stands for with g. */
dt_conv_algo dt_cpu_conv_auto(const dt_conv_geom *g);

/* Bytes of scratch algo (AUTO: the heuristic's) needs for g with a's kinds of weights
 * (raw, packed, transformed; a's pointers are not read) on `threads` threads. */
ductile_status dt_cpu_conv_scratch(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                                   int threads, size_t *bytes);

/* y = act(conv(x, w) + bias + residual) with the given algorithm (AUTO: by heuristic). */
ductile_status dt_cpu_conv_run_algo(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                               dt_pool *pool);

/* y = conv(x, w) + bias; bias may be NULL. */
ductile_status dt_cpu_conv(const dt_conv_geom *g, const float *x, const float *w,
                           const float *bias, float *y, dt_pool *pool);

/* The GlobalAveragePool of output planes in one order of sums (conv_pool.c): _block sums n
 * contiguous floats (a block of rows), _blocks makes the mean of n block sums `stride` floats
 * apart over `pixels`, _plane both over a plane of h rows in blocks of rows_per_block (<= 0:
 * one block). _after fills a->pool from y (nothing without a->pool). */
float dt_cpu_pool_block(const float *y, int64_t n);
float dt_cpu_pool_blocks(const float *sums, int64_t n, int64_t stride, int64_t pixels);
float dt_cpu_pool_plane(const float *y, int64_t h, int64_t w, int64_t rows_per_block);
void dt_cpu_conv_pool_after(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* Floats of a conv's weights packed for the GEMM paths. */
int64_t dt_cpu_conv_packed_floats(const dt_conv_geom *g);
/* Packs w (M x C/group*KH*KW, row-major) group by group into dst. */
void dt_cpu_conv_pack_weights(const dt_conv_geom *g, const float *w, float *dst);

/* Bytes of a conv's weights packed in bfloat16 for the GEMM paths, a multiple of 64. */
int64_t dt_cpu_conv_packed_bf16_bytes(const dt_conv_geom *g);
/* Packs w (M x C/group*KH*KW, row-major) group by group into dst (dt_gemm_pack_a_bf16). */
void dt_cpu_conv_pack_weights_bf16(const dt_conv_geom *g, const float *w, uint16_t *dst);
/* The same with another rounding (float16: dt_fp16_round), the same layout and size. */
void dt_cpu_conv_pack_weights_half(const dt_conv_geom *g, const float *w, uint16_t (*round)(float), uint16_t *dst);

/* True when the direct depthwise kernel applies: one input and one output channel per group. */
bool dt_cpu_conv_is_depthwise(const dt_conv_geom *g);
ductile_status dt_cpu_conv_depthwise(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);
ductile_status dt_cpu_conv_depthwise_scratch(const dt_conv_geom *g, int threads, size_t *bytes);
/* Whether dt_cpu_conv_depthwise runs g two output rows per vector (3x3, stride 2, dilation 1,
 * output rows of at most 7: mobilenet_v2's 14x14 -> 7x7; conv_dw.c: dt_dw_pairs_plane). */
bool dt_cpu_dw_pairs_applies(const dt_conv_geom *g);

/* Depthwise with 16 channels per vector over a transposed tile (conv_dw16.c): square 3x3 or
 * 5x5, stride and dilation 1 or 2, as the row kernels, output rows under 16. Without AVX-512 or with fewer than 16
 * channels it runs dt_cpu_conv_depthwise; channels past the last 16 run the row kernels. The
 * same bits as dt_cpu_conv_depthwise. _pays: where the heuristic takes it (planes narrower
 * than a vector). */
bool dt_cpu_dw16_applies(const dt_conv_geom *g);
bool dt_cpu_dw16_pays(const dt_conv_geom *g);
ductile_status dt_cpu_conv_dw16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);
ductile_status dt_cpu_conv_dw16_scratch(const dt_conv_geom *g, int threads, size_t *bytes);

/* Direct 3x3 stride-2 conv, 8 output pixels broadcast x 48 output channels in lanes a tile,
 * any channel count, output channels a multiple of 16 (conv_s2.c). On packed float32 weights
 * with AVX-512; else it runs the im2col GEMM (whose scratch it takes). */
bool dt_cpu_conv_s2_applies(const dt_conv_geom *g);
/* Whether this CPU runs its kernel (AVX-512F and DQ). */
bool dt_cpu_conv_s2_cpu(void);
ductile_status dt_cpu_conv_s2(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* Direct 3x3 stride-2 conv in bfloat16 with float32 accumulation, output pixels in lanes
 * (conv_s2_bf16.c): on weights in a layout of its own (_floats floats, packed by _pack_weights),
 * any channel counts; AVX512-BF16 (dt_cpu_has_bf16) only. Scratch: _scratch bytes. */
bool dt_cpu_conv_s2_bf16_applies(const dt_conv_geom *g);
int64_t dt_cpu_conv_s2_bf16_floats(const dt_conv_geom *g);
void dt_cpu_conv_s2_bf16_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst);
size_t dt_cpu_conv_s2_bf16_scratch(const dt_conv_geom *g, int threads);
ductile_status dt_cpu_conv_s2_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* Direct 3x3, 5x5 or 7x7 stride-2 conv over at most 4 input channels (the stems of mobile nets
 * and ResNets; conv_smallc.c): 16 outputs of a row per vector, 16 output channels at a time, raw or
 * packed float32 weights. Without AVX-512, or on bfloat16 weights, it runs the im2col GEMM. */
bool dt_cpu_conv_smallc_applies(const dt_conv_geom *g);
ductile_status dt_cpu_conv_smallc(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);
ductile_status dt_cpu_conv_smallc_scratch(const dt_conv_geom *g, int threads, size_t *bytes);

/* A strip of one depthwise plane (the fused inverted-residual block, fused_irb.c): output
 * rows [oy0, oy1) of the channel with weights w (KH*KW) and bias b, from src: a ring of
 * `ring` input rows of the plane (row r at src + (r % ring) * in[1]; every row of [0, in[0])
 * the strip reads must be there). y and res (may be NULL) point at the strip's first output
 * row (row stride out[1]); epi (may be NULL; its res is not read) as the whole-plane
 * kernel's. pad: dt_cpu_dw_strip_pad_bytes(g, oy1 - oy0) bytes (or more), zeroed by the caller
 * once (only its interior columns are written). Bits as dt_cpu_conv_depthwise. */
size_t dt_cpu_dw_strip_pad_bytes(const dt_conv_geom *g, int64_t rows);
void dt_cpu_dw_strip(const dt_conv_geom *g, const float *src, int64_t ring, const float *w, float b,
                     const dt_epilogue *epi, const float *res, float *y, int64_t oy0, int64_t oy1, float *pad);

/* Any geometry (1-D, 2-D, 3-D; groups, strides, dilations, pads), raw weights, no scratch:
 * the path of 3-D convolutions, which no GEMM path takes yet. */
ductile_status dt_cpu_conv_direct(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

/* The product of the padded conv with B read in place (conv_indirect.c): C[M, N] (rows ldc
 * apart) = A B + bias, A packed whole as dt_cpu_conv_pack_weights packs it (M x K), row k of B
 * the N floats at b + off[k]. off has K + 8 entries (the last 8 any offset the rows may take:
 * rows are prefetched 8 ahead); each row is read up to 15 floats past its N. The bits of
 * dt_sgemm over the same A and B. Needs AVX-512F (dt_conv_indirect_available). */
typedef struct dt_conv_indirect {
    const float *a, *b, *bias;  /* bias: optional, M floats */
    const int64_t *off;
    float *c;
    int64_t M, N, K, ldc;
} dt_conv_indirect;
enum { DT_CONV_INDIRECT_OFF_PAD = 8 };
bool dt_conv_indirect_available(void);
void dt_conv_indirect_run(const dt_conv_indirect *p, dt_pool *pool);

/* Convs over a padded copy of the image, split into phases by the stride (conv_padded.c);
 * _applies: where the heuristic takes it, stride-1 convs over images wide enough that
 * computing the padded width wastes little. */
bool dt_cpu_conv_padded_applies(const dt_conv_geom *g);
/* Whether the phase split takes g at all: strides up to DT_CONV_PADDED_MAX_STRIDE (the phases
 * of an axis are counted over its stride: a stride of 2^63 - 1, which ONNX allows and
 * test_extremes gives, looped for hours). */
enum { DT_CONV_PADDED_MAX_STRIDE = 16 };
bool dt_cpu_conv_padded_strides_fit(const dt_conv_geom *g);
/* Where the builder times it against im2col: not for 1x1 kernels (at stride 2 the phase is
 * the subsampled image, which lost to im2col: bench/results/cpu-cpures-2026-12-03-s11.md;
 * at stride 1 im2col reads the image in place), nor for the stems the few-channel direct conv
 * takes (resnet50's 7x7: isolated a tie, 1.69 against 1.72 ms, in the network 1.99 against
 * 1.83, and a loaded timer picked it), nor, where the builder offers Winograd (`winograd`), for
 * outputs of 8x8 and more: there Winograd wins at 1 thread (resnet50's 28x28 0.81 against
 * 1.59 ms, 14x14 1.68 against 1.76) but the builder times on 2 threads, where the padded
 * product splits better, and a loaded timer picked it for both. At 7x7 (four 4x4 tiles)
 * Winograd loses to both GEMMs. */
bool dt_cpu_conv_padded_offered(const dt_conv_geom *g, bool winograd);
ductile_status dt_cpu_conv_padded(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);
/* Threads that each run whole images of g serially, on buffers of their own, before the images
 * left over (batch % threads) split within each image (0: none; the im2col and padded GEMMs).
 * Within an image the threads shared every line of the B operand (a padded conv's phases, an
 * image's columns) and of C: a core rewriting a line the other had read waited for it. Each
 * image is computed as the split computes it: the same bits. */
int dt_cpu_conv_image_threads(const dt_conv_geom *g, int threads);
/* ev[t] = s[2t] for t < ne and od[t] = s[2t+1] for t < no (od may be NULL when no is 0),
 * reading nothing at or past s[n] (ne <= (n+1)/2, no <= n/2): 16 of each from two loads and
 * two permutes. AVX-512F. */
void dt_cpu_deint2(float *ev, int64_t ne, float *od, int64_t no, const float *s, int64_t n);
ductile_status dt_cpu_conv_padded_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes);

#endif
