// FusedMatMul with norm = 1 on tensor cores (cuda.h, dt_cu_gemm_norm): Y = LayerNorm(act(A B +
// bias + R)) over each row of Y [M, N], for half types: a transformer's output projection or
// second feed-forward product with its residual LayerNorm in one launch (cuBLASLt's epilogues
// cannot normalize a row, so the fallback is its product and then the LayerNorm kernel).
// A [M, K] and B [K, N] row-major as the layer holds them. A block holds whole rows: 16 or 32
// rows x all N (128, 256 or 512) columns, its 8 warps side by side along N (N / 8 columns each),
// K in steps of 32 through a 4-stage cp.async ring, m16n8k16 mma.sync with float32 accumulators
// (A's fragments by ldmatrix, B's by ldmatrix.trans from its [k][n] tile). K may be split over the
// `split` blocks of a thread-block cluster (sm_90): each sums a share of K, and each finishes a
// share of the rows from all of their shared memories (distributed shared memory). A warp
// finishes a row alone: the K slices summed, bias, residual, activation, then the mean and the
// squared deviations by warp shuffles (the LayerNormalization kernel's two passes, float32),
// scaled, shifted and rounded once. Small M is what it is for: at BERT's 1x16 a product and
// its LayerNorm are two launches of ~4 us each, most of it launch and ramp.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/act.cuh"
#include "backend/cuda/mma.cuh"

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>
#include <string.h>

