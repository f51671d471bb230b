// The tensor-core building blocks of the own half-precision kernels (sm_80+ PTX): cp.async
// copies into shared memory, ldmatrix fragment loads and the mma.sync m16n8k16 product with
// float32 accumulators. Shared by the own tensor-core kernels (attention, convolutions, gemm_norm.cu).
//
// Fragment layouts (PTX ISA, mma.m16n8k16): lane = 4 g + t. A (16 x 16): a[0] = row g,
// columns 2t, 2t+1; a[1] row g+8; a[2] row g, columns 2t+8, 2t+9; a[3] row g+8 there. B
// (16 x 8): b0 = rows 2t, 2t+1 of column g; b1 rows 2t+8, 2t+9. C (16 x 8): c[0], c[1] = row
// g, columns 2t, 2t+1; c[2], c[3] row g+8.
#ifndef DT_CUDA_MMA_CUH
#define DT_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <type_traits>

namespace {

// 16 bytes global -> shared, asynchronous; fill false: 16 zero bytes, nothing read (gmem must
// still be a valid address).
// dst: a shared-space address (__cvta_generic_to_shared), for kernels that keep them in registers.
__device__ __forceinline__ void cp_async16_sa(unsigned dst, const void *gmem, bool fill)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(fill ? 16 : 0));
}
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool fill)
{
    cp_async16_sa((unsigned)__cvta_generic_to_shared(smem), gmem, fill);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Four 8 x 8 matrices of 16-bit elements from shared memory: lanes 8i..8i+7 give the row
// addresses of matrix i (16 bytes each), r[i] gets lane's fragment of matrix i (row lane / 4,
// elements 2 (lane % 4) and 2 (lane % 4) + 1).
// (a: the row's shared-space address.)
__device__ __forceinline__ void ldmatrix_x4_sa(uint32_t *r, unsigned a)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// The same, each matrix transposed: r[i] gets elements (2 (lane % 4), lane / 4) and (2 (lane % 4)
// + 1, lane / 4) of matrix i; from a row-major [k][n] tile, the mma's B fragment of 8 k x 8 n.
__device__ __forceinline__ void ldmatrix_x4_trans_sa(uint32_t *r, unsigned a)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// c += a b for one m16n8k16 tile (row-major A, column-major B, float32 C); T: __half or
// __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
#define DT_MMA16816(ty)                                                                                    \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." ty "." ty ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, " \
                 "{%8,%9}, {%0,%1,%2,%3};\n"                                                              \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                          \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
    if constexpr (std::is_same<T, __half>::value) DT_MMA16816("f16");
    else DT_MMA16816("bf16");
#undef DT_MMA16816
}

// Two floats rounded to the operand type, as one 32-bit register (the first in the low half).
template <typename T> struct pair_of;
template <> struct pair_of<__half> {
    static __device__ __forceinline__ uint32_t pack(float a, float b)
    {
        __half2 v = __floats2half2_rn(a, b);
        return *reinterpret_cast<uint32_t *>(&v);
    }
};
template <> struct pair_of<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float a, float b)
    {
        __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
        return *reinterpret_cast<uint32_t *>(&v);
    }
};

} // namespace

#endif
