// FusedAttention for half types, short sequences on a large batch (kernel DT_CU_ATTN_MMA_SPLIT;
// the layer and the other kernels: attention.c, attention_kernels.cu): the mma.sync kernel's
// arithmetic with the keys split over the warps of a block. At 8 x 128 BERT the mma kernel
// runs 256 one-warp blocks, each going through two 64-key tiles one after the other (Q load,
// copies, products, softmax, products, again), about two warps per SM: the time is that chain's
// latency, not the FLOPs. Here a block is the same 16 query rows and `ks` warps (2 or 4); warp
// w takes key tiles w, w + ks, ... into a K/V buffer of its own (no block barrier between
// tiles), and at the end the warps' online-softmax states are merged flash-decoding style:
// each writes its row maxima m, sums l and unnormalised outputs o to shared memory, and warp
// 0 rescales by exp(m_w - M) (0 for a warp whose keys were all -inf) and stores. The mask of a
// tile is read into registers before the wait for its K and V copies, so its loads overlap them.
// Semantics are the mma kernel's: scores scaled by q_scale * k_scale in float32, the mask added
// in float32, P rounded to the operand type, rows without a finite probability NaN (0 with
// nan_to_zero: a warp's NaN sum reaches the merged one). Head dims multiples of 16 up to 64.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

