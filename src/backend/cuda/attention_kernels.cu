// FusedAttention's kernel (ops/fused.h; the layer: attention.c): softmax(Q Kt + M) V of one
// (batch, head) item and a block of query rows per CUDA block, flash-style: the keys come in
// tiles of 32 (one per lane of a warp), K and V tiles staged in shared memory as float32, the
// softmax kept online (running max and sum per query row, the partial output rescaled when the
// max grows), so the [S, L] scores never exist in memory. Head dims of any size: Q.K in chunks
// of 128 of D, and the output in chunks of 128 of Dv (grid y; the scores are recomputed per
// chunk, which only heads wider than 128 pay). Elements load into float32 (Q and K multiplied
// by their scales on the way, as the CPU's kernel does) and everything accumulates in float32;
// the output is rounded once.
//
// What the CPU's unfused chain gives for rows without a finite probability is kept: a row
// whose scores are all -inf (fully masked) or that holds a NaN or +inf has NaN probabilities
// there, so its output is NaN, or 0 with nan_to_zero (Where(IsNaN(P), 0, P) zeroes every P of
// the row). L == 0 is the layer's (attention.c: zeros, as a product over no keys).
#include "backend/cuda/launch.cuh"
#include "backend/cuda/cuda.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>

namespace {


constexpr int kKT = 32;               // keys per tile: one per lane
constexpr int kDC = 128;              // D chunk of Q.K; Dv columns per block
constexpr int kWarps = 4;
constexpr int kRows = 4;              // query rows per warp
constexpr int kQT = kWarps * kRows;   // query rows per block
constexpr int kCols = kDC / 32;       // output columns per lane

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) attention_k(const T *__restrict__ q, const T *__restrict__ k,
                                                           const T *__restrict__ v, const T *__restrict__ mask,
                                                           T *__restrict__ y, dt_cu_attn g, int64_t qtiles)
{
    dt_grid_wait();
    __shared__ float ks[kKT][kDC + 1];                  // +1: lane t reads row t, conflict-free
    __shared__ float vs[kKT][kDC];
    __shared__ __align__(16) float qs[kWarps][kRows][kDC];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, tid = threadIdx.x;
    const int64_t item = blockIdx.x / qtiles, qt = blockIdx.x % qtiles;
    const int64_t S = g.S, D = g.D, L = g.L, Dv = g.Dv;
    const int64_t dv0 = (int64_t)blockIdx.y * kDC;
    const int dvc = (int)(Dv - dv0 < kDC ? Dv - dv0 : kDC);
    const int nc = (dvc + 31) / 32;

    const item_base ib(g, item);
    const int64_t qb = ib.qb, kb = ib.kb, vb = ib.vb, yb = ib.yb, q_rs = ib.q_rs, k_ts = ib.k_ts, k_ds = ib.k_ds,
                  v_rs = ib.v_rs, y_rs = ib.y_rs, mb = ib.mb;

    const int64_t row0 = qt * kQT + w * kRows;
    float m[kRows], l[kRows], acc[kRows][kCols];
#pragma unroll
    for (int r = 0; r < kRows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < kCols; c++) acc[r][c] = 0.f;
    }
    const bool one_chunk = D <= kDC;

    for (int64_t t0 = 0; t0 < L; t0 += kKT) {
        const int nt = (int)(L - t0 < kKT ? L - t0 : kKT);
        float s[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++) s[r] = 0.f;
        for (int64_t d0 = 0; d0 < D || d0 == 0; d0 += kDC) {
            const int dc = (int)(D - d0 < kDC ? D - d0 : kDC);
            __syncthreads();   // the previous tile's readers are done
            if (g.bshd || g.krows) {   // K rows are keys: read along d
                for (int i = tid; i < kKT * dc; i += kWarps * 32) {
                    int t = i / dc, d = i - t * dc;
                    ks[t][d] = t < nt ? ld(k[kb + (t0 + t) * k_ts + d0 + d]) * g.k_scale : 0.f;
                }
            } else {           // Kt [D, L]: read along the keys
                for (int i = tid; i < kKT * dc; i += kWarps * 32) {
                    int d = i / kKT, t = i - d * kKT;
                    ks[t][d] = t < nt ? ld(k[kb + (t0 + t) * k_ts + (d0 + d) * k_ds]) * g.k_scale : 0.f;
                }
            }
            if (d0 == 0) {
                for (int i = tid; i < kKT * nc * 32; i += kWarps * 32) {
                    int t = i / (nc * 32), j = i - t * (nc * 32);
                    vs[t][j] = t < nt && j < dvc ? ld(v[vb + (t0 + t) * v_rs + dv0 + j]) : 0.f;
                }
            }
            if (!one_chunk || t0 == 0) {
#pragma unroll
                for (int r = 0; r < kRows; r++) {
                    int64_t i = row0 + r;
                    for (int d = lane; d < kDC; d += 32)
                        qs[w][r][d] = i < S && d < dc ? ld(q[qb + i * q_rs + d0 + d]) * g.q_scale : 0.f;
                }
            }
            __syncthreads();
            int d = 0;
            for (; d + 4 <= dc; d += 4) {
                float k0 = ks[lane][d], k1 = ks[lane][d + 1], k2 = ks[lane][d + 2], k3 = ks[lane][d + 3];
#pragma unroll
                for (int r = 0; r < kRows; r++) {
                    float4 qv = *reinterpret_cast<const float4 *>(&qs[w][r][d]);
                    s[r] = fmaf(qv.x, k0, s[r]);
                    s[r] = fmaf(qv.y, k1, s[r]);
                    s[r] = fmaf(qv.z, k2, s[r]);
                    s[r] = fmaf(qv.w, k3, s[r]);
                }
            }
            for (; d < dc; d++) {
                float kv = ks[lane][d];
#pragma unroll
                for (int r = 0; r < kRows; r++) s[r] = fmaf(qs[w][r][d], kv, s[r]);
            }
            if (D == 0) break;
        }

        // The mask, the online softmax update, and P V for this tile.
        const bool valid = lane < nt;
        float p[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            int64_t i = row0 + r;
            float sc = s[r];
            if (mask && valid && i < S) sc += ld(mask[mb + i * g.mi + (t0 + lane) * g.mj]);
            sc = valid ? sc : -INFINITY;
            float mn = fmaxf(m[r], warp_max(sc));
            // No finite max yet (all keys so far -inf or NaN): nothing accumulates.
            float corr = mn == -INFINITY ? 1.f : expf(m[r] - mn);
            p[r] = valid && mn != -INFINITY ? expf(sc - mn) : 0.f;
            l[r] = l[r] * corr + warp_sum(p[r]);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < kCols; c++) acc[r][c] *= corr;
        }
        for (int t = 0; t < nt; t++) {
            float pt[kRows];
#pragma unroll
            for (int r = 0; r < kRows; r++) pt[r] = __shfl_sync(0xffffffffu, p[r], t);
#pragma unroll
            for (int c = 0; c < kCols; c++) {
                if (c < nc) {
                    float vv = vs[t][lane + 32 * c];
#pragma unroll
                    for (int r = 0; r < kRows; r++) acc[r][c] = fmaf(pt[r], vv, acc[r][c]);
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < kRows; r++) {
        int64_t i = row0 + r;
        if (i >= S) continue;
        // l is NaN (a NaN or +inf score) or 0 (every key -inf): the row's P is NaN.
        bool bad = !(l[r] > 0.f);
        float inv = 1.f / l[r];
#pragma unroll
        for (int c = 0; c < kCols; c++) {
            int j = lane + 32 * c;
            if (j < dvc) y[yb + i * y_rs + dv0 + j] = st<T>(bad ? (g.nan_to_zero ? 0.f : NAN) : acc[r][c] * inv);
        }
    }
}


// ---- half and bfloat16 on tensor cores ----
// The same computation for half Q, K, V with head dims multiples of 16 up to 128: per block
// 64 query rows (16 per warp) against tiles of 64 keys, Q K^T and P V as WMMA products (half
// operands, float32 accumulators), the scores scaled by q_scale * k_scale in float32 (one
// rounding less than scaling the half operands), the online softmax in float32 by two lanes
// per row, P rounded to the operand type for its product as flash attention does, the output
// rows kept in float32 registers. Shared memory: the Q block, one K and one V tile, a float32
// scratch per warp for the scores and each tile's P V, and P.
constexpr int kTcRows = 64;   // query rows per block
constexpr int kTcKeys = 64;   // keys per tile

__host__ __device__ constexpr int tc_ldf(int dvmax) { return (dvmax > kTcKeys ? dvmax : kTcKeys) + 4; }

// Bytes of shared memory for head dims D, Dv (ldq = D + 8, ldv = Dv + 8 elements: rows 16
// bytes apart in the banks); every region starts at a multiple of 128 bytes.
__host__ __device__ constexpr int tc_smem(int D, int Dv, int dvmax)
{
    return 2 * kTcRows * (D + 8) * 2 + kTcKeys * (Dv + 8) * 2 + kWarps * 16 * tc_ldf(dvmax) * 4 +
           kWarps * 16 * (kTcKeys + 8) * 2;
}

template <typename T, int DVMAX>
__global__ void __launch_bounds__(kWarps * 32) attention_tc_k(const T *__restrict__ q, const T *__restrict__ k,
                                                              const T *__restrict__ v, const T *__restrict__ mask,
                                                              T *__restrict__ y, dt_cu_attn g, int64_t qtiles)
{
    dt_grid_wait();
    using namespace nvcuda;
    extern __shared__ __align__(128) unsigned char smem[];
    constexpr int ldf = tc_ldf(DVMAX), ldp = kTcKeys + 8, NO = DVMAX / 2;
    const int D = (int)g.D, Dv = (int)g.Dv, ldq = D + 8, ldv = Dv + 8;
    T *Qs = reinterpret_cast<T *>(smem);                        // [64 rows][ldq]
    T *Ks = Qs + kTcRows * ldq;                                 // [64 keys][ldq]
    T *Vs = Ks + kTcKeys * ldq;                                 // [64 keys][ldv]
    float *Sf = reinterpret_cast<float *>(Vs + kTcKeys * ldv);  // [4 warps][16][ldf]
    T *Ph = reinterpret_cast<T *>(Sf + kWarps * 16 * ldf);      // [4 warps][16][ldp]
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, tid = threadIdx.x;
    const int64_t item = blockIdx.x / qtiles, q0 = blockIdx.x % qtiles * kTcRows;
    const int64_t S = g.S, L = g.L;
    const item_base ib(g, item);
    const T zero = st<T>(0.f);

    for (int i = tid; i < kTcRows * D; i += kWarps * 32) {
        int r = i / D, d = i - r * D;
        Qs[r * ldq + d] = q0 + r < S ? q[ib.qb + (q0 + r) * ib.q_rs + d] : zero;
    }
    // Two lanes per query row: lane holds row r of the warp's 16, and half hh of the columns.
    const int r = lane >> 1, hh = lane & 1;
    const int64_t row = q0 + w * 16 + r;
    const bool row_ok = row < S;
    const float scale = g.q_scale * g.k_scale;
    float m = -INFINITY, l = 0.f, o[NO];
#pragma unroll
    for (int i = 0; i < NO; i++) o[i] = 0.f;
    float *sf = Sf + w * 16 * ldf;
    T *ph = Ph + w * 16 * ldp;

    for (int64_t t0 = 0; t0 < L; t0 += kTcKeys) {
        const int nt = (int)(L - t0 < kTcKeys ? L - t0 : kTcKeys);
        __syncthreads();   // the previous tile's readers are done (the first: Q is written)
        if (g.bshd || g.krows) {
            for (int i = tid; i < kTcKeys * D; i += kWarps * 32) {
                int t = i / D, d = i - t * D;
                Ks[t * ldq + d] = t < nt ? k[ib.kb + (t0 + t) * ib.k_ts + d] : zero;
            }
        } else {
            for (int i = tid; i < kTcKeys * D; i += kWarps * 32) {
                int d = i / kTcKeys, t = i - d * kTcKeys;
                Ks[t * ldq + d] = t < nt ? k[ib.kb + (t0 + t) + (int64_t)d * ib.k_ds] : zero;
            }
        }
        for (int i = tid; i < kTcKeys * Dv; i += kWarps * 32) {
            int t = i / Dv, j = i - t * Dv;
            Vs[t * ldv + j] = t < nt ? v[ib.vb + (t0 + t) * ib.v_rs + j] : zero;
        }
        __syncthreads();

        // Scores of the warp's 16 rows and the tile's 64 keys.
#pragma unroll
        for (int nb = 0; nb < kTcKeys / 16; nb++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
            wmma::fill_fragment(c, 0.f);
            for (int kd = 0; kd < D; kd += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(a, Qs + w * 16 * ldq + kd, ldq);
                wmma::load_matrix_sync(b, Ks + nb * 16 * ldq + kd, ldq);
                wmma::mma_sync(c, a, b, c);
            }
            wmma::store_matrix_sync(sf + nb * 16, c, ldf, wmma::mem_row_major);
        }
        __syncwarp();

        // Scale and mask (written back), the tile's max, the online update, P.
        float mt = -INFINITY;
#pragma unroll 8
        for (int c = 0; c < 32; c++) {
            int col = hh * 32 + c;
            float x = -INFINITY;
            if (col < nt) {
                x = sf[r * ldf + col] * scale;
                if (mask && row_ok) x += ld(mask[ib.mb + row * g.mi + (t0 + col) * g.mj]);
            }
            sf[r * ldf + col] = x;
            mt = fmaxf(mt, x);
        }
        mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
        const float mn = fmaxf(m, mt);
        // No finite max yet (all keys so far -inf or NaN): nothing accumulates.
        const float corr = mn == -INFINITY ? 1.f : expf(m - mn);
        float ps = 0.f;
#pragma unroll 8
        for (int c = 0; c < 32; c++) {
            int col = hh * 32 + c;
            float p = col < nt && mn != -INFINITY ? expf(sf[r * ldf + col] - mn) : 0.f;
            ps += p;
            ph[r * ldp + col] = st<T>(p);
        }
        ps += __shfl_xor_sync(0xffffffffu, ps, 1);
        l = l * corr + ps;
        m = mn;
#pragma unroll
        for (int i = 0; i < NO; i++) o[i] *= corr;
        __syncwarp();

        // This tile's P V into the warp's scratch, then added to the rows.
        for (int j = 0; j < Dv; j += 16) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
            wmma::fill_fragment(c, 0.f);
#pragma unroll
            for (int kk = 0; kk < kTcKeys; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
                wmma::load_matrix_sync(a, ph + kk, ldp);
                wmma::load_matrix_sync(b, Vs + kk * ldv + j, ldv);
                wmma::mma_sync(c, a, b, c);
            }
            wmma::store_matrix_sync(sf + j, c, ldf, wmma::mem_row_major);
        }
        __syncwarp();
#pragma unroll
        for (int i = 0; i < NO; i++) {
            int col = hh * NO + i;
            if (col < Dv) o[i] += sf[r * ldf + col];
        }
        __syncwarp();   // sf is the next tile's score scratch
    }

    if (!row_ok) return;
    // l is NaN (a NaN or +inf score) or 0 (every key -inf): the row's P is NaN.
    const bool bad = !(l > 0.f);
    const float inv = 1.f / l;
#pragma unroll
    for (int i = 0; i < NO; i++) {
        int col = hh * NO + i;
        if (col < Dv) y[ib.yb + row * ib.y_rs + col] = st<T>(bad ? (g.nan_to_zero ? 0.f : NAN) : o[i] * inv);
    }
}