namespace {

constexpr int GN_BK = 32, GN_STAGES = 4, GN_THREADS = 256, GN_WARPS = GN_THREADS / 32,
              GN_MAX_CLUSTER = 8;

// Two adjacent elements (4-byte aligned) as floats.
__device__ __forceinline__ float2 load2(const __half *p) { return __half22float2(*(const __half2 *)p); }
__device__ __forceinline__ float2 load2(const __nv_bfloat16 *p) { return __bfloat1622float2(*(const __nv_bfloat162 *)p); }

__device__ __forceinline__ float warp_total(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Dynamic shared memory of a block of 16 MT rows and N = 64 NT columns: the staging ring, then
// (reused) the float tile of the product.
template <typename T, int NT, int MT> struct gn_smem {
    static constexpr int n = 64 * NT, bm = 16 * MT, lda = GN_BK + 8, ldb = n + 8;   // padded rows: no bank conflicts
    static constexpr int ring = GN_STAGES * (bm * lda + GN_BK * ldb) * (int)sizeof(T);
    static constexpr int tile = bm * (n + 4) * 4;
    static constexpr int bytes = ring > tile ? ring : tile;
};

// Sizes are 32-bit (dt_cu_gemm_norm_applies bounds every operand below 2^31 elements).
template <typename T, int NT, int MT>
__global__ void __launch_bounds__(GN_THREADS)
    gemm_norm_k(const T *__restrict__ a, const T *__restrict__ b, const T *__restrict__ bias, const T *__restrict__ res,
                const T *__restrict__ scale, const T *__restrict__ lb, T *__restrict__ y, int M, int K, int op,
                float eps, int split)
{
    dt_grid_wait();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    using S = gn_smem<T, NT, MT>;
    constexpr int N = S::n, GN_BM = S::bm, LDA = S::lda, LDB = S::ldb, BCH = GN_BK * N / 8 / GN_THREADS;
    static_assert(BCH >= 1 && GN_BM * GN_BK / 8 <= GN_THREADS && NT % 2 == 0, "tile");
    extern __shared__ __align__(16) unsigned char smem[];
    T(*as)[GN_BM][LDA] = (T(*)[GN_BM][LDA])smem;
    T(*bs)[GN_BK][LDB] = (T(*)[GN_BK][LDB])(smem + GN_STAGES * GN_BM * LDA * sizeof(T));
    const int m0 = blockIdx.x * GN_BM, tid = threadIdx.x;
    const int steps = (K + GN_BK - 1) / GN_BK, sl = blockIdx.z;
    const int kt0 = (int)((int64_t)steps * sl / split), kt1 = (int)((int64_t)steps * (sl + 1) / split);
    auto stage = [&](int kt, int buf) {
        if (tid < GN_BM * GN_BK / 8) {
            int ar = tid / (GN_BK / 8), ac = (tid % (GN_BK / 8)) * 8, k = kt * GN_BK + ac;
            bool ok = m0 + ar < M && k < K;
            cp_async16(&as[buf][ar][ac], ok ? a + (int64_t)(m0 + ar) * K + k : a, ok);
        }
#pragma unroll
        for (int i = 0; i < BCH; i++) {
            int e = tid + i * GN_THREADS, kr = e / (N / 8), nc = (e % (N / 8)) * 8, kk = kt * GN_BK + kr;
            cp_async16(&bs[buf][kr][nc], kk < K ? b + (int64_t)kk * N + nc : b, kk < K);
        }
    };
    const int warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3, wn = warp * (N / GN_WARPS);
    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;
    // The fragment loads' shared-space addresses (lane l gives row l % 8 of matrix l / 8): A's
    // matrices rows 0-7 / 8-15 x k 0-7, then k 8-15; B's k 0-7 / 8-15 of n-tile j, then j + 1.
    const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
    const int lm = lane >> 3, lr = lane & 7;
    const unsigned fa = sa + (unsigned)(((lr + 8 * (lm & 1)) * LDA + 8 * (lm >> 1)) * sizeof(T));
    const unsigned fb = sa + (unsigned)(GN_STAGES * GN_BM * LDA * sizeof(T)) +
                        (unsigned)(((lr + 8 * (lm & 1)) * LDB + wn + 8 * (lm >> 1)) * sizeof(T));
    // One commit group per step (empty past the end): wait_group<STAGES-2> always means "the
    // step about to be computed has landed".
#pragma unroll
    for (int s = 0; s < GN_STAGES - 1; s++) {
        if (kt0 + s < kt1) stage(kt0 + s, s);
        cp_async_commit();
    }
    for (int kt = kt0; kt < kt1; kt++) {
        const int buf = (kt - kt0) % GN_STAGES;
        cp_async_wait<GN_STAGES - 2>();
        __syncthreads();   // the step landed for every thread; the buffer staged next is free
        if (kt + GN_STAGES - 1 < kt1) stage(kt + GN_STAGES - 1, (kt - kt0 + GN_STAGES - 1) % GN_STAGES);
        cp_async_commit();
        const unsigned ab = fa + (unsigned)(buf * GN_BM * LDA * sizeof(T)), bb = fb + (unsigned)(buf * GN_BK * LDB * sizeof(T));
#pragma unroll
        for (int kk = 0; kk < GN_BK; kk += 16) {
            uint32_t af[MT][4];
#pragma unroll
            for (int i = 0; i < MT; i++) ldmatrix_x4_sa(af[i], ab + (unsigned)((i * 16 * LDA + kk) * sizeof(T)));
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                uint32_t r[4];
                ldmatrix_x4_trans_sa(r, bb + (unsigned)((kk * LDB + 8 * j) * sizeof(T)));
#pragma unroll
                for (int i = 0; i < MT; i++) {
                    mma16816<T>(acc[i][j], af[i], r[0], r[1]);
                    mma16816<T>(acc[i][j + 1], af[i], r[2], r[3]);
                }
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();   // the ring is free: the float tile takes its place
    float(*ct)[N + 4] = (float(*)[N + 4])smem;
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            int c = wn + j * 8 + 2 * tq, r = 16 * i + gq;
            ct[r][c] = acc[i][j][0];
            ct[r][c + 1] = acc[i][j][1];
            ct[r + 8][c] = acc[i][j][2];
            ct[r + 8][c + 1] = acc[i][j][3];
        }
    // The columns' parameters, once: lane l holds columns 2l + 64p and the next.
    float2 bz[NT], sc[NT], lz[NT];
#pragma unroll
    for (int p = 0; p < NT; p++) {
        const int n = 2 * lane + 64 * p;
        bz[p] = bias ? load2(bias + n) : make_float2(0.f, 0.f);
        sc[p] = load2(scale + n);
        lz[p] = lb ? load2(lb + n) : make_float2(0.f, 0.f);
    }
    // Rows [r0, r1) of the tile are this block's to finish (all without a split, else its
    // share), a warp a row: r0 + warp, r0 + warp + 8, ... Their residuals issued before the
    // wait for the other blocks' tiles.
    cg::cluster_group cl = cg::this_cluster();
    const int r0 = GN_BM * sl / split, r1 = GN_BM * (sl + 1) / split;
    constexpr int RW = GN_BM / GN_WARPS;
    float2 v[RW][NT];
#pragma unroll
    for (int i = 0; i < RW; i++) {
        const int r = r0 + warp + GN_WARPS * i, m = m0 + r;
#pragma unroll
        for (int p = 0; p < NT; p++)
            v[i][p] = res && r < r1 && m < M ? load2(res + (int64_t)m * N + 2 * lane + 64 * p) : make_float2(0.f, 0.f);
    }
    if (split > 1) cl.sync();
    else __syncthreads();
#pragma unroll
    for (int i = 0; i < RW; i++) {
        const int r = r0 + warp + GN_WARPS * i, m = m0 + r;
        if (r >= r1 || m >= M) break;   // the rows of a warp ascend
        float s = 0.f;
#pragma unroll
        for (int p = 0; p < NT; p++) {
            const int c = 2 * lane + 64 * p;
            float2 t = *(const float2 *)&ct[r][c];
            for (int q = 0; q < split; q++) {
                if (q == sl) continue;
                float2 o = *(const float2 *)cl.map_shared_rank(&ct[r][c], (unsigned)q);
                t.x += o.x;
                t.y += o.y;
            }
            v[i][p].x = act(op, t.x + bz[p].x + v[i][p].x, 0.f, 0.f);
            v[i][p].y = act(op, t.y + bz[p].y + v[i][p].y, 0.f, 0.f);
            s += v[i][p].x + v[i][p].y;
        }
        const float mean = warp_total(s) / (float)N;
        float d = 0.f;
#pragma unroll
        for (int p = 0; p < NT; p++) {
            float d0 = v[i][p].x - mean, d1 = v[i][p].y - mean;
            d += d0 * d0 + d1 * d1;
        }
        const float inv = rsqrtf(warp_total(d) / (float)N + eps);
#pragma unroll
        for (int p = 0; p < NT; p++) {
            float o0 = (v[i][p].x - mean) * inv * sc[p].x + lz[p].x;
            float o1 = (v[i][p].y - mean) * inv * sc[p].y + lz[p].y;
            *(uint32_t *)(y + (int64_t)m * N + 2 * lane + 64 * p) = pair_of<T>::pack(o0, o1);
        }
    }
    if (split > 1) cl.sync();   // no block leaves while another reads its shared memory
#endif
}

template <typename T, int NT, int MT>
int gemm_norm(const T *a, const T *b, const T *bias, const T *res, const T *scale, const T *lb, T *y, int64_t M,
              int64_t K, int op, float eps, int split, void *stream)
{
    if (split > GN_MAX_CLUSTER) return (int)cudaErrorInvalidValue;
    constexpr int smem = gn_smem<T, NT, MT>::bytes, bm = 16 * MT;
    static bool sized = false;   // past 48 KB: allowed once per kernel (a benign race)
    if (!sized) {
        int rc = (int)cudaFuncSetAttribute(gemm_norm_k<T, NT, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (rc) return rc;
        sized = true;
    }
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    cfg.gridDim = dim3((unsigned)((M + bm - 1) / bm), 1, (unsigned)split);
    cfg.blockDim = dim3(GN_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = (cudaStream_t)stream;
    cfg.attrs = at;
    cfg.numAttrs = (unsigned)dt_pdl_attr(&at[0], (unsigned long long)cfg.gridDim.x * cfg.gridDim.z);
    if (split > 1) {
        cudaLaunchAttribute *c = &at[cfg.numAttrs++];
        memset(c, 0, sizeof *c);
        c->id = cudaLaunchAttributeClusterDimension;
        c->val.clusterDim.x = 1;
        c->val.clusterDim.y = 1;
        c->val.clusterDim.z = (unsigned)split;
    }
    return (int)cudaLaunchKernelEx(&cfg, gemm_norm_k<T, NT, MT>, a, b, bias, res, scale, lb, y, (int)M, (int)K, op, eps,
                                   split);
}

template <typename T, int MT>
int gemm_norm_n(const void *a, const void *b, const void *bias, const void *res, const void *scale, const void *lb,
                void *y, int64_t M, int64_t N, int64_t K, int op, float eps, int split, void *stream)
{
    const T *at = (const T *)a, *bt = (const T *)b, *ct = (const T *)bias, *rt = (const T *)res;
    const T *st = (const T *)scale, *lt = (const T *)lb;
    if (N == 128) return gemm_norm<T, 2, MT>(at, bt, ct, rt, st, lt, (T *)y, M, K, op, eps, split, stream);
    if (N == 256) return gemm_norm<T, 4, MT>(at, bt, ct, rt, st, lt, (T *)y, M, K, op, eps, split, stream);
    if (N == 512) return gemm_norm<T, 8, MT>(at, bt, ct, rt, st, lt, (T *)y, M, K, op, eps, split, stream);
    return (int)cudaErrorInvalidValue;
}

template <typename T>
int gemm_norm_any(const void *a, const void *b, const void *bias, const void *res, const void *scale, const void *lb,
                  void *y, int64_t M, int64_t N, int64_t K, int op, float eps, int rows, int split, void *stream)
{
    if (rows == 16) return gemm_norm_n<T, 1>(a, b, bias, res, scale, lb, y, M, N, K, op, eps, split, stream);
    if (rows == 32) return gemm_norm_n<T, 2>(a, b, bias, res, scale, lb, y, M, N, K, op, eps, split, stream);
    return (int)cudaErrorInvalidValue;
}

} // namespace

extern "C" bool dt_cu_gemm_norm_applies(int dtype, int64_t M, int64_t N, int64_t K)
{
    const int64_t lim = INT32_MAX;
    return (dtype == DUCTILE_FLOAT16 || dtype == DUCTILE_BFLOAT16) && (N == 128 || N == 256 || N == 512) && M > 0 &&
           K > 0 && K % 8 == 0 && M * K < lim && K * N < lim && M * N < lim;
}

extern "C" int dt_cu_gemm_norm_split(int64_t M, int64_t K, int rows, int sms)
{
    int64_t blocks = rows > 0 ? (M + rows - 1) / rows : 0, steps = (K + GN_BK - 1) / GN_BK;
    if (blocks <= 0 || sms <= 0 || blocks >= sms) return 1;
    // Enough blocks for one per multiprocessor, each slice at least 2 steps of 32, the
    // cluster at most GN_MAX_CLUSTER blocks.
    int64_t s = (sms + blocks - 1) / blocks, most = steps / 2;
    if (s > most) s = most;
    if (s > GN_MAX_CLUSTER) s = GN_MAX_CLUSTER;
    return s < 2 ? 1 : (int)s;
}

extern "C" int dt_cu_gemm_norm(int dtype, const void *a, const void *b, const void *bias, const void *res,
                               const void *scale, const void *lb, void *y, int64_t M, int64_t N, int64_t K, int op,
                               float eps, int rows, int split, void *stream)
{
    if (!dt_cu_gemm_norm_applies(dtype, M, N, K) || split < 1 || !scale) return (int)cudaErrorInvalidValue;
    if (dtype == DUCTILE_FLOAT16)
        return gemm_norm_any<__half>(a, b, bias, res, scale, lb, y, M, N, K, op, eps, rows, split, stream);
    return gemm_norm_any<__nv_bfloat16>(a, b, bias, res, scale, lb, y, M, N, K, op, eps, rows, split, stream);
}
