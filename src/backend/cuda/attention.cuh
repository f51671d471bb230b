// What the FusedAttention kernels share (attention_kernels.cu, attention_split.cu): where an
// item's rows are in each layout, and two 16-bit elements packed as one mma operand register.
#ifndef DT_CUDA_ATTENTION_CUH
#define DT_CUDA_ATTENTION_CUH

#include "backend/cuda/cuda.h"

#include <stdint.h>

namespace {

// Where one item's rows are: [.., S, D] blocks (Kt [D, L]), or head h of [B, S, H, D] rows;
// element offsets of its first Q, K, V, Y and mask elements and the strides of rows and keys.
struct item_base {
    int64_t qb, kb, vb, yb, q_rs, k_ts, k_ds, v_rs, y_rs, mb;
    __device__ item_base(const dt_cu_attn &g, int64_t item)
    {
        const int64_t S = g.S, D = g.D, L = g.L, Dv = g.Dv;
        if (g.bshd) {      // rows ldq, ldk, ldv apart (packed qkv: 3 H D, K and V in Q's rows)
            int64_t b = item / g.H, h = item % g.H, H = g.H;
            qb = b * S * g.ldq + h * D, q_rs = g.ldq;
            kb = b * L * g.ldk + h * D, k_ts = g.ldk, k_ds = 1;
            vb = b * L * g.ldv + h * Dv, v_rs = g.ldv;
            yb = (b * S * H + h) * Dv, y_rs = H * Dv;
        } else {
            qb = item * S * D, q_rs = D;
            kb = item * D * L, k_ts = 1, k_ds = L;
            vb = item * L * Dv, v_rs = Dv;
            yb = item * S * Dv, y_rs = Dv;
        }
        mb = 0;
        int64_t rest = item;
        for (int d = g.nbatch - 1; d >= 0; d--) {
            mb += rest % g.batch[d] * g.mstride[d];
            rest /= g.batch[d];
        }
    }
};

// Two 16-bit elements as one operand register, the first in the low half.
__device__ __forceinline__ uint32_t pack_bits(unsigned short lo, unsigned short hi)
{
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

}  // namespace

#endif
