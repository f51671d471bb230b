// Element loads and stores of the CUDA backend's own kernels: every element type computes in
// float (ld widens, st<T> rounds to nearest even). Shared by kernels.cu and attention_kernels.cu.
#ifndef DT_CUDA_ELEM_CUH
#define DT_CUDA_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

static __device__ __forceinline__ float ld(float v) { return v; }
static __device__ __forceinline__ float ld(__half v) { return __half2float(v); }
static __device__ __forceinline__ float ld(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T st(float v);
template <> __device__ __forceinline__ float st<float>(float v) { return v; }
template <> __device__ __forceinline__ __half st<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 st<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

#endif
