// The device side of fastdiv.h: n / f.d for n < 2^31.
#ifndef DT_CUDA_FASTDIV_CUH
#define DT_CUDA_FASTDIV_CUH

#include "backend/cuda/fastdiv.h"

static __device__ __forceinline__ uint32_t dt_fast_div_q(const dt_fast_div &f, uint32_t n)
{
    return (__umulhi(n, f.m) + n) >> f.s;
}

#endif