// Launches the tensor-core kernel for half types when the head dims fit it; false otherwise.
template <typename T, int DVMAX>
int launch_tc(const void *q, const void *k, const void *v, const void *mask, void *y, const dt_cu_attn *g,
              cudaStream_t s)
{
    // The most any call of this instantiation asks for (D = 128), set once before first use
    // (a first run at a shape runs plainly before a CUDA graph records it).
    static bool ready = false;
    if (!ready) {
        cudaError_t e = cudaFuncSetAttribute(attention_tc_k<T, DVMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             tc_smem(128, DVMAX, DVMAX));
        if (e != cudaSuccess) return (int)e;
        ready = true;
    }
    int64_t qtiles = (g->S + kTcRows - 1) / kTcRows;
    if (g->count > (int64_t)0x7fffffff / qtiles) return (int)cudaErrorInvalidConfiguration;
    dt_launch(attention_tc_k<T, DVMAX>, (unsigned)(g->count * qtiles), kWarps * 32, tc_smem((int)g->D, (int)g->Dv, DVMAX), s, 
        (const T *)q, (const T *)k, (const T *)v, (const T *)mask, (T *)y, *g, qtiles);
    return (int)cudaGetLastError();
}

// ---- half and bfloat16 for short sequences: mma.sync, everything in registers ----
// Where the WMMA kernel above gives a block 64 query rows (8 x 128 BERT: 64 blocks for 132
// SMs, and at 16 tokens three of its four warps idle), this one gives each warp 16 query rows
// and a block 1, 2 or 4 warps (the launch picks the most that still make ~2 blocks per SM),
// so short sequences fill the GPU. Q K^T and P V are mma.sync.m16n8k16 products (half or
// bfloat16 operands, float32 accumulators) whose fragments stay in registers: the scores'
// accumulator layout is the A operand layout of P V (flash attention 2's trick), so scores,
// mask, online softmax and P never touch shared memory. K and V tiles of 64 keys are copied
// row-major into shared memory by cp.async (16 bytes a copy, all in flight at once; rows
// padded by 16 bytes so the fragment loads are conflict-free), double-buffered for head dims
// up to 64 (the next tile's copies overlap this tile's products); rows past L up to the
// 16-key chunk are zero-filled (a garbage V times P = 0 would be NaN). Kt given as [D, L]
// (not bshd) is read element by element. The same semantics as the kernels above: scores
// scaled by q_scale * k_scale in float32, the mask added in float32, P rounded to the operand
// type, rows without a finite probability NaN (0 with nan_to_zero). Head dims multiples of 16
// up to DK (64 or 128), as the WMMA kernel's.
// mma16816, cp_async16 and the fragment layouts: mma.cuh.
template <typename T, int DK>
__global__ void __launch_bounds__(128) attention_mma_k(const T *__restrict__ q, const T *__restrict__ k,
                                                       const T *__restrict__ v, const T *__restrict__ mask,
                                                       T *__restrict__ y, dt_cu_attn g, int64_t qtiles)
{
    dt_grid_wait();
    constexpr int kLd = DK + 8;                     // elements a K or V row: 16 bytes of pad
    constexpr int kStages = DK <= 64 ? 2 : 1;      // 2 x 36 KB would pass the 48 KB static limit
    __shared__ __align__(16) T Ks[kStages][kMmaKeys * kLd];   // [key][d]
    __shared__ __align__(16) T Vs[kStages][kMmaKeys * kLd];   // [key][dv]
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nthr = blockDim.x, nw = nthr >> 5;
    const int gr = lane >> 2, tg = lane & 3;
    const int64_t item = blockIdx.x / qtiles, q0 = blockIdx.x % qtiles * (16 * nw) + w * 16;
    const int64_t S = g.S, L = g.L;
    const int D = (int)g.D, Dv = (int)g.Dv;
    const item_base ib(g, item);
    const float scale = g.q_scale * g.k_scale;
    const lane_rows lr(q0, gr, S);

    uint32_t qf[DK / 16][4];
    mma_load_q<T, DK>(qf, q, ib, lr, D, tg);
    float o[DK / 8][4];
#pragma unroll
    for (int j = 0; j < DK / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;   // l: this lane's columns only
    const T zero = st<T>(0.f);

    // Copies of the tile at t0 into stage st: rows up to the 16-key chunk past L, those past
    // L zero-filled (cp.async with no source bytes; the source address is only the item's base).
    auto load = [&](int64_t t0, int st) {
        const int nt = (int)(L - t0 < kMmaKeys ? L - t0 : kMmaKeys), rows = (nt + 15) & ~15;
        if (g.bshd || g.krows) {   // K rows are keys
            const int dc = D / 8;
            for (int i = threadIdx.x; i < rows * dc; i += nthr) {
                const int t = i / dc, d = (i - t * dc) * 8;
                const bool in = t < nt;
                cp_async16(&Ks[st][t * kLd + d], in ? k + ib.kb + (t0 + t) * ib.k_ts + d : k + ib.kb, in);
            }
        } else {           // Kt [D, L]: read along the keys
            for (int i = threadIdx.x; i < rows * D; i += nthr) {
                const int d = i / rows, t = i - d * rows;
                Ks[st][t * kLd + d] = t < nt ? k[ib.kb + (t0 + t) + (int64_t)d * ib.k_ds] : zero;
            }
        }
        const int vc = Dv / 8;
        for (int i = threadIdx.x; i < rows * vc; i += nthr) {
            const int t = i / vc, j = (i - t * vc) * 8;
            const bool in = t < nt;
            cp_async16(&Vs[st][t * kLd + j], in ? v + ib.vb + (t0 + t) * ib.v_rs + j : v + ib.vb, in);
        }
        cp_async_commit();
    };
    load(0, 0);
    int it = 0;
    for (int64_t t0 = 0; t0 < L; t0 += kMmaKeys, it++) {
        const int nt = (int)(L - t0 < kMmaKeys ? L - t0 : kMmaKeys);
        const int st = kStages == 2 ? (it & 1) : 0;
        float mk[kMmaKeys / 8][4];
        mma_load_mask<T>(mk, mask, g, ib, lr, t0, nt, tg);
        if (kStages == 2 && t0 + kMmaKeys < L) {
            load(t0 + kMmaKeys, st ^ 1);   // its stage's readers finished before the last barrier
            cp_async_wait<1>();            // this tile's copies are done
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();   // every thread's copies and stores of this tile are visible
        mma_tile<T, DK, kLd>(qf, Ks[st], Vs[st], mk, nt, D, Dv, scale, gr, tg, m_a, m_b, l_a, l_b, o);
        __syncthreads();   // this stage's readers are done before a copy refills it
        if (kStages == 1 && t0 + kMmaKeys < L) load(t0 + kMmaKeys, 0);
    }

    mma_store<T, DK>(y, g, ib, lr, Dv, tg, row_sum4(l_a), row_sum4(l_b), o);
}

// Warps per block: the most (4, 2, 1) that still give about two blocks per SM of an H200.
int mma_warps(int64_t count, int64_t S)
{
    const int64_t tiles = count * ((S + 15) / 16);
    return tiles >= 4 * 264 ? 4 : tiles >= 2 * 264 ? 2 : 1;
}

template <typename T, int DK>
int launch_mma(const void *q, const void *k, const void *v, const void *mask, void *y, const dt_cu_attn *g,
               cudaStream_t s)
{
    const int nw = mma_warps(g->count, g->S);
    const int64_t qtiles = (g->S + 16 * nw - 1) / (16 * nw);
    if (g->count > (int64_t)0x7fffffff / qtiles) return (int)cudaErrorInvalidConfiguration;
    dt_launch(attention_mma_k<T, DK>, (unsigned)(g->count * qtiles), 32 * nw, 0, s, 
        (const T *)q, (const T *)k, (const T *)v, (const T *)mask, (T *)y, *g, qtiles);
    return (int)cudaGetLastError();
}

// The mma kernel's 16-byte copies of K (bshd) and V rows need 16-byte aligned bases (and Q's
// and Y's pairs 4-byte ones).
bool mma_aligned(const void *k, const void *v)
{
    return ((uintptr_t)k % 16) == 0 && ((uintptr_t)v % 16) == 0;
}

}  // namespace

extern "C" int dt_cu_attention_tc(int dtype, int64_t D, int64_t Dv)
{
    return (dtype == DUCTILE_FLOAT16 || dtype == DUCTILE_BFLOAT16) && D >= 16 && D <= 128 && D % 16 == 0 && Dv >= 16 &&
           Dv <= 128 && Dv % 16 == 0;
}

extern "C" int dt_cu_attention(int dtype, const void *q, const void *k, const void *v, const void *mask, void *y,
                               const dt_cu_attn *g, void *stream)
{
    if (g->count <= 0 || g->S <= 0 || g->Dv <= 0 || g->L <= 0) return 0;
    if (dt_cu_attention_split_applies(dtype, g->D, g->Dv) && g->kernel == DT_CU_ATTN_MMA_SPLIT && mma_aligned(q, k) &&
        mma_aligned(v, y))
        return dt_cu_attention_split(dtype, q, k, v, mask, y, g, stream);
    if (dt_cu_attention_tc(dtype, g->D, g->Dv) && (g->kernel == DT_CU_ATTN_MMA || g->kernel == DT_CU_ATTN_MMA_SPLIT) &&
        mma_aligned(q, k) &&
        mma_aligned(v, y)) {
        cudaStream_t ts = (cudaStream_t)stream;
        const int wide = g->D > 64 || g->Dv > 64;
        if (dtype == DUCTILE_FLOAT16)
            return wide ? launch_mma<__half, 128>(q, k, v, mask, y, g, ts) : launch_mma<__half, 64>(q, k, v, mask, y, g, ts);
        return wide ? launch_mma<__nv_bfloat16, 128>(q, k, v, mask, y, g, ts)
                    : launch_mma<__nv_bfloat16, 64>(q, k, v, mask, y, g, ts);
    }
    if (dt_cu_attention_tc(dtype, g->D, g->Dv) && g->kernel != DT_CU_ATTN_CORES) {
        cudaStream_t ts = (cudaStream_t)stream;
        if (dtype == DUCTILE_FLOAT16)
            return g->Dv <= 64 ? launch_tc<__half, 64>(q, k, v, mask, y, g, ts) : launch_tc<__half, 128>(q, k, v, mask, y, g, ts);
        return g->Dv <= 64 ? launch_tc<__nv_bfloat16, 64>(q, k, v, mask, y, g, ts)
                           : launch_tc<__nv_bfloat16, 128>(q, k, v, mask, y, g, ts);
    }
    int64_t qtiles = (g->S + kQT - 1) / kQT, chunks = (g->Dv + kDC - 1) / kDC;
    if (g->count > (int64_t)0x7fffffff / qtiles || chunks > 65535) return (int)cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)(g->count * qtiles), (unsigned)chunks);
    cudaStream_t s = (cudaStream_t)stream;
    switch (dtype) {
    case DUCTILE_FLOAT32:
        dt_launch(attention_k<float>, grid, kWarps * 32, 0, s, (const float *)q, (const float *)k, (const float *)v,
                                                        (const float *)mask, (float *)y, *g, qtiles);
        break;
    case DUCTILE_FLOAT16:
        dt_launch(attention_k<__half>, grid, kWarps * 32, 0, s, (const __half *)q, (const __half *)k, (const __half *)v,
                                                         (const __half *)mask, (__half *)y, *g, qtiles);
        break;
    case DUCTILE_BFLOAT16:
        dt_launch(attention_k<__nv_bfloat16>, grid, kWarps * 32, 0, s, (const __nv_bfloat16 *)q, (const __nv_bfloat16 *)k,
                                                                (const __nv_bfloat16 *)v, (const __nv_bfloat16 *)mask,
                                                                (__nv_bfloat16 *)y, *g, qtiles);
        break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}
