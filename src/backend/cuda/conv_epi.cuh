// The store of the own channels-last convolutions' epilogue (conv_tc_nhwc.cu,
// conv_smallc_mma.cu, conv_patch_mma.cu): two neighbouring output channels n, n + 1 of one
// pixel, from float32 sums that already hold the bias.
#ifndef DT_CUDA_CONV_EPI_CUH
#define DT_CUDA_CONV_EPI_CUH

#include "backend/cuda/act.cuh"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/mma.cuh"

namespace {

// y[o], y[o + 1] = act(v0 + res[o]), act(v1 + res[o + 1]) (res NULL: no residual), each rounded
// once to T. pairs: one 4-byte load and store for both (the caller's promise: M even, y and res
// 4-byte aligned); two: channel n + 1 exists, else only y[o] is written.
template <typename T>
__device__ __forceinline__ void conv_store2(T *y, const T *res, int64_t o, float v0, float v1, bool pairs, bool two,
                                            int op, float p0, float p1)
{
    if (pairs && two) {
        if (res) {
            const uint32_t rv = *reinterpret_cast<const uint32_t *>(res + o);
            const T *r2 = reinterpret_cast<const T *>(&rv);
            v0 += ld(r2[0]);
            v1 += ld(r2[1]);
        }
        *reinterpret_cast<uint32_t *>(y + o) = pair_of<T>::pack(act(op, v0, p0, p1), act(op, v1, p0, p1));
        return;
    }
    if (res) v0 += ld(res[o]);
    y[o] = st<T>(act(op, v0, p0, p1));
    if (two) {
        if (res) v1 += ld(res[o + 1]);
        y[o + 1] = st<T>(act(op, v1, p0, p1));
    }
}

} // namespace

#endif
