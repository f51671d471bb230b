// The channels-last 1x1 convolution on tensor cores (conv_own.h, DT_CUDA_CONV_PW_MMA*): written
// by hand because cuBLASLt's epilogues cannot clip (mobilenet's ReLU6 costs it a second kernel
// per layer), and because at batch 1 the 7x7 / 14x14 maps leave most of the GPU idle.
// Y[P, M] = X[P, C] W[M, C]^T with P = n*oh*ow output pixels (stride s: pixel (oh*s, ow*s) of
// the input; no pads), so both operands are C-contiguous (mma.sync's row.col) and 16-byte
// chunks of 8 channels (C % 8 == 0) are staged by cp.async. Blocks of 4 warps compute BM x BN
// tiles, C (K) in steps of 32 (zero-filled past the tile's edge and C's end) in a 3-stage
// ring; each warp runs m16n8k16 mma.sync (float32 accumulators). Split K without a second kernel or a
// scratch buffer: `split` blocks of a thread-block cluster each sum a share of K, and each
// reduces a share of the tile's rows from all of their shared memories (distributed shared
// memory, sm_90) before applying the epilogue (bias, residual, activation, one rounding).
#include "backend/cuda/launch.cuh"
#include "backend/cuda/act.cuh"
#include "backend/cuda/conv_own.h"

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>

namespace {

constexpr int MMA_BK = 32, MMA_PAD = 8, MMA_STAGES = 3, MMA_THREADS = 128;

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

// Two floats rounded to T (nearest even) and packed.
__device__ __forceinline__ uint32_t pack2(float a, float b, __half)
{
    __half2 h = __floats2half2_rn(a, b);
    return *(uint32_t *)&h;
}
__device__ __forceinline__ uint32_t pack2(float a, float b, __nv_bfloat16)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *(uint32_t *)&h;
}

__device__ __forceinline__ void cp16(void *smem, const void *gmem, bool valid)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    int bytes = valid ? 16 : 0; // 0: the 16 bytes are zero-filled, nothing is read
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void mma(float *c, const uint32_t *a, const uint32_t *b, __half)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma(float *c, const uint32_t *a, const uint32_t *b, __nv_bfloat16)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Shared memory of a BM x BN block: the staging ring, then (reused) the float tile the
// epilogue reads.
template <int BM, int BN> struct mma_smem {
    static constexpr int ring = MMA_STAGES * (BM + BN) * (MMA_BK + MMA_PAD) * 2;
    static constexpr int tile = BM * (BN + 4) * 4;
    static constexpr int bytes = ring > tile ? ring : tile;
};

