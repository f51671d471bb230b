// What the FusedAttention kernels share (attention_kernels.cu, attention_split.cu): where an
// item's rows are in each layout, two 16-bit elements packed as one mma operand register, and
// the mma.sync kernels' per-warp steps (Q fragments, a tile's mask, a tile's flash step, the
// store).
#ifndef DT_CUDA_ATTENTION_CUH
#define DT_CUDA_ATTENTION_CUH

#include "backend/cuda/cuda.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/mma.cuh"

#include <math.h>
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
        } else if (g.krows) {   // K [.., L, D]: rows are keys, as bshd's
            qb = item * S * D, q_rs = D;
            kb = item * L * D, k_ts = D, k_ds = 1;
            vb = item * L * Dv, v_rs = Dv;
            yb = item * S * Dv, y_rs = Dv;
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

// ---- the mma.sync flash step of one warp's 16 query rows (attention_mma_k, attention_split_k) ----
// Fragment layouts: mma.cuh. A lane holds rows a = q0 + g and b = q0 + g + 8 (lane_rows) (g = lane /
// 4) and, of each 8-key n-tile, keys 2 t and 2 t + 1 (t = lane % 4).
constexpr int kMmaKeys = 64;   // keys per tile

// This lane's two query rows of the warp's 16 at q0, and whether each is inside S.
struct lane_rows {
    int64_t a, b;
    bool ok_a, ok_b;
    __device__ lane_rows(int64_t q0, int gr, int64_t S) : a(q0 + gr), b(q0 + gr + 8), ok_a(a < S), ok_b(b < S) {}
};

// Scales the lane's running sums and outputs: row a's (l_a, o[j][0..1]) by fa, row b's by fb.
template <int N>
__device__ __forceinline__ void scale_rows(float (&o)[N][4], float &l_a, float &l_b, float fa, float fb)
{
    l_a *= fa;
    l_b *= fb;
#pragma unroll
    for (int j = 0; j < N; j++) {
        o[j][0] *= fa;
        o[j][1] *= fa;
        o[j][2] *= fb;
        o[j][3] *= fb;
    }
}

// Q's A fragments for the warp's 16 rows, all of D (rows past S: zeros).
template <typename T, int DK>
__device__ __forceinline__ void mma_load_q(uint32_t (&qf)[DK / 16][4], const T *q, const item_base &ib,
                                           const lane_rows &r, int D, int tg)
{
#pragma unroll
    for (int c = 0; c < DK / 16; c++) {
        qf[c][0] = qf[c][1] = qf[c][2] = qf[c][3] = 0u;
        if (c * 16 < D) {
            const int d = c * 16 + 2 * tg;
            if (r.ok_a) {
                qf[c][0] = *reinterpret_cast<const uint32_t *>(q + ib.qb + r.a * ib.q_rs + d);
                qf[c][2] = *reinterpret_cast<const uint32_t *>(q + ib.qb + r.a * ib.q_rs + d + 8);
            }
            if (r.ok_b) {
                qf[c][1] = *reinterpret_cast<const uint32_t *>(q + ib.qb + r.b * ib.q_rs + d);
                qf[c][3] = *reinterpret_cast<const uint32_t *>(q + ib.qb + r.b * ib.q_rs + d + 8);
            }
        }
    }
}

// The mask of the lane's scores in the tile at t0 (nt keys), as float; 0 where there is none,
// past the tile, or past S. Loaded ahead of the tile's K/V copies' wait, their latency overlaps.
template <typename T>
__device__ __forceinline__ void mma_load_mask(float (&mk)[kMmaKeys / 8][4], const T *mask, const dt_cu_attn &g,
                                              const item_base &ib, const lane_rows &r, int64_t t0, int nt, int tg)
{
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = nb * 8 + 2 * tg + (e & 1);
            const bool lo = e < 2;
            mk[nb][e] = mask && col < nt && (lo ? r.ok_a : r.ok_b)
                            ? ld(mask[ib.mb + (lo ? r.a : r.b) * g.mi + (t0 + col) * g.mj])
                            : 0.f;
        }
    }
}

