// The activations of the CUDA backend's own kernels (DT_CU_* codes of cuda.h), in float: every
// element type computes its epilogue in float. Shared by kernels.cu and conv_kernels.cu.
#ifndef DT_CUDA_ACT_CUH
#define DT_CUDA_ACT_CUH

#include "backend/cuda/cuda.h"

#include <math.h>

// The activations that cost a few instructions are inlined; the rest is one out-of-line
// function. An epilogue unrolled over its tile calls act() once per value (32 sites in a
// tensor-core conv's store): with every case inlined at each, kernels grew past the
// instruction cache (superres' small-C conv, ncu session 17: 4,400 instructions a warp, 42%
// of its stalls waiting for instructions).
static __device__ __noinline__ float act_call(int op, float x, float p0, float p1)
{
    switch (op) {
    case DT_CU_SIGMOID: return 1.f / (1.f + expf(-x));
    case DT_CU_SILU: return x * (1.f / (1.f + expf(-x)));   // the unfused Sigmoid, then Mul
    case DT_CU_TANH: return tanhf(x);
    case DT_CU_ERF: return erff(x);
    case DT_CU_SQRT: return sqrtf(x);
    case DT_CU_EXP: return expf(x);
    case DT_CU_LOG: return logf(x);
    case DT_CU_RECIPROCAL: return 1.f / x;
    case DT_CU_ELU: return x >= 0.f ? x : p0 * (expf(x) - 1.f);
    case DT_CU_SOFTPLUS: return x > 20.f ? x : log1pf(expf(x));
    case DT_CU_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case DT_CU_GELU_TANH: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case DT_CU_FLOOR: return floorf(x);
    case DT_CU_CEIL: return ceilf(x);
    }
    return x;
}

static __device__ __forceinline__ float unit_clamp(float v) { return v < 0.f ? 0.f : v > 1.f ? 1.f : v; }

static __device__ __forceinline__ float act(int op, float x, float p0, float p1)
{
    switch (op) {
    case DT_CU_IDENTITY: return x;
    case DT_CU_RELU: return x < 0.f ? 0.f : x;   /* a NaN stays NaN here and below (fminf/fmaxf drop it) */
    case DT_CU_NEG: return -x;
    case DT_CU_ABS: return fabsf(x);
    case DT_CU_HARDSIGMOID: return unit_clamp(p0 * x + p1);
    case DT_CU_HARDSWISH: return x * unit_clamp(p0 * x + p1);
    case DT_CU_CLIP: { float v = x < p0 ? p0 : x; return v > p1 ? p1 : v; }
    case DT_CU_LEAKYRELU: return x >= 0.f ? x : p0 * x;
    }
    return act_call(op, x, p0, p1);
}

#endif