// Sizes are 32-bit (dt_cu_conv_pw_mma_applies bounds every tensor's element count below 2^31).
template <typename T, int BM, int BN>
__global__ void __launch_bounds__(MMA_THREADS) conv_mma_k(const T *__restrict__ x, const T *__restrict__ w,
                                                          const T *__restrict__ bias, const T *__restrict__ res,
                                                          T *__restrict__ y, dt_cu_conv g, int split)
{
    dt_grid_wait();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
    constexpr int LD = MMA_BK + MMA_PAD, WM = BM / 2, WN = BN / 2, MI = WM / 16, NI = WN / 8;
    constexpr int ACH = BM * 4 / MMA_THREADS, BCH = BN * 4 / MMA_THREADS; // 16-byte chunks a thread stages
    static_assert(ACH >= 1 && BCH >= 1 && MI >= 1 && NI >= 1, "tile");
    __shared__ __align__(16) unsigned char smem[mma_smem<BM, BN>::bytes];
    T(*as)[BM][LD] = (T(*)[BM][LD])smem;
    T(*bs)[BN][LD] = (T(*)[BN][LD])(smem + MMA_STAGES * BM * LD * sizeof(T));
    const int C = (int)g.c, M = (int)g.m, IH = (int)g.ih, IW = (int)g.iw, OH = (int)g.oh, OW = (int)g.ow;
    const int K = C, P = (int)g.n * OH * OW;
    const int p0 = blockIdx.x * BM, n0 = blockIdx.y * BN, tid = threadIdx.x;
    // This block's share of the K steps (blockIdx.z of `split`: a cluster along z).
    const int steps = (K + MMA_BK - 1) / MMA_BK, sl = blockIdx.z;
    const int kt0 = (int)((int64_t)steps * sl / split), kt1 = (int)((int64_t)steps * (sl + 1) / split);
    // The A rows this thread stages: their input pixel's channels (NULL past P).
    const T *arow[ACH];
    int ach[ACH], arw[ACH];
#pragma unroll
    for (int i = 0; i < ACH; i++) {
        int e = tid + i * MMA_THREADS, r = e >> 2, p = p0 + r;
        arw[i] = r;
        ach[i] = (e & 3) * 8;
        int pp = p < P ? p : 0, ow = pp % OW, t = pp / OW, oh = t % OH, n = t / OH;
        int64_t pix = ((int64_t)n * IH + (int64_t)oh * g.sh) * IW + (int64_t)ow * g.sw;
        arow[i] = p < P ? x + pix * C : nullptr;
    }
    auto stage = [&](int kt, int buf) {
#pragma unroll
        for (int i = 0; i < ACH; i++) {
            int k = kt * MMA_BK + ach[i];
            bool ok = arow[i] && k < K;
            cp16(&as[buf][arw[i]][ach[i]], ok ? arow[i] + k : x, ok);
        }
#pragma unroll
        for (int i = 0; i < BCH; i++) {
            int e = tid + i * MMA_THREADS, r = e >> 2, kc = (e & 3) * 8, k = kt * MMA_BK + kc, m = n0 + r;
            bool ok = m < M && k < K;
            cp16(&bs[buf][r][kc], ok ? w + (int64_t)m * K + k : w, ok);
        }
    };
    const int warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
    const int wm = (warp >> 1) * WM, wn = (warp & 1) * WN;
    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;
    // The ring: steps kt0 + 0 and + 1 in flight before the first is computed; one commit
    // group per step (empty past the end) so that wait_group<STAGES-2> always means "the
    // step about to be computed has landed".
#pragma unroll
    for (int s = 0; s < MMA_STAGES - 1; s++) {
        if (kt0 + s < kt1) stage(kt0 + s, s);
        cp_commit();
    }
    for (int kt = kt0; kt < kt1; kt++) {
        const int buf = (kt - kt0) % MMA_STAGES;
        cp_wait<MMA_STAGES - 2>();
        __syncthreads(); // the step landed for every thread; the buffer staged next is free
        if (kt + MMA_STAGES - 1 < kt1) stage(kt + MMA_STAGES - 1, (kt - kt0 + MMA_STAGES - 1) % MMA_STAGES);
        cp_commit();
#pragma unroll
        for (int kk = 0; kk < MMA_BK; kk += 16) {
            uint32_t a[MI][4], b[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++) {
                const T *r0 = &as[buf][wm + i * 16 + gq][kk + 2 * tq], *r8 = r0 + 8 * LD;
                a[i][0] = *(const uint32_t *)r0;
                a[i][1] = *(const uint32_t *)r8;
                a[i][2] = *(const uint32_t *)(r0 + 8);
                a[i][3] = *(const uint32_t *)(r8 + 8);
            }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                const T *r0 = &bs[buf][wn + j * 8 + gq][kk + 2 * tq];
                b[j][0] = *(const uint32_t *)r0;
                b[j][1] = *(const uint32_t *)(r0 + 8);
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) mma(acc[i][j], a[i], b[j], T());
        }
    }
    cp_wait<0>();
    __syncthreads(); // the ring is free: the float tile takes its place
    float(*ct)[BN + 4] = (float(*)[BN + 4])smem;
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) {
            int r = wm + i * 16 + gq, c = wn + j * 8 + 2 * tq;
            ct[r][c] = acc[i][j][0];
            ct[r][c + 1] = acc[i][j][1];
            ct[r + 8][c] = acc[i][j][2];
            ct[r + 8][c + 1] = acc[i][j][3];
        }
    // Rows [r0, r1) of the tile are this block's to finish: all of them without a split, else
    // its share, summed over the cluster's blocks.
    int r0 = 0, r1 = BM;
    namespace cg = cooperative_groups;
    if (split > 1) {
        cg::this_cluster().sync();
        r0 = BM * sl / split;
        r1 = BM * (sl + 1) / split;
    } else {
        __syncthreads();
    }
    for (int e = tid; e < (r1 - r0) * (BN / 2); e += MMA_THREADS) {
        int r = r0 + e / (BN / 2), c = (e % (BN / 2)) * 2, p = p0 + r, m = n0 + c;
        float v0 = 0.f, v1 = 0.f;
        if (split > 1) {
            cg::cluster_group cl = cg::this_cluster();
            for (int q = 0; q < split; q++) {
                const float *o = cl.map_shared_rank(&ct[r][c], q);
                v0 += o[0];
                v1 += o[1];
            }
        } else {
            v0 = ct[r][c];
            v1 = ct[r][c + 1];
        }
        if (p >= P || m >= M) continue; // M is even: m < M covers m + 1
        int64_t o = (int64_t)p * M + m;
        if (bias) v0 += to_f(bias[m]), v1 += to_f(bias[m + 1]);
        if (res) v0 += to_f(res[o]), v1 += to_f(res[o + 1]);
        *(uint32_t *)(y + o) = pack2(act(g.act, v0, g.p0, g.p1), act(g.act, v1, g.p0, g.p1), T());
    }
    if (split > 1) cg::this_cluster().sync(); // no block leaves while another reads its tile