// One tile: the scores against its nt keys (K and V rows kLd elements apart in shared memory,
// rows up to the 16-key chunk past nt zero), scaled in float32, the mask added, the online
// softmax update of the running maxima m, sums l (this lane's columns) and outputs o, and P V
// with P rounded to the operand type; the scores' accumulator layout is P V's A operand.
template <typename T, int DK, int kLd>
__device__ __forceinline__ void mma_tile(const uint32_t (&qf)[DK / 16][4], const T *Kt, const T *Vt,
                                         const float (&mk)[kMmaKeys / 8][4], int nt, int D, int Dv, float scale, int gr,
                                         int tg, float &m_a, float &m_b, float &l_a, float &l_b, float (&o)[DK / 8][4])
{
    // Scores of the warp's 16 rows and the tile's keys, 8 keys an n-tile; scale, mask, maxima
    // (the 4 lanes of a row hold its 64 columns).
    float s[kMmaKeys / 8][4];
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; nb++) {
        s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
        if (nb * 8 < nt) {
            const T *kr = Kt + (nb * 8 + gr) * kLd + 2 * tg;
#pragma unroll
            for (int c = 0; c < DK / 16; c++)
                if (c * 16 < D)
                    mma16816<T>(s[nb], qf[c], *reinterpret_cast<const uint32_t *>(kr + c * 16),
                                *reinterpret_cast<const uint32_t *>(kr + c * 16 + 8));
        }
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = nb * 8 + 2 * tg + (e & 1);
            const float x = col < nt ? s[nb][e] * scale + mk[nb][e] : -INFINITY;
            s[nb][e] = x;
            if (e < 2) mx_a = fmaxf(mx_a, x);
            else mx_b = fmaxf(mx_b, x);
        }
    }
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    // No finite max yet (all keys so far -inf or NaN): nothing accumulates.
    const float corr_a = mn_a == -INFINITY ? 1.f : expf(m_a - mn_a);
    const float corr_b = mn_b == -INFINITY ? 1.f : expf(m_b - mn_b);
    m_a = mn_a;
    m_b = mn_b;
    scale_rows<DK / 8>(o, l_a, l_b, corr_a, corr_b);
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = nb * 8 + 2 * tg + (e & 1);
            const float mn = e < 2 ? mn_a : mn_b;
            const float p = col < nt && mn != -INFINITY ? expf(s[nb][e] - mn) : 0.f;
            s[nb][e] = p;
            if (e < 2) l_a += p;
            else l_b += p;
        }
    }
    // P V: P's A fragment for keys 16 kc.. is the scores' n-tiles 2 kc and 2 kc + 1.
#pragma unroll
    for (int kc = 0; kc < kMmaKeys / 16; kc++) {
        if (kc * 16 >= nt) continue;
        uint32_t pa[4] = {pair_of<T>::pack(s[2 * kc][0], s[2 * kc][1]), pair_of<T>::pack(s[2 * kc][2], s[2 * kc][3]),
                          pair_of<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                          pair_of<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
        for (int j = 0; j < DK / 8; j++) {
            if (j * 8 >= Dv) continue;
            // B = V rows 16 kc + 2t, +1 (b0) and +8, +9 (b1) of column 8 j + g.
            const unsigned short *vr =
                reinterpret_cast<const unsigned short *>(Vt) + (kc * 16 + 2 * tg) * kLd + j * 8 + gr;
            mma16816<T>(o[j], pa, pack_bits(vr[0], vr[kLd]), pack_bits(vr[8 * kLd], vr[9 * kLd]));
        }
    }
}

// The rows' outputs o / l; l is NaN (a NaN or +inf score) or 0 (every key -inf): the row's P
// is NaN, so its output NaN (0 with nan_to_zero). l: the rows' sums over their 4 lanes.
template <typename T, int DK>
__device__ __forceinline__ void mma_store(T *y, const dt_cu_attn &g, const item_base &ib, const lane_rows &r,
                                          int Dv, int tg, float l_a, float l_b,
                                          const float (&o)[DK / 8][4])
{
    const float bad_v = g.nan_to_zero ? 0.f : NAN;
    const bool bad_a = !(l_a > 0.f), bad_b = !(l_b > 0.f);
    const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
#pragma unroll
    for (int j = 0; j < DK / 8; j++) {
        if (j * 8 >= Dv) continue;
        const int col = j * 8 + 2 * tg;
        if (r.ok_a)
            *reinterpret_cast<uint32_t *>(y + ib.yb + r.a * ib.y_rs + col) =
                bad_a ? pair_of<T>::pack(bad_v, bad_v) : pair_of<T>::pack(o[j][0] * inv_a, o[j][1] * inv_a);
        if (r.ok_b)
            *reinterpret_cast<uint32_t *>(y + ib.yb + r.b * ib.y_rs + col) =
                bad_b ? pair_of<T>::pack(bad_v, bad_v) : pair_of<T>::pack(o[j][2] * inv_b, o[j][3] * inv_b);
    }
}

// Sum over the 4 lanes of a row.
__device__ __forceinline__ float row_sum4(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

}  // namespace

#endif
