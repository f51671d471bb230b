// The reductions' arithmetic (ReduceSum/Mean/Max/Min/SumSquare/L1/L2 codes DT_CU_RED_*), in
// float whatever the element type: a start value, one element added, two partial results
// joined, the final value of n elements. Shared by kernels.cu's reduction kernels and
// reduce_cluster.cu.
#ifndef DT_CUDA_REDUCE_CUH
#define DT_CUDA_REDUCE_CUH

#include "backend/cuda/cuda.h"

#include <math.h>
#include <stdint.h>

static __device__ __forceinline__ float red_init(int op)
{
    return op == DT_CU_RED_MAX ? -INFINITY : op == DT_CU_RED_MIN ? INFINITY : 0.f;
}
// Adds one element (v raw: squares and absolute values taken here).
static __device__ __forceinline__ float red_add(int op, float acc, float v)
{
    switch (op) {
    // a NaN kept, as the CPU's (fmaxf/fminf would drop it; DESIGN "Non-finite inputs")
    case DT_CU_RED_MAX: return acc != acc || v != v ? acc + v : fmaxf(acc, v);
    case DT_CU_RED_MIN: return acc != acc || v != v ? acc + v : fminf(acc, v);
    case DT_CU_RED_SUMSQ: case DT_CU_RED_L2: return acc + v * v;
    case DT_CU_RED_L1: return acc + fabsf(v);
    }
    return acc + v;
}
// Combines two partial results.
static __device__ __forceinline__ float red_join(int op, float a, float b)
{
    if (op == DT_CU_RED_MAX || op == DT_CU_RED_MIN) return red_add(op, a, b);
    return a + b;
}
static __device__ __forceinline__ float red_final(int op, float acc, int64_t n)
{
    return op == DT_CU_RED_MEAN ? acc / (float)n : op == DT_CU_RED_L2 ? sqrtf(acc) : acc;
}

#endif
