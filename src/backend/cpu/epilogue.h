/* What a fused convolution or matmul applies to its output while the output is still in
 * cache: a per-column bias (FusedMatMul; a conv's per-row bias is the GEMM kernel's), a
 * residual added after the bias, then an activation. Shared by the GEMM driver (per 8-row
 * strip of C once its last K block is done), the padded conv (while copying rows out) and the
 * depthwise conv (per plane). */
#ifndef DT_CPU_EPILOGUE_H
#define DT_CPU_EPILOGUE_H

#include "ductile.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum dt_act {
    DT_ACT_NONE = 0,
    DT_ACT_RELU,
    DT_ACT_CLIP,        /* p0 = min, p1 = max */
    DT_ACT_HARDSIGMOID, /* max(0, min(1, p0 * x + p1)) */
    DT_ACT_HARDSWISH,   /* x * hardsigmoid(x) with p0 = alpha, p1 = beta (ONNX: 1/6, 1/2) */
    DT_ACT_SIGMOID,
    DT_ACT_GELU,        /* approximate "none", as the Gelu kernel computes it (exp_approx.h) */
    DT_ACT_SILU,        /* x * sigmoid(x): PyTorch's SiLU as its exporter writes it, Mul(x, Sigmoid(x)) */
    /* Sigmoid and Silu of a layer that computes in bfloat16 or float16 (dt_epilogue_lean):
     * dt_sigmoid_lean_vecs, relative error below 1e-4 (exp_approx.h). Never an attribute's. */
    DT_ACT_SIGMOID_LEAN,
    DT_ACT_SILU_LEAN
} dt_act;

typedef struct dt_epilogue {
    dt_act act;
    float p0, p1;
    /* Residual laid out like the output it is given with (same offsets, same row stride):
     * for a whole conv, the [N, M, OH, OW] tensor; a caller that hands a GEMM a part of the
     * output hands it a copy with res moved by the same offset. NULL: none. */
    const float *res;
    /* Per column of C (FusedMatMul's bias), indexed by the GEMM's column: the GEMM driver
     * hands dt_epilogue_apply_bias col_bias + the strip's first column. NULL: none. */
    const float *col_bias;
    /* The residual is too large to be in cache (dt_cpu_res_far_bytes): the AVX-512 tile
     * store's kernel prefetches the next tile's residual lines while it computes this one. */
    bool res_far;
    /* The output is too large to stay in cache until it is read (DT_CPU_C_FAR_BYTES): the
     * AVX-512 tile store writes whole 64-byte-aligned tiles with non-temporal stores and does
     * not prefetch them first (no read for ownership of lines it overwrites). */
    bool c_far;
} dt_epilogue;

/* A residual tensor of at least this many bytes is read from memory (res_far): resnet50's
 * 56x56 ones at batch 8 (25.7 MB) came from DRAM, one image's (3.2 MB) from L3. At 8 MB the
 * 14x14 ones at batch 8 (6.4 MB, written two layers earlier) went without the prefetch:
 * 4.03-4.08 -> 3.75-3.79 ms each at 4 MB (bench/results/cpu-cpumb-2026-12-04-s16.md). */
#define DT_CPU_RES_FAR_BYTES ((size_t)4 << 20)
/* An output of at least this many bytes is written past the cache (c_far). */
#ifndef DT_CPU_C_FAR_BYTES
#define DT_CPU_C_FAR_BYTES ((size_t)16 << 20)
#endif

/* c[j] = act(c[j] + (r ? r[j] : 0)) for j < n, with the same float operations, in the same
 * order, as the unfused Add and activation kernels. */
void dt_epilogue_apply(const dt_epilogue *e, float *c, const float *r, int64_t n);
/* c[j] = act((c[j] + (b ? b[j] : 0)) + (r ? r[j] : 0)): MatMul -> Add(bias) -> Add(residual)
 * -> activation with the unfused kernels' float operations in their order. */
void dt_epilogue_apply_bias(const dt_epilogue *e, float *c, const float *b, const float *r, int64_t n);
/* Sigmoid and Silu become their lean forms (DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN) in a layer
 * marked `bf16` or `fp16` (builder/precision.c: the user allowed half precision; its products
 * round their operands to within 2^-8 or 2^-11 relative, 39x and 5x the lean sigmoid's
 * error), on a CPU with
 * AVX-512 F and DQ (which every CPU that loads such a layer has); any other activation, layer or CPU keeps
 * its own. */
void dt_epilogue_lean(const ductile_layer *L, dt_epilogue *e);
/* The exact form of a lean activation (any other as it is): what such a layer's runs on its
 * float32 weights (tactic ids past DT_CONV_ON_F32, DT_GEMM_ON_F32) take, so that their bits
 * are the float32 engine's. */
static inline dt_act dt_act_exact(dt_act a)
{
    return a == DT_ACT_SILU_LEAN ? DT_ACT_SILU : a == DT_ACT_SIGMOID_LEAN ? DT_ACT_SIGMOID : a;
}

/* The name of an activation as FusedConv's `activation` attribute spells it ("" for none);
 * -1 when unknown. */
int dt_act_from_name(const char *name);
/* A fused layer's activation from attributes name_attr (FusedConv's names; Gelu refused),
 * p0 and p1 (Clip's bounds, else HardSigmoid's / HardSwish's alpha and beta, their ONNX
 * defaults where absent). DUCTILE_ERR_UNSUPPORTED naming the attribute. */
ductile_status dt_epilogue_act_read(const ductile_layer *L, const char *name_attr, const char *p0, const char *p1,
                                    dt_epilogue *e);

#endif