namespace {

constexpr int kKeys = kMmaKeys;        // keys per tile
constexpr int kDK = 64;                // largest head dim
constexpr int kLd = kDK + 8;           // elements a K or V row: 16 bytes of pad (conflict-free)
constexpr int kMaxSplit = 4;
// Shared memory a warp: its K and V tile; after the last tile, its merge record (fits).
constexpr int kWarpBytes = 2 * kKeys * kLd * 2;
static_assert((kDK / 8) * 4 * 32 * 4 + 4 * 32 * 4 <= kWarpBytes, "merge record");

template <typename T>
__global__ void __launch_bounds__(32 * kMaxSplit) attention_split_k(const T *__restrict__ q, const T *__restrict__ k,
                                                                    const T *__restrict__ v, const T *__restrict__ mask,
                                                                    T *__restrict__ y, dt_cu_attn g, int64_t qtiles)
{
    dt_grid_wait();
    extern __shared__ __align__(16) unsigned char smem[];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, ks = blockDim.x >> 5;
    const int gr = lane >> 2, tg = lane & 3;
    T *Ks = reinterpret_cast<T *>(smem + (size_t)w * kWarpBytes);   // [key][d]
    T *Vs = Ks + kKeys * kLd;                                         // [key][dv]
    const int64_t item = blockIdx.x / qtiles, q0 = blockIdx.x % qtiles * 16;
    const int64_t S = g.S, L = g.L;
    const int D = (int)g.D, Dv = (int)g.Dv;
    const item_base ib(g, item);
    const float scale = g.q_scale * g.k_scale;
    const lane_rows lr(q0, gr, S);
    const T zero = st<T>(0.f);

    float o[kDK / 8][4];
#pragma unroll
    for (int j = 0; j < kDK / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;   // l: this lane's columns only
    uint32_t qf[kDK / 16][4];
    bool have_q = false;

    for (int64_t t0 = (int64_t)w * kKeys; t0 < L; t0 += (int64_t)ks * kKeys) {
        const int nt = (int)(L - t0 < kKeys ? L - t0 : kKeys), rows = (nt + 15) & ~15;
        // This tile's copies (rows up to the 16-key chunk past L zero-filled: a garbage V
        // times P = 0 would be NaN); the warp's buffer is its own, read by nobody else.
        if (g.bshd || g.krows) {
            const int dc = D / 8;
            for (int i = lane; i < rows * dc; i += 32) {
                const int t = i / dc, d = (i - t * dc) * 8;
                const bool in = t < nt;
                cp_async16(&Ks[t * kLd + d], in ? k + ib.kb + (t0 + t) * ib.k_ts + d : k + ib.kb, in);
            }
        } else {   // Kt [D, L]: read along the keys
            for (int i = lane; i < rows * D; i += 32) {
                const int d = i / rows, t = i - d * rows;
                Ks[t * kLd + d] = t < nt ? k[ib.kb + (t0 + t) + (int64_t)d * ib.k_ds] : zero;
            }
        }
        const int vc = Dv / 8;
        for (int i = lane; i < rows * vc; i += 32) {
            const int t = i / vc, j = (i - t * vc) * 8;
            const bool in = t < nt;
            cp_async16(&Vs[t * kLd + j], in ? v + ib.vb + (t0 + t) * ib.v_rs + j : v + ib.vb, in);
        }
        cp_async_commit();
        // While they fly: Q's fragments (the first tile) and the tile's mask.
        if (!have_q) {
            mma_load_q<T, kDK>(qf, q, ib, lr, D, tg);
            have_q = true;
        }
        float mk[kKeys / 8][4];
        mma_load_mask<T>(mk, mask, g, ib, lr, t0, nt, tg);
        cp_async_wait<0>();
        __syncwarp();   // every lane's copies and stores of this tile are visible to the warp
        mma_tile<T, kDK, kLd>(qf, Ks, Vs, mk, nt, D, Dv, scale, gr, tg, m_a, m_b, l_a, l_b, o);
        __syncwarp();   // the warp's readers of this buffer are done before its next copies
    }

    l_a = row_sum4(l_a);
    l_b = row_sum4(l_b);
    if (ks > 1) {
        // Merge records in the warps' own buffers, laid out by lane (fragment positions match
        // across warps): o as [j][e][lane], then m_a, m_b, l_a, l_b as [4][lane].
        float *rec = reinterpret_cast<float *>(smem + (size_t)w * kWarpBytes);
        if (w > 0) {
#pragma unroll
            for (int j = 0; j < kDK / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) rec[(j * 4 + e) * 32 + lane] = o[j][e];
            float *ml = rec + (kDK / 8) * 4 * 32;
            ml[lane] = m_a, ml[32 + lane] = m_b, ml[64 + lane] = l_a, ml[96 + lane] = l_b;
        }
        __syncthreads();
        if (w > 0) return;
        float M_a = m_a, M_b = m_b;
        for (int u = 1; u < ks; u++) {
            const float *ml = reinterpret_cast<const float *>(smem + (size_t)u * kWarpBytes) + (kDK / 8) * 4 * 32;
            M_a = fmaxf(M_a, ml[lane]);
            M_b = fmaxf(M_b, ml[32 + lane]);
        }
        // A warp whose keys were all -inf (m -inf) adds nothing; +inf against +inf is NaN, as
        // the single-warp kernel's exp(inf - inf) is.
        const float f_a = m_a == -INFINITY ? 0.f : expf(m_a - M_a), f_b = m_b == -INFINITY ? 0.f : expf(m_b - M_b);
        scale_rows<kDK / 8>(o, l_a, l_b, f_a, f_b);
        for (int u = 1; u < ks; u++) {
            const float *r = reinterpret_cast<const float *>(smem + (size_t)u * kWarpBytes);
            const float *ml = r + (kDK / 8) * 4 * 32;
            const float ma = ml[lane], mb = ml[32 + lane];
            const float ua = ma == -INFINITY ? 0.f : expf(ma - M_a), ub = mb == -INFINITY ? 0.f : expf(mb - M_b);
            l_a += ml[64 + lane] * ua;
            l_b += ml[96 + lane] * ub;
#pragma unroll
            for (int j = 0; j < kDK / 8; j++) {
                o[j][0] += r[(j * 4 + 0) * 32 + lane] * ua;
                o[j][1] += r[(j * 4 + 1) * 32 + lane] * ua;
                o[j][2] += r[(j * 4 + 2) * 32 + lane] * ub;
                o[j][3] += r[(j * 4 + 3) * 32 + lane] * ub;
            }
        }
    }
    mma_store<T, kDK>(y, g, ib, lr, Dv, tg, l_a, l_b, o);
}

template <typename T>
int launch_split(const void *q, const void *k, const void *v, const void *mask, void *y, const dt_cu_attn *g,
                 cudaStream_t s)
{
    // The most any launch asks for, set once before first use (a first run at a shape runs
    // plainly before a CUDA graph records it).
    static bool ready = false;
    if (!ready) {
        cudaError_t e = cudaFuncSetAttribute(attention_split_k<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             kMaxSplit * kWarpBytes);
        if (e != cudaSuccess) return (int)e;
        ready = true;
    }
    const int64_t qtiles = (g->S + 15) / 16;
    if (g->count > (int64_t)0x7fffffff / qtiles) return (int)cudaErrorInvalidConfiguration;
    const int ks = dt_cu_attention_split_warps(g->count, g->S, g->L);
    dt_launch(attention_split_k<T>, (unsigned)(g->count * qtiles), 32 * ks, (size_t)ks * kWarpBytes, s, 
        (const T *)q, (const T *)k, (const T *)v, (const T *)mask, (T *)y, *g, qtiles);
    return (int)cudaGetLastError();
}

}  // namespace

// Warps a block: doubled (to 2, then 4) while the warps are fewer than the key tiles and the
// grid's warps stay within about four per SM of an H200 (132 SMs); 1 where one block per 16
// rows already fills it. 3 tiles get 4 warps, one without keys (its state merges as nothing).
extern "C" int dt_cu_attention_split_warps(int64_t count, int64_t S, int64_t L)
{
    const int64_t blocks = count * ((S + 15) / 16), tiles = (L + kKeys - 1) / kKeys;
    int ks = 1;
    while (ks < kMaxSplit && ks < tiles && blocks * ks * 2 <= 4 * 264) ks *= 2;
    return ks;
}

extern "C" int dt_cu_attention_split_applies(int dtype, int64_t D, int64_t Dv)
{
    return dt_cu_attention_tc(dtype, D, Dv) && D <= kDK && Dv <= kDK;
}

extern "C" int dt_cu_attention_split(int dtype, const void *q, const void *k, const void *v, const void *mask, void *y,
                                     const dt_cu_attn *g, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    if (dtype == DUCTILE_FLOAT16) return launch_split<__half>(q, k, v, mask, y, g, s);
    if (dtype == DUCTILE_BFLOAT16) return launch_split<__nv_bfloat16>(q, k, v, mask, y, g, s);
    return (int)cudaErrorInvalidValue;
}