#endif
}

template <typename T, int BM, int BN>
int conv_mma(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, int split, void *stream)
{
    int64_t P = g->n * g->oh * g->ow;
    if (P <= 0 || g->m <= 0) return 0;
    if (split < 1 || split > 8) return (int)cudaErrorInvalidValue;
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    cfg.gridDim = dim3((unsigned)((P + BM - 1) / BM), (unsigned)((g->m + BN - 1) / BN), (unsigned)split);
    cfg.blockDim = dim3(MMA_THREADS);
    cfg.stream = (cudaStream_t)stream;
    cfg.attrs = at;
    cfg.numAttrs = (unsigned)dt_pdl_attr(&at[0], (unsigned long long)cfg.gridDim.x * cfg.gridDim.y * cfg.gridDim.z);
    if (split > 1) {
        cudaLaunchAttribute *c = &at[cfg.numAttrs++];
        memset(c, 0, sizeof *c);
        c->id = cudaLaunchAttributeClusterDimension;
        c->val.clusterDim.x = 1;
        c->val.clusterDim.y = 1;
        c->val.clusterDim.z = (unsigned)split;
    }
    return (int)cudaLaunchKernelEx(&cfg, conv_mma_k<T, BM, BN>, x, w, bias, res, y, *g, split);
}

template <typename T>
int conv_mma_any(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, int tile,
                 int split, void *stream)
{
    const T *xt = (const T *)x, *wt = (const T *)w, *bt = (const T *)bias, *rt = (const T *)res;
    if (tile == 64) return conv_mma<T, 64, 64>(xt, wt, bt, rt, (T *)y, g, split, stream);
    if (tile == 32) return conv_mma<T, 32, 32>(xt, wt, bt, rt, (T *)y, g, split, stream);
    if (tile == 128) return conv_mma<T, 128, 64>(xt, wt, bt, rt, (T *)y, g, split, stream);
    return (int)cudaErrorInvalidValue;
}

} // namespace

extern "C" bool dt_cu_conv_pw_mma_applies(const dt_cu_conv *g)
{
    const int64_t lim = INT32_MAX;
    return g->group == 1 && g->kh == 1 && g->kw == 1 && g->ph == 0 && g->pw == 0 && g->c % 8 == 0 && g->m % 2 == 0 &&
           g->c > 0 && g->m > 0 && g->m <= 65535 * 32 && g->sh > 0 && g->sw > 0 && g->n * g->ih * g->iw * g->c < lim &&
           g->n * g->oh * g->ow * g->m < lim && g->m * g->c < lim && (g->oh - 1) * g->sh < g->ih &&
           (g->ow - 1) * g->sw < g->iw;
}

extern "C" int dt_cu_conv_pw_mma_split(const dt_cu_conv *g, int tile, int sms)
{
    int64_t P = g->n * g->oh * g->ow, steps = (g->c + MMA_BK - 1) / MMA_BK;
    int bn = tile == 128 ? 64 : tile;
    int64_t blocks = (P + tile - 1) / tile * ((g->m + bn - 1) / bn);
    if (blocks <= 0 || sms <= 0 || blocks >= sms) return 1;
    // Enough blocks for one per multiprocessor, each slice at least 4 steps of 32.
    int64_t s = (sms + blocks - 1) / blocks, most = steps / 4;
    if (s > most) s = most;
    if (s > 8) s = 8;
    return s < 2 ? 1 : (int)s;
}

extern "C" int dt_cu_conv_pw_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                              const dt_cu_conv *g, int tile, int split, void *stream)
{
    if (!dt_cu_conv_pw_mma_applies(g)) return (int)cudaErrorInvalidValue;
    if (dtype == DUCTILE_FLOAT16) return conv_mma_any<__half>(x, w, bias, res, y, g, tile, split, stream);
    if (dtype == DUCTILE_BFLOAT16) return conv_mma_any<__nv_bfloat16>(x, w, bias, res, y, g, tile, split, stream);
    return (int)cudaErrorInvalidValue;
}
